package acd

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/internal/redistest"
	"github.com/hotline12345/hotline/internal/testclock"
)

type rig struct {
	t     *testing.T
	ctx   context.Context
	rdb   redis.UniversalClient
	clock *testclock.Clock
	s     *Store
}

// newRigOn is a Store on rdb, for tests run by redistest.Backends.
func newRigOn(t *testing.T, rdb redis.UniversalClient) *rig {
	t.Helper()
	r := &rig{t: t, ctx: t.Context(), rdb: rdb, clock: testclock.New(time.Date(2026, 11, 27, 9, 0, 0, 0, appeal.DefaultLocation()))}
	r.s = NewStore(r.rdb, StoreOptions{Now: r.clock.Now, Realm: "hotline"})
	return r
}

// agent provisions and registers an agent taking cats, one second after
// the previous one, so that agents made first have been idle longest.
func (r *rig) agent(id string, cats ...appeal.Category) {
	r.t.Helper()
	if _, err := r.s.Create(r.ctx, AgentSpec{ID: id, Name: "Agent " + id, SIPUser: "u" + id, Password: "secret-pw-" + id, Categories: cats}); err != nil {
		r.t.Fatal(err)
	}
	if st, err := r.s.Registered(r.ctx, id); err != nil || st != Available {
		r.t.Fatalf("register %s: %s %v", id, st, err)
	}
	r.clock.Add(time.Second)
}

func (r *rig) enqueue(call string, c appeal.Category) {
	r.t.Helper()
	if err := r.s.Enqueue(r.ctx, call, c, "node1"); err != nil {
		r.t.Fatal(err)
	}
	r.clock.Add(time.Millisecond)
}

// dispatch runs one dispatch and returns the offers as "call>agent".
func (r *rig) dispatch() []string {
	r.t.Helper()
	offers, err := r.s.Dispatch(r.ctx, 64)
	if err != nil {
		r.t.Fatal(err)
	}
	var out []string
	for _, o := range offers {
		out = append(out, o.CallID+">"+o.AgentID)
	}
	return out
}

func (r *rig) state(id string) Agent {
	r.t.Helper()
	a, err := r.s.Agent(r.ctx, id)
	if err != nil {
		r.t.Fatal(err)
	}
	return a
}

func (r *rig) wantState(id string, want State) {
	r.t.Helper()
	if a := r.state(id); a.State != want {
		r.t.Fatalf("agent %s is %s (%s), want %s", id, a.State, a.Reason, want)
	}
}

func wantOffers(t *testing.T, got []string, want ...string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("offers %v, want %v", got, want)
	}
}

var allCats = []appeal.Category{appeal.Emergency, appeal.Livelihood, appeal.General, appeal.Complex}

func TestProvisioning(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testProvisioning)
}

func testProvisioning(t *testing.T, rdb redis.UniversalClient) {
	r := newRigOn(t, rdb)
	spec := AgentSpec{ID: "a1", Name: "Wang Fang", SIPUser: "wang", Password: "s3cret-pass", Categories: []appeal.Category{appeal.General, appeal.Emergency}}
	a, err := r.s.Create(r.ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if a.State != Offline || a.Registered || a.Name != "Wang Fang" || len(a.Categories) != 2 {
		t.Fatalf("created %+v", a)
	}
	if _, err := r.s.Create(r.ctx, spec); !errors.Is(err, ErrConflict) {
		t.Errorf("second create: %v, want ErrConflict", err)
	}
	other := spec
	other.ID = "a2"
	if _, err := r.s.Create(r.ctx, other); !errors.Is(err, ErrConflict) {
		t.Errorf("create with a taken sip_user: %v, want ErrConflict", err)
	}
	c, err := r.s.Credential(r.ctx, "wang")
	if err != nil {
		t.Fatal(err)
	}
	md5hex, shahex := DigestHA1("wang", "hotline", "s3cret-pass")
	if c.AgentID != "a1" || c.HA1 != md5hex || c.HA1SHA256 != shahex {
		t.Errorf("credential %+v, want the hashes of the password", c)
	}
	// The password itself is nowhere in Redis.
	for _, k := range redistest.Keys(t, r.rdb, "*") {
		if typ := r.rdb.Type(r.ctx, k).Val(); typ == "hash" {
			for f, v := range r.rdb.HGetAll(r.ctx, k).Val() {
				if v == "s3cret-pass" {
					t.Errorf("%s %s holds the password", k, f)
				}
			}
		}
	}

	// An update without a password keeps the hashes; a new user needs
	// the password again, since the hashes are made with the user's name,
	// and moves the credential.
	upd := AgentSpec{ID: "a1", Name: "Wang Fang", SIPUser: "wang", Categories: []appeal.Category{appeal.Livelihood}}
	if _, err := r.s.Update(r.ctx, upd); err != nil {
		t.Fatal(err)
	}
	if c2, err := r.s.Credential(r.ctx, "wang"); err != nil || c2.HA1 != md5hex {
		t.Errorf("update without a password changed the hash: %+v %v", c2, err)
	}
	upd.SIPUser = "wangf"
	if _, err := r.s.Update(r.ctx, upd); !errors.Is(err, ErrInvalid) {
		t.Errorf("new sip_user without the password: %v, want ErrInvalid", err)
	}
	upd.Password = "s3cret-pass"
	if _, err := r.s.Update(r.ctx, upd); err != nil {
		t.Fatal(err)
	}
	if _, err := r.s.Credential(r.ctx, "wang"); !errors.Is(err, ErrNotFound) {
		t.Errorf("old user after rename: %v, want ErrNotFound", err)
	}
	want, _ := DigestHA1("wangf", "hotline", "s3cret-pass")
	if c2, err := r.s.Credential(r.ctx, "wangf"); err != nil || c2.HA1 != want {
		t.Errorf("renamed user's hash: %+v %v, want %s", c2, err, want)
	}
	if _, err := r.s.Update(r.ctx, AgentSpec{ID: "nobody", SIPUser: "x", Categories: allCats}); !errors.Is(err, ErrNotFound) {
		t.Errorf("update unknown: %v", err)
	}
	for _, bad := range []AgentSpec{
		{ID: "", SIPUser: "u", Password: "longenough", Categories: allCats},
		{ID: "a b", SIPUser: "u", Password: "longenough", Categories: allCats},
		{ID: "x", SIPUser: "u@h", Password: "longenough", Categories: allCats},
		{ID: "x", SIPUser: "u", Password: "short", Categories: allCats},
		{ID: "x", SIPUser: "u", Password: "nine-char", Categories: allCats},
		{ID: "x", SIPUser: "long-user-name", Password: "Long-User-Name", Categories: allCats},
		{ID: "x", SIPUser: "u", Password: "longenough"},
		{ID: "x", SIPUser: "u", Password: "longenough", Categories: []appeal.Category{"water"}},
	} {
		if _, err := r.s.Create(r.ctx, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("create %+v: %v, want ErrInvalid", bad, err)
		}
	}
	if err := r.s.Delete(r.ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.s.Agent(r.ctx, "a1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted agent: %v", err)
	}
	if err := r.s.Delete(r.ctx, "a1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete twice: %v", err)
	}
}

func TestLongestIdleAgentIsOffered(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testLongestIdleAgentIsOffered)
}

func testLongestIdleAgentIsOffered(t *testing.T, rdb redis.UniversalClient) {
	r := newRigOn(t, rdb)
	r.agent("a1", allCats...)
	r.agent("a2", allCats...)
	r.agent("a3", allCats...)
	r.enqueue("c1", appeal.General)
	r.enqueue("c2", appeal.General)
	wantOffers(t, r.dispatch(), "c1>a1", "c2>a2")
	r.wantState("a1", Ringing)
	r.wantState("a3", Available)
	if got := r.dispatch(); len(got) != 0 {
		t.Fatalf("second dispatch offered %v", got)
	}
}

func TestEmergencyGoesFirst(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testEmergencyGoesFirst)
}

func testEmergencyGoesFirst(t *testing.T, rdb redis.UniversalClient) {
	r := newRigOn(t, rdb)
	for i := range 10 {
		r.enqueue(fmt.Sprintf("g%d", i), appeal.General)
	}
	r.enqueue("e1", appeal.Emergency)
	if n, err := r.s.Position(r.ctx, "e1"); err != nil || n != 1 {
		t.Errorf("emergency caller at position %d (%v), want 1", n, err)
	}
	if n, err := r.s.Position(r.ctx, "g3"); err != nil || n != 5 {
		t.Errorf("fourth general caller at position %d (%v), want 5 (behind the emergency)", n, err)
	}
	r.agent("a1", allCats...)
	wantOffers(t, r.dispatch(), "e1>a1")
	r.agent("a2", allCats...)
	wantOffers(t, r.dispatch(), "g0>a2")
}

func TestCategoriesMatch(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testCategoriesMatch)
}

func testCategoriesMatch(t *testing.T, rdb redis.UniversalClient) {
	r := newRigOn(t, rdb)
	r.agent("heat", appeal.Livelihood)
	r.enqueue("g1", appeal.General)
	r.enqueue("l1", appeal.Livelihood)
	// The general caller waits longer, but only the livelihood caller can
	// go to this agent.
	wantOffers(t, r.dispatch(), "l1>heat")
	if n, _ := r.s.Position(r.ctx, "g1"); n != 1 {
		t.Errorf("general caller position %d, want 1", n)
	}
}

// A lone agent who lets a call ring out is offered it again once the
// re-offer wait has passed, not never; missing it again pauses them as
// any two misses do.
func TestLoneAgentIsOfferedAgain(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		r := newRigOn(t, rdb)
		r.agent("a1", allCats...)
		r.enqueue("c1", appeal.General)
		wantOffers(t, r.dispatch(), "c1>a1")
		if _, err := r.s.Declined(r.ctx, "c1", "a1", NoAnswer, 2); err != nil {
			t.Fatal(err)
		}
		if got := r.dispatch(); len(got) != 0 {
			t.Fatalf("offered %v again at once", got)
		}
		r.clock.Add(DefaultReoffer - time.Millisecond)
		if got := r.dispatch(); len(got) != 0 {
			t.Fatalf("offered %v again before the re-offer wait", got)
		}
		r.clock.Add(time.Millisecond)
		wantOffers(t, r.dispatch(), "c1>a1")
		if st, err := r.s.Declined(r.ctx, "c1", "a1", NoAnswer, 2); err != nil || st != Paused {
			t.Fatalf("after the second miss: %s %v, want paused", st, err)
		}
		r.clock.Add(time.Minute)
		if got := r.dispatch(); len(got) != 0 {
			t.Fatalf("offered %v to a paused agent", got)
		}

		// Another agent comes: it has the call first; one who declines
		// it is rung again after the wait, a refusal pausing nobody.
		r.agent("a2", allCats...)
		wantOffers(t, r.dispatch(), "c1>a2")
		if st, err := r.s.Declined(r.ctx, "c1", "a2", Rejected, 2); err != nil || st != Available {
			t.Fatalf("after a refusal: %s %v", st, err)
		}
		if got := r.dispatch(); len(got) != 0 {
			t.Fatalf("offered %v again at once after a refusal", got)
		}
		r.clock.Add(DefaultReoffer)
		wantOffers(t, r.dispatch(), "c1>a2")
	})
}

func TestNoAnswerMovesOnAndPausesTheAgent(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testNoAnswerMovesOnAndPausesTheAgent)
}

func testNoAnswerMovesOnAndPausesTheAgent(t *testing.T, rdb redis.UniversalClient) {
	r := newRigOn(t, rdb)
	r.agent("a1", allCats...)
	r.agent("a2", allCats...)
	r.enqueue("c1", appeal.General)
	wantOffers(t, r.dispatch(), "c1>a1")
	st, err := r.s.Declined(r.ctx, "c1", "a1", NoAnswer, 2)
	if err != nil || st != Available {
		t.Fatalf("after one miss: %s %v", st, err)
	}
	// The call goes to the next agent, not back to the one who missed it.
	wantOffers(t, r.dispatch(), "c1>a2")
	if _, err := r.s.Declined(r.ctx, "c1", "a2", Rejected, 2); err != nil {
		t.Fatal(err)
	}
	// Both declined it since becoming free: it waits.
	if got := r.dispatch(); len(got) != 0 {
		t.Fatalf("offered %v to agents who declined it", got)
	}
	if a := r.state("a1"); a.Missed != 1 {
		t.Errorf("a1 missed %d, want 1", a.Missed)
	}
	if a := r.state("a2"); a.Missed != 0 {
		t.Errorf("a rejection counted as a miss: %d", a.Missed)
	}
	// A second caller reaches a1, who misses again: paused.
	r.enqueue("c2", appeal.General)
	wantOffers(t, r.dispatch(), "c2>a1")
	st, err = r.s.Declined(r.ctx, "c2", "a1", NoAnswer, 2)
	if err != nil || st != Paused {
		t.Fatalf("after two misses in a row: %s %v, want paused", st, err)
	}
	if a := r.state("a1"); a.Reason != PauseNoAnswer {
		t.Errorf("pause reason %q", a.Reason)
	}
	wantOffers(t, r.dispatch(), "c2>a2")
	// Reporting the old offer again is stale.
	if _, err := r.s.Declined(r.ctx, "c2", "a1", NoAnswer, 2); !errors.Is(err, ErrState) {
		t.Errorf("stale decline: %v", err)
	}
	// Once resumed, a1 is fresh: c1 may go to it again.
	if st, err := r.s.Resume(r.ctx, "a1"); err != nil || st != Available {
		t.Fatalf("resume: %s %v", st, err)
	}
	wantOffers(t, r.dispatch(), "c1>a1")
	if a := r.state("a1"); a.Missed != 0 {
		t.Errorf("misses after resume: %d", a.Missed)
	}
}

func TestConversationAndWrapUp(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testConversationAndWrapUp)
}

func testConversationAndWrapUp(t *testing.T, rdb redis.UniversalClient) {
	r := newRigOn(t, rdb)
	r.agent("a1", allCats...)
	r.agent("a2", allCats...)
	r.enqueue("c1", appeal.General)
	wantOffers(t, r.dispatch(), "c1>a1")
	r.clock.Add(3 * time.Second)
	if err := r.s.Answered(r.ctx, "c1", "a1"); err != nil {
		t.Fatal(err)
	}
	if err := r.s.Answered(r.ctx, "c1", "a1"); err != nil {
		t.Errorf("answered twice: %v", err)
	}
	r.wantState("a1", Talking)
	r.clock.Add(time.Minute)
	if err := r.s.Ended(r.ctx, "c1", "a1", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	a := r.state("a1")
	if a.State != WrapUp || a.WrapUpUntil == nil || !a.WrapUpUntil.Equal(r.clock.Now().Add(10*time.Second)) {
		t.Fatalf("after the call: %+v", a)
	}
	// During wrap-up the next call goes to a2 even though a1 was idle longer.
	r.enqueue("c2", appeal.General)
	wantOffers(t, r.dispatch(), "c2>a2")
	r.clock.Add(10 * time.Second)
	r.enqueue("c3", appeal.General)
	wantOffers(t, r.dispatch(), "c3>a1")
	day, err := r.s.AgentDay(r.ctx, "a1", r.clock.Now())
	if err != nil || day.Served != 1 || day.TalkSec != 60 {
		t.Errorf("agent day %+v %v", day, err)
	}
}

func TestPauseDuringACallStartsAfterIt(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testPauseDuringACallStartsAfterIt)
}

func testPauseDuringACallStartsAfterIt(t *testing.T, rdb redis.UniversalClient) {
	r := newRigOn(t, rdb)
	r.agent("a1", allCats...)
	r.enqueue("c1", appeal.General)
	wantOffers(t, r.dispatch(), "c1>a1")
	if err := r.s.Answered(r.ctx, "c1", "a1"); err != nil {
		t.Fatal(err)
	}
	if st, err := r.s.Pause(r.ctx, "a1", "lunch"); err != nil || st != Talking {
		t.Fatalf("pause while talking: %s %v", st, err)
	}
	if err := r.s.Ended(r.ctx, "c1", "a1", 0); err != nil {
		t.Fatal(err)
	}
	if a := r.state("a1"); a.State != Paused || a.Reason != "lunch" {
		t.Fatalf("after the call: %s %q, want paused lunch", a.State, a.Reason)
	}
	r.enqueue("c2", appeal.General)
	if got := r.dispatch(); len(got) != 0 {
		t.Fatalf("offered %v to a paused agent", got)
	}
	if _, err := r.s.Pause(r.ctx, "a1", " "); !errors.Is(err, ErrInvalid) {
		t.Errorf("pause without reason: %v", err)
	}
	if _, err := r.s.Resume(r.ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	wantOffers(t, r.dispatch(), "c2>a1")
}

func TestCallerLeavesWhileTheAgentRings(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testCallerLeavesWhileTheAgentRings)
}

func testCallerLeavesWhileTheAgentRings(t *testing.T, rdb redis.UniversalClient) {
	r := newRigOn(t, rdb)
	r.agent("a1", allCats...)
	r.enqueue("c1", appeal.General)
	wantOffers(t, r.dispatch(), "c1>a1")
	if err := r.s.Leave(r.ctx, "c1", Abandoned); err != nil {
		t.Fatal(err)
	}
	r.wantState("a1", Available)
	if err := r.s.Answered(r.ctx, "c1", "a1"); !errors.Is(err, ErrState) {
		t.Errorf("answer after the caller left: %v, want ErrState", err)
	}
	if err := r.s.Leave(r.ctx, "c1", Abandoned); err != nil {
		t.Errorf("leave twice: %v", err)
	}
	if _, err := r.s.Position(r.ctx, "c1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("position after leaving: %v", err)
	}
	d, err := r.s.Day(r.ctx, r.clock.Now())
	if err != nil || d.Abandoned != 1 || d.Queued != 1 || d.Offers != 1 {
		t.Errorf("day %+v %v", d, err)
	}
}

func TestUnregisteredAgentsGetNoCalls(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testUnregisteredAgentsGetNoCalls)
}

func testUnregisteredAgentsGetNoCalls(t *testing.T, rdb redis.UniversalClient) {
	r := newRigOn(t, rdb)
	r.agent("a1", allCats...)
	if st, err := r.s.Unregistered(r.ctx, "a1"); err != nil || st != Offline {
		t.Fatalf("unregister: %s %v", st, err)
	}
	r.enqueue("c1", appeal.General)
	if got := r.dispatch(); len(got) != 0 {
		t.Fatalf("offered %v to an offline agent", got)
	}
	if _, err := r.s.Pause(r.ctx, "a1", "away"); !errors.Is(err, ErrState) {
		t.Errorf("pause offline: %v", err)
	}
	// Registered again while the call waits: it gets the call.
	if _, err := r.s.Registered(r.ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	wantOffers(t, r.dispatch(), "c1>a1")
	// Unregistering in a call takes effect when it ends.
	if err := r.s.Answered(r.ctx, "c1", "a1"); err != nil {
		t.Fatal(err)
	}
	if st, _ := r.s.Unregistered(r.ctx, "a1"); st != Talking {
		t.Fatalf("unregistered while talking: %s", st)
	}
	if err := r.s.Ended(r.ctx, "c1", "a1", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	r.wantState("a1", Offline)
	// An unreachable phone takes the agent offline too.
	r.agent("a2", allCats...)
	r.enqueue("c2", appeal.General)
	wantOffers(t, r.dispatch(), "c2>a2")
	if st, err := r.s.Declined(r.ctx, "c2", "a2", Unreachable, 2); err != nil || st != Offline {
		t.Fatalf("unreachable: %s %v", st, err)
	}
}

func TestDayFigures(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testDayFigures)
}

func testDayFigures(t *testing.T, rdb redis.UniversalClient) {
	r := newRigOn(t, rdb)
	r.agent("a1", allCats...)
	r.enqueue("fast", appeal.General)
	r.enqueue("slow", appeal.General)
	r.enqueue("gone", appeal.General)
	r.enqueue("back", appeal.General)
	wantOffers(t, r.dispatch(), "fast>a1")
	r.clock.Add(10 * time.Second)
	if err := r.s.Answered(r.ctx, "fast", "a1"); err != nil {
		t.Fatal(err)
	}
	if err := r.s.Ended(r.ctx, "fast", "a1", 0); err != nil {
		t.Fatal(err)
	}
	wantOffers(t, r.dispatch(), "slow>a1")
	r.clock.Add(10 * time.Second)
	if err := r.s.Answered(r.ctx, "slow", "a1"); err != nil {
		t.Fatal(err)
	}
	if err := r.s.Leave(r.ctx, "gone", Abandoned); err != nil {
		t.Fatal(err)
	}
	if err := r.s.Leave(r.ctx, "back", Callback); err != nil {
		t.Fatal(err)
	}
	d, err := r.s.Day(r.ctx, r.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	// fast waited 10 s, slow 20 s: one of four answered within 15 s.
	if d.Queued != 4 || d.Answered != 2 || d.InTime != 1 || d.Abandoned != 1 || d.Callback != 1 {
		t.Fatalf("day %+v", d)
	}
	if a := d.AnswerRate15s; a.AnsweredIn15s != 1 || a.Calls != 4 || a.Rate == nil || *a.Rate != 0.25 {
		t.Errorf("answer rate %+v, want 1 of 4", a)
	}
	if w := d.AverageWait; w.Calls != 2 || w.TotalSeconds < 29.9 || w.TotalSeconds > 30.1 || w.Seconds == nil || *w.Seconds < 14.9 || *w.Seconds > 15.1 {
		t.Errorf("average wait %+v, want 30 s over 2 answered calls", w)
	}
	q, err := r.s.Queue(r.ctx)
	if err != nil || len(q) != 0 {
		t.Errorf("queue after all left: %v %v", q, err)
	}
}

// Two nodes dispatching at once never offer one agent twice or one call
// to two agents.
func TestConcurrentDispatchFromTwoNodes(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testConcurrentDispatchFromTwoNodes)
}

func testConcurrentDispatchFromTwoNodes(t *testing.T, rdb redis.UniversalClient) {
	r := newRigOn(t, rdb)
	other := NewStore(r.rdb, StoreOptions{Now: r.clock.Now})
	const agents, calls = 30, 50
	for i := range agents {
		r.agent(fmt.Sprintf("a%02d", i), allCats...)
	}
	for i := range calls {
		r.enqueue(fmt.Sprintf("c%02d", i), allCats[i%len(allCats)])
	}
	var mu sync.Mutex
	var all []Offer
	var wg sync.WaitGroup
	for _, s := range []*Store{r.s, other, r.s, other} {
		wg.Go(func() {
			for range 5 {
				offers, err := s.Dispatch(r.ctx, 4)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				all = append(all, offers...)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	agentSeen, callSeen := map[string]bool{}, map[string]bool{}
	for _, o := range all {
		if agentSeen[o.AgentID] || callSeen[o.CallID] {
			t.Fatalf("offered twice: %+v", o)
		}
		agentSeen[o.AgentID], callSeen[o.CallID] = true, true
	}
	if len(all) != agents {
		t.Errorf("%d offers, want %d (every agent busy)", len(all), agents)
	}
	// The emergency callers were all served first.
	for i := 0; i < calls; i += len(allCats) {
		if !callSeen[fmt.Sprintf("c%02d", i)] {
			t.Errorf("emergency call c%02d not offered", i)
		}
	}
}

func TestStateSurvivesARedisRestart(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	s := NewStore(rdb, StoreOptions{})
	ctx := t.Context()
	if _, err := s.Create(ctx, AgentSpec{ID: "a1", SIPUser: "u1", Password: "password-1", Categories: allCats}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Registered(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Enqueue(ctx, "c1", appeal.General, "n1"); err != nil {
		t.Fatal(err)
	}
	srv.Restart(t)
	offers, err := s.Dispatch(ctx, 8)
	if err != nil || len(offers) != 1 || offers[0].AgentID != "a1" || offers[0].SIPUser != "u1" || offers[0].Node != "n1" {
		t.Fatalf("after restart: %+v %v", offers, err)
	}
}
