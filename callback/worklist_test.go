package callback_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/callback"
)

// visit makes an appeal of cat with consent and decides its visit.
func (r *rig) visit(t *testing.T, call, caller string, cat appeal.Category) callback.Visit {
	t.Helper()
	a := r.appeal(t, call, caller, cat, true)
	if d, err := r.visits.Expired(context.Background(), expired(a), r.appeals); err != nil || d != callback.Visited {
		t.Fatalf("%s: %q %v", a.ID, d, err)
	}
	v, err := r.visits.Get(context.Background(), a.ID)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestNextAndLeases: emergencies first, then by due time; only what is
// due; a visit whose lease ran out comes back and goes to the next agent
// who asks; only the lease's holder renews it.
func TestNextAndLeases(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	general := r.visit(t, "g", "13800000001", appeal.General)
	r.clock.Add(time.Minute)
	emergency := r.visit(t, "e", "13800000002", appeal.Emergency)
	r.clock.Set(time.Date(2026, 11, 27, 20, 30, 0, 0, cst))
	tomorrow := r.visit(t, "t", "13800000003", appeal.Emergency) // due at 09:00 tomorrow
	r.clock.Set(time.Date(2026, 11, 27, 10, 5, 0, 0, cst))

	l1, err := r.visits.Next(ctx, "visitor-1", 0)
	if err != nil || l1.Visit.ID != emergency.ID || !l1.Until.Equal(r.clock.Now().Add(callback.DefaultLease)) {
		t.Fatalf("first: %+v %v, want the emergency", l1, err)
	}
	l2, err := r.visits.Next(ctx, "visitor-2", 0)
	if err != nil || l2.Visit.ID != general.ID {
		t.Fatalf("second: %+v %v, want the general", l2, err)
	}
	if _, err := r.visits.Next(ctx, "visitor-3", 0); !errors.Is(err, callback.ErrNone) {
		t.Fatalf("third: %v, want none due (%s is due tomorrow)", err, tomorrow.ID)
	}
	if _, err := r.visits.Renew(ctx, emergency.ID, "visitor-2", 0); !errors.Is(err, callback.ErrNotLeased) {
		t.Errorf("renewed by another agent: %v", err)
	}
	r.clock.Add(5 * time.Minute)
	if _, err := r.visits.Renew(ctx, general.ID, "visitor-2", 0); err != nil {
		t.Fatal(err)
	}
	// visitor-1's lease runs out; visitor-2's was renewed.
	r.clock.Add(6 * time.Minute)
	l3, err := r.visits.Next(ctx, "visitor-3", 0)
	if err != nil || l3.Visit.ID != emergency.ID {
		t.Fatalf("after the lease ran out: %+v %v, want the emergency back", l3, err)
	}
	if _, err := r.visits.Attempted(ctx, emergency.ID, "visitor-1", callback.Attempt{Outcome: callback.Completed, Answers: &callback.Answers{Response: callback.Contacted, Solution: callback.Solved, Satisfaction: callback.Satisfied}}, ""); !errors.Is(err, callback.ErrNotLeased) {
		t.Errorf("an attempt after the lease ran out: %v", err)
	}
	if _, err := r.visits.Next(ctx, "visitor-1", 0); !errors.Is(err, callback.ErrNone) {
		t.Errorf("the renewed lease's visit was taken: %v", err)
	}
}

// TestAttemptsAndRetries: each outcome's next step, the most attempts,
// calling windows, and a refusal putting the number on the do-not-call
// list.
func TestAttemptsAndRetries(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	take := func(id string) {
		t.Helper()
		l, err := r.visits.Next(ctx, "visitor", 0)
		if err != nil || l.Visit.ID != id {
			t.Fatalf("next: %+v %v, want %s", l, err, id)
		}
	}
	attempt := func(id string, a callback.Attempt) callback.Visit {
		t.Helper()
		v, err := r.visits.Attempted(ctx, id, "visitor", a, "13800000009")
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	r.clock.Set(time.Date(2026, 11, 27, 10, 0, 0, 0, cst))
	v := r.visit(t, "retry", "13800000009", appeal.General)
	take(v.ID)
	got := attempt(v.ID, callback.Attempt{Outcome: callback.NoAnswer})
	if got.State != callback.Waiting || !got.Due.Equal(time.Date(2026, 11, 27, 14, 0, 0, 0, cst)) || len(got.Attempts) != 1 {
		t.Errorf("no answer at 10:00: %s due %s (12:00 is outside the windows: 14:00)", got.State, got.Due)
	}
	if _, err := r.visits.Next(ctx, "visitor", 0); !errors.Is(err, callback.ErrNone) {
		t.Errorf("taken before it was due again: %v", err)
	}
	r.clock.Set(time.Date(2026, 11, 27, 14, 0, 0, 0, cst))
	take(v.ID)
	got = attempt(v.ID, callback.Attempt{Outcome: callback.Busy})
	if got.State != callback.Waiting || !got.Due.Equal(time.Date(2026, 11, 27, 14, 15, 0, 0, cst)) {
		t.Errorf("busy: %s due %s", got.State, got.Due)
	}
	r.clock.Set(time.Date(2026, 11, 27, 14, 15, 0, 0, cst))
	take(v.ID)
	if got = attempt(v.ID, callback.Attempt{Outcome: callback.NoAnswer}); got.State != callback.GaveUp || len(got.Attempts) != 3 {
		t.Errorf("the third attempt: %s after %d", got.State, len(got.Attempts))
	}
	if _, err := r.visits.Next(ctx, "visitor", 0); !errors.Is(err, callback.ErrNone) {
		t.Errorf("an unreachable visit is back: %v", err)
	}

	later := r.visit(t, "later", "13800000010", appeal.Livelihood)
	take(later.ID)
	if _, err := r.visits.Attempted(ctx, later.ID, "visitor", callback.Attempt{Outcome: callback.CallLater}, ""); !errors.Is(err, callback.ErrInvalid) {
		t.Errorf("call_later without a time: %v", err)
	}
	at := time.Date(2026, 11, 27, 21, 0, 0, 0, cst) // the citizen asks for 21:00: outside the windows
	if got = attempt(later.ID, callback.Attempt{Outcome: callback.CallLater, Later: &at}); !got.Due.Equal(time.Date(2026, 11, 28, 9, 0, 0, 0, cst)) {
		t.Errorf("call later at 21:00: due %s", got.Due)
	}

	refused := r.visit(t, "refused", "13800000011", appeal.Livelihood)
	take(refused.ID)
	if got = attempt(refused.ID, callback.Attempt{Outcome: callback.Refused, Note: "does not want to be called"}); got.State != callback.Withdrawn {
		t.Errorf("refused: %s", got.State)
	}
	// The number is on the do-not-call list: the same citizen's next
	// appeal gets no visit.
	again := r.appeal(t, "refused-again", "13800000009", appeal.General, true)
	if d, err := r.visits.Expired(ctx, expired(again), r.appeals); err != nil || d != callback.SkipDoNotCall {
		t.Errorf("after a refusal: %q %v", d, err)
	}
	if _, err := r.visits.Attempted(ctx, refused.ID, "visitor", callback.Attempt{Outcome: "maybe"}, ""); err == nil {
		t.Errorf("an attempt on a visit not leased, with an unknown outcome, was taken")
	}
}

// TestAgentsAtOnceNeverShare: 20 agents asking at once for the next of
// 200 visits each get their own.
func TestAgentsAtOnceNeverShare(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	for i := range 200 {
		r.visit(t, fmt.Sprintf("share-%d", i), fmt.Sprintf("1390000%04d", i), appeal.General)
	}
	var mu sync.Mutex
	seen := map[string]string{}
	var wg sync.WaitGroup
	for a := range 20 {
		agent := fmt.Sprintf("visitor-%d", a)
		wg.Go(func() {
			for {
				l, err := r.visits.Next(ctx, agent, 0)
				if errors.Is(err, callback.ErrNone) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if other, ok := seen[l.Visit.ID]; ok {
					t.Errorf("%s given to %s and %s", l.Visit.ID, other, agent)
				}
				seen[l.Visit.ID] = agent
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != 200 {
		t.Errorf("%d visits taken, want 200", len(seen))
	}
}

// TestListAndFigures: the visits by state, and the figures the metrics
// read.
func TestListAndFigures(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	g := r.visit(t, "fig-g", "13800000021", appeal.General)
	e := r.visit(t, "fig-e", "13800000022", appeal.Emergency)
	r.clock.Add(time.Minute)
	cb, err := r.visits.QueueCallback(ctx, "call-9", g.Appeal, appeal.General)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := r.visits.QueueCallback(ctx, "call-9", g.Appeal, appeal.General); err != nil || again.ID != cb.ID {
		t.Errorf("a second call-back of one call: %+v %v", again, err)
	}
	if l, err := r.visits.Next(ctx, "v1", 0); err != nil || l.Visit.ID != e.ID {
		t.Fatalf("next %+v %v", l, err)
	}
	if _, err := r.visits.Attempted(ctx, e.ID, "v1", callback.Attempt{Outcome: callback.Completed, Answers: &callback.Answers{Response: callback.Contacted, Solution: callback.Solved, Satisfaction: callback.Satisfied}}, ""); err != nil {
		t.Fatal(err)
	}
	if l, err := r.visits.Next(ctx, "v1", 0); err != nil || l.Visit.ID != g.ID {
		t.Fatalf("next %+v %v", l, err)
	}
	f, err := r.visits.Figures(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if f.ByState[callback.Waiting][callback.ReturnVisit] != 1 || f.ByState[callback.Waiting][callback.QueueCallback] != 1 ||
		f.ByState[callback.Done][callback.ReturnVisit] != 1 || f.Leased != 1 || !f.OldestDue.Equal(cb.Due) {
		t.Errorf("figures %+v (call-back due %s)", f, cb.Due)
	}
	for st, want := range map[callback.State]string{callback.Waiting: cb.ID, callback.Leased: g.ID, callback.Done: e.ID} {
		vs, next, err := r.visits.List(ctx, st, 10, "")
		if err != nil || len(vs) != 1 || vs[0].ID != want || next != "" {
			t.Errorf("%s: %+v %q %v, want %s", st, vs, next, err, want)
		}
	}
	if _, _, err := r.visits.List(ctx, "lost", 10, ""); !errors.Is(err, callback.ErrInvalid) {
		t.Errorf("an unknown state: %v", err)
	}
}

// TestReleaseAndModes: an agent's release puts back what it held, at its
// place; visits of a category made by IVR wait for hotline's own caller,
// not for agents.
func TestReleaseAndModes(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	r.visits = callback.NewStore(r.rdb, callback.StoreOptions{Now: r.clock.Now, Modes: map[appeal.Category]callback.Mode{appeal.General: callback.ByIVR}})
	byIVR := r.visit(t, "m-g", "13800000031", appeal.General)
	byAgent := r.visit(t, "m-l", "13800000032", appeal.Livelihood)
	if byIVR.Mode != callback.ByIVR || byAgent.Mode != "" {
		t.Fatalf("modes: %q %q", byIVR.Mode, byAgent.Mode)
	}
	l, err := r.visits.Next(ctx, "v1", 0)
	if err != nil || l.Visit.ID != byAgent.ID {
		t.Fatalf("an agent's next: %+v %v, want %s", l.Visit, err, byAgent.ID)
	}
	if _, err := r.visits.Next(ctx, "v2", 0); !errors.Is(err, callback.ErrNone) {
		t.Errorf("an agent was given an automated visit: %v", err)
	}
	if a, err := r.visits.NextOf(ctx, callback.ByIVR, "ivr", 0); err != nil || a.Visit.ID != byIVR.ID {
		t.Errorf("the automated caller's next: %+v %v", a.Visit, err)
	}
	if f, err := r.visits.Figures(ctx); err != nil || !f.OldestDue.IsZero() || f.Leased != 2 {
		t.Errorf("figures with both modes leased: %+v %v", f, err)
	}
	ids, err := r.visits.Release(ctx, "v1", "logged out")
	if err != nil || len(ids) != 1 || ids[0] != byAgent.ID {
		t.Fatalf("release: %v %v", ids, err)
	}
	if ids, err := r.visits.Release(ctx, "v1", "logged out"); err != nil || len(ids) != 0 {
		t.Errorf("a second release: %v %v", ids, err)
	}
	if _, err := r.visits.Renew(ctx, byAgent.ID, "v1", 0); !errors.Is(err, callback.ErrNotLeased) {
		t.Errorf("renewed after the release: %v", err)
	}
	if l, err := r.visits.Next(ctx, "v2", 0); err != nil || l.Visit.ID != byAgent.ID {
		t.Errorf("after the release: %+v %v", l.Visit, err)
	}
	changes, err := r.visits.Changes(ctx, 3)
	if err != nil || changes[1].What != "put back: logged out" || changes[1].By != "v1" {
		t.Errorf("audit: %+v %v", changes, err)
	}
	// Outside the calling windows nothing is taken, even a visit due.
	if _, err := r.visits.Release(ctx, "v2", "test"); err != nil {
		t.Fatal(err)
	}
	r.clock.Set(time.Date(2026, 11, 27, 12, 0, 0, 0, cst))
	var closed *callback.ErrClosed
	if _, err := r.visits.Next(ctx, "v3", 0); !errors.As(err, &closed) || !errors.Is(err, callback.ErrNone) || !closed.Opens.Equal(time.Date(2026, 11, 27, 14, 0, 0, 0, cst)) {
		t.Errorf("at 12:00: %v, want closed until 14:00", err)
	}
	r.clock.Set(time.Date(2026, 11, 27, 14, 0, 0, 0, cst))
	if l, err := r.visits.Next(ctx, "v3", 0); err != nil || l.Visit.ID != byAgent.ID {
		t.Errorf("at 14:00: %+v %v", l.Visit, err)
	}
}

// TestNextGivenUp: an agent who gave up before its turn takes nothing.
func TestNextGivenUp(t *testing.T) {
	r := newRig(t, nil)
	v := r.visit(t, "gone", "13800000051", appeal.General)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.visits.Next(ctx, "v1", 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("next with a context ended: %v", err)
	}
	if l, err := r.visits.Next(context.Background(), "v2", 0); err != nil || l.Visit.ID != v.ID {
		t.Errorf("the visit after an agent gave up: %+v %v", l.Visit, err)
	}
}
