package acd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/appeal"
)

// Distributor runs distribution on one hotline node: it dispatches
// whenever something changed (here or, through Redis pub/sub, on another
// node) and at least every Interval, and hands each offer to the call
// waiting for it on this node. Changes go through it so that every node
// hears of them.
type Distributor struct {
	Store *Store
	// Node names this node; offers for calls held elsewhere are
	// published for their node.
	Node string
	// Instance is this run of the node (see Node, JoinNode): the calls
	// it queues are listed as its own, so that if it is lost they are
	// dropped and their agents freed. Empty lists nothing.
	Instance string
	// Interval bounds the time between dispatches, and how soon a waiting
	// call notices an offer whose message was lost. Zero means 1 s.
	Interval time.Duration
	Log      zerolog.Logger
	// Changed, when set, is told what a change through the Distributor
	// changed: ChangedAgents, ChangedQueue (consoles refresh what they
	// show of it). It must not block.
	Changed func(what ...string)

	once    sync.Once
	kick    chan struct{}
	mu      sync.Mutex
	waiters map[string]chan struct{}
}

// What Changed is told.
const (
	ChangedAgents = "agents"
	ChangedQueue  = "queue"
)

func (d *Distributor) changed(what ...string) {
	if d.Changed != nil {
		d.Changed(what...)
	}
}

const (
	msgKick  = "kick"
	msgOffer = "offer "
)

func (d *Distributor) init() {
	d.once.Do(func() {
		d.kick = make(chan struct{}, 1)
		d.waiters = map[string]chan struct{}{}
		if d.Interval <= 0 {
			d.Interval = time.Second
		}
	})
}

func (d *Distributor) channel() string { return d.Store.key("events") }

// Kick asks for a dispatch soon, here and on every node.
func (d *Distributor) Kick(ctx context.Context) {
	d.kickLocal()
	if err := d.Store.rdb.Publish(ctx, d.channel(), msgKick).Err(); err != nil {
		d.Log.Warn().Err(err).Msg("acd: publish")
	}
}

func (d *Distributor) kickLocal() {
	d.init()
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// Run dispatches until ctx ends.
func (d *Distributor) Run(ctx context.Context) error {
	d.init()
	sub := d.Store.rdb.Subscribe(ctx, d.channel())
	defer sub.Close()
	// An offer published for this node before the subscription took is
	// lost to it: once it has taken, every waiting call reads its offer
	// from the store again. Redis away or slow now, the channel
	// subscribes when it is back, and the ticks carry on meanwhile.
	if _, err := sub.ReceiveTimeout(ctx, 5*time.Second); err == nil {
		d.wakeAll()
	}
	msgs := sub.Channel()
	tick := time.NewTicker(d.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-d.kick:
		case <-tick.C:
		case m := <-msgs:
			if id, ok := strings.CutPrefix(m.Payload, msgOffer); ok {
				d.wake(id)
				continue
			}
		}
		d.dispatch(ctx)
	}
}

func (d *Distributor) dispatch(ctx context.Context) {
	for {
		offers, err := d.Store.Dispatch(ctx, 64)
		if err != nil {
			if ctx.Err() == nil {
				d.Log.Warn().Err(err).Msg("acd: dispatch")
			}
			return
		}
		if len(offers) > 0 {
			d.changed(ChangedAgents, ChangedQueue)
		}
		for _, o := range offers {
			if o.Node == d.Node {
				d.wake(o.CallID)
			} else if err := d.Store.rdb.Publish(ctx, d.channel(), msgOffer+o.CallID).Err(); err != nil {
				d.Log.Warn().Err(err).Str("call_id", o.CallID).Msg("acd: publish offer")
			}
		}
		if len(offers) < 64 {
			return
		}
	}
}

// wakeAll wakes every call waiting for an offer on this node.
func (d *Distributor) wakeAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, ch := range d.waiters {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (d *Distributor) wake(callID string) {
	d.mu.Lock()
	ch := d.waiters[callID]
	d.mu.Unlock()
	if ch != nil {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Enqueue puts a call in the queue on this node.
func (d *Distributor) Enqueue(ctx context.Context, callID string, c appeal.Category) error {
	if err := d.Store.enqueue(ctx, callID, c, d.Node, d.Instance); err != nil {
		return err
	}
	d.changed(ChangedQueue)
	d.Kick(ctx)
	return nil
}

// Next waits until the call is offered to an agent and returns the offer.
// It returns ErrNotFound when the call is not in the queue, and ctx's error
// when ctx ends first.
func (d *Distributor) Next(ctx context.Context, callID string) (Offer, error) {
	d.init()
	ch := make(chan struct{}, 1)
	d.mu.Lock()
	d.waiters[callID] = ch
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.waiters, callID)
		d.mu.Unlock()
	}()
	d.kickLocal()
	tick := time.NewTicker(d.Interval)
	defer tick.Stop()
	for {
		o, err := d.offered(ctx, callID)
		if err != nil || o.AgentID != "" {
			return o, err
		}
		select {
		case <-ctx.Done():
			return Offer{}, ctx.Err()
		case <-ch:
		case <-tick.C:
		}
	}
}

// offered reads the call's offer; an empty Offer while it waits.
func (d *Distributor) offered(ctx context.Context, callID string) (Offer, error) {
	v, err := d.Store.rdb.HMGet(ctx, d.Store.key("c:"+callID), "st", "agent").Result()
	if err != nil {
		if ctx.Err() != nil {
			return Offer{}, ctx.Err()
		}
		// Redis away: keep waiting, the caller hears hold music.
		d.Log.Warn().Err(err).Str("call_id", callID).Msg("acd: read offer")
		return Offer{}, nil
	}
	st, _ := v[0].(string)
	agent, _ := v[1].(string)
	switch st {
	case "waiting":
		return Offer{}, nil
	case "offering":
		user, err := d.Store.rdb.HGet(ctx, d.Store.key("a:"+agent), "user").Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return Offer{}, nil
		}
		return Offer{CallID: callID, AgentID: agent, SIPUser: user, Node: d.Node}, nil
	}
	return Offer{}, fmt.Errorf("%w: call %s is not waiting (%q)", ErrNotFound, callID, st)
}

// Answered records the agent's answer.
func (d *Distributor) Answered(ctx context.Context, o Offer) error {
	err := d.Store.Answered(ctx, o.CallID, o.AgentID)
	d.changed(ChangedAgents, ChangedQueue)
	return err
}

// Declined records an offer that came to nothing and lets distribution go on.
func (d *Distributor) Declined(ctx context.Context, o Offer, why DeclineReason, maxMissed int) (State, error) {
	st, err := d.Store.Declined(ctx, o.CallID, o.AgentID, why, maxMissed)
	d.changed(ChangedAgents, ChangedQueue)
	d.Kick(ctx)
	return st, err
}

// Ended records the end of a conversation and lets distribution go on.
func (d *Distributor) Ended(ctx context.Context, o Offer, wrapUp time.Duration) error {
	err := d.Store.Ended(ctx, o.CallID, o.AgentID, wrapUp)
	d.changed(ChangedAgents)
	d.Kick(ctx)
	return err
}

// Leave takes a call out of the queue and lets distribution go on.
func (d *Distributor) Leave(ctx context.Context, callID string, why LeaveReason) error {
	err := d.Store.Leave(ctx, callID, why)
	d.changed(ChangedQueue)
	d.Kick(ctx)
	return err
}

// Registered, Unregistered, Pause and Resume change an agent's state and
// let distribution go on.
func (d *Distributor) Registered(ctx context.Context, agentID string) (State, error) {
	st, err := d.Store.Registered(ctx, agentID)
	d.changed(ChangedAgents)
	d.Kick(ctx)
	return st, err
}

// Unregistered records that the agent's phone is gone.
func (d *Distributor) Unregistered(ctx context.Context, agentID string) (State, error) {
	st, err := d.Store.Unregistered(ctx, agentID)
	d.changed(ChangedAgents)
	return st, err
}

// Pause pauses an agent.
func (d *Distributor) Pause(ctx context.Context, agentID, reason string) (State, error) {
	st, err := d.Store.Pause(ctx, agentID, reason)
	d.changed(ChangedAgents)
	return st, err
}

// Resume ends an agent's pause.
func (d *Distributor) Resume(ctx context.Context, agentID string) (State, error) {
	st, err := d.Store.Resume(ctx, agentID)
	d.changed(ChangedAgents)
	d.Kick(ctx)
	return st, err
}

// Force sets an agent's state on an operator's word (see Store.Force) and
// lets distribution go on.
func (d *Distributor) Force(ctx context.Context, agentID string, to State, reason, by string) (Agent, error) {
	a, err := d.Store.Force(ctx, agentID, to, reason, by)
	if err == nil {
		d.changed(ChangedAgents)
		d.Kick(ctx)
	}
	return a, err
}

// Position is the call's place in the queue (see Store.Position).
func (d *Distributor) Position(ctx context.Context, callID string) (int, error) {
	return d.Store.Position(ctx, callID)
}

// Staffed reports whether any agent taking c is registered.
func (d *Distributor) Staffed(ctx context.Context, c appeal.Category) (bool, error) {
	return d.Store.Staffed(ctx, c)
}

// TurnedAway counts a call turned away with no agent of its category
// registered (see Store.TurnedAway).
func (d *Distributor) TurnedAway(ctx context.Context, callID string, c appeal.Category) error {
	err := d.Store.TurnedAway(ctx, callID, c)
	d.changed(ChangedQueue)
	return err
}
