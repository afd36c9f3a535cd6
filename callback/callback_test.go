package callback_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/callback"
	"github.com/hotline12345/hotline/internal/redistest"
	"github.com/hotline12345/hotline/internal/testclock"
)

func TestMain(m *testing.M) { os.Exit(redistest.RunTests(m)) }

var cst = appeal.DefaultLocation()

// TestSampledIsStable: the sample is the same on every run and node for
// an appeal, takes about its share, and depends on the seed.
func TestSampledIsStable(t *testing.T) {
	in, other := 0, 0
	for i := range 10000 {
		id := fmt.Sprintf("261127%04d", i)
		a, b := callback.Sampled("seed-1", id, 30), callback.Sampled("seed-1", id, 30)
		if a != b {
			t.Fatalf("%s sampled %v then %v", id, a, b)
		}
		if a {
			in++
		}
		if a != callback.Sampled("seed-2", id, 30) {
			other++
		}
		if !callback.Sampled("seed-1", id, 100) || callback.Sampled("seed-1", id, 0) {
			t.Fatalf("%s: 100 %% must take it and 0 %% must not", id)
		}
	}
	if in < 2800 || in > 3200 {
		t.Errorf("30 %% took %d of 10,000", in)
	}
	if other < 3000 {
		t.Errorf("another seed changed only %d answers", other)
	}
}

// TestWindows: calling windows at their edges, across midnight and on a
// day without one.
func TestWindows(t *testing.T) {
	w := callback.DefaultWindows(cst)
	at := func(d, h, m, s int) time.Time { return time.Date(2026, 11, d, h, m, s, 0, cst) } // 27 Nov 2026 is a Friday
	for _, tc := range []struct{ t, want time.Time }{
		{at(27, 8, 59, 59), at(27, 9, 0, 0)},
		{at(27, 9, 0, 0), at(27, 9, 0, 0)},
		{at(27, 11, 59, 59), at(27, 11, 59, 59)},
		{at(27, 12, 0, 0), at(27, 14, 0, 0)},
		{at(27, 19, 59, 0), at(27, 19, 59, 0)},
		{at(27, 20, 0, 0), at(28, 9, 0, 0)},
		{at(27, 23, 30, 0), at(28, 9, 0, 0)},
		{at(28, 0, 0, 1), at(28, 9, 0, 0)},
	} {
		if got := w.Next(tc.t); !got.Equal(tc.want) {
			t.Errorf("Next(%s) = %s, want %s", tc.t.Format("Mon 15:04:05"), got.Format("Mon 15:04:05"), tc.want.Format("Mon 15:04:05"))
		}
	}
	// No calls on Sundays: Saturday evening waits for Monday.
	w.Days[time.Sunday] = nil
	if got, want := w.Next(at(28, 21, 0, 0)), at(30, 9, 0, 0); !got.Equal(want) {
		t.Errorf("across a day without windows: %s, want %s", got, want)
	}
	for _, bad := range []string{"9-12", "12:00-09:00", "09:00"} {
		if _, err := callback.ParseSpan(bad); err == nil {
			t.Errorf("ParseSpan(%q) took it", bad)
		}
	}
	if s, err := callback.ParseSpan("14:00-24:00"); err != nil || s.To != 24*time.Hour {
		t.Errorf("ParseSpan(14:00-24:00) = %+v, %v", s, err)
	}
}

// rig is an appeal store and a visit store at a test clock.
type rig struct {
	rdb     redis.UniversalClient
	clock   *testclock.Clock
	appeals *appeal.Store
	visits  *callback.Store
}

func newRig(t *testing.T, sample map[appeal.Category]int) *rig {
	rdb := redistest.Start(t).Client(t)
	clock := testclock.New(time.Date(2026, 11, 27, 10, 0, 0, 0, cst))
	return &rig{rdb: rdb, clock: clock,
		appeals: appeal.NewStore(rdb, appeal.StoreOptions{Now: clock.Now}),
		visits:  callback.NewStore(rdb, callback.StoreOptions{Now: clock.Now, Sample: sample, Seed: "test-seed"})}
}

func (r *rig) appeal(t *testing.T, call, caller string, cat appeal.Category, consent bool) appeal.Appeal {
	t.Helper()
	a, err := r.appeals.Create(context.Background(), appeal.New{CallID: call, Caller: caller, Category: cat, Consent: appeal.Consent{Given: consent}})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func expired(a appeal.Appeal) appeal.ClockEvent {
	return appeal.ClockEvent{Appeal: a.ID, Kind: appeal.Expired, Stage: appeal.StageFeedback, Category: a.Category, Due: a.FeedbackDue}
}

// TestExpiredDecides: consent yes gets a visit, in the next calling
// window; no consent, a number not to be called and an appeal the sample
// leaves out get none, each saying why; a decision stands; the worklist
// has emergencies first.
func TestExpiredDecides(t *testing.T) {
	r := newRig(t, map[appeal.Category]int{appeal.Complex: 0})
	ctx := context.Background()
	general := r.appeal(t, "c1", "13800000001", appeal.General, true)
	emergency := r.appeal(t, "c2", "13800000002", appeal.Emergency, true)
	declined := r.appeal(t, "c3", "13800000003", appeal.General, false)
	dnc := r.appeal(t, "c4", "138-0000-0004", appeal.General, true)
	unsampled := r.appeal(t, "c5", "13800000005", appeal.Complex, true)
	if err := r.visits.AddDoNotCall(ctx, "13800000004", "asked never to be called", "supervisor"); err != nil {
		t.Fatal(err)
	}
	r.clock.Set(time.Date(2026, 11, 27, 21, 0, 0, 0, cst)) // after the day's windows
	for _, tc := range []struct {
		a    appeal.Appeal
		want callback.Decision
	}{
		{general, callback.Visited},
		{emergency, callback.Visited},
		{declined, callback.SkipNoConsent},
		{dnc, callback.SkipDoNotCall},
		{unsampled, callback.SkipNotSampled},
	} {
		d, err := r.visits.Expired(ctx, expired(tc.a), r.appeals)
		if err != nil || d != tc.want {
			t.Errorf("%s: %q %v, want %q", tc.a.ID, d, err, tc.want)
		}
	}
	v, err := r.visits.Get(ctx, general.ID)
	if err != nil || v.State != callback.Waiting || v.Kind != callback.ReturnVisit || !v.Due.Equal(time.Date(2026, 11, 28, 9, 0, 0, 0, cst)) {
		t.Errorf("visit %+v %v", v, err)
	}
	if _, err := r.visits.Get(ctx, declined.ID); err == nil {
		t.Errorf("a visit for an appeal without consent")
	}
	ids, err := r.visits.Waiting(ctx, 10)
	if err != nil || !slices.Equal(ids, []string{emergency.ID, general.ID}) {
		t.Errorf("worklist %v %v, want the emergency first", ids, err)
	}
	// The number is taken off the list: the decision made stands.
	if err := r.rdb.Del(ctx, "hotline:{visits}:dnc").Err(); err != nil {
		t.Fatal(err)
	}
	if d, err := r.visits.Expired(ctx, expired(dnc), r.appeals); err != nil || d != callback.SkipDoNotCall {
		t.Errorf("decided again: %q %v", d, err)
	}
	changes, err := r.visits.Changes(ctx, 10)
	if err != nil || len(changes) != 6 || changes[0].What != "processing time expired: skipped: not sampled" || changes[0].By != "hotline" {
		t.Errorf("audit %+v %v", changes, err)
	}
}

// TestConsumersDecideOnce: the clock engine's expired events, read by
// two nodes' consumers at once, make one decision per appeal; an event
// a killed consumer read and never acknowledged is taken over.
func TestConsumersDecideOnce(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	const n = 200
	var consented []string
	for i := range n {
		a := r.appeal(t, fmt.Sprintf("once-%d", i), fmt.Sprintf("1380000%04d", i), appeal.Livelihood, i%2 == 0)
		if i%2 == 0 {
			consented = append(consented, a.ID)
		}
	}
	r.clock.Add(72 * time.Hour) // every deadline has passed
	engine := appeal.NewEngine(r.appeals, appeal.EngineOptions{Node: "n1", Now: r.clock.Now, Log: zerolog.Nop()})
	for {
		got, err := engine.Tick(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got == 0 {
			break
		}
	}
	// A consumer that read every event and died before deciding any.
	stream := r.appeals.ClockStream()
	if err := r.rdb.XGroupCreateMkStream(ctx, stream, callback.Group, "0").Err(); err != nil {
		t.Fatal(err)
	}
	if err := r.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: callback.Group, Consumer: "killed/1", Streams: []string{stream, ">"}, Count: 10}).Err(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	decided := map[string][]callback.Decision{}
	var wg sync.WaitGroup
	for i := range 2 {
		c := &callback.Consumer{Store: r.visits, Appeals: r.appeals, Name: fmt.Sprintf("n%d/1", i+1), ClaimAfter: 50 * time.Millisecond,
			Decided: func(ev appeal.ClockEvent, d callback.Decision) {
				mu.Lock()
				decided[ev.Appeal] = append(decided[ev.Appeal], d)
				mu.Unlock()
			}, Log: zerolog.Nop()}
		wg.Go(func() {
			deadline := time.Now().Add(20 * time.Second)
			for time.Now().Before(deadline) {
				if err := c.Round(ctx, 100*time.Millisecond); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				done := len(decided) == n
				mu.Unlock()
				if done {
					return
				}
			}
		})
	}
	wg.Wait()
	if len(decided) != n {
		t.Fatalf("%d appeals decided, want %d", len(decided), n)
	}
	for id, ds := range decided {
		for _, d := range ds[1:] {
			if d != ds[0] {
				t.Errorf("%s decided %v", id, ds)
			}
		}
	}
	ids, err := r.visits.Waiting(ctx, 1000)
	if err != nil || len(ids) != len(consented) {
		t.Errorf("%d visits waiting, want %d: %v", len(ids), len(consented), err)
	}
	pending, err := r.rdb.XPending(ctx, stream, callback.Group).Result()
	if err != nil || pending.Count != 0 {
		t.Errorf("events left unacknowledged: %+v %v", pending, err)
	}
}

// TestFedBackDecides: a visit decided at the feedback stands when the
// processing time expires later; the audit says which decided it.
func TestFedBackDecides(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	a := r.appeal(t, "fb-1", "13800000041", appeal.General, true)
	if d, err := r.visits.FedBack(ctx, a.ID, r.appeals); err != nil || d != callback.Visited {
		t.Fatalf("at the feedback: %q %v", d, err)
	}
	v, err := r.visits.Get(ctx, a.ID)
	if err != nil || !v.Expired.Equal(a.FeedbackDue) {
		t.Errorf("visit %+v %v", v, err)
	}
	if d, err := r.visits.Expired(ctx, expired(a), r.appeals); err != nil || d != callback.Visited {
		t.Errorf("at the expiry: %q %v", d, err)
	}
	if f, err := r.visits.Figures(ctx); err != nil || f.ByState[callback.Waiting][callback.ReturnVisit] != 1 {
		t.Errorf("figures %+v %v, want one visit", f, err)
	}
	changes, err := r.visits.Changes(ctx, 5)
	if err != nil || len(changes) != 1 || changes[0].What != "feedback arrived: visit" {
		t.Errorf("audit %+v %v", changes, err)
	}
}
