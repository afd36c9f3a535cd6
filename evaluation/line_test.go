package evaluation_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/evaluation"
	"github.com/hotline12345/hotline/internal/evaltest"
	"github.com/hotline12345/hotline/internal/redistest"
	"github.com/hotline12345/hotline/internal/testclock"
)

// TestEvaluateBoundary: 3 effective complaints in 10,000 served is within
// the line, 4 is over; the budget and the plain words follow.
func TestEvaluateBoundary(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		served, upheld, pending int64
		state                   evaluation.State
		budget                  int64
		next                    bool
	}{
		{10000, 2, 0, evaluation.Within, 1, false},
		{10000, 3, 0, evaluation.Within, 0, true},
		{10000, 4, 0, evaluation.Over, -1, false},
		{20000, 6, 1, evaluation.Within, 0, true},
		{9999, 3, 0, evaluation.Over, -1, false}, // floor(2.9997) = 2
		{100, 0, 0, evaluation.Within, 0, true},  // few calls: the first complaint crosses
		{100, 1, 0, evaluation.Over, -1, false},
		{3334, 1, 0, evaluation.Within, 0, true},
		{3333, 1, 0, evaluation.Over, -1, false},
		{0, 0, 0, evaluation.Within, 0, true},
	} {
		c := evaluation.Counts{Served: tc.served, BadReview: tc.upheld + tc.pending, Upheld: tc.upheld}
		l := evaluation.Evaluate(evaluation.Window{}, evaluation.Hotline, c, 3)
		name := fmt.Sprintf("%d/%d", tc.upheld, tc.served)
		if l.State != tc.state || l.Budget != tc.budget || l.NextCrosses != tc.next || l.Pending != tc.pending {
			t.Errorf("%s: state %s budget %d next %v pending %d; want %s %d %v %d",
				name, l.State, l.Budget, l.NextCrosses, l.Pending, tc.state, tc.budget, tc.next, tc.pending)
		}
		if tc.served == 0 {
			if l.RatePer10000 != nil || l.UpperBoundPer10000 != nil || !strings.Contains(l.Message, "no rate") {
				t.Errorf("%s: a rate without calls: %+v", name, l)
			}
			continue
		}
		if want := float64(tc.upheld) * 10000 / float64(tc.served); math.Abs(*l.RatePer10000-want) > 1e-9 {
			t.Errorf("%s: rate %v; want %v", name, *l.RatePer10000, want)
		}
		if want := float64(tc.upheld+tc.pending) * 10000 / float64(tc.served); math.Abs(*l.WorstCasePer10000-want) > 1e-9 {
			t.Errorf("%s: worst case %v; want %v", name, *l.WorstCasePer10000, want)
		}
		if *l.UpperBoundPer10000 <= *l.RatePer10000 {
			t.Errorf("%s: upper bound %v not above the rate %v", name, *l.UpperBoundPer10000, *l.RatePer10000)
		}
		for _, w := range []string{fmt.Sprint(tc.upheld), fmt.Sprint(tc.served)} {
			if !strings.Contains(l.Message, w) {
				t.Errorf("%s: message %q without the count %s", name, l.Message, w)
			}
		}
	}
}

// TestWilsonUpperBound against values computed by hand from the formula.
func TestWilsonUpperBound(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		k, n int64
		want float64 // per 10,000
	}{
		{0, 10000, 3.8400},   // z²/(n+z²)
		{3, 10000, 8.8203},   // 0.000882
		{1, 100, 544.6},      // 0.05446
		{0, 1, 10000 * 0.79}, // z²/(1+z²) = 0.7935
	} {
		l := evaluation.Evaluate(evaluation.Window{}, evaluation.Hotline, evaluation.Counts{Served: tc.n, BadReview: tc.k, Upheld: tc.k}, 3)
		if got := *l.UpperBoundPer10000; math.Abs(got-tc.want)/tc.want > 0.01 {
			t.Errorf("%d/%d: upper bound %.4f; want %.4f", tc.k, tc.n, got, tc.want)
		}
	}
}

func TestWindowResolve(t *testing.T) {
	t.Parallel()
	loc := shanghai(t)
	// 16:30 UTC on the 30th is already the 1st of December in Beijing.
	now := time.Date(2026, 11, 30, 16, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		spec     evaluation.WindowSpec
		from, to string
		param    string // the parameter named by the error
	}{
		{spec: evaluation.WindowSpec{}, from: "2026-12-01", to: "2026-12-01"},
		{spec: evaluation.WindowSpec{Kind: "day", Day: "2026-02-28"}, from: "2026-02-28", to: "2026-02-28"},
		{spec: evaluation.WindowSpec{Kind: "month"}, from: "2026-12-01", to: "2026-12-31"},
		{spec: evaluation.WindowSpec{Kind: "month", Month: "2028-02"}, from: "2028-02-01", to: "2028-02-29"},
		{spec: evaluation.WindowSpec{Kind: "30d"}, from: "2026-11-02", to: "2026-12-01"},
		{spec: evaluation.WindowSpec{Kind: "30d", Day: "2026-03-01"}, from: "2026-01-31", to: "2026-03-01"},
		{spec: evaluation.WindowSpec{Kind: "range", From: "2026-11-28", To: "2026-12-02"}, from: "2026-11-28", to: "2026-12-02"},
		{spec: evaluation.WindowSpec{Kind: "range", From: "2026-11-28", To: "2026-11-28"}, from: "2026-11-28", to: "2026-11-28"},
		{spec: evaluation.WindowSpec{Kind: "week"}, param: "window"},
		{spec: evaluation.WindowSpec{Kind: "month", Month: "2026-13"}, param: "month"},
		{spec: evaluation.WindowSpec{Kind: "month", Month: "2026-1"}, param: "month"},
		{spec: evaluation.WindowSpec{Kind: "month", Day: "2026-12-01"}, param: "day"},
		{spec: evaluation.WindowSpec{Kind: "day", Day: "2026-02-30"}, param: "day"},
		{spec: evaluation.WindowSpec{Kind: "day", From: "2026-02-01"}, param: "from"},
		{spec: evaluation.WindowSpec{Kind: "range", From: "2026-12-02", To: "2026-12-01"}, param: "to"},
		{spec: evaluation.WindowSpec{Kind: "range", From: "2026-12-02"}, param: "to"},
		{spec: evaluation.WindowSpec{Kind: "range", To: "2026-12-02"}, param: "from"},
		{spec: evaluation.WindowSpec{Kind: "range", From: "2025-01-01", To: "2026-02-04"}, from: "2025-01-01", to: "2026-02-04"}, // 400 days
		{spec: evaluation.WindowSpec{Kind: "range", From: "2025-01-01", To: "2026-02-05"}, param: "to"},                          // 401
		{spec: evaluation.WindowSpec{Kind: "range", From: "yesterday", To: "2026-12-02"}, param: "from"},
	} {
		w, err := tc.spec.Resolve(now, loc)
		if tc.param != "" {
			var pe *evaluation.ParamError
			if !errors.As(err, &pe) || pe.Param != tc.param || !errors.Is(err, evaluation.ErrInvalid) {
				t.Errorf("%+v: %v; want a ParamError naming %s", tc.spec, err, tc.param)
			}
			continue
		}
		if err != nil || w.From != tc.from || w.To != tc.to {
			t.Errorf("%+v: %+v, %v; want %s to %s", tc.spec, w, err, tc.from, tc.to)
		}
	}
	w, _ := evaluation.WindowSpec{Kind: "30d"}.Resolve(now, loc)
	if n := len(w.Days()); n != evaluation.RollingDays {
		t.Errorf("30d has %d days", n)
	}
}

// line is a small world of calls on the line, for the tests: each call
// served by an agent in a category at a time.
type lineFixture struct {
	*fixture
	ctx context.Context
}

func newLine(t *testing.T, rdb redis.UniversalClient) lineFixture {
	return lineFixture{fixture: newFixtureOn(t, rdb), ctx: context.Background()}
}

func (f lineFixture) serve(t *testing.T, s *evaluation.Store, call, agent string, at time.Time) {
	t.Helper()
	if err := s.Served(f.ctx, evaluation.ServedCall{CallID: call, AgentID: agent, Category: appeal.General, At: at}); err != nil {
		t.Fatal(err)
	}
}

func (f lineFixture) rate(t *testing.T, s *evaluation.Store, call, agent string, v evaluation.Verdict, servedAt, at time.Time) {
	t.Helper()
	r := rating(call, agent, v, at)
	r.ServedAt = servedAt
	if _, err := s.Record(f.ctx, r); err != nil {
		t.Fatal(err)
	}
}

func (f lineFixture) review(t *testing.T, s *evaluation.Store, call string, d evaluation.ComplaintStatus) {
	t.Helper()
	if _, err := s.Review(f.ctx, call, d, "sup-1", "heard the recording"); err != nil {
		t.Fatal(err)
	}
}

func (f lineFixture) window(t *testing.T, spec evaluation.WindowSpec) evaluation.Window {
	t.Helper()
	w, err := spec.Resolve(f.clock.Now(), f.loc)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func (f lineFixture) line(t *testing.T, spec evaluation.WindowSpec, sc evaluation.Scope) evaluation.Line {
	t.Helper()
	l, err := f.store.Line(f.ctx, f.window(t, spec), sc)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// wantLine checks the counts of a line.
func wantLine(t *testing.T, l evaluation.Line, want evaluation.Counts) {
	t.Helper()
	if l.Counts != want || l.Pending != want.Pending() {
		t.Fatalf("%s %s..%s %+v: counts %+v pending %d; want %+v", l.Kind, l.From, l.To, l.Scope, l.Counts, l.Pending, want)
	}
}

// noDifference checks the counters against a recount from the records.
func (f lineFixture) noDifference(t *testing.T, s *evaluation.Store, w evaluation.Window) {
	t.Helper()
	diffs, err := s.Audit(f.ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diffs {
		t.Errorf("%s %+v: counted %+v, recounted %+v", d.Day, d.Scope, d.Counted, d.Recounted)
	}
}

// TestLineBoundary: 10,000 calls served in a day, then 2, 3 and 4 upheld
// complaints: within, within with no room left, over.
func TestLineBoundary(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testLineBoundary)
}

func testLineBoundary(t *testing.T, rdb redis.UniversalClient) {
	f := newLine(t, rdb)
	day := time.Date(2026, 11, 27, 8, 0, 0, 0, f.loc)
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < 10000; i += 8 {
				c := evaluation.ServedCall{CallID: fmt.Sprintf("c%05d", i), AgentID: fmt.Sprintf("agent-%d", i%40),
					Category: appeal.General, At: day.Add(time.Duration(i) * time.Second)}
				if err := f.store.Served(f.ctx, c); err != nil {
					select {
					case errs <- err:
					default:
					}
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	for i := range 4 {
		call := fmt.Sprintf("c%05d", i)
		f.rate(t, f.store, call, fmt.Sprintf("agent-%d", i%40), evaluation.BadReview, day, day.Add(time.Hour))
	}
	spec := evaluation.WindowSpec{Kind: "day", Day: "2026-11-27"}
	l := f.line(t, spec, evaluation.Hotline)
	wantLine(t, l, evaluation.Counts{Served: 10000, BadReview: 4})
	if l.State != evaluation.Within || l.Budget != 3 || *l.WorstCasePer10000 != 4 {
		t.Fatalf("4 pending: %+v", l)
	}
	for i, want := range []struct {
		state  evaluation.State
		budget int64
	}{{evaluation.Within, 2}, {evaluation.Within, 1}, {evaluation.Within, 0}, {evaluation.Over, -1}} {
		f.review(t, f.store, fmt.Sprintf("c%05d", i), evaluation.Upheld)
		l := f.line(t, spec, evaluation.Hotline)
		if l.Upheld != int64(i+1) || l.State != want.state || l.Budget != want.budget {
			t.Fatalf("%d upheld in 10,000: %s budget %d (%s); want %s %d", i+1, l.State, l.Budget, l.Message, want.state, want.budget)
		}
	}
	f.noDifference(t, f.store, f.window(t, spec))
	// The month and the rolling 30 days sum the same day.
	f.clock.Set(time.Date(2026, 12, 5, 12, 0, 0, 0, f.loc))
	if l := f.line(t, evaluation.WindowSpec{Kind: "month", Month: "2026-11"}, evaluation.Hotline); l.Served != 10000 || l.Upheld != 4 {
		t.Fatalf("month: %+v", l.Counts)
	}
	if l := f.line(t, evaluation.WindowSpec{Kind: "30d"}, evaluation.Hotline); l.Served != 10000 || l.Upheld != 4 {
		t.Fatalf("30d: %+v", l.Counts)
	}
	// An agent with 250 calls and one effective complaint is over.
	if l := f.line(t, spec, evaluation.Scope{AgentID: "agent-0"}); l.Served != 250 || l.Upheld != 1 || l.State != evaluation.Over {
		t.Fatalf("agent-0: %+v", l)
	}
	if l := f.line(t, spec, evaluation.Scope{Category: appeal.General}); l.Served != 10000 || l.Upheld != 4 {
		t.Fatalf("general: %+v", l.Counts)
	}
	if l := f.line(t, spec, evaluation.Scope{Category: appeal.Emergency}); !l.Counts.IsZero() {
		t.Fatalf("emergency: %+v", l.Counts)
	}
}

// TestMonthBoundaryShanghai: a call served at 23:59:59.999 on the 30th of
// November, Beijing time, counts in November; one a millisecond later in
// December, though both are on the same UTC day; the rating after
// midnight counts with its call.
func TestMonthBoundaryShanghai(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testMonthBoundaryShanghai)
}

func testMonthBoundaryShanghai(t *testing.T, rdb redis.UniversalClient) {
	f := newLine(t, rdb)
	midnight := time.Date(2026, 12, 1, 0, 0, 0, 0, f.loc)
	f.serve(t, f.store, "nov", "agent-1", midnight.Add(-time.Millisecond))
	f.serve(t, f.store, "dec", "agent-1", midnight)
	f.rate(t, f.store, "nov", "agent-1", evaluation.BadReview, midnight.Add(-time.Millisecond), midnight.Add(5*time.Minute))
	f.review(t, f.store, "nov", evaluation.Upheld)

	nov := f.line(t, evaluation.WindowSpec{Kind: "month", Month: "2026-11"}, evaluation.Hotline)
	wantLine(t, nov, evaluation.Counts{Served: 1, BadReview: 1, Upheld: 1})
	dec := f.line(t, evaluation.WindowSpec{Kind: "month", Month: "2026-12"}, evaluation.Hotline)
	wantLine(t, dec, evaluation.Counts{Served: 1})
	if day := f.line(t, evaluation.WindowSpec{Kind: "day", Day: "2026-11-30"}, evaluation.Hotline); day.Upheld != 1 || day.State != evaluation.Over {
		t.Fatalf("30 November: %+v", day)
	}
	if got, err := f.store.Totals(f.ctx, midnight); err != nil || got.Day != "2026-12-01" || got.Served != 1 || got.Upheld != 0 {
		t.Fatalf("Totals of 1 December: %+v, %v", got, err)
	}
	f.noDifference(t, f.store, evaluation.Window{Kind: evaluation.WindowRange, From: "2026-11-30", To: "2026-12-01"})
}

// TestLateReviewCountsOnTheCallsDay: a call served on 31 December and
// reviewed on 2 January changes the 31st and December, not January.
func TestLateReviewCountsOnTheCallsDay(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testLateReviewCountsOnTheCallsDay)
}

func testLateReviewCountsOnTheCallsDay(t *testing.T, rdb redis.UniversalClient) {
	f := newLine(t, rdb)
	served := time.Date(2026, 12, 31, 23, 50, 0, 0, f.loc)
	f.serve(t, f.store, "c1", "agent-1", served)
	// The rating is given after midnight: still the 31st's.
	f.rate(t, f.store, "c1", "agent-1", evaluation.BadReview, served, served.Add(15*time.Minute))
	f.clock.Set(time.Date(2027, 1, 2, 9, 0, 0, 0, f.loc))
	f.review(t, f.store, "c1", evaluation.Upheld)

	wantLine(t, f.line(t, evaluation.WindowSpec{Kind: "day", Day: "2026-12-31"}, evaluation.Hotline),
		evaluation.Counts{Served: 1, BadReview: 1, Upheld: 1})
	wantLine(t, f.line(t, evaluation.WindowSpec{Kind: "month", Month: "2026-12"}, evaluation.Scope{AgentID: "agent-1"}),
		evaluation.Counts{Served: 1, BadReview: 1, Upheld: 1})
	wantLine(t, f.line(t, evaluation.WindowSpec{Kind: "month", Month: "2027-01"}, evaluation.Hotline), evaluation.Counts{})
	wantLine(t, f.line(t, evaluation.WindowSpec{Kind: "day"}, evaluation.Hotline), evaluation.Counts{})
	// The rolling 30 days up to the 2nd reach back to the 31st.
	wantLine(t, f.line(t, evaluation.WindowSpec{Kind: "30d"}, evaluation.Hotline), evaluation.Counts{Served: 1, BadReview: 1, Upheld: 1})

	// A decision taken while Redis did not answer, applied later, keeps
	// its time, and counts on its call's day too.
	f.serve(t, f.store, "c2", "agent-1", served)
	f.rate(t, f.store, "c2", "agent-1", evaluation.BadReview, served, served.Add(time.Minute))
	decidedAt := time.Date(2027, 1, 1, 18, 0, 0, 0, f.loc)
	c, err := f.store.ReviewAt(f.ctx, "c2", evaluation.Dismissed, "sup-1", "", decidedAt)
	if err != nil || c.ReviewedAt == nil || !c.ReviewedAt.Equal(decidedAt) {
		t.Fatalf("ReviewAt: %+v, %v", c, err)
	}
	wantLine(t, f.line(t, evaluation.WindowSpec{Kind: "day", Day: "2026-12-31"}, evaluation.Hotline),
		evaluation.Counts{Served: 2, BadReview: 2, Upheld: 1, Dismissed: 1})
}

// TestReversal: upheld → dismissed takes the effective complaint back,
// and back again; a repeated reversal moves nothing twice.
func TestReversal(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testReversal)
}

func testReversal(t *testing.T, rdb redis.UniversalClient) {
	f := newLine(t, rdb)
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, f.loc)
	f.serve(t, f.store, "c1", "agent-1", at)
	f.rate(t, f.store, "c1", "agent-1", evaluation.BadReview, at, at.Add(5*time.Minute))
	day := evaluation.WindowSpec{Kind: "day", Day: "2026-11-27"}
	agent := evaluation.Scope{AgentID: "agent-1"}

	if _, err := f.store.Reverse(f.ctx, "c1", evaluation.Dismissed, "sup-2", ""); !errors.Is(err, evaluation.ErrInvalid) {
		t.Fatalf("reversing a pending complaint: %v; want ErrInvalid", err)
	}
	f.review(t, f.store, "c1", evaluation.Upheld)
	wantLine(t, f.line(t, day, agent), evaluation.Counts{Served: 1, BadReview: 1, Upheld: 1})
	if _, err := f.store.Review(f.ctx, "c1", evaluation.Dismissed, "sup-2", ""); !errors.Is(err, evaluation.ErrAlreadyReviewed) {
		t.Fatalf("a second review with another decision: %v; want ErrAlreadyReviewed", err)
	}
	for range 2 { // the second is a retry
		c, err := f.store.Reverse(f.ctx, "c1", evaluation.Dismissed, "sup-2", "the caller meant the organizer")
		if err != nil || c.Status != evaluation.Dismissed || c.ReviewedBy != "sup-2" {
			t.Fatalf("reverse: %+v, %v", c, err)
		}
		wantLine(t, f.line(t, day, agent), evaluation.Counts{Served: 1, BadReview: 1, Dismissed: 1})
	}
	if got := complaintIDs(mustComplaints(t, f.store, evaluation.Upheld)); len(got) != 0 {
		t.Fatalf("still listed upheld: %v", got)
	}
	if _, err := f.store.Reverse(f.ctx, "c1", evaluation.Upheld, "sup-3", "on appeal"); err != nil {
		t.Fatal(err)
	}
	wantLine(t, f.line(t, day, evaluation.Hotline), evaluation.Counts{Served: 1, BadReview: 1, Upheld: 1})
	if got := complaintIDs(mustComplaints(t, f.store, evaluation.Dismissed)); len(got) != 0 {
		t.Fatalf("still listed dismissed: %v", got)
	}
	if _, err := f.store.Reverse(f.ctx, "nope", evaluation.Upheld, "sup-3", ""); !errors.Is(err, evaluation.ErrNotFound) {
		t.Fatalf("reversing no complaint: %v; want ErrNotFound", err)
	}
	f.noDifference(t, f.store, f.window(t, day))
}

// TestTwoNodes: a call served on one node, rated and reviewed on
// another, counts once, on the day the first node saw it served, though
// the second node's clock said the next day.
func TestTwoNodes(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testTwoNodes)
}

func testTwoNodes(t *testing.T, rdb redis.UniversalClient) {
	f := newLine(t, rdb)
	other := evaluation.NewStore(rdb, evaluation.StoreOptions{Location: f.loc, Now: f.clock.Now})
	at := time.Date(2026, 11, 27, 23, 59, 58, 0, f.loc)
	f.serve(t, f.store, "c1", "agent-1", at)
	// The second node's clock is 3 s ahead: past midnight.
	f.rate(t, other, "c1", "agent-1", evaluation.BadReview, at.Add(3*time.Second), at.Add(10*time.Second))
	f.serve(t, other, "c1", "agent-1", at.Add(3*time.Second)) // the event again, from the second node
	f.review(t, other, "c1", evaluation.Upheld)
	f.review(t, f.store, "c1", evaluation.Upheld)

	wantLine(t, f.line(t, evaluation.WindowSpec{Kind: "day", Day: "2026-11-27"}, evaluation.Hotline),
		evaluation.Counts{Served: 1, BadReview: 1, Upheld: 1})
	wantLine(t, f.line(t, evaluation.WindowSpec{Kind: "day", Day: "2026-11-28"}, evaluation.Hotline), evaluation.Counts{})
	// A rating that came first counts its call served, and the served
	// event after it moves nothing.
	f.rate(t, other, "c2", "agent-2", evaluation.Praise, at, at.Add(time.Minute))
	f.serve(t, f.store, "c2", "agent-2", at)
	wantLine(t, f.line(t, evaluation.WindowSpec{Kind: "day", Day: "2026-11-27"}, evaluation.Scope{AgentID: "agent-2"}),
		evaluation.Counts{Served: 1, Praise: 1})
	f.noDifference(t, other, evaluation.Window{Kind: evaluation.WindowRange, From: "2026-11-27", To: "2026-11-28"})
}

// TestConcurrentTwoStores: 20 goroutines on two stores write the same
// events of the same calls at once; every call counts once.
func TestConcurrentTwoStores(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testConcurrentTwoStores)
}

func testConcurrentTwoStores(t *testing.T, rdb redis.UniversalClient) {
	f := newLine(t, rdb)
	stores := []*evaluation.Store{f.store, evaluation.NewStore(rdb, evaluation.StoreOptions{Location: f.loc, Now: f.clock.Now})}
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, f.loc)
	const calls = 60
	type call struct {
		id, agent string
		verdict   evaluation.Verdict
		decision  evaluation.ComplaintStatus
	}
	var want evaluation.Counts
	cs := make([]call, calls)
	for i := range cs {
		c := call{id: fmt.Sprintf("c%02d", i), agent: fmt.Sprintf("agent-%d", i%3)}
		switch i % 5 {
		case 0, 1:
			c.verdict = evaluation.Praise
			want.Praise++
		case 2:
			c.verdict = evaluation.BadReview
			c.decision = evaluation.Upheld
			want.BadReview++
			want.Upheld++
		case 3:
			c.verdict = evaluation.BadReview
			c.decision = evaluation.Dismissed
			want.BadReview++
			want.Dismissed++
		case 4:
			c.verdict = evaluation.NoRating
			want.NoRating++
		}
		want.Served++
		cs[i] = c
	}
	start := make(chan struct{})
	errs := make(chan error, 20*calls*3)
	var wg sync.WaitGroup
	for g := range 20 {
		s := stores[g%2]
		wg.Go(func() {
			<-start
			for _, c := range cs {
				served := at.Add(time.Duration(len(c.id)) * time.Second)
				if err := s.Served(f.ctx, evaluation.ServedCall{CallID: c.id, AgentID: c.agent, Category: appeal.General, At: served}); err != nil {
					errs <- err
				}
				r := rating(c.id, c.agent, c.verdict, served.Add(time.Minute))
				r.ServedAt = served
				if _, err := s.Record(f.ctx, r); err != nil {
					errs <- err
				}
				if c.decision != "" {
					if _, err := s.Review(f.ctx, c.id, c.decision, fmt.Sprintf("sup-%d", g), ""); err != nil {
						errs <- err
					}
				}
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	spec := evaluation.WindowSpec{Kind: "day", Day: "2026-11-27"}
	wantLine(t, f.line(t, spec, evaluation.Hotline), want)
	wantLine(t, f.line(t, spec, evaluation.Scope{Category: appeal.General}), want)
	var agents evaluation.Counts
	for i := range 3 {
		agents = agents.Add(f.line(t, spec, evaluation.Scope{AgentID: fmt.Sprintf("agent-%d", i)}).Counts)
	}
	if agents != want {
		t.Fatalf("agents sum to %+v; want %+v", agents, want)
	}
	f.noDifference(t, stores[1], f.window(t, spec))
}

// TestRandomEventsMatchRecount: 10,000 random events (served, rated,
// reviewed, reversed, and retries of each), on two stores, in an order a
// hotline may see them (a rating before its served event, a review on
// another node); then the counters equal a recount from the records and
// a model of what each call should count.
func TestRandomEventsMatchRecount(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testRandomEventsMatchRecount)
}

func testRandomEventsMatchRecount(t *testing.T, rdb redis.UniversalClient) {
	f := newLine(t, rdb)
	stores := []*evaluation.Store{f.store, evaluation.NewStore(rdb, evaluation.StoreOptions{Location: f.loc, Now: f.clock.Now})}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 11))
	start := time.Date(2026, 11, 29, 20, 0, 0, 0, f.loc) // three days and a month's end
	model, err := evaltest.Random(f.ctx, stores, rng, 10000, start, f.loc)
	if err != nil {
		t.Fatal(err)
	}
	w := evaluation.Window{Kind: evaluation.WindowRange, From: "2026-11-29", To: "2026-12-02"}
	counted, err := f.store.Counters(f.ctx, w.Days())
	if err != nil {
		t.Fatal(err)
	}
	recounted, err := f.store.Recount(f.ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	for _, day := range w.Days() {
		for sc, want := range model[day] {
			if counted[day][sc] != want || recounted[day][sc] != want {
				t.Errorf("%s %+v: counted %+v, recounted %+v; the model says %+v", day, sc, counted[day][sc], recounted[day][sc], want)
			}
		}
		if len(counted[day]) != len(model[day]) || len(recounted[day]) != len(model[day]) {
			t.Errorf("%s: %d scopes counted, %d recounted, %d in the model", day, len(counted[day]), len(recounted[day]), len(model[day]))
		}
	}
	f.noDifference(t, stores[1], w)
	// The month sums its days.
	var nov evaluation.Counts
	for _, d := range []string{"2026-11-29", "2026-11-30"} {
		nov = nov.Add(model[d][evaluation.Hotline])
	}
	f.clock.Set(start)
	wantLine(t, f.line(t, evaluation.WindowSpec{Kind: "month"}, evaluation.Hotline), nov)
}

// TestAgentLinesWorstFirst ranks the agents of a window.
func TestAgentLinesWorstFirst(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testAgentLinesWorstFirst)
}

func testAgentLinesWorstFirst(t *testing.T, rdb redis.UniversalClient) {
	f := newLine(t, rdb)
	at := time.Date(2026, 11, 3, 10, 0, 0, 0, f.loc)
	n := 0
	add := func(agent string, served, upheld int) {
		for i := range served {
			n++
			id := fmt.Sprintf("c%d", n)
			f.serve(t, f.store, id, agent, at)
			if i < upheld {
				f.rate(t, f.store, id, agent, evaluation.BadReview, at, at.Add(time.Minute))
				f.review(t, f.store, id, evaluation.Upheld)
			}
		}
	}
	add("calm", 20, 0)
	add("busy", 40, 0)
	add("one-in-ten", 10, 1)
	add("two-in-ten", 10, 2)
	add("one-in-five", 5, 1) // the same rate as two-in-ten, fewer complaints
	add("last", 1, 0)        // the last row of the table: it ends after its served count
	rk, err := f.store.AgentLines(f.ctx, f.window(t, evaluation.WindowSpec{Kind: "month", Month: "2026-11"}))
	lines := rk.Agents
	if err != nil || rk.LimitPer10000 != 3 || rk.From != "2026-11-01" {
		t.Fatal(err)
	}
	var got []string
	for _, l := range lines {
		got = append(got, l.AgentID)
	}
	want := []string{"two-in-ten", "one-in-five", "one-in-ten", "busy", "calm", "last"}
	if !sameIDs(got, want) {
		t.Fatalf("ranking %v; want %v", got, want)
	}
	if lines[5].Served != 1 {
		t.Fatalf("last: %+v", lines[5].Counts)
	}
	rk, err = f.store.AgentLines(f.ctx, f.window(t, evaluation.WindowSpec{Kind: "month", Month: "2026-12"}))
	if err != nil || rk.Agents == nil || len(rk.Agents) != 0 {
		t.Fatalf("December: %#v, %v", rk.Agents, err)
	}
}

// TestLineKeys: every key the line writes is the store's, under its hash
// tag, and expires after the retention; a call older than the retention
// counts no more.
func TestLineKeys(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testLineKeys)
}

func testLineKeys(t *testing.T, rdb redis.UniversalClient) {
	ctx := context.Background()
	loc := shanghai(t)
	clock := testclock.New(time.Date(2026, 11, 27, 12, 0, 0, 0, loc))
	const retention = 100 * 24 * time.Hour
	s := evaluation.NewStore(rdb, evaluation.StoreOptions{Location: loc, Now: clock.Now, Retention: retention})
	if err := s.Served(ctx, evaluation.ServedCall{CallID: "c1", AgentID: "a1", Category: appeal.General, At: clock.Now()}); err != nil {
		t.Fatal(err)
	}
	keys := redistest.Keys(t, rdb, "*")
	for _, k := range keys {
		if !strings.HasPrefix(k, "hotline:{eval}:line:") {
			t.Errorf("key %s is not the line's", k)
			continue
		}
		ttl, err := rdb.PTTL(ctx, k).Result()
		if err != nil || ttl <= retention-time.Minute || ttl > retention {
			t.Errorf("key %s expires in %v (%v); want %v", k, ttl, err, retention)
		}
	}
	if len(keys) != 4 {
		t.Errorf("keys %v; want the call's record, the day's table and calls, the row index", keys)
	}
	old := clock.Now().Add(-retention - time.Hour)
	if err := s.Served(ctx, evaluation.ServedCall{CallID: "old", AgentID: "a1", Category: appeal.General, At: old}); err != nil {
		t.Fatal(err)
	}
	w := evaluation.Window{Kind: evaluation.WindowDay, From: old.In(loc).Format(time.DateOnly), To: old.In(loc).Format(time.DateOnly)}
	if l, err := s.Line(ctx, w, evaluation.Hotline); err != nil || !l.Counts.IsZero() {
		t.Fatalf("a call older than the retention: %+v, %v", l.Counts, err)
	}
	if _, err := s.Line(ctx, w, evaluation.Scope{AgentID: "a1", Category: appeal.General}); !errors.Is(err, evaluation.ErrInvalid) {
		t.Fatalf("an agent and a category at once: %v; want ErrInvalid", err)
	}
}

// TestBatches: RecordAll and ServedAll answer each event on its own, as
// one at a time would: an invalid one fails alone, the same call twice in
// a batch counts once, a rating whose time says another day than its
// served event counts on the served day, and a script Redis forgot (a
// restart, a failover) is loaded again.
func TestBatches(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testBatches)
}

func testBatches(t *testing.T, rdb redis.UniversalClient) {
	f := newLine(t, rdb)
	at := time.Date(2026, 11, 27, 23, 59, 0, 0, f.loc)
	errs := f.store.ServedAll(f.ctx, []evaluation.ServedCall{
		{CallID: "c1", AgentID: "a1", Category: appeal.General, At: at},
		{CallID: "c2", AgentID: "a1", Category: "music", At: at},
		{CallID: "c3", AgentID: "a2", Category: appeal.Emergency, At: at},
		{CallID: "c1", AgentID: "a1", Category: appeal.General, At: at},
		{CallID: "c4", AgentID: "a|b", Category: appeal.General, At: at},
	})
	for i, want := range []bool{true, false, true, true, false} {
		if (errs[i] == nil) != want || (errs[i] != nil && !errors.Is(errs[i], evaluation.ErrInvalid)) {
			t.Errorf("served %d: %v", i, errs[i])
		}
	}
	if err := rdb.ScriptFlush(f.ctx).Err(); err != nil {
		t.Fatal(err)
	}
	late := at.Add(2 * time.Minute) // the next day, by another clock
	r1 := rating("c1", "a1", evaluation.BadReview, late)
	r1.ServedAt = late
	r3 := rating("c3", "a2", evaluation.Praise, late)
	r3.Category = appeal.Emergency
	r5 := rating("c5", "a2", evaluation.NoRating, late) // its served event was lost
	r1again := r1
	r1again.Verdict, r1again.Key = evaluation.Praise, "1"
	bad := rating("", "a1", evaluation.Praise, late)
	got, errs := f.store.RecordAll(f.ctx, []evaluation.Rating{r1, r3, r5, r1again, bad})
	if errs[0] != nil || errs[1] != nil || errs[2] != nil || !errors.Is(errs[3], evaluation.ErrAlreadyRated) || !errors.Is(errs[4], evaluation.ErrInvalid) {
		t.Fatalf("errors %v", errs)
	}
	if got[3].Verdict != evaluation.BadReview || got[0].CallID != "c1" {
		t.Fatalf("answers %+v", got)
	}
	wantLine(t, f.line(t, evaluation.WindowSpec{Day: "2026-11-27"}, evaluation.Hotline),
		evaluation.Counts{Served: 2, BadReview: 1, Praise: 1})
	wantLine(t, f.line(t, evaluation.WindowSpec{Day: "2026-11-28"}, evaluation.Hotline),
		evaluation.Counts{Served: 1, NoRating: 1})
	wantLine(t, f.line(t, evaluation.WindowSpec{Day: "2026-11-27"}, evaluation.Scope{Category: appeal.Emergency}),
		evaluation.Counts{Served: 1, Praise: 1})
	f.noDifference(t, f.store, evaluation.Window{Kind: evaluation.WindowRange, From: "2026-11-27", To: "2026-11-28"})
}

// TestCallerGivesUp: a caller whose context ends before its event is
// stored gets the context's error; sent again, the event counts once,
// whether or not the first run reached Redis.
func TestCallerGivesUp(t *testing.T) {
	t.Parallel()
	f := newLine(t, redistest.Start(t).Client(t))
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, f.loc)
	ctx, cancel := context.WithCancel(f.ctx)
	cancel()
	err := f.store.Served(ctx, evaluation.ServedCall{CallID: "c1", AgentID: "a1", Category: appeal.General, At: at})
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("served with an ended context: %v", err)
	}
	f.serve(t, f.store, "c1", "a1", at)
	f.serve(t, f.store, "c1", "a1", at)
	wantLine(t, f.line(t, evaluation.WindowSpec{Day: "2026-11-27"}, evaluation.Hotline), evaluation.Counts{Served: 1})
}
