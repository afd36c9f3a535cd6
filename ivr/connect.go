package ivr

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Why a call placed by a Dialer did not become a conversation. Each is
// distinct; test with errors.Is. Backends wrap them with detail (the SIP
// status, the channel's cause).
var (
	// ErrRangOut: nobody answered before the ring timeout (the call was
	// withdrawn: SIP CANCEL), or the far end said so (408, 480; Q.850 18,
	// 19).
	ErrRangOut = errors.New("no answer")
	// ErrBusy: the far end is busy (SIP 486, 600; Q.850 17).
	ErrBusy = errors.New("busy")
	// ErrRejected: the far end declined the call (SIP 603, 403; Q.850
	// 21).
	ErrRejected = errors.New("rejected")
	// ErrUnreachable: there is no such destination or no route to it
	// (not registered, SIP 404, 484, a transport error, no response at
	// all; Q.850 1, 3, 20, 27).
	ErrUnreachable = errors.New("unreachable")
	// ErrCongestion: the network could not take the call now (SIP 503,
	// 500, 502, 504; Q.850 34, 38, 41, 42; every trunk full or down).
	ErrCongestion = errors.New("congestion")
)

// Destination is where a Dialer places a call: an Agent, a Number, or
// (later) a browser session. Each kind has its dialer; Dialers routes by
// Kind.
type Destination interface {
	// Kind names the destination's kind: "agent", "number".
	Kind() string
	// String names the destination in logs and errors.
	String() string
}

// Agent is an agent's phone: a SIP binding of the agent's SIP user on the
// embedded backend, the PJSIP endpoint of that name on Asterisk.
type Agent struct {
	AgentID string
	// SIPUser is the user the agent's phone registers as.
	SIPUser string
}

// Kind is "agent".
func (Agent) Kind() string { return "agent" }

func (a Agent) String() string { return "agent " + a.AgentID }

// Number is a telephone number reached through a carrier's trunk. Trunk
// is the trunk chosen to carry the call (a TrunkDialer chooses it); the
// backend places the call through it.
type Number struct {
	Number string
	Trunk  TrunkRoute
}

// Kind is "number".
func (Number) Kind() string { return "number" }

func (n Number) String() string {
	if n.Trunk.Name == "" {
		return "number " + n.Number
	}
	return "number " + n.Number + " via " + n.Trunk.Name
}

// TrunkRoute is what a backend needs of a trunk to place a call through
// it.
type TrunkRoute struct {
	Name string
	// Address is the carrier's host:port; Transport udp, tcp or tls.
	Address, Transport string
	// Username and Password answer the carrier's digest challenge.
	Username, Password string
	// CallerID is the number presented.
	CallerID string
	// Codecs are offered, in order; empty means the backend's.
	Codecs []string
	// Endpoint is the trunk's PJSIP endpoint on Asterisk.
	Endpoint string
}

// DialOptions say how a call is placed.
type DialOptions struct {
	// Parent is the call this one is placed for (the citizen an agent is
	// rung for): the new call ends with it, and the far end sees its
	// caller. Nil for a call of its own (a return visit).
	Parent Call
	// RingTimeout is how long the far end may ring before the call is
	// withdrawn with ErrRangOut.
	RingTimeout time.Duration
}

// Dialer places calls. Dial returns once the far end answered (early
// media is ignored), with a Call a flow can run on; it fails with one of
// the errors above, or ctx's error when ctx ends first (the call is
// withdrawn).
type Dialer interface {
	Dial(ctx context.Context, to Destination, opts DialOptions) (Call, error)
}

// Dialers routes each destination to the dialer of its kind: a new kind
// of endpoint is one more entry, not a new branch.
type Dialers map[string]Dialer

// Dial dials to with the dialer of its kind.
func (ds Dialers) Dial(ctx context.Context, to Destination, opts DialOptions) (Call, error) {
	d, ok := ds[to.Kind()]
	if !ok {
		return nil, fmt.Errorf("%w: no dialer for %s", ErrUnreachable, to)
	}
	return d.Dial(ctx, to, opts)
}

// BridgeEnd says which side ended a conversation.
type BridgeEnd string

// Sides of a bridge.
const (
	AgentHungUp  BridgeEnd = "agent"
	CallerHungUp BridgeEnd = "caller"
)

// Bridger joins two calls of one backend.
type Bridger interface {
	// Bridge joins call and the agent's leg with two-way audio; keys
	// pressed on either side are passed to the other. It returns when
	// one side hangs up, saying which; the agent's leg is ended by then,
	// the caller's call is not (the rating follows). Keys the caller
	// pressed while bridged also reach call.Digits: a flow that reads
	// keys afterwards discards those first.
	Bridge(ctx context.Context, call, agent Call) (BridgeEnd, error)
}

// Connector is the part of a backend that reaches agents and numbers:
// it places calls and bridges them. Backends without agents leave it out.
type Connector interface {
	Dialer
	Bridger
}
