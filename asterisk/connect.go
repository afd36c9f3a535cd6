package asterisk

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/hotline12345/hotline/ivr"
)

var _ ivr.Connector = (*Backend)(nil)

// ErrForeignCall is returned by Dial and Bridge for a call or leg that is
// not a channel of this backend.
var ErrForeignCall = errors.New("asterisk: not a channel of this backend")

// Q.850 causes an unanswered originate ends with (ChannelDestroyed).
const (
	causeUnallocated       = 1
	causeNoRoute           = 3
	causeUserBusy          = 17
	causeNoUserAnswer      = 18
	causeNoAnswer          = 19 // "User alerting, no answer": the originate's timeout
	causeSubscriberAbsent  = 20
	causeCallRejected      = 21
	causeNoCircuit         = 34
	causeNetworkOutOfOrder = 38
	causeTemporaryFailure  = 41
	causeCongestion        = 42
	ringTimeoutLeeway      = 2 * time.Second
	bridgeNamePrefix       = "hotline-"
	originateCallerID      = "12345"
)

// failure maps the Q.850 cause an unanswered originate ended with to why
// the call failed, each distinct: busy, declined, no answer, congestion,
// and anything else unreachable.
func failure(cause int) error {
	switch cause {
	case causeUserBusy:
		return ivr.ErrBusy
	case causeCallRejected:
		return ivr.ErrRejected
	case causeNoAnswer, causeNoUserAnswer:
		return ivr.ErrRangOut
	case causeNoCircuit, causeNetworkOutOfOrder, causeTemporaryFailure, causeCongestion:
		return ivr.ErrCongestion
	}
	return ivr.ErrUnreachable
}

// Dial places a call (ivr.Dialer): to an agent's phone (ivr.Agent: the
// PJSIP endpoint of the agent's SIP user) or to a number through a trunk
// (ivr.Number: PJSIP/<number>@<the trunk's endpoint>). It is an
// originate that enters the application when answered (StasisStart), or
// ends with ChannelDestroyed whose cause says why. The parent call ending
// or ctx ending withdraws it.
func (b *Backend) Dial(ctx context.Context, to ivr.Destination, opts ivr.DialOptions) (ivr.Call, error) {
	var parent *channel
	if opts.Parent != nil {
		p, ok := opts.Parent.(*channel)
		if !ok {
			return nil, ErrForeignCall
		}
		parent = p
	}
	switch to := to.(type) {
	case ivr.Agent:
		caller := originateCallerID
		if parent != nil && parent.caller != "" {
			caller = parent.caller
		}
		return b.originateLeg(ctx, b.opts.AgentEndpoint(to.SIPUser), to.SIPUser, caller, parent, opts.RingTimeout, "agent", to.AgentID)
	case ivr.Number:
		endpoint := to.Trunk.Endpoint
		if endpoint == "" {
			endpoint = to.Trunk.Name
		}
		caller := to.Trunk.CallerID
		if caller == "" {
			caller = originateCallerID
		}
		return b.originateLeg(ctx, "PJSIP/"+to.Number+"@"+endpoint, to.Number, caller, parent, opts.RingTimeout, "number", to.Number)
	}
	return nil, fmt.Errorf("%w: the asterisk backend does not dial %s", ivr.ErrUnreachable, to)
}

// originateLeg originates a channel to endpoint presenting callerID, and
// waits for its answer; who names the far end on the leg (its Caller),
// and logKey and logValue in its logs.
func (b *Backend) originateLeg(ctx context.Context, endpoint, who, callerID string, parent *channel, ring time.Duration, logKey, logValue string) (ivr.Call, error) {
	leg := b.newChannel(uuid.NewString(), true)
	leg.caller, leg.dialled = who, who
	lc := leg.log.With().Str(logKey, logValue)
	if parent != nil {
		lc = lc.Str("citizen_call", parent.callID)
	}
	leg.log = lc.Logger()
	b.mu.Lock()
	b.channels[leg.id] = leg
	b.mu.Unlock()
	if err := b.rest.originate(ctx, leg.id, endpoint, b.opts.Application, argAgent, callerID, ring); err != nil {
		b.forget(leg)
		leg.cancel(ivr.ErrHangup)
		var re *RESTError
		if errors.As(err, &re) {
			// 500 {"error":"Allocation failed"}: no such endpoint, or
			// the endpoint has no contact (not registered).
			return nil, fmt.Errorf("%w: %s: %v", ivr.ErrUnreachable, endpoint, err)
		}
		return nil, fmt.Errorf("originate %s: %w", endpoint, err)
	}
	timer := time.NewTimer(ring + ringTimeoutLeeway)
	defer timer.Stop()
	var parentDone <-chan struct{}
	if parent != nil {
		parentDone = parent.Done()
	}
	select {
	case <-leg.answered:
		leg.log.Info().Msg("answered")
		return leg, nil
	case <-leg.ctx.Done():
		cause := int(leg.hangupCause.Load())
		return nil, fmt.Errorf("%w: %s: cause %d", failure(cause), endpoint, cause)
	case <-timer.C:
		// Asterisk ends an originate at its timeout; this is the backstop.
		leg.hangupSoon(ctx)
		return nil, ivr.ErrRangOut
	case <-parentDone:
		leg.hangupSoon(ctx)
		return nil, parent.Err()
	case <-ctx.Done():
		leg.hangupSoon(ctx)
		return nil, context.Cause(ctx)
	}
}

// Bridge joins the citizen and the agent in a mixing bridge with DTMF
// events until one of them hangs up. The citizen's side is the citizen's
// call, or a leg hotline originated to the citizen's number when the
// agent was rung first. When the agent leaves, the citizen
// is taken out of the bridge (ARI bridges are not dissolved on their own)
// and stays in the application for the rating; when the citizen leaves,
// the agent's leg is hung up. The bridge is destroyed either way.
func (b *Backend) Bridge(ctx context.Context, call, agent ivr.Call) (ivr.BridgeEnd, error) {
	citizen, ok1 := call.(*channel)
	leg, ok2 := agent.(*channel)
	if !ok1 || !ok2 {
		return "", ErrForeignCall
	}
	id := uuid.NewString()
	cleanup := func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.opts.RequestTimeout)
		defer cancel()
		if err := b.rest.deleteBridge(cctx, id); err != nil {
			citizen.log.Warn().Err(err).Msg("delete bridge")
		}
	}
	// A creation cut short (ctx ended while the request was on its way)
	// may have made the bridge all the same: it is deleted either way, a
	// bridge that does not exist being no error.
	defer cleanup()
	if err := b.rest.createBridge(ctx, id, bridgeNamePrefix+citizen.callID); err != nil {
		leg.hangupSoon(ctx)
		return "", fmt.Errorf("create bridge: %w", err)
	}
	// Two legs hotline placed itself (the agent rung first, then the
	// citizen's number): each phone keeps showing the caller id it was
	// called with, so that the citizen never sees the agent's endpoint's
	// caller id, only the hotline's number.
	if err := b.rest.addChannels(ctx, id, citizen.agent, citizen.id, leg.id); err != nil {
		leg.hangupSoon(ctx)
		if cerr := citizen.Err(); cerr != nil {
			return ivr.CallerHungUp, nil
		}
		return "", fmt.Errorf("add to bridge: %w", err)
	}
	select {
	case <-leg.Done():
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.opts.RequestTimeout)
		err := b.rest.removeChannel(rctx, id, citizen.id)
		cancel()
		if citizen.Err() != nil {
			return ivr.CallerHungUp, nil
		}
		if err != nil {
			return ivr.AgentHungUp, fmt.Errorf("take the caller out of the bridge: %w", err)
		}
		return ivr.AgentHungUp, nil
	case <-citizen.Done():
		leg.hangupSoon(ctx)
		return ivr.CallerHungUp, nil
	case <-ctx.Done():
		leg.hangupSoon(ctx)
		return "", context.Cause(ctx)
	}
}

// hangupSoon hangs up an agent's leg within the request timeout, even
// when ctx has ended; a failure is only logged: the leg is over for the
// flow either way.
func (c *channel) hangupSoon(ctx context.Context) {
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.b.opts.RequestTimeout)
	defer cancel()
	if err := c.Hangup(hctx); err != nil {
		c.log.Warn().Err(err).Msg("hang up the agent's leg")
	}
}
