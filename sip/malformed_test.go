package sip

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/ivr"
)

// malformed is a message no conforming UA sends (in the spirit of RFC 4475)
// and what the server may do about it.
type malformed struct {
	name   string
	msg    []byte
	branch string // of the request, to match its reply; "" when it has none
	// replies are the status codes it may be answered with; 0 in the list
	// means it may also be dropped.
	replies []int
}

// malformedMessages builds the cases, as sent from from to to over UDP.
func malformedMessages(from, to netip.AddrPort) []malformed {
	req := func(method string) *rawRequest { return newRawRequest(method, "UDP", from, to) }
	var cases []malformed
	add := func(name string, r *rawRequest, replies ...int) {
		cases = append(cases, malformed{name: name, msg: r.bytes(), branch: r.branch, replies: replies})
	}
	addRaw := func(name string, msg []byte, replies ...int) {
		cases = append(cases, malformed{name: name, msg: msg, replies: replies})
	}

	addRaw("garbage", []byte("\x00\x01\x02 hello \xff\xfe this is not SIP\r\n\r\n"), 0)
	addRaw("empty datagram", []byte{}, 0)
	addRaw("keep-alive CRLF", []byte("\r\n\r\n"), 0) // RFC 5626 §3.5.1
	addRaw("start line only", []byte("INVITE sip:12345@"+to.String()+" SIP/2.0\r\n\r\n"), 0, 400)
	addRaw("bad start line", []byte("INVITE SIP/2.0\r\nVia: SIP/2.0/UDP "+from.String()+";branch=z9hG4bKx\r\n\r\n"), 0, 400)
	addRaw("unterminated header", []byte("OPTIONS sip:12345@"+to.String()+" SIP/2.0\r\nVia: SIP/2.0/UDP "+from.String()), 0)
	addRaw("response for no transaction", []byte("SIP/2.0 200 OK\r\n"+
		"Via: SIP/2.0/UDP "+to.String()+";branch=z9hG4bKnosuchtransaction\r\n"+
		"From: <sip:12345@"+to.Addr().String()+">;tag=a\r\nTo: <sip:1@"+from.Addr().String()+">;tag=b\r\n"+
		"Call-ID: no-such-call\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n"), 0)

	for _, method := range []string{"INVITE", "OPTIONS", "BYE", "INFO", "CANCEL"} {
		add(method+" without Call-ID", req(method).set("Call-ID", ""), 400)
		add(method+" with empty Call-ID", req(method).set("Call-ID", "Call-ID: "), 400, 0)
		add(method+" without From tag", req(method).set("From", "From: <sip:13900000000@"+from.Addr().String()+">"), 400)
		add(method+" without To", req(method).set("To", ""), 400)
		add(method+" without CSeq", req(method).set("CSeq", ""), 400)
		other := "OPTIONS"
		if method == "OPTIONS" {
			other = "INVITE"
		}
		add(method+" with CSeq "+other, req(method).set("CSeq", "CSeq: 1 "+other), 400)
	}
	add("ACK without Call-ID", req("ACK").set("Call-ID", ""), 0)
	add("INVITE with Max-Forwards 0", req("INVITE").set("Max-Forwards", "Max-Forwards: 0"), sip.StatusTooManyHops)
	add("BYE with Max-Forwards 0", req("BYE").set("Max-Forwards", "Max-Forwards: 0"), sip.StatusTooManyHops)
	add("OPTIONS with Max-Forwards 0", req("OPTIONS").set("Max-Forwards", "Max-Forwards: 0"), sip.StatusOK)
	add("INVITE without Via", req("INVITE").set("Via", ""), 0, 400)
	add("INVITE without Contact", req("INVITE").set("Contact", ""), 400)

	// RFC 4475 §3.1.2.7: a Content-Length larger than the message.
	longer := req("OPTIONS").set("Content-Length", "Content-Length: 9999")
	longer.body = "v=0\r\n"
	add("Content-Length larger than the body", longer, 400, 0)
	huge := req("OPTIONS").set("Content-Length", "Content-Length: 4294967296")
	add("Content-Length past 32 bits", huge, 400, 0)
	negative := req("OPTIONS").set("Content-Length", "Content-Length: -5")
	negative.body = "hello"
	add("negative Content-Length", negative, 400, 0)
	// RFC 3261 §18.3: over UDP the bytes past Content-Length are discarded
	// and the message is taken as it says.
	shorter := req("OPTIONS").set("Content-Length", "Content-Length: 0")
	shorter.body = "these bytes are past the Content-Length"
	add("body longer than Content-Length", shorter, sip.StatusOK)

	// The largest datagram loopback carries: more than sipgo reads, and more
	// than a SIP message may be.
	big := req("OPTIONS")
	big.lines = append(big.lines, "X-Padding: "+strings.Repeat("a", 65000-len(big.bytes())-20))
	add("64 KB datagram", big, 0, 400, sip.StatusMessageTooLarge)
	bigBody := req("INFO").set("Content-Type", "Content-Type: application/dtmf")
	bigBody.body = strings.Repeat("5", 64000)
	add("64 KB body", bigBody, 0, 400, sip.StatusMessageTooLarge, sip.StatusCallTransactionDoesNotExists)
	return cases
}

// TestMalformedUDP sends each malformed message over UDP and checks that
// it is answered as allowed or dropped, and that the server still answers
// OPTIONS right after.
func TestMalformedUDP(t *testing.T) {
	ts := startServer(t, nil)
	for i, tc := range malformedMessages(netip.AddrPort{}, ts.Addr()) {
		t.Run(tc.name, func(t *testing.T) {
			// A socket of its own: a late reply to an earlier case cannot
			// be taken for a reply to this one.
			raw := newRawPeer(t, ts.Addr())
			tc := malformedMessages(raw.addr(), ts.Addr())[i]
			raw.send(tc.msg)
			var got []int
			if tc.branch != "" && !slices.Contains(tc.replies, 0) {
				got = append(got, raw.await(tc.branch).StatusCode)
			}
			// An OPTIONS after it: its reply proves the server is up, and
			// every reply read meanwhile belongs to the malformed message.
			if code := raw.options(); code != sip.StatusOK {
				t.Fatalf("OPTIONS after it: %d", code)
			}
			for _, res := range raw.seen {
				got = append(got, res.StatusCode)
			}
			if len(got) > 1 {
				t.Errorf("replies %v, want at most one", got)
			}
			if len(got) == 0 {
				got = []int{0}
			}
			if !slices.Contains(tc.replies, got[0]) {
				t.Errorf("reply %d, want one of %v (0: dropped)", got[0], tc.replies)
			}
		})
	}
	noCallAtHandler(t, ts)
	if n := ts.ActiveCalls(); n != 0 {
		t.Errorf("%d calls active", n)
	}
	normalCall(t, ts)
}

// normalCaller is the caller of normalCall.
const normalCaller = "13900000099"

// normalCall checks that the server still completes a call: answer, a key,
// the caller's BYE.
func normalCall(t *testing.T, ts *testServer) {
	t.Helper()
	u := ts.newUAC(t)
	c, sc := answered(t, ts, u, normalCaller)
	c.rtp.event('5')
	wantDigit(t, sc, '5', ivr.DTMFRFC4733)
	c.bye()
	if cause := sc.endCause(t); !errors.Is(cause, ivr.ErrCallerHangup) {
		t.Errorf("cause %v", cause)
	}
}

// TestMalformedTCP: over a stream a message that cannot be framed leaves no
// boundary to find the next one at, so the server closes the connection;
// it answers what it can and keeps serving other connections.
func TestMalformedTCP(t *testing.T) {
	ts := startServer(t, nil)
	for _, tc := range []struct {
		name  string
		msg   func(p *tcpPeer) []byte
		codes []int // replies expected in order
		// close: the server closes the connection; codes are then the
		// replies that may come first.
		close bool
	}{
		{"OPTIONS", func(p *tcpPeer) []byte {
			return newRawRequest("OPTIONS", "TCP", p.addr(), ts.Addr()).bytes()
		}, []int{sip.StatusOK}, false},
		{"two requests in one write", func(p *tcpPeer) []byte {
			a := newRawRequest("OPTIONS", "TCP", p.addr(), ts.Addr()).bytes()
			b := newRawRequest("OPTIONS", "TCP", p.addr(), ts.Addr()).bytes()
			return append(a, b...)
		}, []int{sip.StatusOK, sip.StatusOK}, false},
		{"garbage", func(*tcpPeer) []byte {
			return []byte("\x00\x01 this is not SIP \xff\r\n\r\n")
		}, nil, true},
		{"no Content-Length", func(p *tcpPeer) []byte {
			r := newRawRequest("OPTIONS", "TCP", p.addr(), ts.Addr())
			return []byte(strings.Join(r.lines, "\r\n") + "\r\n\r\n")
		}, nil, true},
		{"body longer than Content-Length", func(p *tcpPeer) []byte {
			r := newRawRequest("OPTIONS", "TCP", p.addr(), ts.Addr()).set("Content-Length", "Content-Length: 0")
			r.body = "these bytes are not a message\r\n\r\n"
			return r.bytes()
		}, []int{sip.StatusOK}, true},
		{"INVITE with Max-Forwards 0", func(p *tcpPeer) []byte {
			return newRawRequest("INVITE", "TCP", p.addr(), ts.Addr()).set("Max-Forwards", "Max-Forwards: 0").bytes()
		}, []int{sip.StatusTooManyHops}, false},
		{"OPTIONS without From tag", func(p *tcpPeer) []byte {
			return newRawRequest("OPTIONS", "TCP", p.addr(), ts.Addr()).set("From", "From: <sip:1@127.0.0.1>").bytes()
		}, []int{sip.StatusBadRequest}, false},
		{"too large", func(p *tcpPeer) []byte {
			r := newRawRequest("OPTIONS", "TCP", p.addr(), ts.Addr())
			r.lines = append(r.lines, "X-Padding: "+strings.Repeat("a", 70000))
			return r.bytes()
		}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := dialTCP(t, ts.Addr())
			p.send(tc.msg(p))
			if tc.close {
				// A request framed before the bad bytes is handled, but its
				// reply may be lost with the connection.
				allowed := tc.codes
				for {
					res, err := p.reply()
					if errors.Is(err, io.EOF) {
						return
					}
					if err != nil {
						t.Fatalf("want the connection closed: %v", err)
					}
					if len(allowed) == 0 || res.StatusCode != allowed[0] {
						t.Fatalf("reply %d, want the connection closed", res.StatusCode)
					}
					allowed = allowed[1:]
				}
			}
			for _, want := range tc.codes {
				res, err := p.reply()
				if err != nil {
					t.Fatalf("reply: %v", err)
				}
				if res.StatusCode != want {
					t.Errorf("reply %d, want %d", res.StatusCode, want)
				}
			}
			// The connection still carries requests.
			p.send(newRawRequest("OPTIONS", "TCP", p.addr(), ts.Addr()).bytes())
			if res, err := p.reply(); err != nil || res.StatusCode != sip.StatusOK {
				t.Errorf("OPTIONS after it: %v %v", res, err)
			}
		})
	}
	raw := newRawPeer(t, ts.Addr())
	if code := raw.options(); code != sip.StatusOK {
		t.Fatalf("OPTIONS over UDP: %d", code)
	}
	normalCall(t, ts)
}

// FuzzServerMessage sends arbitrary bytes at a running server, over UDP and
// over a TCP connection, and checks that it still answers OPTIONS.
func FuzzServerMessage(f *testing.F) {
	from, to := netip.MustParseAddrPort("127.0.0.1:5999"), netip.MustParseAddrPort("127.0.0.1:5060")
	for _, tc := range malformedMessages(from, to) {
		if len(tc.msg) < 8192 {
			f.Add(tc.msg)
		}
	}
	f.Add(newRawRequest("OPTIONS", "UDP", from, to).bytes())

	// The server logs nowhere: f's methods may not be used while the fuzz
	// target runs.
	ts := startServer(f, func(o *Options, ce *callee) {
		o.Logger = zerolog.Nop()
		// A call the fuzzer makes is hung up at once: the flow is not
		// under test.
		ce.before = func(ctx context.Context, c ivr.Call) { _ = c.Hangup(ctx) }
	})
	f.Fuzz(func(t *testing.T, msg []byte) {
		// What comes back to the fuzzing socket is not checked: a reply
		// to a broken request may be broken too.
		newRawPeer(t, ts.Addr()).send(msg)
		if tcp, err := net.Dial("tcp", ts.Addr().String()); err == nil {
			_, _ = tcp.Write(msg)
			tcp.Close()
		}
		if code := newRawPeer(t, ts.Addr()).options(); code != sip.StatusOK {
			t.Fatalf("OPTIONS after %q: %d", msg, code)
		}
	})
}
