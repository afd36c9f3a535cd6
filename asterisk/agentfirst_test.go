package asterisk_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotline12345/hotline/asterisk/aritest"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/ivr/ivrtest"
)

// partyEnd is a far end of the double as the agent-first scenarios see
// it: the party of the next call that reaches its endpoint.
type partyEnd struct {
	far  ivrtest.Far
	rung chan *aritest.Party
	p    *aritest.Party
}

var (
	_ ivrtest.Talker  = (*partyEnd)(nil)
	_ ivrtest.Display = (*partyEnd)(nil)
)

func newPartyEnd(far ivrtest.Far) *partyEnd {
	return &partyEnd{far: far, rung: make(chan *aritest.Party, 4)}
}

func (e *partyEnd) Rung(t *testing.T) string {
	t.Helper()
	select {
	case e.p = <-e.rung:
	case <-time.After(20 * time.Second):
		t.Fatal("no call reached the endpoint")
	}
	_, number := e.p.Shows()
	return number
}

func (e *partyEnd) HangUp(*testing.T) { e.p.Hangup() }

// Ended waits until Asterisk hung up the far end's answered call (a
// BYE), or withdrew the one that rang (a CANCEL: the channel goes with no
// hang-up note).
func (e *partyEnd) Ended(t *testing.T) {
	t.Helper()
	if e.far == ivrtest.Answers {
		awaitNote(t, e.p, aritest.NoteHungUp)
		return
	}
	select {
	case <-e.p.Done():
	case <-time.After(20 * time.Second):
		t.Fatalf("the call to %s was not withdrawn", e.p.ID())
	}
}

// Hears waits until the far end is bridged with other's channel: the
// double carries no audio.
func (e *partyEnd) Hears(t *testing.T, other ivrtest.FarEnd) {
	t.Helper()
	want := other.(*partyEnd).p.ID()
	for {
		n := awaitNote(t, e.p, aritest.NoteBridged)
		if slices.Contains(n.With, want) {
			return
		}
	}
}

func (e *partyEnd) Shows() string {
	name, number := e.p.Shows()
	return fmt.Sprintf("%q <%s>", name, number)
}

// TestAgentFirstConformance runs the agent-first scenarios on the ARI
// backend and the double: the agent's phone is a PJSIP endpoint of its
// own, the citizen's is reached through a trunk's endpoint, and the agent's
// endpoint has a caller id of its own, as asterisk-conf's agents have,
// which the citizen must never see.
func TestAgentFirstConformance(t *testing.T) {
	t.Parallel()
	srv := newDouble(t)
	b := runBackend(t, srv, func(context.Context, ivr.Call) {})
	// Once every scenario has run, no channel or bridge is left.
	t.Cleanup(func() { noLeftovers(t, srv) })
	var n atomic.Int64
	phone := func(far ivrtest.Far, e *partyEnd) aritest.Phone {
		ph := aritest.Phone{AnswerAfter: 50 * time.Millisecond, Rung: e.rung}
		switch far {
		case ivrtest.Busy:
			ph.Busy = true
		case ivrtest.NoAnswer:
			ph.NoAnswer = true
		}
		return ph
	}
	ivrtest.RunAgentFirst(t, ivrtest.AgentFirstHarness{
		Connector: b,
		Agent: func(_ *testing.T, far ivrtest.Far) (ivr.Agent, ivrtest.FarEnd) {
			user := fmt.Sprint(5000 + n.Add(1))
			e := newPartyEnd(far)
			ph := phone(far, e)
			ph.CallerID = fmt.Sprintf(`"Agent %s" <%s>`, user, user)
			srv.SetEndpoint("PJSIP/"+user, ph)
			return ivr.Agent{AgentID: "a" + user, SIPUser: user}, e
		},
		Citizen: func(_ *testing.T, _ string, far ivrtest.Far) (ivr.TrunkRoute, ivrtest.FarEnd) {
			endpoint := fmt.Sprintf("carrier-%d", n.Add(1))
			e := newPartyEnd(far)
			srv.SetEndpoint("PJSIP/"+endpoint, phone(far, e))
			return ivr.TrunkRoute{Name: endpoint, Endpoint: endpoint, CallerID: "12345"}, e
		},
	})
}
