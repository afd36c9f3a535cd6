package sip

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"go.uber.org/goleak"

	"github.com/hotline12345/hotline/ivr"
)

// A 200 never acknowledged ends the call with ivr.ErrNoAck when the ACK's
// wait is over, and its media port is free as it ends. No BYE goes to the
// Contact of a caller who never showed up.
func TestNoAck(t *testing.T) {
	ts := startServer(t, func(o *Options, _ *callee) { o.AckTimeout = 300 * time.Millisecond })
	u := ts.newUAC(t)
	baseline := goleak.IgnoreCurrent()
	for _, late := range []bool{false, true} {
		name := "offer in the INVITE"
		if late {
			name = "late offer"
		}
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			var dlg *sipgo.DialogClientSession
			if late {
				dlg = u.lateOffer("13900000040")
			} else {
				var err error
				if dlg, err = u.invite(ctx, "13900000040", offerSDP(newRTPPeer(t).port())); err != nil {
					t.Fatal(err)
				}
				if err := dlg.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			// No ACK.
			port := mediaAddr(t, parseSDP(t, dlg.InviteResponse.Body())).Port()
			sc := ts.nextCall(t)
			start := time.Now()
			if err := recv(t, sc.answered, "answer"); !errors.Is(err, ivr.ErrNoAck) {
				t.Fatalf("Answer: %v, want %v", err, ivr.ErrNoAck)
			}
			if waited := time.Since(start); waited > ts.opts.AckTimeout+time.Second {
				t.Errorf("Answer returned %s after the 200", waited)
			}
			// The media port is free as the answer fails.
			conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)))
			if err != nil {
				t.Errorf("the call's RTP port %d is still taken: %v", port, err)
			} else {
				conn.Close()
			}
			if cause := sc.endCause(t); !errors.Is(cause, ivr.ErrNoAck) {
				t.Errorf("cause %v, want %v", cause, ivr.ErrNoAck)
			}
			waitActive(t, ts, 0)
			select {
			case bye := <-u.byes:
				t.Errorf("a BYE was sent: %s", bye.StartLine())
			case <-time.After(200 * time.Millisecond):
			}
		})
	}
	// sipgo stops sending the 200 at its next retransmission (T2, 4 s).
	if err := settled(leakWait, baseline); err != nil {
		t.Error(err)
	}
}
