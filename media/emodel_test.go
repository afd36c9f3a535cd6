package media

import (
	"math"
	"testing"
	"time"
)

func TestMOSFromR(t *testing.T) {
	// G.107 Annex B's mapping at the ratings its figure B.1 marks, and
	// the default R of 93.2 for a call with neither loss nor delay.
	for _, tc := range []struct{ r, mos float64 }{
		{93.2, 4.41}, {90, 4.34}, {80, 4.02}, {70, 3.60}, {60, 3.10}, {50, 2.58},
		{0, 1}, {-5, 1}, {100, 4.5}, {120, 4.5},
	} {
		if got := MOSFromR(tc.r); math.Abs(got-tc.mos) > 0.005 {
			t.Errorf("MOS(R=%v) = %.3f, want %.2f", tc.r, got, tc.mos)
		}
	}
}

func TestEstimateMOS(t *testing.T) {
	for _, tc := range []struct {
		name  string
		loss  float64
		delay time.Duration
		r     float64
	}{
		{"clean", 0, 0, 93.2},
		// Ie,eff = 95·1/(1+25.1) = 3.64 with G.711's concealment.
		{"1% loss", 0.01, 0, 93.2 - 95.0/26.1},
		{"5% loss", 0.05, 0, 93.2 - 95*5/30.1},
		// Id = 0.024·150 below the knee of 177.3 ms.
		{"150 ms", 0, 150 * time.Millisecond, 93.2 - 3.6},
		// Id = 0.024·200 + 0.11·22.7 beyond it.
		{"200 ms", 0, 200 * time.Millisecond, 93.2 - 4.8 - 2.497},
		{"all lost", 1, 0, 93.2 - 95*100/125.1},
	} {
		if got := RFactor(tc.loss, tc.delay); math.Abs(got-tc.r) > 0.001 {
			t.Errorf("%s: R = %.3f, want %.3f", tc.name, got, tc.r)
		}
	}
	if got := EstimateMOS(0, 0); math.Abs(got-4.41) > 0.005 {
		t.Errorf("clean call MOS %.3f, want 4.41", got)
	}
	if a, b := EstimateMOS(0.01, 0), EstimateMOS(0.05, 0); !(a > b && b > 3.5) {
		t.Errorf("MOS at 1%% loss %.2f, at 5%% %.2f: want falling, above 3.5", a, b)
	}
}

// A call's MOS takes half the round trip and twice the jitter as its
// one-way delay.
func TestStreamMOS(t *testing.T) {
	got := StreamMOS(0.05, 20*time.Millisecond, 100*time.Millisecond)
	if want := EstimateMOS(0.05, 90*time.Millisecond); got != want {
		t.Errorf("StreamMOS = %.4f, want %.4f (the MOS for 90 ms one way)", got, want)
	}
	if a, b := StreamMOS(0, 0, 0), StreamMOS(0, 10*time.Millisecond, 0); !(a > b) {
		t.Errorf("MOS without jitter %.3f, with 10 ms %.3f: want jitter to lower it", a, b)
	}
}
