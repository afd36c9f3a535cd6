package sip

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// A request goes through the checks of RFC 3261 §8.2 before its handler
// sees it, in the RFC's order: the method (§8.2.1), the header fields the
// server relies on (§8.2.2), the Request-URI's scheme (§8.2.2.1), the
// extensions it requires (§8.2.2.3). sipgo's parser is lenient and lets
// many malformed messages through (RFC 4475's torture messages), so each
// is checked here rather than trusted.

// refusal is a request refused before its handler: the response that
// says why.
type refusal struct {
	code    int
	reason  string
	headers []sip.Header
}

func (r *refusal) Error() string { return fmt.Sprintf("%d %s", r.code, r.reason) }

// badRequest is a 400 whose reason phrase says what is wrong (RFC 3261
// §21.4.1: "the reason phrase SHOULD identify the syntax problem").
func badRequest(format string, args ...any) *refusal {
	return &refusal{code: sip.StatusBadRequest, reason: "Bad Request - " + fmt.Sprintf(format, args...)}
}

// statusUnsupportedURIScheme is 416 (RFC 3261 §21.4.14), which sipgo
// names after HTTP's 416.
const statusUnsupportedURIScheme = 416

// sipVersion is the only version spoken.
const sipVersion = "SIP/2.0"

// methods are the methods of RFC 3261 and its extensions this server
// recognises. Those it takes have handlers; the others get 405 with Allow
// (§8.2.1), and a method it does not recognise gets 501 (§21.5.2).
var methods = []sip.RequestMethod{
	sip.INVITE, sip.ACK, sip.CANCEL, sip.BYE, sip.OPTIONS, sip.REGISTER, sip.INFO,
	sip.PRACK, sip.SUBSCRIBE, sip.NOTIFY, sip.PUBLISH, sip.REFER, sip.MESSAGE, sip.UPDATE,
}

// check returns why req cannot be handled, nil when it can. An ACK is
// never answered; what check finds wrong with one drops it.
func (s *Server) check(req *sip.Request) *refusal {
	if req.SipVersion != sipVersion {
		return &refusal{code: sip.StatusVersionNotSupported, reason: "Version Not Supported"}
	}
	if !recognised(req) {
		return &refusal{code: sip.StatusNotImplemented, reason: "Not Implemented", headers: []sip.Header{s.allow()}}
	}
	if err := validate(req); err != nil {
		var r *refusal
		if errors.As(err, &r) {
			return r
		}
		return badRequest("%s", err)
	}
	if scheme := strings.ToLower(req.Recipient.Scheme); scheme != "sip" && scheme != "sips" && scheme != "tel" {
		return &refusal{code: statusUnsupportedURIScheme, reason: "Unsupported URI Scheme"}
	}
	if req.Method != sip.ACK && req.Method != sip.CANCEL {
		// No extension is supported, so any option a request requires is
		// one too many (§8.2.2.3); Proxy-Require is a proxy's business.
		var tags []string
		for _, h := range req.GetHeaders("Require") {
			for tag := range strings.SplitSeq(h.Value(), ",") {
				if tag = strings.TrimSpace(tag); tag != "" {
					tags = append(tags, tag)
				}
			}
		}
		if len(tags) > 0 {
			return &refusal{code: sip.StatusBadExtension, reason: "Bad Extension",
				headers: []sip.Header{sip.NewHeader("Unsupported", strings.Join(tags, ", "))}}
		}
	}
	return nil
}

// recognised reports whether req's method is one of methods. Methods are
// case-sensitive (§7.1), but sipgo upper-cases the request line's: a
// CSeq naming the method in another case shows what the request line
// said ("invite" is no INVITE).
func recognised(req *sip.Request) bool {
	if !slices.Contains(methods, req.Method) {
		return false
	}
	if cseq := req.CSeq(); cseq != nil && cseq.MethodName != req.Method && strings.EqualFold(string(cseq.MethodName), string(req.Method)) {
		return false
	}
	return true
}

// singleHeaders are the header fields a request may carry once (RFC 3261
// §7.3.1 allows repeats only of comma-separated lists).
var singleHeaders = []string{"From", "To", "Call-ID", "CSeq", "Max-Forwards", "Content-Length", "Content-Type"}

// validate checks what this server relies on.
func validate(req *sip.Request) error {
	var missing []string
	for _, h := range []struct {
		name    string
		present bool
	}{
		{"From", req.From() != nil},
		{"To", req.To() != nil},
		{"Call-ID", req.CallID() != nil && req.CallID().Value() != ""},
		{"CSeq", req.CSeq() != nil},
		{"Via", req.Via() != nil},
	} {
		if !h.present {
			missing = append(missing, h.name)
		}
	}
	if len(missing) > 0 {
		return badRequest("missing %s", strings.Join(missing, ", "))
	}
	for _, name := range singleHeaders {
		if n := len(req.GetHeaders(name)); n > 1 {
			// RFC 4475 §3.3.8, §3.3.9: which one counts cannot be known.
			return badRequest("%d %s header fields", n, name)
		}
	}
	if req.CSeq().MethodName != req.Method {
		return badRequest("CSeq method %s does not match %s", req.CSeq().MethodName, req.Method)
	}
	if _, ok := tag(req.From().Params); !ok {
		return badRequest("missing From tag")
	}
	if h := req.Recipient.Headers; h != nil && h.Length() > 0 {
		// §19.1.5: headers in a URI are for building a request, never in
		// a Request-URI (RFC 4475 §3.1.2.11).
		return badRequest("Request-URI with headers")
	}
	// A request that has used up its hops is refused as a proxy would
	// (RFC 3261 §16.3 item 3), so a loop in the routing in front of us
	// ends here; OPTIONS is answered, as that rule allows, since probing a
	// next hop's reachability is what such an OPTIONS is for.
	if mf := req.MaxForwards(); mf != nil && mf.Val() == 0 && req.Method != sip.OPTIONS {
		return errTooManyHops
	}
	return nil
}

var errTooManyHops = &refusal{code: sip.StatusTooManyHops, reason: "Too Many Hops"}

// tag is the tag parameter of a From or To (its name is
// case-insensitive, RFC 3261 §7.3.1).
func tag(params sip.HeaderParams) (string, bool) {
	for _, kv := range params {
		if strings.EqualFold(kv.K, "tag") {
			return kv.V, kv.V != ""
		}
	}
	return "", false
}

// reject answers req with the refusal err is, or with 400 and err's text.
func reject(tx sip.ServerTransaction, req *sip.Request, err error) {
	var r *refusal
	if !errors.As(err, &r) {
		r = badRequest("%s", err)
	}
	refuse(tx, req, r)
}

// refuse answers req with r, always in SIP/2.0 (a request in another
// version gets its 505 in ours, §8.2.1 and §21.5.6).
func refuse(tx sip.ServerTransaction, req *sip.Request, r *refusal) {
	res := sip.NewResponseFromRequest(req, r.code, r.reason, nil)
	res.SipVersion = sipVersion
	for _, h := range r.headers {
		res.AppendHeader(h)
	}
	_ = tx.Respond(res)
}
