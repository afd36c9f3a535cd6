package sip

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/hotline12345/hotline/ivr"
)

// A call to a number the hotline does not serve is refused with 404
// before it is anything: no call, no slot, no media.
func TestNumbersNotServed(t *testing.T) {
	ts := startServer(t, func(o *Options, _ *callee) { o.Numbers = []string{"12345", "+86-10-12345"} })
	for _, tc := range []struct {
		uri    string
		status int
	}{
		{"sip:99999@127.0.0.1", sip.StatusNotFound},
		{"sip:1234@127.0.0.1", sip.StatusNotFound},
		{"sip:@127.0.0.1", sip.StatusNotFound},
		{"tel:110", sip.StatusNotFound},
		{"sip:12345@127.0.0.1", sip.StatusOK},
		{"tel:12345", sip.StatusOK},
		{"tel:+861012345", sip.StatusOK},
		{"sip:+86-10-12345@127.0.0.1;user=phone", sip.StatusOK},
	} {
		t.Run(tc.uri, func(t *testing.T) {
			raw := newRawPeer(t, ts.Addr())
			peer := newRTPPeer(t)
			req := newRawRequest("INVITE", "UDP", raw.addr(), ts.Addr())
			req.lines[0] = "INVITE " + tc.uri + " SIP/2.0"
			req.set("Content-Type", "Content-Type: application/sdp")
			req.body = string(offerSDP(peer.port()))
			if res := raw.invite(req); res.StatusCode != tc.status {
				t.Fatalf("%d %s, want %d", res.StatusCode, res.Reason, tc.status)
			}
			if tc.status != sip.StatusOK {
				noCallAtHandler(t, ts)
				if n := ts.ActiveCalls(); n != 0 {
					t.Errorf("%d calls active", n)
				}
				return
			}
			sc := ts.nextCall(t)
			if err := recv(t, sc.answered, "answer"); err != nil {
				t.Fatal(err)
			}
			if res := raw.bye(); res.StatusCode != sip.StatusOK {
				t.Errorf("BYE: %d", res.StatusCode)
			}
			sc.endCause(t)
		})
	}
}

// A caller whose Contact is not where its INVITE came from (a phone
// behind NAT, a proxy's other port) gets the hotline's BYE at the Contact
// from the port SIP listens on, the flow its INVITE opened, and the
// hotline opens no socket of its own for it.
func TestByeLeavesFromTheListeningPort(t *testing.T) {
	ts := startServer(t, nil)
	raw := newRawPeer(t, ts.Addr())
	contact := newRawPeer(t, ts.Addr())
	peer := newRTPPeer(t)
	req := newRawRequest("INVITE", "UDP", raw.addr(), ts.Addr())
	req.set("Contact", fmt.Sprintf("Contact: <sip:13900000000@%s>", contact.addr()))
	req.set("Content-Type", "Content-Type: application/sdp")
	req.body = string(offerSDP(peer.port()))
	if res := raw.invite(req); res.StatusCode != sip.StatusOK {
		t.Fatalf("%d %s", res.StatusCode, res.Reason)
	}
	sc := ts.nextCall(t)
	if err := recv(t, sc.answered, "answer"); err != nil {
		t.Fatal(err)
	}
	close(sc.hangup)

	if err := contact.conn.SetReadDeadline(time.Now().Add(waitFor)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65536)
	n, from, err := contact.conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("no BYE at the Contact: %v", err)
	}
	msg, err := sip.ParseMessage(bytes.Clone(buf[:n]))
	if err != nil {
		t.Fatal(err)
	}
	bye, ok := msg.(*sip.Request)
	if !ok || bye.Method != sip.BYE {
		t.Fatalf("at the Contact: %s", buf[:n])
	}
	if from != ts.Addr() {
		t.Errorf("BYE from %s, want the listening port %s", from, ts.Addr())
	}
	ok200 := sip.NewResponseFromRequest(bye, sip.StatusOK, "OK", nil)
	if _, err := contact.conn.WriteToUDPAddrPort([]byte(ok200.String()), from); err != nil {
		t.Fatal(err)
	}
	if cause := sc.endCause(t); !errors.Is(cause, ivr.ErrHangup) {
		t.Errorf("cause %v", cause)
	}
	waitActive(t, ts, 0)
}
