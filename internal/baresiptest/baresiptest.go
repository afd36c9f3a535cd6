// Package baresiptest runs Debian's baresip (package baresip-core) as a
// headless SIP phone for tests: a config folder per test, auto-answering,
// playing a tone from a 16-bit PCM WAV made with sox, writing what it
// hears to a WAV, driven over ctrl_tcp. It registers with a registrar
// when given one, or waits at its own address for calls.
package baresiptest

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitFor bounds every wait for baresip.
const waitFor = 60 * time.Second

// sampleRate of telephone audio.
const sampleRate = 8000

// Phone is a running baresip.
type Phone struct {
	t      testing.TB
	user   string
	sip    netip.AddrPort
	dir    string // where sndfile dumps the call's audio
	ctrl   net.Conn
	events chan Event
	mu     sync.Mutex
	tokens int
	exited chan struct{}
	stop   func()
}

// Stop quits baresip as a user would (SIGINT): a registered phone
// unregisters on its way out.
func (p *Phone) Stop() { p.stop() }

// Event is one ctrl_tcp event, e.g. CALL_ESTABLISHED.
type Event struct {
	Event bool   `json:"event"`
	Type  string `json:"type"`
	Param string `json:"param"`
	Peer  string `json:"peeruri"`
}

// Options shape a phone.
type Options struct {
	User       string
	Tone       int    // Hz of the tone the phone sends
	Codecs     string // e.g. "PCMA"; both laws when empty
	AnswerMode string // "auto" (the default) or "manual"
	// Registrar, when set, is the host:port the phone registers with,
	// as User with Password (digest).
	Registrar string
	Password  string
	// Port, when set, is the SIP port the phone listens on (UDP and
	// TCP), for a peer configured with its address beforehand; a free
	// one otherwise.
	Port int
	// IP is the loopback address the phone uses; 127.0.0.1 when empty.
	// Give each phone its own (127.0.0.2, ...) where a registrar tells
	// phones apart by source.
	IP string
	// Transport is how the phone reaches its registrar: udp (when
	// empty), tcp or tls. Over TLS, baresip listens for TLS on the SIP
	// port + 1 as well.
	Transport string
	// CAFile is a PEM file of the CAs the phone trusts for TLS
	// (sip_cafile). baresip 1.0 sends it to OpenSSL but accepts any
	// server certificate all the same.
	CAFile string
}

// freePort returns a TCP port the kernel just handed out on ip, for a
// program that must be told its port.
func freePort(t testing.TB, ip string) int {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// freeSIPPort returns a port free on ip for both UDP and TCP: baresip's
// sip_listen takes the port on both.
func freeSIPPort(t testing.TB, ip string) int {
	t.Helper()
	for range 100 {
		c, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatal(err)
		}
		port := c.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		c.Close()
		if err == nil {
			l.Close()
			return port
		}
	}
	t.Fatalf("baresiptest: no port free for both UDP and TCP on %s", ip)
	return 0
}

// tcpFree reports whether nothing listens on TCP port of ip.
func tcpFree(ip string, port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// FreeSIPPort returns a port free on ip for both UDP and TCP, for a phone
// whose address a peer must be configured with before it starts (Port).
func FreeSIPPort(t testing.TB, ip string) int { return freeSIPPort(t, ip) }

// startTries bounds how often Start picks new ports when another process
// took one between their choice and baresip's bind.
const startTries = 3

// Start runs baresip on loopback and stops it when the test ends.
func Start(t testing.TB, opts Options) *Phone {
	t.Helper()
	for try := 1; ; try++ {
		p, inUse := start(t, opts)
		if !inUse {
			return p
		}
		if try == startTries {
			t.Fatalf("baresip: its ports were taken by others %d times", try)
		}
	}
}

// start runs baresip once; inUse reports that it found a port taken.
func start(t testing.TB, opts Options) (*Phone, bool) {
	t.Helper()
	if opts.AnswerMode == "" {
		opts.AnswerMode = "auto"
	}
	ip := opts.IP
	if ip == "" {
		ip = "127.0.0.1"
	}
	dir := t.TempDir()
	voice := filepath.Join(dir, "voice.wav")
	// aufile takes 16-bit PCM only; a float WAV makes it fail and baresip
	// then turns the call down with 486.
	sox := exec.Command("sox", "-n", "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer", voice,
		"synth", "60", "sine", strconv.Itoa(opts.Tone), "vol", "0.3")
	if out, err := sox.CombinedOutput(); err != nil {
		t.Fatalf("sox: %v\n%s", err, out)
	}
	if opts.Transport == "" {
		opts.Transport = "udp"
	}
	if opts.Port == 0 {
		opts.Port = freeSIPPort(t, ip)
		for opts.Transport == "tls" && !tcpFree(ip, opts.Port+1) {
			opts.Port = freeSIPPort(t, ip)
		}
	}
	p := &Phone{
		t:      t,
		user:   opts.User,
		sip:    netip.AddrPortFrom(netip.MustParseAddr(ip), uint16(opts.Port)),
		dir:    dir,
		events: make(chan Event, 64),
		exited: make(chan struct{}),
	}
	ctrlPort := freePort(t, "127.0.0.1")
	config := strings.Join([]string{
		"poll_method epoll",
		"sip_listen " + p.sip.String(),
		"net_interface " + ip,
		"audio_source aufile," + voice,
		// baresip 1.0 has no WAV player: what the phone hears goes to
		// a bridge device no one reads, and sndfile dumps it on the way.
		"audio_player aubridge,heard",
		"snd_path " + dir,
		"audio_alert aufile," + filepath.Join(dir, "alert.wav"),
		"module_path /usr/lib/baresip/modules",
		"module g711.so",
		"module aufile.so",
		"module aubridge.so",
		"module sndfile.so",
		"module_app account.so",
		"module_app menu.so",
		"module_app ctrl_tcp.so",
		"ctrl_tcp_listen 127.0.0.1:" + strconv.Itoa(ctrlPort),
		"",
	}, "\n")
	if opts.CAFile != "" {
		config += "sip_cafile " + opts.CAFile + "\n"
	}
	account := fmt.Sprintf("<sip:%s@%s;transport=%s>;answermode=%s;regint=0", opts.User, p.sip, opts.Transport, opts.AnswerMode)
	if opts.Registrar != "" {
		account = fmt.Sprintf("<sip:%s@%s;transport=%s>;auth_user=%s;auth_pass=%s;answermode=%s;regint=60",
			opts.User, opts.Registrar, opts.Transport, opts.User, opts.Password, opts.AnswerMode)
	}
	if opts.Codecs != "" {
		account += ";audio_codecs=" + opts.Codecs
	}
	for name, body := range map[string]string{"config": config, "accounts": account + "\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("baresip", "-f", dir)
	log := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("baresip: %v", err)
	}
	waited := make(chan error, 1)
	go func() {
		waited <- cmd.Wait()
		close(p.exited)
	}()
	p.stop = func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.exited:
		case <-time.After(waitFor):
			_ = cmd.Process.Kill()
			<-p.exited
		}
	}
	t.Cleanup(func() {
		p.stop()
		if p.ctrl != nil {
			p.ctrl.Close()
		}
		if t.Failed() {
			t.Logf("baresip output:\n%s", log.String())
		}
	})
	// ctrl_tcp listens once baresip is up; connecting is how we learn so.
	deadline := time.Now().Add(waitFor)
	for {
		conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(ctrlPort))
		if err == nil {
			p.ctrl = conn
			break
		}
		select {
		case <-p.exited:
			err := <-waited
			if strings.Contains(log.String(), "Address already in use") {
				return nil, true
			}
			t.Fatalf("baresip exited: %v\n%s", err, log.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("baresip's ctrl_tcp does not answer: %v\n%s", err, log.String())
		}
	}
	go p.readEvents()
	return p, false
}

// lockedBuffer collects a process's output.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// readEvents reads ctrl_tcp's netstrings ("LEN:JSON,") and passes the
// events on; the command responses are not needed.
func (p *Phone) readEvents() {
	r := bufio.NewReader(p.ctrl)
	for {
		head, err := r.ReadString(':')
		if err != nil {
			return
		}
		n, err := strconv.Atoi(strings.TrimSuffix(head, ":"))
		if err != nil {
			return
		}
		body := make([]byte, n+1) // the JSON and the trailing comma
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		var ev Event
		if json.Unmarshal(body[:n], &ev) == nil && ev.Event {
			select {
			case p.events <- ev:
			default:
			}
		}
	}
}

// Command sends a ctrl_tcp command, e.g. "hangup" or "sndcode" with "5".
func (p *Phone) Command(cmd, params string) {
	p.t.Helper()
	p.mu.Lock()
	p.tokens++
	body, err := json.Marshal(map[string]string{"command": cmd, "params": params, "token": strconv.Itoa(p.tokens)})
	p.mu.Unlock()
	if err != nil {
		p.t.Fatal(err)
	}
	if _, err := fmt.Fprintf(p.ctrl, "%d:%s,", len(body), body); err != nil {
		p.t.Fatalf("baresip %s: %v", cmd, err)
	}
}

// Await waits for an event of the type, skipping others, and returns it.
func (p *Phone) Await(typ string) Event {
	p.t.Helper()
	timeout := time.After(waitFor)
	for {
		select {
		case ev := <-p.events:
			if ev.Type == typ {
				return ev
			}
		case <-timeout:
			p.t.Fatalf("baresip: no %s event within %s", typ, waitFor)
		}
	}
}

// Addr is where the phone takes SIP requests (UDP).
func (p *Phone) Addr() netip.AddrPort { return p.sip }

// User is the phone's SIP user.
func (p *Phone) User() string { return p.user }

// HeardPCM reads the WAV sndfile wrote of what the phone heard: 16-bit
// PCM, read up to what was written, whether or not the header was
// finished.
func (p *Phone) HeardPCM() []int16 {
	p.t.Helper()
	files, err := filepath.Glob(filepath.Join(p.dir, "dump-*-dec.wav"))
	if err != nil || len(files) != 1 {
		p.t.Fatalf("baresip's recordings of what it heard: %v %v", files, err)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		p.t.Fatalf("baresip's recording: %v", err)
	}
	i := strings.Index(string(b), "data")
	if i < 0 || len(b) < i+8 {
		p.t.Fatalf("baresip's recording has no data chunk (%d bytes)", len(b))
	}
	data := b[i+8:]
	pcm := make([]int16, len(data)/2)
	for j := range pcm {
		pcm[j] = int16(binary.LittleEndian.Uint16(data[2*j:]))
	}
	return pcm
}

// ToneLevel is the share of pcm's power at freq hertz (a Goertzel filter
// over the whole signal): near 1 for a pure tone, near 0 without it.
func ToneLevel(pcm []int16, freq float64) float64 {
	if len(pcm) == 0 {
		return 0
	}
	w := 2 * math.Pi * freq / sampleRate
	coeff := 2 * math.Cos(w)
	var s1, s2, total float64
	for _, v := range pcm {
		x := float64(v)
		total += x * x
		s := x + coeff*s1 - s2
		s2, s1 = s1, s
	}
	if total == 0 {
		return 0
	}
	power := s1*s1 + s2*s2 - coeff*s1*s2
	// A pure tone of N samples puts N/2 × its power into the bin.
	return power / (total * float64(len(pcm)) / 2)
}
