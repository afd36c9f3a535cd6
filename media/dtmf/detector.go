// Package dtmf holds the three ways a caller's key press reaches hotline as
// pure pieces: an in-band tone detector for G.711 audio, a tone generator, and
// the RFC 4733 telephone-event payload with a tracker that counts each press
// once. The embedded SIP backend wires them into its RTP sessions.
package dtmf

import (
	"math"
	"math/cmplx"
)

// SampleRate is the rate of every PCM buffer in this package: G.711 audio,
// decoded to 16-bit linear samples.
const SampleRate = 8000

// The detector follows Asterisk's (main/dsp.c, dtmf_detect): Goertzel filters
// on the eight DTMF frequencies over 102-sample blocks, an energy threshold,
// normal and reverse twist, relative-peak checks against the other rows and
// columns, the share of the block's energy in the two tones, and hits to begin
// and misses to end. Where it differs, it is to meet the limits of ITU-T Q.24
// (which Asterisk's notes list) and to resist talk-off:
//
//   - Blocks overlap by half (a 102-sample window every 51 samples), so a tone's
//     length is measured in 6.4 ms steps instead of 12.75 ms ones: a 40 ms tone
//     always holds four whole windows while a 25 ms one never does.
//   - A 102-sample Goertzel filter is 78 Hz wide, so on its own it cannot tell
//     697 Hz −3.5 % (reject) from 1633 Hz −1.5 % (accept). The phase advance of
//     each tone between the two halves of a window measures its frequency to a
//     few hertz, and the tone is checked against that.
//   - Each tone's level is read at the frequency found, with the other tone's
//     leakage through the rectangular window removed, so that twist is
//     measured to a few tenths of a decibel.
//   - A column tone an octave above the row tone is a harmonic, not a key, and
//     a press must be pure over its first windows as a whole (see
//     octaveTolerance and pressToTotalEnergy).
//   - Nor may a press hold the other harmonics of a voice whose harmonics fall
//     on a key's tones (see voice.go): the second-harmonic test of Asterisk's
//     older detector, widened to the whole comb of harmonics the two tones
//     imply and measured against the noise between them.
const (
	halfBlock = 51            // samples between windows (6.375 ms)
	block     = 2 * halfBlock // Asterisk's DTMF_GSIZE: 102 samples (12.75 ms)

	// fullScaleDBm0 is the level of a full-scale sine (±32767) in the G.711
	// convention (ITU-T G.711 µ-law; A-law's is +3.14, close enough here).
	fullScaleDBm0 = 3.17

	// minToneLevelDBm0 is the weakest tone (each of the pair) that can count:
	// midway between −30 dBm0, which must still count (a keypad's −10 dBm0
	// behind 20 dB of loss; Asterisk's notes: "attenuation <= 26dB will
	// detect"), and −40 dBm0, which must not.
	minToneLevelDBm0 = -35

	// normalTwistDB is how much weaker the column tone may be than the row
	// tone. Asterisk (DEF_DTMF_NORMAL_TWIST, 6.31 = 8 dB) accepts 8 dB, as
	// must we; 9 dB leaves a 1 dB margin for measurement, and 10 dB is
	// rejected.
	normalTwistDB = 9
	// reverseTwistDB is how much stronger the column tone may be. Asterisk
	// (DEF_DTMF_REVERSE_TWIST, 2.51 = 4 dB) accepts 4 dB, as must we; 5 dB
	// leaves a margin, and 6 dB is rejected.
	reverseTwistDB = 5

	// relativePeakDB: every other row (column) must be this far below the
	// winning row (column). Asterisk's DTMF_RELATIVE_PEAK_ROW/COL, 6.3 = 8 dB.
	relativePeakDB = 8

	// toneToTotalEnergy is the least share of a window's energy that the two
	// tones must hold, in Goertzel units where a pure pair scores block/2 = 51:
	// Asterisk's DTMF_TO_TOTAL_ENERGY, 42 (−0.85 dB). Measuring each tone at
	// its own frequency keeps a tone 1.5 % off its filter at ~50; a window
	// only three quarters filled with tone, as at the edges of a tone,
	// scores under 39.
	toneToTotalEnergy = 42

	// pressToTotalEnergy is the least average share of the energy in the
	// two tones over the last pressWindows windows before a press counts.
	// A keypad's tones are pure: at 15 dB signal-to-noise the average stays
	// above 47, while voiced speech whose two harmonics pass the single-window
	// tests for a moment carries other harmonics too, and averaged about 44
	// where that happened in the talk-off tests' voices. The first window of
	// a press, which the tone may only partly fill, is left out.
	pressToTotalEnergy = 46
	pressWindows       = hitsToBegin - 1

	// octaveTolerance: a column tone within this fraction of twice the row
	// tone's frequency is the row tone's second harmonic, as in voices and
	// instruments, not a key. No DTMF pair is near an octave (1336/697 is
	// 4 % below, 1477/697 6 % above, and each stays over 1.1 % away with
	// both tones 1.5 % off), while a harmonic measures within 0.3 %. This
	// is the role of the second-harmonic check of Asterisk's older detector.
	octaveTolerance = 0.006

	// freqTolerance is the largest relative offset of either tone: Q.24 asks
	// ±1.5 % to be accepted and ±3.5 % rejected; the midpoint leaves ±1 % for
	// measurement error (about ±0.5 % at 15 dB signal-to-noise).
	freqTolerance = 0.025

	// hitsToBegin windows in a row must agree on a key before it counts: they
	// span 102 + 3×51 = 255 samples (32 ms), which every 40 ms tone holds
	// whole and no tone under 25 ms can fill (Q.24's operate and non-operate
	// durations). Asterisk uses DEF_DTMF_HITS_TO_BEGIN 2 of its 102-sample
	// blocks.
	hitsToBegin = 4
	// missesToEnd windows in a row without the key end it, so the next hit of
	// the same key is a new press. A break of 10 ms (80 samples, the
	// interruption Q.24 asks to bridge) touches at most four windows, which
	// span 101 + 80 samples; a 40 ms pause spoils at least seven, all those
	// a quarter or more silent, which the tone-to-total test rejects.
	// Asterisk uses DEF_DTMF_MISSES_TO_END 3 of its 102-sample blocks.
	missesToEnd = 5
)

// dtmfFrequency returns the eight DTMF frequencies in hertz, rows (low group)
// first, then columns (high group), as in ITU-T Q.23.
func dtmfFrequency(i int) float64 {
	return [8]float64{697, 770, 852, 941, 1209, 1336, 1477, 1633}[i]
}

// keypad is the DTMF matrix, row by row: the key of row r and column c is
// keypad[4*r+c] (ITU-T Q.23).
const keypad = "123A456B789C*0#D"

// Detector finds DTMF key presses in 8 kHz linear PCM. It is a streaming state
// machine: audio may arrive in pieces of any size, and a press is reported
// once, when it has lasted long enough, however long it then goes on.
//
// A Detector holds one call's state and is not safe for concurrent use.
type Detector struct {
	// Per-frequency constants.
	coef  [8]float64    // 2cos ω, the Goertzel feedback
	cosw  [8]float64    // cos ω
	sinw  [8]float64    // sin ω
	rot   [8]complex128 // e^{-jω·50}: turns Goertzel's output into the DFT value
	shift [8]complex128 // e^{-jω·51}: moves a half-block's DFT to the window's origin
	omega [8]float64    // ω in radians per sample

	// halfKernels[r][c] says how row r's and column c's filters read pure
	// tones on those two frequencies over a half block (see resolve).
	halfKernels [4][4]pairKernels

	// Thresholds in Goertzel units, derived from the named constants.
	minToneEnergy float64
	normalTwist   float64
	reverseTwist  float64
	relativePeak  float64

	// Running Goertzel state of the current half block.
	s1, s2 [8]float64
	energy float64
	fill   int

	// The previous half block's DFT values and energy.
	prev       [8]complex128
	prevEnergy float64
	havePrev   bool

	// Hits to begin, misses to end.
	run     byte // key of the latest windows, 0 for none
	runLen  int
	current byte // key being pressed, 0 for none
	misses  int

	// What the last few windows' verdicts leave for the checks made over a
	// press as a whole, and the audio of those windows.
	recent     [pressWindows]verdict
	recentNext int
	halves     [pressWindows + 1][halfBlock]int16
	halvesNext int // the half block being filled
}

// verdict is what judging a window leaves for the checks made over a press.
type verdict struct {
	purity float64 // share of the window's energy in the two tones; a pure pair scores block/2
	wr, wc float64 // frequencies of the row and column tones, radians per sample
}

// NewDetector returns a detector for one call's received audio.
func NewDetector() *Detector {
	d := &Detector{
		minToneEnergy: math.Pow(halfBlock*toneAmplitude(minToneLevelDBm0), 2),
		normalTwist:   dbToPower(normalTwistDB),
		reverseTwist:  dbToPower(reverseTwistDB),
		relativePeak:  dbToPower(relativePeakDB),
	}
	for k := range 8 {
		w := 2 * math.Pi * dtmfFrequency(k) / SampleRate
		d.omega[k] = w
		d.cosw[k] = math.Cos(w)
		d.sinw[k] = math.Sin(w)
		d.coef[k] = 2 * math.Cos(w)
		d.rot[k] = cmplx.Exp(complex(0, -w*(halfBlock-1)))
		d.shift[k] = cmplx.Exp(complex(0, -w*halfBlock))
	}
	for r := range 4 {
		for c := range 4 {
			d.halfKernels[r][c] = d.pairKernels(r, c, d.omega[r], d.omega[4+c], halfBlock)
		}
	}
	return d
}

// Reset forgets all audio seen so far, as if the detector were new.
func (d *Detector) Reset() {
	d.s1, d.s2 = [8]float64{}, [8]float64{}
	d.energy, d.fill = 0, 0
	d.prev, d.prevEnergy, d.havePrev = [8]complex128{}, 0, false
	d.run, d.runLen, d.current, d.misses = 0, 0, 0, 0
	d.recent, d.recentNext = [pressWindows]verdict{}, 0
	d.halves, d.halvesNext = [pressWindows + 1][halfBlock]int16{}, 0
}

// Process feeds received audio to the detector and, before it returns, calls
// emit once for each key press that reaches its minimum duration within pcm.
// It does not allocate.
func (d *Detector) Process(pcm []int16, emit func(key rune)) {
	for len(pcm) > 0 {
		n := min(halfBlock-d.fill, len(pcm))
		copy(d.halves[d.halvesNext][d.fill:], pcm[:n])
		d.accumulate(pcm[:n])
		d.fill += n
		pcm = pcm[n:]
		if d.fill == halfBlock {
			d.endHalfBlock(emit)
		}
	}
}

// accumulate runs the eight Goertzel filters and the energy sum over samples.
// The filters advance side by side, sample by sample, so that the processor
// overlaps their eight independent recurrences: run one after another, each
// waits on its own previous result, which is three times slower.
func (d *Detector) accumulate(samples []int16) {
	c0, c1, c2, c3, c4, c5, c6, c7 := d.coef[0], d.coef[1], d.coef[2], d.coef[3], d.coef[4], d.coef[5], d.coef[6], d.coef[7]
	a0, a1, a2, a3, a4, a5, a6, a7 := d.s1[0], d.s1[1], d.s1[2], d.s1[3], d.s1[4], d.s1[5], d.s1[6], d.s1[7]
	b0, b1, b2, b3, b4, b5, b6, b7 := d.s2[0], d.s2[1], d.s2[2], d.s2[3], d.s2[4], d.s2[5], d.s2[6], d.s2[7]
	e := d.energy
	for _, x := range samples {
		v := float64(x)
		a0, b0 = v+c0*a0-b0, a0
		a1, b1 = v+c1*a1-b1, a1
		a2, b2 = v+c2*a2-b2, a2
		a3, b3 = v+c3*a3-b3, a3
		a4, b4 = v+c4*a4-b4, a4
		a5, b5 = v+c5*a5-b5, a5
		a6, b6 = v+c6*a6-b6, a6
		a7, b7 = v+c7*a7-b7, a7
		e += v * v
	}
	d.s1 = [8]float64{a0, a1, a2, a3, a4, a5, a6, a7}
	d.s2 = [8]float64{b0, b1, b2, b3, b4, b5, b6, b7}
	d.energy = e
}

// endHalfBlock turns the filters' state into DFT values, judges the window
// made of the previous and this half block, and starts the next half block.
func (d *Detector) endHalfBlock(emit func(key rune)) {
	var cur [8]complex128
	for k := range 8 {
		// The Goertzel output after M samples is e^{jω(M−1)}·X(ω), with
		// X(ω) = Σ x[n]e^{−jωn} the half block's DFT value.
		y := complex(d.s1[k]-d.cosw[k]*d.s2[k], d.sinw[k]*d.s2[k])
		cur[k] = d.rot[k] * y
	}
	energy := d.energy
	d.s1, d.s2 = [8]float64{}, [8]float64{}
	d.energy, d.fill = 0, 0

	if d.havePrev {
		hit, v := d.judge(&d.prev, &cur, d.prevEnergy+energy)
		d.step(hit, v, emit)
	}
	d.prev, d.prevEnergy, d.havePrev = cur, energy, true
	d.halvesNext = (d.halvesNext + 1) % len(d.halves)
}

// step advances hits-to-begin and misses-to-end by one window's verdict: the
// key it holds (0 for none) and, for a key, what the press checks need.
func (d *Detector) step(hit byte, v verdict, emit func(key rune)) {
	d.recent[d.recentNext] = v
	d.recentNext = (d.recentNext + 1) % len(d.recent)
	if hit == d.run {
		d.runLen++
	} else {
		d.run, d.runLen = hit, 1
	}
	if d.current != 0 {
		if hit == d.current {
			d.misses = 0
		} else if d.misses++; d.misses >= missesToEnd {
			d.current = 0
		}
	}
	if hit != 0 && hit != d.current && d.runLen >= hitsToBegin && d.pure() && !d.voiced() {
		d.current, d.misses = hit, 0
		emit(rune(hit))
	}
}

// pure reports whether the last windows, all hits of the current run, hold on
// average at least pressToTotalEnergy of their energy in the two tones.
func (d *Detector) pure() bool {
	var sum float64
	for _, v := range d.recent {
		sum += v.purity
	}
	return sum >= pressToTotalEnergy*float64(len(d.recent))
}

// judge returns the key that the window of halves a and b holds, or 0, and
// for a key the share of the window's energy, total, in its two tones and
// their frequencies. The tests run cheapest first, so most windows (silence,
// speech, noise) cost little.
func (d *Detector) judge(a, b *[8]complex128, total float64) (key byte, v verdict) {
	var w [8]complex128
	var p [8]float64
	for k := range 8 {
		w[k] = a[k] + d.shift[k]*b[k]
		p[k] = sq(w[k])
	}
	r, c := strongest(p[0:4]), 4+strongest(p[4:8])
	// A filter reads a tone at most about 6.5 dB low (4.3 dB for 1633 Hz
	// 2.5 % off, 2.2 dB of leakage from a row tone 8 dB stronger), so 9 dB
	// below the threshold is a safe first cut.
	if p[r] < d.minToneEnergy/8 || p[c] < d.minToneEnergy/8 {
		return 0, verdict{}
	}

	// A rectangular window leaks: a row tone 8 dB above its column tone
	// changes the column filter's reading by up to ±2 dB (the whole twist
	// margin), and a tone 1.5 % off its filter reads 1.4 dB low. So first
	// measure each tone's frequency from its phase advance between the two
	// half blocks (leakage removed as if the tones were on frequency, which
	// is close enough for the phase), then read both tones' levels off the
	// window at the frequencies found.
	hk := &d.halfKernels[r][c-4]
	ar, ac := resolve(a[r], a[c], hk)
	br, bc := resolve(b[r], b[c], hk)
	rowOffset, colOffset := d.offset(r, ar, br), d.offset(c, ac, bc)
	if math.Abs(rowOffset) > freqTolerance || math.Abs(colOffset) > freqTolerance {
		return 0, verdict{}
	}
	wr, wc := d.omega[r]*(1+rowOffset), d.omega[c]*(1+colOffset)
	if math.Abs(wc/(2*wr)-1) < octaveTolerance {
		return 0, verdict{}
	}

	wk := d.pairKernels(r, c-4, wr, wc, block)
	rowTone, colTone := resolve(w[r], w[c], &wk)
	er, ec := sq(rowTone), sq(colTone)
	switch {
	case er < d.minToneEnergy || ec < d.minToneEnergy:
		return 0, verdict{}
	// Twist, as Asterisk: the column (high) tone against the row (low) tone.
	case ec > er*d.reverseTwist || er > ec*d.normalTwist:
		return 0, verdict{}
	case er+ec < toneToTotalEnergy*total:
		return 0, verdict{}
	}

	// Relative peaks: the other rows against the row tone, the other
	// columns against the column tone. Their readings include the two
	// tones' own leakage, which with a row tone 8 dB above its column tone
	// is enough to fail the test on its own: where it fails, take the
	// leakage out and look again.
	for i := range 8 {
		if i == r || i == c {
			continue
		}
		tone := er
		if i >= 4 {
			tone = ec
		}
		if p[i]*d.relativePeak > tone && d.residual(&w, i, rowTone, wr, colTone, wc)*d.relativePeak > tone {
			return 0, verdict{}
		}
	}
	return keypad[4*r+c-4], verdict{purity: (er + ec) / total, wr: wr, wc: wc}
}

// offset returns the relative frequency offset of the tone whose half-block
// DFT values at filter k are a then b. For a tone at ω+δ, b·conj(a) turns by
// (ω+δ)·51, so after removing ω·51 its phase is δ·51; the ±π range of the
// phase covers ±78 Hz, beyond every filter's pass band.
func (d *Detector) offset(k int, a, b complex128) float64 {
	delta := cmplx.Phase(b*cmplx.Conj(a)*d.shift[k]) / halfBlock
	return delta / d.omega[k]
}

// residual returns the energy filter k reads over the window w beyond what
// the row tone (Goertzel value row at wr) and the column tone leak into it.
func (d *Detector) residual(w *[8]complex128, k int, row complex128, wr float64, col complex128, wc float64) float64 {
	leak := (row*kernel(wr-d.omega[k], block) + col*kernel(wc-d.omega[k], block)) / block
	return sq(w[k] - leak)
}

// pairKernels describes how the filters of row r and column c read two tones
// at wr and wc radians per sample over n samples: a tone of complex amplitude
// A at ω reads A·K(ω−ω_k) in the filter at ω_k, where K is the kernel below.
// The values are scaled by 1/n so that a tone on its filter's frequency reads
// its Goertzel value.
type pairKernels struct {
	rowOnRow, colOnRow, rowOnCol, colOnCol complex128
}

func (d *Detector) pairKernels(r, c int, wr, wc float64, n int) pairKernels {
	scale := complex(1/float64(n), 0)
	return pairKernels{
		rowOnRow: kernel(wr-d.omega[r], n) * scale,
		colOnRow: kernel(wc-d.omega[r], n) * scale,
		rowOnCol: kernel(wr-d.omega[4+c], n) * scale,
		colOnCol: kernel(wc-d.omega[4+c], n) * scale,
	}
}

// resolve splits the readings x of a row filter and y of a column filter into
// the two tones that explain them, x = R·rowOnRow + C·colOnRow and
// y = R·rowOnCol + C·colOnCol, and returns R and C as the Goertzel values
// each tone would give on its own frequency.
func resolve(x, y complex128, k *pairKernels) (row, col complex128) {
	inv := 1 / (k.rowOnRow*k.colOnCol - k.colOnRow*k.rowOnCol)
	return (x*k.colOnCol - k.colOnRow*y) * inv, (k.rowOnRow*y - k.rowOnCol*x) * inv
}

// kernel returns Σ_{i<n} e^{jΔi} = e^{jΔ(n−1)/2}·sin(nΔ/2)/sin(Δ/2), the
// reading of an n-sample DFT filter for a unit tone Δ radians per sample off
// its frequency (the Dirichlet kernel of the rectangular window).
func kernel(delta float64, n int) complex128 {
	half := delta / 2
	mag := float64(n)
	if s := math.Sin(half); math.Abs(s) > 1e-12 {
		mag = math.Sin(float64(n)*half) / s
	}
	sin, cos := math.Sincos(half * float64(n-1))
	return complex(mag*cos, mag*sin)
}

// strongest returns the index of the largest of p.
func strongest(p []float64) int {
	best := 0
	for i := 1; i < len(p); i++ {
		if p[i] > p[best] {
			best = i
		}
	}
	return best
}

func sq(z complex128) float64 { return real(z)*real(z) + imag(z)*imag(z) }

// dbToPower converts a level difference in decibels to a power ratio.
func dbToPower(db float64) float64 { return math.Pow(10, db/10) }

// toneAmplitude is the peak amplitude, in linear PCM units, of a sine at level
// dBm0.
func toneAmplitude(dBm0 float64) float64 {
	return 32767 * math.Pow(10, (dBm0-fullScaleDBm0)/20)
}
