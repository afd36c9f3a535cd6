package agentua_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/caller"
	"github.com/hotline12345/hotline/calllog"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/evaluation"
	"github.com/hotline12345/hotline/internal/agentua"
	"github.com/hotline12345/hotline/internal/hotlinetest"
	"github.com/hotline12345/hotline/logging"
	"github.com/hotline12345/hotline/prompts"
)

// waitFor bounds every wait of these tests; a call through intake to an
// agent and its rating takes about 20 s.
const waitFor = 90 * time.Second

var allCategories = []string{"emergency", "livelihood", "general", "complex"}

// hotlineWith starts hotline with one provisioned agent per id, whose
// phone registers as "user-<id>" with "password-<id>".
func hotlineWith(t *testing.T, ids ...string) *hotlinetest.Hotline {
	t.Helper()
	return hotlinetest.Start(t, func(c *config.Config) {
		for _, id := range ids {
			c.Agents = append(c.Agents, config.Agent{ID: id, SIPUser: "user-" + id, Password: "password-" + id, Categories: allCategories})
		}
		c.ACD.WrapUp = 0
	})
}

func phonesOf(ids ...string) []agentua.Agent {
	var out []agentua.Agent
	for _, id := range ids {
		out = append(out, agentua.Agent{User: "user-" + id, Password: "password-" + id})
	}
	return out
}

func testLogger(t *testing.T) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
}

// startFleet starts phones against h and stops them when the test ends.
func startFleet(t *testing.T, h *hotlinetest.Hotline, opts agentua.Options) *agentua.Fleet {
	t.Helper()
	opts.Registrar = h.SIP
	opts.Logger = testLogger(t)
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	f, err := agentua.Start(ctx, opts)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		if err := f.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return f
}

// eventually polls cond every 20 ms until it holds or waitFor passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(waitFor)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("%s: not within %s", what, waitFor)
		}
	}
}

func agentIs(t *testing.T, h *hotlinetest.Hotline, id string, want acd.State) {
	t.Helper()
	store := acd.NewStore(h.Client, acd.StoreOptions{})
	eventually(t, fmt.Sprintf("agent %s %s", id, want), func() bool {
		a, err := store.Agent(t.Context(), id)
		return err == nil && a.State == want
	})
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitFor):
		t.Fatalf("%s: not within %s", what, waitFor)
		panic("unreachable")
	}
}

// A citizen's call goes through intake to one of the in-process phones,
// which rings, answers, talks for the talk time and hangs up; the caller
// hears the rating question and presses 1: one praise is recorded, and
// the phone's account of the conversation matches hotline's.
func TestAgentTalksHangsUpAndTheCallerRates(t *testing.T) {
	t.Parallel()
	h := hotlineWith(t, "a1", "a2")
	ended := make(chan agentua.Conversation, 4)
	const talk = time.Second
	f := startFleet(t, h, agentua.Options{
		Agents: phonesOf("a1", "a2"), TalkTime: talk, RingTime: 200 * time.Millisecond,
		OnConversation: func(c agentua.Conversation) { ended <- c },
	})
	agentIs(t, h, "a1", acd.Available)
	agentIs(t, h, "a2", acd.Available)

	const who = "13800000101"
	done := h.Call(t.Context(), t, who, caller.Script{
		{On: prompts.Greeting, BargeIn: true, Press: "3"},
		{On: prompts.ConsentMenu, BargeIn: true, Press: "2"},
		{On: prompts.Rating, Press: "1"},
	})
	conv := recv(t, ended, "the conversation")
	if conv.Citizen != who || conv.EndedBy != agentua.AgentSide || conv.Err != nil {
		t.Fatalf("conversation %+v, want the agent hanging up on %s", conv, who)
	}
	if conv.HungUp.Sub(conv.Confirmed) < talk || conv.Answered.Sub(conv.Offered) < 200*time.Millisecond {
		t.Errorf("rang %s, talked %s: want the ring and talk times", conv.Answered.Sub(conv.Offered), conv.HungUp.Sub(conv.Confirmed))
	}
	// 20 ms frames both ways: the phone's and the citizen's, bridged.
	if conv.RTPSent < 25 || conv.RTPReceived < 25 {
		t.Errorf("RTP sent %d, received %d in a %s conversation", conv.RTPSent, conv.RTPReceived, talk)
	}
	<-done

	rec := h.Records.Final(t, who)
	agentID := map[string]string{"user-a1": "a1", "user-a2": "a2"}[conv.Agent]
	if rec.EndCause != calllog.FlowFinished || rec.AgentID != agentID || rec.Rating != string(evaluation.Praise) {
		t.Fatalf("record: cause %s (%s) agent %q rating %q; the phone was %s", rec.EndCause, rec.EndDetail, rec.AgentID, rec.Rating, conv.Agent)
	}
	if rec.SIPCallID == conv.SIPCallID {
		t.Errorf("the agent's leg has the citizen's Call-ID %s", conv.SIPCallID)
	}
	if st := f.Stats(); st.Offers != 1 || st.Answered != 1 || st.Busy != 0 || st.Refused != 0 {
		t.Errorf("stats %+v, want one offer answered", st)
	}

	// Stopping unregisters the phones: nobody is left to take a call.
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	if err := f.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	agentIs(t, h, "a1", acd.Offline)
	agentIs(t, h, "a2", acd.Offline)
}

// A caller who hangs up during the conversation ends it from hotline's
// side: the phone records no hang-up of its own, and nobody is asked for
// a rating.
func TestCallerHangsUpFirst(t *testing.T) {
	t.Parallel()
	h := hotlineWith(t, "a3")
	ended := make(chan agentua.Conversation, 1)
	f := startFleet(t, h, agentua.Options{
		Agents:         phonesOf("a3"),
		OnConversation: func(c agentua.Conversation) { ended <- c },
	})
	agentIs(t, h, "a3", acd.Available)

	const who = "13800000102"
	ctx, hangup := context.WithCancel(t.Context())
	defer hangup()
	done := h.Call(ctx, t, who, caller.Script{
		{On: prompts.Greeting, BargeIn: true, Press: "1"},
		{On: prompts.ConsentMenu, BargeIn: true, Press: "2"},
	})
	eventually(t, "the phone answering", func() bool { return f.Talking() == 1 })
	agentIs(t, h, "a3", acd.Talking)
	hangup()
	conv := recv(t, ended, "the conversation")
	<-done
	if conv.EndedBy != agentua.HotlineSide || !conv.HungUp.IsZero() || conv.Err != nil || conv.Citizen != who {
		t.Fatalf("conversation %+v, want hotline ending %s's call", conv, who)
	}
	rec := h.Records.Final(t, who)
	if rec.EndCause != calllog.CallerHangup || rec.AgentID != "a3" || rec.Rating != "" {
		t.Fatalf("record: cause %s agent %q rating %q", rec.EndCause, rec.AgentID, rec.Rating)
	}
	if f.Talking() != 0 {
		t.Errorf("%d calls still up", f.Talking())
	}
}

// A phone with the wrong password is refused (403 after the digest
// challenge), and Start says which agent.
func TestWrongPasswordIsRefused(t *testing.T) {
	t.Parallel()
	h := hotlineWith(t, "a4")
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	f, err := agentua.Start(ctx, agentua.Options{
		Registrar: h.SIP, Agents: []agentua.Agent{{User: "user-a4", Password: "not-the-password"}}, Logger: testLogger(t),
	})
	if err == nil {
		_ = f.Stop(ctx)
		t.Fatal("registered with the wrong password")
	}
	var re *agentua.RegisterError
	if !errors.Is(err, agentua.ErrRefused) || !errors.As(err, &re) || re.User != "user-a4" || re.Status != sip.StatusForbidden {
		t.Fatalf("error %v (%+v), want a 403 refusal for user-a4", err, re)
	}
}

// Offers a phone cannot take are refused with the status that says why:
// an unknown user 404, no PCMU 488, a phone on a call 486 (RFC 3261
// §21.4); the call in progress is not disturbed.
func TestOffersThePhonesCannotTake(t *testing.T) {
	t.Parallel()
	h := hotlineWith(t, "a5")
	ended := make(chan agentua.Conversation, 1)
	f := startFleet(t, h, agentua.Options{
		Agents:         phonesOf("a5"),
		OnConversation: func(c agentua.Conversation) { ended <- c },
	})
	uac := newUAC(t)
	phone := func(user string) sip.Uri {
		return sip.Uri{Scheme: "sip", User: user, Host: f.SIPAddr().Addr().String(), Port: int(f.SIPAddr().Port())}
	}
	pcmu := offerSDP("0 101", "a=rtpmap:0 PCMU/8000", "a=rtpmap:101 telephone-event/8000")

	for _, tc := range []struct {
		name, user string
		body       []byte
		want       int
	}{
		{"unknown user", "nobody", pcmu, sip.StatusNotFound},
		{"A-law only", "user-a5", offerSDP("8", "a=rtpmap:8 PCMA/8000"), sip.StatusNotAcceptableHere},
	} {
		if got := uac.refusal(t, phone(tc.user), tc.body); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}

	first := uac.answered(t, phone("user-a5"), pcmu)
	if got := uac.refusal(t, phone("user-a5"), pcmu); got != sip.StatusBusyHere {
		t.Errorf("second offer while talking: %d, want 486", got)
	}
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	if err := first.Bye(ctx); err != nil {
		t.Fatalf("bye: %v", err)
	}
	conv := recv(t, ended, "the conversation")
	if conv.EndedBy != agentua.HotlineSide || conv.Err != nil || conv.Agent != "user-a5" {
		t.Errorf("conversation %+v", conv)
	}
	if st := f.Stats(); st.Offers != 4 || st.Answered != 1 || st.Busy != 1 || st.Refused != 2 {
		t.Errorf("stats %+v, want 4 offers: 1 answered, 1 busy, 2 refused", st)
	}
}

// A phone is free for the next offer as soon as it hangs up: hotline,
// with no wrap-up, offers the next call when the BYE arrives, before the
// phone has its 200. The next call may even come from the RTP port the
// last one used, which hotline frees and hands out again at once.
func TestPhoneIsFreeOnceItHangsUp(t *testing.T) {
	t.Parallel()
	h := hotlineWith(t, "a6")
	ended := make(chan agentua.Conversation, 2)
	f := startFleet(t, h, agentua.Options{
		Agents: phonesOf("a6"), TalkTime: 300 * time.Millisecond,
		OnConversation: func(c agentua.Conversation) { ended <- c },
	})
	uac := newUAC(t)
	phone := sip.Uri{Scheme: "sip", User: "user-a6", Host: f.SIPAddr().Addr().String(), Port: int(f.SIPAddr().Port())}
	pcmu := offerSDP("0 101", "a=rtpmap:0 PCMU/8000", "a=rtpmap:101 telephone-event/8000")

	uac.answered(t, phone, pcmu)
	first := recv(t, uac.byes, "the phone's BYE")
	uac.answered(t, phone, pcmu) // not 486 Busy Here
	first.answer(t)
	if c := recv(t, ended, "the first conversation"); c.EndedBy != agentua.AgentSide || c.Err != nil {
		t.Errorf("first conversation %+v", c)
	}
	recv(t, uac.byes, "the second BYE").answer(t)
	if c := recv(t, ended, "the second conversation"); c.EndedBy != agentua.AgentSide || c.Err != nil || c.RTPSent == 0 {
		t.Errorf("second conversation %+v", c)
	}
	if st := f.Stats(); st.Answered != 2 || st.Busy != 0 {
		t.Errorf("stats %+v, want both offers answered", st)
	}
}

// uac places calls at the phones directly, as hotline would, and takes
// their BYEs, which the test answers.
type uac struct {
	dialogs *sipgo.DialogUA
	byes    chan *byeAtUAC
}

// byeAtUAC is a phone's BYE waiting for the test's answer.
type byeAtUAC struct {
	req      *sip.Request
	tx       sip.ServerTransaction
	answered chan struct{}
}

func (b *byeAtUAC) answer(t *testing.T) {
	t.Helper()
	if err := b.tx.Respond(sip.NewResponseFromRequest(b.req, sip.StatusOK, "OK", nil)); err != nil {
		t.Fatalf("200 to the BYE: %v", err)
	}
	close(b.answered)
}

type readyConn struct {
	net.PacketConn
	once  sync.Once
	ready chan struct{}
}

func (c *readyConn) ReadFrom(b []byte) (int, net.Addr, error) {
	c.once.Do(func() { close(c.ready) })
	return c.PacketConn.ReadFrom(b)
}

func newUAC(t *testing.T) *uac {
	t.Helper()
	slog := logging.Slog(testLogger(t))
	ua, err := sipgo.NewUA(sipgo.WithUserAgentHostname("127.0.0.1"),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(slog)),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(slog)))
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	client, err := sipgo.NewClient(ua, sipgo.WithClientLogger(slog), sipgo.WithClientHostname("127.0.0.1"),
		sipgo.WithClientConnectionAddr(addr.String()))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(slog))
	if err != nil {
		t.Fatal(err)
	}
	u := &uac{
		dialogs: &sipgo.DialogUA{Client: client, ContactHDR: sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "hotline", Host: "127.0.0.1", Port: int(addr.Port())}}},
		byes:    make(chan *byeAtUAC, 4),
	}
	closing := make(chan struct{})
	srv.OnAck(func(*sip.Request, sip.ServerTransaction) {})
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		b := &byeAtUAC{req: req, tx: tx, answered: make(chan struct{})}
		u.byes <- b
		// Returning ends the transaction: wait for the test's answer.
		select {
		case <-b.answered:
		case <-closing:
		}
	})
	served := make(chan struct{})
	rc := &readyConn{PacketConn: pc, ready: make(chan struct{})}
	go func() {
		defer close(served)
		_ = srv.ServeUDP(rc)
	}()
	// Requests leave from the socket once sipgo has it in its pool, which
	// it does before its first read.
	recv(t, rc.ready, "the UAC listening")
	t.Cleanup(func() {
		close(closing)
		ua.Close()
		pc.Close()
		<-served
	})
	return u
}

// refusal offers body to target and returns the final status, which must
// not be a 2xx.
func (u *uac) refusal(t *testing.T, target sip.Uri, body []byte) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	s, err := u.dialogs.Invite(ctx, target, body, sip.NewHeader("Content-Type", "application/sdp"))
	if err != nil {
		t.Fatalf("invite: %v", err)
	}
	defer s.Close()
	err = s.WaitAnswer(ctx, sipgo.AnswerOptions{})
	var res *sipgo.ErrDialogResponse
	if !errors.As(err, &res) {
		t.Fatalf("offer to %s: %v, want a refusal", target.User, err)
	}
	return res.Res.StatusCode
}

// answered offers body to target and acknowledges the 200.
func (u *uac) answered(t *testing.T, target sip.Uri, body []byte) *sipgo.DialogClientSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	s, err := u.dialogs.Invite(ctx, target, body, sip.NewHeader("Content-Type", "application/sdp"))
	if err != nil {
		t.Fatalf("invite: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		t.Fatalf("offer to %s: %v", target.User, err)
	}
	if err := s.Ack(ctx); err != nil {
		t.Fatalf("ack: %v", err)
	}
	return s
}

// offerSDP is an audio offer of formats with its attribute lines, its RTP
// port one nobody listens on (the phones send there and nothing answers).
func offerSDP(formats string, attrs ...string) []byte {
	s := "v=0\r\no=hotline 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP " + formats + "\r\n"
	for _, a := range attrs {
		s += a + "\r\n"
	}
	return []byte(s + "a=sendrecv\r\n")
}
