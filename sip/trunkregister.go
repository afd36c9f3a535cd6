package sip

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"
	"github.com/icholy/digest"

	"github.com/hotline12345/hotline/config"
	// trunks, as the package's tests name an address trunk.
	trunks "github.com/hotline12345/hotline/trunk"
)

var _ trunks.Registerer = (*TrunkRegisterer)(nil)

// TrunkRegisterer registers the hotline with carriers' trunks
// (trunks.Registerer): a REGISTER to the trunk's host and port over its
// transport, for sip:<username>@<host>, binding the server's Contact for
// that transport, from the SIP port as the probes leave it. Each trunk
// keeps one Call-ID and a rising CSeq across its registrations, as RFC
// 3261 §10.2 asks, so that the registrar tells a refresh from a
// registration out of order. It is safe for concurrent use.
type TrunkRegisterer struct {
	s *Server

	mu   sync.Mutex
	regs map[string]*trunkRegistration // by trunk
}

// trunkRegistration is what a trunk's registrations share.
type trunkRegistration struct {
	callID  string
	fromTag string
	cseq    uint32
}

// TrunkRegisterer returns the server's registrar client for trunks. Use
// one per server: it holds the trunks' Call-IDs.
func (s *Server) TrunkRegisterer() trunks.Registerer {
	return &TrunkRegisterer{s: s, regs: map[string]*trunkRegistration{}}
}

// next returns the trunk's Call-ID, From tag and the CSeq of its next
// request.
func (r *TrunkRegisterer) next(name string) (string, string, uint32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	reg := r.regs[name]
	if reg == nil {
		reg = &trunkRegistration{callID: uuid.NewString(), fromTag: sip.GenerateTagN(16), cseq: 0}
		r.regs[name] = reg
	}
	reg.cseq++
	return reg.callID, reg.fromTag, reg.cseq
}

// Register registers with the trunk t for expiry (0 removes the
// registration), answering a digest challenge (401 or 407) once with the
// trunk's credentials (RFC 3261 §22.2); a second challenge means that the
// credentials were refused. The result's Expires is what the registrar
// granted our Contact. Before the server serves the trunk's transport,
// and once it stopped, it sends nothing and says so (trunks.ErrNotSent).
func (r *TrunkRegisterer) Register(ctx context.Context, t config.Trunk, expiry time.Duration) trunks.RegisterResult {
	s := r.s
	transport := strings.ToLower(t.Transport)
	if transport == "" {
		transport = "udp"
	}
	if s.baseCtx.Err() != nil {
		return trunks.RegisterResult{Err: fmt.Errorf("%w: the SIP server stopped", trunks.ErrNotSent)}
	}
	contact, ok := s.contacts[transport]
	if !ok || !s.has(transport) {
		return trunks.RegisterResult{Err: fmt.Errorf("SIP is not served over %s here: the carrier could not reach the Contact", transport)}
	}
	if transport == "udp" && !slices.Contains(s.ua.TransportLayer().ListenPorts("udp"), int(s.addr.Port())) {
		return trunks.RegisterResult{Err: fmt.Errorf("%w: SIP is not served over UDP yet", trunks.ErrNotSent)}
	}
	start := time.Now()
	// A registration over TCP opens its connection when there is none.
	ctx = mayDial(ctx)
	req := r.request(t, transport, contact, expiry)
	res, err := s.clientFor(transport).Do(ctx, req)
	if err == nil && (res.StatusCode == sip.StatusUnauthorized || res.StatusCode == sip.StatusProxyAuthRequired) {
		var auth *sip.Request
		if auth, err = r.answer(t, transport, contact, expiry, res); err == nil {
			res, err = s.clientFor(transport).Do(ctx, auth)
			if err == nil && (res.StatusCode == sip.StatusUnauthorized || res.StatusCode == sip.StatusProxyAuthRequired) {
				return trunks.RegisterResult{Status: res.StatusCode, Err: fmt.Errorf("the carrier refused the credentials of %q (%d)", t.Username, res.StatusCode)}
			}
		}
	}
	switch {
	case err == nil:
	case errors.Is(err, context.DeadlineExceeded), ctx.Err() != nil:
		return trunks.RegisterResult{Err: fmt.Errorf("no final response in %s", time.Since(start).Round(time.Millisecond))}
	default:
		return trunks.RegisterResult{Err: err}
	}
	out := trunks.RegisterResult{Status: res.StatusCode}
	switch {
	case res.IsSuccess():
		out.Expires = granted(res, contact.Address)
	case res.StatusCode == sip.StatusServiceUnavailable:
		if h := res.GetHeader("Retry-After"); h != nil {
			// Retry-After: 120 (comment);duration=... : the seconds lead.
			v, _, _ := strings.Cut(strings.TrimSpace(h.Value()), " ")
			v, _, _ = strings.Cut(v, ";")
			if secs, err := strconv.Atoi(v); err == nil && secs > 0 {
				out.RetryAfter = time.Duration(secs) * time.Second
			}
		}
	}
	return out
}

// request is a REGISTER of the trunk t binding contact for expiry.
func (r *TrunkRegisterer) request(t config.Trunk, transport string, contact *sip.ContactHeader, expiry time.Duration) *sip.Request {
	s := r.s
	recipient := sip.Uri{Scheme: "sip", Host: t.Host, Port: t.Port}
	if transport != "udp" {
		recipient.UriParams = sip.NewParams()
		recipient.UriParams.Add("transport", transport)
	}
	req := sip.NewRequest(sip.REGISTER, recipient)
	req.SetTransport(strings.ToUpper(transport))
	req.SetDestination(t.Address())
	if transport == "udp" {
		req.Laddr = s.udpLaddr()
	}
	callID, tag, cseq := r.next(t.Name)
	aor := sip.Uri{Scheme: "sip", User: t.Username, Host: t.Host}
	from := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
	from.Params.Add("tag", tag)
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: aor, Params: sip.NewParams()})
	id := sip.CallIDHeader(callID)
	req.AppendHeader(&id)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: sip.REGISTER})
	maxForwards := sip.MaxForwardsHeader(70)
	req.AppendHeader(&maxForwards)
	c := contact.Clone()
	req.AppendHeader(c)
	exp := sip.ExpiresHeader(uint32(expiry / time.Second))
	req.AppendHeader(&exp)
	req.SetBody(nil)
	return req
}

// answer is the REGISTER again, with the credentials that the challenge
// res asks for (Authorization for a 401, Proxy-Authorization for a 407).
func (r *TrunkRegisterer) answer(t config.Trunk, transport string, contact *sip.ContactHeader, expiry time.Duration, res *sip.Response) (*sip.Request, error) {
	ask, give := "WWW-Authenticate", "Authorization"
	if res.StatusCode == sip.StatusProxyAuthRequired {
		ask, give = "Proxy-Authenticate", "Proxy-Authorization"
	}
	h := res.GetHeader(ask)
	if h == nil {
		return nil, fmt.Errorf("challenged (%d) without %s", res.StatusCode, ask)
	}
	chal, err := digest.ParseChallenge(h.Value())
	if err != nil {
		return nil, fmt.Errorf("challenge %q: %w", h.Value(), err)
	}
	// Some carriers write the algorithm in lower case.
	chal.Algorithm = strings.ToUpper(chal.Algorithm)
	req := r.request(t, transport, contact, expiry)
	cred, err := digest.Digest(chal, digest.Options{Method: "REGISTER", URI: req.Recipient.String(), Username: t.Username, Password: t.Password, Count: 1})
	if err != nil {
		return nil, fmt.Errorf("answering the challenge: %w", err)
	}
	req.AppendHeader(sip.NewHeader(give, cred.String()))
	return req, nil
}

// granted is the registration a 200 grants the Contact ours: its expires
// parameter, else the response's Expires (RFC 3261 §10.2.4); 0 when it
// says neither.
func granted(res *sip.Response, ours sip.Uri) time.Duration {
	for _, h := range res.GetHeaders("Contact") {
		c, ok := h.(*sip.ContactHeader)
		if !ok || c.Address.Host != ours.Host || c.Address.Port != ours.Port {
			continue
		}
		if v, ok := c.Params.Get("expires"); ok {
			if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
				return time.Duration(secs) * time.Second
			}
		}
	}
	if h := res.GetHeader("Expires"); h != nil {
		if secs, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil && secs >= 0 {
			return time.Duration(secs) * time.Second
		}
	}
	return 0
}
