package media

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/hotline12345/hotline/media/dtmf"
	"github.com/hotline12345/hotline/prompts"
)

// t0 is when the synthesized audio starts.
var t0 = time.Date(2026, time.December, 7, 10, 0, 0, 0, time.UTC)

// classify feeds pcm to a classifier in 20 ms packets, as a stream does,
// and returns what it heard.
func classify(pcm []int16) []Sound {
	var heard []Sound
	c := NewClassifier(ClassifierOptions{}, func(s Sound) { heard = append(heard, s) })
	for i := 0; i < len(pcm); i += FrameSamples {
		c.Process(pcm[i:min(i+FrameSamples, len(pcm))], t0.Add(time.Duration(i)*time.Second/SampleRate))
	}
	return heard
}

func samples(d time.Duration) int { return int(d * SampleRate / time.Second) }

// sine is d of a tone at freq and level dBFS (of its peak).
func sine(freq, dBFS float64, d time.Duration) []int16 {
	a := 32767 * math.Pow(10, dBFS/20)
	out := make([]int16, samples(d))
	for i := range out {
		out[i] = int16(a * math.Sin(2*math.Pi*freq*float64(i)/SampleRate))
	}
	return out
}

// noise is d of white noise at about dBFS RMS.
func noise(rng *rand.Rand, dBFS float64, d time.Duration) []int16 {
	a := 32767 * math.Pow(10, dBFS/20)
	out := make([]int16, samples(d))
	for i := range out {
		out[i] = int16(a * rng.NormFloat64())
	}
	return out
}

// mix adds b onto a, from its start.
func mix(a, b []int16) []int16 {
	out := slices.Clone(a)
	for i := range min(len(a), len(b)) {
		out[i] = int16(max(-32768, min(32767, int(a[i])+int(b[i]))))
	}
	return out
}

// speechLike is d of syllables: noise shaped by a 4 Hz envelope, as
// syllables are, at about -20 dBFS, each "word" gap 150 ms.
func speechLike(rng *rand.Rand, d time.Duration) []int16 {
	out := noise(rng, -20, d)
	for i := range out {
		tm := float64(i) / SampleRate
		env := 0.5 + 0.5*math.Sin(2*math.Pi*4*tm)
		if math.Mod(tm, 0.8) > 0.65 { // a pause between words
			env = 0
		}
		// A voiced buzz under the noise: harmonics of 150 Hz.
		var buzz float64
		for h := 1; h <= 12; h++ {
			buzz += math.Sin(2*math.Pi*150*float64(h)*tm) / float64(h)
		}
		out[i] = int16(env * (float64(out[i])*0.5 + 3000*buzz))
	}
	return out
}

func kinds(heard []Sound) []SoundKind {
	var k []SoundKind
	for _, s := range heard {
		k = append(k, s.Kind)
	}
	return k
}

// TestClassifierCNG: the T.30 calling tone, 0.5 s of 1100 Hz every 3.5 s,
// on a line with some noise and off by as much as T.30 allows, is a fax
// burst after burst, each at its time and length, and never voice.
func TestClassifierCNG(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, freq := range []float64{1100, 1100 - 38, 1100 + 38} {
		var pcm []int16
		for range 3 {
			pcm = append(pcm, sine(freq, -15, 500*time.Millisecond)...)
			pcm = append(pcm, make([]int16, samples(3*time.Second))...)
		}
		pcm = mix(pcm, noise(rng, -60, 11*time.Second))
		heard := classify(pcm)
		if len(heard) != 3 {
			t.Fatalf("%v Hz: heard %+v, want three CNG bursts", freq, heard)
		}
		for i, s := range heard {
			at := t0.Add(time.Duration(i) * 3500 * time.Millisecond)
			if s.Kind != SoundFaxCalling || s.At.Sub(at).Abs() > 20*time.Millisecond || (s.Length-500*time.Millisecond).Abs() > 20*time.Millisecond {
				t.Errorf("%v Hz: burst %d: %+v, want CNG at %v for 500 ms", freq, i, s, at)
			}
		}
	}
}

// TestClassifierCED: an answering fax's 2100 Hz tone is reported once,
// after 2 s.
func TestClassifierCED(t *testing.T) {
	heard := classify(append(sine(2100, -12, 3300*time.Millisecond), make([]int16, SampleRate)...))
	if len(heard) != 1 || heard[0].Kind != SoundFaxAnswer || heard[0].Length != 2*time.Second {
		t.Fatalf("heard %+v, want one CED of 2 s", heard)
	}
}

// TestClassifierNotFax: a steady 1100 Hz tone longer than a CNG burst,
// and DTMF keys held for exactly a CNG burst's length (or short and
// quick, as dialled), are not a fax.
func TestClassifierNotFax(t *testing.T) {
	var held, quick []int16
	for _, k := range "0123456789*#ABCD" {
		long, err := dtmf.Tone(k, dtmf.ToneOptions{Duration: 500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		held = append(append(held, long...), make([]int16, samples(time.Second))...)
		short, _ := dtmf.Tone(k, dtmf.ToneOptions{Duration: 80 * time.Millisecond, LevelDBm0: -4})
		quick = append(append(quick, short...), make([]int16, samples(80*time.Millisecond))...)
	}
	for name, pcm := range map[string][]int16{
		"1100 Hz for 2 s": append(sine(1100, -15, 2*time.Second), make([]int16, SampleRate)...),
		"DTMF held 0.5 s": held,
		"DTMF dialled":    append(quick, make([]int16, SampleRate)...),
	} {
		for _, s := range classify(pcm) {
			if s.Kind != SoundVoice {
				t.Errorf("%s: heard %+v", name, s)
			}
		}
	}
}

// TestClassifierVoice: short bursts of speech-like sound are voices of
// about their length, a 4 s greeting is reported once at 2.5 s, and
// silence or a quiet line is nothing.
func TestClassifierVoice(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	quiet := func(d time.Duration) []int16 { return noise(rng, -65, d) }

	// "Hello?" twice, 0.6 s each, 1.5 s apart.
	hello := slices.Concat(quiet(time.Second), speechLike(rng, 600*time.Millisecond), quiet(1500*time.Millisecond),
		speechLike(rng, 600*time.Millisecond), quiet(time.Second))
	heard := classify(hello)
	if !slices.Equal(kinds(heard), []SoundKind{SoundVoice, SoundVoice}) {
		t.Fatalf("hello: heard %+v, want two voices", heard)
	}
	for i, s := range heard {
		at := t0.Add(time.Second + time.Duration(i)*2100*time.Millisecond)
		if s.At.Sub(at).Abs() > 50*time.Millisecond || s.Length < 450*time.Millisecond || s.Length > 650*time.Millisecond {
			t.Errorf("hello %d: %+v, want about 0.6 s at %v", i, s, at)
		}
	}

	greeting := slices.Concat(quiet(500*time.Millisecond), speechLike(rng, 4*time.Second), quiet(2*time.Second))
	heard = classify(greeting)
	if len(heard) != 1 || heard[0].Kind != SoundVoice || heard[0].Length != 2500*time.Millisecond {
		t.Fatalf("greeting: heard %+v, want one voice reported at 2.5 s", heard)
	}

	for name, pcm := range map[string][]int16{
		"silence":    make([]int16, 5*SampleRate),
		"quiet line": quiet(5 * time.Second),
		"a click":    slices.Concat(quiet(time.Second), noise(rng, -10, 20*time.Millisecond), quiet(time.Second)),
	} {
		if heard := classify(pcm); len(heard) != 0 {
			t.Errorf("%s: heard %+v", name, heard)
		}
	}
}

// TestClassifierPromptsAreVoice: every spoken prompt of the catalog, real
// speech in both languages, is voice and never a fax, a sentence one
// voice.
func TestClassifierPromptsAreVoice(t *testing.T) {
	c, err := prompts.Default()
	if err != nil {
		t.Fatal(err)
	}
	for _, lang := range c.Langs() {
		for _, id := range c.IDs() {
			p, _ := c.Get(id, lang)
			heard := classify(append(slices.Clone(p.PCM), make([]int16, SampleRate)...))
			for _, s := range heard {
				if s.Kind != SoundVoice {
					t.Errorf("%s/%s: heard %+v", lang, id, s)
				}
			}
			if len(heard) == 0 {
				t.Errorf("%s/%s: heard nothing", lang, id)
			}
			if id == prompts.HoldMusic || p.Duration() < 4*time.Second {
				continue
			}
			// A sentence said whole is one voice: pauses between its words
			// do not break it.
			if !slices.ContainsFunc(heard, func(s Sound) bool { return s.Length >= 1200*time.Millisecond }) {
				t.Errorf("%s/%s (%v): heard %+v, want a voice of a sentence's length", lang, id, p.Duration(), heard)
			}
		}
	}
}
