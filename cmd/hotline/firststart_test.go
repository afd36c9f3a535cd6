package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// runMainEnv makes the test binary run main instead of the tests, so that
// a test runs "hotline" as its own process, as an operator would.
const runMainEnv = "RUN_HOTLINE_MAIN_IN_TEST"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// process is "hotline serve" running in dir.
type process struct {
	cmd      *exec.Cmd
	notice   string // the first start's notice, if any
	api      string
	stateDir string // as the server says at start
	done     chan error
	log      *logLines // the messages logged after it served
}

// logLines are the messages of a process's log, as they come.
type logLines struct {
	mu       sync.Mutex
	messages []string
	changed  chan struct{} // closed at the next message
}

func (l *logLines) add(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.messages = append(l.messages, msg)
	close(l.changed)
	l.changed = make(chan struct{})
}

// await waits until a message contains msg, or fails after a minute.
func (l *logLines) await(t *testing.T, msg string) {
	t.Helper()
	timeout := time.After(time.Minute)
	for {
		l.mu.Lock()
		found := slices.ContainsFunc(l.messages, func(m string) bool { return strings.Contains(m, msg) })
		changed, seen := l.changed, l.messages
		l.mu.Unlock()
		if found {
			return
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("no message with %q in a minute; messages: %q", msg, seen)
		}
	}
}

// command is "hotline args..." as its own process in dir, with no
// HOTLINE_ variable from the tests' environment, and state kept under
// state (as $XDG_STATE_HOME).
func command(t *testing.T, dir, state string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOTLINE_") && !strings.HasPrefix(kv, "REDIS_URL=") &&
			!strings.HasPrefix(kv, "XDG_STATE_HOME=") && !strings.HasPrefix(kv, "STATE_DIRECTORY=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, runMainEnv+"=1", "XDG_STATE_HOME="+state)
	return cmd
}

// serveIn starts "hotline serve" on its embedded defaults in dir, its
// state under state, with free ports and more flags, and waits until it
// serves HTTP.
func serveIn(t *testing.T, dir, state string, flags ...string) *process {
	t.Helper()
	args := append([]string{"serve", "--sip-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"}, flags...)
	p := &process{cmd: command(t, dir, state, args...), done: make(chan error, 1), log: &logLines{changed: make(chan struct{})}}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var notice strings.Builder
	deadline := time.After(time.Minute)
	for p.api == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("hotline serve ended before serving: %s", notice.String())
			}
			var entry struct {
				Message, Addr, Dir string
				TLS                bool
			}
			if json.Unmarshal([]byte(line), &entry) == nil && entry.Message != "" {
				switch entry.Message {
				case "http listening":
					p.api = "http://" + entry.Addr
					if entry.TLS {
						p.api = "https://" + entry.Addr
					}
				case "state directory":
					p.stateDir = entry.Dir
				}
				continue
			}
			notice.WriteString(line + "\n")
		case <-deadline:
			t.Fatalf("hotline serve did not serve HTTP within a minute: %s", notice.String())
		}
	}
	p.notice = notice.String()
	go func() {
		// The rest of the log, read so the process never blocks on it.
		for line := range lines {
			var entry struct{ Message string }
			if json.Unmarshal([]byte(line), &entry) == nil {
				p.log.add(entry.Message)
			}
		}
	}()
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop sends SIGTERM and waits for the drain to end.
func (p *process) stop(t *testing.T) {
	t.Helper()
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		_ = p.cmd.Process.Kill()
		t.Error("hotline serve did not stop on SIGTERM")
	}
}

// tokenIn is the token a notice shows.
func tokenIn(t *testing.T, notice string) string {
	t.Helper()
	_, after, ok := strings.Cut(notice, "export HOTLINE_TOKEN=")
	if !ok {
		t.Fatalf("no token in the first start's notice:\n%s", notice)
	}
	return strings.Fields(after)[0]
}

// whoami runs "hotline whoami" against api with token.
func whoami(t *testing.T, api, token string) (int, string) {
	t.Helper()
	code, out, errs := environ{"HOTLINE_API": api, "HOTLINE_TOKEN": token}.hotline("whoami")
	return code, out + errs
}

// TestFirstStart: the README's start on a fresh machine gives an admin
// token once; an operator on the host mints another without a token, from
// the running server's store or with no server running, and the tokens
// outlive restarts.
func TestFirstStart(t *testing.T) {
	t.Parallel()
	dir, state := t.TempDir(), t.TempDir()
	p := serveIn(t, dir, state)
	if want := filepath.Join(state, "hotline"); p.stateDir != want {
		t.Errorf("state directory %q, want %q ($XDG_STATE_HOME/hotline)", p.stateDir, want)
	}
	if _, err := os.Stat(filepath.Join(state, "hotline", "redis")); err != nil {
		t.Errorf("the embedded Redis keeps no data under the state directory: %v", err)
	}
	first := tokenIn(t, p.notice)
	if code, out := whoami(t, p.api, first); code != 0 || !strings.HasPrefix(out, "admin: admin") {
		t.Fatalf("whoami with the first token: %d %s", code, out)
	}

	// Beside the running server, without a token: the token alone on
	// standard output.
	mint := func() string {
		t.Helper()
		cmd := command(t, dir, state, "tokens", "create", "--role", "admin", "--expires", "1d")
		var errs strings.Builder
		cmd.Stderr = &errs
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("tokens create: %v: %s", err, errs.String())
		}
		tok := strings.TrimSpace(string(out))
		if !strings.HasPrefix(tok, "hlt_") || strings.Count(string(out), "\n") != 1 {
			t.Fatalf("tokens create printed %q, want the token alone", out)
		}
		return tok
	}
	beside := mint()
	if code, out := whoami(t, p.api, beside); code != 0 || !strings.Contains(out, ": admin") {
		t.Fatalf("whoami with the minted token: %d %s", code, out)
	}
	p.stop(t)

	// With no server running, then a restart from another folder: the
	// same state, so no second notice, and every token still good.
	alone := mint()
	p = serveIn(t, t.TempDir(), state)
	if strings.Contains(p.notice, "HOTLINE_TOKEN") {
		t.Errorf("a second start printed a token again:\n%s", p.notice)
	}
	for _, tok := range []string{first, beside, alone} {
		if code, out := whoami(t, p.api, tok); code != 0 {
			t.Errorf("after a restart, whoami: %d %s", code, out)
		}
	}
}
