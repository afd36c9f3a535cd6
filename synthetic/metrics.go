package synthetic

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the families `hotline probe` serves on /metrics, the probe's
// own view of its calls (the hotline counts them apart, in
// hotline_synthetic_calls_total).
type Metrics struct {
	success  prometheus.Gauge
	calls    *prometheus.CounterVec
	duration prometheus.Gauge
	pdd      prometheus.Gauge
	prompts  prometheus.Gauge
}

// NewMetrics registers the probe's families with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		success: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hotline_probe_success", Help: "1 when the last probe call heard the whole intake, 0 when not.",
		}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hotline_probe_calls_total", Help: "Probe calls placed, by outcome (success, failure).",
		}, []string{"outcome"}),
		duration: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hotline_probe_duration_seconds", Help: "How long the last probe call took, from the INVITE to its end.",
		}),
		pdd: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hotline_probe_post_dial_delay_seconds", Help: "The last probe call's post-dial delay: from the INVITE to its 200 OK.",
		}),
		prompts: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hotline_probe_prompts_recognised", Help: "Prompts the last probe call recognised.",
		}),
	}
	reg.MustRegister(m.success, m.calls, m.duration, m.pdd, m.prompts)
	m.calls.WithLabelValues("success")
	m.calls.WithLabelValues("failure")
	return m
}

// Observe counts one probe call: whether it heard the whole intake, how
// long it took, its post-dial delay (zero when not answered) and the
// prompts it recognised.
func (m *Metrics) Observe(ok bool, duration, postDialDelay time.Duration, prompts int) {
	outcome := "failure"
	m.success.Set(0)
	if ok {
		outcome = "success"
		m.success.Set(1)
	}
	m.calls.WithLabelValues(outcome).Inc()
	m.duration.Set(duration.Seconds())
	m.pdd.Set(postDialDelay.Seconds())
	m.prompts.Set(float64(prompts))
}
