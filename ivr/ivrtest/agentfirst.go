package ivrtest

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotline12345/hotline/ivr"
)

// FarEnd is the far end of one leg of an agent-first call, as the test
// sees it: an agent's phone, or a citizen's behind a carrier.
type FarEnd interface {
	// Rung waits for the call to reach the far end and returns the caller
	// id it presents (the number, or the SIP user, shown to whoever picks
	// up). The far end then behaves as its Far says.
	Rung(t *testing.T) string
	// HangUp hangs up the answered call from the far end.
	HangUp(t *testing.T)
	// Ended waits until hotline ended the far end's call: a hang-up of
	// an answered call, the withdrawal (CANCEL) of a ringing one.
	Ended(t *testing.T)
}

// Talker is a FarEnd that carries audio: once bridged, each hears the
// other.
type Talker interface {
	FarEnd
	// Hears waits until this far end hears other's voice.
	Hears(t *testing.T, other FarEnd)
}

// Display is a FarEnd whose phone shows the party it is connected to, as
// the network updates it during the call (a connected line update).
type Display interface {
	FarEnd
	// Shows is what the phone shows now, name and number.
	Shows() string
}

// AgentFirstHarness is a backend's side of the agent-first scenarios.
type AgentFirstHarness struct {
	// Connector is the backend.
	Connector ivr.Connector
	// Agent returns an agent whose phone answers (Answers) or rings
	// until the call is withdrawn (NoAnswer), and that phone.
	Agent func(t *testing.T, far Far) (ivr.Agent, FarEnd)
	// Citizen returns a trunk whose far end behaves as far (Answers,
	// Busy, NoAnswer) for the next call to number, and that far end; the
	// trunk's caller id is the hotline's number.
	Citizen func(t *testing.T, number string, far Far) (ivr.TrunkRoute, FarEnd)
}

// countingDialer counts the calls placed to numbers.
type countingDialer struct {
	ivr.Dialer
	numbers atomic.Int64
}

func (d *countingDialer) Dial(ctx context.Context, to ivr.Destination, opts ivr.DialOptions) (ivr.Call, error) {
	if to.Kind() == "number" {
		d.numbers.Add(1)
	}
	return d.Dialer.Dial(ctx, to, opts)
}

// connectResult is what Connect returned.
type connectResult struct {
	conv *ivr.Conversation
	err  error
}

// RunAgentFirst runs the agent-first scenarios: the agent's phone rings
// first, and the citizen is dialled through a trunk once the agent
// answered, then the two are bridged.
func RunAgentFirst(t *testing.T, h AgentFirstHarness) {
	start := func(t *testing.T, agent ivr.Agent, route ivr.TrunkRoute, number string, citizenRing time.Duration) (*countingDialer, <-chan connectResult) {
		d := &countingDialer{Dialer: h.Connector}
		af := &ivr.AgentFirst{Dialer: d, Bridger: h.Connector, AgentRing: 2 * time.Second, CitizenRing: citizenRing}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		t.Cleanup(cancel)
		res := make(chan connectResult, 1)
		go func() {
			conv, err := af.Connect(ctx, agent, ivr.Number{Number: number, Trunk: route})
			res <- connectResult{conv, err}
		}()
		t.Cleanup(func() {
			// Whatever the test did, nothing is left up.
			select {
			case r := <-res:
				if r.conv != nil {
					_ = r.conv.Hangup(context.Background())
				}
			default:
			}
		})
		return d, res
	}
	connected := func(t *testing.T, res <-chan connectResult) *ivr.Conversation {
		t.Helper()
		r := recvResult(t, res)
		if r.err != nil {
			t.Fatalf("Connect: %v", r.err)
		}
		return r.conv
	}
	for _, first := range []ivr.BridgeEnd{ivr.CallerHungUp, ivr.AgentHungUp} {
		t.Run("both answer, the "+string(first)+" hangs up", func(t *testing.T) {
			t.Parallel()
			number := NewCallerID()
			agent, phone := h.Agent(t, Answers)
			route, citizen := h.Citizen(t, number, Answers)
			_, res := start(t, agent, route, number, 5*time.Second)
			phone.Rung(t)
			if got := citizen.Rung(t); got != route.CallerID {
				t.Errorf("the citizen's phone shows %q, want the trunk's caller id %q", got, route.CallerID)
			}
			var shown string
			if d, ok := citizen.(Display); ok {
				shown = d.Shows()
			}
			conv := connected(t, res)
			select {
			case <-conv.Done():
				end, err := conv.End()
				t.Fatalf("the conversation ended at once: %s, %v", end, err)
			default:
			}
			if a, ok := phone.(Talker); ok {
				if c, ok := citizen.(Talker); ok {
					a.Hears(t, citizen)
					c.Hears(t, phone)
				}
			}
			if d, ok := citizen.(Display); ok {
				// The agent's identity never reaches the citizen.
				if got := d.Shows(); got != shown {
					t.Errorf("once bridged, the citizen's phone shows %q, not %q as it rang", got, shown)
				}
			}
			if first == ivr.CallerHungUp {
				citizen.HangUp(t)
				phone.Ended(t)
			} else {
				phone.HangUp(t)
				citizen.Ended(t)
			}
			awaitClosed(t, conv.Done(), "the conversation's end")
			if end, err := conv.End(); end != first || err != nil {
				t.Errorf("End: %q, %v; want %q", end, err, first)
			}
			for _, leg := range []ivr.Call{conv.Agent, conv.Citizen} {
				awaitClosed(t, leg.Done(), "the end of the leg "+leg.ID())
			}
		})
	}
	t.Run("hotline hangs up", func(t *testing.T) {
		t.Parallel()
		number := NewCallerID()
		agent, phone := h.Agent(t, Answers)
		route, citizen := h.Citizen(t, number, Answers)
		_, res := start(t, agent, route, number, 5*time.Second)
		phone.Rung(t)
		citizen.Rung(t)
		conv := connected(t, res)
		if err := conv.Hangup(context.Background()); err != nil {
			t.Fatal(err)
		}
		phone.Ended(t)
		citizen.Ended(t)
		if end, err := conv.End(); end != "" || !errors.Is(err, ivr.ErrHangup) {
			t.Errorf("End: %q, %v; want ErrHangup", end, err)
		}
	})
	t.Run("the agent does not answer", func(t *testing.T) {
		t.Parallel()
		agent, phone := h.Agent(t, NoAnswer)
		d, res := start(t, agent, ivr.TrunkRoute{Name: "never-used"}, NewCallerID(), 5*time.Second)
		phone.Rung(t)
		r := recvResult(t, res)
		var ce *ivr.ConnectError
		if !errors.As(r.err, &ce) || ce.Leg != ivr.AgentLeg || !errors.Is(r.err, ivr.ErrRangOut) {
			t.Fatalf("Connect: %v; want no answer on the agent's leg", r.err)
		}
		if n := d.numbers.Load(); n != 0 {
			t.Errorf("the citizen was dialled %d times", n)
		}
		phone.Ended(t)
	})
	t.Run("the citizen is busy", func(t *testing.T) {
		t.Parallel()
		number := NewCallerID()
		agent, phone := h.Agent(t, Answers)
		route, citizen := h.Citizen(t, number, Busy)
		_, res := start(t, agent, route, number, 5*time.Second)
		phone.Rung(t)
		citizen.Rung(t)
		r := recvResult(t, res)
		var ce *ivr.ConnectError
		if !errors.As(r.err, &ce) || ce.Leg != ivr.CitizenLeg || !errors.Is(r.err, ivr.ErrBusy) {
			t.Fatalf("Connect: %v; want busy on the citizen's leg", r.err)
		}
		phone.Ended(t)
	})
	t.Run("the agent hangs up while the citizen rings", func(t *testing.T) {
		t.Parallel()
		number := NewCallerID()
		agent, phone := h.Agent(t, Answers)
		route, citizen := h.Citizen(t, number, NoAnswer)
		_, res := start(t, agent, route, number, 2*waitLong)
		phone.Rung(t)
		citizen.Rung(t)
		phone.HangUp(t)
		r := recvResult(t, res)
		var ce *ivr.ConnectError
		if !errors.As(r.err, &ce) || ce.Leg != ivr.AgentLeg || !errors.Is(r.err, ivr.ErrAgentLeft) {
			t.Fatalf("Connect: %v; want the agent gone", r.err)
		}
		citizen.Ended(t)
	})
}

// waitLong bounds every wait of the agent-first scenarios.
const waitLong = 20 * time.Second

func recvResult(t *testing.T, res <-chan connectResult) connectResult {
	t.Helper()
	select {
	case r := <-res:
		return r
	case <-time.After(waitLong):
		t.Fatal("Connect did not return")
		return connectResult{}
	}
}

func awaitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitLong):
		t.Fatalf("no %s", what)
	}
}
