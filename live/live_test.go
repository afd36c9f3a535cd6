package live

import (
	"context"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hotline12345/hotline/internal/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.RunTests(m)) }

// run starts f's Run for the test's life, and returns once it reads.
func run(t *testing.T, f *Feed) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// next waits for a change of topic on ch, skipping others.
func next(t *testing.T, ch <-chan Change, topic string) Change {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case c := <-ch:
			if c.Topic == topic {
				return c
			}
		case <-deadline:
			t.Fatalf("no %s change within 10 s", topic)
		}
	}
}

// TestChangesReachEveryNode checks that a change published on one node
// reaches the subscribers of another, and that a session's end names it.
func TestChangesReachEveryNode(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		a, b := New(rdb, Options{}), New(rdb, Options{})
		ch, stop := b.Subscribe()
		defer stop()
		run(t, b)
		// Run reads from the changes after it starts: publish until one
		// arrives, then each publish arrives.
		got := make(chan Change, 1)
		go func() { got <- next(t, ch, Agents) }()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
	wait:
		for {
			select {
			case c := <-got:
				if c.At.IsZero() {
					t.Error("a change without its time")
				}
				break wait
			case <-tick.C:
				a.Publish(Agents)
			}
		}
		if err := a.EndSession(context.Background(), "0123456789abcdef"); err != nil {
			t.Fatal(err)
		}
		if c := next(t, ch, Session); c.ID != "0123456789abcdef" {
			t.Fatalf("session change %+v; want the token's id", c)
		}
	})
}

// TestCoalesce checks that a burst of one topic goes out as at most two
// changes: the first at once, the rest as one at the end of the window.
func TestCoalesce(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	f := New(rdb, Options{Coalesce: time.Hour})
	for range 100 {
		f.Publish(Queue)
	}
	f.Publish(Agents)
	// The first of each topic is written at once; the queue's others wait
	// for the hour's end.
	key := f.key
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := rdb.XLen(context.Background(), key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 2 {
			break
		}
		if n > 2 || time.Now().After(deadline) {
			t.Fatalf("%d changes written for a burst of two topics; want 2", n)
		}
		runtime.Gosched()
	}
	f.mu.Lock()
	held := len(f.pending)
	for _, tm := range f.pending {
		tm.Stop()
	}
	f.mu.Unlock()
	if held != 1 {
		t.Fatalf("%d topics held back; want 1 (the queue's)", held)
	}
}

// TestSlowSubscriber checks that a subscriber that falls behind gets a
// Resync, not an unbounded backlog, and others are not held up.
func TestSlowSubscriber(t *testing.T) {
	f := New(nil, Options{Buffer: 2})
	slow, stop := f.Subscribe()
	defer stop()
	for range 5 {
		f.deliver(Change{Topic: Queue})
	}
	if len(slow) != 2 {
		t.Fatalf("backlog %d; want it bounded at 2", len(slow))
	}
	<-slow
	<-slow
	f.deliver(Change{Topic: Agents})
	if c := <-slow; c.Topic != Resync {
		t.Fatalf("after falling behind: %s; want resync", c.Topic)
	}
	if c := <-slow; c.Topic != Agents {
		t.Fatalf("after the resync: %s; want the change", c.Topic)
	}
}

// TestRedisRestart checks that the feed reads again after Redis comes
// back, telling subscribers to resync.
func TestRedisRestart(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	f := New(rdb, Options{})
	ch, stop := f.Subscribe()
	defer stop()
	run(t, f)
	publishUntil(t, f, ch, Agents)
	srv.Restart(t)
	publishUntil(t, f, ch, Visits)
}

func publishUntil(t *testing.T, f *Feed, ch <-chan Change, topic string) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case c := <-ch:
			if c.Topic == topic {
				return
			}
		case <-tick.C:
			f.Publish(topic)
		case <-deadline:
			t.Fatalf("no %s change within 20 s", topic)
		}
	}
}
