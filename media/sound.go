package media

import (
	"math"
	"time"
)

// SoundKind is what a Classifier heard.
type SoundKind string

// The kinds of sounds a Classifier reports.
const (
	// SoundVoice is speech-like sound: energy above the voice level that
	// is not one of the fax tones, its pauses shorter than the hangover
	// bridged.
	SoundVoice SoundKind = "voice"
	// SoundFaxCalling is one burst of a calling fax's CNG tone: 1100 Hz
	// ±38 Hz, 0.5 s on and 3 s off (ITU-T T.30 §5.2.2).
	SoundFaxCalling SoundKind = "fax_cng"
	// SoundFaxAnswer is an answering fax's CED tone: 2100 Hz ±15 Hz for
	// 2.6 to 4 s (ITU-T T.30 §5.2.1), reported once it has lasted 2 s.
	SoundFaxAnswer SoundKind = "fax_ced"
)

// Sound is one thing a Classifier heard.
type Sound struct {
	Kind   SoundKind
	At     time.Time // when it began
	Length time.Duration
}

// ClassifierOptions tune a Classifier; zero values take the defaults.
type ClassifierOptions struct {
	// VoiceLevel is the level (dBFS, RMS over 10 ms; a full-scale sine is
	// −3) above which a stretch of audio may be voice; default −40, well
	// above a line's idle noise and below quiet speech.
	VoiceLevel float64
	// Hangover is the pause that ends a voice; shorter ones, between
	// words, do not. Default 500 ms.
	Hangover time.Duration
	// MinVoice is the shortest voice reported (clicks and pops are
	// shorter); default 100 ms, app_amd's minimum word length.
	MinVoice time.Duration
	// LongVoice is when a voice still going is reported, once, with this
	// Length: default 2.5 s, enough to tell a machine's greeting from a
	// person's hello without waiting for its end.
	LongVoice time.Duration
}

func (o *ClassifierOptions) defaults() {
	if o.VoiceLevel == 0 {
		o.VoiceLevel = -40
	}
	if o.Hangover <= 0 {
		o.Hangover = 500 * time.Millisecond
	}
	if o.MinVoice <= 0 {
		o.MinVoice = 100 * time.Millisecond
	}
	if o.LongVoice <= 0 {
		o.LongVoice = 2500 * time.Millisecond
	}
}

// Blocks of the classifier: 10 ms, so that a 1100 Hz tone off by the 38 Hz
// T.30 allows still fills most of a block's Goertzel bin, and a burst's
// length is known to 10 ms.
const (
	blockSamples = SampleRate / 100
	blockLength  = 10 * time.Millisecond
)

// The fax tones as the classifier looks for them. A block is a tone's when
// that tone holds toneShare of its energy, measured at the nominal
// frequency and 25 Hz either side (so that the ±38 Hz of CNG loses little
// to the Goertzel's 100 Hz bins), at toneLevel dBFS or more. DTMF never
// passes: its two tones share the energy, and none is near 1100 or 2100 Hz
// (ITU-T Q.23). A CNG burst is 0.4 to 0.8 s of such blocks, allowing one
// block's gap (a lost packet); CED is 2 s of them.
const (
	cngFreq   = 1100
	cedFreq   = 2100
	toneShare = 0.7
	toneLevel = -45
	cngMin    = 40 // blocks
	cngMax    = 80
	cedMin    = 200
)

// Classifier tells speech-like sound and fax tones apart in received audio,
// for a flow that must know whether a person, an answering machine or a
// fax answered (after Asterisk's app_amd and its dsp.c fax detection,
// written anew). Feed it decoded audio in order with Process; it calls
// emit as sounds end (a CNG burst, a voice after its hangover) or pass a
// bound (CED at 2 s, a voice at LongVoice). It is not safe for concurrent
// use: one goroutine, the stream's receiver, feeds it.
type Classifier struct {
	opts ClassifierOptions
	emit func(Sound)

	buf  [blockSamples]float64
	n    int       // samples in buf
	next time.Time // when the next block begins

	// The voice being heard: since when, its last voiced block's end, and
	// whether it has been reported (at LongVoice).
	voiceAt, voiceEnd time.Time
	inVoice, reported bool
	voiced            int // blocks

	cng     toneRun
	ced     toneRun
	cedSent bool
}

// toneRun counts the blocks of a tone heard in a row.
type toneRun struct {
	at     time.Time
	blocks int
	gap    int // blocks without the tone since its last one
}

// NewClassifier returns a classifier that reports to emit, which must not
// block.
func NewClassifier(opts ClassifierOptions, emit func(Sound)) *Classifier {
	opts.defaults()
	return &Classifier{opts: opts, emit: emit}
}

// Process classifies pcm, 8 kHz samples whose first was received at at.
func (c *Classifier) Process(pcm []int16, at time.Time) {
	// The time of the samples held over from the last call, told by this
	// call's: packets are the clock, and the gaps between them are lost.
	c.next = at.Add(-time.Duration(c.n) * time.Second / SampleRate)
	for _, s := range pcm {
		c.buf[c.n] = float64(s) / 32768
		c.n++
		if c.n == blockSamples {
			c.block(c.next)
			c.next = c.next.Add(blockLength)
			c.n = 0
		}
	}
}

// block classifies one 10 ms block that began at t.
func (c *Classifier) block(t time.Time) {
	var energy float64
	for _, x := range c.buf {
		energy += x * x
	}
	level := 10 * math.Log10(energy/blockSamples+1e-12)
	cngShare, cedShare := c.share(cngFreq, energy), c.share(cedFreq, energy)
	c.cngBlock(level >= toneLevel && cngShare >= toneShare, t)
	c.cedBlock(level >= toneLevel && cedShare >= toneShare, t)
	// A block half filled by a tone (its start or end) is not voice either.
	c.voiceBlock(level >= c.opts.VoiceLevel && max(cngShare, cedShare) < toneShare/2, t)
}

// share is the part of the block's energy in a tone near freq: the
// strongest of three Goertzel filters, freq and 25 Hz either side, against
// what a pure tone of the block's energy would give (N/2 times the energy).
func (c *Classifier) share(freq float64, energy float64) float64 {
	if energy == 0 {
		return 0
	}
	var best float64
	for _, f := range [...]float64{freq - 25, freq, freq + 25} {
		best = max(best, goertzel(c.buf[:], f))
	}
	return best / (energy * blockSamples / 2)
}

// goertzel is the power of x at freq: |X(freq)|².
func goertzel(x []float64, freq float64) float64 {
	k := 2 * math.Cos(2*math.Pi*freq/SampleRate)
	var s1, s2 float64
	for _, v := range x {
		s1, s2 = v+k*s1-s2, s1
	}
	return s1*s1 + s2*s2 - k*s1*s2
}

// cngBlock follows a CNG burst: it is reported when it ends, if it lasted
// as a burst does.
func (c *Classifier) cngBlock(tone bool, t time.Time) {
	r := &c.cng
	switch {
	case tone:
		if r.blocks == 0 {
			r.at = t
		}
		r.blocks += 1 + r.gap
		r.gap = 0
	case r.blocks > 0 && r.gap == 0:
		r.gap = 1 // one block may be lost
	case r.blocks > 0:
		if r.blocks >= cngMin && r.blocks <= cngMax {
			c.emit(Sound{Kind: SoundFaxCalling, At: r.at, Length: time.Duration(r.blocks) * blockLength})
		}
		*r = toneRun{}
	}
}

// cedBlock follows a CED tone: it is reported once it has lasted cedMin
// blocks.
func (c *Classifier) cedBlock(tone bool, t time.Time) {
	r := &c.ced
	switch {
	case tone:
		if r.blocks == 0 {
			r.at = t
		}
		r.blocks += 1 + r.gap
		r.gap = 0
		if r.blocks >= cedMin && !c.cedSent {
			c.cedSent = true
			c.emit(Sound{Kind: SoundFaxAnswer, At: r.at, Length: time.Duration(r.blocks) * blockLength})
		}
	case r.blocks > 0 && r.gap == 0:
		r.gap = 1
	default:
		*r = toneRun{}
		c.cedSent = false
	}
}

// voiceBlock follows a voice: it starts with a voiced block, bridges
// pauses shorter than the hangover, is reported when it has lasted
// LongVoice and, if not by then, when it ends with MinVoice of voiced
// blocks in it.
func (c *Classifier) voiceBlock(voiced bool, t time.Time) {
	end := t.Add(blockLength)
	if voiced {
		if !c.inVoice {
			c.inVoice, c.reported, c.voiceAt, c.voiced = true, false, t, 0
		}
		c.voiced++
		c.voiceEnd = end
		if !c.reported && end.Sub(c.voiceAt) >= c.opts.LongVoice {
			c.reported = true
			c.emit(Sound{Kind: SoundVoice, At: c.voiceAt, Length: c.opts.LongVoice})
		}
		return
	}
	if !c.inVoice || end.Sub(c.voiceEnd) < c.opts.Hangover {
		return
	}
	c.inVoice = false
	if !c.reported && time.Duration(c.voiced)*blockLength >= c.opts.MinVoice {
		c.emit(Sound{Kind: SoundVoice, At: c.voiceAt, Length: c.voiceEnd.Sub(c.voiceAt)})
	}
}
