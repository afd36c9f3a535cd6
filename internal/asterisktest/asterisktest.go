// Package asterisktest runs a real, private Asterisk for a test: its own
// folder, hotline's configuration (asterisk-conf) with ARI and PJSIP moved
// to free loopback ports, hotline's prompts installed as its sounds, and
// optionally a trunk for a loopback address and agents' endpoints added
// the way asterisk-conf/README.md adds them.
//
// Asterisk 22 comes from third_party/asterisk (test.sh installs it); a
// test that needs it fails, with a message saying so, when it is missing.
package asterisktest

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	asteriskconf "github.com/hotline12345/hotline/asterisk-conf"
	"github.com/hotline12345/hotline/prompts"
)

// The ARI user of asterisk-conf/ari.conf and the password a test instance
// gives it in place of the shipped placeholder.
const (
	Username = "hotline"
	Password = "hotline-test"
)

// readyTimeout bounds the wait for Asterisk to boot (a few hundred ms on
// an idle machine) and stopTimeout the wait for it to exit.
const (
	readyTimeout = 60 * time.Second
	stopTimeout  = 15 * time.Second
)

// maxSocketPath is the room in sockaddr_un.sun_path on Linux (unix(7)):
// the CLI's control socket lives in the instance's folder.
const maxSocketPath = 107

// Agent is an agent's phone account: a PJSIP endpoint, auth and aor named
// User, made from the agent templates of pjsip.conf.
type Agent struct {
	User, Password string
}

// Options shape an instance. The zero value runs the shipped
// configuration with only the ports and the ARI password changed.
type Options struct {
	// Trunk, when set, is a loopback address (e.g. 127.0.0.2) whose SIP
	// requests Asterisk takes for a carrier's: a trunk endpoint
	// "test-trunk" identified by that address, context from-trunk, as
	// README.md's test call adds one.
	Trunk string
	// Agents are added as agents' endpoints (README.md, "Adding an agent").
	Agents []Agent
	// Append adds text to the end of configuration files, by name
	// ("pjsip.conf"); a file the set lacks is created.
	Append map[string]string
}

// Asterisk is a running private Asterisk.
type Asterisk struct {
	// Dir is the instance's folder: etc, lib (sounds, astdb), log, run,
	// spool.
	Dir string
	// ARI is the REST root, "http://127.0.0.1:PORT/ari".
	ARI string
	// SIP is where PJSIP listens, UDP and TCP.
	SIP netip.AddrPort

	bin     string
	conf    string // asterisk.conf
	console *os.File

	mu   sync.Mutex
	proc *process
}

type process struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// Binary finds the asterisk executable (on PATH or in /usr/sbin), or fails
// the test saying how to install it.
func Binary(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("asterisk"); err == nil {
		return p
	}
	const sbin = "/usr/sbin/asterisk"
	if _, err := os.Stat(sbin); err == nil {
		return sbin
	}
	t.Fatalf("asterisktest: asterisk is not installed: run third_party/asterisk/install.sh (test.sh does) to install Asterisk 22.10.1")
	return ""
}

// Start starts Asterisk for t, waits until it has fully booted and ARI
// answers, and stops it when t ends.
func Start(t testing.TB, opts Options) *Asterisk {
	t.Helper()
	bin := Binary(t)
	dir := tempDir(t)
	// The folders `make install` creates: cdr_csv writes into an existing
	// log/cdr-csv only.
	for _, d := range []string{"etc", "run", "log/cdr-csv", "spool", "lib/sounds/en", "lib/keys"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatalf("asterisktest: %v", err)
		}
	}
	// Record() plays Asterisk's stock beep before it records; the core
	// sounds `make install` adds are not installed here, so a beep stands
	// in: 250 ms of 1 kHz as signed linear (format_sln).
	if err := os.WriteFile(filepath.Join(dir, "lib", "sounds", "en", "beep.sln"), beep(), 0o644); err != nil {
		t.Fatalf("asterisktest: %v", err)
	}
	httpPort := freeTCPPort(t)
	sip := freeSIPPort(t)
	a := &Asterisk{
		Dir:  dir,
		ARI:  fmt.Sprintf("http://127.0.0.1:%d/ari", httpPort),
		SIP:  sip,
		bin:  bin,
		conf: filepath.Join(dir, "etc", "asterisk.conf"),
	}
	if err := a.writeConfig(httpPort, opts); err != nil {
		t.Fatalf("asterisktest: %v", err)
	}
	catalog, err := prompts.Default()
	if err != nil {
		t.Fatalf("asterisktest: %v", err)
	}
	if _, err := prompts.WriteAsteriskSounds(catalog, filepath.Join(dir, "lib", "sounds")); err != nil {
		t.Fatalf("asterisktest: installing the prompts: %v", err)
	}
	console, err := os.Create(filepath.Join(dir, "log", "console"))
	if err != nil {
		t.Fatalf("asterisktest: %v", err)
	}
	a.console = console
	t.Cleanup(func() {
		if err := a.stop(); err != nil {
			t.Errorf("asterisktest: %v", err)
		}
		_ = console.Close()
		if t.Failed() {
			t.Logf("asterisk's log (%s):\n%s", dir, a.LogTail(60))
		}
	})
	a.start(t)
	return a
}

// tempDir makes the instance's folder, short enough for the control
// socket's path to fit in sun_path.
func tempDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if len(filepath.Join(dir, "run", "asterisk.ctl")) <= maxSocketPath {
		return dir
	}
	dir, err := os.MkdirTemp("/tmp", "asterisktest-")
	if err != nil {
		t.Fatalf("asterisktest: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// freeTCPPort is a port the kernel just handed out on 127.0.0.1.
func freeTCPPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("asterisktest: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// freeSIPPort is a port free for both UDP and TCP on 127.0.0.1, as the
// two PJSIP transports share it.
func freeSIPPort(t testing.TB) netip.AddrPort {
	t.Helper()
	for range 50 {
		u, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("asterisktest: %v", err)
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		u.Close()
		if err != nil {
			continue
		}
		l.Close()
		return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	}
	t.Fatalf("asterisktest: no port free for both UDP and TCP")
	return netip.AddrPort{}
}

// patch is one change a test instance makes to a shipped file: every
// match of re is replaced, and there must be want of them.
type patch struct {
	file string
	re   *regexp.Regexp
	with string
	want int
}

// writeConfig writes the shipped files with the ports and password
// changed, the trunk and agents added, and an asterisk.conf pointing every
// folder into the instance's.
func (a *Asterisk) writeConfig(httpPort int, opts Options) error {
	files := map[string][]byte{}
	err := fs.WalkDir(asteriskconf.Files, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(asteriskconf.Files, name)
		files[name] = b
		return err
	})
	if err != nil {
		return err
	}
	patches := []patch{
		{"http.conf", regexp.MustCompile(`(?m)^bindport\s*=.*$`), "bindport = " + strconv.Itoa(httpPort), 1},
		{"pjsip.conf", regexp.MustCompile(`(?m)^bind\s*=\s*0\.0\.0\.0:5060\s*$`), "bind = " + a.SIP.String(), 2},
		{"ari.conf", regexp.MustCompile(`(?m)^password\s*=\s*CHANGE_ME_ari_password\s*$`), "password = " + Password, 1},
	}
	for _, p := range patches {
		b, ok := files[p.file]
		if !ok {
			return fmt.Errorf("asterisk-conf has no %s", p.file)
		}
		if n := len(p.re.FindAll(b, -1)); n != p.want {
			return fmt.Errorf("%s: %d lines match %s, want %d: the shipped file changed", p.file, n, p.re, p.want)
		}
		files[p.file] = p.re.ReplaceAll(b, []byte(p.with))
	}
	var extra strings.Builder
	if opts.Trunk != "" {
		fmt.Fprintf(&extra, "\n[test-trunk](trunk-endpoint)\n\n[test-trunk](trunk-identify)\nendpoint = test-trunk\nmatch = %s\n", opts.Trunk)
	}
	for _, ag := range opts.Agents {
		fmt.Fprintf(&extra, "\n[%[1]s](agent-endpoint)\nauth = %[1]s\naors = %[1]s\ncallerid = \"Agent %[1]s\" <%[1]s>\n\n[%[1]s](agent-auth)\nusername = %[1]s\npassword = %[2]s\n\n[%[1]s](agent-aor)\n", ag.User, ag.Password)
	}
	files["pjsip.conf"] = append(files["pjsip.conf"], extra.String()...)
	for name, text := range opts.Append {
		files[name] = append(files[name], text...)
	}

	d := a.Dir
	files["asterisk.conf"] = fmt.Appendf(nil, `[directories]
astetcdir => %[1]s/etc
astmoddir => %[2]s
astvarlibdir => %[1]s/lib
astdbdir => %[1]s/lib
astkeydir => %[1]s/lib
astdatadir => %[1]s/lib
astagidir => %[1]s/lib/agi-bin
astspooldir => %[1]s/spool
astrundir => %[1]s/run
astlogdir => %[1]s/log
astsbindir => %[3]s
`, d, filepath.Join(filepath.Dir(filepath.Dir(a.bin)), "lib", "asterisk", "modules"), filepath.Dir(a.bin))
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(d, "etc", name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// start runs asterisk in the foreground and waits until it is ready.
func (a *Asterisk) start(t testing.TB) {
	t.Helper()
	// -f: stay in the foreground, a child of the test; -n: no colours in
	// the console log.
	cmd := exec.Command(a.bin, "-C", a.conf, "-f", "-n")
	cmd.Dir = a.Dir
	cmd.Stdout, cmd.Stderr = a.console, a.console
	if err := cmd.Start(); err != nil {
		t.Fatalf("asterisktest: starting %s: %v", a.bin, err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	a.mu.Lock()
	a.proc = p
	a.mu.Unlock()
	if err := a.awaitReady(p); err != nil {
		t.Fatalf("asterisktest: %v\n%s", err, a.LogTail(40))
	}
}

// awaitReady polls ARI until it answers 401 to a request without
// credentials (res_ari is up), then asks Asterisk to wait until it has
// fully booted (every module loaded, PJSIP's transports bound).
func (a *Asterisk) awaitReady(p *process) error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.ARI+"/asterisk/info", nil)
		if err != nil {
			return err
		}
		res, err := client.Do(req)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusUnauthorized {
				break
			}
		}
		select {
		case <-p.exited:
			return fmt.Errorf("asterisk exited before ARI answered: %v", p.cmd.ProcessState)
		case <-ctx.Done():
			return fmt.Errorf("ARI at %s did not answer within %s (last: %v)", a.ARI, readyTimeout, err)
		case <-tick.C:
		}
	}
	if out, err := a.cli(ctx, "core waitfullybooted"); err != nil {
		return fmt.Errorf("core waitfullybooted: %v: %s", err, out)
	}
	return nil
}

// cli runs one command over the control socket (asterisk -rx).
func (a *Asterisk) cli(ctx context.Context, command string) (string, error) {
	out, err := exec.CommandContext(ctx, a.bin, "-C", a.conf, "-rx", command).CombinedOutput()
	return string(out), err
}

// CLI runs a CLI command and returns its output; a command Asterisk cannot
// be asked fails the test.
func (a *Asterisk) CLI(t testing.TB, command string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := a.cli(ctx, command)
	if err != nil {
		t.Fatalf("asterisktest: asterisk -rx %q: %v\n%s", command, err, out)
	}
	return out
}

// Restart restarts Asterisk at once (core restart now): every call is hung
// up, the process runs again with the same configuration and ports, and
// Restart returns once it is ready again.
func (a *Asterisk) Restart(t testing.TB) {
	t.Helper()
	a.mu.Lock()
	p := a.proc
	a.mu.Unlock()
	if p == nil {
		t.Fatalf("asterisktest: asterisk is not running")
	}
	before := a.startupTime(t)
	a.CLI(t, "core restart now")
	// The process execs itself again, keeping its pid: it is back when
	// ARI reports a later start.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	timeout := time.After(readyTimeout)
	for {
		if s := a.startupTime(t); s != "" && s != before {
			break
		}
		select {
		case <-p.exited:
			t.Fatalf("asterisktest: asterisk exited on restart: %v\n%s", p.cmd.ProcessState, a.LogTail(40))
		case <-timeout:
			t.Fatalf("asterisktest: asterisk did not restart within %s\n%s", readyTimeout, a.LogTail(40))
		case <-tick.C:
		}
	}
	if err := a.awaitReady(p); err != nil {
		t.Fatalf("asterisktest: after the restart: %v\n%s", err, a.LogTail(40))
	}
}

// startupTime is status.startup_time of GET /asterisk/info, "" while ARI
// does not answer.
func (a *Asterisk) startupTime(t testing.TB) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, a.ARI+"/asterisk/info?only=status", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(Username, Password)
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	res, err := client.Do(req)
	if err != nil {
		return ""
	}
	defer res.Body.Close()
	var info struct {
		Status struct {
			StartupTime string `json:"startup_time"`
		} `json:"status"`
	}
	if res.StatusCode != http.StatusOK || json.NewDecoder(res.Body).Decode(&info) != nil {
		return ""
	}
	return info.Status.StartupTime
}

// stop asks Asterisk to stop at once and kills it if it does not.
func (a *Asterisk) stop() error {
	a.mu.Lock()
	p := a.proc
	a.proc = nil
	a.mu.Unlock()
	if p == nil {
		return nil
	}
	select {
	case <-p.exited:
		return fmt.Errorf("asterisk exited during the test: %v", p.cmd.ProcessState)
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	_, _ = a.cli(ctx, "core stop now")
	select {
	case <-p.exited:
		return nil
	case <-ctx.Done():
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
	return errors.New("asterisk did not stop on 'core stop now' and was killed")
}

// Log is the messages log (logger.conf: notice, warning, error).
func (a *Asterisk) Log() string {
	b, _ := os.ReadFile(filepath.Join(a.Dir, "log", "messages"))
	return string(b)
}

// LogTail is the last n lines of the console log.
func (a *Asterisk) LogTail(n int) string {
	f, err := os.Open(filepath.Join(a.Dir, "log", "console"))
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// Get makes a GET request of ARI as the test's user and decodes the JSON
// reply into out (when not nil); a reply other than 200 fails the test.
func (a *Asterisk) Get(t testing.TB, path string, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := &http.Client{}
	defer client.CloseIdleConnections()
	if err := ariDo(ctx, client, a.ARI, http.MethodGet, path, nil, nil, out); err != nil {
		t.Fatalf("asterisktest: %v", err)
	}
}

// AwaitEndpoint waits until Asterisk reports the PJSIP endpoint's state
// (GET /endpoints/PJSIP/{name}) as want: "online" once a phone has
// registered and answered the qualify, "offline" when it has none.
func (a *Asterisk) AwaitEndpoint(t testing.TB, name, want string) {
	t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for {
		var e struct {
			State string `json:"state"`
		}
		a.Get(t, "/endpoints/PJSIP/"+name, &e)
		if e.State == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("asterisktest: endpoint PJSIP/%s is %q after %s, want %q\n%s", name, e.State, readyTimeout, want, a.CLI(t, "pjsip show endpoint "+name))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// beep is 250 ms of a 1 kHz tone at 8 kHz, 16-bit little-endian samples.
func beep() []byte {
	const rate, n = 8000, 2000
	b := make([]byte, 2*n)
	for i := range n {
		v := int16(8000 * math.Sin(2*math.Pi*1000*float64(i)/rate))
		binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
	}
	return b
}
