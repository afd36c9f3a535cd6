// Package trunk watches the carriers' SIP trunks and shares them out: each
// trunk's health (an OPTIONS probe every interval, with hysteresis), its
// registration with the carrier (one node registers it: registration.go), its
// channels in use across every node (bounded by its limit), its calls of
// the last 15 minutes, and the choice of a trunk for an outbound call.
//
// Everything is kept in Redis under one hash tag, {trunks}, so that the
// nodes sharing Redis share one view of every trunk, and the scripts that
// change it run on Redis Cluster too:
//
//	hotline:{trunks}:health:<trunk>              hash: state, since, counters, last probe
//	hotline:{trunks}:events                      stream of state changes (bounded)
//	hotline:{trunks}:lease:<trunk>               the node that probes the trunk
//	hotline:{trunks}:registration:<trunk>        hash: registration state, until, last attempt
//	hotline:{trunks}:register-lease:<trunk>      the node that registers the trunk
//	hotline:{trunks}:channels:<trunk>:<in|out>   sorted set: channel id → expiry (ms)
//	hotline:{trunks}:minute:<trunk>:<minute>     hash: a minute's seizures and outcomes
package trunk

import (
	"context"
	"errors"
	"time"

	"github.com/hotline12345/hotline/config"
)

// State is a trunk's health as the probes tell it.
type State string

// The states of a trunk.
const (
	// Unknown is a trunk not probed yet: it takes calls, as a trunk just
	// configured is presumed to work until its probes say otherwise.
	Unknown State = "unknown"
	// Up answers its probes.
	Up State = "up"
	// Down failed its last probes (config.TrunkProbe.DownAfter in a row):
	// it takes no outbound call.
	Down State = "down"
	// Maintenance answered 503 Service Unavailable: the carrier says it
	// takes no call for now. It takes no outbound call, and it is one
	// event however long it lasts.
	Maintenance State = "maintenance"
)

// States lists the states, in the order the metrics give them.
var States = []State{Unknown, Up, Down, Maintenance}

// Usable reports whether an outbound call may be placed on a trunk in s:
// up, or not probed yet.
func (s State) Usable() bool { return s == Up || s == Unknown }

// Result is what one probe of a trunk got.
type Result struct {
	// Status is the final response's status code; 0 when none came.
	Status int
	// RTT is how long the final response took; 0 when none came.
	RTT time.Duration
	// Err is why no final response came: a timeout, a transport error.
	Err error
}

// ErrNotProbed, wrapped in a Result's Err, says that the probe was not
// sent for a reason of this side (the SIP stack is starting or stopping):
// the result says nothing of the trunk and is not recorded.
var ErrNotProbed = errors.New("trunk: not probed")

// Prober probes a trunk: the embedded SIP backend sends OPTIONS. A
// backend where another program probes the trunks (Asterisk's qualify)
// implements it by reading what that program found.
type Prober interface {
	Probe(ctx context.Context, t config.Trunk) Result
}

// ProberFunc adapts a function to a Prober.
type ProberFunc func(ctx context.Context, t config.Trunk) Result

// Probe calls f.
func (f ProberFunc) Probe(ctx context.Context, t config.Trunk) Result { return f(ctx, t) }

// Verdict is what a probe's result says of the trunk.
type Verdict int

// The verdicts.
const (
	// Alive: the carrier answered with a final response that is no server
	// error. A 4xx counts, as many carriers answer OPTIONS with 404, 405
	// or 403 (no such user, no OPTIONS taken, not from you): the peer is
	// there and its SIP stack works, which is all a probe asks.
	Alive Verdict = iota
	// Failed: no final response came (a timeout, a transport error), or a
	// server error other than 503 (500, 502, 504, ...): the peer is
	// unreachable or broken.
	Failed
	// Unavailable: 503 Service Unavailable, the carrier's way of saying
	// it is overloaded or under maintenance (RFC 3261 §21.5.4).
	Unavailable
)

// statusServiceUnavailable is SIP's 503 (RFC 3261 §21.5.4).
const statusServiceUnavailable = 503

// Verdict classifies a probe's result.
func (r Result) Verdict() Verdict {
	switch {
	case r.Err != nil || r.Status < 200:
		return Failed
	case r.Status == statusServiceUnavailable:
		return Unavailable
	case r.Status >= 500 && r.Status < 600:
		return Failed
	}
	return Alive
}

// Health is a trunk's state and the probes in a row that lead away from
// it.
type Health struct {
	State State
	// Failures and Successes count the probes in a row that failed and
	// that found the trunk alive; a probe of the other kind (or a 503)
	// starts them again.
	Failures, Successes int
}

// Next is the trunk's health after a probe with verdict v, under the
// probe settings p (DownAfter, UpAfter). The rules, with hysteresis so
// that a flapping trunk does not flap its state:
//
//   - A trunk not probed yet (unknown) is up at its first live probe:
//     there is nothing to recover from.
//   - A live probe brings a down trunk, or one in maintenance, up after
//     UpAfter live probes in a row: a carrier that answers 503 under
//     load and 200 in between stays in maintenance instead of sending an
//     event at every probe.
//   - DownAfter failed probes in a row take any other state down, and
//     maintenance too: a carrier that stopped answering at all is down,
//     whatever it said before.
//   - A 503 puts it in maintenance at once, from any state.
func Next(p config.TrunkProbe, h Health, v Verdict) Health {
	switch v {
	case Unavailable:
		return Health{State: Maintenance}
	case Failed:
		h.Failures++
		h.Successes = 0
		if h.State != Down && h.Failures >= p.DownAfter {
			h.State = Down
		}
		return h
	}
	h.Successes++
	h.Failures = 0
	switch h.State {
	case Unknown, "":
		h.State = Up
	case Down, Maintenance:
		if h.Successes >= p.UpAfter {
			h.State = Up
		}
	}
	return h
}
