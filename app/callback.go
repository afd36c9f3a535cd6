package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/callback"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/live"
)

// newVisits is the return visits' store of the configuration, its
// metrics registered.
func newVisits(cfg config.Config, rdb redis.UniversalClient, organizers *appeal.Store, now func() time.Time, feed *live.Feed, reg prometheus.Registerer, log zerolog.Logger) (*callback.Store, error) {
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
	attempts := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hotline_visit_attempts_total",
		Help: "Attempts at return visits and call-backs recorded on this node, by outcome.",
	}, []string{"outcome"})
	for _, o := range []callback.Outcome{callback.Completed, callback.NoAnswer, callback.Busy, callback.Unreachable, callback.WrongNumber, callback.Refused, callback.CallLater} {
		attempts.WithLabelValues(string(o))
	}
	s := cfg.Callback.Sample
	modes := map[appeal.Category]callback.Mode{}
	for cat, m := range cfg.Callback.Modes() {
		modes[appeal.Category(cat)] = callback.Mode(m)
	}
	visits := callback.NewStore(rdb, callback.StoreOptions{
		Location: cfg.Location(), Windows: &w, Seed: cfg.Callback.Seed, Modes: modes, Now: now,
		Sample:    map[appeal.Category]int{appeal.Emergency: s.Emergency, appeal.Livelihood: s.Livelihood, appeal.General: s.General, appeal.Complex: s.Complex},
		Attempted: func(o callback.Outcome) { attempts.WithLabelValues(string(o)).Inc() },
		Changed:   func() { feed.Publish(live.Visits) },
		District: func(ctx context.Context, id string) (string, error) {
			o, err := organizers.Organizer(ctx, id)
			if errors.Is(err, appeal.ErrOrganizerNotFound) {
				return "", nil
			}
			return o.District, err
		},
		PartlySolvedCounts: cfg.Callback.PartlySolvedCounts, Lease: time.Duration(cfg.Callback.Lease), RatesRetention: time.Duration(cfg.Callback.Retention),
	})
	reg.MustRegister(attempts, &visitsCollector{visits: visits, log: log})
	return visits, nil
}

// visitsCollector exports the visits by state and kind and how long the
// longest-due waiting one has been due, read from Redis at each scrape.
type visitsCollector struct {
	visits *callback.Store
	log    zerolog.Logger
}

var (
	visitsDesc = prometheus.NewDesc("hotline_visits", "Return visits and call-backs by state (leased: waiting ones an agent holds) and kind, from Redis: the same on every node.",
		[]string{"state", "kind"}, nil)
	oldestVisitDesc = prometheus.NewDesc("hotline_visits_oldest_due_seconds", "How long the longest-due waiting visit not leased has been due (0 when none is due).", nil, nil)
)

func (c *visitsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- visitsDesc
	ch <- oldestVisitDesc
}

func (c *visitsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	f, err := c.visits.Figures(ctx)
	if err != nil {
		c.log.Warn().Err(err).Msg("metrics: visits")
		return
	}
	for _, st := range []callback.State{callback.Waiting, callback.Done, callback.GaveUp, callback.Withdrawn, callback.WrongNumbered} {
		for _, k := range []callback.Kind{callback.ReturnVisit, callback.QueueCallback} {
			ch <- prometheus.MustNewConstMetric(visitsDesc, prometheus.GaugeValue, float64(f.ByState[st][k]), string(st), string(k))
		}
	}
	ch <- prometheus.MustNewConstMetric(visitsDesc, prometheus.GaugeValue, float64(f.Leased), string(callback.Leased), "all")
	oldest := 0.0
	if !f.OldestDue.IsZero() && time.Since(f.OldestDue) > 0 {
		oldest = time.Since(f.OldestDue).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(oldestVisitDesc, prometheus.GaugeValue, oldest)
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
