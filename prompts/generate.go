package prompts

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hotline12345/hotline/prompts/internal/wav"
)

// Levels and timing of generated audio.
const (
	// peakDBFS leaves headroom under full scale so that the G.711 encoder
	// never clips (its largest code is about 0 dBFS, ITU-T G.711 Table 1).
	peakDBFS = -3
	// silenceDB below a segment's peak counts as silence when trimming.
	silenceDB = 40
	// edgeMargin of silence comes before and after the speech, and twice
	// that plus segmentGap separates two segments: about 150 ms in all.
	edgeMargin = SampleRate * 50 / 1000
	segmentGap = SampleRate * 50 / 1000
)

// GenerateOptions says where Generate reads the catalog, where it writes
// audio and manifest, and which programs it runs.
type GenerateOptions struct {
	// CatalogPath is the catalog.yaml to read.
	CatalogPath string
	// OutDir receives audio/<lang>/<id>.wav and manifest.json. Empty means
	// the folder of CatalogPath, which is where the embedded files live.
	OutDir string
	// ESpeakPath and SoxPath are the synthesizer and the audio converter;
	// empty means "espeak-ng" and "sox" found in PATH.
	ESpeakPath string
	SoxPath    string
	// Progress receives one line per prompt written; nil for none.
	Progress io.Writer
}

// MissingToolError says that a program Generate needs is not installed.
type MissingToolError struct {
	Tool    string // the program, e.g. "espeak-ng"
	Package string // the Debian package that provides it
	Err     error
}

func (e *MissingToolError) Error() string {
	return fmt.Sprintf("prompts: %s is needed to generate prompt audio: install the Debian package %q (apt-get install %s): %v",
		e.Tool, e.Package, e.Package, e.Err)
}

func (e *MissingToolError) Unwrap() error { return e.Err }

// Generate remakes every prompt's audio and the manifest from the catalog:
// espeak-ng speaks each segment, sox converts it to SampleRate mono 16-bit
// PCM and normalises its peak to -3 dBFS, silence at the edges is made
// 50 ms, segments are joined with about 150 ms of silence, and the result is
// padded with zeros to whole 20 ms frames. Music is rendered with sox synth.
// WAV files under OutDir/audio/<lang> that the catalog no longer names are
// removed, so the embedded audio is exactly the catalog.
func Generate(ctx context.Context, opts GenerateOptions) error {
	b, err := os.ReadFile(opts.CatalogPath)
	if err != nil {
		return fmt.Errorf("prompts: read catalog: %w", err)
	}
	src, err := parseSource(b)
	if err != nil {
		return err
	}
	g := generator{progress: opts.Progress}
	if g.progress == nil {
		g.progress = io.Discard
	}
	if g.espeak, err = findTool(opts.ESpeakPath, "espeak-ng", "espeak-ng"); err != nil {
		return err
	}
	if g.sox, err = findTool(opts.SoxPath, "sox", "sox"); err != nil {
		return err
	}
	out := opts.OutDir
	if out == "" {
		out = filepath.Dir(opts.CatalogPath)
	}

	var m manifestFile
	keep := make(map[string]bool)
	for _, e := range src.entries {
		for _, lang := range src.langsOf(e) {
			pcm, err := g.render(ctx, src, e, lang)
			if err != nil {
				return fmt.Errorf("prompts: generate %s/%s: %w", lang, e.id, err)
			}
			name := filepath.Join(out, filepath.FromSlash(audioPath(lang, e.id)))
			var buf bytes.Buffer
			if err := wav.Encode(&buf, SampleRate, pcm); err != nil {
				return err
			}
			if err := writeFileAtomic(name, buf.Bytes()); err != nil {
				return err
			}
			keep[name] = true
			me := manifestEntry{
				Lang:       lang,
				ID:         e.id,
				Version:    pcmVersion(pcm),
				TextSHA256: src.textHash(e, lang),
				DurationMS: samplesToDuration(len(pcm)).Milliseconds(),
			}
			m.Prompts = append(m.Prompts, me)
			fmt.Fprintf(g.progress, "%s/%s %s %d ms\n", lang, e.id, me.Version, me.DurationMS)
		}
	}
	if err := removeStale(out, src.langs(), keep); err != nil {
		return err
	}
	mb, err := m.marshal()
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(out, "manifest.json"), mb)
}

func findTool(given, name, pkg string) (string, error) {
	if given == "" {
		given = name
	}
	p, err := exec.LookPath(given)
	if err != nil {
		return "", &MissingToolError{Tool: name, Package: pkg, Err: err}
	}
	return p, nil
}

type generator struct {
	espeak, sox string
	progress    io.Writer
}

// render makes the audio of one entry in one language.
func (g generator) render(ctx context.Context, src *source, e entry, lang Lang) ([]int16, error) {
	if e.music != nil {
		return g.renderMusic(ctx, e.music)
	}
	var pcm []int16
	for i, seg := range e.texts[lang] {
		v, _ := src.voice(seg.Lang)
		say := seg.Say
		if say == "" {
			say = seg.Text
		}
		s, err := g.speak(ctx, v, say)
		if err != nil {
			return nil, err
		}
		s = trimSilence(s, edgeMargin)
		if len(s) == 0 {
			return nil, fmt.Errorf("segment %q came out silent", seg.Text)
		}
		if i > 0 {
			pcm = append(pcm, make([]int16, segmentGap)...)
		}
		pcm = append(pcm, s...)
	}
	return padToFrame(pcm), nil
}

// speak runs espeak-ng for one segment and returns SampleRate PCM.
func (g generator) speak(ctx context.Context, v voice, text string) ([]int16, error) {
	// -b 1: the text is UTF-8. --stdin: read all of it, not line by line.
	espeak := exec.CommandContext(ctx, g.espeak, "-v", v.Voice, "-s", strconv.Itoa(v.Speed), "-b", "1", "--stdin", "--stdout")
	espeak.Stdin = strings.NewReader(text)
	speech, err := run(espeak)
	if err != nil {
		return nil, err
	}
	// -R: repeatable output; -D: no dither, whose noise would make every
	// run's samples, and so every version, different.
	sox := exec.CommandContext(ctx, g.sox, "-R", "-D", "-t", "wav", "-",
		"-L", "-t", "raw", "-e", "signed-integer", "-b", "16", "-c", "1", "-r", strconv.Itoa(SampleRate), "-",
		"rate", "-h", strconv.Itoa(SampleRate),
		"gain", "-n", strconv.Itoa(peakDBFS))
	sox.Stdin = bytes.NewReader(speech)
	raw, err := run(sox)
	if err != nil {
		return nil, err
	}
	return rawToPCM(raw), nil
}

// renderMusic plays the notes one after the other, each a sine with a soft
// attack and release, at the melody's level.
func (g generator) renderMusic(ctx context.Context, m *music) ([]int16, error) {
	notes, err := parseNotes(m.Notes)
	if err != nil {
		return nil, err
	}
	var pcm []int16
	for _, n := range notes {
		dur := strconv.FormatFloat(n.seconds, 'f', 3, 64)
		release := strconv.FormatFloat(min(0.2, n.seconds/3), 'f', 3, 64)
		sox := exec.CommandContext(ctx, g.sox, "-R", "-D", "-n",
			"-L", "-t", "raw", "-e", "signed-integer", "-b", "16", "-c", "1", "-r", strconv.Itoa(SampleRate), "-",
			"synth", dur, "sine", strconv.FormatFloat(n.freq, 'f', 2, 64),
			"fade", "q", "0.03", dur, release,
			"gain", strconv.FormatFloat(m.Level, 'f', 1, 64))
		raw, err := run(sox)
		if err != nil {
			return nil, err
		}
		pcm = append(pcm, rawToPCM(raw)...)
	}
	return padToFrame(pcm), nil
}

func run(cmd *exec.Cmd) ([]byte, error) {
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %s", filepath.Base(cmd.Path), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

func rawToPCM(raw []byte) []int16 {
	pcm := make([]int16, len(raw)/2)
	for i := range pcm {
		pcm[i] = int16(binary.LittleEndian.Uint16(raw[2*i:]))
	}
	return pcm
}

// trimSilence makes the silence before and after the sound exactly margin
// samples, cutting what is longer and adding zeros where there is less
// (espeak-ng starts some words at its first sample). Silence is anything
// more than silenceDB below the peak.
func trimSilence(pcm []int16, margin int) []int16 {
	var peak int
	for _, s := range pcm {
		peak = max(peak, abs(int(s)))
	}
	if peak == 0 {
		return nil
	}
	thr := int(float64(peak) * math.Pow(10, -silenceDB/20.0))
	first, last := -1, -1
	for i, s := range pcm {
		if abs(int(s)) > thr {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	lo, hi := max(0, first-margin), min(len(pcm), last+1+margin)
	out := make([]int16, 0, last+1-first+2*margin)
	out = append(out, make([]int16, margin-(first-lo))...)
	out = append(out, pcm[lo:hi]...)
	return append(out, make([]int16, margin-(hi-last-1))...)
}

// padToFrame appends zeros up to a whole number of FrameSamples.
func padToFrame(pcm []int16) []int16 {
	if r := len(pcm) % FrameSamples; r != 0 {
		pcm = append(pcm, make([]int16, FrameSamples-r)...)
	}
	return pcm
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// note is one tone of a melody.
type note struct {
	freq    float64 // Hz
	seconds float64
}

// parseNotes reads "G3/1.0 C4/0.5 ...": scientific pitch notation (A4 is
// 440 Hz, twelve-tone equal temperament) and a length in seconds.
func parseNotes(s string) ([]note, error) {
	var out []note
	for _, f := range strings.Fields(s) {
		name, secs, ok := strings.Cut(f, "/")
		if !ok {
			return nil, fmt.Errorf("note %q: want NAME/SECONDS", f)
		}
		freq, err := noteFreq(name)
		if err != nil {
			return nil, err
		}
		d, err := strconv.ParseFloat(secs, 64)
		if err != nil || d < 0.05 || d > 10 {
			return nil, fmt.Errorf("note %q: length must be 0.05 to 10 seconds", f)
		}
		out = append(out, note{freq: freq, seconds: d})
	}
	if len(out) == 0 {
		return nil, errors.New("music has no notes")
	}
	return out, nil
}

func noteFreq(name string) (float64, error) {
	semis := map[byte]int{'C': 0, 'D': 2, 'E': 4, 'F': 5, 'G': 7, 'A': 9, 'B': 11}
	if len(name) < 2 {
		return 0, fmt.Errorf("note %q: want a letter, an optional # or b, and an octave", name)
	}
	base, ok := semis[name[0]]
	if !ok {
		return 0, fmt.Errorf("note %q: unknown letter", name)
	}
	rest := name[1:]
	switch rest[0] {
	case '#':
		base++
		rest = rest[1:]
	case 'b':
		base--
		rest = rest[1:]
	}
	oct, err := strconv.Atoi(rest)
	if err != nil || oct < 0 || oct > 8 {
		return 0, fmt.Errorf("note %q: octave must be 0 to 8", name)
	}
	midi := 12*(oct+1) + base
	return 440 * math.Pow(2, float64(midi-69)/12), nil
}

func writeFileAtomic(name string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(name), ".tmp-"+filepath.Base(name))
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), name)
}

// removeStale deletes WAV files of the catalog's languages that keep does
// not name: prompts that were renamed or dropped from the catalog.
func removeStale(out string, langs []Lang, keep map[string]bool) error {
	for _, lang := range langs {
		names, err := filepath.Glob(filepath.Join(out, "audio", string(lang), "*.wav"))
		if err != nil {
			return err
		}
		for _, n := range names {
			if !keep[n] {
				if err := os.Remove(n); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
