package ivr

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Leg names one of the two calls of an agent-first call.
type Leg string

// The legs of an agent-first call.
const (
	AgentLeg   Leg = "agent"
	CitizenLeg Leg = "citizen"
)

// ErrAgentLeft: the agent's leg ended (the agent hung up, or the leg
// failed) before the citizen answered; the citizen's leg was withdrawn.
var ErrAgentLeft = errors.New("the agent left before the citizen answered")

// ConnectError is why an agent-first call did not become a conversation:
// the leg that failed, and why — one of the Dialer's errors (ErrBusy,
// ErrRangOut, ...), ErrAgentLeft, or the context's error. errors.Is sees
// through it.
type ConnectError struct {
	Leg Leg
	Err error
}

func (e *ConnectError) Error() string { return fmt.Sprintf("%s leg: %v", e.Leg, e.Err) }

func (e *ConnectError) Unwrap() error { return e.Err }

// AgentFirst places calls that ring the agent first: when the agent
// answers, the citizen's number is dialled through a trunk and the two
// are bridged. Neither leg has a parent, so the citizen sees the trunk's
// caller id, the hotline's number, never the agent's. A return visit is
// made this way. Its fields are read-only once in use; Connect may be
// called from many goroutines at once.
type AgentFirst struct {
	// Dialer places both legs; Bridger joins them. Both are one backend
	// (its Connector).
	Dialer  Dialer
	Bridger Bridger
	// AgentRing and CitizenRing are how long each leg may ring.
	AgentRing, CitizenRing time.Duration
	// HangupTimeout bounds the hang-up of a leg that is no longer wanted;
	// 5 s when zero.
	HangupTimeout time.Duration
}

// Connect rings the agent; once the agent answers, it dials the citizen
// and bridges the two. It returns once they are bridged, with the
// conversation, or why not: a *ConnectError naming the leg that failed.
// When the agent does not answer the citizen is never dialled; when the
// citizen does not answer (busy, no answer, unreachable...) the agent's
// leg is ended; when the agent hangs up while the citizen's leg rings,
// that leg is withdrawn and the error is ErrAgentLeft.
//
// ctx bounds the setting up only (an HTTP request may carry it): the
// conversation goes on after ctx ends, until either side hangs up or
// Conversation.Hangup. No leg is left behind when Connect fails.
func (af *AgentFirst) Connect(ctx context.Context, agent Agent, citizen Number) (*Conversation, error) {
	agentLeg, err := af.Dialer.Dial(ctx, agent, DialOptions{RingTimeout: af.AgentRing})
	if err != nil {
		return nil, &ConnectError{Leg: AgentLeg, Err: err}
	}
	// The citizen's leg is withdrawn as soon as the agent's ends.
	dialCtx, cancel := context.WithCancelCause(ctx)
	stop := make(chan struct{})
	var watch sync.WaitGroup
	watch.Go(func() {
		select {
		case <-agentLeg.Done():
			cancel(fmt.Errorf("%w: %w", ErrAgentLeft, agentLeg.Err()))
		case <-stop:
		}
	})
	citizenLeg, err := af.Dialer.Dial(dialCtx, citizen, DialOptions{RingTimeout: af.CitizenRing})
	close(stop)
	watch.Wait()
	cancel(nil)
	if agentErr := agentLeg.Err(); agentErr != nil {
		// The agent left, whatever became of the citizen's leg: a
		// citizen who answered meanwhile is hung up at once.
		if citizenLeg != nil {
			af.hangup(ctx, citizenLeg)
		}
		return nil, &ConnectError{Leg: AgentLeg, Err: fmt.Errorf("%w: %w", ErrAgentLeft, agentErr)}
	}
	if err != nil {
		af.hangup(ctx, agentLeg)
		return nil, &ConnectError{Leg: CitizenLeg, Err: err}
	}
	return af.bridge(ctx, agentLeg, citizenLeg), nil
}

// bridge joins the two answered legs in a goroutine of their own, which
// ends both when the bridge does.
func (af *AgentFirst) bridge(ctx context.Context, agentLeg, citizenLeg Call) *Conversation {
	bctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	c := &Conversation{Agent: agentLeg, Citizen: citizenLeg, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		defer cancel(nil)
		// The Bridger ends the agent's leg; the citizen's is the
		// "caller" of the bridge, which it leaves up for a rating that
		// an agent-first call does not have.
		c.end, c.err = af.Bridger.Bridge(bctx, citizenLeg, agentLeg)
		af.hangup(bctx, citizenLeg)
		af.hangup(bctx, agentLeg)
	}()
	return c
}

// hangup ends a leg that is no longer wanted, within the hang-up timeout
// even when ctx has ended.
func (af *AgentFirst) hangup(ctx context.Context, leg Call) {
	d := af.HangupTimeout
	if d <= 0 {
		d = 5 * time.Second
	}
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d)
	defer cancel()
	_ = leg.Hangup(hctx)
}

// Conversation is an agent and a citizen bridged by AgentFirst. Its
// methods are safe for concurrent use.
type Conversation struct {
	// Agent and Citizen are the two legs, for their ids and records.
	Agent, Citizen Call

	cancel context.CancelCauseFunc
	done   chan struct{}
	end    BridgeEnd // set before done is closed
	err    error
}

// Done is closed once the conversation has ended and both legs with it.
func (c *Conversation) Done() <-chan struct{} { return c.done }

// End says, once Done is closed, who hung up: AgentHungUp, or
// CallerHungUp for the citizen. It is "" with an error when the bridge
// failed or Hangup ended it (errors.Is(err, ErrHangup)).
func (c *Conversation) End() (BridgeEnd, error) {
	select {
	case <-c.done:
		return c.end, c.err
	default:
		return "", nil
	}
}

// Hangup ends the conversation from hotline's side, both legs with it,
// and waits until it has ended or ctx ends.
func (c *Conversation) Hangup(ctx context.Context) error {
	c.cancel(ErrHangup)
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
