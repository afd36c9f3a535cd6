package dtmf

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// ErrUnknownKey is returned for a rune that is not one of the sixteen DTMF
// keys 0-9, *, #, A-D.
var ErrUnknownKey = errors.New("dtmf: not a DTMF key")

// ErrToneOptions is returned for tone options that cannot be met: a duration
// that is not positive, a level that would clip, a frequency past 4 kHz.
var ErrToneOptions = errors.New("dtmf: bad tone options")

// defaultLevelDBm0 is the level of each tone when none is given: the nominal
// sending level of a telephone's keypad (ITU-T Q.23 and spandsp's
// DEFAULT_DTMF_TX_LEVEL).
const defaultLevelDBm0 = -10

// ToneOptions shape one DTMF tone pair.
type ToneOptions struct {
	// Duration of the tone pair; must be positive.
	Duration time.Duration
	// LevelDBm0 is the level of the low (row) tone in dBm0; zero means −10
	// (two tones at 0 dBm0 would clip anyway).
	LevelDBm0 float64
	// TwistDB is the level of the high (column) tone minus the low one:
	// negative is the usual "normal" twist, positive "reverse" twist.
	TwistDB float64
	// FreqOffset shifts both frequencies by this fraction, e.g. 0.015 for
	// +1.5 %.
	FreqOffset float64
}

// Tone returns the tone pair of key as 8 kHz linear PCM, starting at zero
// phase with no ramp, so the first and last samples are the hardest case for
// a detector measuring duration.
func Tone(key rune, opts ToneOptions) ([]int16, error) {
	r, c, ok := keyPosition(key)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownKey, key)
	}
	if opts.Duration <= 0 {
		return nil, fmt.Errorf("%w: duration %v", ErrToneOptions, opts.Duration)
	}
	level := opts.LevelDBm0
	if level == 0 {
		level = defaultLevelDBm0
	}
	return dualTone(samplesIn(opts.Duration),
		dtmfFrequency(r)*(1+opts.FreqOffset), level,
		dtmfFrequency(4+c)*(1+opts.FreqOffset), level+opts.TwistDB)
}

// Silence returns d of 8 kHz linear PCM silence; none for d ≤ 0.
func Silence(d time.Duration) []int16 {
	return make([]int16, max(samplesIn(d), 0))
}

// samplesIn returns the number of 8 kHz samples in d, rounded to the nearest.
func samplesIn(d time.Duration) int {
	return int(math.Round(d.Seconds() * SampleRate))
}

// keyPosition returns the row and column of key on the keypad.
func keyPosition(key rune) (row, col int, ok bool) {
	i := strings.IndexRune(keypad, key)
	if i < 0 {
		return 0, 0, false
	}
	return i / 4, i % 4, true
}

// dualTone returns n samples of two sines, at frequencies f1 and f2 hertz and
// levels l1 and l2 dBm0.
func dualTone(n int, f1, l1, f2, l2 float64) ([]int16, error) {
	for _, f := range []float64{f1, f2} {
		if !(f > 0 && f < SampleRate/2) {
			return nil, fmt.Errorf("%w: %.1f Hz is outside 0-4000 Hz", ErrToneOptions, f)
		}
	}
	a1, a2 := toneAmplitude(l1), toneAmplitude(l2)
	if a1+a2 > math.MaxInt16 {
		return nil, fmt.Errorf("%w: %.1f and %.1f dBm0 together clip", ErrToneOptions, l1, l2)
	}
	w1, w2 := 2*math.Pi*f1/SampleRate, 2*math.Pi*f2/SampleRate
	pcm := make([]int16, n)
	for i := range pcm {
		t := float64(i)
		pcm[i] = int16(math.Round(a1*math.Sin(w1*t) + a2*math.Sin(w2*t)))
	}
	return pcm, nil
}
