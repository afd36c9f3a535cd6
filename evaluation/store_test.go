package evaluation_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // Asia/Shanghai without depending on the host's tz database

	"github.com/redis/go-redis/v9"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/evaluation"
	"github.com/hotline12345/hotline/internal/redistest"
	"github.com/hotline12345/hotline/internal/testclock"
	"github.com/hotline12345/hotline/storage"
)

func TestMain(m *testing.M) { os.Exit(redistest.RunTests(m)) }

func shanghai(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// fixture is a Store, days counted in Beijing time; srv is set when the
// Store has a redis-server of its own (newFixture).
type fixture struct {
	srv   *redistest.Server
	rdb   redis.UniversalClient
	store *evaluation.Store
	clock *testclock.Clock
	loc   *time.Location
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv := redistest.Start(t)
	f := newFixtureOn(t, srv.Client(t))
	f.srv = srv
	return f
}

// newFixtureOn is a Store on rdb, days counted in Beijing time.
func newFixtureOn(t *testing.T, rdb redis.UniversalClient) *fixture {
	t.Helper()
	loc := shanghai(t)
	c := testclock.New(time.Date(2026, 11, 27, 12, 0, 0, 0, loc))
	return &fixture{
		rdb: rdb, clock: c, loc: loc,
		store: evaluation.NewStore(rdb, evaluation.StoreOptions{Location: loc, Now: c.Now}),
	}
}

// rating is a complete rating of call id by agent at at.
func rating(id, agent string, v evaluation.Verdict, at time.Time) evaluation.Rating {
	r := evaluation.Rating{
		CallID: id, AppealID: "2611270001", AgentID: agent, Category: appeal.General,
		Verdict: v, At: at, PromptID: "rating", PromptVersion: "0123456789ab",
	}
	switch v {
	case evaluation.Praise:
		r.Key = "1"
	case evaluation.BadReview:
		r.Key = "2"
	case evaluation.NoRating:
		r.Reason = evaluation.ReasonNoInput
	}
	return r
}

// equal compares ratings, their times as instants.
func equal(a, b evaluation.Rating) bool {
	if !a.At.Equal(b.At) {
		return false
	}
	a.At, b.At = time.Time{}, time.Time{}
	return a == b
}

func ids(rs []evaluation.Rating) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.CallID
	}
	return out
}

func complaintIDs(cs []evaluation.Complaint) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}

func sameIDs(a, b []string) bool {
	return fmt.Sprint(a) == fmt.Sprint(b)
}

// wantCounts compares counts. In these tests every call was rated, so
// every rated call is a call served (its rating counts it), and Pending is
// the bad reviews not decided: want leaves both out.
func wantCounts(t *testing.T, got evaluation.AgentDay, err error, want evaluation.AgentDay) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	want.Served = want.Praise + want.BadReview + want.NoRating
	want.Pending = want.BadReview - want.Upheld - want.Dismissed
	if got != want {
		t.Fatalf("counts = %+v; want %+v", got, want)
	}
}

func TestFirstRatingWins(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testFirstRatingWins)
}

func testFirstRatingWins(t *testing.T, rdb redis.UniversalClient) {
	f := newFixtureOn(t, rdb)
	ctx := context.Background()
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, f.loc)
	const calls, tries = 12, 16

	var badWins int
	for c := range calls {
		id := fmt.Sprintf("race-%d", c)
		type result struct {
			sent evaluation.Verdict
			got  evaluation.Rating
			err  error
		}
		results := make([]result, tries)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range tries {
			v := evaluation.Praise
			if i%2 == 1 {
				v = evaluation.BadReview
			}
			wg.Go(func() {
				<-start
				got, err := f.store.Record(ctx, rating(id, "agent-7", v, at.Add(time.Duration(i)*time.Millisecond)))
				results[i] = result{v, got, err}
			})
		}
		close(start)
		wg.Wait()

		stored, err := f.store.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		accepted := 0
		for i, r := range results {
			if !equal(r.got, stored) {
				t.Fatalf("%s try %d returned %+v; stored is %+v", id, i, r.got, stored)
			}
			switch {
			case r.err == nil:
				accepted++
				if r.sent != stored.Verdict {
					t.Fatalf("%s try %d sent %s and got no error; stored is %s", id, i, r.sent, stored.Verdict)
				}
			case errors.Is(r.err, evaluation.ErrAlreadyRated):
				if r.sent == stored.Verdict {
					t.Fatalf("%s try %d sent the stored verdict %s and got %v", id, i, r.sent, r.err)
				}
			default:
				t.Fatalf("%s try %d: %v", id, i, r.err)
			}
		}
		if accepted != tries/2 {
			t.Fatalf("%s: %d tries accepted; want the %d that sent %s", id, accepted, tries/2, stored.Verdict)
		}
		_, cerr := f.store.Complaint(ctx, id)
		switch {
		case stored.Verdict == evaluation.BadReview && cerr == nil:
			badWins++
		case stored.Verdict == evaluation.Praise && errors.Is(cerr, evaluation.ErrNotFound):
		default:
			t.Fatalf("%s rated %s: complaint lookup %v", id, stored.Verdict, cerr)
		}
	}

	day := at
	want := evaluation.AgentDay{Day: "2026-11-27", Praise: int64(calls - badWins), BadReview: int64(badWins)}
	got, err := f.store.Totals(ctx, day)
	wantCounts(t, got, err, want)
	want.AgentID = "agent-7"
	got, err = f.store.AgentDay(ctx, "agent-7", day)
	wantCounts(t, got, err, want)

	all, err := f.store.List(ctx, evaluation.Query{})
	if err != nil || len(all) != calls {
		t.Fatalf("List: %d ratings, %v; want %d", len(all), err, calls)
	}
	pending, err := f.store.Complaints(ctx, evaluation.Pending, 0)
	if err != nil || len(pending) != badWins {
		t.Fatalf("pending complaints: %d, %v; want %d", len(pending), err, badWins)
	}
}

func TestRecordAgainIsIdempotent(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testRecordAgainIsIdempotent)
}

func testRecordAgainIsIdempotent(t *testing.T, rdb redis.UniversalClient) {
	f := newFixtureOn(t, rdb)
	ctx := context.Background()
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, f.loc)
	first := rating("call-1", "agent-1", evaluation.BadReview, at)

	got, err := f.store.Record(ctx, first)
	if err != nil || !equal(got, first) {
		t.Fatalf("Record = %+v, %v; want %+v", got, err, first)
	}
	// The same write again, as go-redis sends it after a read timeout.
	if got, err := f.store.Record(ctx, first); err != nil || !equal(got, first) {
		t.Fatalf("retry: %+v, %v; want the first rating and no error", got, err)
	}
	// The same key again a second later, as a repeated DTMF delivery.
	again := first
	again.At = at.Add(time.Second)
	if got, err := f.store.Record(ctx, again); err != nil || !equal(got, first) {
		t.Fatalf("repeat: %+v, %v; want the first rating and no error", got, err)
	}
	// A different answer is refused and reported.
	other := rating("call-1", "agent-1", evaluation.Praise, at.Add(2*time.Second))
	got, err = f.store.Record(ctx, other)
	if !errors.Is(err, evaluation.ErrAlreadyRated) || !equal(got, first) {
		t.Fatalf("second rating: %+v, %v; want the first rating and ErrAlreadyRated", got, err)
	}
	none := rating("call-1", "agent-1", evaluation.NoRating, at.Add(3*time.Second))
	if _, err := f.store.Record(ctx, none); !errors.Is(err, evaluation.ErrAlreadyRated) {
		t.Fatalf("no rating after a rating: %v; want ErrAlreadyRated", err)
	}

	counts, err := f.store.AgentDay(ctx, "agent-1", at)
	wantCounts(t, counts, err, evaluation.AgentDay{AgentID: "agent-1", Day: "2026-11-27", BadReview: 1})
	all, err := f.store.List(ctx, evaluation.Query{})
	if err != nil || !sameIDs(ids(all), []string{"call-1"}) {
		t.Fatalf("List = %v, %v; want one entry", ids(all), err)
	}
	cs, err := f.store.Complaints(ctx, "", 0)
	if err != nil || !sameIDs(complaintIDs(cs), []string{"call-1"}) {
		t.Fatalf("complaints = %v, %v; want one", complaintIDs(cs), err)
	}
	c := cs[0]
	if c.Status != evaluation.Pending || c.CallID != "call-1" || c.AgentID != "agent-1" ||
		c.AppealID != "2611270001" || c.Category != appeal.General || !c.OpenedAt.Equal(at) || c.ReviewedAt != nil {
		t.Fatalf("complaint = %+v", c)
	}
}

func TestRecordWithoutTimeUsesClock(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testRecordWithoutTimeUsesClock)
}

func testRecordWithoutTimeUsesClock(t *testing.T, rdb redis.UniversalClient) {
	f := newFixtureOn(t, rdb)
	ctx := context.Background()
	r := rating("call-1", "agent-1", evaluation.Praise, time.Time{})
	got, err := f.store.Record(ctx, r)
	if err != nil || !got.At.Equal(f.clock.Now()) {
		t.Fatalf("Record = %+v, %v; want At %v", got, err, f.clock.Now())
	}
}

func TestDaysInShanghai(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testDaysInShanghai)
}

func testDaysInShanghai(t *testing.T, rdb redis.UniversalClient) {
	f := newFixtureOn(t, rdb)
	ctx := context.Background()
	lastSecond := time.Date(2026, 11, 27, 23, 59, 59, 0, f.loc)
	midnight := time.Date(2026, 11, 28, 0, 0, 0, 0, f.loc)
	for _, r := range []evaluation.Rating{
		rating("late", "agent-1", evaluation.Praise, lastSecond),
		rating("early", "agent-1", evaluation.BadReview, midnight),
		rating("other", "agent-2", evaluation.Praise, lastSecond.Add(-time.Hour)),
		rating("silent", "agent-2", evaluation.NoRating, midnight.Add(time.Hour)),
	} {
		if _, err := f.store.Record(ctx, r); err != nil {
			t.Fatal(err)
		}
	}

	got, err := f.store.AgentDay(ctx, "agent-1", time.Date(2026, 11, 27, 0, 0, 0, 0, f.loc))
	wantCounts(t, got, err, evaluation.AgentDay{AgentID: "agent-1", Day: "2026-11-27", Praise: 1})
	// 16:00 UTC is already midnight in Beijing: the day is the store's.
	got, err = f.store.AgentDay(ctx, "agent-1", time.Date(2026, 11, 27, 16, 0, 0, 0, time.UTC))
	wantCounts(t, got, err, evaluation.AgentDay{AgentID: "agent-1", Day: "2026-11-28", BadReview: 1})
	got, err = f.store.Totals(ctx, lastSecond)
	wantCounts(t, got, err, evaluation.AgentDay{Day: "2026-11-27", Praise: 2})
	got, err = f.store.Totals(ctx, midnight)
	wantCounts(t, got, err, evaluation.AgentDay{Day: "2026-11-28", BadReview: 1, NoRating: 1})
	got, err = f.store.AgentDay(ctx, "agent-3", midnight)
	wantCounts(t, got, err, evaluation.AgentDay{AgentID: "agent-3", Day: "2026-11-28"})

	// The same two instants fall on one UTC day: Location decides.
	utc := evaluation.NewStore(f.rdb, evaluation.StoreOptions{Prefix: "utc", Location: time.UTC})
	for _, r := range []evaluation.Rating{
		rating("late", "agent-1", evaluation.Praise, lastSecond),
		rating("early", "agent-1", evaluation.BadReview, midnight),
	} {
		if _, err := utc.Record(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	got, err = utc.AgentDay(ctx, "agent-1", lastSecond)
	wantCounts(t, got, err, evaluation.AgentDay{AgentID: "agent-1", Day: "2026-11-27", Praise: 1, BadReview: 1})
}

func TestNoRatingKeepsReason(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testNoRatingKeepsReason)
}

func testNoRatingKeepsReason(t *testing.T, rdb redis.UniversalClient) {
	f := newFixtureOn(t, rdb)
	ctx := context.Background()
	at := time.Date(2026, 11, 27, 9, 0, 0, 0, f.loc)
	reasons := []string{evaluation.ReasonNoInput, evaluation.ReasonInvalidKey, evaluation.ReasonCallerHangup}
	for i, reason := range reasons {
		r := rating(fmt.Sprintf("call-%d", i), "agent-1", evaluation.NoRating, at)
		r.Reason = reason
		if _, err := f.store.Record(ctx, r); err != nil {
			t.Fatal(err)
		}
		got, err := f.store.Get(ctx, r.CallID)
		if err != nil || got.Verdict != evaluation.NoRating || got.Reason != reason || got.Key != "" {
			t.Fatalf("Get = %+v, %v; want none for %s", got, err, reason)
		}
		if _, err := f.store.Complaint(ctx, r.CallID); !errors.Is(err, evaluation.ErrNotFound) {
			t.Fatalf("a call without rating opened a complaint: %v", err)
		}
	}
	got, err := f.store.AgentDay(ctx, "agent-1", at)
	wantCounts(t, got, err, evaluation.AgentDay{AgentID: "agent-1", Day: "2026-11-27", NoRating: int64(len(reasons))})
	if _, err := f.store.Get(ctx, "never-asked"); !errors.Is(err, evaluation.ErrNotFound) {
		t.Fatalf("Get of an unrated call: %v; want ErrNotFound", err)
	}
}

func TestListFiltersNewestFirst(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testListFiltersNewestFirst)
}

func testListFiltersNewestFirst(t *testing.T, rdb redis.UniversalClient) {
	f := newFixtureOn(t, rdb)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 27, 8, 0, 0, 0, f.loc)
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }
	// Recorded out of order: the index sorts by rating time.
	for _, i := range []int{3, 0, 5, 1, 4, 2} {
		agent := "agent-a"
		if i%2 == 1 {
			agent = "agent-b"
		}
		if _, err := f.store.Record(ctx, rating(fmt.Sprintf("c%d", i), agent, evaluation.Praise, at(i))); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		q    evaluation.Query
		want []string
	}{
		{"all", evaluation.Query{}, []string{"c5", "c4", "c3", "c2", "c1", "c0"}},
		{"from included", evaluation.Query{From: at(3)}, []string{"c5", "c4", "c3"}},
		{"to excluded", evaluation.Query{To: at(2)}, []string{"c1", "c0"}},
		{"range", evaluation.Query{From: at(1), To: at(4)}, []string{"c3", "c2", "c1"}},
		{"range in another zone", evaluation.Query{From: at(1).UTC(), To: at(4).UTC()}, []string{"c3", "c2", "c1"}},
		{"empty range", evaluation.Query{From: at(4), To: at(1)}, []string{}},
		{"agent", evaluation.Query{AgentID: "agent-b"}, []string{"c5", "c3", "c1"}},
		{"agent and range", evaluation.Query{AgentID: "agent-a", From: at(1), To: at(5)}, []string{"c4", "c2"}},
		{"unknown agent", evaluation.Query{AgentID: "agent-z"}, []string{}},
		{"limit", evaluation.Query{Limit: 2}, []string{"c5", "c4"}},
		{"limit with range", evaluation.Query{From: at(1), To: at(4), Limit: 2}, []string{"c3", "c2"}},
	} {
		got, err := f.store.List(ctx, tc.q)
		if err != nil || !sameIDs(ids(got), tc.want) {
			t.Errorf("%s: List = %v, %v; want %v", tc.name, ids(got), err, tc.want)
		}
	}
	got, err := f.store.List(ctx, evaluation.Query{Limit: 1})
	if err != nil || len(got) != 1 || !equal(got[0], rating("c5", "agent-b", evaluation.Praise, at(5))) {
		t.Fatalf("List = %+v, %v; want c5 whole", got, err)
	}
}

func TestListLimits(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testListLimits)
}

func testListLimits(t *testing.T, rdb redis.UniversalClient) {
	f := newFixtureOn(t, rdb)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 27, 8, 0, 0, 0, f.loc)
	n := evaluation.MaxListLimit + 1
	for i := range n {
		if _, err := f.store.Record(ctx, rating(fmt.Sprintf("c%04d", i), "agent-1", evaluation.Praise, t0.Add(time.Duration(i)*time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ limit, want int }{
		{0, evaluation.DefaultListLimit},
		{-1, evaluation.DefaultListLimit},
		{n + 10, evaluation.MaxListLimit},
	} {
		got, err := f.store.List(ctx, evaluation.Query{Limit: tc.limit})
		if err != nil || len(got) != tc.want {
			t.Errorf("List(limit %d): %d, %v; want %d", tc.limit, len(got), err, tc.want)
		}
	}
}

func TestComplaintLifecycle(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testComplaintLifecycle)
}

func testComplaintLifecycle(t *testing.T, rdb redis.UniversalClient) {
	f := newFixtureOn(t, rdb)
	ctx := context.Background()
	day := time.Date(2026, 11, 27, 0, 0, 0, 0, f.loc)
	opened := day.Add(22 * time.Hour)
	for i, id := range []string{"c1", "c2", "c3", "c4"} {
		if _, err := f.store.Record(ctx, rating(id, "agent-1", evaluation.BadReview, opened.Add(time.Duration(i)*time.Minute))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.store.Record(ctx, rating("p1", "agent-1", evaluation.Praise, opened)); err != nil {
		t.Fatal(err)
	}
	list := func(status evaluation.ComplaintStatus) []string {
		t.Helper()
		cs, err := f.store.Complaints(ctx, status, 0)
		if err != nil {
			t.Fatal(err)
		}
		return complaintIDs(cs)
	}
	if got := list(evaluation.Pending); !sameIDs(got, []string{"c1", "c2", "c3", "c4"}) {
		t.Fatalf("pending = %v; want oldest first", got)
	}

	// Reviewed the next day: the decision counts on the day of the call.
	reviewed := day.Add(33 * time.Hour)
	f.clock.Set(reviewed)
	c, err := f.store.Review(ctx, "c2", evaluation.Upheld, "sup-1", "rude to the caller")
	if err != nil {
		t.Fatal(err)
	}
	if c.Status != evaluation.Upheld || c.ReviewedAt == nil || !c.ReviewedAt.Equal(reviewed) ||
		c.ReviewedBy != "sup-1" || c.Note != "rude to the caller" || c.CallID != "c2" || c.AgentID != "agent-1" {
		t.Fatalf("Review = %+v", c)
	}
	if got, err := f.store.Complaint(ctx, "c2"); err != nil || got.Status != evaluation.Upheld || !got.ReviewedAt.Equal(reviewed) {
		t.Fatalf("Complaint = %+v, %v", got, err)
	}

	// The same decision again is a no-op; the first review stands.
	f.clock.Set(reviewed.Add(time.Hour))
	c, err = f.store.Review(ctx, "c2", evaluation.Upheld, "sup-2", "agreed")
	if err != nil || c.ReviewedBy != "sup-1" || !c.ReviewedAt.Equal(reviewed) {
		t.Fatalf("same review again: %+v, %v; want the first review and no error", c, err)
	}
	// Another decision is refused.
	c, err = f.store.Review(ctx, "c2", evaluation.Dismissed, "sup-2", "")
	if !errors.Is(err, evaluation.ErrAlreadyReviewed) || c.Status != evaluation.Upheld {
		t.Fatalf("other review: %+v, %v; want upheld and ErrAlreadyReviewed", c, err)
	}

	f.clock.Set(reviewed.Add(2 * time.Hour))
	if c, err := f.store.Review(ctx, "c1", evaluation.Dismissed, "sup-1", "the caller pressed the wrong key"); err != nil || c.Status != evaluation.Dismissed {
		t.Fatalf("dismiss: %+v, %v", c, err)
	}
	f.clock.Set(reviewed.Add(3 * time.Hour))
	if _, err := f.store.Review(ctx, "c4", evaluation.Upheld, "sup-1", ""); err != nil {
		t.Fatal(err)
	}

	if got := list(evaluation.Pending); !sameIDs(got, []string{"c3"}) {
		t.Fatalf("pending = %v; want c3", got)
	}
	if got := list(evaluation.Upheld); !sameIDs(got, []string{"c4", "c2"}) {
		t.Fatalf("upheld = %v; want newest review first", got)
	}
	if got := list(evaluation.Dismissed); !sameIDs(got, []string{"c1"}) {
		t.Fatalf("dismissed = %v", got)
	}
	if got := list(""); !sameIDs(got, []string{"c4", "c3", "c2", "c1"}) {
		t.Fatalf("all = %v; want newest first", got)
	}
	if cs, err := f.store.Complaints(ctx, evaluation.Pending, 1); err != nil || len(cs) != 1 {
		t.Fatalf("limit 1: %d, %v", len(cs), err)
	}

	want := evaluation.AgentDay{AgentID: "agent-1", Day: "2026-11-27", Praise: 1, BadReview: 4, Upheld: 2, Dismissed: 1}
	got, err := f.store.AgentDay(ctx, "agent-1", day)
	wantCounts(t, got, err, want)
	want.AgentID = ""
	got, err = f.store.Totals(ctx, day)
	wantCounts(t, got, err, want)
	got, err = f.store.Totals(ctx, reviewed)
	wantCounts(t, got, err, evaluation.AgentDay{Day: "2026-11-28"})

	for _, tc := range []struct {
		name   string
		id     string
		status evaluation.ComplaintStatus
		by     string
		want   error
	}{
		{"unknown id", "nope", evaluation.Upheld, "sup-1", evaluation.ErrNotFound},
		{"a praised call", "p1", evaluation.Upheld, "sup-1", evaluation.ErrNotFound},
		{"back to pending", "c3", evaluation.Pending, "sup-1", evaluation.ErrInvalid},
		{"unknown decision", "c3", "maybe", "sup-1", evaluation.ErrInvalid},
		{"no reviewer", "c3", evaluation.Dismissed, "", evaluation.ErrInvalid},
	} {
		if _, err := f.store.Review(ctx, tc.id, tc.status, tc.by, ""); !errors.Is(err, tc.want) {
			t.Errorf("%s: Review = %v; want %v", tc.name, err, tc.want)
		}
	}
	if c, err := f.store.Complaint(ctx, "c3"); err != nil || c.Status != evaluation.Pending {
		t.Fatalf("refused reviews changed c3: %+v, %v", c, err)
	}
	if _, err := f.store.Complaint(ctx, "nope"); !errors.Is(err, evaluation.ErrNotFound) {
		t.Fatalf("Complaint(nope) = %v; want ErrNotFound", err)
	}
	if _, err := f.store.Complaints(ctx, "maybe", 0); !errors.Is(err, evaluation.ErrInvalid) {
		t.Fatalf("Complaints(maybe) = %v; want ErrInvalid", err)
	}
}

func TestConcurrentReviewsDecideOnce(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testConcurrentReviewsDecideOnce)
}

func testConcurrentReviewsDecideOnce(t *testing.T, rdb redis.UniversalClient) {
	f := newFixtureOn(t, rdb)
	ctx := context.Background()
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, f.loc)
	if _, err := f.store.Record(ctx, rating("c1", "agent-1", evaluation.BadReview, at)); err != nil {
		t.Fatal(err)
	}
	const tries = 16
	errs := make([]error, tries)
	decisions := make([]evaluation.ComplaintStatus, tries)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range tries {
		decisions[i] = evaluation.Upheld
		if i%2 == 1 {
			decisions[i] = evaluation.Dismissed
		}
		wg.Go(func() {
			<-start
			_, errs[i] = f.store.Review(ctx, "c1", decisions[i], fmt.Sprintf("sup-%d", i), "")
		})
	}
	close(start)
	wg.Wait()

	c, err := f.store.Complaint(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	for i, err := range errs {
		switch {
		case decisions[i] == c.Status && err == nil:
		case decisions[i] != c.Status && errors.Is(err, evaluation.ErrAlreadyReviewed):
		default:
			t.Fatalf("try %d (%s) with %s stored: %v", i, decisions[i], c.Status, err)
		}
	}
	want := evaluation.AgentDay{AgentID: "agent-1", Day: "2026-11-27", BadReview: 1}
	if c.Status == evaluation.Upheld {
		want.Upheld = 1
	} else {
		want.Dismissed = 1
	}
	got, err := f.store.AgentDay(ctx, "agent-1", at)
	wantCounts(t, got, err, want)
	if got := complaintIDs(mustComplaints(t, f.store, c.Status)); !sameIDs(got, []string{"c1"}) {
		t.Fatalf("%s index = %v", c.Status, got)
	}
	if got := mustComplaints(t, f.store, evaluation.Pending); len(got) != 0 {
		t.Fatalf("still pending: %v", complaintIDs(got))
	}
}

func mustComplaints(t *testing.T, s *evaluation.Store, status evaluation.ComplaintStatus) []evaluation.Complaint {
	t.Helper()
	cs, err := s.Complaints(context.Background(), status, 0)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func TestRecordValidates(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testRecordValidates)
}

func testRecordValidates(t *testing.T, rdb redis.UniversalClient) {
	f := newFixtureOn(t, rdb)
	ctx := context.Background()
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, f.loc)
	praise := func(change func(*evaluation.Rating)) evaluation.Rating {
		r := rating("call-1", "agent-1", evaluation.Praise, at)
		change(&r)
		return r
	}
	none := func(change func(*evaluation.Rating)) evaluation.Rating {
		r := rating("call-1", "agent-1", evaluation.NoRating, at)
		change(&r)
		return r
	}
	for _, tc := range []struct {
		name string
		r    evaluation.Rating
	}{
		{"no call id", praise(func(r *evaluation.Rating) { r.CallID = "" })},
		{"no agent", praise(func(r *evaluation.Rating) { r.AgentID = "" })},
		{"no verdict", praise(func(r *evaluation.Rating) { r.Verdict = "" })},
		{"unknown verdict", praise(func(r *evaluation.Rating) { r.Verdict = "neutral" })},
		{"no category", praise(func(r *evaluation.Rating) { r.Category = "" })},
		{"unknown category", praise(func(r *evaluation.Rating) { r.Category = "traffic" })},
		{"no prompt", praise(func(r *evaluation.Rating) { r.PromptID = "" })},
		{"praise without key", praise(func(r *evaluation.Rating) { r.Key = "" })},
		{"two keys", praise(func(r *evaluation.Rating) { r.Key = "12" })},
		{"not a DTMF key", praise(func(r *evaluation.Rating) { r.Key = "x" })},
		{"praise with a reason", praise(func(r *evaluation.Rating) { r.Reason = evaluation.ReasonNoInput })},
		{"bad review without key", praise(func(r *evaluation.Rating) { r.Verdict, r.Key = evaluation.BadReview, "" })},
		{"none with key", none(func(r *evaluation.Rating) { r.Key = "3" })},
		{"none without reason", none(func(r *evaluation.Rating) { r.Reason = "" })},
		{"none with unknown reason", none(func(r *evaluation.Rating) { r.Reason = "busy" })},
	} {
		if _, err := f.store.Record(ctx, tc.r); !errors.Is(err, evaluation.ErrInvalid) {
			t.Errorf("%s: Record = %v; want ErrInvalid", tc.name, err)
		}
	}
	if _, err := f.store.Get(ctx, "call-1"); !errors.Is(err, evaluation.ErrNotFound) {
		t.Fatalf("an invalid rating was stored: %v", err)
	}
	got, err := f.store.Totals(ctx, at)
	wantCounts(t, got, err, evaluation.AgentDay{Day: "2026-11-27"})
	if _, err := f.store.AgentDay(ctx, "", at); !errors.Is(err, evaluation.ErrInvalid) {
		t.Fatalf("AgentDay without agent: %v; want ErrInvalid", err)
	}
	// Every valid key is taken, including A-D of the DTMF keypad.
	for i, key := range []string{"0", "9", "*", "#", "A", "D"} {
		r := rating(fmt.Sprintf("key-%d", i), "agent-1", evaluation.Praise, at)
		r.Key = key
		if _, err := f.store.Record(ctx, r); err != nil {
			t.Errorf("key %q: %v", key, err)
		}
	}
}

func TestSurvivesRestartAndCrash(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, f.loc)
	praise := rating("call-1", "agent-1", evaluation.Praise, at)
	bad := rating("call-2", "agent-1", evaluation.BadReview, at.Add(time.Minute))
	for _, r := range []evaluation.Rating{praise, bad} {
		if _, err := f.store.Record(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	f.srv.Restart(t)

	if got, err := f.store.Get(ctx, "call-1"); err != nil || !equal(got, praise) {
		t.Fatalf("after restart: %+v, %v", got, err)
	}
	// The one-rating guard survives with the data.
	if _, err := f.store.Record(ctx, rating("call-1", "agent-1", evaluation.BadReview, at)); !errors.Is(err, evaluation.ErrAlreadyRated) {
		t.Fatalf("second rating after restart: %v; want ErrAlreadyRated", err)
	}
	if _, err := f.store.Review(ctx, "call-2", evaluation.Upheld, "sup-1", ""); err != nil {
		t.Fatal(err)
	}
	f.srv.Kill(t)
	f.srv.Start(t)

	got, err := f.store.AgentDay(ctx, "agent-1", at)
	wantCounts(t, got, err, evaluation.AgentDay{AgentID: "agent-1", Day: "2026-11-27", Praise: 1, BadReview: 1, Upheld: 1})
	if c, err := f.store.Complaint(ctx, "call-2"); err != nil || c.Status != evaluation.Upheld || c.ReviewedBy != "sup-1" {
		t.Fatalf("complaint after crash: %+v, %v", c, err)
	}
	if got := complaintIDs(mustComplaints(t, f.store, evaluation.Upheld)); !sameIDs(got, []string{"call-2"}) {
		t.Fatalf("upheld after crash = %v", got)
	}
	all, err := f.store.List(ctx, evaluation.Query{AgentID: "agent-1"})
	if err != nil || !sameIDs(ids(all), []string{"call-2", "call-1"}) {
		t.Fatalf("List after crash = %v, %v", ids(all), err)
	}
}

// TestInProcessStore runs the scripts on the in-process store that
// storage falls back to when no redis-server is installed.
func TestInProcessStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := storage.Open(ctx, storage.Options{Mode: storage.InProcess})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	loc := shanghai(t)
	s := evaluation.NewStore(st.Client, evaluation.StoreOptions{Location: loc})
	at := time.Date(2026, 11, 27, 23, 59, 59, 0, loc)

	if _, err := s.Record(ctx, rating("c1", "agent-1", evaluation.BadReview, at)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Record(ctx, rating("c1", "agent-1", evaluation.Praise, at)); !errors.Is(err, evaluation.ErrAlreadyRated) {
		t.Fatalf("second rating: %v; want ErrAlreadyRated", err)
	}
	if _, err := s.Record(ctx, rating("c2", "agent-1", evaluation.Praise, at.Add(time.Second))); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Review(ctx, "c1", evaluation.Upheld, "sup-1", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Review(ctx, "c1", evaluation.Dismissed, "sup-1", ""); !errors.Is(err, evaluation.ErrAlreadyReviewed) {
		t.Fatalf("second review: %v; want ErrAlreadyReviewed", err)
	}
	got, err := s.AgentDay(ctx, "agent-1", at)
	wantCounts(t, got, err, evaluation.AgentDay{AgentID: "agent-1", Day: "2026-11-27", BadReview: 1, Upheld: 1})
	got, err = s.Totals(ctx, at.Add(time.Second))
	wantCounts(t, got, err, evaluation.AgentDay{Day: "2026-11-28", Praise: 1})
	all, err := s.List(ctx, evaluation.Query{From: at, To: at.Add(time.Second)})
	if err != nil || !sameIDs(ids(all), []string{"c1"}) {
		t.Fatalf("List = %v, %v", ids(all), err)
	}
}

// TestJSONNames pins the field names that the HTTP API hands out.
func TestJSONNames(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		v    any
		want []string
	}{
		{rating("c1", "a1", evaluation.Praise, at), []string{"agent_id", "appeal_id", "at", "call_id", "category", "key", "prompt_id", "prompt_version", "verdict"}},
		{evaluation.AgentDay{}, []string{"agent_id", "bad_review", "day", "dismissed", "no_rating", "pending", "praise", "served", "upheld"}},
		{evaluation.Complaint{ReviewedAt: &at, ReviewedBy: "s", Note: "n", AppealID: "1"}, []string{"agent_id", "appeal_id", "call_id", "category", "id", "note", "opened_at", "reviewed_at", "reviewed_by", "status"}},
	} {
		b, err := json.Marshal(tc.v)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		var got []string
		for k := range m {
			got = append(got, k)
		}
		sort.Strings(got)
		if !sameIDs(got, tc.want) {
			t.Errorf("%T: fields %v; want %v", tc.v, got, tc.want)
		}
	}
}

func BenchmarkRecord(b *testing.B) {
	ctx := context.Background()
	s := evaluation.NewStore(redistest.Start(b).Client(b), evaluation.StoreOptions{})
	at := time.Now()
	verdicts := []evaluation.Verdict{evaluation.Praise, evaluation.BadReview, evaluation.NoRating}
	for i := 0; b.Loop(); i++ {
		r := rating(fmt.Sprintf("bench-%d", i), fmt.Sprintf("agent-%d", i%20), verdicts[i%3], at)
		if _, err := s.Record(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
}
