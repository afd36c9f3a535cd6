package app_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/app"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/internal/redistest"
)

// syncBuffer is a log shared by hotline's goroutines and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// messages are the log's lines' messages at level.
func (b *syncBuffer) messages(t *testing.T, level string) []string {
	t.Helper()
	text := b.String()
	var out []string
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		var line struct{ Level, Message string }
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if line.Level == level {
			out = append(out, line.Message)
		}
	}
	return out
}

// waitFor polls hotline's log until a line at level has a message
// containing msg, count times; hotline ending first fails the test.
func (r *running) waitFor(t *testing.T, level, msg string, count int) {
	t.Helper()
	deadline := time.After(time.Minute)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		n := 0
		for _, m := range r.log.messages(t, level) {
			if strings.Contains(m, msg) {
				n++
			}
		}
		if n >= count {
			return
		}
		select {
		case <-r.done:
			t.Fatalf("hotline ended (%v) before %d %s lines with %q:\n%s", r.err, count, level, msg, r.log)
		case <-deadline:
			t.Fatalf("not %d %s lines with %q in a minute:\n%s", count, level, msg, r.log)
		case <-tick.C:
		}
	}
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// running is app.Run in a goroutine.
type running struct {
	ready  chan app.Addrs
	done   chan struct{} // closed when Run has returned err
	err    error
	cancel context.CancelCauseFunc
	log    *syncBuffer
}

func run(t *testing.T, redisURL string) *running {
	t.Helper()
	cfg := config.Default()
	cfg.SIP.Listen, cfg.HTTP.Listen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Redis.URL = redisURL
	r := &running{ready: make(chan app.Addrs, 1), done: make(chan struct{}), log: &syncBuffer{}}
	ctx, cancel := context.WithCancelCause(context.Background())
	r.cancel = cancel
	go func() {
		defer close(r.done)
		r.err = app.Run(ctx, app.Options{
			Config: cfg,
			Logger: zerolog.New(r.log).Level(zerolog.InfoLevel),
			Ready:  func(a app.Addrs) { r.ready <- a },
		})
	}()
	t.Cleanup(func() {
		cancel(app.ErrInterrupt)
		select {
		case <-r.done:
		case <-time.After(2 * time.Minute):
			t.Errorf("hotline did not stop")
		}
	})
	return r
}

// Started while its Redis does not answer, hotline waits for it, saying
// so at growing intervals, and serves once it answers.
func TestStartWaitsForRedis(t *testing.T) {
	t.Parallel()
	srv := redistest.New(t)
	h := run(t, srv.URL())
	h.waitFor(t, "warn", "unreachable: retrying in 1s (since ", 1)
	h.waitFor(t, "warn", "unreachable: retrying in 2s (since ", 1)
	select {
	case <-h.done:
		t.Fatalf("hotline ended while Redis did not answer: %v", h.err)
	case <-h.ready:
		t.Fatal("hotline serves without Redis")
	default:
	}

	srv.Start(t)
	var addrs app.Addrs
	select {
	case addrs = <-h.ready:
	case <-h.done:
		t.Fatalf("hotline ended once Redis answered: %v", h.err)
	case <-time.After(time.Minute):
		t.Fatalf("hotline does not serve a minute after Redis answers:\n%s", h.log)
	}
	res, err := http.Get("http://" + addrs.HTTP.String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %s", res.Status)
	}
	h.waitFor(t, "info", "redis at "+srv.URL()+" answers", 1)
}

// Stopped while it waits for Redis, hotline stops at once, and that is no
// error.
func TestStopWhileWaitingForRedis(t *testing.T) {
	t.Parallel()
	h := run(t, redistest.New(t).URL())
	h.waitFor(t, "warn", "unreachable: retrying in", 1)
	h.cancel(app.ErrDrain)
	select {
	case <-h.done:
		if h.err != nil {
			t.Fatalf("Run: %v, want nil for a stop", h.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("hotline still waits for Redis after it was stopped")
	}
	if len(h.ready) != 0 {
		t.Fatal("hotline served without Redis")
	}
}
