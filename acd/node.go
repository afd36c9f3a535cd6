package acd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// Node leases. Every hotline node holds a liveness lease in Redis, renewed
// every fifth of its length. A node's calls, queue entries and the agents
// on them are listed under its instance (one run of the node: a restart is
// a new instance), so that when an instance stops renewing, another node
// reclaims what it held once its lease has run out, and its successor (the
// next run under the same name) at once when it can prove the previous run
// gone. Reclaiming is one script: an instance is taken off the live set in
// the script that gives its calls and agents back, so no two nodes reclaim
// it. The call records, in their own hash slot, are ended afterwards by
// the node that claims that work (NodeOptions.CloseCalls); a node that
// dies before finishing leaves the claim to lapse, and another takes it.
//
// Keys, under <prefix>:{acd}:
//
//	nodes          sorted set: live instances by the end of their lease (ms)
//	names          hash: node name → the instance holding it
//	node:<inst>    hash: an instance (name, process, started, renewed, st, ...)
//	held:<inst>    set: the calls in the queue or in conversation the instance holds
//	unclosed       sorted set: lost instances whose call records are still to
//	               end, by when the claim on that work lapses (ms)

// DefaultLease is how long a node's lease lasts unrenewed by default: a
// node silent for that long is lost, and what it held is reclaimed within
// a fifth more (the other nodes look every fifth of it), 18 s in all.
const DefaultLease = 15 * time.Second

// keepLost is how long a lost or departed instance's hash is kept once
// nothing of it is left to do, for whoever investigates.
const keepLost = 7 * 24 * time.Hour

// Errors of node leases.
var (
	// ErrNodeInUse: a running instance holds the node name (it renewed
	// its lease while JoinNode waited): two processes must not share a
	// name.
	ErrNodeInUse = errors.New("acd: node name held by a running instance")
	// ErrLeaseLost: this instance's lease was reclaimed (it was not
	// renewed in time): what it held was given back, and it must stop.
	ErrLeaseLost = errors.New("acd: node lease lost")
)

// Process identifies an operating-system process, so that the next run
// of a node on the same host can prove the previous one gone.
type Process struct {
	Host  string // host name
	Boot  string // the kernel's boot id
	PIDNS string // the pid namespace
	PID   int
	// Start is the process's start time (clock ticks since boot): with
	// Boot and PIDNS it tells the process from a later one given the
	// same pid.
	Start string
}

// NodeOptions configure JoinNode.
type NodeOptions struct {
	// Name is the node's name (config node); required.
	Name string
	// Instance names this run; NewInstance when empty.
	Instance string
	// Lease is how long the lease lasts unrenewed; DefaultLease when 0.
	// It is renewed, and other nodes' leases looked at, every fifth of it.
	Lease time.Duration
	// WrapUp is the wrap-up of agents whose conversation a lost node held,
	// as after any call.
	WrapUp time.Duration
	// Process is this process, kept with the lease.
	Process Process
	// Gone reports whether a process is provably not running (it ran on
	// this host and is no longer there). Nil proves nothing: a
	// predecessor's lease then has to run out.
	Gone func(Process) bool
	// CloseCalls ends the call records of a lost instance; the work is
	// claimed and retried until it returns nil. Nil leaves them open.
	CloseCalls func(ctx context.Context, l LostNode) error
	Log        zerolog.Logger
}

// LostNode is a node instance that was reclaimed.
type LostNode struct {
	Name, Instance string
	// LastRenewed is its last sign of life; LostAt when it was
	// reclaimed, by the instance By.
	LastRenewed, LostAt time.Time
	By                  string
	// Calls and Agents count the calls in the queue or in conversation,
	// and the agents on them, given back (Reconcile only).
	Calls, Agents int
}

// NodeLease is one node instance's liveness lease.
type NodeLease struct {
	store *Store
	opts  NodeOptions
	every time.Duration
	// joined is when the lease was taken.
	joined time.Time
	// Predecessor is the previous instance of the name, taken over when
	// this one joined; "" for none.
	Predecessor string
}

// NewInstance returns a new instance id: the start time and a random
// part.
func NewInstance() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b)
}

// JoinNode takes the lease of the node name for a new instance. When a
// previous instance holds the name, the new one is its successor: it
// reclaims what the previous one held and takes the name, at once when
// opts.Gone proves the previous process gone, else once its lease has run
// out. A previous instance that renews its lease meanwhile is running:
// JoinNode fails with ErrNodeInUse. It waits at most about a lease.
func (s *Store) JoinNode(ctx context.Context, opts NodeOptions) (*NodeLease, error) {
	if !identPattern.MatchString(opts.Name) {
		return nil, fmt.Errorf("%w: node name %q", ErrInvalid, opts.Name)
	}
	if opts.Instance == "" {
		opts.Instance = NewInstance()
	}
	if opts.Lease <= 0 {
		opts.Lease = DefaultLease
	}
	n := &NodeLease{store: s, opts: opts, every: opts.Lease / 5}
	force, holder, firstEnd, told := "", "", "", false
	for {
		res, err := n.join(ctx, force)
		if err != nil {
			return nil, err
		}
		if res[0] == "joined" {
			n.joined = s.now()
			n.Predecessor = res[1]
			if n.Predecessor != "" {
				calls, _ := strconv.Atoi(res[2])
				agents, _ := strconv.Atoi(res[3])
				opts.Log.Warn().Str("node", opts.Name).Str("instance", opts.Instance).Str("predecessor", n.Predecessor).
					Int("calls", calls).Int("agents", agents).Bool("proven_gone", force != "").
					Msg("node: took over from the previous run, which had stopped without leaving")
			}
			return n, nil
		}
		if len(res) < 9 {
			return nil, fmt.Errorf("acd: join node %s: answered %q", opts.Name, res)
		}
		prev := Process{Host: res[3], Boot: res[4], PIDNS: res[5], Start: res[7]}
		prev.PID, _ = strconv.Atoi(res[6])
		switch {
		case res[1] != holder:
			holder, firstEnd = res[1], res[2]
		case res[2] != firstEnd:
			return nil, fmt.Errorf("%w: node %s is held by instance %s (host %s, pid %d), which renewed its lease: give each node its own name (config node)",
				ErrNodeInUse, opts.Name, holder, prev.Host, prev.PID)
		}
		if opts.Gone != nil && opts.Gone(prev) {
			force = holder
			continue
		}
		if !told {
			told = true
			opts.Log.Info().Str("node", opts.Name).Str("holder", holder).Str("host", prev.Host).Int("pid", prev.PID).
				Msg("node: the name's lease is held; waiting for it to be renewed (a running node: refused) or to run out (a lost one: taken over)")
		}
		t := time.NewTimer(n.every / 2)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

func (n *NodeLease) join(ctx context.Context, force string) ([]string, error) {
	p := n.opts.Process
	res, err := n.store.run(ctx, joinScript, n.opts.Name, n.opts.Instance, ms(n.store.now()), n.opts.Lease.Milliseconds(),
		n.opts.WrapUp.Milliseconds(), force, p.Host, p.Boot, p.PIDNS, p.PID, p.Start).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("acd: join node %s: %w", n.opts.Name, err)
	}
	if len(res) < 2 {
		return nil, fmt.Errorf("acd: join node %s: answered %q", n.opts.Name, res)
	}
	return res, nil
}

// Name is the node's name; Instance this run's id.
func (n *NodeLease) Name() string     { return n.opts.Name }
func (n *NodeLease) Instance() string { return n.opts.Instance }

// Every is how often Run renews the lease and looks for lost nodes.
func (n *NodeLease) Every() time.Duration { return n.every }

// Renew renews the lease. It fails with ErrLeaseLost when the lease was
// reclaimed meanwhile: the node must stop. When Redis has lost every trace
// of the instance (a store that restarted empty), the lease is taken again.
func (n *NodeLease) Renew(ctx context.Context) error {
	res, err := n.store.run(ctx, renewScript, n.opts.Instance, ms(n.store.now()), n.opts.Lease.Milliseconds()).Text()
	if err != nil {
		return fmt.Errorf("acd: renew node lease: %w", err)
	}
	switch res {
	case "ok":
		return nil
	case "missing":
		j, err := n.join(ctx, "")
		if err != nil {
			return err
		}
		if j[0] == "joined" {
			n.opts.Log.Warn().Str("node", n.opts.Name).Msg("node: Redis had lost the lease; taken again")
			return nil
		}
		return fmt.Errorf("%w: Redis had lost it, and instance %s holds the name now", ErrLeaseLost, j[1])
	}
	return fmt.Errorf("%w: instance %s of node %s is %s", ErrLeaseLost, n.opts.Instance, n.opts.Name, res)
}

// minQuiet is the least time a node that renewed again after a gap
// leaves the others to do the same: a Redis client whose dials failed
// tries again about every second.
const minQuiet = 5 * time.Second

// reconcileBatch bounds the instances one Reconcile or CloseLost takes on.
const reconcileBatch = 16

// Reconcile reclaims what the instances whose lease has run out held: the
// calls in the queue leave it, agents ringing for them are free, agents
// talking on them wrap up. Their call records are ended by CloseLost.
func (n *NodeLease) Reconcile(ctx context.Context) ([]LostNode, error) {
	now := n.store.now()
	vals, err := n.store.run(ctx, reconcileScript, n.opts.Instance, ms(now), n.opts.WrapUp.Milliseconds(), reconcileBatch).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("acd: reconcile lost nodes: %w", err)
	}
	var out []LostNode
	for i := 0; i+4 < len(vals); i += 5 {
		l := LostNode{Instance: vals[i], Name: vals[i+1], LostAt: now, By: n.opts.Instance}
		if t := msTime(vals[i+2]); t != nil {
			l.LastRenewed = *t
		}
		l.Calls, _ = strconv.Atoi(vals[i+3])
		l.Agents, _ = strconv.Atoi(vals[i+4])
		n.opts.Log.Warn().Str("lost_node", l.Name).Str("lost_instance", l.Instance).Time("last_renewed", l.LastRenewed).
			Int("calls", l.Calls).Int("agents", l.Agents).Msg("node: a node's lease ran out; what it held is given back")
		out = append(out, l)
	}
	return out, nil
}

// CloseLost claims the lost instances whose call records are still open
// and ends them with opts.CloseCalls, at most a batch at a time. A claim
// not finished within a lease (this node died, or CloseCalls failed) is
// taken over by whichever node looks next. It returns the instances done.
func (n *NodeLease) CloseLost(ctx context.Context) ([]LostNode, error) {
	now := n.store.now()
	vals, err := n.store.run(ctx, claimUnclosedScript, ms(now), n.opts.Lease.Milliseconds(), reconcileBatch).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("acd: claim lost nodes' calls: %w", err)
	}
	var done []LostNode
	var errs []error
	for i := 0; i+4 < len(vals); i += 5 {
		l := LostNode{Instance: vals[i], Name: vals[i+1], By: vals[i+4]}
		if t := msTime(vals[i+2]); t != nil {
			l.LastRenewed = *t
		}
		if t := msTime(vals[i+3]); t != nil {
			l.LostAt = *t
		}
		if n.opts.CloseCalls != nil {
			if err := n.opts.CloseCalls(ctx, l); err != nil {
				errs = append(errs, fmt.Errorf("acd: end the calls of lost node %s (%s): %w", l.Name, l.Instance, err))
				continue
			}
		}
		if err := n.store.run(ctx, closedScript, l.Instance, ms(n.store.now()), keepLost.Milliseconds()).Err(); err != nil {
			errs = append(errs, fmt.Errorf("acd: lost node %s: %w", l.Instance, err))
			continue
		}
		done = append(done, l)
	}
	return done, errors.Join(errs...)
}

// Run renews the lease and, every time, reclaims lost nodes and ends their
// calls, until ctx ends (nil) or the lease is lost (ErrLeaseLost).
//
// A node that could not renew for a while (Redis was out of reach) does
// not reclaim others until it has renewed again for a whole lease (and
// minQuiet at least): the others were most likely cut off as it was, and
// their leases ran out for that reason alone. Without this, the first
// node back after an outage longer than the lease would reclaim every
// other live node.
func (n *NodeLease) Run(ctx context.Context) error {
	tick := time.NewTicker(n.every)
	defer tick.Stop()
	lastRenewed, quietUntil := n.joined, time.Time{}
	for {
		if err := n.Renew(ctx); err != nil {
			if errors.Is(err, ErrLeaseLost) {
				return err
			}
			if ctx.Err() != nil {
				return nil
			}
			n.opts.Log.Warn().Err(err).Msg("node")
		} else {
			now := n.store.now()
			if now.Sub(lastRenewed) > 2*n.every {
				quietUntil = now.Add(max(n.opts.Lease, minQuiet))
				n.opts.Log.Warn().Stringer("unrenewed", now.Sub(lastRenewed)).Time("until", quietUntil).
					Msg("node: renewed again after a gap; other nodes get a lease to renew theirs before they count as lost")
			}
			lastRenewed = now
			if !now.Before(quietUntil) {
				if _, err := n.Reconcile(ctx); err != nil && ctx.Err() == nil {
					n.opts.Log.Warn().Err(err).Msg("node")
				}
			}
			// The records of nodes already reclaimed need no wait.
			if _, err := n.CloseLost(ctx); err != nil && ctx.Err() == nil {
				n.opts.Log.Warn().Err(err).Msg("node")
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Leave ends the lease as the node stops, once its calls have ended: the
// name is free for the next run at once. Anything still held in the queue
// is reclaimed as for a lost node.
func (n *NodeLease) Leave(ctx context.Context) error {
	res, err := n.store.run(ctx, leaveNodeScript, n.opts.Instance, ms(n.store.now()), n.opts.WrapUp.Milliseconds(), keepLost.Milliseconds()).Text()
	if err != nil {
		return fmt.Errorf("acd: leave node %s: %w", n.opts.Name, err)
	}
	if res == "reclaimed" {
		n.opts.Log.Warn().Str("node", n.opts.Name).Msg("node: calls still held at the stop were given back")
	}
	return nil
}

// LiveNode is a node instance holding a lease.
type LiveNode struct {
	Name     string    `json:"name"`
	Instance string    `json:"instance"`
	Until    time.Time `json:"lease_until"` // the lease runs out
	Host     string    `json:"host,omitempty"`
	Started  time.Time `json:"started"`
	Renewed  time.Time `json:"renewed"`
	// Calls are the calls the instance is running, in any stage (menu,
	// queue, conversation, rating), as it reports them.
	Calls int `json:"calls"`
	// Held are the calls in the queue or in conversation it holds.
	Held int `json:"held"`
	// Health is its own checks as it last reported them (redis, ari,
	// journal…): "ok" or what failed.
	Health map[string]string `json:"health,omitempty"`
	// HealthAt is when it reported them.
	HealthAt *time.Time `json:"health_at,omitempty"`
}

func msTimeOrZero(s string) time.Time {
	if t := msTime(s); t != nil {
		return *t
	}
	return time.Time{}
}

// LiveNodes lists the instances holding a lease, by when it runs out.
func (s *Store) LiveNodes(ctx context.Context) ([]LiveNode, error) {
	zs, err := s.rdb.ZRangeWithScores(ctx, s.key("nodes"), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("acd: nodes: %w", err)
	}
	hs := make([]*redis.MapStringStringCmd, len(zs))
	held := make([]*redis.IntCmd, len(zs))
	// One round trip: the keys share the {acd} slot.
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, z := range zs {
			inst := z.Member.(string)
			hs[i] = p.HGetAll(ctx, s.key("node:"+inst))
			held[i] = p.SCard(ctx, s.key("held:"+inst))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("acd: nodes: %w", err)
	}
	out := make([]LiveNode, 0, len(zs))
	for i, z := range zs {
		h := hs[i].Val()
		n := LiveNode{Name: h["name"], Instance: z.Member.(string), Until: time.UnixMilli(int64(z.Score)), Host: h["host"],
			Started: msTimeOrZero(h["started"]), Renewed: msTimeOrZero(h["renewed"]), Held: int(held[i].Val())}
		n.Calls, _ = strconv.Atoi(h["calls"])
		if doc := h["health"]; doc != "" {
			_ = json.Unmarshal([]byte(doc), &n.Health)
			n.HealthAt = msTime(h["health_at"])
		}
		out = append(out, n)
	}
	return out, nil
}

// CallsChanged adds delta to the calls the instance reports running.
func (n *NodeLease) CallsChanged(ctx context.Context, delta int) error {
	if err := n.store.run(ctx, nodeFieldScript, n.opts.Instance, "incr", "calls", delta).Err(); err != nil {
		return fmt.Errorf("acd: node %s calls: %w", n.opts.Name, err)
	}
	return nil
}

// ReportHealth keeps the instance's own checks for the others to see.
func (n *NodeLease) ReportHealth(ctx context.Context, checks map[string]string) error {
	doc, _ := json.Marshal(checks)
	if err := n.store.run(ctx, nodeFieldScript, n.opts.Instance, "set", "health", string(doc), ms(n.store.now())).Err(); err != nil {
		return fmt.Errorf("acd: node %s health: %w", n.opts.Name, err)
	}
	return nil
}
