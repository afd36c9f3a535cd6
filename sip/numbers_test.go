package sip

import (
	"testing"

	"github.com/emiago/sipgo/sip"
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
