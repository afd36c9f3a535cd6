package dtmf

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/zaf/g711"
)

func hz(f float64) float64 { return 2 * math.Pi * f / SampleRate }

func TestHarmonicStep(t *testing.T) {
	// No key on its exact frequencies is a pair of harmonics of one voice,
	// so the comb test never meets an accurate keypad.
	for _, key := range allKeys {
		r, c, _ := keyPosition(key)
		if k := harmonicStep(hz(dtmfFrequency(r)), hz(dtmfFrequency(4+c))); k != 0 {
			t.Errorf("%q on its frequencies: harmonics %d apart, want none", key, k)
		}
	}
	for _, c := range []struct {
		name   string
		fr, fc float64
		want   int
	}{
		{"3rd and 4th of 308 Hz", 924, 1232, 1},
		{"3rd and 5th of 290 Hz", 870, 1450, 2},
		{"4th and 7th of 235 Hz", 940, 1645, 3},
		{"5/3 0.5 % off", 870, 1450 * 1.005, 2},
		{"5/3 0.7 % off", 870, 1450 * 1.007, 0},
		{"3rd and 4th of 140 Hz, under minFundamental", 420, 560, 0},
		{"4 apart", 700, 1400 * 1.01, 0},
	} {
		if got := harmonicStep(hz(c.fr), hz(c.fc)); got != c.want {
			t.Errorf("%s (%v, %.1f Hz): step %d, want %d", c.name, c.fr, c.fc, got, c.want)
		}
	}
}

func TestCombNoise(t *testing.T) {
	// One bin of white noise is exponential: it passes x with
	// probability e^{−x}, so once in a million at ln 10⁶.
	if got, want := combNoise[1], math.Log(1e6)*dbToPower(combAboveNoiseDB); math.Abs(got/want-1) > 1e-6 {
		t.Errorf("combNoise[1] = %v, want %v", got, want)
	}
	// Sums of more bins pass a higher sum, but less per bin.
	for n := 2; n <= maxCombPoints; n++ {
		if !(combNoise[n] > combNoise[n-1] && combNoise[n]/float64(n) < combNoise[n-1]/float64(n-1)) {
			t.Errorf("combNoise[%d] = %v after %v", n, combNoise[n], combNoise[n-1])
		}
	}
	// Check the tail against sums of exponentials drawn at random: the
	// 99th percentile of Gamma(4, 1) is 10.05.
	rng := rand.New(rand.NewPCG(1, 2))
	var sums []float64
	for range 200000 {
		var s float64
		for range 4 {
			s += rng.ExpFloat64()
		}
		sums = append(sums, s)
	}
	slices.Sort(sums)
	if p99, tail := sums[len(sums)*99/100], gammaTail(4, 10.05); math.Abs(p99-10.05) > 0.1 || math.Abs(tail-0.01) > 0.0005 {
		t.Errorf("Gamma(4): drawn 99th percentile %.2f, gammaTail(4, 10.05) = %.4f; want 10.05, 0.01", p99, tail)
	}
}

func TestDetectorHarmonicKeyInNoise(t *testing.T) {
	// A keypad off frequency can make its pair a voice's harmonics: "*"
	// with the row tone 1.5 % high and the column tone 1.5 % low is 5/4,
	// 4th and 5th of 239 Hz. Such a key meets the comb test, and must
	// still count behind 15 dB of white noise, which the test measures
	// the comb against.
	var harmonic int
	for _, key := range allKeys {
		r, c, _ := keyPosition(key)
		for _, off := range [][2]float64{{0.015, -0.015}, {-0.015, 0.015}, {0.01, -0.01}, {-0.01, 0.01}} {
			fr, fc := dtmfFrequency(r)*(1+off[0]), dtmfFrequency(4+c)*(1+off[1])
			if harmonicStep(hz(fr), hz(fc)) == 0 {
				continue
			}
			harmonic++
			for seed := range uint64(8) {
				rng := rand.New(rand.NewPCG(seed, 24))
				for _, level := range []float64{-10, -25} {
					tone, err := dualTone(samplesIn(ms(60)), fr, level, fc, level)
					if err != nil {
						t.Fatal(err)
					}
					var pcm []int16
					for range 5 {
						pcm = slices.Concat(pcm, Silence(ms(60)), tone)
					}
					pcm = addNoise(slices.Concat(pcm, Silence(ms(60))), level, 15, rng)
					want := string(slices.Repeat([]rune{key}, 5))
					if got := detect(channels[1].pass(pcm), 160); got != want {
						t.Errorf("%q at %.1f+%.1f Hz, %v dBm0, 15 dB SNR, seed %d: got %q, want %q", key, fr, fc, level, seed, got, want)
					}
				}
			}
		}
	}
	if harmonic < 4 {
		t.Errorf("only %d detuned keys are harmonic pairs: the comb test is hardly exercised", harmonic)
	}
}

func TestDetectorTalkOffFormantVoice(t *testing.T) {
	// Beyond espeak-ng: a formant synthesizer's vowel held on pitches whose
	// harmonics fall on keys, its two lowest formants on those harmonics,
	// 60 to 110 Hz wide. Without the voice test each is a key at −15 dBm0.
	for _, c := range []struct {
		f0     float64
		m, n   float64 // the harmonics on the tones
		detect string
	}{
		{306, 3, 4, "*"}, {308, 3, 4, "*"}, // 918+1224, 924+1232 Hz
		{290, 3, 5, "9"}, {291, 3, 5, "9"}, // 870+1450, 873+1455 Hz
		{319, 3, 5, "D"}, {320, 3, 5, "D"}, // 957+1595, 960+1600 Hz
	} {
		for _, bw := range [][2]float64{{60, 70}, {80, 90}, {100, 110}} {
			formants := [][2]float64{{c.m * c.f0, bw[0]}, {c.n * c.f0, bw[1]}, {2800, 200}, {3500, 250}}
			for _, level := range []float64{-15, -25} {
				pcm := vowel(time.Second, c.f0, formants, level)
				expectKeys(t, fmt.Sprintf("vowel at %v Hz, formants %v Hz wide on harmonics %v and %v (%q), %v dBm0",
					c.f0, bw, c.m, c.n, c.detect, level), pcm, "")
			}
		}
	}
}

// vowel returns a sustained vowel at f₀ hertz with a little jitter, made as a
// cascade formant synthesizer makes it: a glottal pulse train falling 12 dB
// an octave, through two-pole resonators at the formants, radiated from the
// lips (+6 dB an octave), then through a telephone's 300 Hz high-pass, at
// level dBm0 (peak).
func vowel(d time.Duration, f0 float64, formants [][2]float64, level float64) []int16 {
	n := samplesIn(d)
	rng := rand.New(rand.NewPCG(uint64(f0), 5))
	x := make([]float64, n)
	for t := 0.0; t < float64(n-1); t += SampleRate / f0 * (1 + 0.003*rng.NormFloat64()) {
		i, frac := int(t), t-math.Floor(t)
		x[i] += 1 - frac
		x[i+1] += frac
	}
	onePole := func(fc float64) {
		a := math.Exp(-2 * math.Pi * fc / SampleRate)
		var y float64
		for i := range x {
			y = (1-a)*x[i] + a*y
			x[i] = y
		}
	}
	onePole(100)
	onePole(100)
	for _, f := range formants {
		c := -math.Exp(-2 * math.Pi * f[1] / SampleRate)
		b := 2 * math.Exp(-math.Pi*f[1]/SampleRate) * math.Cos(2*math.Pi*f[0]/SampleRate)
		var y1, y2 float64
		for i := range x {
			y := (1-b-c)*x[i] + b*y1 + c*y2
			y2, y1 = y1, y
			x[i] = y
		}
	}
	prev := 0.0
	for i := range x {
		x[i], prev = x[i]-prev, x[i]
	}
	// Two-pole high-pass at 300 Hz (RBJ, Q 0.707), twice.
	w := 2 * math.Pi * 300 / SampleRate
	alpha, cw := math.Sin(w)/(2*0.707), math.Cos(w)
	b0, b1, a0, a1, a2 := (1+cw)/2, -(1 + cw), 1+alpha, -2*cw, 1-alpha
	for range 2 {
		var x1, x2, y1, y2 float64
		for i, v := range x {
			y := (b0*v + b1*x1 + b0*x2 - a1*y1 - a2*y2) / a0
			x2, x1, y2, y1 = x1, v, y1, y
			x[i] = y
		}
	}
	var peak float64
	for _, v := range x {
		peak = max(peak, math.Abs(v))
	}
	out := make([]int16, n)
	for i, v := range x {
		out[i] = clip16(v / peak * toneAmplitude(level) * envelope(i, n, 160))
	}
	return out
}

func TestDetectorVoiceTestDoesNotAllocate(t *testing.T) {
	// The voice test reads the comb and the floor only for tones in a
	// harmonic ratio; the talk-off fixture's voice makes it do both, frame
	// after frame, and it must not allocate there either.
	raw, err := os.ReadFile(talkOffFixtures[0].file)
	if err != nil {
		t.Fatal(err)
	}
	pcm := make([]int16, len(raw))
	for i, b := range raw {
		pcm[i] = g711.DecodeUlawFrame(b)
	}
	d := NewDetector()
	emit := func(rune) {}
	pos, tested := 0, 0
	allocs := testing.AllocsPerRun(len(pcm)/160-1, func() {
		d.Process(pcm[pos:pos+160], emit)
		pos += 160
		if d.run != 0 && d.runLen >= hitsToBegin && harmonicStep(d.recent[0].wr, d.recent[0].wc) != 0 {
			tested++
		}
	})
	if allocs != 0 {
		t.Errorf("Process allocates %v times per 20 ms frame of a voice", allocs)
	}
	if tested == 0 {
		t.Error("no frame reached the voice test")
	}
}

func BenchmarkDetectorHighVoice(b *testing.B) {
	// The worst case for the voice test: a voice whose harmonics hold a
	// key for whole runs of windows, so that the comb and the floor are
	// read window after window (the talk-off fixtures, 6 s).
	var pcm []int16
	for _, fx := range talkOffFixtures {
		raw, err := os.ReadFile(fx.file)
		if err != nil {
			b.Fatal(err)
		}
		for _, v := range raw {
			pcm = append(pcm, g711.DecodeUlawFrame(v))
		}
	}
	d := NewDetector()
	emit := func(rune) {}
	for b.Loop() {
		for frame := range slices.Chunk(pcm, 160) {
			d.Process(frame, emit)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(pcm)/160), "ns/frame")
}

func TestPowers(t *testing.T) {
	// Four at a time and the rest, each the energy of the DFT at its
	// frequency.
	rng := rand.New(rand.NewPCG(3, 3))
	var x [pressSpan]float64
	for i := range x {
		x[i] = 1000 * rng.NormFloat64()
	}
	for n := range 10 {
		ws := make([]float64, n)
		for i := range ws {
			ws[i] = hz(300 + 3100*rng.Float64())
		}
		got := make([]float64, n)
		powers(&x, ws, got)
		for i, w := range ws {
			var re, im float64
			for j, v := range x {
				re += v * math.Cos(w*float64(j))
				im -= v * math.Sin(w*float64(j))
			}
			if want := re*re + im*im; math.Abs(got[i]/want-1) > 1e-9 {
				t.Errorf("%d frequencies, %.1f Hz: %v, want %v", n, w*SampleRate/2/math.Pi, got[i], want)
			}
		}
	}
}
