package agentua

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// registerAll registers (or, with expires 0, unregisters) every agent,
// Options.Parallel at a time, and returns every failure joined.
func (f *Fleet) registerAll(ctx context.Context, expires time.Duration) error {
	sem := make(chan struct{}, f.opts.Parallel)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, a := range f.agents {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return errors.Join(append(errs, context.Cause(ctx))...)
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := f.register(ctx, a, expires); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// register sends one REGISTER for a and answers the registrar's digest
// challenge with the agent's password (RFC 3261 §22.2). Expires 0 removes
// the phone's binding (§10.2.2).
func (f *Fleet) register(ctx context.Context, a *agent, expires time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, registerTimeout)
	defer cancel()
	registrar := sip.Uri{Scheme: "sip", Host: f.opts.Registrar.Addr().String(), Port: int(f.opts.Registrar.Port())}
	// The address of record is the agent's user at the registrar's
	// domain; the Request-URI names the domain alone (§10.2).
	aor := sip.Uri{Scheme: "sip", User: a.User, Host: registrar.Host}
	req := sip.NewRequest(sip.REGISTER, registrar)
	req.SetTransport("UDP")
	req.SetDestination(f.opts.Registrar.String())
	from := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
	from.Params.Add("tag", a.tag)
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: aor, Params: sip.NewParams()})
	callID := sip.CallIDHeader(a.callID)
	req.AppendHeader(&callID)
	a.cseq++
	req.AppendHeader(&sip.CSeqHeader{SeqNo: a.cseq, MethodName: sip.REGISTER})
	req.AppendHeader(&a.contact)
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(int(expires/time.Second))))

	res, err := f.client.Do(ctx, req)
	if err == nil && (res.StatusCode == sip.StatusUnauthorized || res.StatusCode == sip.StatusProxyAuthRequired) {
		res, err = f.client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: a.User, Password: a.Password})
		// DoDigestAuth sent the request again with the next CSeq.
		if cseq := req.CSeq(); cseq != nil {
			a.cseq = cseq.SeqNo
		}
	}
	if err != nil {
		return &RegisterError{User: a.User, Err: err}
	}
	if !res.IsSuccess() {
		return &RegisterError{User: a.User, Status: res.StatusCode, Err: ErrRefused}
	}
	return nil
}

// refresh registers every agent again when half the lifetime has passed,
// so that no binding lapses while the fleet runs.
func (f *Fleet) refresh() {
	tick := time.NewTicker(f.opts.Expires / 2)
	defer tick.Stop()
	for {
		select {
		case <-f.ctx.Done():
			return
		case <-tick.C:
		}
		if err := f.registerAll(f.ctx, f.opts.Expires); err != nil && f.ctx.Err() == nil {
			f.log.Warn().Err(err).Msg("agentua: refreshing registrations")
		}
	}
}
