package acd

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/internal/redistest"
)

const testLease = time.Second

// join takes the lease of name for a new instance on the rig's clock.
func (r *rig) join(name string, opts NodeOptions) *NodeLease {
	r.t.Helper()
	opts.Name = name
	if opts.Lease == 0 {
		opts.Lease = testLease
	}
	n, err := r.s.JoinNode(r.ctx, opts)
	if err != nil {
		r.t.Fatalf("join %s: %v", name, err)
	}
	return n
}

// hold queues call for node n's instance.
func (r *rig) hold(n *NodeLease, call string) {
	r.t.Helper()
	if err := r.s.enqueue(r.ctx, call, appeal.General, n.Name(), n.Instance()); err != nil {
		r.t.Fatal(err)
	}
	r.clock.Add(time.Millisecond)
}

func (r *rig) answered(call, agent string) {
	r.t.Helper()
	if err := r.s.Answered(r.ctx, call, agent); err != nil {
		r.t.Fatal(err)
	}
}

// TestLostNodeIsReconciled: a node dies holding a conversation, an agent
// ringing and a caller waiting; once its lease has run out another node
// gives them back, once, and the dead node's records are ended once. The
// other node's own call is left alone.
func TestLostNodeIsReconciled(t *testing.T) {
	redistest.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		r := newRigOn(t, rdb)
		var closed []LostNode
		var mu sync.Mutex
		closeCalls := func(_ context.Context, l LostNode) error {
			mu.Lock()
			defer mu.Unlock()
			closed = append(closed, l)
			return nil
		}
		r.agent("a1", allCats...)
		r.agent("a2", allCats...)
		r.agent("a3", allCats...)
		dead := r.join("n1", NodeOptions{WrapUp: 10 * time.Second})
		alive := r.join("n2", NodeOptions{WrapUp: 10 * time.Second, CloseCalls: closeCalls})
		r.hold(alive, "c0")
		wantOffers(t, r.dispatch(), "c0>a1")
		r.answered("c0", "a1")
		r.hold(dead, "c1")
		wantOffers(t, r.dispatch(), "c1>a2")
		r.answered("c1", "a2")
		r.hold(dead, "c2")
		wantOffers(t, r.dispatch(), "c2>a3")
		r.hold(dead, "c3")
		if got := r.dispatch(); len(got) != 0 {
			t.Fatalf("offers %v with every agent busy", got)
		}

		// Within its lease the dead node is not touched.
		r.clock.Add(testLease / 2)
		if lost, err := alive.Reconcile(r.ctx); err != nil || len(lost) != 0 {
			t.Fatalf("reconcile within the lease: %+v %v", lost, err)
		}
		r.wantState("a2", Talking)

		r.clock.Add(testLease)
		if err := alive.Renew(r.ctx); err != nil {
			t.Fatal(err)
		}
		lost, err := alive.Reconcile(r.ctx)
		if err != nil || len(lost) != 1 {
			t.Fatalf("reconcile after the lease: %+v %v", lost, err)
		}
		if l := lost[0]; l.Instance != dead.Instance() || l.Name != "n1" || l.Calls != 3 || l.Agents != 2 || l.By != alive.Instance() {
			t.Errorf("reclaimed %+v, want n1's 3 calls and 2 agents", l)
		}
		if a := r.state("a2"); a.State != WrapUp || a.CallID != "" || a.WrapUpUntil == nil || !a.WrapUpUntil.Equal(r.clock.Now().Add(10*time.Second)) {
			t.Errorf("a2, talking on the lost node's call: %+v, want wrap-up", a)
		}
		if a := r.state("a3"); a.State != Available || a.CallID != "" {
			t.Errorf("a3, ringing for the lost node's call: %+v, want available", a)
		}
		if a := r.state("a1"); a.State != Talking || a.CallID != "c0" {
			t.Errorf("a1, talking on the live node's call: %+v", a)
		}
		q, err := r.s.Queue(r.ctx)
		if err != nil || len(q) != 0 {
			t.Errorf("queue after the reconcile: %+v %v", q, err)
		}
		day, err := r.s.Day(r.ctx, r.clock.Now())
		if err != nil || day.Lost != 2 || day.Abandoned != 0 || day.Answered != 2 {
			t.Errorf("day %+v %v: want the waiting and the offered call lost", day, err)
		}

		// Again: nothing more to do.
		if lost, err := alive.Reconcile(r.ctx); err != nil || len(lost) != 0 {
			t.Fatalf("second reconcile: %+v %v", lost, err)
		}
		// The records, once.
		for range 2 {
			if _, err := alive.CloseLost(r.ctx); err != nil {
				t.Fatal(err)
			}
		}
		if len(closed) != 1 || closed[0].Instance != dead.Instance() || closed[0].Name != "n1" || closed[0].LastRenewed.IsZero() {
			t.Errorf("records ended for %+v, want n1's once", closed)
		}

		// The dead node comes back: its lease is gone, and its late reports
		// change nothing.
		if err := dead.Renew(r.ctx); !errors.Is(err, ErrLeaseLost) {
			t.Errorf("renew of the reclaimed node: %v, want ErrLeaseLost", err)
		}
		if err := r.s.Ended(r.ctx, "c1", "a2", 0); err != nil {
			t.Fatal(err)
		}
		if err := r.s.Answered(r.ctx, "c2", "a3"); !errors.Is(err, ErrState) {
			t.Errorf("late answer of a reclaimed offer: %v, want ErrState", err)
		}
		r.wantState("a2", WrapUp)
		r.wantState("a3", Available)
		// The live node's call ends as any call does.
		if err := r.s.Ended(r.ctx, "c0", "a1", 0); err != nil {
			t.Fatal(err)
		}
		r.wantState("a1", Available)
		if n, err := r.rdb.SCard(r.ctx, r.s.key("held:"+alive.Instance())).Result(); err != nil || n != 0 {
			t.Errorf("the live node still holds %d calls (%v)", n, err)
		}
	})
}

// TestSuccessorTakesOver: the next run of a node takes over what the
// previous one held: at once when the previous process is proven gone,
// else once its lease has run out; one that renews is running, and the
// name is refused.
func TestSuccessorTakesOver(t *testing.T) {
	t.Run("proven gone", func(t *testing.T) {
		redistest.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
			r := newRigOn(t, rdb)
			r.agent("a1", allCats...)
			prev := r.join("n1", NodeOptions{Process: Process{Host: "h", PID: 42, Start: "7"}})
			r.hold(prev, "c1")
			wantOffers(t, r.dispatch(), "c1>a1")
			r.answered("c1", "a1")
			var asked []Process
			next := r.join("n1", NodeOptions{Gone: func(p Process) bool { asked = append(asked, p); return true }})
			if next.Predecessor != prev.Instance() {
				t.Fatalf("predecessor %q, want %q", next.Predecessor, prev.Instance())
			}
			if len(asked) != 1 || asked[0].PID != 42 || asked[0].Start != "7" || asked[0].Host != "h" {
				t.Errorf("asked whether %+v is gone", asked)
			}
			r.wantState("a1", Available) // no wrap-up configured
			if err := prev.Renew(r.ctx); !errors.Is(err, ErrLeaseLost) {
				t.Errorf("renew of the previous run: %v", err)
			}
			if err := next.Renew(r.ctx); err != nil {
				t.Errorf("renew of the successor: %v", err)
			}
		})
	})
	t.Run("lease run out", func(t *testing.T) {
		redistest.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
			r := newRigOn(t, rdb)
			r.agent("a1", allCats...)
			prev := r.join("n1", NodeOptions{})
			r.hold(prev, "c1")
			wantOffers(t, r.dispatch(), "c1>a1")
			done := make(chan *NodeLease, 1)
			go func() {
				n, err := r.s.JoinNode(r.ctx, NodeOptions{Name: "n1", Lease: testLease})
				if err != nil {
					t.Errorf("join: %v", err)
				}
				done <- n
			}()
			// Not proven gone: the successor waits for the lease.
			select {
			case <-done:
				t.Fatal("joined while the previous run's lease lasted")
			case <-time.After(3 * testLease / 5):
			}
			r.wantState("a1", Ringing)
			r.clock.Add(testLease + time.Millisecond)
			next := <-done
			if next == nil || next.Predecessor != prev.Instance() {
				t.Fatalf("successor %+v", next)
			}
			r.wantState("a1", Available)
		})
	})
	t.Run("running", func(t *testing.T) {
		redistest.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
			r := newRigOn(t, rdb)
			running := r.join("n1", NodeOptions{})
			done := make(chan error, 1)
			go func() {
				_, err := r.s.JoinNode(r.ctx, NodeOptions{Name: "n1", Lease: testLease, Gone: func(Process) bool { return false }})
				done <- err
			}()
			deadline := time.After(10 * time.Second)
			for {
				r.clock.Add(testLease / 5)
				if err := running.Renew(r.ctx); err != nil {
					t.Fatal(err)
				}
				select {
				case err := <-done:
					if !errors.Is(err, ErrNodeInUse) {
						t.Fatalf("join of a running node's name: %v, want ErrNodeInUse", err)
					}
					if err := running.Renew(r.ctx); err != nil {
						t.Errorf("the running node lost its lease: %v", err)
					}
					return
				case <-deadline:
					t.Fatal("join did not notice the running node")
				case <-time.After(testLease / 20):
				}
			}
		})
	})
	t.Run("left", func(t *testing.T) {
		redistest.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
			r := newRigOn(t, rdb)
			prev := r.join("n1", NodeOptions{})
			if err := prev.Leave(r.ctx); err != nil {
				t.Fatal(err)
			}
			next := r.join("n1", NodeOptions{Gone: func(Process) bool { t.Error("asked for a proof after a clean leave"); return false }})
			if next.Predecessor != "" {
				t.Errorf("predecessor %q after a clean leave", next.Predecessor)
			}
			if err := prev.Renew(r.ctx); !errors.Is(err, ErrLeaseLost) {
				t.Errorf("renew after leave: %v", err)
			}
		})
	})
}

// TestNoTwoNodesReconcileOneInstance: nodes looking at once reclaim a
// lost instance once and end its records once.
func TestNoTwoNodesReconcileOneInstance(t *testing.T) {
	redistest.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		r := newRigOn(t, rdb)
		var closes atomic.Int32
		opts := NodeOptions{CloseCalls: func(context.Context, LostNode) error { closes.Add(1); return nil }}
		r.agent("a1", allCats...)
		dead := r.join("dead", NodeOptions{})
		r.hold(dead, "c1")
		wantOffers(t, r.dispatch(), "c1>a1")
		r.answered("c1", "a1")
		var nodes []*NodeLease
		for _, name := range []string{"n1", "n2", "n3", "n4"} {
			nodes = append(nodes, r.join(name, opts))
		}
		r.clock.Add(testLease / 2)
		for _, n := range nodes {
			if err := n.Renew(r.ctx); err != nil {
				t.Fatal(err)
			}
		}
		r.clock.Add(testLease/2 + time.Millisecond)
		var reclaimed atomic.Int32
		var wg sync.WaitGroup
		for _, n := range nodes {
			wg.Go(func() {
				lost, err := n.Reconcile(r.ctx)
				if err != nil {
					t.Error(err)
				}
				reclaimed.Add(int32(len(lost)))
				if _, err := n.CloseLost(r.ctx); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if reclaimed.Load() != 1 || closes.Load() != 1 {
			t.Fatalf("reclaimed %d times, records ended %d times; want once each", reclaimed.Load(), closes.Load())
		}
		if day, err := r.s.AgentDay(r.ctx, "a1", r.clock.Now()); err != nil || day.Served != 1 {
			t.Errorf("agent day %+v %v", day, err)
		}
		r.wantState("a1", Available)
	})
}

// TestUnfinishedCloseIsTakenOver: the node that reclaimed an instance
// fails to end its records; another takes the work over once the claim
// lapses.
func TestUnfinishedCloseIsTakenOver(t *testing.T) {
	redistest.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		r := newRigOn(t, rdb)
		dead := r.join("dead", NodeOptions{})
		var failing, working []string
		first := r.join("n1", NodeOptions{CloseCalls: func(_ context.Context, l LostNode) error {
			failing = append(failing, l.Instance)
			return errors.New("Redis went away")
		}})
		second := r.join("n2", NodeOptions{CloseCalls: func(_ context.Context, l LostNode) error {
			working = append(working, l.Instance)
			return nil
		}})
		r.clock.Add(testLease + time.Millisecond)
		for _, n := range []*NodeLease{first, second} {
			if err := n.Renew(r.ctx); err != nil {
				t.Fatal(err)
			}
		}
		if lost, err := first.Reconcile(r.ctx); err != nil || len(lost) != 1 {
			t.Fatalf("reconcile: %+v %v", lost, err)
		}
		if _, err := first.CloseLost(r.ctx); err == nil {
			t.Fatal("CloseLost hid the failure")
		}
		// Claimed: the other node leaves it for a lease.
		if done, err := second.CloseLost(r.ctx); err != nil || len(done) != 0 {
			t.Fatalf("claimed work taken at once: %+v %v", done, err)
		}
		r.clock.Add(testLease + time.Millisecond)
		if done, err := second.CloseLost(r.ctx); err != nil || len(done) != 1 || done[0].Instance != dead.Instance() {
			t.Fatalf("lapsed claim: %+v %v", done, err)
		}
		if len(failing) != 1 || len(working) != 1 {
			t.Errorf("tries: failing %v, working %v", failing, working)
		}
	})
}

// TestLeaseTakenAgainAfterRedisLostIt: a Redis that restarted empty
// holds no lease; the node takes it again instead of stopping.
func TestLeaseTakenAgainAfterRedisLostIt(t *testing.T) {
	redistest.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		r := newRigOn(t, rdb)
		n := r.join("n1", NodeOptions{})
		if err := r.rdb.FlushAll(r.ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if err := n.Renew(r.ctx); err != nil {
			t.Fatalf("renew after Redis lost the lease: %v", err)
		}
		if err := n.Renew(r.ctx); err != nil {
			t.Fatal(err)
		}
		if nodes, err := r.s.LiveNodes(r.ctx); err != nil || len(nodes) != 1 || nodes[0].Instance != n.Instance() || nodes[0].Name != "n1" {
			t.Errorf("live nodes %+v %v", nodes, err)
		}
	})
}

// TestRunEndsWhenTheLeaseIsLost: a node whose lease was reclaimed (it was
// silent too long) stops.
func TestRunEndsWhenTheLeaseIsLost(t *testing.T) {
	redistest.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		r := newRigOn(t, rdb)
		stale := r.join("n1", NodeOptions{})
		other := r.join("n2", NodeOptions{})
		r.clock.Add(testLease + time.Millisecond)
		if err := other.Renew(r.ctx); err != nil {
			t.Fatal(err)
		}
		if lost, err := other.Reconcile(r.ctx); err != nil || len(lost) != 1 {
			t.Fatalf("reconcile: %+v %v", lost, err)
		}
		ctx, cancel := context.WithTimeout(r.ctx, 10*time.Second)
		defer cancel()
		if err := stale.Run(ctx); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("Run of a reclaimed node: %v, want ErrLeaseLost", err)
		}
	})
}

// TestRedisOutageLosesNoLiveNode: Redis is away for longer than the
// lease; when it is back, the nodes renew and none reclaims another,
// whichever reaches it first.
func TestRedisOutageLosesNoLiveNode(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out an outage and the quiet time after it (10 s)")
	}
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	s := NewStore(rdb, StoreOptions{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	const lease = time.Second
	var nodes []*NodeLease
	errs := make(chan error, 3)
	for _, name := range []string{"n1", "n2", "n3"} {
		n, err := s.JoinNode(ctx, NodeOptions{Name: name, Lease: lease, Log: zerolog.New(zerolog.NewTestWriter(t))})
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
		go func() { errs <- n.Run(ctx) }()
	}
	srv.Kill(t)
	// Away for two leases: every lease runs out.
	select {
	case err := <-errs:
		t.Fatalf("a node stopped while Redis was away: %v", err)
	case <-time.After(2 * lease):
	}
	srv.Start(t)
	// Back for longer than the quiet time: time for any node to reclaim
	// the others.
	select {
	case err := <-errs:
		t.Fatalf("a node stopped after Redis came back: %v", err)
	case <-time.After(minQuiet + 2*lease):
	}
	live, err := s.LiveNodes(ctx)
	if err != nil || len(live) != 3 {
		t.Fatalf("live nodes after the outage: %+v %v, want all three", live, err)
	}
	for _, n := range nodes {
		if err := n.Renew(ctx); err != nil {
			t.Errorf("%s: %v", n.Name(), err)
		}
	}
}

// TestNodeReports checks what a node tells the others of itself: the
// calls it runs and its health, listed with its lease; a node that left
// writes nothing more.
func TestNodeReports(t *testing.T) {
	t.Parallel()
	r := newRigOn(t, redistest.Start(t).Client(t))
	n := r.join("n1", NodeOptions{Process: Process{Host: "pbx-1"}})
	for _, d := range []int{1, 1, 1, -1} {
		if err := n.CallsChanged(r.ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.ReportHealth(r.ctx, map[string]string{"redis": "ok", "ari": "the event socket is down"}); err != nil {
		t.Fatal(err)
	}
	nodes, err := r.s.LiveNodes(r.ctx)
	if err != nil || len(nodes) != 1 {
		t.Fatalf("live nodes %+v %v", nodes, err)
	}
	if got := nodes[0]; got.Calls != 2 || got.Host != "pbx-1" || got.Health["ari"] != "the event socket is down" || got.HealthAt == nil || got.Started.IsZero() {
		t.Errorf("node %+v; want 2 calls, its host and its health", got)
	}
	if err := n.Leave(r.ctx); err != nil {
		t.Fatal(err)
	}
	if err := n.CallsChanged(r.ctx, 1); err != nil {
		t.Fatal(err)
	}
	if v, _ := r.rdb.HGet(r.ctx, r.s.key("node:"+n.Instance()), "calls").Result(); v != "2" {
		t.Errorf("a node that left counted a call: %q", v)
	}
}
