package sip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"
	"go.uber.org/goleak"

	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/media"
)

// answered places a call and waits until the flow has answered it.
func answered(t *testing.T, ts *testServer, u *uac, caller string) (*uacCall, *seenCall) {
	t.Helper()
	c := u.call(caller)
	sc := ts.nextCall(t)
	if err := recv(t, sc.answered, "answer"); err != nil {
		t.Fatalf("Answer: %v", err)
	}
	return c, sc
}

// wantDigit waits for the flow's next key and checks it and its method.
func wantDigit(t *testing.T, sc *seenCall, key rune, method ivr.DTMFMethod) {
	t.Helper()
	if d := sc.digit(t); d.Key != key || d.Method != method {
		t.Errorf("digit %q by %s, want %q by %s", d.Key, d.Method, key, method)
	}
}

// inviteStatus sends an INVITE with offer and returns the final status.
func inviteStatus(t *testing.T, u *uac, offer []byte) *sip.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	dlg, err := u.invite(ctx, "13900000000", offer)
	if err != nil {
		t.Fatal(err)
	}
	err = dlg.WaitAnswer(ctx, sipgo.AnswerOptions{})
	var res *sipgo.ErrDialogResponse
	if errors.As(err, &res) {
		return res.Res
	}
	if err != nil {
		t.Fatalf("INVITE: %v", err)
	}
	_ = dlg.Ack(ctx)
	return dlg.InviteResponse
}

// waitActive waits, bounded, until the server counts n calls.
func waitActive(t *testing.T, ts *testServer, n int) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for ts.ActiveCalls() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls active, want %d", ts.ActiveCalls(), n)
		}
		<-tick.C
	}
}

// noCallAtHandler checks that the handler was handed no call.
func noCallAtHandler(t *testing.T, ts *testServer) {
	t.Helper()
	select {
	case sc := <-ts.callee.calls:
		t.Errorf("the handler got call %s", sc.call.ID())
	default:
	}
}

func TestAnswerCarriesTheCallersCodec(t *testing.T) {
	ts := startServer(t, nil)
	u := ts.newUAC(t)
	peer := newRTPPeer(t)
	peer.pt = 8
	c := u.callWith("13900000001", peer, offerFormats(peer.port(), "18 8 0 101",
		"a=rtpmap:18 G729/8000", "a=rtpmap:8 PCMA/8000", "a=rtpmap:0 PCMU/8000", "a=rtpmap:101 telephone-event/8000"))
	sc := ts.nextCall(t)
	if err := recv(t, sc.answered, "answer"); err != nil {
		t.Fatal(err)
	}
	md := c.answer.MediaDescriptions[0]
	if got := md.MediaName.Formats; len(got) != 2 || got[0] != "8" || got[1] != "101" {
		t.Errorf("answer formats %v, want [8 101]", got)
	}
	if sc.call.stream.Codec().Name != "PCMA" {
		t.Errorf("stream codec %s", sc.call.stream.Codec().Name)
	}
	// The in-band detector listens in the negotiated codec.
	peer.tone(media.PCMA, '4')
	wantDigit(t, sc, '4', ivr.DTMFInband)
}

// The caller hears the prompts in the encoding it chose, on the payload
// type it gave that encoding, static or dynamic (RFC 3551 §3).
func TestPromptsInTheNegotiatedCodec(t *testing.T) {
	ts := startServer(t, nil)
	u := ts.newUAC(t)
	cat := ts.opts.Catalog
	prompt, err := cat.Get(cat.IDs()[0], cat.DefaultLang())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		codec media.Codec
		pt    uint8
	}{
		{media.PCMU, 0}, {media.PCMA, 8}, {media.PCMA, 96}, {media.PCMU, 97},
	} {
		t.Run(fmt.Sprintf("%s on %d", tc.codec.Name, tc.pt), func(t *testing.T) {
			peer := newRTPPeer(t)
			pt := fmt.Sprint(tc.pt)
			c := u.callWith("13900000023", peer, offerFormats(peer.port(), pt+" 101",
				"a=rtpmap:"+pt+" "+tc.codec.Name+"/8000", "a=rtpmap:101 telephone-event/8000"))
			sc := ts.nextCall(t)
			if err := recv(t, sc.answered, "answer"); err != nil {
				t.Fatal(err)
			}
			pb, err := sc.call.Play(context.Background(), prompt.Lang, prompt.ID)
			if err != nil {
				t.Fatal(err)
			}
			if err := peer.conn.SetReadDeadline(time.Now().Add(waitFor)); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 1500)
			n, err := peer.conn.Read(buf)
			if err != nil {
				t.Fatalf("no RTP: %v", err)
			}
			var pkt rtp.Packet
			if err := pkt.Unmarshal(buf[:n]); err != nil {
				t.Fatal(err)
			}
			if pkt.PayloadType != tc.pt {
				t.Errorf("payload type %d, want %d", pkt.PayloadType, tc.pt)
			}
			if want := tc.codec.Encode(nil, prompt.PCM[:media.FrameSamples]); !bytes.Equal(pkt.Payload, want) {
				t.Errorf("the first frame is not the prompt in %s", tc.codec.Name)
			}
			pb.Stop()
			c.bye()
			sc.endCause(t)
		})
	}
}

func TestUnacceptableOffersGet488(t *testing.T) {
	ts := startServer(t, nil)
	u := ts.newUAC(t)
	for _, tc := range []struct {
		name  string
		offer []byte
	}{
		{"no supported codec", offerFormats(4000, "18 9", "a=rtpmap:18 G729/8000", "a=rtpmap:9 G722/8000")},
		{"SRTP only", sdpText("v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
			"m=audio 4000 RTP/SAVP 0", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz")},
		{"video only", sdpText("v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
			"m=video 4000 RTP/AVP 96", "a=rtpmap:96 H264/90000")},
		{"malformed SDP", []byte("v=0\r\nthis is not SDP\r\n")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := inviteStatus(t, u, tc.offer)
			if res.StatusCode != sip.StatusNotAcceptableHere {
				t.Errorf("status %d, want 488", res.StatusCode)
			}
			if res.GetHeader("Warning") == nil {
				t.Errorf("488 without a Warning saying why")
			}
			noCallAtHandler(t, ts)
		})
	}
	if n := ts.ActiveCalls(); n != 0 {
		t.Errorf("%d calls active after refusals", n)
	}
}

func TestInfoDTMF(t *testing.T) {
	ts := startServer(t, func(_ *Options, ce *callee) { ce.linger = true })
	u := ts.newUAC(t)
	c, sc := answered(t, ts, u, "13900000002")
	for _, tc := range []struct {
		contentType, body string
		key               rune
	}{
		{"application/dtmf-relay", "Signal=5\r\nDuration=160\r\n", '5'},
		{"application/dtmf-relay", "Signal=10\r\nDuration=160\r\n", '*'},
		{"application/dtmf-relay", "Signal=11\r\nDuration=160\r\n", '#'},
		{"application/dtmf-relay", "Signal=#\r\nDuration=250\r\n", '#'},
		{"application/dtmf-relay", "Signal= *\r\n", '*'},
		{"application/dtmf-relay", "signal=d\nduration=100", 'D'},
		{"Application/DTMF-Relay; charset=utf-8", "Signal=7", '7'},
		{"application/dtmf", "5", '5'},
		{"application/dtmf", "0\r\n", '0'},
	} {
		if code := c.info(tc.contentType, tc.body); code != sip.StatusOK {
			t.Errorf("INFO %s %q: %d, want 200", tc.contentType, tc.body, code)
			continue
		}
		wantDigit(t, sc, tc.key, ivr.DTMFInfo)
	}
	for _, tc := range []struct {
		contentType, body string
		code              int
	}{
		{"application/dtmf-relay", "Signal=X\r\nDuration=160", sip.StatusBadRequest},
		{"application/dtmf-relay", "Signal=16", sip.StatusBadRequest},
		{"application/dtmf-relay", "Duration=160", sip.StatusBadRequest},
		{"application/dtmf", "55", sip.StatusBadRequest},
		{"text/plain", "5", sip.StatusUnsupportedMediaType},
		{"application/sdp", string(offerSDP(4000)), sip.StatusUnsupportedMediaType},
	} {
		if code := c.info(tc.contentType, tc.body); code != tc.code {
			t.Errorf("INFO %s %q: %d, want %d", tc.contentType, tc.body, code, tc.code)
		}
	}
	// The refused ones delivered nothing: the next key is the next good one.
	if code := c.info("application/dtmf", "1"); code != sip.StatusOK {
		t.Fatalf("INFO: %d", code)
	}
	wantDigit(t, sc, '1', ivr.DTMFInfo)

	t.Run("outside a dialog", func(t *testing.T) {
		req := sip.NewRequest(sip.INFO, u.uri("12345"))
		to := &sip.ToHeader{Address: u.uri("12345"), Params: sip.NewParams()}
		to.Params.Add("tag", "no-such-dialog")
		req.AppendHeader(to)
		req.AppendHeader(sip.NewHeader("Content-Type", "application/dtmf"))
		req.SetBody([]byte("5"))
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		res, err := u.client.Do(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != sip.StatusCallTransactionDoesNotExists {
			t.Errorf("INFO outside a dialog: %d, want 481", res.StatusCode)
		}
	})

	c.bye()
	if cause := sc.endCause(t); !errors.Is(cause, ivr.ErrCallerHangup) {
		t.Errorf("cause %v", cause)
	}
	// The flow is still finishing; the dialog is over all the same.
	t.Run("after the call", func(t *testing.T) {
		if code := c.info("application/dtmf", "5"); code != sip.StatusCallTransactionDoesNotExists {
			t.Errorf("INFO after BYE: %d, want 481", code)
		}
	})
	close(sc.release)
}

// RTP for a call is taken only from the address its SDP named (no RTP
// hijack by anyone who guesses the port), and each press counts once.
func TestRTPFromElsewhereIsIgnored(t *testing.T) {
	ts := startServer(t, nil)
	u := ts.newUAC(t)
	c, sc := answered(t, ts, u, "13900000003")

	otherPort := newRTPPeer(t)
	otherPort.to = c.rtp.to
	otherPort.tone(media.PCMU, '8')
	otherPort.event('9')

	// Same port as the caller's, another address of this host.
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), uint16(c.rtp.port()))))
	if err != nil {
		t.Fatal(err)
	}
	otherHost := &rtpPeer{t: t, conn: conn, to: c.rtp.to, pt: 0, dtmfPT: 101, ts: 1, ssrc: 99}
	t.Cleanup(func() { conn.Close() })
	otherHost.event('7')

	// Packets from one socket to another arrive in order: had any of the
	// above been taken, its key would come before this one.
	c.rtp.event('1')
	wantDigit(t, sc, '1', ivr.DTMFRFC4733)
	c.rtp.event('2')
	wantDigit(t, sc, '2', ivr.DTMFRFC4733) // not '1' again from its end packets
	c.rtp.event('2')
	wantDigit(t, sc, '2', ivr.DTMFRFC4733) // the same key pressed again counts again
	c.rtp.event('0')
	wantDigit(t, sc, '0', ivr.DTMFRFC4733)
	if st := sc.call.stream.Stats(); st.Foreign != 10+6+6 || st.Received < 3*6+1 {
		t.Errorf("stats %+v, want 22 foreign packets and at least 19 received", st)
	}
	select {
	case d := <-sc.digits:
		t.Errorf("extra digit %q", d.Key)
	default:
	}
}

func TestInbandDTMF(t *testing.T) {
	for _, codec := range []media.Codec{media.PCMU, media.PCMA} {
		t.Run(codec.Name, func(t *testing.T) {
			ts := startServer(t, nil)
			u := ts.newUAC(t)
			peer := newRTPPeer(t)
			peer.pt = codec.PayloadType
			pt := fmt.Sprint(codec.PayloadType)
			u.callWith("13900000004", peer, offerFormats(peer.port(), pt+" 101",
				"a=rtpmap:"+pt+" "+codec.Name+"/8000", "a=rtpmap:101 telephone-event/8000"))
			sc := ts.nextCall(t)
			if err := recv(t, sc.answered, "answer"); err != nil {
				t.Fatal(err)
			}
			peer.tone(codec, '5')
			wantDigit(t, sc, '5', ivr.DTMFInband)
			peer.tone(codec, '#')
			wantDigit(t, sc, '#', ivr.DTMFInband)
			peer.tone(codec, '#')
			wantDigit(t, sc, '#', ivr.DTMFInband)

			// Once the phone signals keys as RFC 4733 events, tones in its
			// audio are not keys (it may leave them in, RFC 4733 §2.6).
			peer.event('3')
			wantDigit(t, sc, '3', ivr.DTMFRFC4733)
			peer.tone(codec, '8')
			peer.event('9')
			wantDigit(t, sc, '9', ivr.DTMFRFC4733)
		})
	}
}

func TestMediaTimeout(t *testing.T) {
	t.Parallel()
	ts := startServer(t, func(o *Options, _ *callee) { o.MediaTimeout = 500 * time.Millisecond })
	u := ts.newUAC(t)

	t.Run("silent caller", func(t *testing.T) {
		_, sc := answered(t, ts, u, "13900000005")
		if cause := sc.endCause(t); !errors.Is(cause, ivr.ErrMediaTimeout) {
			t.Fatalf("cause %v, want %v", cause, ivr.ErrMediaTimeout)
		}
		// The flow's Hangup tells the caller.
		u.awaitBye(t)
	})

	t.Run("talking caller", func(t *testing.T) {
		c, sc := answered(t, ts, u, "13900000006")
		frame := make([]int16, media.FrameSamples)
		tick := time.NewTicker(media.FrameDuration)
		defer tick.Stop()
		stop := time.After(4 * ts.opts.MediaTimeout)
	talking:
		for {
			select {
			case <-tick.C:
				c.rtp.audio(media.PCMU, frame)
			case <-sc.ended:
				t.Fatalf("call ended while RTP flowed: %v", sc.cause)
			case <-stop:
				break talking
			}
		}
		// Silence from now on: the timeout is live.
		if cause := sc.endCause(t); !errors.Is(cause, ivr.ErrMediaTimeout) {
			t.Fatalf("cause %v, want %v", cause, ivr.ErrMediaTimeout)
		}
		u.awaitBye(t)
	})

	t.Run("inactive from the start", func(t *testing.T) {
		peer := newRTPPeer(t)
		c := u.callWith("13900000007", peer, offerSDP(peer.port(), "a=inactive"))
		sc := ts.nextCall(t)
		if err := recv(t, sc.answered, "answer"); err != nil {
			t.Fatal(err)
		}
		if dir := direction1(c.answer.MediaDescriptions[0]); dir != "inactive" {
			t.Errorf("answer a=%s, want inactive", dir)
		}
		select {
		case <-sc.ended:
			t.Fatalf("inactive call ended: %v", sc.cause)
		case <-time.After(4 * ts.opts.MediaTimeout):
		}
		c.bye()
		if cause := sc.endCause(t); !errors.Is(cause, ivr.ErrCallerHangup) {
			t.Errorf("cause %v", cause)
		}
	})
}

func TestReinviteHoldAndResume(t *testing.T) {
	ts := startServer(t, nil)
	u := ts.newUAC(t)
	c, sc := answered(t, ts, u, "13900000008")
	v0 := c.answer.Origin.SessionVersion

	res, ans := c.reinvite(offerSDP(c.rtp.port(), "a=sendonly"))
	if res.StatusCode != sip.StatusOK {
		t.Fatalf("hold: %d", res.StatusCode)
	}
	if dir := direction1(ans.MediaDescriptions[0]); dir != "recvonly" {
		t.Errorf("hold answered a=%s, want recvonly", dir)
	}
	if ans.Origin.SessionID != c.answer.Origin.SessionID || ans.Origin.SessionVersion <= v0 {
		t.Errorf("origin %d/%d after %d/%d: a changed answer has the same session and a higher version (RFC 3264 §8)",
			ans.Origin.SessionID, ans.Origin.SessionVersion, c.answer.Origin.SessionID, v0)
	}
	// A held caller still reaches the flow.
	if code := c.info("application/dtmf", "2"); code != sip.StatusOK {
		t.Fatalf("INFO on hold: %d", code)
	}
	wantDigit(t, sc, '2', ivr.DTMFInfo)

	res, ans = c.reinvite(offerSDP(c.rtp.port(), "a=sendrecv"))
	if res.StatusCode != sip.StatusOK {
		t.Fatalf("resume: %d", res.StatusCode)
	}
	if dir := direction1(ans.MediaDescriptions[0]); dir != "sendrecv" {
		t.Errorf("resume answered a=%s, want sendrecv", dir)
	}
	c.rtp.event('4')
	wantDigit(t, sc, '4', ivr.DTMFRFC4733)
	select {
	case <-sc.ended:
		t.Fatalf("call ended: %v", sc.cause)
	default:
	}
	c.bye()
	if cause := sc.endCause(t); !errors.Is(cause, ivr.ErrCallerHangup) {
		t.Errorf("cause %v", cause)
	}
}

func TestReinviteInactiveSuspendsMediaTimeout(t *testing.T) {
	t.Parallel()
	ts := startServer(t, func(o *Options, _ *callee) { o.MediaTimeout = 500 * time.Millisecond })
	u := ts.newUAC(t)
	c, sc := answered(t, ts, u, "13900000009")
	res, ans := c.reinvite(offerSDP(c.rtp.port(), "a=inactive"))
	if res.StatusCode != sip.StatusOK {
		t.Fatalf("inactive: %d", res.StatusCode)
	}
	if dir := direction1(ans.MediaDescriptions[0]); dir != "inactive" {
		t.Errorf("answered a=%s, want inactive", dir)
	}
	select {
	case <-sc.ended:
		t.Fatalf("call ended while inactive: %v", sc.cause)
	case <-time.After(4 * ts.opts.MediaTimeout):
	}
	// Back to sendrecv, and still silent: now the timeout applies.
	if res, _ := c.reinvite(offerSDP(c.rtp.port())); res.StatusCode != sip.StatusOK {
		t.Fatalf("resume: %d", res.StatusCode)
	}
	if cause := sc.endCause(t); !errors.Is(cause, ivr.ErrMediaTimeout) {
		t.Fatalf("cause %v, want %v", cause, ivr.ErrMediaTimeout)
	}
	u.awaitBye(t)
}

func TestReinviteMovesMedia(t *testing.T) {
	ts := startServer(t, nil)
	u := ts.newUAC(t)
	c, sc := answered(t, ts, u, "13900000010")
	old := c.rtp
	moved := newRTPPeer(t)
	c.rtp = moved
	res, ans := c.reinvite(offerSDP(moved.port()))
	if res.StatusCode != sip.StatusOK {
		t.Fatalf("re-INVITE: %d", res.StatusCode)
	}
	if mediaAddr(t, ans) != old.to {
		t.Errorf("our media moved from %s to %s", old.to, mediaAddr(t, ans))
	}
	old.event('7')
	moved.event('8')
	wantDigit(t, sc, '8', ivr.DTMFRFC4733)

	// Our audio goes to the new address too.
	pb, err := sc.call.Play(context.Background(), ts.opts.Catalog.DefaultLang(), ts.opts.Catalog.IDs()[0])
	if err != nil {
		t.Fatal(err)
	}
	defer pb.Stop()
	if err := moved.conn.SetReadDeadline(time.Now().Add(waitFor)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	n, from, err := moved.conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("no RTP at the new address: %v", err)
	}
	if from != old.to || n != 12+media.FrameSamples {
		t.Errorf("%d bytes from %s", n, from)
	}
}

func TestReinviteWithAnotherCodecRefused(t *testing.T) {
	ts := startServer(t, nil)
	u := ts.newUAC(t)
	c, sc := answered(t, ts, u, "13900000011")
	res, _ := c.reinvite(offerFormats(c.rtp.port(), "8 101", "a=rtpmap:8 PCMA/8000", "a=rtpmap:101 telephone-event/8000"))
	if res.StatusCode != sip.StatusNotAcceptableHere {
		t.Fatalf("re-INVITE to PCMA: %d, want 488", res.StatusCode)
	}
	// RFC 3261 §14.2: a refused re-INVITE leaves the session as it was.
	c.rtp.event('6')
	wantDigit(t, sc, '6', ivr.DTMFRFC4733)
	if res, _ := c.reinvite(offerSDP(c.rtp.port(), "a=sendonly")); res.StatusCode != sip.StatusOK {
		t.Errorf("re-INVITE after a refused one: %d", res.StatusCode)
	}
	c.bye()
	if cause := sc.endCause(t); !errors.Is(cause, ivr.ErrCallerHangup) {
		t.Errorf("cause %v", cause)
	}
}

func TestCancelWhileRinging(t *testing.T) {
	ts := startServer(t, func(o *Options, _ *callee) { o.RingTime = 2 * time.Second })
	u := ts.newUAC(t)
	before := goleak.IgnoreCurrent()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	peer := newRTPPeer(t)
	dlg, err := u.invite(ctx, "13900000012", offerSDP(peer.port()))
	if err != nil {
		t.Fatal(err)
	}
	var codes []int
	err = dlg.WaitAnswer(ctx, sipgo.AnswerOptions{OnResponse: func(res *sip.Response) error {
		codes = append(codes, res.StatusCode)
		if res.StatusCode == sip.StatusRinging {
			cancel() // WaitAnswer sends CANCEL, wants its 200, then waits for the 487
		}
		return nil
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitAnswer: %v (responses %v)", err, codes)
	}
	if dlg.InviteResponse == nil || dlg.InviteResponse.StatusCode != sip.StatusRequestTerminated {
		t.Fatalf("final response %v, want 487 (responses %v)", dlg.InviteResponse, codes)
	}
	sc := ts.nextCall(t)
	if cause := sc.endCause(t); !errors.Is(cause, ivr.ErrCallerHangup) {
		t.Errorf("cause %v, want %v", cause, ivr.ErrCallerHangup)
	}
	if err := <-sc.answered; err == nil {
		t.Errorf("Answer succeeded on a cancelled call")
	}
	isClosed(t, sc.returned, "handler return")
	waitActive(t, ts, 0)
	if err := settled(leakWait, before); err != nil {
		t.Error(err)
	}
}

// A CANCEL that ends the INVITE transaction as the flow answers, before
// the call's own watch of the dialog has noticed, is still the caller
// hanging up, not a failed answer.
func TestCancelAsTheFlowAnswers(t *testing.T) {
	holding := make(chan struct{})
	ts := startServer(t, func(_ *Options, ce *callee) {
		ce.before = func(ctx context.Context, c ivr.Call) {
			sc := c.(*call)
			sc.stopWatch() // the watch is late
			close(holding)
			select {
			case <-sc.dlg.Context().Done():
			case <-time.After(waitFor):
			}
		}
	})
	u := ts.newUAC(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	peer := newRTPPeer(t)
	dlg, err := u.invite(ctx, "13900000013", offerSDP(peer.port()))
	if err != nil {
		t.Fatal(err)
	}
	err = dlg.WaitAnswer(ctx, sipgo.AnswerOptions{OnResponse: func(res *sip.Response) error {
		if res.IsProvisional() {
			<-holding
			cancel()
		}
		return nil
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitAnswer: %v", err)
	}
	sc := ts.nextCall(t)
	if err := recv(t, sc.answered, "answer"); !errors.Is(err, ivr.ErrCallerHangup) {
		t.Errorf("Answer: %v, want %v", err, ivr.ErrCallerHangup)
	}
	if cause := sc.endCause(t); !errors.Is(cause, ivr.ErrCallerHangup) {
		t.Errorf("cause %v, want %v", cause, ivr.ErrCallerHangup)
	}
	isClosed(t, sc.returned, "handler return")
	waitActive(t, ts, 0)
}

func TestHandlerPanics(t *testing.T) {
	ts := startServer(t, func(_ *Options, ce *callee) {
		ce.before = func(ctx context.Context, c ivr.Call) {
			switch c.Caller() {
			case "panic-before-answer":
				panic("flow bug before the answer")
			case "panic-after-answer":
				if err := c.Answer(ctx); err != nil {
					return
				}
				panic("flow bug after the answer")
			}
		}
	})
	u := ts.newUAC(t)

	t.Run("before the answer", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		dlg, err := u.invite(ctx, "panic-before-answer", offerSDP(4000))
		if err != nil {
			t.Fatal(err)
		}
		var de *sipgo.ErrDialogResponse
		if err := dlg.WaitAnswer(ctx, sipgo.AnswerOptions{}); !errors.As(err, &de) || de.Res.StatusCode != sip.StatusInternalServerError {
			t.Errorf("INVITE: %v, want 500", err)
		}
		isClosed(t, ts.nextCall(t).returned, "handler return")
	})
	t.Run("after the answer", func(t *testing.T) {
		u.call("panic-after-answer")
		u.awaitBye(t)
		isClosed(t, ts.nextCall(t).returned, "handler return")
	})
	waitActive(t, ts, 0)
	t.Run("next call", func(t *testing.T) {
		c, sc := answered(t, ts, u, "13900000013")
		c.rtp.event('5')
		wantDigit(t, sc, '5', ivr.DTMFRFC4733)
		c.bye()
		if cause := sc.endCause(t); !errors.Is(cause, ivr.ErrCallerHangup) {
			t.Errorf("cause %v", cause)
		}
	})
}

func TestMaxCalls(t *testing.T) {
	ts := startServer(t, func(o *Options, _ *callee) { o.MaxCalls = 2 })
	u := ts.newUAC(t)
	c1, sc1 := answered(t, ts, u, "13900000014")
	answered(t, ts, u, "13900000015")

	res := inviteStatus(t, u, offerSDP(4000))
	if res.StatusCode != sip.StatusServiceUnavailable || res.GetHeader("Retry-After") == nil {
		t.Fatalf("third call: %d %v, want 503 with Retry-After", res.StatusCode, res.GetHeader("Retry-After"))
	}
	noCallAtHandler(t, ts)

	c1.bye()
	sc1.endCause(t)
	waitActive(t, ts, 1)
	answered(t, ts, u, "13900000016")
}

// Simultaneous INVITEs must not get past the limit together.
func TestMaxCallsUnderConcurrentInvites(t *testing.T) {
	const limit, callers = 2, 8
	ts := startServer(t, func(o *Options, _ *callee) { o.MaxCalls = limit })
	u := ts.newUAC(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	codes := make(chan int, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			dlg, err := u.invite(ctx, fmt.Sprintf("1390000010%d", i), offerSDP(4000+2*i))
			if err != nil {
				codes <- -1
				return
			}
			err = dlg.WaitAnswer(ctx, sipgo.AnswerOptions{})
			var de *sipgo.ErrDialogResponse
			switch {
			case err == nil:
				_ = dlg.Ack(ctx)
				codes <- dlg.InviteResponse.StatusCode
			case errors.As(err, &de):
				codes <- de.Res.StatusCode
			default:
				codes <- -1
			}
		})
	}
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	if count[sip.StatusOK] != limit || count[sip.StatusServiceUnavailable] != callers-limit {
		t.Errorf("final responses %v, want %d × 200 and %d × 503", count, limit, callers-limit)
	}
}

func TestDrainAndEndAll(t *testing.T) {
	ts := startServer(t, nil)
	u := ts.newUAC(t)
	c1, sc1 := answered(t, ts, u, "13900000017")
	c2, sc2 := answered(t, ts, u, "13900000018")

	// Drain with a ctx already done returns at once, and draining has begun.
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if err := ts.Drain(done); !errors.Is(err, context.Canceled) {
		t.Fatalf("Drain with calls up: %v", err)
	}
	drained := make(chan error, 1)
	go func() { drained <- ts.Drain(context.Background()) }()

	if res := inviteStatus(t, u, offerSDP(4000)); res.StatusCode != sip.StatusServiceUnavailable {
		t.Errorf("INVITE while draining: %d, want 503", res.StatusCode)
	}
	raw := newRawPeer(t, ts.Addr())
	if code := raw.options(); code != sip.StatusServiceUnavailable {
		t.Errorf("OPTIONS while draining: %d, want 503", code)
	}
	noCallAtHandler(t, ts)

	// The calls in progress carry on.
	if code := c1.info("application/dtmf", "3"); code != sip.StatusOK {
		t.Errorf("INFO: %d", code)
	}
	wantDigit(t, sc1, '3', ivr.DTMFInfo)
	if res, _ := c2.reinvite(offerSDP(c2.rtp.port(), "a=sendonly")); res.StatusCode != sip.StatusOK {
		t.Errorf("re-INVITE while draining: %d", res.StatusCode)
	}
	c2.rtp.event('4')
	wantDigit(t, sc2, '4', ivr.DTMFRFC4733)
	select {
	case err := <-drained:
		t.Fatalf("Drain returned with calls up: %v", err)
	default:
	}

	errMaintenance := errors.New("node going down for maintenance")
	ts.EndAll(errMaintenance)
	for _, sc := range []*seenCall{sc1, sc2} {
		if cause := sc.endCause(t); !errors.Is(cause, errMaintenance) {
			t.Errorf("cause %v, want %v", cause, errMaintenance)
		}
		u.awaitBye(t)
	}
	if err := recv(t, drained, "Drain's return"); err != nil {
		t.Errorf("Drain: %v", err)
	}
}

func TestCallsLeaveNoGoroutines(t *testing.T) {
	ts := startServer(t, func(o *Options, _ *callee) { o.MediaTimeout = 500 * time.Millisecond })
	u := ts.newUAC(t)
	// One call first, so that whatever starts once per server is running.
	c, sc := answered(t, ts, u, "13900000019")
	c.bye()
	sc.endCause(t)
	waitActive(t, ts, 0)
	baseline := goleak.IgnoreCurrent()

	for _, tc := range []struct {
		name string
		call func(t *testing.T)
	}{
		{"caller hangs up", func(t *testing.T) {
			c, sc := answered(t, ts, u, "13900000020")
			c.rtp.event('1')
			sc.digit(t)
			c.bye()
			sc.endCause(t)
		}},
		{"flow hangs up", func(t *testing.T) {
			_, sc := answered(t, ts, u, "13900000021")
			close(sc.hangup)
			sc.endCause(t)
			u.awaitBye(t)
		}},
		{"media timeout", func(t *testing.T) {
			_, sc := answered(t, ts, u, "13900000022")
			sc.endCause(t)
			u.awaitBye(t)
		}},
		{"offer refused", func(t *testing.T) {
			inviteStatus(t, u, offerFormats(4000, "18", "a=rtpmap:18 G729/8000"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.call(t)
			waitActive(t, ts, 0)
			if err := settled(leakWait, baseline); err != nil {
				t.Error(err)
			}
		})
	}
}
