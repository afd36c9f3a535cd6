package sip

// What the tests share: a server started with a recording Handler and a
// running Pacer, a UAC built on sipgo with its own UDP listener (so that the
// server's BYE reaches it), an RTP peer on a plain UDP socket, and a raw
// socket for messages no UA would send.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/media"
	"github.com/hotline12345/hotline/media/dtmf"
	"github.com/hotline12345/hotline/prompts"
)

// waitFor bounds every wait for something that must happen.
const waitFor = 5 * time.Second

// recv returns the next value from ch, failing the test if none comes in time.
func recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitFor):
		t.Fatalf("no %s within %s", what, waitFor)
		panic("unreachable")
	}
}

// isClosed fails the test unless ch is closed in time.
func isClosed(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitFor):
		t.Fatalf("%s did not happen within %s", what, waitFor)
	}
}

// testLog passes log lines to t.Log while the test runs and drops the lines
// of goroutines that outlive it (t.Log would panic then).
type testLog struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func newTestLog(t testing.TB) *testLog {
	l := &testLog{t: t}
	t.Cleanup(func() {
		l.mu.Lock()
		l.done = true
		l.mu.Unlock()
	})
	return l
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

var quietSlog = slog.New(slog.NewTextHandler(io.Discard, nil))

func defaultCatalog(t testing.TB) *prompts.Catalog {
	t.Helper()
	c, err := prompts.Default()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// seenCall is one call as the test Handler saw it.
type seenCall struct {
	call     *call
	digits   chan ivr.Digit // every key the flow read
	answered chan error     // Answer's result
	hangup   chan struct{}  // closed by the test: the flow hangs up
	ended    chan struct{}  // closed once the flow has hung up; cause is set
	cause    error          // context.Cause of the handler's ctx
	release  chan struct{}  // closed by the test: a lingering handler returns
	returned chan struct{}  // closed when the handler returned
}

// callee is the test Handler: it answers every call, passes on the digits it
// reads, and when its ctx ends (or the test asks) hangs up and records why.
type callee struct {
	calls chan *seenCall
	// before runs first in every call; a test makes it panic or stall.
	before func(ctx context.Context, c ivr.Call)
	// linger keeps each handler from returning after its call ended until
	// the test releases it, as a flow still writing its records would.
	linger bool
	// hangupWithin bounds the handler's Hangup; default waitFor.
	hangupWithin time.Duration
}

func (ce *callee) serve(ctx context.Context, c ivr.Call) {
	sc := &seenCall{
		call:     c.(*call),
		digits:   make(chan ivr.Digit, 64),
		answered: make(chan error, 1),
		hangup:   make(chan struct{}),
		ended:    make(chan struct{}),
		release:  make(chan struct{}),
		returned: make(chan struct{}),
	}
	defer close(sc.returned)
	ce.calls <- sc
	if ce.before != nil {
		ce.before(ctx, c)
	}
	err := c.Answer(ctx)
	sc.answered <- err
	for err == nil {
		select {
		case d := <-c.Digits():
			sc.digits <- d
		case <-sc.hangup:
			err = errHungUp
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	within := ce.hangupWithin
	if within <= 0 {
		within = waitFor
	}
	hctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	_ = c.Hangup(hctx)
	sc.cause = context.Cause(ctx)
	close(sc.ended)
	if ce.linger {
		select {
		case <-sc.release:
		case <-time.After(waitFor):
		}
	}
}

var errHungUp = errors.New("the test's flow hung up")

// endCause waits for the flow to end and returns context.Cause of its ctx.
func (sc *seenCall) endCause(t testing.TB) error {
	t.Helper()
	isClosed(t, sc.ended, "end of the call")
	return sc.cause
}

// digit waits for the flow to read a key.
func (sc *seenCall) digit(t testing.TB) ivr.Digit {
	t.Helper()
	return recv(t, sc.digits, "digit")
}

// testServer is a running Server with its callee.
type testServer struct {
	*Server
	callee *callee
	uacs   []*uac
}

// startServer runs a Server on a free loopback port with the test Handler
// and a running Pacer; tune adjusts its options and the Handler first. It
// returns once the server answers over UDP and TCP. The server stops, then
// its UACs, when the test ends.
func startServer(t testing.TB, tune func(*Options, *callee)) *testServer {
	t.Helper()
	tl := newTestLog(t)
	ce := &callee{calls: make(chan *seenCall, 64)}
	pacer := media.NewPacer(1, nil)
	opts := Options{
		Listen:       "127.0.0.1:0",
		Transports:   []string{"udp", "tcp"},
		MediaTimeout: 30 * time.Second,
		Catalog:      defaultCatalog(t),
		Pacer:        pacer,
		Handler:      ce.serve,
		Logger:       zerolog.New(tl).Level(zerolog.InfoLevel).With().Timestamp().Logger(),
		UserAgent:    "hotline-test",
	}
	if tune != nil {
		tune(&opts, ce)
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: srv, callee: ce}
	ctx, cancel := context.WithCancel(context.Background())
	pacerDone := make(chan struct{})
	go func() {
		defer close(pacerDone)
		pacer.Run(ctx)
	}()
	runDone := make(chan error, 1)
	go func() { runDone <- srv.Run(ctx) }()
	t.Cleanup(func() {
		// A request read just before the listeners close but handled after
		// the stack closed makes sipgo open a socket that nothing closes.
		// An exchange first lets what the test sent last (an ACK sent for
		// a refusal) be handled while the server runs.
		if conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0"))); err == nil {
			(&rawPeer{t: t, conn: conn, to: ts.Addr()}).options()
			conn.Close()
		}
		cancel()
		select {
		case err := <-runDone:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(time.Minute):
			t.Errorf("Run did not return")
		}
		<-pacerDone
		for _, u := range ts.uacs {
			u.close()
		}
	})
	if code := newRawPeer(t, ts.Addr()).options(); code != sip.StatusOK {
		t.Fatalf("OPTIONS over UDP: %d", code)
	}
	tcp := dialTCP(t, ts.Addr())
	tcp.send(newRawRequest("OPTIONS", "TCP", tcp.addr(), ts.Addr()).bytes())
	if res, err := tcp.reply(); err != nil || res.StatusCode != sip.StatusOK {
		t.Fatalf("OPTIONS over TCP: %v %v", res, err)
	}
	tcp.conn.Close()
	return ts
}

// nextCall waits for the Handler to be handed a call.
func (ts *testServer) nextCall(t testing.TB) *seenCall {
	t.Helper()
	return recv(t, ts.callee.calls, "call at the handler")
}

// uac is a SIP user agent playing the citizen's phone.
type uac struct {
	t       testing.TB
	ua      *sipgo.UserAgent
	client  *sipgo.Client
	conn    net.PacketConn
	addr    netip.AddrPort
	contact sip.ContactHeader
	target  netip.AddrPort // the server
	byes    chan *sip.Request
	served  chan struct{}
}

// readyConn reports the listener's first read: sipgo has registered the
// socket for sending by then, so requests leave from it.
type readyConn struct {
	net.PacketConn
	once  sync.Once
	ready chan struct{}
}

func (c *readyConn) ReadFrom(b []byte) (int, net.Addr, error) {
	c.once.Do(func() { close(c.ready) })
	return c.PacketConn.ReadFrom(b)
}

// newLoopbackUA makes a sipgo UA named name on a free loopback UDP port:
// its client sends from that port and its server takes requests there.
func newLoopbackUA(t testing.TB, name string) (*sipgo.UserAgent, *sipgo.Client, *sipgo.Server, net.PacketConn, netip.AddrPort) {
	t.Helper()
	ua, err := sipgo.NewUA(
		sipgo.WithUserAgent(name),
		sipgo.WithUserAgentHostname("127.0.0.1"),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(quietSlog)),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(quietSlog)),
	)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	client, err := sipgo.NewClient(ua, sipgo.WithClientLogger(quietSlog),
		sipgo.WithClientHostname("127.0.0.1"), sipgo.WithClientConnectionAddr(addr.String()))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(quietSlog))
	if err != nil {
		t.Fatal(err)
	}
	return ua, client, srv, pc, addr
}

// newUAC starts a UAC listening on a free loopback UDP port.
func (ts *testServer) newUAC(t testing.TB) *uac {
	t.Helper()
	ua, client, srv, pc, addr := newLoopbackUA(t, "uac")
	u := &uac{
		t: t, ua: ua, client: client, conn: pc, addr: addr, target: ts.Addr(),
		contact: sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "citizen", Host: "127.0.0.1", Port: int(addr.Port())}},
		byes:    make(chan *sip.Request, 16),
		served:  make(chan struct{}),
	}
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
		u.byes <- req
	})
	rc := &readyConn{PacketConn: pc, ready: make(chan struct{})}
	go func() {
		defer close(u.served)
		_ = srv.ServeUDP(rc)
	}()
	isClosed(t, rc.ready, "UAC listening")
	ts.uacs = append(ts.uacs, u)
	return u
}

func (u *uac) close() {
	u.ua.Close()
	u.conn.Close()
	<-u.served
}

// uri is the server's SIP URI for user.
func (u *uac) uri(user string) sip.Uri {
	return sip.Uri{Scheme: "sip", User: user, Host: u.target.Addr().String(), Port: int(u.target.Port())}
}

func (u *uac) from(caller string) *sip.FromHeader {
	h := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: caller, Host: "127.0.0.1"}, Params: sip.NewParams()}
	h.Params.Add("tag", sip.GenerateTagN(16))
	return h
}

// invite sends an INVITE with an SDP body and returns the dialog without
// waiting for the answer.
func (u *uac) invite(ctx context.Context, caller string, body []byte) (*sipgo.DialogClientSession, error) {
	d := sipgo.DialogUA{Client: u.client, ContactHDR: u.contact}
	return d.Invite(ctx, u.uri("12345"), body, u.from(caller), sip.NewHeader("Content-Type", "application/sdp"))
}

// uacCall is an answered call from the UAC's side.
type uacCall struct {
	u      *uac
	dlg    *sipgo.DialogClientSession
	rtp    *rtpPeer
	answer *sdp.SessionDescription
}

// call places a call offering PCMU and telephone-event from a new RTP
// socket, waits for the answer and ACKs it.
func (u *uac) call(caller string) *uacCall {
	u.t.Helper()
	peer := newRTPPeer(u.t)
	return u.callWith(caller, peer, offerSDP(peer.port()))
}

// callWith places a call with the given offer, which should name peer's port.
func (u *uac) callWith(caller string, peer *rtpPeer, offer []byte) *uacCall {
	t := u.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	dlg, err := u.invite(ctx, caller, offer)
	if err != nil {
		t.Fatal(err)
	}
	if err := dlg.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		t.Fatalf("INVITE: %v", err)
	}
	if err := dlg.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	c := &uacCall{u: u, dlg: dlg, rtp: peer}
	c.answer = parseSDP(t, dlg.InviteResponse.Body())
	peer.to = mediaAddr(t, c.answer)
	return c
}

// request sends an in-dialog request and returns its final response.
func (c *uacCall) request(method sip.RequestMethod, contentType string, body []byte) *sip.Response {
	t := c.u.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	req := sip.NewRequest(method, c.dlg.InviteResponse.Contact().Address)
	if body != nil {
		req.SetBody(body)
		req.AppendHeader(sip.NewHeader("Content-Type", contentType))
	}
	res, err := c.dlg.Do(ctx, req)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	return res
}

// info sends a SIP INFO and returns the response's status code.
func (c *uacCall) info(contentType, body string) int {
	c.u.t.Helper()
	return c.request(sip.INFO, contentType, []byte(body)).StatusCode
}

// reinvite sends a re-INVITE with offer, ACKs a 2xx, and returns the
// response; a 2xx's SDP answer is parsed and the RTP peer follows it.
func (c *uacCall) reinvite(offer []byte) (*sip.Response, *sdp.SessionDescription) {
	t := c.u.t
	t.Helper()
	res := c.request(sip.INVITE, "application/sdp", offer)
	if !res.IsSuccess() {
		return res, nil
	}
	ack := sip.NewRequest(sip.ACK, c.dlg.InviteResponse.Contact().Address)
	if err := c.dlg.WriteRequest(ack); err != nil {
		t.Fatal(err)
	}
	ans := parseSDP(t, res.Body())
	c.rtp.to = mediaAddr(t, ans)
	return res, ans
}

// bye hangs up from the UAC's side.
func (c *uacCall) bye() {
	t := c.u.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := c.dlg.Bye(ctx); err != nil {
		t.Fatalf("BYE: %v", err)
	}
}

// awaitBye waits for the server to hang up.
func (u *uac) awaitBye(t testing.TB) *sip.Request {
	t.Helper()
	return recv(t, u.byes, "BYE from the server")
}

// offerSDP offers PCMU and telephone-event 101 on port, sendrecv; extra
// lines go at the end of the audio section.
func offerSDP(port int, extra ...string) []byte {
	return offerFormats(port, "0 101", append([]string{"a=rtpmap:0 PCMU/8000", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15"}, extra...)...)
}

// offerFormats offers an audio line with the given formats and attributes.
func offerFormats(port int, formats string, attrs ...string) []byte {
	lines := []string{
		"v=0", "o=citizen 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
		fmt.Sprintf("m=audio %d RTP/AVP %s", port, formats),
	}
	return sdpText(append(lines, attrs...)...)
}

func parseSDP(t testing.TB, body []byte) *sdp.SessionDescription {
	t.Helper()
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(body); err != nil {
		t.Fatalf("SDP does not parse: %v\n%s", err, body)
	}
	return &sd
}

// mediaAddr is the audio address of an SDP answer.
func mediaAddr(t testing.TB, sd *sdp.SessionDescription) netip.AddrPort {
	t.Helper()
	for _, md := range sd.MediaDescriptions {
		if md.MediaName.Media != "audio" || md.MediaName.Port.Value == 0 {
			continue
		}
		ci := md.ConnectionInformation
		if ci == nil {
			ci = sd.ConnectionInformation
		}
		addr, err := netip.ParseAddr(ci.Address.Address)
		if err != nil {
			t.Fatal(err)
		}
		return netip.AddrPortFrom(addr, uint16(md.MediaName.Port.Value))
	}
	t.Fatalf("no audio in the answer")
	return netip.AddrPort{}
}

// rtpPeer sends RTP to the server from a plain UDP socket.
type rtpPeer struct {
	t      testing.TB
	conn   *net.UDPConn
	to     netip.AddrPort
	pt     uint8 // audio payload type
	dtmfPT uint8
	seq    uint16
	ts     uint32
	ssrc   uint32
}

func newRTPPeer(t testing.TB) *rtpPeer {
	t.Helper()
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &rtpPeer{t: t, conn: conn, pt: 0, dtmfPT: 101, seq: 1000, ts: 8000, ssrc: 0x1234}
}

func (p *rtpPeer) port() int { return p.conn.LocalAddr().(*net.UDPAddr).Port }

func (p *rtpPeer) send(pt uint8, marker bool, ts uint32, payload []byte) {
	p.t.Helper()
	p.seq++
	pkt := rtp.Packet{
		Header:  rtp.Header{Version: 2, PayloadType: pt, Marker: marker, SequenceNumber: p.seq, Timestamp: ts, SSRC: p.ssrc},
		Payload: payload,
	}
	b, err := pkt.Marshal()
	if err != nil {
		p.t.Fatal(err)
	}
	if _, err := p.conn.WriteToUDPAddrPort(b, p.to); err != nil {
		p.t.Fatal(err)
	}
}

// event sends one key press as RFC 4733 packets: three updates, then the
// end packet three times (§2.5.1.4), all with the press's start timestamp.
func (p *rtpPeer) event(key rune) {
	p.t.Helper()
	start := p.ts
	for i, dur := range []uint16{160, 320, 480} {
		p.send(p.dtmfPT, i == 0, start, dtmf.Event{Key: key, Volume: 10, Duration: dur}.Marshal())
	}
	for range 3 {
		p.send(p.dtmfPT, false, start, dtmf.Event{Key: key, End: true, Volume: 10, Duration: 800}.Marshal())
	}
	p.ts += 800
}

// audio sends pcm as 20 ms frames of codec.
func (p *rtpPeer) audio(codec media.Codec, pcm []int16) {
	p.t.Helper()
	for len(pcm) > 0 {
		n := min(len(pcm), media.FrameSamples)
		p.send(p.pt, false, p.ts, codec.Encode(nil, pcm[:n]))
		p.ts += uint32(n)
		pcm = pcm[n:]
	}
}

// tone sends key as an in-band tone pair followed by silence.
func (p *rtpPeer) tone(codec media.Codec, key rune) {
	p.t.Helper()
	pcm, err := dtmf.Tone(key, dtmf.ToneOptions{Duration: 100 * time.Millisecond})
	if err != nil {
		p.t.Fatal(err)
	}
	p.audio(codec, append(pcm, dtmf.Silence(100*time.Millisecond)...))
}

// rawPeer sends hand-made SIP messages over UDP and reads the replies.
type rawPeer struct {
	t    testing.TB
	conn *net.UDPConn
	to   netip.AddrPort
	seen []*sip.Response // replies read while awaiting another

	invites []*sip.Request  // INVITEs sent by invite
	answers []*sip.Response // their final responses
}

func newRawPeer(t testing.TB, to netip.AddrPort) *rawPeer {
	t.Helper()
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &rawPeer{t: t, conn: conn, to: to}
}

func (r *rawPeer) addr() netip.AddrPort { return r.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

func (r *rawPeer) send(b []byte) {
	r.t.Helper()
	if _, err := r.conn.WriteToUDPAddrPort(b, r.to); err != nil {
		r.t.Fatal(err)
	}
}

// await reads replies until the final one to the request with branch,
// keeping the other final replies in seen.
func (r *rawPeer) await(branch string) *sip.Response {
	r.t.Helper()
	return r.awaitFinal(branch, func(res *sip.Response) bool {
		if via := res.Via(); via != nil {
			b, _ := via.Params.Get("branch")
			return b == branch
		}
		return false
	})
}

// awaitFinal reads replies until a final one that is, keeping the other
// final replies in seen; what names the request in a failure.
func (r *rawPeer) awaitFinal(what string, is func(*sip.Response) bool) *sip.Response {
	r.t.Helper()
	if err := r.conn.SetReadDeadline(time.Now().Add(waitFor)); err != nil {
		r.t.Fatal(err)
	}
	buf := make([]byte, 65536)
	for {
		n, err := r.conn.Read(buf)
		if err != nil {
			r.t.Fatalf("no reply to %s: %v", what, err)
		}
		msg, err := sip.ParseMessage(bytes.Clone(buf[:n]))
		if err != nil {
			r.t.Fatalf("unparsable reply: %v\n%s", err, buf[:n])
		}
		res, ok := msg.(*sip.Response)
		if !ok {
			r.t.Fatalf("a request came back: %v", msg)
		}
		if res.IsProvisional() {
			continue
		}
		if is(res) {
			return res
		}
		r.seen = append(r.seen, res)
	}
}

// options sends an OPTIONS and returns the reply's status code.
func (r *rawPeer) options() int {
	r.t.Helper()
	req := newRawRequest("OPTIONS", "UDP", r.addr(), r.to)
	r.send(req.bytes())
	return r.await(req.branch).StatusCode
}

// rawRequest is a valid request as text lines, for tests to break.
type rawRequest struct {
	lines  []string
	body   string
	branch string
}

func newRawRequest(method, transport string, from, to netip.AddrPort) *rawRequest {
	branch := "z9hG4bK" + sip.GenerateTagN(12)
	return &rawRequest{
		branch: branch,
		lines: []string{
			fmt.Sprintf("%s sip:12345@%s SIP/2.0", method, to),
			fmt.Sprintf("Via: SIP/2.0/%s %s;branch=%s", transport, from, branch),
			"Max-Forwards: 70",
			fmt.Sprintf("From: <sip:13900000000@%s>;tag=%s", from.Addr(), sip.GenerateTagN(8)),
			fmt.Sprintf("To: <sip:12345@%s>", to),
			"Call-ID: " + sip.GenerateTagN(16) + "@test",
			"CSeq: 1 " + method,
			fmt.Sprintf("Contact: <sip:13900000000@%s>", from),
		},
	}
}

// set replaces the header line starting with name (or drops it when line
// is empty).
func (r *rawRequest) set(name, line string) *rawRequest {
	for i, l := range r.lines {
		if strings.HasPrefix(strings.ToLower(l), strings.ToLower(name)+":") {
			if line == "" {
				r.lines = append(r.lines[:i], r.lines[i+1:]...)
			} else {
				r.lines[i] = line
			}
			return r
		}
	}
	if line != "" {
		r.lines = append(r.lines, line)
	}
	return r
}

// bytes is the message with a Content-Length matching the body unless
// one was set.
func (r *rawRequest) bytes() []byte {
	lines := r.lines
	has := false
	for _, l := range lines {
		has = has || strings.HasPrefix(strings.ToLower(l), "content-length:")
	}
	if !has {
		lines = append(lines[:len(lines):len(lines)], fmt.Sprintf("Content-Length: %d", len(r.body)))
	}
	return []byte(strings.Join(lines, "\r\n") + "\r\n\r\n" + r.body)
}

// tcpPeer is a raw SIP connection over TCP.
type tcpPeer struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func dialTCP(t testing.TB, to netip.AddrPort) *tcpPeer {
	t.Helper()
	conn, err := net.Dial("tcp", to.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(waitFor)); err != nil {
		t.Fatal(err)
	}
	return &tcpPeer{t: t, conn: conn, r: bufio.NewReader(conn)}
}

func (p *tcpPeer) addr() netip.AddrPort { return p.conn.LocalAddr().(*net.TCPAddr).AddrPort() }

func (p *tcpPeer) send(b []byte) {
	p.t.Helper()
	if _, err := p.conn.Write(b); err != nil {
		p.t.Fatal(err)
	}
}

// reply reads one response, framed by its Content-Length (RFC 3261 §18.3);
// io.EOF when the server closed the connection.
func (p *tcpPeer) reply() (*sip.Response, error) {
	var head strings.Builder
	length := 0
	for {
		line, err := p.r.ReadString('\n')
		if err != nil {
			if head.Len() == 0 && line == "" && (errors.Is(err, io.EOF) || isReset(err)) {
				return nil, io.EOF
			}
			return nil, err
		}
		if head.Len() == 0 && line == "\r\n" {
			continue // a keep-alive's pong (RFC 5626 §3.5.1)
		}
		head.WriteString(line)
		if line == "\r\n" {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "Content-Length") {
			length, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(p.r, body); err != nil {
		return nil, err
	}
	msg, err := sip.ParseMessage(append([]byte(head.String()), body...))
	if err != nil {
		return nil, fmt.Errorf("unparsable reply: %w", err)
	}
	res, ok := msg.(*sip.Response)
	if !ok {
		return nil, fmt.Errorf("a request came back: %v", msg)
	}
	return res, nil
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}
