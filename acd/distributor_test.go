package acd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/internal/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.RunTests(m)) }

func runDistributor(t *testing.T, d *Distributor) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := d.Run(ctx); err != nil {
			t.Error(err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// A call held by one node is offered to an agent when the agent becomes
// free on another: the offer reaches the call's node through Redis.
func TestNextAcrossNodes(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testNextAcrossNodes)
}

func testNextAcrossNodes(t *testing.T, rdb redis.UniversalClient) {
	ctx := t.Context()
	// A long interval: the offer must arrive by message, not by polling.
	n1 := &Distributor{Store: NewStore(rdb, StoreOptions{}), Node: "n1", Interval: time.Hour}
	n2 := &Distributor{Store: NewStore(rdb, StoreOptions{}), Node: "n2", Interval: time.Hour}
	runDistributor(t, n1)
	runDistributor(t, n2)
	if _, err := n1.Store.Create(ctx, AgentSpec{ID: "a1", SIPUser: "u1", Password: "password-1", Categories: []appeal.Category{appeal.General}}); err != nil {
		t.Fatal(err)
	}
	if err := n2.Enqueue(ctx, "c1", appeal.General); err != nil {
		t.Fatal(err)
	}
	got := make(chan Offer, 1)
	errc := make(chan error, 1)
	go func() {
		o, err := n2.Next(ctx, "c1")
		errc <- err
		got <- o
	}()
	// The agent's phone registers on node 1.
	if _, err := n1.Registered(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no offer reached the call's node")
	}
	if o := <-got; o.AgentID != "a1" || o.SIPUser != "u1" || o.CallID != "c1" {
		t.Fatalf("offer %+v", o)
	}
	if err := n2.Answered(ctx, Offer{CallID: "c1", AgentID: "a1"}); err != nil {
		t.Fatal(err)
	}
	// A call no longer waiting has no next offer.
	if _, err := n2.Next(ctx, "c1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Next on a connected call: %v, want ErrNotFound", err)
	}
}

// Next ends with the caller.
func TestNextEndsWithTheContext(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testNextEndsWithTheContext)
}

func testNextEndsWithTheContext(t *testing.T, rdb redis.UniversalClient) {
	d := &Distributor{Store: NewStore(rdb, StoreOptions{}), Node: "n1"}
	runDistributor(t, d)
	if err := d.Enqueue(t.Context(), "c1", appeal.General); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := d.Next(ctx, "c1")
		errc <- err
	}()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Next: %v", err)
	}
}

func TestCollector(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testCollector)
}

func testCollector(t *testing.T, rdb redis.UniversalClient) {
	r := newRigOn(t, rdb)
	r.agent("a1", allCats...)
	r.agent("a2", allCats...)
	if _, err := r.s.Create(r.ctx, AgentSpec{ID: "a3", SIPUser: "u3", Password: "password-3", Categories: allCats}); err != nil {
		t.Fatal(err)
	}
	r.enqueue("c1", appeal.Emergency)
	r.enqueue("c2", appeal.General)
	r.enqueue("c3", appeal.General)
	wantOffers(t, r.dispatch(), "c1>a1", "c2>a2")
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(r.s))
	want := `
# HELP hotline_agents Agents by state.
# TYPE hotline_agents gauge
hotline_agents{state="available"} 0
hotline_agents{state="offline"} 1
hotline_agents{state="paused"} 0
hotline_agents{state="ringing"} 2
hotline_agents{state="talking"} 0
hotline_agents{state="wrapup"} 0
# HELP hotline_queue_length Callers in the queue (waiting or being offered), by category.
# TYPE hotline_queue_length gauge
hotline_queue_length{category="complex"} 0
hotline_queue_length{category="emergency"} 1
hotline_queue_length{category="general"} 2
hotline_queue_length{category="livelihood"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "hotline_agents", "hotline_queue_length"); err != nil {
		t.Error(err)
	}
}

// The day's figures are metrics too, read from Redis at each scrape:
// the calls by outcome, the numerator, and the rate once there is one.
func TestCollectorAnswerRate(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testCollectorAnswerRate)
}

func testCollectorAnswerRate(t *testing.T, rdb redis.UniversalClient) {
	r := newRigOn(t, rdb)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(r.s))
	names := []string{"hotline_calls_today", "hotline_answered_in_15s_today", "hotline_answer_rate_15s", "hotline_acd_scrape_ok"}
	const calls = `
# HELP hotline_calls_today Today's calls that asked for an agent, the whole hotline's, by how their wait ended (answered, abandoned, callback, lost, turned_away: no agent of the category registered); they start again at midnight in the hotline's zone.
# TYPE hotline_calls_today gauge
hotline_calls_today{outcome="abandoned"} %d
hotline_calls_today{outcome="answered"} %d
hotline_calls_today{outcome="callback"} 0
hotline_calls_today{outcome="lost"} 0
hotline_calls_today{outcome="turned_away"} %d
# HELP hotline_answered_in_15s_today Today's calls answered by an agent within 15 s of joining the queue, the whole hotline's: the 15-second answer rate's numerator.
# TYPE hotline_answered_in_15s_today gauge
hotline_answered_in_15s_today %d
# HELP hotline_acd_scrape_ok 1 when the agent, queue and day figures could be read from Redis.
# TYPE hotline_acd_scrape_ok gauge
hotline_acd_scrape_ok 1
`
	const rate = `
# HELP hotline_answer_rate_15s Today's 15-second answer rate of the whole hotline: hotline_answered_in_15s_today over the sum of hotline_calls_today, turned-away calls included; absent before the day's first call ends its wait.
# TYPE hotline_answer_rate_15s gauge
hotline_answer_rate_15s %g
`
	// No calls yet: the counts are 0 and there is no rate.
	if err := testutil.GatherAndCompare(reg, strings.NewReader(fmt.Sprintf(calls, 0, 0, 0, 0)), names...); err != nil {
		t.Error(err)
	}

	r.agent("a1", appeal.General)
	r.enqueue("fast", appeal.General)
	r.enqueue("slow", appeal.General)
	wantOffers(t, r.dispatch(), "fast>a1")
	// fast joined 2 ms ago (the rig's clock moves 1 ms a call queued)
	// and is answered exactly 15 s after joining: within 15 s.
	r.clock.Add(AnswerTarget - 2*time.Millisecond)
	if err := r.s.Answered(r.ctx, "fast", "a1"); err != nil {
		t.Fatal(err)
	}
	if err := r.s.Ended(r.ctx, "fast", "a1", 0); err != nil {
		t.Fatal(err)
	}
	wantOffers(t, r.dispatch(), "slow>a1")
	r.clock.Add(5 * time.Second) // slow waited 20 s
	if err := r.s.Answered(r.ctx, "slow", "a1"); err != nil {
		t.Fatal(err)
	}
	r.enqueue("gone", appeal.General)
	if err := r.s.Leave(r.ctx, "gone", Abandoned); err != nil {
		t.Fatal(err)
	}
	if err := r.s.TurnedAway(r.ctx, "alone", appeal.Emergency); err != nil {
		t.Fatal(err)
	}
	// One of four within 15 s.
	if err := testutil.GatherAndCompare(reg, strings.NewReader(fmt.Sprintf(calls, 1, 2, 1, 1)+fmt.Sprintf(rate, 0.25)), names...); err != nil {
		t.Error(err)
	}
}
