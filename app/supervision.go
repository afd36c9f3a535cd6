package app

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/internal/webhook"
)

// urgeRules are the configured urge rules by stage.
func urgeRules(cfg config.Config) map[string]appeal.UrgeRule {
	rule := func(u config.UrgeSetting) appeal.UrgeRule {
		return appeal.UrgeRule{Left: float64(u.LeftPercent) / 100, MinLead: time.Duration(u.MinLead)}
	}
	u := cfg.Supervision.Urge
	return map[string]appeal.UrgeRule{
		appeal.StageDispatch: rule(u.Dispatch), appeal.StageSign: rule(u.Sign), appeal.StageFeedback: rule(u.Feedback),
	}
}

// runClocks runs this node's clock engine (every node runs one; each
// event fires once, on one of them), its metrics and the supervision
// webhook. The returned func stops it.
func runClocks(cfg config.Config, appeals *appeal.Store, lease *acd.NodeLease, now func() time.Time, reg prometheus.Registerer, log zerolog.Logger) func() {
	fired := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hotline_appeal_events_total",
		Help: "Appeal clock events fired by this node, by kind: urge (before a deadline), overdue (at a deadline not met), expired (the processing time limit ran out).",
	}, []string{"kind"})
	for _, k := range []appeal.ClockKind{appeal.Urge, appeal.Overdue, appeal.Expired} {
		fired.WithLabelValues(string(k))
	}
	lag := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "hotline_clock_lag_seconds",
		Help:    "How long after it was due an appeal clock event fired, on this node.",
		Buckets: []float64{.05, .1, .25, .5, 1, 2, 5, 10, 30, 60, 300, 3600},
	})
	deliveries := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hotline_supervision_webhook_events_total",
		Help: "Appeal clock events through the supervision webhook on this node, by outcome: delivered, refused (a 4xx), given_up (retried too long), unreadable.",
	}, []string{"outcome"})
	for _, o := range []string{webhook.Delivered, webhook.Refused, webhook.GivenUp, webhook.Unreadable} {
		deliveries.WithLabelValues(o)
	}
	reg.MustRegister(fired, lag, deliveries, &appealsCollector{appeals: appeals, log: log})
	engine := appeal.NewEngine(appeals, appeal.EngineOptions{
		Node:      lease.Name(),
		Now:       now,
		LateAfter: time.Duration(cfg.Supervision.LateAfter),
		Fired: func(ev appeal.ClockEvent) {
			fired.WithLabelValues(string(ev.Kind)).Inc()
			lag.Observe(ev.FiredAt.Sub(ev.Due).Seconds())
		},
		Webhook: webhook.Options{
			URL: cfg.Supervision.WebhookURL, Secret: cfg.Supervision.WebhookSecret,
			Done: func(_, outcome string) { deliveries.WithLabelValues(outcome).Inc() },
		},
		Consumer: lease.Instance(),
		Log:      log,
	})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		engine.Run(ctx)
	}()
	return func() {
		stop()
		<-done
	}
}

// appealsCollector exports the appeals by state and category and the
// clock events to come, read from Redis at each scrape.
type appealsCollector struct {
	appeals *appeal.Store
	log     zerolog.Logger
}

var (
	appealsDesc = prometheus.NewDesc("hotline_appeals", "Appeals by state and category (the synthetic probe's left out), from Redis: the same on every node.",
		[]string{"state", "category"}, nil)
	timersDesc = prometheus.NewDesc("hotline_appeal_clock_events_pending", "Appeal clock events still to fire, from Redis.", nil, nil)
	behindDesc = prometheus.NewDesc("hotline_appeal_clock_behind_seconds", "How long the earliest appeal clock event still to fire has been due (0 when none is due yet).", nil, nil)
)

func (c *appealsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- appealsDesc
	ch <- timersDesc
	ch <- behindDesc
}

func (c *appealsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	counts, err := c.appeals.Counts(ctx)
	if err != nil {
		c.log.Warn().Err(err).Msg("metrics: appeals by state")
		return
	}
	for _, st := range appeal.States() {
		for _, cat := range appeal.Categories() {
			ch <- prometheus.MustNewConstMetric(appealsDesc, prometheus.GaugeValue, float64(counts[st][cat]), string(st), string(cat))
		}
	}
	n, first, err := c.appeals.Pending(ctx)
	if err != nil {
		c.log.Warn().Err(err).Msg("metrics: appeal clock events")
		return
	}
	ch <- prometheus.MustNewConstMetric(timersDesc, prometheus.GaugeValue, float64(n))
	behind := 0.0
	if !first.IsZero() && time.Since(first) > 0 {
		behind = time.Since(first).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(behindDesc, prometheus.GaugeValue, behind)
}

// purgeAppeals removes, now and every interval, the synthetic probe's
// appeals older than probeRetention (the calls' own) and the closed
// appeals older than retention, so that neither grows without end: the
// probe calls every few minutes, and every call that reaches intake makes
// an appeal. Every node runs it; a purge already done finds nothing.
func purgeAppeals(ctx context.Context, appeals *appeal.Store, probeRetention, retention time.Duration, now func() time.Time, interval time.Duration, log zerolog.Logger) {
	if now == nil {
		now = time.Now
	}
	const batch = 500
	purges := []struct {
		what   string
		keep   time.Duration
		delete func(ctx context.Context, before time.Time, limit int) (int, error)
	}{
		{"the probe's appeals", probeRetention, appeals.PurgeSynthetic},
		{"closed appeals", retention, appeals.PurgeClosed},
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		for _, p := range purges {
			purged := 0
			for ctx.Err() == nil {
				n, err := p.delete(ctx, now().Add(-p.keep), batch)
				if err != nil {
					log.Warn().Err(err).Stringer("again_in", interval).Msg("appeals: " + p.what + " past their retention not purged")
					break
				}
				purged += n
				if n < batch {
					break
				}
			}
			if purged > 0 {
				log.Info().Int("appeals", purged).Stringer("retention", p.keep).Msg("appeals: " + p.what + " past their retention purged")
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
