package sip

import (
	"context"
	"errors"

	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/media"
)

// ErrForeignCall is returned by Bridge for a call that is not one of this
// server's: a citizen's call it answered, or a leg it dialled.
var ErrForeignCall = errors.New("sip: not a call of this server")

// bridgeable is a call of this server that Bridge can join: a citizen's
// call it answered (*call), or a leg it dialled (*agentLeg) — to an
// agent's phone, or to a citizen's number through a trunk when the agent
// was rung first.
type bridgeable interface {
	ivr.Call
	server() *Server
	mediaStream() *media.Stream
	logger() *zerolog.Logger
}

func (c *call) server() *Server             { return c.srv }
func (c *call) logger() *zerolog.Logger     { return &c.log }
func (l *agentLeg) server() *Server         { return l.srv }
func (l *agentLeg) logger() *zerolog.Logger { return &l.log }

// Bridge joins a citizen's call and an agent's leg until one side hangs
// up (ivr.Connector). The citizen's side is the call the server answered,
// or, for a call that rang the agent first, the leg it dialled to the
// citizen's number. Each side hears the other through the media
// package's bridge: a small jitter buffer per direction, silence when it
// runs dry, µ-law and A-law transcoded when the two sides differ, and the
// frames still sent from the pacer's tick. A prompt still playing to the
// citizen stops. Keys either side sends as RFC 4733 events or SIP INFO
// reach the other side as RFC 4733 events (when it took telephone-event;
// keys sent as tones pass in the audio); the citizen's keys still reach
// call.Digits.
//
// It returns ivr.AgentHungUp when the agent's leg ends (its BYE, or its
// media stopping), and the citizen's call then sends its own prompts
// again; ivr.CallerHungUp when the citizen's call ends (the citizen hung
// up, or the call was ended: media timeout, shutdown; call.Err says which),
// after the agent's phone got its BYE. When both end at once the citizen's hangup wins: no
// rating can follow. When ctx ends first (and not with the citizen's call)
// the agent's leg is hung up and ctx's error returned. The agent's leg has
// ended whenever Bridge returns; the citizen's side is left as it is.
func (s *Server) Bridge(ctx context.Context, citizen, agent ivr.Call) (ivr.BridgeEnd, error) {
	c, ok := citizen.(bridgeable)
	l, ok2 := agent.(*agentLeg)
	if !ok || !ok2 || c.server() != s || l.srv != s || citizen == agent {
		return "", ErrForeignCall
	}
	defer l.hangupAfterBridge(ctx)
	if c.Err() != nil {
		return ivr.CallerHungUp, nil
	}
	if ctx.Err() != nil {
		return "", ctxError(ctx)
	}
	stream := l.mediaStream()
	if l.Err() != nil || stream == nil {
		return ivr.AgentHungUp, nil
	}
	cstream := c.mediaStream()
	if cstream == nil {
		// The citizen's call has no media yet (a late offer whose ACK
		// has not come): there is nothing to bridge.
		return "", errors.New("sip: the citizen's call has no media to bridge")
	}
	log := c.logger()
	cstream.StopPlayback()
	br, err := media.Join(cstream, stream, media.BridgeOptions{})
	if err != nil {
		return "", err
	}
	log.Info().Str("agent_leg", l.id).Str("agent_user", l.user).
		Str("codec", cstream.Codec().Name).Str("agent_codec", stream.Codec().Name).Msg("bridged with the agent")
	select {
	case <-c.Done():
	case <-l.Done():
	case <-ctx.Done():
	}
	br.Close()
	// The flow's ctx usually ends with the citizen's call: that is the
	// citizen hanging up, not the flow giving up.
	var end ivr.BridgeEnd
	switch {
	case c.Err() != nil:
		end = ivr.CallerHungUp
	case ctx.Err() != nil:
		err = ctxError(ctx)
	default:
		end = ivr.AgentHungUp
	}
	toAgent, toCitizen := br.Stats()
	log.Info().Str("end", string(end)).AnErr("err", err).
		Uint64("late_to_agent", toAgent.Late).Uint64("dropped_to_agent", toAgent.Dropped).Uint64("underruns_to_agent", toAgent.Underruns).
		Uint64("late_to_citizen", toCitizen.Late).Uint64("dropped_to_citizen", toCitizen.Dropped).Uint64("underruns_to_citizen", toCitizen.Underruns).
		Msg("bridge ended")
	return end, err
}

// hangupAfterBridge ends the agent's leg as Bridge returns: the leg is
// over once its conversation is.
func (l *agentLeg) hangupAfterBridge(ctx context.Context) {
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), hangupTimeout)
	defer cancel()
	if err := l.Hangup(hctx); err != nil {
		l.log.Warn().Err(err).Msg("hangup after the bridge")
	}
}
