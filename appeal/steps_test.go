package appeal_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/internal/redistest"
	"github.com/hotline12345/hotline/internal/testclock"
)

var organizers = []appeal.Organizer{
	{ID: "water", Name: "Water Group", Kind: appeal.Utility},
	{ID: "housing", Name: "Housing Bureau", Kind: appeal.Bureau},
	{ID: "chaoyang", Name: "Chaoyang District Government", Kind: appeal.District, District: "Chaoyang"},
}

// lifecycleStore is a store with the organizers, at now.
func lifecycleStore(t *testing.T, rdb redis.UniversalClient, now time.Time, loc *time.Location) (*appeal.Store, *testclock.Clock) {
	t.Helper()
	c := testclock.New(now)
	s := appeal.NewStore(rdb, appeal.StoreOptions{Now: c.Now, Location: loc})
	if err := s.SeedOrganizers(context.Background(), organizers); err != nil {
		t.Fatal(err)
	}
	return s, c
}

// step makes act and fails the test on an error.
func step(t *testing.T, s *appeal.Store, id string, act appeal.Action) (appeal.Appeal, appeal.Event) {
	t.Helper()
	a, ev, err := s.Step(context.Background(), id, act)
	if err != nil {
		t.Fatalf("%s: %v", act.Step, err)
	}
	return a, ev
}

// refused checks that act is refused as not allowed in state.
func refused(t *testing.T, s *appeal.Store, id string, act appeal.Action, state appeal.State) {
	t.Helper()
	_, _, err := s.Step(context.Background(), id, act)
	var se *appeal.StateError
	if !errors.Is(err, appeal.ErrState) || !errors.As(err, &se) || se.State != state {
		t.Fatalf("%s in %s: %v, want a StateError with the state", act.Step, state, err)
	}
}

func dispatchTo(lead string, others ...string) appeal.Action {
	return appeal.Action{Step: appeal.Dispatch, By: "dispatcher", Assignment: appeal.Assignment{Lead: lead, Others: others}}
}

// TestLifecycle: an emergency appeal through its whole life. Dispatch
// restarts the organizers' clocks from the real dispatch; a co-organizer
// signs without moving it, the lead's signature does; only the lead
// reports back; every step is in the history, with who and when.
func TestLifecycle(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		created := time.Date(2026, 11, 27, 10, 0, 0, 0, cst)
		s, clock := lifecycleStore(t, rdb, created, nil)
		a, err := s.Create(ctx, newAppeal("life-1", appeal.Emergency))
		if err != nil {
			t.Fatal(err)
		}
		if a.State != appeal.Received || !a.DispatchDue.Equal(created.Add(time.Hour)) {
			t.Fatalf("created %s, dispatch due %s", a.State, a.DispatchDue)
		}

		clock.Add(20 * time.Minute)
		dispatched := clock.Now()
		a, ev := step(t, s, a.ID, dispatchTo("water", "housing"))
		if a.State != appeal.Dispatched || ev.From != appeal.Received || ev.To != appeal.Dispatched || ev.Late || ev.By != "dispatcher" {
			t.Errorf("dispatched: %s, event %+v", a.State, ev)
		}
		if !a.SignDue.Equal(dispatched.Add(15*time.Minute)) || !a.FeedbackDue.Equal(dispatched.Add(2*time.Hour)) || !a.DispatchedAt.Equal(dispatched) {
			t.Errorf("after dispatch at %s: sign due %s, feedback due %s", dispatched, a.SignDue, a.FeedbackDue)
		}
		refused(t, s, a.ID, dispatchTo("housing"), appeal.Dispatched)
		refused(t, s, a.ID, appeal.Action{Step: appeal.FeedBack, Organizer: "water", Feedback: appeal.Feedback{Result: appeal.Solved}}, appeal.Dispatched)

		clock.Add(5 * time.Minute)
		a, _ = step(t, s, a.ID, appeal.Action{Step: appeal.Sign, By: "housing-desk", Organizer: "housing"})
		if a.State != appeal.Dispatched || a.SignedAt != nil {
			t.Errorf("a co-organizer's signature moved it to %s", a.State)
		}
		if _, _, err := s.Step(ctx, a.ID, appeal.Action{Step: appeal.Sign, Organizer: "chaoyang"}); !errors.Is(err, appeal.ErrNotTheirs) {
			t.Errorf("sign by an organizer not dispatched to: %v", err)
		}
		a, ev = step(t, s, a.ID, appeal.Action{Step: appeal.Sign, By: "water-desk", Organizer: "water"})
		if a.State != appeal.Signed || !a.SignedAt.Equal(clock.Now()) || !slices.Equal(a.SignedBy, []string{"housing", "water"}) || ev.Organizer != "water" {
			t.Errorf("signed by the lead: %s %v %v", a.State, a.SignedAt, a.SignedBy)
		}
		refused(t, s, a.ID, appeal.Action{Step: appeal.Sign, Organizer: "water"}, appeal.Signed)

		if _, _, err := s.Step(ctx, a.ID, appeal.Action{Step: appeal.FeedBack, Organizer: "housing", Feedback: appeal.Feedback{Result: appeal.Solved}}); !errors.Is(err, appeal.ErrNotTheirs) {
			t.Errorf("feedback by a co-organizer: %v", err)
		}
		for _, fb := range []appeal.Feedback{
			{Result: "fine"},
			{Result: appeal.NotSolved, NextSteps: "repair", NextAt: &created},
			{Result: appeal.NotSolved, Reason: "pipe burst", NextSteps: "repair"},
			{Result: appeal.CannotSolve, Reason: "private land"},
		} {
			if _, _, err := s.Step(ctx, a.ID, appeal.Action{Step: appeal.FeedBack, Organizer: "water", Feedback: fb}); !errors.Is(err, appeal.ErrInvalid) {
				t.Errorf("feedback %+v: %v, want ErrInvalid", fb, err)
			}
		}
		clock.Add(time.Hour)
		next := clock.Now().Add(48 * time.Hour)
		a, ev = step(t, s, a.ID, appeal.Action{Step: appeal.FeedBack, By: "water-desk", Organizer: "water",
			Feedback: appeal.Feedback{Result: appeal.NotSolved, Reason: "the main is broken", NextSteps: "replace the main", NextAt: &next}})
		if a.State != appeal.FedBack || a.Feedback == nil || a.Feedback.Result != appeal.NotSolved || ev.Late {
			t.Errorf("fed back: %s %+v late %v", a.State, a.Feedback, ev.Late)
		}
		refused(t, s, a.ID, appeal.Action{Step: appeal.FeedBack, Organizer: "water", Feedback: appeal.Feedback{Result: appeal.Solved}}, appeal.FedBack)
		refused(t, s, a.ID, appeal.Action{Step: appeal.Return, Organizer: "water", Reason: "not ours"}, appeal.FedBack)
		a, _ = step(t, s, a.ID, appeal.Action{Step: appeal.Close, By: "supervisor"})
		if a.State != appeal.Closed || a.ClosedAt == nil {
			t.Errorf("closed: %s", a.State)
		}
		refused(t, s, a.ID, appeal.Action{Step: appeal.Close}, appeal.Closed)

		h, err := s.History(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		var steps []appeal.Step
		for i, ev := range h {
			steps = append(steps, ev.Step)
			if ev.Seq != i+1 || ev.By == "" || ev.At.IsZero() {
				t.Errorf("event %d: %+v", i+1, ev)
			}
		}
		want := []appeal.Step{appeal.Created, appeal.Dispatch, appeal.Sign, appeal.Sign, appeal.FeedBack, appeal.Close}
		if !slices.Equal(steps, want) {
			t.Errorf("history %v, want %v", steps, want)
		}
		if !h[0].DispatchDue.Equal(created.Add(time.Hour)) || !h[1].SignDue.Equal(dispatched.Add(15*time.Minute)) {
			t.Errorf("the history's deadlines: created %+v, dispatched %+v", h[0], h[1])
		}

		for _, f := range []appeal.Filter{{State: appeal.Closed}, {Organizer: "housing"}, {Organizer: "water", Category: appeal.Emergency}} {
			got, _, err := s.Find(ctx, f)
			if err != nil || len(got) != 1 || got[0].ID != a.ID {
				t.Errorf("find %+v: %v %v", f, got, err)
			}
		}
		for _, f := range []appeal.Filter{{State: appeal.Received}, {Organizer: "chaoyang"}, {State: appeal.Closed, Category: appeal.General}} {
			if got, _, err := s.Find(ctx, f); err != nil || len(got) != 0 {
				t.Errorf("find %+v: %v %v, want none", f, got, err)
			}
		}
	})
}

// TestStepsNotAllowed: each step in each state it is not allowed in gets
// a StateError naming the state.
func TestStepsNotAllowed(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	ctx := context.Background()
	s, _ := lifecycleStore(t, rdb, time.Date(2026, 11, 27, 10, 0, 0, 0, cst), nil)
	a, err := s.Create(ctx, newAppeal("not-allowed", appeal.General))
	if err != nil {
		t.Fatal(err)
	}
	for _, act := range []appeal.Action{
		{Step: appeal.Sign, Organizer: "water"},
		{Step: appeal.FeedBack, Organizer: "water", Feedback: appeal.Feedback{Result: appeal.Solved}},
		{Step: appeal.Return, Organizer: "water", Reason: "not ours"},
		{Step: appeal.Close},
	} {
		refused(t, s, a.ID, act, appeal.Received)
	}
	if _, _, err := s.Step(ctx, a.ID, appeal.Action{Step: "escalate"}); !errors.Is(err, appeal.ErrInvalid) {
		t.Errorf("an unknown step: %v", err)
	}
	if _, _, err := s.Step(ctx, "2611279999", dispatchTo("water")); !errors.Is(err, appeal.ErrNotFound) {
		t.Errorf("an unknown appeal: %v", err)
	}
	for _, asg := range []appeal.Assignment{{}, {Lead: "nobody"}, {Lead: "water", Others: []string{"water"}}, {Lead: "housing", OwnerUnknown: true}} {
		if _, _, err := s.Step(ctx, a.ID, appeal.Action{Step: appeal.Dispatch, Assignment: asg}); !errors.Is(err, appeal.ErrInvalid) {
			t.Errorf("dispatch %+v: %v, want ErrInvalid", asg, err)
		}
	}
	// Nothing refused left a trace.
	if h, err := s.History(ctx, a.ID); err != nil || len(h) != 1 {
		t.Errorf("history after refusals: %+v %v", h, err)
	}
	// Owner unknown: to the district government.
	a, _ = step(t, s, a.ID, appeal.Action{Step: appeal.Dispatch, Assignment: appeal.Assignment{Lead: "chaoyang", OwnerUnknown: true}})
	if !a.Assignment.OwnerUnknown {
		t.Errorf("assignment %+v", a.Assignment)
	}
	probe := newAppeal("probe-steps", appeal.General)
	probe.Synthetic = true
	p, err := s.Create(ctx, probe)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Step(ctx, p.ID, dispatchTo("water")); !errors.Is(err, appeal.ErrInvalid) {
		t.Errorf("a step on the probe's appeal: %v", err)
	}
}

// TestDispatchLateAndReturned: a general appeal dispatched after its
// latest allowed time is marked late and its clocks still run from the
// real dispatch; returned, its dispatch clock starts again from the
// return, it leaves the organizer's list, and the next dispatch restarts
// the organizers' clocks.
func TestDispatchLateAndReturned(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	ctx := context.Background()
	created := time.Date(2026, 11, 27, 10, 0, 0, 0, cst)
	s, clock := lifecycleStore(t, rdb, created, nil)
	a, err := s.Create(ctx, newAppeal("late", appeal.General))
	if err != nil {
		t.Fatal(err)
	}
	clock.Add(30 * time.Hour) // 24 h allowed
	at := clock.Now()
	a, ev := step(t, s, a.ID, dispatchTo("housing"))
	if !ev.Late || !a.SignDue.Equal(at.Add(24*time.Hour)) || !a.FeedbackDue.Equal(at.AddDate(0, 0, 7)) {
		t.Errorf("late dispatch: late %v, sign due %s, feedback due %s", ev.Late, a.SignDue, a.FeedbackDue)
	}

	clock.Add(2 * time.Hour)
	returned := clock.Now()
	if _, _, err := s.Step(ctx, a.ID, appeal.Action{Step: appeal.Return, Organizer: "housing"}); !errors.Is(err, appeal.ErrInvalid) {
		t.Errorf("a return without a reason: %v", err)
	}
	a, ev = step(t, s, a.ID, appeal.Action{Step: appeal.Return, By: "housing-desk", Organizer: "housing", Reason: "water supply, not housing"})
	if a.State != appeal.Returned || a.Assignment != nil || a.Returns != 1 || ev.Reason == "" {
		t.Errorf("returned: %+v", a)
	}
	if !a.DispatchDue.Equal(returned.Add(24*time.Hour)) || !a.Overdue(returned.Add(25*time.Hour)) || a.Overdue(returned.Add(23*time.Hour)) {
		t.Errorf("returned at %s: dispatch due %s", returned, a.DispatchDue)
	}
	if got, _, _ := s.Find(ctx, appeal.Filter{Organizer: "housing"}); len(got) != 0 {
		t.Errorf("the returning organizer still lists it: %v", got)
	}
	if got, _, _ := s.Find(ctx, appeal.Filter{State: appeal.Returned}); len(got) != 1 {
		t.Errorf("returned appeals: %v", got)
	}
	refused(t, s, a.ID, appeal.Action{Step: appeal.Sign, Organizer: "housing"}, appeal.Returned)

	clock.Add(time.Hour)
	again := clock.Now()
	a, ev = step(t, s, a.ID, dispatchTo("water"))
	if ev.Late || ev.From != appeal.Returned || !a.SignDue.Equal(again.Add(24*time.Hour)) || !a.FeedbackDue.Equal(again.AddDate(0, 0, 7)) {
		t.Errorf("dispatched again at %s: %+v", again, ev)
	}
}

// TestNaturalDaysAcrossDST: in a zone with daylight saving, a complex
// appeal's 15 natural days end at the same wall-clock time, whatever
// the change in between, counted from the real dispatch.
func TestNaturalDaysAcrossDST(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	rdb := redistest.Start(t).Client(t)
	ctx := context.Background()
	// 29 March 2026: clocks go forward in Berlin.
	created := time.Date(2026, 3, 20, 9, 0, 0, 0, berlin)
	s, clock := lifecycleStore(t, rdb, created, berlin)
	a, err := s.Create(ctx, newAppeal("dst", appeal.Complex))
	if err != nil {
		t.Fatal(err)
	}
	clock.Add(90 * time.Minute)
	a, _ = step(t, s, a.ID, dispatchTo("housing"))
	want := time.Date(2026, 4, 4, 10, 30, 0, 0, berlin)
	if !a.FeedbackDue.Equal(want) || a.FeedbackDue.Sub(*a.DispatchedAt) != 15*24*time.Hour-time.Hour {
		t.Errorf("feedback due %s, want %s (15 natural days, one of them 23 h)", a.FeedbackDue, want)
	}
}

// TestFeedbackTwiceAtOnce: two feedbacks at the same moment from two
// nodes: one is taken, the other refused, the history has one.
func TestFeedbackTwiceAtOnce(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, cst)
	s1, _ := lifecycleStore(t, rdb, now, nil)
	s2, _ := lifecycleStore(t, rdb, now, nil)
	a, err := s1.Create(ctx, newAppeal("twice", appeal.Livelihood))
	if err != nil {
		t.Fatal(err)
	}
	step(t, s1, a.ID, dispatchTo("water"))
	step(t, s1, a.ID, appeal.Action{Step: appeal.Sign, Organizer: "water"})
	for range 20 {
		b, err := s1.Create(ctx, newAppeal("twice-"+time.Now().String(), appeal.Livelihood))
		if err != nil {
			t.Fatal(err)
		}
		step(t, s1, b.ID, dispatchTo("water"))
		step(t, s1, b.ID, appeal.Action{Step: appeal.Sign, Organizer: "water"})
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, s := range []*appeal.Store{s1, s2} {
			wg.Go(func() {
				_, _, errs[i] = s.Step(ctx, b.ID, appeal.Action{Step: appeal.FeedBack, Organizer: "water", Feedback: appeal.Feedback{Result: appeal.Solved}})
			})
		}
		wg.Wait()
		if (errs[0] == nil) == (errs[1] == nil) || !errors.Is(errors.Join(errs...), appeal.ErrState) {
			t.Fatalf("two feedbacks at once: %v", errs)
		}
		h, err := s1.History(ctx, b.ID)
		if err != nil || len(h) != 4 {
			t.Fatalf("history %+v %v, want created, dispatch, sign, one feedback", h, err)
		}
	}
}

// TestFindPagesAndOverdue: Find pages with its cursor and keeps only the
// overdue when asked.
func TestFindPagesAndOverdue(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	ctx := context.Background()
	start := time.Date(2026, 11, 27, 10, 0, 0, 0, cst)
	s, clock := lifecycleStore(t, rdb, start, nil)
	var ids []string
	for i := range 7 {
		clock.Add(time.Minute)
		cat := appeal.General
		if i%2 == 0 {
			cat = appeal.Emergency // dispatch due within the hour
		}
		a, err := s.Create(ctx, newAppeal("find-"+string(rune('a'+i)), cat))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.ID)
	}
	var got []string
	cursor := ""
	for {
		page, next, err := s.Find(ctx, appeal.Filter{State: appeal.Received, Limit: 3, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range page {
			got = append(got, a.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	slices.Reverse(got)
	if !slices.Equal(got, ids) {
		t.Errorf("pages %v, want %v newest first", got, ids)
	}
	clock.Add(2 * time.Hour)
	overdue, _, err := s.Find(ctx, appeal.Filter{Overdue: true})
	if err != nil || len(overdue) != 4 {
		t.Fatalf("overdue %v %v, want the 4 emergency appeals", overdue, err)
	}
	for _, a := range overdue {
		if a.Category != appeal.Emergency {
			t.Errorf("%s overdue: %s", a.ID, a.Category)
		}
	}
	if _, _, err := s.Find(ctx, appeal.Filter{Cursor: "garbage!"}); !errors.Is(err, appeal.ErrInvalid) {
		t.Errorf("a bad cursor: %v", err)
	}
	if _, _, err := s.Find(ctx, appeal.Filter{State: "lost"}); !errors.Is(err, appeal.ErrInvalid) {
		t.Errorf("a bad state: %v", err)
	}
}

// TestOrganizers: the configuration seeds organizers without undoing
// what the API changed; bad ones are refused.
func TestOrganizers(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	ctx := context.Background()
	s, _ := lifecycleStore(t, rdb, time.Now(), nil)
	renamed := organizers[0]
	renamed.Name = "Beijing Water Group"
	if err := s.PutOrganizer(ctx, renamed); err != nil {
		t.Fatal(err)
	}
	if err := s.SeedOrganizers(ctx, organizers); err != nil {
		t.Fatal(err)
	}
	if o, err := s.Organizer(ctx, "water"); err != nil || o.Name != "Beijing Water Group" {
		t.Errorf("after seeding again: %+v %v", o, err)
	}
	for _, bad := range []appeal.Organizer{{ID: "Bad Id", Name: "x", Kind: appeal.Bureau}, {ID: "x", Kind: appeal.Bureau}, {ID: "x", Name: "x", Kind: "church"}} {
		if err := s.PutOrganizer(ctx, bad); !errors.Is(err, appeal.ErrInvalid) {
			t.Errorf("put %+v: %v", bad, err)
		}
	}
	if err := s.DeleteOrganizer(ctx, "housing"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteOrganizer(ctx, "housing"); !errors.Is(err, appeal.ErrOrganizerNotFound) {
		t.Errorf("delete twice: %v", err)
	}
	all, err := s.Organizers(ctx)
	if err != nil || len(all) != 2 || all[0].ID != "chaoyang" || all[1].ID != "water" {
		t.Errorf("organizers %+v %v", all, err)
	}
}

// TestPeakModeSwitches: every switch is recorded with who and why, and
// appeals take the mode in force when they are created.
func TestPeakModeSwitches(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	ctx := context.Background()
	s, clock := lifecycleStore(t, rdb, time.Date(2026, 11, 27, 10, 0, 0, 0, cst), nil)
	if _, err := s.SwitchPeakMode(ctx, true, "sup", ""); !errors.Is(err, appeal.ErrInvalid) {
		t.Errorf("a switch without a reason: %v", err)
	}
	if _, err := s.SwitchPeakMode(ctx, true, "sup", "typhoon"); err != nil {
		t.Fatal(err)
	}
	a, err := s.Create(ctx, newAppeal("peak-on", appeal.General))
	if err != nil {
		t.Fatal(err)
	}
	clock.Add(time.Hour)
	if _, err := s.SwitchPeakMode(ctx, false, "sup2", "traffic back to normal"); err != nil {
		t.Fatal(err)
	}
	b, err := s.Create(ctx, newAppeal("peak-off", appeal.General))
	if err != nil {
		t.Fatal(err)
	}
	if !a.PeakMode || a.DispatchDue.Sub(a.CreatedAt) != 48*time.Hour || b.PeakMode || b.DispatchDue.Sub(b.CreatedAt) != 24*time.Hour {
		t.Errorf("peak %v %s, then %v %s", a.PeakMode, a.DispatchDue.Sub(a.CreatedAt), b.PeakMode, b.DispatchDue.Sub(b.CreatedAt))
	}
	st, err := s.PeakModeStatus(ctx, 10)
	if err != nil || st.On || len(st.Switches) != 2 || st.Last.By != "sup2" || !st.Switches[1].On || st.Switches[1].Reason != "typhoon" {
		t.Errorf("status %+v %v", st, err)
	}
}

// TestDispatchClocksOfEveryCategory: each category's organizers' clocks
// from a real dispatch, peak mode or not (it sets the dispatch limit
// only), and the urges of each stage a fifth of its time before.
func TestDispatchClocksOfEveryCategory(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	ctx := context.Background()
	created := time.Date(2026, 11, 30, 21, 30, 0, 0, cst)
	s, clock := lifecycleStore(t, rdb, created, nil)
	for i, tc := range []struct {
		cat            appeal.Category
		peak           bool
		dispatchLimit  time.Duration
		sign           time.Duration
		feedback       time.Duration
		feedbackInDays int
	}{
		{appeal.Emergency, false, time.Hour, 15 * time.Minute, 2 * time.Hour, 0},
		{appeal.Livelihood, false, 2 * time.Hour, 30 * time.Minute, 24 * time.Hour, 0},
		{appeal.General, false, 24 * time.Hour, 24 * time.Hour, 0, 7},
		{appeal.General, true, 48 * time.Hour, 24 * time.Hour, 0, 7},
		{appeal.Complex, false, 24 * time.Hour, 24 * time.Hour, 0, 15},
		{appeal.Complex, true, 48 * time.Hour, 24 * time.Hour, 0, 15},
	} {
		clock.Set(created)
		if _, err := s.SwitchPeakMode(ctx, tc.peak, "test", "the table's case"); err != nil {
			t.Fatal(err)
		}
		a, err := s.Create(ctx, newAppeal(fmt.Sprintf("every-%d", i), tc.cat))
		if err != nil {
			t.Fatal(err)
		}
		if !a.DispatchDue.Equal(created.Add(tc.dispatchLimit)) {
			t.Errorf("%s peak %v: dispatch due %s", tc.cat, tc.peak, a.DispatchDue)
		}
		clock.Add(17 * time.Minute) // an odd moment, late at night
		at := clock.Now()
		a, _ = step(t, s, a.ID, dispatchTo("water"))
		want := at.Add(tc.feedback)
		if tc.feedbackInDays > 0 {
			want = at.AddDate(0, 0, tc.feedbackInDays)
		}
		if !a.SignDue.Equal(at.Add(tc.sign)) || !a.FeedbackDue.Equal(want) {
			t.Errorf("%s peak %v dispatched at %s: sign due %s, feedback due %s", tc.cat, tc.peak, at, a.SignDue, a.FeedbackDue)
		}
	}
}

// Closed appeals older than the retention go from every list, count and
// organizer's set; an open one as old stays, and so does a closed one
// younger.
func TestClosedAppealsPurged(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		start := time.Date(2026, 11, 27, 10, 0, 0, 0, cst)
		s, clock := lifecycleStore(t, rdb, start, nil)
		create := func(callID string, at time.Time) appeal.Appeal {
			t.Helper()
			n := newAppeal(callID, appeal.Livelihood)
			n.At = at
			a, err := s.Create(ctx, n)
			if err != nil {
				t.Fatal(err)
			}
			return a
		}
		closeIt := func(a appeal.Appeal) {
			t.Helper()
			step(t, s, a.ID, dispatchTo("water", "housing"))
			step(t, s, a.ID, appeal.Action{Step: appeal.Sign, By: "water-desk", Organizer: "water"})
			step(t, s, a.ID, appeal.Action{Step: appeal.FeedBack, By: "water-desk", Organizer: "water", Feedback: appeal.Feedback{Result: appeal.Solved}})
			step(t, s, a.ID, appeal.Action{Step: appeal.Close, By: "supervisor"})
		}
		oldClosed := create("old-closed", start)
		oldOpen := create("old-open", start)
		closeIt(oldClosed)
		step(t, s, oldOpen.ID, dispatchTo("water"))
		clock.Set(start.Add(48 * time.Hour))
		young := create("young-closed", clock.Now())
		closeIt(young)

		if n, err := s.PurgeClosed(ctx, start.Add(24*time.Hour), 0); err != nil || n != 1 {
			t.Fatalf("PurgeClosed: %d, %v; want 1", n, err)
		}
		if n, err := s.PurgeClosed(ctx, start.Add(24*time.Hour), 0); err != nil || n != 0 {
			t.Fatalf("again: %d, %v; want 0", n, err)
		}
		if _, err := s.Get(ctx, oldClosed.ID); !errors.Is(err, appeal.ErrNotFound) {
			t.Errorf("Get of the old closed appeal: %v", err)
		}
		if _, err := s.ByCall(ctx, "old-closed"); !errors.Is(err, appeal.ErrNotFound) {
			t.Errorf("ByCall of the old closed appeal: %v", err)
		}
		for _, a := range []appeal.Appeal{oldOpen, young} {
			if _, err := s.Get(ctx, a.ID); err != nil {
				t.Errorf("appeal of %s: %v", a.CallID, err)
			}
		}
		list, err := s.List(ctx, 0)
		if err != nil || len(list) != 2 {
			t.Errorf("List: %d appeals, %v; want the two kept", len(list), err)
		}
		counts, err := s.Counts(ctx)
		if err != nil || counts[appeal.Closed][appeal.Livelihood] != 1 || counts[appeal.Dispatched][appeal.Livelihood] != 1 {
			t.Errorf("counts %v, %v; want one closed, one dispatched", counts, err)
		}
		for org, want := range map[string][]string{"water": {oldOpen.ID, young.ID}, "housing": {young.ID}} {
			got, err := rdb.ZRange(ctx, "hotline:{appeals}:organizer:"+org, 0, -1).Result()
			slices.Sort(got)
			if err != nil || !slices.Equal(got, want) {
				t.Errorf("%s's appeals %v, %v; want %v", org, got, err, want)
			}
		}
	})
}
