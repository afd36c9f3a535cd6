package app

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/internal/webhook"
	"github.com/hotline12345/hotline/live"
	"github.com/hotline12345/hotline/sip"
	"github.com/hotline12345/hotline/trunk"
)

// runTrunks keeps this node's part of the trunks' shared view: its
// channels renewed while their calls last and, when the backend probes
// trunks (the embedded SIP server does) and trunks are configured, their
// health watched (one node at a time probes each) and its events
// delivered to the ops webhook, and the trunks with register: true
// registered with their carriers (one node at a time registers each).
// Every node exports the metrics. The returned funcs stop it:
// unregister stops the registrations, removing them at the carriers, and
// is called while the backend still runs; stop stops the rest.
func runTrunks(cfg config.Config, rdb redis.UniversalClient, tel *backend, lease *acd.NodeLease, feed *live.Feed, reg prometheus.Registerer, log zerolog.Logger) (trunks *trunk.Trunks, unregister, stop func()) {
	trunks = trunk.New(rdb, trunk.Options{Trunks: cfg.Trunks, Location: cfg.Location()})
	reg.MustRegister(trunks)
	regCtx, stopRegistering := context.WithCancel(context.Background())
	var regs sync.WaitGroup
	unregister = func() {
		stopRegistering()
		regs.Wait()
	}
	if slices.ContainsFunc(cfg.Trunks, func(t config.Trunk) bool { return t.Register }) {
		if b, ok := tel.telephony.(interface{ TrunkRegisterer() trunk.Registerer }); ok {
			registrar := trunk.NewRegistrar(trunks, trunk.RegistrarOptions{
				Owner: lease.Instance(), Node: lease.Name(), Registerer: b.TrunkRegisterer(), Jitter: 0.2, Log: log,
			})
			reg.MustRegister(registrar)
			regs.Go(func() { registrar.Run(regCtx) })
		} else {
			log.Info().Str("backend", cfg.Backend).Msg("trunk: the backend does not register with carriers (register: true): the registration stays not_registering")
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { trunks.Run(ctx) })
	prober, probes := tel.telephony.(trunk.Prober)
	switch {
	case len(cfg.Trunks) == 0:
	case !probes:
		log.Info().Str("backend", cfg.Backend).Msg("trunk: the backend does not probe trunks: their state stays unknown")
	default:
		deliveries := prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hotline_ops_webhook_events_total",
			Help: "Trunk events through the ops webhook on this node, by outcome: delivered, refused (a 4xx), given_up (retried too long), unreadable.",
		}, []string{"outcome"})
		for _, o := range []string{webhook.Delivered, webhook.Refused, webhook.GivenUp, webhook.Unreadable} {
			deliveries.WithLabelValues(o)
		}
		monitor := trunk.NewMonitor(trunks, trunk.MonitorOptions{
			Owner:  lease.Instance(),
			Node:   lease.Name(),
			Prober: prober,
			Webhook: webhook.Options{
				URL: cfg.Ops.WebhookURL, Secret: cfg.Ops.WebhookSecret,
				Done: func(_, outcome string) { deliveries.WithLabelValues(outcome).Inc() },
			},
			Log:     log,
			OnEvent: func(trunk.Transition) { feed.Publish(live.Trunks) },
		})
		reg.MustRegister(monitor, deliveries)
		wg.Go(func() { monitor.Run(ctx) })
	}
	return trunks, unregister, func() {
		unregister()
		cancel()
		wg.Wait()
	}
}

// seizeIncoming takes one of a trunk's channels for each call coming in on
// it: a trunk whose channels are all in use (on whichever nodes) is
// refused the call. When Redis does not answer the call is taken without
// a channel: a caller is never refused for the store's sake.
func seizeIncoming(trunks *trunk.Trunks, log zerolog.Logger) sip.SeizeFunc {
	return func(ctx context.Context, name string) (func(bool), error) {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		ch, err := trunks.Acquire(ctx, name, trunk.In)
		if errors.Is(err, trunk.ErrFull) {
			return nil, err
		}
		if err != nil {
			log.Warn().Err(err).Str("trunk", name).Msg("trunk: a call taken without counting its channel")
			return func(bool) {}, nil
		}
		return func(answered bool) {
			ctx := context.Background()
			if answered {
				_ = ch.Answered(ctx)
			}
			_ = ch.Release(ctx, trunk.OutcomeUnanswered)
		}, nil
	}
}
