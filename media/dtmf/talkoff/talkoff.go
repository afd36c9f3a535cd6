// Package talkoff makes audio that holds no key press yet is what an in-band
// DTMF detector hears all day on a citizen-service line: Mandarin and English
// callers from espeak-ng across its voices, pitches and speeds, speaking in
// sentences with pauses between them; hold music; and callers with music
// behind them. Each piece is band-limited as a telephone channel is, set to a
// telephone level, and coded as G.711 µ-law. A detector that reports a key
// in it has been talked off (ITU-T Q.24's signal imitation).
//
// The same options make the same audio: every choice comes from a seeded
// generator, and SoX runs without dither. It needs espeak-ng and sox, and
// for music Debian's asterisk-moh-opsound-wav.
package talkoff

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/zaf/g711"
)

// SampleRate is the rate of every piece: 8 kHz, as G.711.
const SampleRate = 8000

// DefaultMusicDir holds the hold music of Debian's asterisk-moh-opsound-wav:
// five pieces, 18 minutes in all, as 8 kHz 16-bit WAV.
const DefaultMusicDir = "/usr/share/asterisk/moh"

// ErrNoMusic is returned when the music folder holds no WAV file.
var ErrNoMusic = errors.New("talkoff: no music (apt-get install asterisk-moh-opsound-wav)")

// Options choose the audio to make.
type Options struct {
	// Seed picks every voice, sentence, pause, level and stretch of music.
	Seed uint64
	// Length is how much audio to make at least; the last piece ends past it.
	Length time.Duration
	// MusicDir holds the music, as WAV files; empty means DefaultMusicDir.
	MusicDir string
}

// Kind says what a piece holds.
type Kind int

const (
	Speech          Kind = iota // a caller's turn: a few sentences with pauses
	Music                       // music alone, as on hold
	SpeechOverMusic             // a caller's turn with music playing behind
)

func (k Kind) String() string {
	switch k {
	case Speech:
		return "speech"
	case Music:
		return "music"
	case SpeechOverMusic:
		return "speech over music"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Piece is one stretch of the audio.
type Piece struct {
	Kind Kind
	// Language of the speech, "Mandarin" or "English"; empty for music.
	Language string
	// Description says how the piece was made: voice, pitch, speed,
	// channel, level, music file and its speed.
	Description string
	// Audio is the piece as 8 kHz G.711 µ-law, one byte a sample.
	Audio []byte
}

// Duration is the length of the piece's audio.
func (p Piece) Duration() time.Duration {
	return time.Duration(len(p.Audio)) * time.Second / SampleRate
}

// Generate makes pieces until their length reaches opts.Length, and calls
// yield with each in turn; it stops at yield's first error and returns it.
func Generate(ctx context.Context, opts Options, yield func(Piece) error) error {
	espeak, err := exec.LookPath("espeak-ng")
	if err != nil {
		return fmt.Errorf("talkoff: %w (apt-get install espeak-ng)", err)
	}
	sox, err := exec.LookPath("sox")
	if err != nil {
		return fmt.Errorf("talkoff: %w (apt-get install sox)", err)
	}
	dir := opts.MusicDir
	if dir == "" {
		dir = DefaultMusicDir
	}
	music, err := findMusic(ctx, sox, dir)
	if err != nil {
		return err
	}
	g := generator{
		rng:    rand.New(rand.NewPCG(opts.Seed, 0x12345)),
		espeak: espeak,
		sox:    sox,
		music:  music,
	}
	var made time.Duration
	for made < opts.Length {
		p, err := g.piece(ctx)
		if err != nil {
			return err
		}
		made += p.Duration()
		if err := yield(p); err != nil {
			return err
		}
	}
	return nil
}

type generator struct {
	rng         *rand.Rand
	espeak, sox string
	music       []musicFile
}

type musicFile struct {
	path    string
	seconds float64
}

// findMusic lists the WAV files of dir with their lengths.
func findMusic(ctx context.Context, sox, dir string) ([]musicFile, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.wav"))
	if err != nil || len(paths) == 0 {
		return nil, fmt.Errorf("%w in %s", ErrNoMusic, dir)
	}
	var files []musicFile
	for _, p := range paths {
		out, err := exec.CommandContext(ctx, sox, "--i", "-D", p).Output()
		if err != nil {
			return nil, fmt.Errorf("talkoff: sox --i -D %s: %w", p, err)
		}
		seconds, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
		if err != nil {
			return nil, fmt.Errorf("talkoff: length of %s: %w", p, err)
		}
		files = append(files, musicFile{p, seconds})
	}
	return files, nil
}

// A voice: espeak-ng's language and one of its variants (the +name of
// espeak-ng --voices=variant), men's, women's and Klatt-synthesized.
var (
	mandarinVoices = []string{"cmn"}
	englishVoices  = []string{"en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc"}
	variants       = []string{"", "f1", "f2", "f3", "f4", "f5", "m1", "m2", "m3", "m4", "m5", "m6", "m7",
		"klatt", "klatt2", "klatt3", "klatt4", "klatt6", "Alicia", "Annie", "anika", "aunty", "belinda",
		"linda", "steph", "grandma", "edward", "john", "max", "quincy", "zac", "Andrea", "croak"}
)

// channel is how a caller's line shapes the audio, as SoX effects.
type channel struct {
	name    string
	effects []string
}

var channels = []channel{
	// An analogue line or a handset's filter: ITU-T G.712's 300-3400 Hz.
	{"300-3400 Hz, 2-pole", []string{"highpass", "300", "lowpass", "3400"}},
	{"300-3400 Hz, steep", []string{"sinc", "300-3400"}},
	// A VoIP handset: G.711's own 4 kHz band, nothing cut below.
	{"0-4000 Hz", nil},
}

func (g *generator) piece(ctx context.Context) (Piece, error) {
	// About half Mandarin speech, a third English, the rest music alone
	// or behind a caller.
	var p Piece
	var pcm []float64
	var err error
	switch r := g.rng.Float64(); {
	case r < 0.45:
		p.Kind, p.Language = Speech, "Mandarin"
	case r < 0.75:
		p.Kind, p.Language = Speech, "English"
	case r < 0.9:
		p.Kind = Music
	default:
		p.Kind, p.Language = SpeechOverMusic, "Mandarin"
		if g.rng.IntN(2) == 1 {
			p.Language = "English"
		}
	}
	ch := channels[g.rng.IntN(len(channels))]
	switch p.Kind {
	case Speech:
		pcm, p.Description, err = g.turn(ctx, p.Language, ch)
		if err != nil {
			return Piece{}, err
		}
		level := -30 + 15*g.rng.Float64()
		setLevel(pcm, level)
		p.Description += fmt.Sprintf(", %.0f dBm0", level)
	case Music:
		seconds := 15 + 30*g.rng.Float64()
		pcm, p.Description, err = g.musicStretch(ctx, seconds, ch)
		if err != nil {
			return Piece{}, err
		}
		level := -30 + 15*g.rng.Float64()
		setLevel(pcm, level)
		p.Description += fmt.Sprintf(", %.0f dBm0", level)
	case SpeechOverMusic:
		var what string
		pcm, what, err = g.turn(ctx, p.Language, ch)
		if err != nil {
			return Piece{}, err
		}
		speech := -30 + 15*g.rng.Float64()
		setLevel(pcm, speech)
		behind, tune, err := g.musicStretch(ctx, float64(len(pcm))/SampleRate, ch)
		if err != nil {
			return Piece{}, err
		}
		under := 6 + 14*g.rng.Float64()
		setLevel(behind, speech-under)
		for i := range pcm {
			if i < len(behind) {
				pcm[i] += behind[i]
			}
		}
		p.Description = fmt.Sprintf("%s, %.0f dBm0, over %s %.0f dB below", what, speech, tune, under)
	}
	p.Audio = ulaw(pcm)
	return p, nil
}

// turn returns a caller's turn: two to six sentences in one voice, each after
// a pause, as a caller speaks; the pitch drifts a little from one sentence
// to the next.
func (g *generator) turn(ctx context.Context, language string, ch channel) ([]float64, string, error) {
	voices, sentences, slowest := mandarinVoices, mandarinSentences, 100
	if language == "English" {
		voices, sentences, slowest = englishVoices, englishSentences, 120
	}
	voice := voices[g.rng.IntN(len(voices))]
	if v := variants[g.rng.IntN(len(variants))]; v != "" {
		voice += "+" + v
	}
	pitch := g.rng.IntN(100)
	speed := slowest + g.rng.IntN(101)
	gap := 0 // espeak-ng -g: pause between words, in 10 ms
	if g.rng.IntN(4) == 0 {
		gap = 1 + g.rng.IntN(4)
	}
	n := 2 + g.rng.IntN(5)
	var pcm []float64
	for range n {
		pcm = append(pcm, make([]float64, int((0.2+1.3*g.rng.Float64())*SampleRate))...)
		text := sentences[g.rng.IntN(len(sentences))]
		p := min(99, max(0, pitch+g.rng.IntN(9)-4))
		s, err := g.speak(ctx, voice, p, speed, gap, text, ch)
		if err != nil {
			return nil, "", err
		}
		pcm = append(pcm, s...)
	}
	pcm = append(pcm, make([]float64, int((0.2+0.8*g.rng.Float64())*SampleRate))...)
	desc := fmt.Sprintf("%s -p %d±4 -s %d", voice, pitch, speed)
	if gap > 0 {
		desc += fmt.Sprintf(" -g %d", gap)
	}
	return pcm, fmt.Sprintf("%s, %d sentences, %s", desc, n, ch.name), nil
}

// speak returns text as espeak-ng says it, through the channel, at 8 kHz.
func (g *generator) speak(ctx context.Context, voice string, pitch, speed, gap int, text string, ch channel) ([]float64, error) {
	gen := exec.CommandContext(ctx, g.espeak, "-v", voice, "-p", strconv.Itoa(pitch), "-s", strconv.Itoa(speed),
		"-g", strconv.Itoa(gap), "--stdout", text)
	wav, err := gen.Output()
	if err != nil {
		return nil, fmt.Errorf("talkoff: espeak-ng -v %s: %w", voice, err)
	}
	return g.convert(ctx, bytes.NewReader(wav), []string{"-t", "wav", "-"}, ch.effects)
}

// musicStretch returns about seconds of one of the music files, from a point
// chosen at random and played 0.8 to 1.25 times as fast, so that its notes
// fall on frequencies other than the recording's.
func (g *generator) musicStretch(ctx context.Context, seconds float64, ch channel) ([]float64, string, error) {
	m := g.music[g.rng.IntN(len(g.music))]
	speed := 0.8 + 0.45*g.rng.Float64()
	need := math.Min(seconds*speed, m.seconds)
	start := g.rng.Float64() * (m.seconds - need)
	effects := append([]string{"trim", fmt.Sprintf("%.3f", start), fmt.Sprintf("%.3f", need),
		"speed", fmt.Sprintf("%.4f", speed), "rate", strconv.Itoa(SampleRate)}, ch.effects...)
	pcm, err := g.convert(ctx, nil, []string{m.path}, effects)
	if err != nil {
		return nil, "", err
	}
	return pcm, fmt.Sprintf("%s from %.0f s at ×%.2f, %s", filepath.Base(m.path), start, speed, ch.name), nil
}

// convert runs sox over input (a file, or stdin when in is not nil) and
// returns 8 kHz mono samples, without dither so that runs repeat exactly.
func (g *generator) convert(ctx context.Context, in *bytes.Reader, input, effects []string) ([]float64, error) {
	args := append([]string{"-D", "-V1"}, input...)
	args = append(args, "-t", "raw", "-r", strconv.Itoa(SampleRate), "-c", "1", "-b", "16", "-e", "signed-integer", "-L", "-")
	args = append(args, effects...)
	cmd := exec.CommandContext(ctx, g.sox, args...)
	if in != nil {
		cmd.Stdin = in
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	raw, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("talkoff: sox %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	pcm := make([]float64, len(raw)/2)
	for i := range pcm {
		pcm[i] = float64(int16(binary.LittleEndian.Uint16(raw[2*i:])))
	}
	return pcm, nil
}

// fullScaleDBm0 is the level of a full-scale sine in the G.711 convention.
const fullScaleDBm0 = 3.17

// setLevel scales pcm so that its active level is dBm0: the mean power of
// its 20 ms frames within 30 dB of the loudest, a simple form of ITU-T
// P.56's active speech level that leaves pauses out.
func setLevel(pcm []float64, dBm0 float64) {
	const frame = SampleRate / 50
	var powers []float64
	loudest := 0.0
	for i := 0; i+frame <= len(pcm); i += frame {
		var e float64
		for _, v := range pcm[i : i+frame] {
			e += v * v
		}
		powers = append(powers, e/frame)
		loudest = max(loudest, e/frame)
	}
	var sum float64
	var n int
	for _, p := range powers {
		if p >= loudest/1000 {
			sum += p
			n++
		}
	}
	if n == 0 || sum == 0 {
		return
	}
	// A sine of amplitude A has power A²/2; full scale is +3.17 dBm0.
	fullScale := 32767.0 * 32767.0 / 2
	want := fullScale * math.Pow(10, (dBm0-fullScaleDBm0)/10)
	gain := math.Sqrt(want / (sum / float64(n)))
	for i := range pcm {
		pcm[i] *= gain
	}
}

// ulaw codes pcm as G.711 µ-law, clipping at full scale.
func ulaw(pcm []float64) []byte {
	out := make([]byte, len(pcm))
	for i, v := range pcm {
		out[i] = g711.EncodeUlawFrame(int16(math.Round(max(math.MinInt16, min(math.MaxInt16, v)))))
	}
	return out
}

// Decode returns a piece's audio as 16-bit linear samples, as a receiver
// decodes it.
func Decode(ulaw []byte) []int16 {
	pcm := make([]int16, len(ulaw))
	for i, b := range ulaw {
		pcm[i] = g711.DecodeUlawFrame(b)
	}
	return pcm
}

// WriteWAV writes µ-law audio as a WAV file (format 7, G.711 µ-law), for
// listening to a piece a detector took for a key.
func WriteWAV(path string, ulaw []byte) error {
	var h bytes.Buffer
	le := binary.LittleEndian
	h.WriteString("RIFF")
	binary.Write(&h, le, uint32(4+26+12+8+len(ulaw)))
	h.WriteString("WAVEfmt ")
	binary.Write(&h, le, uint32(18))
	binary.Write(&h, le, uint16(7)) // WAVE_FORMAT_MULAW
	binary.Write(&h, le, uint16(1))
	binary.Write(&h, le, uint32(SampleRate))
	binary.Write(&h, le, uint32(SampleRate))
	binary.Write(&h, le, uint16(1))
	binary.Write(&h, le, uint16(8))
	binary.Write(&h, le, uint16(0))
	h.WriteString("fact")
	binary.Write(&h, le, uint32(4))
	binary.Write(&h, le, uint32(len(ulaw)))
	h.WriteString("data")
	binary.Write(&h, le, uint32(len(ulaw)))
	h.Write(ulaw)
	return os.WriteFile(path, h.Bytes(), 0o644)
}
