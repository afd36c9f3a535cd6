package app

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/evaluation"
	"github.com/hotline12345/hotline/live"
)

// runAlarm watches the complaint line on this node (one node at a time
// raises the events; every node exports the metrics) and delivers its
// events to the webhook when there is one. The returned func stops it.
func runAlarm(cfg config.Config, ratings *evaluation.Store, lease *acd.NodeLease, feed *live.Feed, reg prometheus.Registerer, log zerolog.Logger) (*evaluation.Alarm, func()) {
	deliveries := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hotline_complaint_webhook_events_total",
		Help: "Complaint line events through the webhook on this node, by outcome: delivered, refused (a 4xx), given_up (retried too long), unreadable.",
	}, []string{"outcome"})
	for _, o := range []string{evaluation.WebhookDelivered, evaluation.WebhookRefused, evaluation.WebhookGivenUp, evaluation.WebhookUnreadable} {
		deliveries.WithLabelValues(o)
	}
	alarm := evaluation.NewAlarm(ratings, evaluation.AlarmOptions{
		Owner:    lease.Instance(),
		Node:     lease.Name(),
		Interval: time.Duration(cfg.Evaluation.CheckInterval),
		Webhook: evaluation.WebhookOptions{
			URL: cfg.Evaluation.WebhookURL, Secret: cfg.Evaluation.WebhookSecret,
			Done: func(_, outcome string) { deliveries.WithLabelValues(outcome).Inc() },
		},
		Log:     log,
		OnEvent: func(evaluation.Event) { feed.Publish(live.Line) },
	})
	reg.MustRegister(alarm, deliveries)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		alarm.Run(ctx)
	}()
	return alarm, func() {
		stop()
		<-done
	}
}
