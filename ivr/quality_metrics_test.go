package ivr

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/hotline12345/hotline/calllog"
)

func TestObserveQuality(t *testing.T) {
	m := NewMetrics(nil)
	m.observeQuality(calllog.Record{Trunk: "carrier-a", Quality: &calllog.Quality{MOS: 4.2, LossRatio: 0.05, JitterMS: 3}})
	m.observeQuality(calllog.Record{Quality: &calllog.Quality{MOS: 4.4}})
	m.observeQuality(calllog.Record{Trunk: "carrier-a"}) // no media: nothing to observe
	for _, tc := range []struct {
		h     *prometheus.HistogramVec
		trunk string
		sum   float64
	}{
		{m.MOS, "carrier-a", 4.2}, {m.MOS, "none", 4.4},
		{m.PacketLoss, "carrier-a", 0.05}, {m.Jitter, "carrier-a", 0.003}, {m.Jitter, "none", 0},
	} {
		var d dto.Metric
		if err := tc.h.WithLabelValues(tc.trunk).(prometheus.Metric).Write(&d); err != nil {
			t.Fatal(err)
		}
		if n, sum := d.GetHistogram().GetSampleCount(), d.GetHistogram().GetSampleSum(); n != 1 || sum != tc.sum {
			t.Errorf("%s: %d observations summing %v, want one of %v", tc.trunk, n, sum, tc.sum)
		}
	}
}
