package storage

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/hotline12345/hotline/internal/redistest"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(orphanHelperEnv); dir != "" {
		runOrphanHelper(dir)
		return
	}
	goleak.VerifyTestMain(m)
}

// waitTimeout bounds every wait of these tests for an event; events come
// in milliseconds, so reaching it means the event is not coming.
const waitTimeout = 30 * time.Second

// logBuffer collects a Store's log lines for assertions; the embedded
// server's supervisor writes from its own goroutine.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// contains reports whether a line at level has msg in its message.
func (b *logBuffer) contains(level zerolog.Level, msg string) bool {
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, `"level":"`+level.String()+`"`) && strings.Contains(line, msg) {
			return true
		}
	}
	return false
}

func newLogger() (zerolog.Logger, *logBuffer) {
	b := &logBuffer{}
	return zerolog.New(b).Level(zerolog.DebugLevel), b
}

// shortDir is the path of a data directory that does not exist yet; a
// socket path in it must fit in 107 bytes.
func shortDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	if len(filepath.Join(dir, socketName)) > maxSocketPath {
		t.Fatalf("temp dir %s too long for a socket", dir)
	}
	return dir
}

// readyPIDs returns a hook for Options.childReady and the channel it
// reports on.
func readyPIDs() (func(int), <-chan int) {
	ch := make(chan int, 16)
	return func(pid int) { ch <- pid }, ch
}

func nextPID(t *testing.T, ch <-chan int) int {
	t.Helper()
	select {
	case pid := <-ch:
		return pid
	case <-time.After(waitTimeout):
		t.Fatal("no redis-server became ready")
		return 0
	}
}

func serverPID(t *testing.T, c redis.UniversalClient) int {
	t.Helper()
	info, err := c.Info(context.Background(), "server").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "process_id:"); ok {
			pid, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			return pid
		}
	}
	t.Fatalf("no process_id in INFO server:\n%s", info)
	return 0
}

// processesIn lists the pids of processes whose command line mentions dir.
func processesIn(t *testing.T, dir string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue // gone meanwhile
		}
		if bytes.Contains(cmdline, []byte(dir)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func parentOf(t *testing.T, pid int) int {
	t.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// pid (comm) state ppid ...; comm may hold spaces, so cut at the last ')'.
	rest := string(stat[bytes.LastIndexByte(stat, ')')+2:])
	ppid, err := strconv.Atoi(strings.Fields(rest)[1])
	if err != nil {
		t.Fatal(err)
	}
	return ppid
}

func gone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

func TestOpenExternal(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	log, logs := newLogger()
	s, err := Open(ctx, Options{URL: srv.URL(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if s.Mode != External {
		t.Fatalf("mode %q, want %q", s.Mode, External)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Client.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if logs.contains(zerolog.WarnLevel, "does not answer") {
		t.Fatalf("warned about a server that answers:\n%s", logs)
	}
	// Closing the store leaves an external server alone.
	if got, err := srv.Client(t).Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("external server after Close: %q, %v", got, err)
	}
}

// Open does not wait for an external Redis; WaitReady does, saying at
// growing intervals since when it has not answered, and returns once it
// answers.
func TestWaitReady(t *testing.T) {
	ctx := context.Background()
	srv := redistest.New(t)
	log, logs := newLogger()
	s, err := Open(ctx, Options{URL: srv.URL(), Logger: log, firstRetry: 20 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open failed for an unreachable server: %v", err)
	}
	defer func() { _ = s.Close() }()
	if s.Mode != External {
		t.Fatalf("mode %q", s.Mode)
	}
	done := make(chan error, 1)
	go func() { done <- s.WaitReady(ctx) }()

	// Two checks: waits of 20 and 40 ms, both since one time.
	var retries []retryLine
	deadline := time.Now().Add(waitTimeout)
	for len(retries) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("not two warnings in %v:\n%s", waitTimeout, logs)
		}
		select {
		case err := <-done:
			t.Fatalf("WaitReady returned %v with nothing listening", err)
		case <-time.After(10 * time.Millisecond):
		}
		retries = retryLines(t, logs)
	}
	for i, r := range retries[:2] {
		if want := (20 * time.Millisecond) << i; r.RetryIn != want.String() || r.Since != retries[0].Since || r.Error == "" {
			t.Errorf("warning %d: %+v, want retry_in %v since %s", i, r, want, retries[0].Since)
		}
		if want := "redis at " + srv.URL() + " unreachable: retrying in " + ((20 * time.Millisecond) << i).String() + " (since "; !strings.HasPrefix(r.Message, want) {
			t.Errorf("message %q, want it to start %q", r.Message, want)
		}
	}
	srv.Start(t)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("WaitReady: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("WaitReady still waits for a server that answers")
	}
	if !logs.contains(zerolog.InfoLevel, "redis at "+srv.URL()+" answers") {
		t.Errorf("no line says Redis answers again:\n%s", logs)
	}
}

// stopAtWarning is a log that calls stop at its first warning.
type stopAtWarning struct {
	once sync.Once
	stop func()
	mu   sync.Mutex
	log  bytes.Buffer
}

func (w *stopAtWarning) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.log.Write(p)
	w.mu.Unlock()
	if bytes.Contains(p, []byte(`"level":"warn"`)) {
		w.once.Do(w.stop)
	}
	return len(p), nil
}

func (w *stopAtWarning) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.log.String()
}

// retryLine is a warning of WaitReady.
type retryLine struct {
	Message string
	Error   string
	RetryIn string `json:"retry_in"` // with its unit: "20ms"
	Since   string
}

func retryLines(t *testing.T, logs *logBuffer) []retryLine {
	t.Helper()
	var out []retryLine
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		var r retryLine
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if strings.Contains(r.Message, "unreachable: retrying in") {
			out = append(out, r)
		}
	}
	return out
}

// WaitReady ends at once for what no wait mends, a refused password, and
// when its context ends, saying since when Redis has not answered.
func TestWaitReadyEnds(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	if err := srv.Client(t).ConfigSet(ctx, "requirepass", "right-pw").Err(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, Options{URL: "unix://:wrong-pw@" + srv.Socket()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	wctx, cancel := context.WithTimeout(ctx, waitTimeout)
	defer cancel()
	if err := s.WaitReady(wctx); err == nil || wctx.Err() != nil || strings.Contains(err.Error(), "wrong-pw") {
		t.Fatalf("a refused password: %v (context %v), want an error at once without the password", err, wctx.Err())
	}

	// Stopped while it waits, once it has said so; the warning does not
	// show the password.
	gone := redistest.New(t)
	stopped := errors.New("stopped by the test")
	cctx, stop := context.WithCancelCause(ctx)
	warned := &stopAtWarning{stop: func() { stop(stopped) }}
	s2, err := Open(ctx, Options{URL: "unix://:topsecret@" + gone.Socket(), Logger: zerolog.New(warned), firstRetry: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s2.Close() }()
	if err := s2.WaitReady(cctx); !errors.Is(err, stopped) || !strings.Contains(err.Error(), "unreachable since") || strings.Contains(err.Error(), "topsecret") {
		t.Fatalf("WaitReady after its context ended: %v", err)
	}
	if log := warned.String(); !strings.Contains(log, "unreachable: retrying in") || strings.Contains(log, "topsecret") {
		t.Fatalf("the warnings, with no password:\n%s", log)
	}
}

func TestOpenExternalRecoversAfterKill(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	s, err := Open(ctx, Options{URL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	if err := s.Client.Set(ctx, "k", "kept", 0).Err(); err != nil {
		t.Fatal(err)
	}
	srv.Kill(t)
	if err := s.Ping(ctx); err == nil {
		t.Fatal("Ping succeeded while the server was killed")
	}
	srv.Start(t)
	if got, err := s.Client.Get(ctx, "k").Result(); err != nil || got != "kept" {
		t.Fatalf("after Kill+Start: %q, %v", got, err)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		opts Options
		want error
	}{
		{"bad scheme", Options{URL: "http://localhost"}, ErrBadURL},
		{"sentinel without master", Options{URL: "redis-sentinel://localhost:26379"}, ErrBadURL},
		{"external without URL", Options{Mode: External}, ErrBadURL},
		{"unknown mode", Options{Mode: "cloud"}, ErrBadMode},
		{"URL with in-process mode", Options{URL: "redis://localhost", Mode: InProcess}, ErrBadMode},
		{"missing redis-server", Options{RedisServerPath: "/nonexistent/redis-server", DataDir: t.TempDir()}, ErrNoRedisServer},
		{"embedded without data dir", Options{Mode: Embedded}, ErrNoDataDir},
		{"socket path too long", Options{Mode: Embedded, DataDir: filepath.Join(t.TempDir(), strings.Repeat("d", 120))}, ErrSocketPath},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(ctx, tt.opts)
			if !errors.Is(err, tt.want) {
				if s != nil {
					_ = s.Close()
				}
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestOpenEmbedded(t *testing.T) {
	ctx := context.Background()
	dir := shortDir(t)
	hook, ready := readyPIDs()
	log, logs := newLogger()
	s, err := Open(ctx, Options{DataDir: dir, Logger: log, childReady: hook})
	if err != nil {
		t.Fatal(err)
	}
	if s.Mode != Embedded {
		t.Fatalf("mode %q, want %q", s.Mode, Embedded)
	}
	pid := nextPID(t, ready)
	if got := serverPID(t, s.Client); got != pid {
		t.Fatalf("the client talks to pid %d, the child is %d", got, pid)
	}
	if ppid := parentOf(t, pid); ppid != os.Getpid() {
		t.Fatalf("redis-server's parent is %d, want this process %d", ppid, os.Getpid())
	}
	cfg, err := s.Client.ConfigGet(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"appendonly": "yes", "appendfsync": "everysec", "port": "0", "save": "", "dir": dir, "unixsocketperm": "700"} {
		if cfg[k] != want {
			t.Errorf("CONFIG %s = %q, want %q", k, cfg[k], want)
		}
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode %v, %v; want 0700", fi.Mode().Perm(), err)
	}
	if err := s.Client.Set(ctx, "appeal", "2611270001", 0).Err(); err != nil {
		t.Fatal(err)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !gone(pid) {
		t.Fatalf("redis-server %d still runs after Close", pid)
	}
	if left := processesIn(t, dir); len(left) > 0 {
		t.Fatalf("processes left on %s: %v", dir, left)
	}
	if _, err := os.Stat(filepath.Join(dir, socketName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket still there after Close: %v", err)
	}
	if !logs.contains(zerolog.InfoLevel, "embedded redis-server stopped") {
		t.Fatalf("no stop logged:\n%s", logs)
	}

	// The append-only file brings the data back.
	s, err = Open(ctx, Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	if got, err := s.Client.Get(ctx, "appeal").Result(); err != nil || got != "2611270001" {
		t.Fatalf("after reopening: %q, %v", got, err)
	}
}

func TestEmbeddedRestartsAfterCrash(t *testing.T) {
	ctx := context.Background()
	dir := shortDir(t)
	hook, ready := readyPIDs()
	log, logs := newLogger()
	s, err := Open(ctx, Options{DataDir: dir, Logger: log, childReady: hook})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	first := nextPID(t, ready)
	if err := s.Client.Set(ctx, "k", "before crash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	second := nextPID(t, ready)
	if second == first {
		t.Fatalf("same pid %d after the crash", first)
	}
	if !logs.contains(zerolog.ErrorLevel, "exited unexpectedly") {
		t.Fatalf("the crash was not logged:\n%s", logs)
	}
	// The same client reconnects to the new server, which read the AOF.
	if got, err := s.Client.Get(ctx, "k").Result(); err != nil || got != "before crash" {
		t.Fatalf("after the restart: %q, %v", got, err)
	}
	if got := serverPID(t, s.Client); got != second {
		t.Fatalf("client talks to pid %d, want %d", got, second)
	}
}

func TestEmbeddedRemovesStaleSocket(t *testing.T) {
	ctx := context.Background()
	dir := shortDir(t)
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, socketName)
	// A socket file that nobody listens on, as a killed server leaves it.
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	log, logs := newLogger()
	s, err := Open(ctx, Options{DataDir: dir, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if !logs.contains(zerolog.InfoLevel, "removing the socket") {
		t.Fatalf("stale socket not reported:\n%s", logs)
	}
}

// server is a redis-server a test started itself.
type server struct {
	pid    int
	exited chan error // receives Wait's result
}

// startServer starts redis-server with args, waits until its log has a
// line containing readyLine, and kills it in t.Cleanup if it still runs.
func startServer(t *testing.T, readyLine string, args ...string) *server {
	t.Helper()
	cmd := exec.Command("redis-server", args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	srv := &server{pid: cmd.Process.Pid, exited: make(chan error, 1)}
	done := make(chan struct{})
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	ready := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		signalled := false
		for sc.Scan() {
			if !signalled && strings.Contains(strings.ToLower(sc.Text()), readyLine) {
				signalled = true
				close(ready)
			}
		}
		// Wait only after reading to EOF: it closes the pipe.
		srv.exited <- cmd.Wait()
	}()
	select {
	case <-ready:
	case <-time.After(waitTimeout):
		t.Fatalf("redis-server %v not ready", args)
	}
	return srv
}

// startOrphan starts a redis-server on dir as an earlier hotline would
// have.
func startOrphan(t *testing.T, dir string) *server {
	t.Helper()
	return startServer(t, "ready to accept connections", "--port", "0", "--unixsocket", filepath.Join(dir, socketName),
		"--appendonly", "yes", "--save", "", "--dir", dir, "--logfile", "")
}

// freePort is a TCP port on loopback that the kernel handed out for ":0"
// a moment ago. Redis cannot take ":0" itself (--port 0 means no TCP), and
// Sentinel only speaks TCP.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// A master with a password behind a Sentinel without one: the URL's
// password is the master's.
func TestOpenSentinel(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	masterPort, sentinelPort := freePort(t), freePort(t)
	master := startServer(t, "ready to accept connections", "--port", masterPort, "--bind", "127.0.0.1",
		"--requirepass", "master-pw", "--save", "", "--dir", dir, "--logfile", "")
	conf := filepath.Join(dir, "sentinel.conf")
	err := os.WriteFile(conf, []byte("port "+sentinelPort+"\nbind 127.0.0.1\n"+
		"sentinel monitor hotline 127.0.0.1 "+masterPort+" 1\n"+
		"sentinel auth-pass hotline master-pw\n"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	startServer(t, "+monitor master hotline", conf, "--sentinel", "--logfile", "", "--dir", dir)

	s, err := Open(ctx, Options{URL: "redis-sentinel://:master-pw@127.0.0.1:" + sentinelPort + "/hotline?db=2"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	if err := s.Client.Set(ctx, "k", "through sentinel", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got := serverPID(t, s.Client); got != master.pid {
		t.Fatalf("the client reached pid %d, the master is %d", got, master.pid)
	}
	direct := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + masterPort, Password: "master-pw", DB: 2})
	defer func() { _ = direct.Close() }()
	if got, err := direct.Get(ctx, "k").Result(); err != nil || got != "through sentinel" {
		t.Fatalf("master db 2: %q, %v", got, err)
	}
}

func TestEmbeddedShutsDownEarlierServer(t *testing.T) {
	ctx := context.Background()
	dir := shortDir(t)
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	orphan := startOrphan(t, dir)
	oc := redis.NewClient(&redis.Options{Network: "unix", Addr: filepath.Join(dir, socketName)})
	if err := oc.Set(ctx, "k", "from the earlier run", 0).Err(); err != nil {
		t.Fatal(err)
	}
	_ = oc.Close()

	hook, ready := readyPIDs()
	log, logs := newLogger()
	s, err := Open(ctx, Options{DataDir: dir, Logger: log, childReady: hook})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	select {
	case err := <-orphan.exited:
		if err != nil {
			t.Fatalf("the earlier server did not exit cleanly: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("the earlier server still runs")
	}
	if pid := nextPID(t, ready); pid == orphan.pid {
		t.Fatal("the store uses the earlier server")
	}
	if !logs.contains(zerolog.WarnLevel, "from an earlier run") {
		t.Fatalf("not logged:\n%s", logs)
	}
	if got, err := s.Client.Get(ctx, "k").Result(); err != nil || got != "from the earlier run" {
		t.Fatalf("data of the earlier run: %q, %v", got, err)
	}
}

func TestEmbeddedDataDirInUse(t *testing.T) {
	ctx := context.Background()
	dir := shortDir(t)
	a, err := Open(ctx, Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := Open(ctx, Options{DataDir: dir}); !errors.Is(err, ErrDataDirInUse) {
		if b != nil {
			_ = b.Close()
		}
		t.Fatalf("second Open on the same dir: %v, want ErrDataDirInUse", err)
	}
	if err := a.Ping(ctx); err != nil {
		t.Fatalf("the first store broke: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := Open(ctx, Options{DataDir: dir})
	if err != nil {
		t.Fatalf("Open after the first store closed: %v", err)
	}
	_ = b.Close()
}

// TestEmbeddedAttach: a command run beside a server reaches the server's
// embedded Redis, and closing it leaves the server's running.
func TestEmbeddedAttach(t *testing.T) {
	ctx := context.Background()
	dir := shortDir(t)
	a, err := Open(ctx, Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(ctx, Options{DataDir: dir, Attach: true})
	if err != nil {
		t.Fatalf("Open with Attach beside a running store: %v", err)
	}
	if err := b.Client.Set(ctx, "from-b", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if v, err := a.Client.Get(ctx, "from-b").Result(); err != nil || v != "1" {
		t.Fatalf("the server's store after the attached one closed: %q, %v", v, err)
	}
}

func TestEmbeddedServerThatNeverStarts(t *testing.T) {
	ctx := context.Background()
	// A "server" that exits at once: Open must report it, not retry.
	s, err := Open(ctx, Options{DataDir: shortDir(t), RedisServerPath: "/bin/false"})
	if err == nil {
		_ = s.Close()
		t.Fatal("Open succeeded with a server that exits")
	}
}

func TestOpenCancelledWhileStarting(t *testing.T) {
	dir := shortDir(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s, err := Open(ctx, Options{DataDir: dir})
	if err == nil {
		_ = s.Close()
		t.Fatal("Open succeeded with a cancelled context")
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if left := processesIn(t, dir); len(left) > 0 {
		t.Fatalf("processes left on %s: %v", dir, left)
	}
}

func TestOpenInProcess(t *testing.T) {
	ctx := context.Background()
	log, logs := newLogger()
	s, err := Open(ctx, Options{Mode: InProcess, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	if s.Mode != InProcess {
		t.Fatalf("mode %q", s.Mode)
	}
	if !logs.contains(zerolog.WarnLevel, "NOTHING SURVIVES A RESTART") {
		t.Fatalf("no loud warning:\n%s", logs)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := s.Client.Eval(ctx, "return redis.call('INCR', KEYS[1])", []string{"{t}:n"}).Int()
	if err != nil || n != 1 {
		t.Fatalf("Lua: %d, %v", n, err)
	}
	// Keys expire on the wall clock, as in Redis: one whose deadline has
	// passed is gone.
	if err := s.Client.Set(ctx, "old", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Client.PExpireAt(ctx, "old", time.Now().Add(-time.Second)).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Client.Get(ctx, "old").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("expired key: %v", err)
	}
}

func TestOpenPicksInProcessWithoutRedisServer(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no redis-server anywhere
	s, err := Open(context.Background(), Options{DataDir: shortDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	if s.Mode != InProcess {
		t.Fatalf("mode %q, want %q", s.Mode, InProcess)
	}
}

// orphanHelperEnv makes the test binary open an embedded store on the
// given directory, print its server's pid and wait to be killed.
const orphanHelperEnv = "HOTLINE_STORAGE_TEST_HELPER_DIR"

func runOrphanHelper(dir string) {
	pids := make(chan int, 1)
	s, err := Open(context.Background(), Options{DataDir: dir, childReady: func(pid int) { pids <- pid }})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println(<-pids)
	_ = s // killed with SIGKILL while the store is open
	select {}
}

func TestEmbeddedServerDiesWithHotline(t *testing.T) {
	dir := shortDir(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	helper := exec.Command(self, "-test.run=^$")
	helper.Env = append(os.Environ(), orphanHelperEnv+"="+dir)
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	helper.Stderr = &stderr
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = helper.Process.Kill()
		_ = helper.Wait()
		t.Fatalf("helper: %v\n%s", err, stderr.String())
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}
	// A pidfd lets the test wait for the exit of a process that is not its
	// child (pidfd_open(2)).
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = unix.Close(fd) }()

	// hotline crashes: no Close, no chance to stop its server.
	if err := helper.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, int(waitTimeout/time.Millisecond))
	if err != nil || n != 1 {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		t.Fatalf("redis-server %d outlived its hotline (poll %d, %v)", pid, n, err)
	}
	// The server got SIGTERM, so it flushed and removed its socket.
	if _, err := os.Stat(filepath.Join(dir, socketName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket after the parent died: %v", err)
	}
}

// TestEmbeddedStartIsQuiet: what redis-server says at its warning level on
// every start and stop is not logged as a warning; its real warnings are.
func TestEmbeddedStartIsQuiet(t *testing.T) {
	log, buf := newLogger()
	s, err := Open(context.Background(), Options{DataDir: shortDir(t), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, msg := range []string{"Redis is starting", "Redis version=", "Configuration loaded", "Server initialized", "User requested shutdown", "ready to exit"} {
		if buf.contains(zerolog.WarnLevel, msg) {
			t.Errorf("%q logged as a warning:\n%s", msg, buf.String())
		}
		if !buf.contains(zerolog.DebugLevel, msg) {
			t.Errorf("%q not logged at debug:\n%s", msg, buf.String())
		}
	}
	lw, lbuf := newLogger()
	logLine(lw, "1:M 07 Dec 2026 07:20:00.224 # Can't open the append-only file: Permission denied")
	if !lbuf.contains(zerolog.WarnLevel, "append-only") {
		t.Errorf("a real warning of redis-server not logged as one: %s", lbuf.String())
	}
}

// The URLs of a real Sentinel set and a real Redis Cluster open clients of
// their kinds, which follow a failover and route keys to every master.
func TestOpenRealSentinelAndCluster(t *testing.T) {
	ctx := context.Background()
	t.Run("sentinel", func(t *testing.T) {
		set := redistest.StartSentinel(t)
		s, err := Open(ctx, Options{URL: set.URL()})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = s.Close() }()
		if err := s.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.Client.Set(ctx, "k", "before", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if n, err := s.Client.Do(ctx, "WAIT", 1, 10000).Int(); err != nil || n != 1 {
			t.Fatalf("WAIT: %d replicas, %v", n, err)
		}
		set.Failover(t)
		if got, err := s.Client.Get(ctx, "k").Result(); err != nil || got != "before" {
			t.Fatalf("after the failover: %q, %v", got, err)
		}
		if err := s.Client.Set(ctx, "k", "after", 0).Err(); err != nil {
			t.Fatalf("a write after the failover: %v", err)
		}
	})
	t.Run("cluster", func(t *testing.T) {
		c := redistest.StartCluster(t)
		s, err := Open(ctx, Options{URL: c.URL()})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = s.Close() }()
		if _, ok := s.Client.(*redis.ClusterClient); !ok {
			t.Fatalf("a %T for %s", s.Client, c.URL())
		}
		if err := s.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
		for i := range 20 {
			if err := s.Client.Set(ctx, fmt.Sprint("k", i), i, 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
		if keys := redistest.Keys(t, s.Client, "k*"); len(keys) != 20 {
			t.Fatalf("keys %v", keys)
		}
	})
}
