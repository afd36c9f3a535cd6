package ivr

import (
	"context"
	"errors"
	"time"
)

// Why an offer to an agent did not become a conversation. Test with
// errors.Is; backends wrap them with detail (the SIP status, the channel
// cause).
var (
	ErrRangOut     = errors.New("agent did not answer")    // rang out: the offer was withdrawn
	ErrRejected    = errors.New("agent rejected the call") // busy or declined (SIP 486, 600, 603)
	ErrUnreachable = errors.New("agent unreachable")       // not registered, or no route to the phone
)

// Target is the agent a call is offered to.
type Target struct {
	AgentID string
	// SIPUser is the user the agent's phone registers as.
	SIPUser string
}

// BridgeEnd says which side ended a conversation.
type BridgeEnd string

// Sides of a bridge.
const (
	AgentHungUp  BridgeEnd = "agent"
	CallerHungUp BridgeEnd = "caller"
)

// Connector is the part of a backend that reaches agents: it rings an
// agent's phone for a caller's call and bridges the two. Backends without
// agents leave it out.
type Connector interface {
	// Dial rings the agent for call and returns the agent's leg once the
	// agent answered. It fails with ErrRangOut when ringTimeout passes
	// (the offer is withdrawn, SIP CANCEL), ErrRejected when the phone
	// declines, ErrUnreachable when the agent has no phone to ring; when
	// ctx ends first (the caller hung up) the offer is withdrawn and the
	// error is ctx's.
	Dial(ctx context.Context, call Call, target Target, ringTimeout time.Duration) (Call, error)
	// Bridge joins call and the agent's leg with two-way audio; keys
	// pressed on either side are passed to the other. It returns when
	// one side hangs up, saying which; the agent's leg is ended by then,
	// the caller's call is not (the rating follows). Keys the caller
	// pressed while bridged also reach call.Digits: a flow that reads
	// keys afterwards discards those first.
	Bridge(ctx context.Context, call, agent Call) (BridgeEnd, error)
}
