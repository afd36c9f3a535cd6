package app

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/callback"
	"github.com/hotline12345/hotline/config"
)

// newVisits is the return visits' store of the configuration.
func newVisits(cfg config.Config, rdb redis.UniversalClient) (*callback.Store, error) {
	w := callback.Windows{Loc: cfg.Location()}
	for day, spans := range cfg.Callback.DayWindows() {
		for _, s := range spans {
			span, err := callback.ParseSpan(s)
			if err != nil {
				return nil, fmt.Errorf("callback.days: %w", err)
			}
			w.Days[day] = append(w.Days[day], span)
		}
	}
	s := cfg.Callback.Sample
	return callback.NewStore(rdb, callback.StoreOptions{
		Location: cfg.Location(), Windows: &w, Seed: cfg.Callback.Seed,
		Sample: map[appeal.Category]int{appeal.Emergency: s.Emergency, appeal.Livelihood: s.Livelihood, appeal.General: s.General, appeal.Complex: s.Complex},
	}), nil
}

// runVisits decides, on this node as on every other, the return visit of
// each appeal whose processing time expired. The returned func stops it.
func runVisits(visits *callback.Store, appeals *appeal.Store, lease *acd.NodeLease, reg prometheus.Registerer, log zerolog.Logger) func() {
	decided := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hotline_visit_decisions_total",
		Help: "Appeals whose processing time expired, decided on this node: a visit, or why none (no consent, not sampled, do not call).",
	}, []string{"decision"})
	for _, d := range []callback.Decision{callback.Visited, callback.SkipNoConsent, callback.SkipNotSampled, callback.SkipDoNotCall} {
		decided.WithLabelValues(string(d))
	}
	reg.MustRegister(decided)
	c := &callback.Consumer{Store: visits, Appeals: appeals, Name: lease.Instance(), Log: log,
		Decided: func(_ appeal.ClockEvent, d callback.Decision) { decided.WithLabelValues(string(d)).Inc() }}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx)
	}()
	return func() {
		stop()
		<-done
	}
}
