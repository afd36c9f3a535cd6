package ivr

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
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

// The quality histograms have their series of "none" and of each trunk
// ForTrunks names before any call ends, and a bucket bound at the alert's
// MOS: a call of MOS 3.55 is counted under 3.6 and not under 3.5.
func TestQualitySeriesBeforeACall(t *testing.T) {
	m := NewMetrics(nil)
	m.ForTrunks("carrier-a", "carrier-b")
	for name, h := range map[string]*prometheus.HistogramVec{"mos": m.MOS, "loss": m.PacketLoss, "jitter": m.Jitter} {
		if n := testutil.CollectAndCount(h); n != 3 {
			t.Errorf("%s: %d series before a call, want 3 (none, carrier-a, carrier-b)", name, n)
		}
	}
	m.observeQuality(calllog.Record{Trunk: "carrier-a", Quality: &calllog.Quality{MOS: 3.55}})
	var d dto.Metric
	if err := m.MOS.WithLabelValues("carrier-a").(prometheus.Metric).Write(&d); err != nil {
		t.Fatal(err)
	}
	under := map[float64]uint64{}
	for _, b := range d.GetHistogram().GetBucket() {
		under[b.GetUpperBound()] = b.GetCumulativeCount()
	}
	if under[3.5] != 0 || under[mosAlert] != 1 {
		t.Errorf("MOS 3.55: %d calls under 3.5 and %d under %v, want 0 and 1 (buckets %v)", under[3.5], under[mosAlert], mosAlert, under)
	}
}
