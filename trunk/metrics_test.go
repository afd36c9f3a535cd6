package trunk_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/internal/redistest"
	"github.com/hotline12345/hotline/trunk"
)

// TestMetrics: the health every node reads, and this node's channels and
// calls.
func TestMetrics(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	ctx := t.Context()
	ts := trunk.New(rdb, trunk.Options{Trunks: []config.Trunk{carrier("carrier-a", 2)}})
	m := trunk.NewMonitor(ts, trunk.MonitorOptions{Owner: "n1/1", Node: "n1", Prober: &script{results: []trunk.Result{ok}}, Log: zerolog.Nop()})
	if err := testutil.CollectAndCompare(m, strings.NewReader(`
# HELP hotline_trunk_state 1 for the trunk's state (unknown, up, down, maintenance), 0 for the others.
# TYPE hotline_trunk_state gauge
hotline_trunk_state{state="down",trunk="carrier-a"} 0
hotline_trunk_state{state="maintenance",trunk="carrier-a"} 0
hotline_trunk_state{state="unknown",trunk="carrier-a"} 1
hotline_trunk_state{state="up",trunk="carrier-a"} 0
`), "hotline_trunk_state"); err != nil {
		t.Errorf("before a probe: %v", err)
	}
	if _, _, err := m.Probe(ctx, "carrier-a"); err != nil {
		t.Fatal(err)
	}
	if err := testutil.CollectAndCompare(m, strings.NewReader(`
# HELP hotline_trunk_options_rtt_seconds How long the trunk took to answer the last OPTIONS probe that it answered; absent before one.
# TYPE hotline_trunk_options_rtt_seconds gauge
hotline_trunk_options_rtt_seconds{trunk="carrier-a"} 0.003
# HELP hotline_trunk_up 1 while the trunk is up (answers its OPTIONS probes), 0 otherwise: down, in maintenance, or not probed yet.
# TYPE hotline_trunk_up gauge
hotline_trunk_up{trunk="carrier-a"} 1
`), "hotline_trunk_up", "hotline_trunk_options_rtt_seconds"); err != nil {
		t.Errorf("after a probe: %v", err)
	}

	in, err := ts.Acquire(ctx, "carrier-a", trunk.In)
	if err != nil {
		t.Fatal(err)
	}
	out, err := ts.Acquire(ctx, "carrier-a", trunk.Out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Acquire(ctx, "carrier-a", trunk.Out); err == nil {
		t.Fatal("a third channel of two")
	}
	if err := in.Answered(ctx); err != nil {
		t.Fatal(err)
	}
	if err := out.Release(ctx, trunk.OutcomeFailed); err != nil {
		t.Fatal(err)
	}
	if err := testutil.CollectAndCompare(ts, strings.NewReader(`
# HELP hotline_trunk_channels Channels of a trunk this node's calls hold now, by direction; the trunk's are the sum over the nodes.
# TYPE hotline_trunk_channels gauge
hotline_trunk_channels{direction="in",trunk="carrier-a"} 1
hotline_trunk_channels{direction="out",trunk="carrier-a"} 0
# HELP hotline_trunk_channels_limit Channels a trunk takes at once, in and out together, over every node (trunks[].channels).
# TYPE hotline_trunk_channels_limit gauge
hotline_trunk_channels_limit{trunk="carrier-a"} 2
`), "hotline_trunk_channels", "hotline_trunk_channels_limit"); err != nil {
		t.Errorf("channels: %v", err)
	}
	for _, c := range []struct {
		dir, outcome string
		want         float64
	}{
		{"in", "answered", 1}, {"out", "failed", 1}, {"out", "no_channel", 1}, {"out", "answered", 0}, {"in", "unanswered", 0},
	} {
		if got := testutil.ToFloat64(ts.Calls("carrier-a", c.dir, c.outcome)); got != c.want {
			t.Errorf("calls %s %s: %v, want %v", c.dir, c.outcome, got, c.want)
		}
	}
}
