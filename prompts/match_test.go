package prompts

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

var laws = []law{ulaw, alaw}

// lineChannel is a fair but imperfect line: a level change of up to ±3 dB
// and noise 30 dB below the speech.
func lineChannel(l law, rng *rand.Rand) channel {
	return channel{law: l, gainDB: -3 + 6*rng.Float64(), snrDB: 30, rng: rng}
}

// lawFor is the companding law a prompt is carried over in a test that
// takes each prompt once per language: the two laws in turn, so that each
// prompt goes over both across the languages.
func lawFor(lang, prompt int) law { return laws[(lang+prompt)%len(laws)] }

func TestMatchEveryPrompt(t *testing.T) {
	t.Parallel()
	c := defaultCatalog(t)
	m := NewMatcher(c)
	for li, lang := range c.Langs() {
		for i, id := range c.IDs() {
			l := lawFor(li, i)
			t.Run(fmt.Sprintf("%s/%s/%s", l, lang, id), func(t *testing.T) {
				t.Parallel()
				rng := rand.New(rand.NewPCG(uint64(len(id)), uint64(len(l)+len(lang))))
				s := stream{rng: rng}
				// Any sample offset, not a whole frame.
				s.silence(800 + rng.IntN(4000))
				s.play(mustGet(t, c, id, lang), -1)
				s.silence(2400)
				got := m.Match(lineChannel(l, rng).carry(s.pcm))
				checkHeard(t, c, got, s.played)
			})
		}
	}
}

func TestMatchTruncated(t *testing.T) {
	t.Parallel()
	c := defaultCatalog(t)
	m := NewMatcher(c)
	rng := rand.New(rand.NewPCG(7, 11))
	for li, lang := range c.Langs() {
		for i, id := range c.IDs() {
			l := lawFor(li, i)
			p := mustGet(t, c, id, lang)
			if p.Duration() < time.Second {
				continue
			}
			t.Run(fmt.Sprintf("%s/%s/%s", l, lang, id), func(t *testing.T) {
				// Barge-in: the caller presses a key after at least 400 ms
				// and the next prompt starts at once, or the line goes quiet.
				cut := 3200 + rng.IntN(len(p.PCM)-3200-2*SampleRate/5)
				s := stream{rng: rng}
				s.silence(1000 + rng.IntN(2000))
				s.play(p, cut)
				if rng.IntN(2) == 0 {
					s.play(mustGet(t, c, InvalidKey, lang), -1)
				}
				s.silence(2000)
				got := m.Match(lineChannel(l, rng).carry(s.pcm))
				// A prompt whose words begin with another's whole words
				// (三十一日 with 三) is, cut short, the same audio as that one.
				if len(got) > 0 && got[0].Complete && slices.Contains(beginsWith(c, p), got[0].ID) {
					return
				}
				if len(got) == 0 || got[0].Complete {
					t.Fatalf("cut after %v: heard %+v, want %s cut short", samplesToDuration(cut), got, id)
				}
				// Prompts that begin with the same words cannot be told
				// apart by their start alone.
				if got[0].ID != id && !sameStart(c, got[0], s.played[0], int(got[0].Length*SampleRate/time.Second)) {
					t.Fatalf("cut after %v: heard %s, want %s", samplesToDuration(cut), got[0].ID, id)
				}
				// What was heard ends at the cut, or before it when the cut
				// falls into a pause: then the sound ended at the pause.
				n := int(got[0].Length * SampleRate / time.Second)
				if n > cut+block || n < minHeard {
					t.Fatalf("cut after %v: length %v", samplesToDuration(cut), got[0].Length)
				}
				for b := n + block; b+block <= cut-block; b += block {
					if blockRMS(p.PCM[b:b+block]) > speechRMS(p.PCM)/5 {
						t.Fatalf("cut after %v: length %v, but there is sound at %v", samplesToDuration(cut), got[0].Length, samplesToDuration(b))
					}
				}
				got[0].ID, got[0].Length = id, samplesToDuration(cut)
				checkHeard(t, c, got, s.played)
			})
		}
	}
}

// beginsWith lists the prompts in p's language whose whole words are the
// first words of p's.
func beginsWith(c *Catalog, p *Prompt) []ID {
	var ids []ID
	for _, id := range c.IDs() {
		q := mustGetFrom(c, id, p.Lang)
		words := strings.TrimRight(q.Text, "。.，,")
		if id != p.ID && words != "" && strings.HasPrefix(p.Text, words) {
			ids = append(ids, id)
		}
	}
	return ids
}

func mustGetFrom(c *Catalog, id ID, lang Lang) *Prompt {
	p, err := c.Get(id, lang)
	if err != nil {
		panic(err)
	}
	return p
}

// TestMatchCutInSpeech cuts a prompt in the middle of a word: the length
// heard is then the cut, to within a block.
func TestMatchCutInSpeech(t *testing.T) {
	t.Parallel()
	c := defaultCatalog(t)
	m := NewMatcher(c)
	p := mustGet(t, c, CategoryMenu, Mandarin)
	cut := loudAt(p.PCM, 2*SampleRate)
	s := stream{rng: rand.New(rand.NewPCG(1, 2))}
	s.silence(1234)
	s.play(p, cut)
	s.silence(4000)
	got := m.Match(channel{law: ulaw}.carry(s.pcm))
	if len(got) != 1 || got[0].ID != CategoryMenu || got[0].Complete {
		t.Fatalf("heard %+v", got)
	}
	if d := got[0].Length - samplesToDuration(cut); d < -40*time.Millisecond || d > 20*time.Millisecond {
		t.Errorf("length %v, cut at %v", got[0].Length, samplesToDuration(cut))
	}
}

// TestMatchShortPromptNotReported: less than minHeard of a prompt is not
// enough to say it was played.
func TestMatchShortPromptNotReported(t *testing.T) {
	t.Parallel()
	c := defaultCatalog(t)
	m := NewMatcher(c)
	s := stream{rng: rand.New(rand.NewPCG(3, 4))}
	s.silence(2000)
	s.pcm = append(s.pcm, mustGet(t, c, ServiceClosed, Mandarin).PCM[:1600]...)
	s.silence(4000)
	if got := m.Match(channel{law: alaw}.carry(s.pcm)); len(got) != 0 {
		t.Fatalf("200 ms of a prompt: heard %+v", got)
	}
}

func TestMatchAppealNumberReadout(t *testing.T) {
	t.Parallel()
	c := defaultCatalog(t)
	m := NewMatcher(c)
	rng := rand.New(rand.NewPCG(5, 6))
	for _, l := range laws {
		for _, lang := range c.Langs() {
			t.Run(fmt.Sprintf("%s/%s", l, lang), func(t *testing.T) {
				s := stream{rng: rng}
				s.silence(333)
				// Back to back, as the flow plays them: no gap but the
				// prompts' own edges.
				s.play(mustGet(t, c, AppealNumber, lang), -1)
				for _, d := range "2026011700389" {
					s.play(mustGet(t, c, Digit(d), lang), -1)
				}
				s.silence(400)
				s.play(mustGet(t, c, QueuePosition, lang), -1)
				s.play(mustGet(t, c, Digit('1'), lang), -1)
				s.play(mustGet(t, c, QueuePositionEnd, lang), -1)
				s.play(mustGet(t, c, Goodbye, lang), -1)
				s.silence(800)
				checkHeard(t, c, m.Match(lineChannel(l, rng).carry(s.pcm)), s.played)
			})
		}
	}
}

// TestMatchDigitsApart plays every digit after every other one, so that each
// digit must be told from all the others on its own (Mandarin through
// u-law, English through A-law).
func TestMatchDigitsApart(t *testing.T) {
	t.Parallel()
	c := defaultCatalog(t)
	m := NewMatcher(c)
	rng := rand.New(rand.NewPCG(8, 9))
	for i, lang := range c.Langs() {
		for _, l := range laws[i%2 : i%2+1] {
			s := stream{rng: rng}
			s.silence(rng.IntN(500))
			for a := '0'; a <= '9'; a++ {
				for b := '0'; b <= '9'; b++ {
					s.play(mustGet(t, c, Digit(a), lang), -1)
					s.play(mustGet(t, c, Digit(b), lang), -1)
					s.silence(rng.IntN(800))
				}
			}
			got := m.Match(lineChannel(l, rng).carry(s.pcm))
			t.Run(fmt.Sprintf("%s/%s", l, lang), func(t *testing.T) { checkHeard(t, c, got, s.played) })
		}
	}
}

// TestMatchOtherLanguageNotReported: a matcher for English does not take
// Mandarin prompts for English ones.
func TestMatchOtherLanguageNotReported(t *testing.T) {
	t.Parallel()
	c := defaultCatalog(t)
	m := NewMatcher(c, English)
	s := stream{rng: rand.New(rand.NewPCG(10, 11))}
	for _, id := range c.IDs() {
		if id == HoldMusic || id == Greeting {
			continue // the same music in both; the Mandarin greeting has an English sentence
		}
		s.play(mustGet(t, c, id, Mandarin), -1)
		s.silence(800)
	}
	if got := m.Match(channel{law: ulaw}.carry(s.pcm)); len(got) != 0 {
		t.Fatalf("English matcher on Mandarin prompts heard %+v", got)
	}
}

func TestMatchNegatives(t *testing.T) {
	t.Parallel()
	c := defaultCatalog(t)
	m := NewMatcher(c)
	music := mustGet(t, c, HoldMusic, Mandarin).PCM
	cases := map[string][]int16{
		"silence":     make([]int16, 5*SampleRate),
		"white noise": whiteNoise(rand.New(rand.NewPCG(1, 1)), 5*SampleRate, 0.05),
		"loud noise":  whiteNoise(rand.New(rand.NewPCG(2, 2)), 5*SampleRate, 0.3),
		// A caller pressing 5, then 1: ITU-T Q.23 frequency pairs.
		"DTMF 5": dualTone(770, 1336, 2*SampleRate),
		"DTMF 1": dualTone(697, 1209, 2*SampleRate),
		// Hold music that resumes in the middle of the melody, as when it
		// is looped by a player that kept its position.
		"hold music from 7 s": slices.Concat(music[7*SampleRate+13:], music[SampleRate:9*SampleRate]),
		"a single tone":       dualTone(440, 0, 3*SampleRate),
	}
	for name, pcm := range cases {
		t.Run(name, func(t *testing.T) {
			for _, l := range laws {
				if got := m.Match(channel{law: l}.carry(pcm)); len(got) != 0 {
					t.Errorf("%s: heard %+v", l, got)
				}
			}
		})
	}
}

// TestMatchOtherSpeechNotReported: the same words spoken a little slower
// and lower, as another recording of them would be, are not the prompt.
func TestMatchOtherSpeechNotReported(t *testing.T) {
	t.Parallel()
	c := defaultCatalog(t)
	m := NewMatcher(c)
	rng := rand.New(rand.NewPCG(14, 15))
	for _, lang := range c.Langs() {
		s := otherSpeech(t, c, lang, rng, 15*SampleRate)
		for _, l := range laws {
			if got := m.Match(lineChannel(l, rng).carry(s)); len(got) != 0 {
				t.Errorf("%s/%s: heard %+v", lang, l, got)
			}
		}
	}
}

// otherSpeech is at least n samples of speech that is not in the catalog:
// the catalog's prompts in lang resampled to 94% speed, in random order.
func otherSpeech(t testing.TB, c *Catalog, lang Lang, rng *rand.Rand, n int) []int16 {
	ids := slices.DeleteFunc(c.IDs(), func(id ID) bool { return id == HoldMusic })
	s := stream{rng: rng}
	for len(s.pcm) < n {
		s.pcm = append(s.pcm, stretch(mustGet(t, c, ids[rng.IntN(len(ids))], lang).PCM, 1/0.94)...)
		s.silence(rng.IntN(SampleRate / 2))
	}
	return s.pcm
}

// stretch resamples pcm to factor times its length (linear interpolation).
func stretch(pcm []int16, factor float64) []int16 {
	out := make([]int16, int(float64(len(pcm)-1)*factor))
	for i := range out {
		p := float64(i) / factor
		k := int(p)
		f := p - float64(k)
		out[i] = int16(float64(pcm[k])*(1-f) + float64(pcm[k+1])*f)
	}
	return out
}

// TestMatchHoldMusicLoop: looped hold music is heard once per pass, and a
// prompt played over the end of it is still found.
func TestMatchHoldMusicLoop(t *testing.T) {
	t.Parallel()
	c := defaultCatalog(t)
	m := NewMatcher(c)
	rng := rand.New(rand.NewPCG(12, 13))
	music := mustGet(t, c, HoldMusic, Mandarin)
	s := stream{rng: rng}
	s.silence(555)
	s.play(mustGet(t, c, QueueWait, Mandarin), -1)
	s.play(music, -1)
	s.play(music, 9*SampleRate+77)
	s.play(mustGet(t, c, QueueLeaveOffer, Mandarin), -1)
	s.silence(1000)
	checkHeard(t, c, m.Match(lineChannel(ulaw, rng).carry(s.pcm)), s.played)
}

// TestHoldMusicHasNoDTMF looks for the dual tones of ITU-T Q.23 in every
// 40 ms of the hold music: one frequency of each group, both strong, is what
// a DTMF receiver takes for a key (Q.24 asks for at least 40 ms of tone).
func TestHoldMusicHasNoDTMF(t *testing.T) {
	t.Parallel()
	c := defaultCatalog(t)
	music := mustGet(t, c, HoldMusic, Mandarin).PCM
	low := []float64{697, 770, 852, 941}
	high := []float64{1209, 1336, 1477, 1633}
	const n = 320 // 40 ms
	var tones int
	for off := 0; off+n <= len(music); off += n / 2 {
		frame := toFloat(music[off : off+n])
		total := energy(frame) * n / 2 // Goertzel power of a full-scale bin
		if total == 0 {
			continue
		}
		if strongest(frame, low)/total > 0.1 && strongest(frame, high)/total > 0.1 {
			tones++
		}
	}
	if tones > 0 {
		t.Fatalf("%d frames of hold music look like DTMF", tones)
	}
	// The check itself must see a real key.
	key := toFloat(dualTone(852, 1477, n))
	if total := energy(key) * n / 2; strongest(key, low)/total < 0.1 || strongest(key, high)/total < 0.1 {
		t.Fatal("the DTMF check does not see DTMF 9")
	}
}

func strongest(x []float64, freqs []float64) float64 {
	var best float64
	for _, f := range freqs {
		best = max(best, goertzel(x, f))
	}
	return best
}

// goertzel is the power of x at frequency f (Goertzel's algorithm).
func goertzel(x []float64, f float64) float64 {
	w := 2 * math.Pi * f / SampleRate
	coeff := 2 * math.Cos(w)
	var s1, s2 float64
	for _, v := range x {
		s1, s2 = v+coeff*s1-s2, s1
	}
	return s1*s1 + s2*s2 - coeff*s1*s2
}

func whiteNoise(rng *rand.Rand, n int, rms float64) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(max(-32768, min(32767, rng.NormFloat64()*rms*32768)))
	}
	return out
}

// dualTone is f1+f2 (f2 may be 0) at -10 dBFS each, as a phone sends DTMF.
func dualTone(f1, f2 float64, n int) []int16 {
	out := make([]int16, n)
	a := 0.316 * 32767
	for i := range out {
		v := a * math.Sin(2*math.Pi*f1*float64(i)/SampleRate)
		if f2 > 0 {
			v += a * math.Sin(2*math.Pi*f2*float64(i)/SampleRate)
		}
		out[i] = int16(v)
	}
	return out
}

// loudAt returns the first sample at or after from in the middle of loud
// sound: 40 ms around it are all within 20 dB of the prompt's peak level.
func loudAt(pcm []int16, from int) int {
	for i := from; i+320 < len(pcm); i += 40 {
		if speechRMS(pcm[i-320:i+320]) > 1000 && blockRMS(pcm[i-320:i]) > 1000 && blockRMS(pcm[i:i+320]) > 1000 {
			return i
		}
	}
	panic("no loud part")
}

func blockRMS(pcm []int16) float64 {
	return math.Sqrt(energy(toFloat(pcm)) / float64(len(pcm)))
}

// sameStart says whether prompts a and b begin with the same n samples, so
// that hearing only those cannot tell them apart.
func sameStart(c *Catalog, a, b Heard, n int) bool {
	pa, err1 := c.Get(a.ID, a.Lang)
	pb, err2 := c.Get(b.ID, b.Lang)
	if err1 != nil || err2 != nil || len(pa.PCM) < n || len(pb.PCM) < n {
		return false
	}
	x, y := toFloat(pa.PCM[:n]), toFloat(pb.PCM[:n])
	var dot float64
	for i := range x {
		dot += x[i] * y[i]
	}
	return dot/math.Sqrt(energy(x)*energy(y)) > 0.9
}

// checkHeard compares what the matcher heard with what was played: the same
// prompts in order, each placed to the sample (±1 ms), complete or not.
func checkHeard(t *testing.T, c *Catalog, got, want []Heard) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("heard %d prompts, played %d:\nheard  %s\nplayed %s", len(got), len(want), list(got), list(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		same := g.ID == w.ID && g.Lang == w.Lang
		if !same {
			// Audio that is the same in several languages (hold music) is
			// reported in one of them.
			pg, err1 := c.Get(g.ID, g.Lang)
			pw, err2 := c.Get(w.ID, w.Lang)
			same = err1 == nil && err2 == nil && pg.Version == pw.Version
		}
		if !same || g.Complete != w.Complete ||
			(g.Start-w.Start).Abs() > time.Millisecond ||
			(w.Complete && (g.Length-w.Length).Abs() > time.Millisecond) {
			t.Fatalf("prompt %d: heard %+v, played %+v\nheard  %s\nplayed %s", i, g, w, list(got), list(want))
		}
	}
}

func list(hs []Heard) string {
	s := ""
	for _, h := range hs {
		s += fmt.Sprintf("%s/%s@%v ", h.Lang, h.ID, h.Start.Round(time.Millisecond))
	}
	return s
}

// BenchmarkMatch: one minute of received audio against the whole catalog in
// both languages.
func BenchmarkMatch(b *testing.B) {
	c := defaultCatalog(b)
	m := NewMatcher(c)
	rng := rand.New(rand.NewPCG(1, 2))
	s := stream{rng: rng}
	ids := c.IDs()
	for len(s.pcm) < 60*SampleRate {
		lang := c.Langs()[rng.IntN(2)]
		s.play(mustGet(b, c, ids[rng.IntN(len(ids))], lang), -1)
		s.silence(rng.IntN(4000))
	}
	rx := lineChannel(ulaw, rng).carry(s.pcm[:60*SampleRate])
	b.Run("prompts", func(b *testing.B) {
		for b.Loop() {
			m.Match(rx)
		}
	})
	// Speech that is not a prompt, such as an agent talking, is the most
	// work: nothing is matched, so every place must be checked.
	other := lineChannel(ulaw, rng).carry(otherSpeech(b, c, Mandarin, rng, 60*SampleRate)[:60*SampleRate])
	b.Run("other speech", func(b *testing.B) {
		for b.Loop() {
			m.Match(other)
		}
	})
}
