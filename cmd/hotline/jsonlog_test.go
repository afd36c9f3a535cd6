package main

import (
	"bufio"
	"encoding/json"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/internal/redistest"
	"github.com/hotline12345/hotline/internal/sipptest"
)

// TestLogIsJSONOnly: "hotline serve" started while its Redis does not
// answer waits for it, saying so, then serves calls over UDP and TCP; all
// it writes to stderr meanwhile is JSON lines, go-redis's and sipgo's
// own logging included.
func TestLogIsJSONOnly(t *testing.T) {
	t.Parallel()
	// A Redis that has an admin already, so that no first-start notice
	// (text for the operator, not log) is printed; then it goes away.
	srv := redistest.Start(t)
	if _, err := auth.NewStore(srv.Client(t), auth.StoreOptions{}).AddUser(t.Context(),
		auth.UserSpec{Name: "root", Roles: []auth.Role{auth.Admin}, Password: "Correct-Horse-9", By: "test"}); err != nil {
		t.Fatal(err)
	}
	srv.Kill(t)

	cmd := command(t, t.TempDir(), t.TempDir(), "serve", "--sip-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0")
	// At debug, sipgo's connection code logs every connection through its
	// package-wide logger.
	cmd.Env = append(cmd.Env, "REDIS_URL="+srv.URL(), "HOTLINE_LOG_LEVEL=debug")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var all []string
	// next returns the next line that contains want.
	next := func(want string) string {
		t.Helper()
		deadline := time.After(time.Minute)
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					t.Fatalf("hotline serve ended before a line with %q:\n%s", want, strings.Join(all, "\n"))
				}
				all = append(all, line)
				if strings.Contains(line, want) {
					return line
				}
			case <-deadline:
				t.Fatalf("no line with %q in a minute:\n%s", want, strings.Join(all, "\n"))
			}
		}
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	go func() { exited <- cmd.Wait() }()

	next("unreachable: retrying in 1s")
	next("unreachable: retrying in 2s")
	srv.Start(t)
	// SIP listens once HTTP does.
	next(`"http listening"`)
	var sip struct{ Addr string }
	if err := json.Unmarshal([]byte(next(`"sip listening"`)), &sip); err != nil {
		t.Fatal(err)
	}
	target := netip.MustParseAddrPort(sip.Addr)
	for _, transport := range []string{"u1", "t1"} {
		res := sipptest.Run(t, target, sipptest.Scenario{Caller: "1390000", Hangup: true,
			Actions: []sipptest.Action{{Pause: time.Second}}}, sipptest.Options{Transport: transport})
		if res.Successful != 1 {
			t.Fatalf("a call over %s: %s", transport, res.Output)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for line := range lines {
		all = append(all, line)
	}
	if err := <-exited; err != nil {
		t.Errorf("hotline serve: %v", err)
	}
	stopped = true

	goRedis, sipgo := 0, 0
	for _, line := range all {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Errorf("not a JSON line: %q", line)
			continue
		}
		if entry["level"] == nil || entry["message"] == nil || entry["time"] == nil {
			t.Errorf("a line without level, message or time: %q", line)
		}
		switch entry["component"] {
		case "go-redis":
			goRedis++
		case "sipgo":
			sipgo++
		}
	}
	// go-redis said it could not dial while Redis was away, and sipgo
	// spoke of its TCP connection: the test saw their lines, as JSON.
	if goRedis == 0 || sipgo == 0 {
		t.Errorf("%d lines of go-redis's own, %d of sipgo's, want some of each:\n%s", goRedis, sipgo, strings.Join(all, "\n"))
	}
}
