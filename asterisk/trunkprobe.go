package asterisk

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/trunk"
)

// errOffline is a trunk whose endpoint Asterisk shows offline: its
// contact fails its qualify (OPTIONS), or it has none.
var errOffline = errors.New("asterisk shows the trunk's endpoint offline")

// Probe reads what Asterisk found of a trunk (trunk.Prober): Asterisk
// probes its trunks itself (the aor's qualify_frequency), and its
// endpoint's state says how that went. Online is a live probe, offline a
// failed one; unknown (no qualify) says nothing and is not recorded, and
// an endpoint Asterisk does not have is a failure. Maintenance (a carrier
// answering 503) cannot be told apart here: Asterisk counts any answer to
// its qualify as reachable (res_pjsip's pjsip_options.c), a 503 too, unless
// the aor has qualify_2xx_only, which makes a 503 offline.
func (b *Backend) Probe(ctx context.Context, t config.Trunk) trunk.Result {
	var e endpoint
	err := b.rest.do(ctx, http.MethodGet, "/endpoints/PJSIP/"+url.PathEscape(t.Endpoint), nil, nil, &e)
	var re *RESTError
	switch {
	case errors.As(err, &re) && re.Status == http.StatusNotFound:
		return trunk.Result{Err: fmt.Errorf("asterisk has no endpoint PJSIP/%s", t.Endpoint)}
	case err != nil:
		// Asterisk did not answer: that says nothing of the carrier.
		return trunk.Result{Err: fmt.Errorf("%w: %w", trunk.ErrNotProbed, err)}
	}
	switch e.State {
	case "online":
		return trunk.Result{Status: http.StatusOK}
	case "offline":
		return trunk.Result{Err: errOffline}
	}
	return trunk.Result{Err: fmt.Errorf("%w: endpoint PJSIP/%s is %q (no qualify)", trunk.ErrNotProbed, t.Endpoint, e.State)}
}
