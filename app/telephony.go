package app

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/asterisk"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/media"
	"github.com/hotline12345/hotline/prompts"
	"github.com/hotline12345/hotline/web"
)

// telephony is a backend as Run drives it: it answers citizens' calls
// into the runner and reaches agents for the service flow.
type telephony interface {
	ivr.Connector
	Run(ctx context.Context) error
	// Drain stops taking calls and waits for those in progress to end.
	Drain(ctx context.Context) error
	ActiveCalls() int
}

// backend is the configured telephony backend with what Run needs besides.
type backend struct {
	telephony
	sipAddr    netip.AddrPort // the embedded server's; zero on Asterisk
	sipTLSAddr netip.AddrPort // the embedded server's over TLS; zero without
	checks     []web.Check    // added to /healthz
	// run runs what the backend needs besides itself until ctx ends.
	extra func(ctx context.Context)
}

// endpointPoll is how often agents' endpoints are read from Asterisk.
const endpointPoll = 5 * time.Second

func newBackend(cfg config.Config, catalog *prompts.Catalog, pacer *media.Pacer, incoming func(context.Context, ivr.Call), agents *agentsPart, certs *certificates, reg prometheus.Registerer, log zerolog.Logger) (*backend, error) {
	switch cfg.Backend {
	case "asterisk":
		b, err := asterisk.New(asterisk.Options{
			URL:          cfg.ARI.URL,
			Username:     cfg.ARI.Username,
			Password:     cfg.ARI.Password,
			Application:  cfg.ARI.Application,
			ReconnectMin: time.Duration(cfg.ARI.ReconnectMin),
			ReconnectMax: time.Duration(cfg.ARI.ReconnectMax),
			PingInterval: time.Duration(cfg.ARI.PingInterval),
			PingTimeout:  time.Duration(cfg.ARI.PingTimeout),
			Catalog:      catalog,
			Handler:      incoming,
			Logger:       log,
			Metrics:      reg,
		})
		if err != nil {
			return nil, err
		}
		bySIPUser := func(ctx context.Context) (map[string]string, error) {
			list, err := agents.store.Agents(ctx)
			if err != nil {
				return nil, err
			}
			m := make(map[string]string, len(list))
			for _, a := range list {
				m[a.SIPUser] = a.ID
			}
			return m, nil
		}
		dir := directory{store: agents.store, dist: agents.dist}
		return &backend{
			telephony: b,
			checks:    []web.Check{{Name: "asterisk", Check: func(context.Context) error { return b.Healthy() }}},
			extra: func(ctx context.Context) {
				b.WatchEndpoints(ctx, "PJSIP", bySIPUser, dir, endpointPoll)
			},
		}, nil
	case "sip":
		s, err := newSIP(cfg, catalog, pacer, incoming, agents.registrar, certs, log)
		if err != nil {
			return nil, err
		}
		registerAdmission(reg, s)
		return &backend{telephony: s, sipAddr: s.Addr(), sipTLSAddr: s.TLSAddr()}, nil
	}
	return nil, fmt.Errorf("backend %q: want sip or asterisk", cfg.Backend)
}
