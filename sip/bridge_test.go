package sip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"
	"go.uber.org/goleak"

	"github.com/hotline12345/hotline/internal/baresiptest"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/media"
	"github.com/hotline12345/hotline/media/dtmf"
	"github.com/hotline12345/hotline/prompts"
)

// connectFlow is the Handler of the agent tests, the shape of the real
// flow: answer, offer the call to the agent, bridge, and once the agent
// hung up play the rating prompt and stay until the citizen hangs up.
type connectFlow struct {
	target ivr.Agent
	ring   time.Duration
	calls  chan *connected
	// greet plays the greeting before the offer, for the bridge to cut.
	greet bool
}

// connected is one call as the flow saw it.
type connected struct {
	call     *call
	greeting ivr.Playback
	dialled  chan dialResult   // Dial's result
	bridged  chan bridgeResult // Bridge's result
	rating   chan error        // Play's result for the rating prompt
	returned chan struct{}
}

type dialResult struct {
	leg ivr.Call
	err error
}

type bridgeResult struct {
	end    ivr.BridgeEnd
	err    error
	legErr error // the agent's leg's Err once Bridge returned
}

func newConnectFlow(user string, ring time.Duration) *connectFlow {
	return &connectFlow{target: ivr.Agent{AgentID: "a-" + user, SIPUser: user}, ring: ring, calls: make(chan *connected, 8)}
}

func (f *connectFlow) serve(ctx context.Context, c ivr.Call) {
	fc := &connected{
		call:     c.(*call),
		dialled:  make(chan dialResult, 1),
		bridged:  make(chan bridgeResult, 1),
		rating:   make(chan error, 1),
		returned: make(chan struct{}),
	}
	defer close(fc.returned)
	srv := fc.call.srv
	if err := c.Answer(ctx); err != nil {
		fc.dialled <- dialResult{err: err}
		f.calls <- fc
		return
	}
	if f.greet {
		fc.greeting, _ = c.Play(ctx, prompts.Mandarin, prompts.Greeting)
		// Offer the call once the greeting plays, for the bridge to cut.
		tick := time.NewTicker(media.FrameDuration)
		for len(fc.greeting.Played()) == 0 && ctx.Err() == nil {
			<-tick.C
		}
		tick.Stop()
	}
	f.calls <- fc
	leg, err := srv.Dial(ctx, f.target, ivr.DialOptions{Parent: c, RingTimeout: f.ring})
	fc.dialled <- dialResult{leg, err}
	if err != nil {
		// A real flow offers the call to the next agent; this one stays
		// on the line until the citizen hangs up.
		<-ctx.Done()
		return
	}
	end, err := srv.Bridge(ctx, c, leg)
	fc.bridged <- bridgeResult{end, err, leg.Err()}
	if err != nil || end != ivr.AgentHungUp {
		return
	}
	_, err = c.Play(ctx, prompts.Mandarin, prompts.Rating)
	fc.rating <- err
	<-ctx.Done()
}

// startConnectServer runs a server whose flow is f and whose Locator is loc.
func startConnectServer(t *testing.T, loc Locator, f *connectFlow) *testServer {
	t.Helper()
	return startServer(t, func(o *Options, _ *callee) {
		o.Handler = f.serve
		o.Locator = loc
	})
}

// agentLegCount counts the legs to agents' phones still in progress.
func (ts *testServer) agentLegCount() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.agents.all)
}

// waitUntil waits, bounded, until ok holds.
func waitUntil(t testing.TB, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, waitFor)
		}
		<-tick.C
	}
}

// phoneMedia is a phone's RTP in the agent tests: it sends every 20 ms in
// real time (a tone, or a key as RFC 4733 events in its place) and keeps
// every packet it receives.
type phoneMedia struct {
	t     testing.TB
	codec media.Codec
	keys  chan rune
	stop  chan struct{}
	wg    sync.WaitGroup

	mu  sync.Mutex
	got []rtp.Packet
}

// startMedia sends a tone of hz in codec from conn to to, and keeps what
// conn receives, until the test ends.
func startMedia(t testing.TB, conn *net.UDPConn, to netip.AddrPort, codec media.Codec, hz float64) *phoneMedia {
	m := &phoneMedia{t: t, codec: codec, keys: make(chan rune, 8), stop: make(chan struct{})}
	m.wg.Add(2)
	go m.send(conn, to, hz)
	go m.receive(conn)
	t.Cleanup(m.close)
	return m
}

// close stops the media goroutines.
func (m *phoneMedia) close() {
	select {
	case <-m.stop:
	default:
		close(m.stop)
	}
	m.wg.Wait()
}

func (m *phoneMedia) send(conn *net.UDPConn, to netip.AddrPort, hz float64) {
	defer m.wg.Done()
	tick := time.NewTicker(media.FrameDuration)
	defer tick.Stop()
	hdr := rtp.Header{Version: 2, SequenceNumber: 1, Timestamp: 1000, SSRC: 0xc171}
	var (
		phase   float64
		key     rune
		sent    int
		evStart uint32
	)
	pcm := make([]int16, media.FrameSamples)
	for {
		select {
		case <-m.stop:
			return
		case <-tick.C:
		}
		if key == 0 {
			select {
			case key = <-m.keys:
				sent, evStart = 0, hdr.Timestamp
			default:
			}
		}
		if key != 0 {
			// As a phone does: 100 ms of updates, then the end three
			// times (RFC 4733 §2.5.1.4), in place of the audio.
			ev := dtmf.Event{Key: key, Volume: 10, Duration: uint16(min(sent+1, 5) * media.FrameSamples), End: sent >= 5}
			h := hdr
			h.PayloadType, h.Marker, h.Timestamp = 101, sent == 0, evStart
			m.write(conn, to, h, ev.Marshal())
			if sent++; sent == 8 {
				key = 0
			}
		} else {
			for i := range pcm {
				pcm[i] = int16(8000 * math.Sin(phase))
				phase += 2 * math.Pi * hz / media.SampleRate
			}
			hdr.PayloadType = m.codec.PayloadType
			m.write(conn, to, hdr, m.codec.Encode(nil, pcm))
		}
		hdr.SequenceNumber++
		hdr.Timestamp += media.FrameSamples
	}
}

func (m *phoneMedia) write(conn *net.UDPConn, to netip.AddrPort, hdr rtp.Header, payload []byte) {
	b, err := (&rtp.Packet{Header: hdr, Payload: payload}).Marshal()
	if err == nil {
		_, _ = conn.WriteToUDPAddrPort(b, to)
	}
}

func (m *phoneMedia) receive(conn *net.UDPConn) {
	defer m.wg.Done()
	buf := make([]byte, 1500)
	for {
		select {
		case <-m.stop:
			return
		default:
		}
		if err := conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
			return
		}
		n, err := conn.Read(buf)
		if err != nil {
			continue
		}
		var p rtp.Packet
		if p.Unmarshal(bytes.Clone(buf[:n])) != nil {
			continue
		}
		m.mu.Lock()
		m.got = append(m.got, p)
		m.mu.Unlock()
	}
}

// press sends a key as RFC 4733 events.
func (m *phoneMedia) press(key rune) { m.keys <- key }

// packets is what the phone received so far.
func (m *phoneMedia) packets() []rtp.Packet {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]rtp.Packet(nil), m.got...)
}

// audio is the last d of the received audio, decoded.
func (m *phoneMedia) audio(d time.Duration) []int16 {
	var all []int16
	for _, p := range m.packets() {
		if p.PayloadType == m.codec.PayloadType {
			all = append(all, m.codec.Decode(make([]int16, len(p.Payload)), p.Payload)...)
		}
	}
	n := int(d.Seconds() * media.SampleRate)
	return all[max(len(all)-n, 0):]
}

// hears waits until the last 400 ms received are mostly a tone of hz.
func (m *phoneMedia) hears(hz float64) {
	m.t.Helper()
	waitUntil(m.t, fmt.Sprintf("%v Hz heard", hz), func() bool {
		pcm := m.audio(400 * time.Millisecond)
		return len(pcm) == 3200 && toneLevel(pcm, hz) > 0.5
	})
}

// keysReceived are the keys received as RFC 4733 events, each press once.
func (m *phoneMedia) keysReceived() string {
	var tracker dtmf.EventTracker
	var keys []rune
	for _, p := range m.packets() {
		if p.PayloadType != 101 {
			continue
		}
		if ev, err := dtmf.DecodeEvent(p.Payload); err == nil {
			if k, ok := tracker.Observe(p.Timestamp, ev); ok {
				keys = append(keys, k)
			}
		}
	}
	return string(keys)
}

// heardPrompt counts the received frames that are frames of the prompt.
func (m *phoneMedia) heardPrompt(p *prompts.Prompt) int {
	frames := map[string]bool{}
	enc := m.codec.Encode(nil, p.PCM)
	silence := bytes.Repeat([]byte{m.codec.Silence()}, media.FrameSamples)
	for i := 0; i+media.FrameSamples <= len(enc); i += media.FrameSamples {
		if f := enc[i : i+media.FrameSamples]; !bytes.Equal(f, silence) {
			frames[string(f)] = true
		}
	}
	n := 0
	for _, pkt := range m.packets() {
		if pkt.PayloadType == m.codec.PayloadType && frames[string(pkt.Payload)] {
			n++
		}
	}
	return n
}

// citizen is the citizen's phone in the agent tests.
type citizen struct {
	*phoneMedia
	call *uacCall
}

// dialCitizen places the citizen's call from number in codec, offering
// telephone-event, and starts its media: a tone of hz.
func dialCitizen(t *testing.T, u *uac, number string, codec media.Codec, hz float64) *citizen {
	t.Helper()
	peer := newRTPPeer(t)
	pt := fmt.Sprint(codec.PayloadType)
	call := u.callWith(number, peer, offerFormats(peer.port(), pt+" 101",
		"a=rtpmap:"+pt+" "+codec.Name+"/8000", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15"))
	return &citizen{phoneMedia: startMedia(t, peer.conn, peer.to, codec, hz), call: call}
}

func rating(t *testing.T) *prompts.Prompt {
	t.Helper()
	p, err := defaultCatalog(t).Get(prompts.Rating, prompts.Mandarin)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The whole conversation with a real softphone as the agent: the phone
// rings and answers by itself, each side hears the other, keys pass both
// ways, and when the agent hangs up the citizen hears the rating prompt.
func TestAgentConversation(t *testing.T) {
	phone := baresiptest.Start(t, baresiptest.Options{User: "agent7", Tone: 440})
	flow := newConnectFlow("agent7", 5*time.Second)
	flow.greet = true
	ts := startConnectServer(t, staticLocator{"agent7": {phoneBinding(phone)}}, flow)
	u := ts.newUAC(t)
	cz := dialCitizen(t, u, "13912345678", media.PCMU, 1000)
	fc := recv(t, flow.calls, "call at the flow")

	dr := recv(t, fc.dialled, "Dial's return")
	if dr.err != nil {
		t.Fatalf("Dial: %v", dr.err)
	}
	if dr.leg.Caller() != "agent7" || dr.leg.ID() == "" || dr.leg.ID() == fc.call.ID() {
		t.Errorf("leg %q of %q, citizen's call %q", dr.leg.ID(), dr.leg.Caller(), fc.call.ID())
	}
	if ev := phone.Await("CALL_ESTABLISHED"); !strings.Contains(ev.Peer, "12345@") {
		t.Errorf("the phone shows the call from %q", ev.Peer)
	}

	// The greeting still playing when the bridge started was cut: the
	// citizen hears the agent long before it could have ended.
	cz.hears(440)
	select {
	case <-fc.greeting.Done():
	default:
		t.Errorf("the greeting still plays in the bridge")
	}
	greeting, err := defaultCatalog(t).Get(prompts.Greeting, prompts.Mandarin)
	if err != nil {
		t.Fatal(err)
	}
	if played := fc.greeting.Played(); len(played) != 1 || time.Since(played[0].At) > greeting.Duration() {
		t.Fatalf("the greeting (%s) was not playing when the bridge started: %+v", greeting.Duration(), played)
	}

	// Citizen to agent: an RFC 4733 key and a SIP INFO key; the flow's
	// digits get them too.
	cz.press('5')
	if ev := phone.Await("CALL_DTMF_START"); ev.Param != "5" {
		t.Errorf("the phone got key %q, want 5", ev.Param)
	}
	wantCitizenKey(t, fc.call, '5', ivr.DTMFRFC4733)
	if code := cz.call.info("application/dtmf-relay", "Signal=6\r\nDuration=160\r\n"); code != sip.StatusOK {
		t.Fatalf("INFO: %d", code)
	}
	if ev := phone.Await("CALL_DTMF_START"); ev.Param != "6" {
		t.Errorf("the phone got key %q, want 6", ev.Param)
	}
	wantCitizenKey(t, fc.call, '6', ivr.DTMFInfo)

	// Agent to citizen.
	phone.Command("sndcode", "8")
	waitUntil(t, "the citizen gets key 8", func() bool { return cz.keysReceived() == "8" })

	// The agent hangs up: the citizen stays and hears the rating prompt.
	phone.Command("hangup", "")
	br := recv(t, fc.bridged, "Bridge's return")
	if br.err != nil || br.end != ivr.AgentHungUp {
		t.Fatalf("Bridge: %q %v, want %q", br.end, br.err, ivr.AgentHungUp)
	}
	if !errors.Is(br.legErr, ivr.ErrCallerHangup) {
		t.Errorf("the leg ended with %v, want the agent's hangup", br.legErr)
	}
	phone.Await("CALL_CLOSED")
	if err := recv(t, fc.rating, "the rating prompt"); err != nil {
		t.Fatalf("Play rating: %v", err)
	}
	waitUntil(t, "the citizen hears the rating prompt", func() bool { return cz.heardPrompt(rating(t)) >= 10 })
	if fc.call.Err() != nil {
		t.Errorf("the citizen's call ended with the agent's: %v", fc.call.Err())
	}
	// The agent heard the citizen.
	if level := toneLevel(phone.HeardPCM(), 1000); level < 0.5 {
		t.Errorf("the agent's phone heard the citizen's tone at %.2f of its audio", level)
	}
	waitAgentLegs(t, ts, 0)

	cz.call.bye()
	isClosed(t, fc.returned, "the flow's return")
}

// wantCitizenKey checks the next key of the citizen's call: while bridged
// the flow reads none, and they wait for it in order.
func wantCitizenKey(t *testing.T, c *call, key rune, method ivr.DTMFMethod) {
	t.Helper()
	if d := recv(t, c.Digits(), "the citizen's key at the flow"); d.Key != key || d.Method != method {
		t.Errorf("the flow got %q by %s, want %q by %s", d.Key, d.Method, key, method)
	}
}

// waitAgentLegs waits until n legs to agents are in progress.
func waitAgentLegs(t *testing.T, ts *testServer, n int) {
	t.Helper()
	waitUntil(t, fmt.Sprintf("%d legs to agents", n), func() bool { return ts.agentLegCount() == n })
}

// The citizen hangs up in the conversation: the agent's phone gets its BYE.
// The phone takes A-law only, the citizen µ-law: the bridge transcodes.
func TestAgentConversationCallerHangsUp(t *testing.T) {
	phone := baresiptest.Start(t, baresiptest.Options{User: "agent8", Tone: 440, Codecs: "PCMA"})
	flow := newConnectFlow("agent8", 5*time.Second)
	ts := startConnectServer(t, staticLocator{"agent8": {phoneBinding(phone)}}, flow)
	u := ts.newUAC(t)
	cz := dialCitizen(t, u, "13912345679", media.PCMU, 1000)
	fc := recv(t, flow.calls, "call at the flow")
	dr := recv(t, fc.dialled, "Dial's return")
	if dr.err != nil {
		t.Fatalf("Dial: %v", dr.err)
	}
	phone.Await("CALL_ESTABLISHED")
	if codec := dr.leg.(*agentLeg).mediaStream().Codec().Name; codec != "PCMA" {
		t.Errorf("the leg's codec %s, want PCMA", codec)
	}
	cz.hears(440)

	cz.call.bye()
	br := recv(t, fc.bridged, "Bridge's return")
	if br.err != nil || br.end != ivr.CallerHungUp {
		t.Fatalf("Bridge: %q %v, want %q", br.end, br.err, ivr.CallerHungUp)
	}
	phone.Await("CALL_CLOSED")
	if br.legErr == nil {
		t.Errorf("the leg is still up after Bridge returned")
	}
	isClosed(t, fc.returned, "the flow's return")
	waitAgentLegs(t, ts, 0)
	if level := toneLevel(phone.HeardPCM(), 1000); level < 0.5 {
		t.Errorf("the agent's phone heard the citizen's tone at %.2f of its audio", level)
	}
}

// No answer within the ring time: the offer is withdrawn with a CANCEL
// that reaches the phone, and the citizen's call goes on.
func TestDialRingsOut(t *testing.T) {
	phone := baresiptest.Start(t, baresiptest.Options{User: "agent9", Tone: 440, AnswerMode: "manual"})
	flow := newConnectFlow("agent9", 700*time.Millisecond)
	ts := startConnectServer(t, staticLocator{"agent9": {phoneBinding(phone)}}, flow)
	u := ts.newUAC(t)
	cz := dialCitizen(t, u, "13912345680", media.PCMU, 1000)
	fc := recv(t, flow.calls, "call at the flow")
	phone.Await("CALL_INCOMING")
	dr := recv(t, fc.dialled, "Dial's return")
	var oe *OfferError
	if !errors.Is(dr.err, ivr.ErrRangOut) || !errors.As(dr.err, &oe) || oe.User != "agent9" {
		t.Fatalf("Dial: %v, want %v", dr.err, ivr.ErrRangOut)
	}
	phone.Await("CALL_CLOSED")
	waitAgentLegs(t, ts, 0)
	if fc.call.Err() != nil {
		t.Errorf("the citizen's call ended: %v", fc.call.Err())
	}
	cz.call.bye()
	isClosed(t, fc.returned, "the flow's return")
}

// The citizen hangs up while the agent's phone rings: the offer is
// withdrawn with a CANCEL, Dial says why, and nothing is left running.
func TestDialCallerHangsUpWhileRinging(t *testing.T) {
	phone := baresiptest.Start(t, baresiptest.Options{User: "agent10", Tone: 440, AnswerMode: "manual"})
	flow := newConnectFlow("agent10", time.Minute)
	ts := startConnectServer(t, staticLocator{"agent10": {phoneBinding(phone)}}, flow)
	u := ts.newUAC(t)
	cz := dialCitizen(t, u, "13912345681", media.PCMU, 1000)
	baseline := goleak.IgnoreCurrent()
	fc := recv(t, flow.calls, "call at the flow")
	phone.Await("CALL_INCOMING")
	cz.call.bye()
	dr := recv(t, fc.dialled, "Dial's return")
	if !errors.Is(dr.err, context.Canceled) || !errors.Is(dr.err, ivr.ErrCallerHangup) {
		t.Fatalf("Dial: %v, want the citizen's call's context error", dr.err)
	}
	phone.Await("CALL_CLOSED")
	isClosed(t, fc.returned, "the flow's return")
	waitAgentLegs(t, ts, 0)
	waitActive(t, ts, 0)
	if err := settled(leakWait, baseline); err != nil {
		t.Error(err)
	}
}

// The phone's final responses that are no answer: busy and declined are
// rejections, the rest leave the agent unreachable; Dial says which, with
// the status, and the citizen's call goes on.
func TestDialRefused(t *testing.T) {
	phone := newDeskPhone(t, "agent11")
	flow := newConnectFlow("agent11", 5*time.Second)
	ts := startConnectServer(t, staticLocator{"agent11": {phone.binding()}}, flow)
	u := ts.newUAC(t)
	for _, tc := range []struct {
		code int
		want error
	}{
		{sip.StatusBusyHere, ivr.ErrBusy},
		{sip.StatusGlobalBusyEverywhere, ivr.ErrBusy},
		{sip.StatusGlobalDecline, ivr.ErrRejected},
		{sip.StatusNotFound, ivr.ErrUnreachable},
		{sip.StatusTemporarilyUnavailable, ivr.ErrRangOut},
		{sip.StatusServiceUnavailable, ivr.ErrCongestion},
	} {
		t.Run(fmt.Sprint(tc.code), func(t *testing.T) {
			cz := dialCitizen(t, u, "13912345682", media.PCMU, 1000)
			fc := recv(t, flow.calls, "call at the flow")
			r := phone.ring(t)
			if from := r.req.From(); from.DisplayName != "13912345682" || from.Address.User != "12345" {
				t.Errorf("From %q <%s>: want the citizen's number shown, the hotline's as the user", from.DisplayName, from.Address.String())
			}
			if pai := r.req.GetHeader("P-Asserted-Identity"); pai == nil || !strings.Contains(pai.Value(), "sip:13912345682@") {
				t.Errorf("P-Asserted-Identity %v", pai)
			}
			r.respond(t, sip.StatusRinging, "Ringing")
			r.respond(t, tc.code, "No")
			dr := recv(t, fc.dialled, "Dial's return")
			var oe *OfferError
			if !errors.Is(dr.err, tc.want) || !errors.As(dr.err, &oe) || oe.Status != tc.code {
				t.Errorf("Dial: %v, want %v with status %d", dr.err, tc.want, tc.code)
			}
			waitAgentLegs(t, ts, 0)
			if fc.call.Err() != nil {
				t.Errorf("the citizen's call ended: %v", fc.call.Err())
			}
			cz.call.bye()
			isClosed(t, fc.returned, "the flow's return")
		})
	}
}

// No phone to ring: no binding, no Locator, a phone whose connection is
// refused, a transport this server does not serve.
func TestDialUnreachable(t *testing.T) {
	closed := freePort(t)
	loc := staticLocator{
		"tcp-gone": {{User: "tcp-gone", Contact: fmt.Sprintf("sip:tcp-gone@127.0.0.1:%d;transport=tcp", closed),
			Source: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(closed)), Transport: "tcp"}},
		"tls-phone": {{User: "tls-phone", Contact: "sip:tls-phone@127.0.0.1:5061", Transport: "tls"}},
	}
	ts := startServer(t, func(o *Options, _ *callee) { o.Locator = loc })
	u := ts.newUAC(t)
	c, sc := answered(t, ts, u, "13912345683")
	for _, tc := range []struct {
		user  string
		cause error
	}{
		{"nobody", ErrNotRegistered},
		{"tcp-gone", nil},
		{"tls-phone", nil},
	} {
		leg, err := ts.Dial(context.Background(), ivr.Agent{SIPUser: tc.user}, ivr.DialOptions{Parent: sc.call, RingTimeout: time.Second})
		if leg != nil || !errors.Is(err, ivr.ErrUnreachable) || (tc.cause != nil && !errors.Is(err, tc.cause)) {
			t.Errorf("Dial %s: %v, want %v", tc.user, err, ivr.ErrUnreachable)
		}
	}
	waitAgentLegs(t, ts, 0)
	c.bye()
	sc.endCause(t)

	nowhere := startServer(t, nil)
	u2 := nowhere.newUAC(t)
	c2, sc2 := answered(t, nowhere, u2, "13912345684")
	if _, err := nowhere.Dial(context.Background(), ivr.Agent{SIPUser: "anyone"}, ivr.DialOptions{Parent: sc2.call, RingTimeout: time.Second}); !errors.Is(err, ivr.ErrUnreachable) {
		t.Errorf("Dial without a Locator: %v", err)
	}
	c2.bye()
	sc2.endCause(t)
}

// A phone that takes A-law only, the citizen in µ-law: each hears the
// other's tone through the transcoding bridge, keys pass both ways (the
// citizen's as RFC 4733 events, the agent's as events and as SIP INFO), and
// the phone may put the call on hold and back.
func TestBridgeTranscodesAndRelaysKeys(t *testing.T) {
	phone := newDeskPhone(t, "agent12")
	flow := newConnectFlow("agent12", 5*time.Second)
	ts := startConnectServer(t, staticLocator{"agent12": {phone.binding()}}, flow)
	u := ts.newUAC(t)
	cz := dialCitizen(t, u, "13912345685", media.PCMU, 1000)
	fc := recv(t, flow.calls, "call at the flow")

	r := phone.ring(t)
	offer := parseSDP(t, r.req.Body())
	if got := offer.MediaDescriptions[0].MediaName.Formats; strings.Join(got, " ") != "0 8 101" {
		t.Errorf("offered formats %v, want the citizen's PCMU first, PCMA, telephone-event", got)
	}
	agentRTP := newRTPPeer(t)
	dlg := phone.answer(t, r, "PCMA", 8, agentRTP.port())
	dr := recv(t, fc.dialled, "Dial's return")
	if dr.err != nil {
		t.Fatalf("Dial: %v", dr.err)
	}
	ours := mediaAddr(t, offer)
	agent := startMedia(t, agentRTP.conn, ours, media.PCMA, 600)

	cz.hears(600)
	agent.hears(1000)

	// A prompt for the agent alone (a whisper) plays over the citizen's
	// voice, in the agent's law, and the citizen's voice comes back.
	pb, err := dr.leg.Play(context.Background(), prompts.Mandarin, prompts.Rating)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the agent hears the whisper", func() bool { return agent.heardPrompt(rating(t)) >= 10 })
	pb.Stop()
	isClosed(t, pb.Done(), "the whisper's end")
	if cz.heardPrompt(rating(t)) != 0 {
		t.Errorf("the citizen heard the agent's whisper")
	}
	agent.hears(1000)

	cz.press('4')
	waitUntil(t, "the agent gets key 4", func() bool { return agent.keysReceived() == "4" })
	wantCitizenKey(t, fc.call, '4', ivr.DTMFRFC4733)
	if res := inDialog(t, dlg, sip.INFO, "application/dtmf-relay", []byte("Signal=9\r\nDuration=160\r\n")); res.StatusCode != sip.StatusOK {
		t.Fatalf("INFO from the agent: %d", res.StatusCode)
	}
	agent.press('2')
	waitUntil(t, "the citizen gets keys 9 and 2", func() bool { return cz.keysReceived() == "92" })

	// Hold and back: the answer mirrors the phone's direction.
	for _, tc := range []struct{ dir, want string }{{"a=sendonly", "recvonly"}, {"a=sendrecv", "sendrecv"}} {
		res := inDialog(t, dlg, sip.INVITE, "application/sdp", offerFormats(agentRTP.port(), "8 101",
			"a=rtpmap:8 PCMA/8000", "a=rtpmap:101 telephone-event/8000", tc.dir))
		if res.StatusCode != sip.StatusOK {
			t.Fatalf("re-INVITE %s: %d", tc.dir, res.StatusCode)
		}
		ack := sip.NewRequest(sip.ACK, res.Contact().Address)
		if err := dlg.WriteRequest(ack); err != nil {
			t.Fatal(err)
		}
		if got := direction1(parseSDP(t, res.Body()).MediaDescriptions[0]); got != tc.want {
			t.Errorf("re-INVITE %s answered a=%s, want %s", tc.dir, got, tc.want)
		}
	}
	cz.hears(600)

	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := dlg.Bye(ctx); err != nil {
		t.Fatalf("BYE from the agent: %v", err)
	}
	br := recv(t, fc.bridged, "Bridge's return")
	if br.err != nil || br.end != ivr.AgentHungUp {
		t.Fatalf("Bridge: %q %v", br.end, br.err)
	}
	waitUntil(t, "the citizen hears the rating prompt", func() bool { return cz.heardPrompt(rating(t)) >= 10 })
	waitAgentLegs(t, ts, 0)
	cz.call.bye()
	isClosed(t, fc.returned, "the flow's return")
}

// The citizen and the agent hang up at the same moment: Bridge returns
// once, nothing panics, deadlocks or stays running.
func TestBridgeBothHangUpAtOnce(t *testing.T) {
	phone := newDeskPhone(t, "agent13")
	flow := newConnectFlow("agent13", 5*time.Second)
	ts := startConnectServer(t, staticLocator{"agent13": {phone.binding()}}, flow)
	u := ts.newUAC(t)
	for i := range 3 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			cz := dialCitizen(t, u, "13912345686", media.PCMU, 1000)
			fc := recv(t, flow.calls, "call at the flow")
			agentRTP := newRTPPeer(t)
			r := phone.ring(t)
			dlg := phone.answer(t, r, "PCMU", 0, agentRTP.port())
			if dr := recv(t, fc.dialled, "Dial's return"); dr.err != nil {
				t.Fatalf("Dial: %v", dr.err)
			}
			// The leg sends nothing until it is bridged: its first
			// packet says the bridge runs.
			agent := startMedia(t, agentRTP.conn, mediaAddr(t, parseSDP(t, r.req.Body())), media.PCMU, 600)
			waitUntil(t, "the bridge sends to the agent", func() bool { return len(agent.packets()) > 0 })
			baseline := goleak.IgnoreCurrent()
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			var wg sync.WaitGroup
			errs := make(chan error, 2)
			wg.Go(func() { errs <- dlg.Bye(ctx) })
			wg.Go(func() { errs <- cz.call.dlg.Bye(ctx) })
			wg.Wait()
			close(errs)
			for err := range errs {
				var resp sipgo.ErrDialogResponse
				if err != nil && !(errors.As(err, &resp) && resp.Res.StatusCode == sip.StatusCallTransactionDoesNotExists) {
					t.Errorf("BYE: %v", err)
				}
			}
			br := recv(t, fc.bridged, "Bridge's return")
			if br.err != nil || (br.end != ivr.CallerHungUp && br.end != ivr.AgentHungUp) {
				t.Errorf("Bridge: %q %v", br.end, br.err)
			}
			cz.close()
			agent.close()
			isClosed(t, fc.returned, "the flow's return")
			waitAgentLegs(t, ts, 0)
			waitActive(t, ts, 0)
			if err := settled(leakWait, baseline); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestOfferFailureMapping(t *testing.T) {
	for code, want := range map[int]error{
		sip.StatusBusyHere:               ivr.ErrBusy,
		sip.StatusGlobalBusyEverywhere:   ivr.ErrBusy,
		sip.StatusGlobalDecline:          ivr.ErrRejected,
		sip.StatusForbidden:              ivr.ErrRejected,
		sip.StatusRequestTerminated:      ivr.ErrRangOut,
		sip.StatusNotFound:               ivr.ErrUnreachable,
		sip.StatusRequestTimeout:         ivr.ErrRangOut,
		sip.StatusTemporarilyUnavailable: ivr.ErrRangOut,
		sip.StatusInternalServerError:    ivr.ErrCongestion,
		sip.StatusServiceUnavailable:     ivr.ErrCongestion,
		sip.StatusMovedTemporarily:       ivr.ErrUnreachable,
		sip.StatusNotAcceptableHere:      ivr.ErrUnreachable,
	} {
		if got := offerFailure(code); got != want {
			t.Errorf("%d: %v, want %v", code, got, want)
		}
	}
	err := error(&OfferError{User: "a", Status: 486, Reason: "Busy Here", Err: ivr.ErrBusy, Cause: ErrNotRegistered})
	if !errors.Is(err, ivr.ErrBusy) || !errors.Is(err, ErrNotRegistered) || errors.Is(err, ivr.ErrRangOut) {
		t.Errorf("OfferError unwraps wrong: %v", err)
	}
}

// A 200 that crosses the CANCEL of a withdrawn offer made a call all the
// same: it is acknowledged and hung up at once (RFC 3261 §9.1). The phone
// here is a raw socket, which answers the CANCEL and then the INVITE with
// 200, as a phone whose agent picked up at that instant does.
func TestDialAnswerCrossesCancel(t *testing.T) {
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	addr := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	loc := staticLocator{"agent14": {{User: "agent14", Contact: "sip:agent14@" + addr.String(), Source: addr, Transport: "udp"}}}
	flow := newConnectFlow("agent14", 300*time.Millisecond)
	ts := startConnectServer(t, loc, flow)
	u := ts.newUAC(t)
	cz := dialCitizen(t, u, "13912345687", media.PCMU, 1000)
	fc := recv(t, flow.calls, "call at the flow")

	raw := &rawPhone{t: t, conn: conn, tag: "ph14"}
	invite, from := raw.read(sip.INVITE)
	if from != ts.Addr() {
		t.Errorf("the INVITE came from %s, want the server's SIP port %s", from, ts.Addr())
	}
	raw.reply(invite, from, sip.StatusRinging, "Ringing", nil)
	cancel, _ := raw.read(sip.CANCEL)
	raw.reply(cancel, from, sip.StatusOK, "OK", nil)
	raw.reply(invite, from, sip.StatusOK, "OK", offerSDP(4000))
	dr := recv(t, fc.dialled, "Dial's return")
	if !errors.Is(dr.err, ivr.ErrRangOut) {
		t.Errorf("Dial: %v, want %v", dr.err, ivr.ErrRangOut)
	}
	raw.read(sip.ACK)
	bye, byeFrom := raw.read(sip.BYE)
	if byeFrom != ts.Addr() {
		t.Errorf("the BYE came from %s, want the server's SIP port %s", byeFrom, ts.Addr())
	}
	raw.reply(bye, byeFrom, sip.StatusOK, "OK", nil)
	waitAgentLegs(t, ts, 0)
	cz.call.bye()
	isClosed(t, fc.returned, "the flow's return")
}

// rawPhone is an agent's phone made of a UDP socket and hand-made replies.
type rawPhone struct {
	t    *testing.T
	conn *net.UDPConn
	tag  string
}

// read returns the next request of method, skipping retransmissions and
// other requests, and where it came from.
func (p *rawPhone) read(method sip.RequestMethod) (*sip.Request, netip.AddrPort) {
	p.t.Helper()
	if err := p.conn.SetReadDeadline(time.Now().Add(waitFor)); err != nil {
		p.t.Fatal(err)
	}
	buf := make([]byte, 65536)
	for {
		n, from, err := p.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			p.t.Fatalf("no %s at the phone: %v", method, err)
		}
		msg, err := sip.ParseMessage(bytes.Clone(buf[:n]))
		if err != nil {
			p.t.Fatalf("unparsable message at the phone: %v", err)
		}
		if req, ok := msg.(*sip.Request); ok && req.Method == method {
			return req, from
		}
	}
}

// reply answers req with the phone's tag, its Contact, and an SDP body.
func (p *rawPhone) reply(req *sip.Request, to netip.AddrPort, code int, reason string, body []byte) {
	p.t.Helper()
	res := sip.NewResponseFromRequest(req, code, reason, body)
	if _, ok := res.To().Params.Get("tag"); !ok {
		res.To().Params.Add("tag", p.tag)
	}
	local := p.conn.LocalAddr().(*net.UDPAddr)
	res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "agent", Host: "127.0.0.1", Port: local.Port}})
	if body != nil {
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	if _, err := p.conn.WriteToUDPAddrPort([]byte(res.String()), to); err != nil {
		p.t.Fatal(err)
	}
}
