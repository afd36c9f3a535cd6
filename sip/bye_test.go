package sip

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/rs/zerolog"
)

// lineLog hands every log line to a channel, dropping lines nobody reads.
type lineLog chan string

func (l lineLog) Write(p []byte) (int, error) {
	select {
	case l <- string(p):
	default:
	}
	return len(p), nil
}

// readRequest reads the next request the peer gets, skipping responses.
func (r *rawPeer) readRequest(until time.Time) (*sip.Request, error) {
	if err := r.conn.SetReadDeadline(until); err != nil {
		return nil, err
	}
	buf := make([]byte, 65536)
	for {
		n, err := r.conn.Read(buf)
		if err != nil {
			return nil, err
		}
		msg, err := sip.ParseMessage(bytes.Clone(buf[:n]))
		if err != nil {
			return nil, fmt.Errorf("unparsable message: %w\n%s", err, buf[:n])
		}
		if req, ok := msg.(*sip.Request); ok {
			return req, nil
		}
	}
}

// A citizen's phone that never answers our BYE keeps getting it, as
// RFC 3261 §17.1.2.2 retransmits a non-INVITE request, until the BYE's
// timeout (Timer F by default), though the flow's Hangup gave up waiting
// for it long before; the BYE that went unanswered is logged.
func TestUnansweredByeIsRetransmittedAndLogged(t *testing.T) {
	t.Parallel()
	lines := make(lineLog, 256)
	ts := startServer(t, func(o *Options, ce *callee) {
		ce.hangupWithin = 300 * time.Millisecond
		o.ByeTimeout = 2 * time.Second
		o.Logger = zerolog.New(io.MultiWriter(newTestLog(t), lines)).Level(zerolog.InfoLevel)
	})
	peer := newRawPeer(t, ts.Addr())
	rtp := newRTPPeer(t)
	inv := newRawRequest("INVITE", "UDP", peer.addr(), ts.Addr()).set("Content-Type", "Content-Type: application/sdp")
	inv.body = string(offerSDP(rtp.port()))
	peer.send(inv.bytes())
	ok := peer.await(inv.branch)
	if ok.StatusCode != sip.StatusOK {
		t.Fatalf("INVITE: %d", ok.StatusCode)
	}
	ack := newRawRequest("ACK", "UDP", peer.addr(), ts.Addr())
	for _, h := range []string{"From", "Call-ID"} {
		for _, l := range inv.lines {
			if strings.HasPrefix(l, h+":") {
				ack.set(h, l)
			}
		}
	}
	ack.set("To", "To: "+ok.To().Value()).set("CSeq", "CSeq: 1 ACK")
	peer.send(ack.bytes())

	sc := ts.nextCall(t)
	if err := recv(t, sc.answered, "answer"); err != nil {
		t.Fatal(err)
	}
	close(sc.hangup)
	var byes []*sip.Request
	for {
		req, err := peer.readRequest(time.Now().Add(waitFor))
		if err != nil {
			break
		}
		if req.Method != sip.BYE {
			continue
		}
		byes = append(byes, req)
		if len(byes) == 3 {
			// Retransmitting is the BYE's business, not the call's: the
			// flow stopped waiting at 300 ms, the second retransmission
			// leaves at 1.5 s.
			select {
			case <-sc.returned:
			default:
				t.Errorf("the flow still waits for the BYE's answer after its Hangup's deadline")
			}
			break
		}
	}
	if len(byes) < 3 {
		t.Fatalf("%d BYEs, want the first and two retransmissions", len(byes))
	}
	branch, _ := byes[0].Via().Params.Get("branch")
	for _, b := range byes[1:] {
		if got, _ := b.Via().Params.Get("branch"); got != branch {
			t.Fatalf("BYE branch %s, want retransmissions of %s", got, branch)
		}
	}
	deadline := time.After(waitFor)
	for {
		select {
		case l := <-lines:
			if strings.Contains(l, `"message":"bye unanswered"`) && strings.Contains(l, `"to":"caller"`) {
				return
			}
		case <-deadline:
			t.Fatal(`no "bye unanswered" line logged`)
		}
	}
}
