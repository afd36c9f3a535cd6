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
	causeUserBusy     = 17
	causeNoUserAnswer = 18
	causeNoAnswer     = 19 // "User alerting, no answer": the originate's timeout
	causeCallRejected = 21
	ringTimeoutLeeway = 2 * time.Second
	bridgeNamePrefix  = "hotline-"
	originateCallerID = "12345"
)

// Dial rings the agent's phone: an originate to its endpoint that enters
// the application when answered (StasisStart), or ends with
// ChannelDestroyed whose cause says why: busy or rejected, no answer. The
// citizen hanging up or ctx ending withdraws the offer.
func (b *Backend) Dial(ctx context.Context, call ivr.Call, t ivr.Target, ring time.Duration) (ivr.Call, error) {
	citizen, ok := call.(*channel)
	if !ok {
		return nil, ErrForeignCall
	}
	leg := b.newChannel(uuid.NewString(), true)
	leg.caller = t.SIPUser
	leg.log = leg.log.With().Str("agent", t.AgentID).Str("citizen_call", citizen.callID).Logger()
	b.mu.Lock()
	b.channels[leg.id] = leg
	b.mu.Unlock()
	endpoint := b.opts.AgentEndpoint(t.SIPUser)
	caller := citizen.caller
	if caller == "" {
		caller = originateCallerID
	}
	if err := b.rest.originate(ctx, leg.id, endpoint, b.opts.Application, argAgent, caller, ring); err != nil {
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
	select {
	case <-leg.answered:
		leg.log.Info().Msg("agent answered")
		return leg, nil
	case <-leg.ctx.Done():
		switch cause := leg.hangupCause.Load(); cause {
		case causeUserBusy, causeCallRejected:
			return nil, fmt.Errorf("%w: cause %d", ivr.ErrRejected, cause)
		case causeNoAnswer, causeNoUserAnswer:
			return nil, fmt.Errorf("%w: cause %d", ivr.ErrRangOut, cause)
		default:
			return nil, fmt.Errorf("%w: cause %d", ivr.ErrUnreachable, cause)
		}
	case <-timer.C:
		// Asterisk ends an originate at its timeout; this is the backstop.
		leg.hangupSoon(ctx)
		return nil, ivr.ErrRangOut
	case <-citizen.Done():
		leg.hangupSoon(ctx)
		return nil, citizen.Err()
	case <-ctx.Done():
		leg.hangupSoon(ctx)
		return nil, context.Cause(ctx)
	}
}

// Bridge joins the citizen and the agent in a mixing bridge with DTMF
// events until one of them hangs up. When the agent leaves, the citizen
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
	if err := b.rest.createBridge(ctx, id, bridgeNamePrefix+citizen.callID); err != nil {
		leg.hangupSoon(ctx)
		return "", fmt.Errorf("create bridge: %w", err)
	}
	defer cleanup()
	if err := b.rest.addChannels(ctx, id, citizen.id, leg.id); err != nil {
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
