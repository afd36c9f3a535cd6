package sip

import (
	"context"
	"testing"

	"github.com/emiago/sipgo"

	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/ivr/ivrtest"
	"github.com/hotline12345/hotline/media"
)

// deskFarEnd is a desk phone as a far end of the agent-first scenarios:
// an agent's phone, or a citizen's behind a carrier (the trunk's address
// is the phone's). Answered, it sends a tone of hz.
type deskFarEnd struct {
	p   *deskPhone
	far ivrtest.Far
	hz  float64

	r     *ringing
	dlg   *sipgo.DialogServerSession
	media *phoneMedia
}

var _ ivrtest.Talker = (*deskFarEnd)(nil)

func (f *deskFarEnd) Rung(t *testing.T) string {
	t.Helper()
	f.r = f.p.ring(t)
	switch f.far {
	case ivrtest.Answers:
		peer := newRTPPeer(t)
		offer := parseSDP(t, f.r.req.Body())
		f.dlg = f.p.answer(t, f.r, "PCMU", 0, peer.port())
		f.media = startMedia(t, peer.conn, mediaAddr(t, offer), media.PCMU, f.hz)
	case ivrtest.Busy:
		f.r.respond(t, 486, "Busy Here")
	case ivrtest.NoAnswer:
		f.r.respond(t, 180, "Ringing")
	default:
		t.Fatalf("a desk phone does not behave as %q", f.far)
	}
	return f.r.req.From().Address.User
}

func (f *deskFarEnd) HangUp(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := f.dlg.Bye(ctx); err != nil {
		t.Fatalf("BYE from the phone: %v", err)
	}
}

func (f *deskFarEnd) Ended(t *testing.T) {
	t.Helper()
	if f.dlg != nil {
		recv(t, f.p.byes, "BYE at the phone")
		return
	}
	isClosed(t, f.r.cancelled, "CANCEL at the phone")
}

func (f *deskFarEnd) Hears(t *testing.T, other ivrtest.FarEnd) {
	t.Helper()
	f.media.hears(other.(*deskFarEnd).hz)
}

// TestAgentFirstConformance runs the agent-first scenarios on the
// embedded backend: the agent's phone and the citizen's (behind the
// carrier's trunk) are desk phones that answer with a tone of their own.
func TestAgentFirstConformance(t *testing.T) {
	var n int
	loc := staticLocator{}
	phones := map[string]*deskPhone{}
	for range 8 {
		n++
		user := "agentfirst" + string(rune('0'+n))
		p := newDeskPhone(t, user)
		loc[user] = []Binding{p.binding()}
		phones[user] = p
	}
	ts := startServer(t, func(o *Options, _ *callee) { o.Locator = loc })
	// Once every scenario has run (they run in parallel, after this
	// function returns), no leg is left.
	t.Cleanup(func() { waitAgentLegs(t, ts, 0) })
	free := make(chan string, len(phones))
	for user := range phones {
		free <- user
	}
	take := func(t *testing.T) (string, *deskPhone) {
		user := <-free
		t.Cleanup(func() { free <- user })
		return user, phones[user]
	}
	ivrtest.RunAgentFirst(t, ivrtest.AgentFirstHarness{
		Connector: ts.Server,
		Agent: func(t *testing.T, far ivrtest.Far) (ivr.Agent, ivrtest.FarEnd) {
			user, p := take(t)
			return ivr.Agent{AgentID: user, SIPUser: user}, &deskFarEnd{p: p, far: far, hz: 600}
		},
		Citizen: func(t *testing.T, _ string, far ivrtest.Far) (ivr.TrunkRoute, ivrtest.FarEnd) {
			_, p := take(t)
			route := ivr.TrunkRoute{Name: "carrier-a", Address: p.addr.String(), Transport: "udp", CallerID: "12345"}
			return route, &deskFarEnd{p: p, far: far, hz: 1000}
		},
	})
}
