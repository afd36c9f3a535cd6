package synthetic

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The families are registered, the last probe's values set.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	m.Observe(true, 12*time.Second, 150*time.Millisecond, 15)
	m.Observe(false, 3*time.Second, 200*time.Millisecond, 2)
	want := `
# HELP hotline_probe_calls_total Probe calls placed, by outcome (success, failure).
# TYPE hotline_probe_calls_total counter
hotline_probe_calls_total{outcome="failure"} 1
hotline_probe_calls_total{outcome="success"} 1
# HELP hotline_probe_duration_seconds How long the last probe call took, from the INVITE to its end.
# TYPE hotline_probe_duration_seconds gauge
hotline_probe_duration_seconds 3
# HELP hotline_probe_post_dial_delay_seconds The last probe call's post-dial delay: from the INVITE to its 200 OK.
# TYPE hotline_probe_post_dial_delay_seconds gauge
hotline_probe_post_dial_delay_seconds 0.2
# HELP hotline_probe_prompts_recognised Prompts the last probe call recognised.
# TYPE hotline_probe_prompts_recognised gauge
hotline_probe_prompts_recognised 2
# HELP hotline_probe_success 1 when the last probe call heard the whole intake, 0 when not.
# TYPE hotline_probe_success gauge
hotline_probe_success 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
