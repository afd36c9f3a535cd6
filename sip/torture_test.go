package sip

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/hotline12345/hotline/ivr"
)

// tortureDir is sipgo's copy of the RFC 4475 torture messages.
func tortureDir(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/emiago/sipgo").Output()
	if err != nil {
		t.Fatalf("finding sipgo's module: %v", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "sip", "testdata", "torture")
}

// torture is what the server does with one torture message sent to it
// over UDP.
type torture struct {
	file string // under the corpus, without .dat
	// status is the final response; 0: none, the message is dropped (it
	// cannot be parsed, or is a response to nothing).
	status int
	// call: the request reaches the call handler (which hangs up at once:
	// the final response is then 480).
	call bool
	// check looks further at the response.
	check func(t *testing.T, res *sip.Response)
}

// hasHeader checks a header's value.
func hasHeader(name, want string) func(t *testing.T, res *sip.Response) {
	return func(t *testing.T, res *sip.Response) {
		t.Helper()
		if h := res.GetHeader(name); h == nil || h.Value() != want {
			t.Errorf("%s: %v, want %q", name, h, want)
		}
	}
}

// saysWhy checks that a 400's reason phrase names the problem.
func saysWhy(t *testing.T, res *sip.Response) {
	t.Helper()
	if !strings.HasPrefix(res.Reason, "Bad Request - ") {
		t.Errorf("reason phrase %q does not say what is wrong", res.Reason)
	}
}

// tortures is every message of the corpus with what RFC 4475 asks of a
// UAS that is not a registrar (§3.3.7: REGISTER gets 405). Where the RFC
// leaves a choice, the comment says which was taken.
var tortures = []torture{
	// §3.1.1: valid messages.
	{file: "valid/wsinv", status: sip.StatusCallTransactionDoesNotExists},       // its To has a tag: a dialog this server has not
	{file: "valid/intmeth", status: sip.StatusNotImplemented},                   // an unknown method, case and all
	{file: "valid/esc01", status: sip.StatusTemporarilyUnavailable, call: true}, // escaped characters are still a call
	{file: "valid/escnull", status: sip.StatusMethodNotAllowed},
	{file: "valid/esc02", status: sip.StatusNotImplemented}, // RE%47IST%45R is not REGISTER
	{file: "valid/lwsdisp", status: sip.StatusOK},
	{file: "valid/longreq", status: sip.StatusTemporarilyUnavailable, call: true}, // a 2.5 KB answer over UDP
	{file: "valid/dblreq", status: sip.StatusMethodNotAllowed},                    // the REGISTER; the INVITE after its Content-Length is discarded
	{file: "valid/semiuri", status: sip.StatusOK},
	{file: "valid/transports", status: sip.StatusOK},
	{file: "valid/mpart01", status: sip.StatusMethodNotAllowed, check: func(t *testing.T, res *sip.Response) {
		if res.GetHeader("Allow") == nil {
			t.Error("405 without Allow")
		}
	}},
	{file: "valid/unreason"}, // a response to nothing
	{file: "valid/noreason"},
	// §3.1.2: invalid messages. Those sipgo's parser refuses are dropped:
	// nothing of them can be trusted to answer to.
	{file: "invalid/badinv01"},
	{file: "invalid/clerr"},
	{file: "invalid/scalar02"},
	{file: "invalid/scalarlg"},
	{file: "invalid/quotbal"},
	{file: "invalid/ltgtruri"},
	{file: "invalid/lwsruri"},
	{file: "invalid/lwsstart"},
	{file: "invalid/trws"},
	{file: "invalid/escruri", status: sip.StatusBadRequest, check: saysWhy},
	{file: "invalid/baddate", status: sip.StatusTemporarilyUnavailable, call: true}, // taken as if it had no Date, as §3.1.2.12 allows a UAS
	{file: "invalid/regbadct", status: sip.StatusMethodNotAllowed},
	{file: "invalid/badaspec"},
	{file: "invalid/baddn"},
	{file: "invalid/badvers", status: sip.StatusVersionNotSupported, check: func(t *testing.T, res *sip.Response) {
		if res.SipVersion != "SIP/2.0" {
			t.Errorf("answered in %s", res.SipVersion)
		}
	}},
	{file: "invalid/mismatch01", status: sip.StatusBadRequest, check: saysWhy},
	{file: "invalid/mismatch02", status: sip.StatusNotImplemented}, // §3.1.2.16 prefers 501 to 400
	{file: "invalid/bigcode"},
	// §3.2: transaction layer.
	{file: "invalid/badbranch", status: sip.StatusOK}, // §3.2.1's other choice: RFC 2543 matching, as sipgo falls back to
	// §3.3: application layer.
	{file: "invalid/insuf", status: sip.StatusBadRequest, check: func(t *testing.T, res *sip.Response) {
		if res.Reason != "Bad Request - missing From, To, Call-ID" {
			t.Errorf("reason phrase %q", res.Reason)
		}
	}},
	{file: "invalid/unkscm", status: statusUnsupportedURIScheme},
	{file: "invalid/novelsc"}, // sipgo cannot parse its Request-URI; 416 would do
	{file: "invalid/unksm2", status: sip.StatusMethodNotAllowed},
	{file: "invalid/bext01", status: sip.StatusBadExtension, check: hasHeader("Unsupported", "nothingSupportsThis, nothingSupportsThisEither")},
	{file: "invalid/invut", status: sip.StatusUnsupportedMediaType, check: hasHeader("Accept", "application/sdp")},
	{file: "invalid/regaut01", status: sip.StatusMethodNotAllowed},
	{file: "invalid/multi01", status: sip.StatusBadRequest, check: saysWhy},
	{file: "invalid/mcl01", status: sip.StatusBadRequest, check: saysWhy},
	{file: "invalid/bcast"}, // a response to nothing
	{file: "invalid/zeromf", status: sip.StatusOK},
	{file: "invalid/cparam01", status: sip.StatusMethodNotAllowed},
	{file: "invalid/cparam02", status: sip.StatusMethodNotAllowed},
	{file: "invalid/regescrt", status: sip.StatusMethodNotAllowed},
	{file: "invalid/sdp01", status: sip.StatusNotAcceptable},
	// §3.4: backward compatibility. RFC 2543 allowed no From tag; RFC
	// 3261 needs one to tell dialogs apart, and this INVITE has no
	// Contact either (§8.1.1.8).
	// sipgo's transaction layer cannot match it (RFC 2543 matching needs
	// the From tag) and answers it alone: 400 without a reason phrase.
	{file: "invalid/inv2543", status: sip.StatusBadRequest},
	// Not from RFC 4475.
	{file: "invalid/test"},
	{file: "invalid/ncl"},
}

// withRport asks for the response at the source port (RFC 3581) in the
// top Via, whose sent-by names a host of the RFC's examples: the reply
// then comes back to the test's socket.
func withRport(msg []byte) []byte {
	lines := bytes.Split(msg, []byte("\r\n"))
	for i := 1; i < len(lines) && len(lines[i]) > 0; i++ {
		name, _, ok := bytes.Cut(lines[i], []byte(":"))
		if !ok {
			continue
		}
		if n := strings.ToLower(strings.TrimSpace(string(name))); n != "via" && n != "v" {
			continue
		}
		end := i
		for end+1 < len(lines) && len(lines[end+1]) > 0 && (lines[end+1][0] == ' ' || lines[end+1][0] == '\t') {
			end++
		}
		if !bytes.Contains(bytes.ToLower(bytes.Join(lines[i:end+1], nil)), []byte("rport")) {
			lines[end] = append(bytes.Clone(lines[end]), ";rport"...)
		}
		break
	}
	return bytes.Join(lines, []byte("\r\n"))
}

// TestTorture sends every RFC 4475 message of sipgo's corpus to a running
// server over UDP and checks what it does with each.
func TestTorture(t *testing.T) {
	t.Parallel()
	dir := tortureDir(t)
	files, err := filepath.Glob(filepath.Join(dir, "*", "*.dat"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no torture messages in %s: %v", dir, err)
	}
	known := map[string]bool{}
	for _, tc := range tortures {
		known[tc.file] = true
	}
	for _, f := range files {
		rel, _ := filepath.Rel(dir, f)
		if name := strings.TrimSuffix(rel, ".dat"); !known[name] {
			t.Errorf("%s has no expected outcome", name)
		}
	}

	for _, tc := range tortures {
		t.Run(tc.file, func(t *testing.T) {
			// A server of its own: the corpus reuses branches and sent-by
			// hosts, and a transaction left from another message (RFC 3261
			// §17.2.3 matches on those) would take this one for its
			// retransmission.
			ts := startServer(t, func(_ *Options, ce *callee) {
				ce.before = func(ctx context.Context, c ivr.Call) {
					if c.Caller() != normalCaller {
						_ = c.Hangup(ctx)
					}
				}
			})
			msg, err := os.ReadFile(filepath.Join(dir, tc.file+".dat"))
			if err != nil {
				t.Fatal(err)
			}
			raw := newRawPeer(t, ts.Addr())
			msg = withRport(msg)
			raw.send(msg)
			if tc.status == 0 {
				// The OPTIONS after it is answered; nothing else may be.
				if code := raw.options(); code != sip.StatusOK {
					t.Fatalf("OPTIONS after it: %d", code)
				}
				for _, res := range raw.seen {
					t.Errorf("answered %d %s, want it dropped", res.StatusCode, res.Reason)
				}
				noCallAtHandler(t, ts)
				return
			}
			parsed, err := sip.NewParser().ParseSIP(msg)
			if err != nil {
				t.Fatalf("sipgo cannot parse it, yet an answer is expected: %v", err)
			}
			req := parsed.(*sip.Request)
			res := raw.awaitCSeq(req.CSeq().Value())
			if req.IsInvite() && res.StatusCode >= 300 {
				raw.ack(req, res)
			}
			if res.StatusCode != tc.status {
				t.Errorf("answered %d %s, want %d", res.StatusCode, res.Reason, tc.status)
			}
			if tc.check != nil {
				tc.check(t, res)
			}
			if tc.call {
				isClosed(t, ts.nextCall(t).returned, "handler return")
			} else {
				noCallAtHandler(t, ts)
			}
			waitActive(t, ts, 0)
			// The server still takes calls.
			normalCall(t, ts)
		})
	}
}

// ack acknowledges a final response to an INVITE sent raw. The ACK of a
// failure has the request's top Via, as it was (RFC 3261 §17.1.1.3);
// that of a 200 is a request of its own in the dialog (§13.2.2.4).
func (r *rawPeer) ack(req *sip.Request, res *sip.Response) {
	r.t.Helper()
	if res.IsSuccess() {
		r.send([]byte(rawInDialog(sip.ACK, req, res).String()))
		return
	}
	ack := sip.NewRequest(sip.ACK, req.Recipient)
	ack.AppendHeader(sip.HeaderClone(req.Via()))
	if h := res.From(); h != nil {
		ack.AppendHeader(sip.HeaderClone(h))
	}
	if h := res.To(); h != nil {
		ack.AppendHeader(sip.HeaderClone(h))
	}
	if h := res.CallID(); h != nil {
		ack.AppendHeader(sip.HeaderClone(h))
	}
	ack.AppendHeader(&sip.CSeqHeader{SeqNo: req.CSeq().SeqNo, MethodName: sip.ACK})
	ack.AppendHeader(sip.NewHeader("Max-Forwards", "70"))
	ack.SetBody(nil)
	r.send([]byte(ack.String()))
}

// rawInDialog is a request in the dialog a 200 to invite opened: to the
// response's Contact, with its To, a Via of its own asking for rport.
// Requests other than ACK take the next CSeq.
func rawInDialog(method sip.RequestMethod, invite *sip.Request, ok *sip.Response) *sip.Request {
	req := sip.NewRequest(method, ok.Contact().Address)
	via := sip.HeaderClone(invite.Via()).(*sip.ViaHeader)
	via.Params = sip.NewParams()
	via.Params.Add("branch", sip.GenerateBranch())
	via.Params.Add("rport", "")
	req.AppendHeader(via)
	req.AppendHeader(sip.HeaderClone(invite.From()))
	req.AppendHeader(sip.HeaderClone(ok.To()))
	req.AppendHeader(sip.HeaderClone(invite.CallID()))
	seq := invite.CSeq().SeqNo
	if method != sip.ACK {
		seq++
	}
	req.AppendHeader(&sip.CSeqHeader{SeqNo: seq, MethodName: method})
	req.AppendHeader(sip.NewHeader("Max-Forwards", "70"))
	req.SetBody(nil)
	return req
}

// invite sends an INVITE made raw and returns its final response, which
// it acknowledges.
func (r *rawPeer) invite(req *rawRequest) *sip.Response {
	r.t.Helper()
	b := req.bytes()
	msg, err := sip.ParseMessage(bytes.Clone(b))
	if err != nil {
		r.t.Fatal(err)
	}
	r.send(b)
	res := r.await(req.branch)
	r.ack(msg.(*sip.Request), res)
	r.invites = append(r.invites, msg.(*sip.Request))
	r.answers = append(r.answers, res)
	return res
}

// bye hangs up the last call invite answered.
func (r *rawPeer) bye() *sip.Response {
	r.t.Helper()
	invite, ok := r.invites[len(r.invites)-1], r.answers[len(r.answers)-1]
	bye := rawInDialog(sip.BYE, invite, ok)
	r.send([]byte(bye.String()))
	branch, _ := bye.Via().Params.Get("branch")
	return r.await(branch)
}

// awaitCSeq reads replies until the final one with the CSeq cseq.
func (r *rawPeer) awaitCSeq(cseq string) *sip.Response {
	r.t.Helper()
	return r.awaitFinal(cseq, func(res *sip.Response) bool {
		return res.CSeq() != nil && res.CSeq().Value() == cseq
	})
}
