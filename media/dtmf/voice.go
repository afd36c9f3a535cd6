package dtmf

import (
	"math"
	"slices"
)

// Talk-off by harmonics. A voice is a comb of harmonics of its fundamental f₀,
// shaped by formants. When two of them fall within a key's tolerance and the
// formants leave the rest weak, every single-window test passes: a 308 Hz
// voice's 3rd and 4th harmonics (924 and 1232 Hz) are "*", 1.8 % and 1.9 %
// off; a 290 Hz voice's 3rd and 5th (870 and 1450 Hz) are "9". What such a
// voice cannot hide is the rest of its comb: if the tones are harmonics m
// and n of f₀ = (f_c − f_r)/(n − m), there are harmonics at every f_r + j·f₀,
// and in a voice they stand well above the spectrum between them, while a
// keypad's tones, with or without line noise, have nothing there but that
// noise. So before a press counts, the detector asks whether its tones are
// in the ratio of two harmonics, n/m for n − m up to 3 and f₀ down to
// minFundamental, as a voice's are and a keypad's on its frequencies never
// are; if they are, it looks along that comb and calls the press a voice if
// the comb holds at once
//
//   - at least combToPairDB of the tones' energy, more than G.711's own
//     distortion of a keypad's tones ever puts there (at most −34.6 dB), and
//   - combAboveNoiseDB more than the spectrum's floor would put there once
//     in a million windows, were it noise: the floor is the window's
//     spectrum between 300 and 3400 Hz, away from the tones, and it is
//     taken from its lower quartile, which the comb's peaks barely move.
//
// This is the second-harmonic test of Asterisk's older detector, widened to
// every harmonic a voice on those tones must have, and made relative to the
// noise so that a keypad behind 15 dB of it still counts.
const (
	// pressSpan is the audio the test reads: the last pressWindows windows,
	// pressWindows+1 half blocks (204 samples, 25.5 ms), under a Hann
	// window whose side lobes fall to −31 dB 2.5 bins (98 Hz) from a tone
	// and keep falling, so that the tones do not leak into the comb.
	pressSpan = (pressWindows + 1) * halfBlock

	// minFundamental is the lowest f₀ looked for, in hertz. Below it a
	// voice's harmonics crowd the tones' own filters and the purity tests
	// reject it.
	minFundamental = 150
	// maxCombStep is the most harmonics the two tones may be apart.
	maxCombStep = 3
	// harmonicTolerance is how close to a ratio (n+k)/n the tones must be
	// to be harmonics of one f₀. The ratio of a voice's harmonics does not
	// change as its pitch glides, and the detector measured it within
	// 0.4 %; a keypad on the exact frequencies is 0.83 % or more from any
	// such ratio ("1", "5", "9" and "D" from 7/4), so only a keypad well
	// off frequency, or one measured through much noise, meets the comb
	// test at all.
	harmonicTolerance = 0.006

	// combToPairDB is the least share of the tones' energy, in the comb,
	// that can make a press a voice. espeak-ng voices that passed every
	// other test held −7 to −19 dB in their comb; a keypad's tones through
	// G.711 at any level and twist, at most −34.6 dB.
	combToPairDB = -30
	// combAboveNoiseDB is how far above what noise reaches once in a
	// million windows the comb must stand to make a press a voice. A keypad
	// behind white noise at 15 to 30 dB signal-to-noise reached +1.3 dB in
	// 50,000 presses; the espeak-ng voices that passed every other test
	// stood +10 dB and more.
	combAboveNoiseDB = 5

	// The frequencies read lie in the telephone band (ITU-T G.712's
	// 300-3400 Hz, where a caller's voice reaches us and mains hum does
	// not), at least 100 Hz from either tone, beyond the Hann window's main
	// lobe. In radians per sample but for the hertz they come from.
	bandLowHz, bandHighHz = 300, 3400
	bandLow               = 2 * math.Pi * bandLowHz / SampleRate
	bandHigh              = 2 * math.Pi * bandHighHz / SampleRate
	toneGap               = 2 * math.Pi * 100 / SampleRate
	floorStep             = 2 * math.Pi / pressSpan // one bin of the span

	// maxCombPoints bounds the points of one comb in the band, floorBins
	// the bins read for the floor.
	maxCombPoints = (bandHighHz-bandLowHz)/minFundamental + 1
	floorBins     = (bandHighHz-bandLowHz)*pressSpan/SampleRate + 1
)

// spanWindow is the Hann window over pressSpan samples.
var spanWindow = func() (w [pressSpan]float64) {
	for i := range w {
		w[i] = 0.5 - 0.5*math.Cos(2*math.Pi*(float64(i)+0.5)/pressSpan)
	}
	return w
}()

// combNoise[n] is the sum of n bins of white noise, in units of one bin's mean
// energy, that is exceeded once in a million windows (the 1 − 10⁻⁶ quantile
// of the Gamma(n, 1) distribution), raised by combAboveNoiseDB.
var combNoise = func() (q [maxCombPoints + 1]float64) {
	for n := 1; n <= maxCombPoints; n++ {
		lo, hi := 0.0, 1000.0
		for range 100 {
			if x := (lo + hi) / 2; gammaTail(n, x) > 1e-6 {
				lo = x
			} else {
				hi = x
			}
		}
		q[n] = hi * dbToPower(combAboveNoiseDB)
	}
	return q
}()

// gammaTail returns P(X > x) for X ~ Gamma(n, 1), the sum of n independent
// unit exponentials: e^{−x}·Σ_{i<n} xⁱ/i!.
func gammaTail(n int, x float64) float64 {
	term, sum := 1.0, 1.0
	for i := 1; i < n; i++ {
		term *= x / float64(i)
		sum += term
	}
	return math.Exp(-x) * sum
}

// voiced reports whether the last windows, all hits of the current run, hold
// a voice's comb of harmonics through the two tones rather than a key.
func (d *Detector) voiced() bool {
	return d.combExcess() >= 1
}

// combExcess returns how far the comb of harmonics through the last windows'
// tones stands above what it needs to make them a voice, as a power ratio (1
// or more is a voice), and 0 when the tones are no harmonics of one f₀.
func (d *Detector) combExcess() float64 {
	var wr, wc float64
	for _, v := range d.recent {
		wr += v.wr
		wc += v.wc
	}
	wr /= float64(len(d.recent))
	wc /= float64(len(d.recent))
	step := harmonicStep(wr, wc)
	if step == 0 {
		return 0
	}
	f0 := (wc - wr) / float64(step)

	var x [pressSpan]float64
	for h := range d.halves {
		half := &d.halves[(d.halvesNext+1+h)%len(d.halves)]
		for i, v := range half {
			j := h*halfBlock + i
			x[j] = float64(v) * spanWindow[j]
		}
	}
	usable := func(w float64) bool {
		return w >= bandLow && w <= bandHigh && math.Abs(w-wr) >= toneGap && math.Abs(w-wc) >= toneGap
	}
	// The tones first, then the comb's points.
	var ws, es [maxCombPoints + 2]float64
	ws[0], ws[1] = wr, wc
	n := 2
	for j := math.Ceil((bandLow - wr) / f0); n < len(ws); j++ {
		w := wr + j*f0
		if w > bandHigh {
			break
		}
		if usable(w) {
			ws[n] = w
			n++
		}
	}
	powers(&x, ws[:n], es[:n])
	var comb float64
	for _, e := range es[2:n] {
		comb += e
	}
	points := n - 2
	toPair := (es[0] + es[1]) * dbToPower(combToPairDB)
	if points == 0 || comb < toPair {
		return comb / toPair
	}
	floor := spectrumFloor(&x, usable)
	return comb / max(toPair, floor*combNoise[points])
}

// harmonicStep returns k if tones at wr and wc (radians per sample) are
// harmonics n and n+k of one fundamental wr/n of at least minFundamental,
// for k up to maxCombStep: if wc/wr is (n+k)/n within harmonicTolerance. It
// returns the least such k, the coarsest comb, and 0 if there is none.
func harmonicStep(wr, wc float64) int {
	ratio := wc / wr
	for k := 1; k <= maxCombStep; k++ {
		for n := 1; wr/float64(n) >= 2*math.Pi*minFundamental/SampleRate; n++ {
			if math.Abs(ratio*float64(n)/float64(n+k)-1) <= harmonicTolerance {
				return k
			}
		}
	}
	return 0
}

// spectrumFloor returns the mean energy that one bin of x holds from noise,
// from the bins one apart across the band that usable allows: their lower
// quartile over ln(4/3), where the lower quartile of an exponential
// distribution, as a bin of white noise is, lies.
func spectrumFloor(x *[pressSpan]float64, usable func(float64) bool) float64 {
	var ws, es [floorBins]float64
	n := 0
	for i := range floorBins {
		if w := bandLow + float64(i)*floorStep; usable(w) {
			ws[n] = w
			n++
		}
	}
	s := es[:n]
	powers(x, ws[:n], s)
	slices.Sort(s)
	return s[n/4] / math.Log(4.0/3)
}

// powers sets e[i] to |X(ω)|², the energy of x at ws[i] radians per sample,
// by Goertzel's recurrence. It runs four frequencies side by side, as
// accumulate runs eight, so that the processor overlaps their recurrences.
func powers(x *[pressSpan]float64, ws, e []float64) {
	for len(ws) > 0 {
		var c [4]float64
		for k := range c {
			c[k] = 2 * math.Cos(ws[min(k, len(ws)-1)])
		}
		var a0, a1, a2, a3, b0, b1, b2, b3 float64
		for _, v := range x {
			a0, b0 = v+c[0]*a0-b0, a0
			a1, b1 = v+c[1]*a1-b1, a1
			a2, b2 = v+c[2]*a2-b2, a2
			a3, b3 = v+c[3]*a3-b3, a3
		}
		out := [4]float64{
			a0*a0 + b0*b0 - c[0]*a0*b0,
			a1*a1 + b1*b1 - c[1]*a1*b1,
			a2*a2 + b2*b2 - c[2]*a2*b2,
			a3*a3 + b3*b3 - c[3]*a3*b3,
		}
		k := copy(e, out[:min(4, len(ws))])
		ws, e = ws[k:], e[k:]
	}
}
