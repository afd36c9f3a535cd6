package dtmf

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/zaf/g711"
)

// channel is how audio reaches the detector: as sent, or through a G.711
// codec and back, as it arrives from an RTP stream.
type channel struct {
	name string
	pass func([]int16) []int16
}

var channels = []channel{
	{"linear", func(pcm []int16) []int16 { return pcm }},
	{"µ-law", func(pcm []int16) []int16 { return g711RoundTrip(pcm, g711.EncodeUlawFrame, g711.DecodeUlawFrame) }},
	{"A-law", func(pcm []int16) []int16 { return g711RoundTrip(pcm, g711.EncodeAlawFrame, g711.DecodeAlawFrame) }},
}

func g711RoundTrip(pcm []int16, encode func(int16) uint8, decode func(uint8) int16) []int16 {
	out := make([]int16, len(pcm))
	for i, x := range pcm {
		out[i] = decode(encode(x))
	}
	return out
}

// chunkSizes are the sizes audio is fed in: 0 for all at once, then odd
// sizes and the usual 10 ms and 20 ms RTP frames.
var chunkSizes = []int{0, 1, 7, 80, 160, 1000}

// detect feeds pcm to a new detector in chunks of n samples (all at once for
// n = 0) and returns the keys reported.
func detect(pcm []int16, n int) string {
	d := NewDetector()
	var keys []rune
	emit := func(key rune) { keys = append(keys, key) }
	if n == 0 {
		n = len(pcm)
	}
	for chunk := range slices.Chunk(pcm, max(n, 1)) {
		d.Process(chunk, emit)
	}
	return string(keys)
}

// expectKeys checks that pcm yields exactly want through every channel, fed
// in every chunk size.
func expectKeys(t *testing.T, name string, pcm []int16, want string) {
	t.Helper()
	for _, ch := range channels {
		coded := ch.pass(pcm)
		for _, n := range chunkSizes {
			if got := detect(coded, n); got != want {
				t.Errorf("%s, %s, chunks of %d: got %q, want %q", name, ch.name, n, got, want)
				return
			}
		}
	}
}

// expectKeysAligned is expectKeys for one of many alignments of the same
// signal: alignment against the detector's steps is independent of the codec
// and the chunking, so every alignment is checked as sent and whole, and one
// in five through every channel and chunk size.
func expectKeysAligned(t *testing.T, name string, offset int, pcm []int16, want string) {
	t.Helper()
	if offset%5 == 0 {
		expectKeys(t, name, pcm, want)
	} else if got := detect(pcm, 0); got != want {
		t.Errorf("%s: got %q, want %q", name, got, want)
	}
}

func mustTone(t testing.TB, key rune, opts ToneOptions) []int16 {
	t.Helper()
	pcm, err := Tone(key, opts)
	if err != nil {
		t.Fatal(err)
	}
	return pcm
}

func ms(n float64) time.Duration { return time.Duration(n * float64(time.Millisecond)) }

// dial returns keys as tones of the given length and level separated by
// pauses, with a pause before the first and after the last.
func dial(t testing.TB, keys string, tone, pause time.Duration, opts ToneOptions) []int16 {
	t.Helper()
	opts.Duration = tone
	pcm := Silence(pause)
	for _, key := range keys {
		pcm = append(pcm, mustTone(t, key, opts)...)
		pcm = append(pcm, Silence(pause)...)
	}
	return pcm
}

const allKeys = "123A456B789C*0#D"

func TestDetectorAllKeys(t *testing.T) {
	expectKeys(t, "all keys", dial(t, allKeys, ms(60), ms(60), ToneOptions{}), allKeys)
	expectKeys(t, "a Mandarin IVR session", dial(t, "9213#1", ms(100), ms(300), ToneOptions{}), "9213#1")
}

func TestDetectorShortestToneAndPause(t *testing.T) {
	// Q.24: 40 ms tones separated by 40 ms pauses must all count, a key
	// pressed twice included, wherever the tones fall against the
	// detector's 51-sample steps.
	for _, key := range allKeys {
		other := rune(allKeys[(1+indexOf(key))%len(allKeys)])
		want := string([]rune{key, key, other, key})
		for offset := range halfBlock {
			pcm := slices.Concat(Silence(ms(float64(offset)/8)), dial(t, want, ms(40), ms(40), ToneOptions{}))
			expectKeysAligned(t, fmt.Sprintf("%q+%q at offset %d", key, other, offset), offset, pcm, want)
		}
	}
}

func indexOf(key rune) int {
	for i, k := range allKeys {
		if k == key {
			return i
		}
	}
	return -1
}

func TestDetectorReportsDuringTheTone(t *testing.T) {
	// A press is reported while it still sounds, so the caller's menu
	// reacts without waiting for the release, but not before 25 ms.
	for offset := range halfBlock {
		lead := 800 + offset
		pcm := slices.Concat(make([]int16, lead), mustTone(t, '5', ToneOptions{Duration: ms(40)}), Silence(ms(100)))
		d := NewDetector()
		var at []int
		for i := range pcm {
			d.Process(pcm[i:i+1], func(rune) { at = append(at, i+1) })
		}
		if len(at) != 1 {
			t.Fatalf("offset %d: %d reports", offset, len(at))
		}
		if elapsed := at[0] - lead; elapsed < 200 || elapsed > 320 {
			t.Errorf("offset %d: reported %d samples into a 320-sample tone, want 200..320", offset, elapsed)
		}
	}
}

func TestDetectorLongToneOnce(t *testing.T) {
	for _, key := range allKeys {
		pcm := slices.Concat(Silence(ms(50)), mustTone(t, key, ToneOptions{Duration: 2 * time.Second}), Silence(ms(50)))
		expectKeys(t, fmt.Sprintf("2 s of %q", key), pcm, string(key))
	}
}

func TestDetectorRejectsShortTones(t *testing.T) {
	// Q.24's non-operate time: tones under 25 ms are not key presses. The
	// longest is 199 samples (24.875 ms), at every alignment.
	for _, key := range allKeys {
		for _, d := range []time.Duration{ms(10), ms(20), ms(24.875)} {
			for offset := range halfBlock {
				pcm := slices.Concat(Silence(ms(float64(offset)/8)), dial(t, string(key), d, ms(40), ToneOptions{}))
				expectKeysAligned(t, fmt.Sprintf("%v of %q at offset %d", d, key, offset), offset, pcm, "")
			}
		}
	}
}

// detuned returns 100 ms of key with its row and column tones moved by the
// given fractions, between pauses.
func detuned(t *testing.T, key rune, rowOffset, colOffset float64) []int16 {
	t.Helper()
	r, c, _ := keyPosition(key)
	pcm, err := dualTone(800, dtmfFrequency(r)*(1+rowOffset), defaultLevelDBm0, dtmfFrequency(4+c)*(1+colOffset), defaultLevelDBm0)
	if err != nil {
		t.Fatal(err)
	}
	return slices.Concat(Silence(ms(50)), pcm, Silence(ms(50)))
}

func TestDetectorFrequencyTolerance(t *testing.T) {
	// Q.24: each frequency within ±1.5 % counts; ±3.5 % off, of either
	// tone, does not.
	for _, key := range allKeys {
		for _, off := range [][2]float64{
			{0.015, 0}, {-0.015, 0}, {0, 0.015}, {0, -0.015},
			{0.015, 0.015}, {-0.015, -0.015}, {0.015, -0.015}, {-0.015, 0.015},
		} {
			expectKeys(t, fmt.Sprintf("%q detuned %+.1f%%/%+.1f%%", key, 100*off[0], 100*off[1]), detuned(t, key, off[0], off[1]), string(key))
		}
		for _, off := range [][2]float64{
			{0.035, 0}, {-0.035, 0}, {0, 0.035}, {0, -0.035},
			{0.035, 0.035}, {-0.035, -0.035}, {0.05, 0}, {0, -0.05},
		} {
			expectKeys(t, fmt.Sprintf("%q detuned %+.1f%%/%+.1f%%", key, 100*off[0], 100*off[1]), detuned(t, key, off[0], off[1]), "")
		}
	}
}

func TestDetectorTwist(t *testing.T) {
	// The high tone may be up to 8 dB weaker (normal twist) or 4 dB
	// stronger (reverse twist) than the low one; 10 dB weaker or 6 dB
	// stronger is not DTMF.
	for _, key := range allKeys {
		for _, twist := range []float64{-8, -6, -3, 0, 2, 4} {
			pcm := dial(t, string(key), ms(100), ms(50), ToneOptions{TwistDB: twist})
			expectKeys(t, fmt.Sprintf("%q with twist %+v dB", key, twist), pcm, string(key))
		}
		for _, twist := range []float64{-10, -14, 6, 8} {
			pcm := dial(t, string(key), ms(100), ms(50), ToneOptions{TwistDB: twist, LevelDBm0: -12})
			expectKeys(t, fmt.Sprintf("%q with twist %+v dB", key, twist), pcm, "")
		}
	}
}

func TestDetectorTwistAndDetune(t *testing.T) {
	// A worn keypad can be off in level and frequency at once. A strong row
	// tone leaks into the other columns' filters, enough with 8 dB of twist
	// to fail Asterisk's relative-peak test unless the leakage is removed.
	for _, key := range allKeys {
		r, c, _ := keyPosition(key)
		for _, twist := range []float64{-8, 4} {
			for _, off := range [][2]float64{
				{0.015, 0}, {-0.015, 0}, {0, 0.015}, {0, -0.015}, {0.015, -0.015}, {-0.015, 0.015},
			} {
				pcm, err := dualTone(800, dtmfFrequency(r)*(1+off[0]), -10, dtmfFrequency(4+c)*(1+off[1]), -10+twist)
				if err != nil {
					t.Fatal(err)
				}
				pcm = slices.Concat(Silence(ms(50)), pcm, Silence(ms(50)))
				expectKeys(t, fmt.Sprintf("%q twist %+v dB detuned %+.1f%%/%+.1f%%", key, twist, 100*off[0], 100*off[1]), pcm, string(key))
			}
		}
	}
}

func TestDetectorBridgesDropOut(t *testing.T) {
	// Q.24: a break of up to 10 ms within a tone (a bad line, a lost
	// packet concealed as silence) does not make it two presses.
	tone := mustTone(t, '7', ToneOptions{Duration: ms(200)})
	for offset := range halfBlock {
		pcm := slices.Concat(Silence(ms(float64(offset)/8)), tone[:800], Silence(ms(10)), tone[880:], Silence(ms(50)))
		expectKeysAligned(t, fmt.Sprintf("10 ms break at offset %d", offset), offset, pcm, "7")
	}
}

func TestDetectorLevels(t *testing.T) {
	// From the loudest pair that does not clip down to −30 dBm0 per tone;
	// −40 dBm0 is below the threshold.
	for _, key := range allKeys {
		for _, level := range []float64{-3.1, -10, -20, -25, -30} {
			pcm := dial(t, string(key), ms(100), ms(50), ToneOptions{LevelDBm0: level})
			expectKeys(t, fmt.Sprintf("%q at %v dBm0", key, level), pcm, string(key))
		}
		for _, level := range []float64{-40, -45, -60} {
			pcm := dial(t, string(key), ms(100), ms(50), ToneOptions{LevelDBm0: level})
			expectKeys(t, fmt.Sprintf("%q at %v dBm0", key, level), pcm, "")
		}
	}
}

// addNoise adds white Gaussian noise at snrDB below the power of a DTMF pair
// at levelDBm0 per tone, clipping to 16 bits.
func addNoise(pcm []int16, levelDBm0, snrDB float64, rng *rand.Rand) []int16 {
	a := toneAmplitude(levelDBm0)
	signal := 2 * a * a / 2 // two sines of amplitude a
	sigma := math.Sqrt(signal / math.Pow(10, snrDB/10))
	out := make([]int16, len(pcm))
	for i, x := range pcm {
		out[i] = clip16(float64(x) + sigma*rng.NormFloat64())
	}
	return out
}

func clip16(v float64) int16 {
	return int16(math.Round(max(math.MinInt16, min(math.MaxInt16, v))))
}

func TestDetectorNoise(t *testing.T) {
	// Asterisk's DTMF specs: 15 dB signal-to-noise detects; no misses and
	// no extra keys, over several noise seeds.
	for seed := range uint64(4) {
		rng := rand.New(rand.NewPCG(seed, 12345))
		for _, level := range []float64{-10, -25} {
			opts := ToneOptions{LevelDBm0: level}
			cases := []struct {
				name        string
				keys        string
				tone, pause time.Duration
			}{
				{"40/40 ms", allKeys, ms(40), ms(40)},
				{"70/70 ms", "12345678900#", ms(70), ms(70)},
				{"2 s presses", "5*5", 2 * time.Second, ms(60)},
			}
			for _, c := range cases {
				pcm := addNoise(dial(t, c.keys, c.tone, c.pause, opts), level, 15, rng)
				expectKeys(t, fmt.Sprintf("%s at %v dBm0, 15 dB SNR, seed %d", c.name, level, seed), pcm, c.keys)
			}
		}
	}
}

func TestDetectorNotDigits(t *testing.T) {
	second := samplesIn(time.Second)
	cases := map[string][]int16{
		"silence":         Silence(5 * time.Second),
		"white noise":     addNoise(Silence(5*time.Second), -10, 0, rand.New(rand.NewPCG(7, 7))),
		"China dial tone": sines(second*2, 1, -10, 450),
		"Bell dial tone":  sines(second*2, 1, -13, 350, 440),
	}
	// A single sine on a DTMF frequency, soft or loud, is not a key; nor
	// are two frequencies of the same group.
	for k := range 8 {
		f := dtmfFrequency(k)
		cases[fmt.Sprintf("sine %v Hz", f)] = sines(second, 1, -10, f)
		cases[fmt.Sprintf("loud sine %v Hz", f)] = sines(second, 1, 0, f)
		group := k / 4 * 4
		cases[fmt.Sprintf("%v+%v Hz, one group", f, dtmfFrequency(group+(k+1)%4))] = sines(second, 1, -10, f, dtmfFrequency(group+(k+1)%4))
	}
	// A DTMF pair with a third tone as loud is a chord, not a key: Q.24's
	// receivers must not operate on speech and music.
	for _, key := range allKeys {
		r, c, _ := keyPosition(key)
		cases[fmt.Sprintf("chord with %q and 500 Hz", key)] = sines(second, 1, -12, dtmfFrequency(r), dtmfFrequency(4+c), 500)
		cases[fmt.Sprintf("chord with %q and 2 kHz", key)] = sines(second, 1, -12, dtmfFrequency(r), dtmfFrequency(4+c), 2000)
	}
	for name, pcm := range cases {
		expectKeys(t, name, pcm, "")
	}
}

// sines returns n samples of equal sines at level dBm0 each, at the given
// frequencies, with the whole faded in and out over fade×10 ms.
func sines(n int, fade float64, level float64, freqs ...float64) []int16 {
	a := toneAmplitude(level)
	out := make([]int16, n)
	for i := range out {
		var v float64
		for _, f := range freqs {
			v += a * math.Sin(2*math.Pi*f*float64(i)/SampleRate)
		}
		out[i] = clip16(v * envelope(i, n, int(fade*80)))
	}
	return out
}

// envelope ramps linearly over ramp samples at both ends of n.
func envelope(i, n, ramp int) float64 {
	if ramp <= 0 {
		return 1
	}
	return min(1, float64(i)/float64(ramp), float64(n-1-i)/float64(ramp))
}

func TestDetectorReset(t *testing.T) {
	tone := mustTone(t, '8', ToneOptions{Duration: ms(200)})
	var keys []rune
	emit := func(key rune) { keys = append(keys, key) }

	// Reset forgets a press in progress: the rest of the tone, shorter
	// than a press, does not count, though the whole would have.
	d := NewDetector()
	d.Process(tone[:200], emit)
	d.Reset()
	d.Process(tone[200:400], emit)
	d.Process(Silence(ms(50)), emit)
	if len(keys) != 0 {
		t.Errorf("after Reset mid-tone: reported %q", string(keys))
	}

	// Reset forgets the key being held, so holding on is a new press, as
	// for a new detector.
	d.Process(tone, emit)
	d.Reset()
	d.Process(tone, emit)
	if string(keys) != "88" {
		t.Errorf("a tone across a Reset: reported %q, want %q", string(keys), "88")
	}
}

func TestDetectorDoesNotAllocate(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	pcm := addNoise(dial(t, allKeys, ms(50), ms(50), ToneOptions{TwistDB: -8}), -10, 20, rng)
	d := NewDetector()
	n := 0
	emit := func(rune) { n++ }
	pos := 0
	allocs := testing.AllocsPerRun(500, func() {
		if pos+160 > len(pcm) {
			pos = 0
		}
		d.Process(pcm[pos:pos+160], emit)
		pos += 160
	})
	if allocs != 0 {
		t.Errorf("Process allocates %v times per 20 ms frame", allocs)
	}
	if n == 0 {
		t.Error("no key reported: the measuring paths did not run")
	}
}

func TestThresholdConstants(t *testing.T) {
	d := NewDetector()
	// The level threshold in Goertzel units is that of a sine at
	// −35 dBm0 on its filter's frequency: (amplitude × N/2)².
	sine := sines(block, 0, minToneLevelDBm0, dtmfFrequency(4))
	var s1, s2 float64
	for _, x := range sine {
		s1, s2 = float64(x)+d.coef[4]*s1-s2, s1
	}
	power := s1*s1 + s2*s2 - d.coef[4]*s1*s2
	if ratio := power / d.minToneEnergy; math.Abs(10*math.Log10(ratio)) > 0.1 {
		t.Errorf("a %v dBm0 sine reads %.2f dB from the threshold", float64(minToneLevelDBm0), 10*math.Log10(ratio))
	}
	// A full-scale sine is +3.17 dBm0.
	if a := toneAmplitude(fullScaleDBm0); math.Abs(a-32767) > 0.5 {
		t.Errorf("toneAmplitude(%v) = %v, want 32767", fullScaleDBm0, a)
	}
}

func BenchmarkDetector(b *testing.B) {
	// One second of what a call sends: speech-like noise, then a key press
	// sequence at 10 keys a second.
	rng := rand.New(rand.NewPCG(3, 4))
	pcm := slices.Concat(addNoise(Silence(ms(500)), -20, 0, rng), dial(b, "12345", ms(50), ms(50), ToneOptions{}))[:SampleRate]
	d := NewDetector()
	emit := func(rune) {}
	for b.Loop() {
		for frame := range slices.Chunk(pcm, 160) {
			d.Process(frame, emit)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/50, "ns/frame")
}
