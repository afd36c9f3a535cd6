package appeal_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/internal/redistest"
	"github.com/hotline12345/hotline/internal/testclock"
	"github.com/hotline12345/hotline/internal/webhook"
)

// fired collects the events an engine fired.
type fired struct {
	mu  sync.Mutex
	evs []appeal.ClockEvent
}

func (f *fired) add(ev appeal.ClockEvent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.evs = append(f.evs, ev)
}

// take returns the events fired since the last take.
func (f *fired) take() []appeal.ClockEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.evs
	f.evs = nil
	return out
}

func engineOn(t *testing.T, s *appeal.Store, clock *testclock.Clock, node string, f *fired) *appeal.Engine {
	return appeal.NewEngine(s, appeal.EngineOptions{Node: node, Now: clock.Now, Fired: f.add,
		Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)})
}

// tickAt moves the clock to at and fires what is due.
func tickAt(t *testing.T, e *appeal.Engine, clock *testclock.Clock, at time.Time) {
	t.Helper()
	clock.Set(at)
	if _, err := e.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func kinds(evs []appeal.ClockEvent) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, string(ev.Kind)+" "+ev.Stage)
	}
	slices.Sort(out)
	return out
}

// TestClockEventsOfAnEmergency: an emergency appeal dispatched 20 minutes
// after it came in and left unsigned is urged at 12 minutes after the
// dispatch and overdue at 15; its feedback is urged when a fifth of its
// 2 hours is left, overdue at 2 hours, and its processing time expires
// then. The dispatch stage, done in time, is neither urged nor overdue.
// Each event is in the appeal's history.
func TestClockEventsOfAnEmergency(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		created := time.Date(2026, 11, 27, 10, 0, 0, 0, cst)
		s, clock := lifecycleStore(t, rdb, created, nil)
		f := &fired{}
		e := engineOn(t, s, clock, "n1", f)
		a, err := s.Create(ctx, newAppeal("clock-emergency", appeal.Emergency))
		if err != nil {
			t.Fatal(err)
		}
		tickAt(t, e, clock, created.Add(20*time.Minute))
		if got := f.take(); len(got) != 0 {
			t.Fatalf("fired before anything was due: %v", kinds(got))
		}
		dispatched := clock.Now()
		step(t, s, a.ID, dispatchTo("water"))

		for _, tc := range []struct {
			at   time.Duration
			want []string
		}{
			{12*time.Minute - time.Second, nil},
			{12 * time.Minute, []string{"urge sign"}},
			{15*time.Minute - time.Second, nil},
			{15 * time.Minute, []string{"overdue sign"}},
			{2*time.Hour - 24*time.Minute, []string{"urge feedback"}},
			{2 * time.Hour, []string{"expired feedback", "overdue feedback"}},
			{3 * time.Hour, nil},
		} {
			tickAt(t, e, clock, dispatched.Add(tc.at))
			got := f.take()
			if !slices.Equal(kinds(got), tc.want) {
				t.Errorf("at dispatch + %s: fired %v, want %v", tc.at, kinds(got), tc.want)
			}
			for _, ev := range got {
				if ev.Appeal != a.ID || ev.Late || ev.Node != "n1" || ev.State != appeal.Dispatched || !ev.Consent || ev.Organizers[0] != "water" {
					t.Errorf("event %+v", ev)
				}
			}
		}
		h, err := s.History(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		var steps []string
		for _, ev := range h {
			steps = append(steps, string(ev.Step)+" "+ev.Stage)
		}
		want := []string{"created ", "dispatch ", "urge sign", "overdue sign", "urge feedback"}
		if len(steps) != 7 || !slices.Equal(steps[:5], want) {
			t.Errorf("history %q", steps)
		}
		evs, _, err := s.ClockEvents(ctx, 10, "")
		if err != nil || len(evs) != 5 || evs[0].ID == "" {
			t.Errorf("clock events %+v %v", evs, err)
		}
	})
}

// TestStepsMoveTheClocks: a sign in time takes the sign stage's events
// away; a return starts the dispatch stage's again from the return, and
// a re-dispatch the organizers'.
func TestStepsMoveTheClocks(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	ctx := context.Background()
	created := time.Date(2026, 11, 27, 10, 0, 0, 0, cst)
	s, clock := lifecycleStore(t, rdb, created, nil)
	f := &fired{}
	e := engineOn(t, s, clock, "n1", f)
	a, err := s.Create(ctx, newAppeal("clock-moves", appeal.Livelihood)) // 2 h, 30 min, 24 h
	if err != nil {
		t.Fatal(err)
	}
	clock.Add(time.Hour)
	step(t, s, a.ID, dispatchTo("water"))
	clock.Add(10 * time.Minute)
	step(t, s, a.ID, appeal.Action{Step: appeal.Sign, Organizer: "water"})
	tickAt(t, e, clock, clock.Now().Add(time.Hour))
	if got := f.take(); len(got) != 0 {
		t.Errorf("after a sign in time: %v", kinds(got))
	}
	returned := clock.Now()
	step(t, s, a.ID, appeal.Action{Step: appeal.Return, Organizer: "water", Reason: "a housing matter"})
	// Dispatch again within 2 h of the return: urged at 1 h 36 min.
	tickAt(t, e, clock, returned.Add(96*time.Minute))
	if got := kinds(f.take()); !slices.Equal(got, []string{"urge dispatch"}) {
		t.Errorf("after the return: %v", got)
	}
}

// TestEnginesFireEachEventOnce: three engines on one Redis, 10,000 appeals
// due in the same minute: every event fires exactly once, whichever
// engine takes it.
func TestEnginesFireEachEventOnce(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	ctx := context.Background()
	created := time.Date(2026, 11, 27, 10, 0, 0, 0, cst)
	const appeals = 10000
	s, clock := lifecycleStore(t, rdb, created, nil)
	// Made from 8 goroutines, each created in the minute after 10:00.
	var next atomic.Int64
	var made sync.WaitGroup
	for range 8 {
		made.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= appeals {
					return
				}
				n := newAppeal(fmt.Sprintf("once-%d", i), appeal.Emergency)
				n.At = created.Add(time.Duration(i) * time.Minute / appeals)
				if _, err := s.Create(ctx, n); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	made.Wait()
	// Every emergency's events are due within 3 h 16 min of creation:
	// all of them are due at once.
	clock.Set(created.Add(4 * time.Hour))
	var wg sync.WaitGroup
	counts := make([]*fired, 3)
	for i := range counts {
		counts[i] = &fired{}
		st := appeal.NewStore(rdb, appeal.StoreOptions{Now: clock.Now})
		e := appeal.NewEngine(st, appeal.EngineOptions{Node: fmt.Sprintf("n%d", i+1), Now: clock.Now, Batch: 100, Fired: counts[i].add,
			Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)})
		wg.Go(func() {
			for {
				n, err := e.Tick(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				if n == 0 {
					return
				}
			}
		})
	}
	wg.Wait()
	seen := map[string]int{}
	engines := 0
	for _, c := range counts {
		evs := c.take()
		if len(evs) > 0 {
			engines++
		}
		for _, ev := range evs {
			seen[ev.Appeal+" "+string(ev.Kind)+" "+ev.Stage]++
		}
	}
	// Per appeal: urge and overdue of dispatch, sign and feedback, and
	// the expiry.
	if len(seen) != appeals*7 {
		t.Errorf("%d distinct events, want %d", len(seen), appeals*7)
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s fired %d times", k, n)
		}
	}
	if engines < 2 {
		t.Logf("only %d engine(s) took events", engines)
	}
	if n, _, err := s.Pending(ctx); err != nil || n != 0 {
		t.Errorf("%d events still pending: %v", n, err)
	}
	stream, err := rdb.XLen(ctx, "hotline:{appeals}:clock:events").Result()
	if err != nil || stream != appeals*7 {
		t.Errorf("%d events in the stream, want %d: %v", stream, appeals*7, err)
	}
}

// TestEventsDueWhileEveryEngineWasDown fire once each, late, when an
// engine starts again an hour later.
func TestEventsDueWhileEveryEngineWasDown(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	ctx := context.Background()
	created := time.Date(2026, 11, 27, 10, 0, 0, 0, cst)
	s, clock := lifecycleStore(t, rdb, created, nil)
	a, err := s.Create(ctx, newAppeal("down", appeal.Emergency))
	if err != nil {
		t.Fatal(err)
	}
	f := &fired{}
	e := engineOn(t, s, clock, "n1", f)
	// Nothing ran from creation until an hour past the dispatch deadline.
	tickAt(t, e, clock, created.Add(2*time.Hour))
	got := f.take()
	if want := []string{"overdue dispatch", "overdue sign", "urge dispatch", "urge sign"}; !slices.Equal(kinds(got), want) {
		t.Fatalf("after an hour down: %v, want %v", kinds(got), want)
	}
	for _, ev := range got {
		if !ev.Late || ev.Appeal != a.ID {
			t.Errorf("event %+v: want late", ev)
		}
	}
	tickAt(t, e, clock, created.Add(2*time.Hour+time.Second))
	if got := f.take(); len(got) != 0 {
		t.Errorf("fired again: %v", kinds(got))
	}
}

// TestClockCounts: the counts by state and category follow the steps.
func TestClockCounts(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	ctx := context.Background()
	s, _ := lifecycleStore(t, rdb, time.Date(2026, 11, 27, 10, 0, 0, 0, cst), nil)
	a, err := s.Create(ctx, newAppeal("count-1", appeal.General))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, newAppeal("count-2", appeal.General)); err != nil {
		t.Fatal(err)
	}
	step(t, s, a.ID, dispatchTo("water"))
	c, err := s.Counts(ctx)
	if err != nil || c[appeal.Received][appeal.General] != 1 || c[appeal.Dispatched][appeal.General] != 1 {
		t.Errorf("counts %v %v", c, err)
	}
}

// TestChaseList: what to chase, per organizer, most urgent first: the
// overdue, and those urged but not past their deadline.
func TestChaseList(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	ctx := context.Background()
	created := time.Date(2026, 11, 27, 10, 0, 0, 0, cst)
	s, clock := lifecycleStore(t, rdb, created, nil)
	mk := func(call string, cat appeal.Category) appeal.Appeal {
		a, err := s.Create(ctx, newAppeal(call, cat))
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	e1 := mk("chase-e1", appeal.Emergency) // dispatch due 11:00
	clock.Add(10 * time.Minute)
	e2 := mk("chase-e2", appeal.Emergency) // dispatch due 11:10
	l := mk("chase-l", appeal.Livelihood)  // dispatch due 12:10
	step(t, s, l.ID, dispatchTo("water"))  // sign due 10:40
	g := mk("chase-g", appeal.General)     // due tomorrow

	clock.Set(created.Add(65 * time.Minute)) // 11:05
	over, err := s.ChaseList(ctx, appeal.OverdueNow, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(over) != 2 || over[0].Organizer != "water" || over[0].Items[0].Appeal.ID != l.ID || over[0].Items[0].Stage != "sign" ||
		over[1].Organizer != "" || over[1].Items[0].Appeal.ID != e1.ID || over[0].Items[0].Seconds != 25*60 {
		t.Errorf("overdue %+v", over)
	}
	soon, err := s.ChaseList(ctx, appeal.DueSoon, 10)
	if err != nil {
		t.Fatal(err)
	}
	// e2's dispatch was urged at 10:58; g's is not urged until 05:12 tomorrow.
	if len(soon) != 1 || len(soon[0].Items) != 1 || soon[0].Items[0].Appeal.ID != e2.ID || soon[0].Items[0].Seconds != 5*60 {
		t.Errorf("due soon %+v (general %s)", soon, g.ID)
	}
	step(t, s, l.ID, appeal.Action{Step: appeal.Sign, Organizer: "water"})
	over, _ = s.ChaseList(ctx, appeal.OverdueNow, 10)
	if len(over) != 1 || over[0].Items[0].Appeal.ID != e1.ID {
		t.Errorf("after the sign: %+v", over)
	}
	if _, err := s.ChaseList(ctx, "someday", 10); !errors.Is(err, appeal.ErrInvalid) {
		t.Errorf("a bad list: %v", err)
	}
}

// TestClockWebhook: the engine delivers its clock events to the webhook,
// signed.
func TestClockWebhook(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	ctx := context.Background()
	created := time.Date(2026, 11, 27, 10, 0, 0, 0, cst)
	s, clock := lifecycleStore(t, rdb, created, nil)
	const secret = "s3cret-s3cret-s3cret"
	got := make(chan appeal.ClockEvent, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := webhook.VerifySignature(secret, r.Header, body, time.Now(), time.Minute); err != nil {
			t.Errorf("signature: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var ev appeal.ClockEvent
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Errorf("body %s: %v", body, err)
		}
		got <- ev
	}))
	defer srv.Close()
	a, err := s.Create(ctx, newAppeal("hook", appeal.Emergency))
	if err != nil {
		t.Fatal(err)
	}
	clock.Set(created.Add(50 * time.Minute)) // the dispatch urge is due
	e := appeal.NewEngine(s, appeal.EngineOptions{Node: "n1", Now: clock.Now, Consumer: "n1/1",
		Webhook: webhook.Options{URL: srv.URL, Secret: secret}, Log: zerolog.New(zerolog.NewTestWriter(t))})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); e.Run(runCtx) }()
	defer func() { cancel(); <-done }()
	select {
	case ev := <-got:
		if ev.Appeal != a.ID || ev.Kind != appeal.Urge || ev.Stage != appeal.StageDispatch || ev.ID == "" {
			t.Errorf("delivered %+v", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("nothing delivered")
	}
}
