package dtmf

import (
	"errors"
	"math"
	"math/cmplx"
	"testing"
	"time"
)

// levelAt returns the level in dBm0 of the sine at f hertz in pcm, from the
// DFT over all of pcm (1 Hz wide for a second of audio).
func levelAt(pcm []int16, f float64) float64 {
	var x complex128
	for i, v := range pcm {
		x += complex(float64(v), 0) * cmplx.Exp(complex(0, -2*math.Pi*f*float64(i)/SampleRate))
	}
	amplitude := 2 * cmplx.Abs(x) / float64(len(pcm))
	return 20*math.Log10(amplitude/32767) + fullScaleDBm0
}

func TestTone(t *testing.T) {
	for _, tt := range []struct {
		key               rune
		opts              ToneOptions
		low, high         float64 // frequencies
		lowDBm0, highDBm0 float64
	}{
		{'1', ToneOptions{Duration: time.Second}, 697, 1209, -10, -10},
		{'0', ToneOptions{Duration: time.Second, LevelDBm0: -20}, 941, 1336, -20, -20},
		{'#', ToneOptions{Duration: time.Second, LevelDBm0: -6, TwistDB: -8}, 941, 1477, -6, -14},
		{'D', ToneOptions{Duration: time.Second, TwistDB: 4}, 941, 1633, -10, -6},
		{'5', ToneOptions{Duration: time.Second, FreqOffset: 0.015}, 770 * 1.015, 1336 * 1.015, -10, -10},
		{'A', ToneOptions{Duration: time.Second, FreqOffset: -0.035}, 697 * 0.965, 1633 * 0.965, -10, -10},
	} {
		pcm, err := Tone(tt.key, tt.opts)
		if err != nil {
			t.Fatalf("Tone(%q, %+v): %v", tt.key, tt.opts, err)
		}
		if len(pcm) != SampleRate {
			t.Errorf("Tone(%q, %+v) is %d samples, want %d", tt.key, tt.opts, len(pcm), SampleRate)
		}
		for _, c := range []struct{ f, want float64 }{{tt.low, tt.lowDBm0}, {tt.high, tt.highDBm0}} {
			if got := levelAt(pcm, c.f); math.Abs(got-c.want) > 0.05 {
				t.Errorf("Tone(%q, %+v) at %.1f Hz: %.2f dBm0, want %v", tt.key, tt.opts, c.f, got, c.want)
			}
		}
		// Nothing at the frequency the other way off.
		if got := levelAt(pcm, tt.low*0.9); got > -50 {
			t.Errorf("Tone(%q, %+v) has %.1f dBm0 at %.1f Hz", tt.key, tt.opts, got, tt.low*0.9)
		}
	}
}

func TestToneDuration(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want int
	}{
		{40 * time.Millisecond, 320},
		{24875 * time.Microsecond, 199},
		{125 * time.Microsecond, 1},
		{2 * time.Second, 16000},
	} {
		pcm, err := Tone('9', ToneOptions{Duration: c.d})
		if err != nil || len(pcm) != c.want {
			t.Errorf("Tone('9', %v) = %d samples, %v; want %d", c.d, len(pcm), err, c.want)
		}
		if got := len(Silence(c.d)); got != c.want {
			t.Errorf("Silence(%v) = %d samples, want %d", c.d, got, c.want)
		}
	}
	for _, x := range Silence(time.Second) {
		if x != 0 {
			t.Fatal("Silence is not silent")
		}
	}
	if got := Silence(-time.Second); len(got) != 0 {
		t.Errorf("Silence(-1s) = %d samples", len(got))
	}
}

func TestToneErrors(t *testing.T) {
	for _, c := range []struct {
		key  rune
		opts ToneOptions
		want error
	}{
		{'E', ToneOptions{Duration: time.Second}, ErrUnknownKey},
		{'a', ToneOptions{Duration: time.Second}, ErrUnknownKey},
		{'1', ToneOptions{}, ErrToneOptions},
		{'1', ToneOptions{Duration: -time.Millisecond}, ErrToneOptions},
		// Two tones at −2 dBm0 each peak above full scale.
		{'1', ToneOptions{Duration: time.Second, LevelDBm0: -2}, ErrToneOptions},
		{'1', ToneOptions{Duration: time.Second, LevelDBm0: -6, TwistDB: 6}, ErrToneOptions},
		{'D', ToneOptions{Duration: time.Second, FreqOffset: 1.5}, ErrToneOptions},
		{'1', ToneOptions{Duration: time.Second, FreqOffset: -1}, ErrToneOptions},
	} {
		if pcm, err := Tone(c.key, c.opts); !errors.Is(err, c.want) {
			t.Errorf("Tone(%q, %+v) = %d samples, %v; want %v", c.key, c.opts, len(pcm), err, c.want)
		}
	}
}
