package prompts

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/zaf/g711"
)

// law is a G.711 companding law: what a caller hears went through one.
type law string

const (
	ulaw law = "PCMU"
	alaw law = "PCMA"
)

// channel is the way from the hotline to a caller's ear: a level change,
// line noise, and the G.711 encoder and decoder.
type channel struct {
	law    law
	gainDB float64 // applied to the prompts before noise
	snrDB  float64 // noise below the speech level; 0 for none
	rng    *rand.Rand
}

// carry returns what the caller receives for the audio sent.
func (c channel) carry(sent []int16) []int16 {
	g := math.Pow(10, c.gainDB/20)
	sigma := 0.0
	if c.snrDB > 0 {
		sigma = speechRMS(sent) * g * math.Pow(10, -c.snrDB/20)
	}
	out := make([]int16, len(sent))
	for i, s := range sent {
		v := float64(s) * g
		if sigma > 0 {
			v += sigma * c.rng.NormFloat64()
		}
		v = max(-32768, min(32767, math.Round(v)))
		switch c.law {
		case ulaw:
			out[i] = g711.DecodeUlawFrame(g711.EncodeUlawFrame(int16(v)))
		case alaw:
			out[i] = g711.DecodeAlawFrame(g711.EncodeAlawFrame(int16(v)))
		default:
			out[i] = int16(v)
		}
	}
	return out
}

// speechRMS is the RMS of the 20 ms blocks that carry sound, the level that
// a signal-to-noise ratio for speech is quoted against.
func speechRMS(pcm []int16) float64 {
	var e float64
	var n int
	for b := 0; b+FrameSamples <= len(pcm); b += FrameSamples {
		var be float64
		for _, s := range pcm[b : b+FrameSamples] {
			be += float64(s) * float64(s)
		}
		if be/FrameSamples > 100*100 { // above -50 dBFS
			e += be
			n += FrameSamples
		}
	}
	if n == 0 {
		return 0
	}
	return math.Sqrt(e / float64(n))
}

// stream assembles what the hotline sends: prompts, silence and noise,
// remembering where each prompt begins.
type stream struct {
	pcm    []int16
	played []Heard
	rng    *rand.Rand
}

// silence appends n samples of low comfort noise (about -65 dBFS), as a
// line carries between prompts when the far end sends RFC 3389 comfort noise.
func (s *stream) silence(n int) {
	for range n {
		s.pcm = append(s.pcm, int16(s.rng.NormFloat64()*18))
	}
}

// play appends the first n samples of p (all of it when n < 0 or n is more).
func (s *stream) play(p *Prompt, n int) {
	complete := n < 0 || n >= len(p.PCM)
	if complete {
		n = len(p.PCM)
	}
	s.played = append(s.played, Heard{
		ID: p.ID, Lang: p.Lang, Complete: complete,
		Start:  samplesToDuration(len(s.pcm)),
		Length: samplesToDuration(n),
	})
	s.pcm = append(s.pcm, p.PCM[:n]...)
}

func mustGet(t testing.TB, c *Catalog, id ID, lang Lang) *Prompt {
	t.Helper()
	p, err := c.Get(id, lang)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func defaultCatalog(t testing.TB) *Catalog {
	t.Helper()
	c, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	return c
}
