package sip

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/hotline12345/hotline/config"
	// trunks, as the package's tests name an address trunk.
	trunks "github.com/hotline12345/hotline/trunk"
)

var _ trunks.Prober = (*Server)(nil)

// Probe sends an OPTIONS request to a carrier's trunk and reports its
// final response (trunks.Prober): to the trunk's host and port over its
// transport, Max-Forwards 70, from the hotline (the trunk's caller id, or
// "hotline"), until ctx ends (the probe's timeout). Over UDP it leaves
// from the port SIP listens on, the address the carrier knows the
// hotline by, which also keeps a NAT's binding for the carrier's calls
// open (RFC 5626 §3.5.2 keeps flows alive the same way). Before the
// server serves UDP, and once it stops, it sends nothing and says so
// (trunks.ErrNotProbed).
func (s *Server) Probe(ctx context.Context, t config.Trunk) trunks.Result {
	transport := strings.ToLower(t.Transport)
	if transport == "" {
		transport = "udp"
	}
	if s.draining.Load() || s.baseCtx.Err() != nil {
		return trunks.Result{Err: fmt.Errorf("%w: the SIP server is stopping", trunks.ErrNotProbed)}
	}
	recipient := sip.Uri{Scheme: "sip", Host: t.Host, Port: t.Port}
	if transport != "udp" {
		recipient.UriParams = sip.NewParams()
		recipient.UriParams.Add("transport", transport)
	}
	req := sip.NewRequest(sip.OPTIONS, recipient)
	req.SetTransport(strings.ToUpper(transport))
	req.SetDestination(t.Address())
	if transport == "udp" && s.udp != nil {
		if !slices.Contains(s.ua.TransportLayer().ListenPorts("udp"), int(s.addr.Port())) {
			return trunks.Result{Err: fmt.Errorf("%w: SIP is not served over UDP yet", trunks.ErrNotProbed)}
		}
		req.Laddr = s.udpLaddr()
	}
	user := t.CallerID
	if !isToken(user) {
		user = "hotline"
	}
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: s.mediaIP.String()}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", Host: t.Host, Port: t.Port}, Params: sip.NewParams()})
	maxForwards := sip.MaxForwardsHeader(70)
	req.AppendHeader(&maxForwards)
	req.AppendHeader(sip.NewHeader("Accept", "application/sdp"))
	req.SetBody(nil)

	start := time.Now()
	// A probe over TCP or TLS opens its connection when there is none.
	res, err := s.clientFor(transport).Do(mayDial(ctx), req)
	rtt := time.Since(start)
	switch {
	case err == nil:
		return trunks.Result{Status: res.StatusCode, RTT: rtt}
	case errors.Is(err, context.DeadlineExceeded), ctx.Err() != nil:
		return trunks.Result{Err: fmt.Errorf("no final response in %s", rtt.Round(time.Millisecond))}
	}
	return trunks.Result{Err: err}
}
