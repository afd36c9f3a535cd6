package sip

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"

	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/media"
)

// lateOffer sends an INVITE without SDP and waits for the 200, whose SDP
// is our offer.
func (u *uac) lateOffer(caller string) *sipgo.DialogClientSession {
	t := u.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	d := sipgo.DialogUA{Client: u.client, ContactHDR: u.contact}
	dlg, err := d.Invite(ctx, u.uri("12345"), nil, u.from(caller))
	if err != nil {
		t.Fatal(err)
	}
	if err := dlg.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		t.Fatalf("INVITE without SDP: %v", err)
	}
	return dlg
}

// ackWith sends the ACK with body as the answer (nil: no body).
func ackWith(t *testing.T, dlg *sipgo.DialogClientSession, body []byte) {
	t.Helper()
	ack := sip.NewRequest(sip.ACK, dlg.InviteResponse.Contact().Address)
	if body != nil {
		ack.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		ack.SetBody(body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := dlg.WriteAck(ctx, ack); err != nil {
		t.Fatal(err)
	}
}

// A late offer (RFC 3261 §13.2.1): the INVITE has no SDP, our offer goes
// in the 200, the caller's answer in the ACK, and the call has audio both
// ways in the codec the answer chose.
func TestLateOffer(t *testing.T) {
	ts := startServer(t, nil)
	u := ts.newUAC(t)
	dlg := u.lateOffer("13900000030")
	sc := ts.nextCall(t)

	ours := parseSDP(t, dlg.InviteResponse.Body())
	md := ours.MediaDescriptions[0]
	if got := md.MediaName.Formats; len(got) != 3 || got[0] != "0" || got[1] != "8" || got[2] != "101" {
		t.Errorf("offer formats %v, want [0 8 101]: our codecs in order, then telephone-event", got)
	}
	if dir := direction1(md); dir != "sendrecv" {
		t.Errorf("offer a=%s", dir)
	}
	select {
	case err := <-sc.answered:
		t.Fatalf("Answer returned before the ACK: %v", err)
	default:
	}

	peer := newRTPPeer(t)
	peer.pt = 8
	ackWith(t, dlg, offerFormats(peer.port(), "8 101", "a=rtpmap:8 PCMA/8000", "a=rtpmap:101 telephone-event/8000"))
	if err := recv(t, sc.answered, "answer"); err != nil {
		t.Fatalf("Answer: %v", err)
	}
	peer.to = mediaAddr(t, ours)
	if got := sc.call.mediaStream().Codec().Name; got != "PCMA" {
		t.Errorf("codec %s, want PCMA, the answer's", got)
	}

	// Our audio reaches the address the answer named, in its codec.
	cat := ts.opts.Catalog
	prompt, err := cat.Get(cat.IDs()[0], cat.DefaultLang())
	if err != nil {
		t.Fatal(err)
	}
	pb, err := sc.call.Play(context.Background(), prompt.Lang, prompt.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer pb.Stop()
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
	if pkt.PayloadType != 8 || !bytes.Equal(pkt.Payload, media.PCMA.Encode(nil, prompt.PCM[:media.FrameSamples])) {
		t.Errorf("payload type %d, want the prompt in PCMA (8)", pkt.PayloadType)
	}
	// The caller's audio and keys reach the flow.
	peer.tone(media.PCMA, '7')
	wantDigit(t, sc, '7', ivr.DTMFInband)
	peer.event('5')
	wantDigit(t, sc, '5', ivr.DTMFRFC4733)

	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := dlg.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	if cause := sc.endCause(t); !errors.Is(cause, ivr.ErrCallerHangup) {
		t.Errorf("cause %v", cause)
	}
}

// An ACK without a usable answer leaves a confirmed dialog without media:
// the call ends with our BYE.
func TestLateOfferWithoutAnswer(t *testing.T) {
	ts := startServer(t, nil)
	u := ts.newUAC(t)
	for _, tc := range []struct {
		name   string
		answer []byte
	}{
		{"no body", nil},
		{"a codec we did not offer", offerFormats(4000, "18", "a=rtpmap:18 G729/8000")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dlg := u.lateOffer("13900000031")
			sc := ts.nextCall(t)
			ackWith(t, dlg, tc.answer)
			if err := recv(t, sc.answered, "answer"); !errors.Is(err, errNoAnswer) {
				t.Errorf("Answer: %v, want %v", err, errNoAnswer)
			}
			u.awaitBye(t)
			sc.endCause(t)
			waitActive(t, ts, 0)
		})
	}
}
