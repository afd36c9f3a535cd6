package sip

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/hotline12345/hotline/ivr"
)

// refused sends req over UDP and returns its final response, which must
// not come from a call: the handler sees none.
func refused(t *testing.T, ts *testServer, req *rawRequest) *sip.Response {
	t.Helper()
	raw := newRawPeer(t, ts.Addr())
	req.lines[1] += ";rport"
	raw.send(req.bytes())
	res := raw.await(req.branch)
	noCallAtHandler(t, ts)
	return res
}

func TestVersionNotSupported(t *testing.T) {
	ts := startServer(t, nil)
	for _, method := range []string{"OPTIONS", "INVITE"} {
		t.Run(method, func(t *testing.T) {
			req := newRawRequest(method, "UDP", netip0, ts.Addr())
			req.lines[0] = strings.Replace(req.lines[0], "SIP/2.0", "SIP/7.0", 1)
			res := refused(t, ts, req)
			if res.StatusCode != sip.StatusVersionNotSupported || res.SipVersion != "SIP/2.0" {
				t.Errorf("%s %d %s, want SIP/2.0 505", res.SipVersion, res.StatusCode, res.Reason)
			}
		})
	}
}

func TestUnsupportedURIScheme(t *testing.T) {
	ts := startServer(t, nil)
	for _, uri := range []string{"mailto:12345@example.com", "http://example.com/12345", "urn:service:sos"} {
		t.Run(uri, func(t *testing.T) {
			req := newRawRequest("INVITE", "UDP", netip0, ts.Addr())
			req.lines[0] = "INVITE " + uri + " SIP/2.0"
			req.set("Content-Type", "Content-Type: application/sdp")
			req.body = string(offerSDP(4000))
			if res := refused(t, ts, req); res.StatusCode != statusUnsupportedURIScheme {
				t.Errorf("%d %s, want 416", res.StatusCode, res.Reason)
			}
		})
	}
}

// A trunk may send the number dialled as a tel URI (RFC 3966): it is a
// call to that number, visual separators and parameters aside.
func TestTelURIIsANumber(t *testing.T) {
	ts := startServer(t, nil)
	for uri, want := range map[string]string{
		"tel:12345":                            "12345",
		"tel:+86-10-1234-5678;phone-context=x": "+861012345678",
	} {
		t.Run(uri, func(t *testing.T) {
			raw := newRawPeer(t, ts.Addr())
			peer := newRTPPeer(t)
			req := newRawRequest("INVITE", "UDP", raw.addr(), ts.Addr())
			req.lines[0] = "INVITE " + uri + " SIP/2.0"
			req.set("Content-Type", "Content-Type: application/sdp")
			req.body = string(offerSDP(peer.port()))
			if res := raw.invite(req); res.StatusCode != sip.StatusOK {
				t.Fatalf("INVITE: %d", res.StatusCode)
			}
			sc := ts.nextCall(t)
			if err := recv(t, sc.answered, "answer"); err != nil {
				t.Fatal(err)
			}
			if got := sc.call.Dialled(); got != want {
				t.Errorf("dialled %q, want %q", got, want)
			}
			if res := raw.bye(); res.StatusCode != sip.StatusOK {
				t.Errorf("BYE: %d", res.StatusCode)
			}
			if cause := sc.endCause(t); !errors.Is(cause, ivr.ErrCallerHangup) {
				t.Errorf("cause %v", cause)
			}
		})
	}
}

// A request that requires an option this server does not support is
// refused with the options named (RFC 3261 §8.2.2.3); none is supported.
func TestRequireUnsupportedOption(t *testing.T) {
	ts := startServer(t, nil)
	for _, tc := range []struct {
		method  string
		require []string
		want    string
	}{
		{"OPTIONS", []string{"foo"}, "foo"},
		{"INVITE", []string{"100rel, timer"}, "100rel, timer"},
		{"INVITE", []string{"precondition", "sec-agree"}, "precondition, sec-agree"},
		{"BYE", []string{"foo"}, "foo"},
	} {
		t.Run(tc.method+" "+strings.Join(tc.require, " "), func(t *testing.T) {
			req := newRawRequest(tc.method, "UDP", netip0, ts.Addr())
			for _, r := range tc.require {
				req.lines = append(req.lines, "Require: "+r)
			}
			if tc.method == "INVITE" {
				req.set("Content-Type", "Content-Type: application/sdp")
				req.body = string(offerSDP(4000))
			}
			res := refused(t, ts, req)
			if res.StatusCode != sip.StatusBadExtension {
				t.Fatalf("%d %s, want 420", res.StatusCode, res.Reason)
			}
			if h := res.GetHeader("Unsupported"); h == nil || h.Value() != tc.want {
				t.Errorf("Unsupported: %v, want %q", h, tc.want)
			}
		})
	}
	// Proxy-Require is for proxies (§20.29): a UAS ignores it.
	req := newRawRequest("OPTIONS", "UDP", netip0, ts.Addr())
	req.lines = append(req.lines, "Proxy-Require: foo")
	if res := refused(t, ts, req); res.StatusCode != sip.StatusOK {
		t.Errorf("OPTIONS with Proxy-Require: %d", res.StatusCode)
	}
}

// A method the server does not recognise gets 501; one it recognises but
// does not take gets 405 (RFC 3261 §8.2.1); both list the methods it
// takes.
func TestMethods(t *testing.T) {
	ts := startServer(t, nil)
	for _, tc := range []struct {
		method string
		status int
	}{
		{"FOO", sip.StatusNotImplemented},
		{"NEWMETHOD", sip.StatusNotImplemented},
		{"invite", sip.StatusNotImplemented}, // methods are case-sensitive (§7.1)
		{"SUBSCRIBE", sip.StatusMethodNotAllowed},
		{"MESSAGE", sip.StatusMethodNotAllowed},
		{"REFER", sip.StatusMethodNotAllowed},
		{"UPDATE", sip.StatusMethodNotAllowed},
		{"REGISTER", sip.StatusMethodNotAllowed}, // no registrar here
	} {
		t.Run(tc.method, func(t *testing.T) {
			res := refused(t, ts, newRawRequest(tc.method, "UDP", netip0, ts.Addr()))
			if res.StatusCode != tc.status {
				t.Errorf("%d %s, want %d", res.StatusCode, res.Reason, tc.status)
			}
			allow := res.GetHeader("Allow")
			if allow == nil {
				t.Fatal("no Allow")
			}
			listed := strings.Split(strings.ReplaceAll(allow.Value(), " ", ""), ",")
			if !slices.Contains(listed, "INVITE") || slices.Contains(listed, tc.method) {
				t.Errorf("Allow: %s", allow.Value())
			}
		})
	}
}

// An INVITE's body must be SDP, and what it accepts must include SDP, as
// every 200 of ours carries it.
func TestInviteBodies(t *testing.T) {
	ts := startServer(t, nil)
	for _, tc := range []struct {
		name   string
		edit   func(r *rawRequest)
		status int
	}{
		{"a body that is not SDP", func(r *rawRequest) {
			r.set("Content-Type", "Content-Type: application/xml")
			r.body = "<offer/>"
		}, sip.StatusUnsupportedMediaType},
		{"SDP inside multipart", func(r *rawRequest) {
			r.set("Content-Type", "Content-Type: multipart/mixed;boundary=x")
			r.body = "--x\r\nContent-Type: application/sdp\r\n\r\n" + string(offerSDP(4000)) + "--x--\r\n"
		}, sip.StatusUnsupportedMediaType},
		{"a body without Content-Type", func(r *rawRequest) { r.body = string(offerSDP(4000)) }, sip.StatusBadRequest},
		{"Accept without SDP", func(r *rawRequest) {
			r.set("Content-Type", "Content-Type: application/sdp")
			r.body = string(offerSDP(4000))
			r.lines = append(r.lines, "Accept: text/plain")
		}, sip.StatusNotAcceptable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := newRawRequest("INVITE", "UDP", netip0, ts.Addr())
			tc.edit(req)
			res := refused(t, ts, req)
			if res.StatusCode != tc.status {
				t.Errorf("%d %s, want %d", res.StatusCode, res.Reason, tc.status)
			}
			if tc.status == sip.StatusUnsupportedMediaType {
				if h := res.GetHeader("Accept"); h == nil || h.Value() != "application/sdp" {
					t.Errorf("Accept: %v", h)
				}
			}
		})
	}
	t.Run("Accept with SDP among others", func(t *testing.T) {
		ts := startServer(t, func(_ *Options, ce *callee) {
			ce.before = func(ctx context.Context, c ivr.Call) { _ = c.Hangup(ctx) }
		})
		req := newRawRequest("INVITE", "UDP", netip0, ts.Addr())
		req.set("Content-Type", "Content-Type: application/sdp")
		req.body = string(offerSDP(4000))
		req.lines = append(req.lines, "Accept: text/plain, application/SDP;level=1")
		req.lines[1] += ";rport"
		if res := newRawPeer(t, ts.Addr()).invite(req); res.StatusCode != sip.StatusTemporarilyUnavailable {
			t.Errorf("%d, want the call's 480", res.StatusCode)
		}
		isClosed(t, ts.nextCall(t).returned, "handler return")
	})
}

// netip0 stands for a sender the Via names; the test asks for the
// response at its source port (rport) instead.
var netip0 = netip.MustParseAddrPort("127.0.0.1:5")
