package prompts

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hotline12345/hotline/prompts/internal/wav"
)

// smallCatalog has one prompt spoken in two voices in Mandarin, one in
// English, and a two-note melody; the voices are those of the real catalog.
const smallCatalog = `
default: zh
voices:
  - {lang: zh, voice: cmn-latn-pinyin, speed: 170}
  - {lang: en, voice: en, speed: 150}
prompts:
  greeting:
    zh:
      - 您好。
      - {text: Press 9., lang: en}
    en: Welcome.
  hold_music:
    music: {level: -20, notes: C4/0.3 E4/0.3}
`

func writeCatalog(t *testing.T, dir, text string) string {
	t.Helper()
	name := filepath.Join(dir, "catalog.yaml")
	if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

// TestGenerate runs the real espeak-ng and sox.
func TestGenerate(t *testing.T) {
	dir := t.TempDir()
	catalog := writeCatalog(t, dir, smallCatalog)
	// A file of a prompt no longer in the catalog is removed.
	stale := filepath.Join(dir, "audio", "zh", "retired.wav")
	if err := os.MkdirAll(filepath.Dir(stale), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stale, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	if err := Generate(context.Background(), GenerateOptions{CatalogPath: catalog, Progress: &progress}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale audio left behind: %v", err)
	}
	if n := strings.Count(progress.String(), "\n"); n != 4 {
		t.Errorf("progress has %d lines, want one per prompt and language:\n%s", n, progress.String())
	}

	c, err := Load(os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	for _, lang := range c.Langs() {
		for _, id := range c.IDs() {
			b, err := os.ReadFile(filepath.Join(dir, "audio", string(lang), string(id)+".wav"))
			if err != nil {
				t.Fatal(err)
			}
			if len(b) < 44 || string(b[36:40]) != "data" {
				t.Errorf("%s/%s: not a canonical 44-byte header", lang, id)
			}
			rate, pcm, err := wav.Decode(b)
			if err != nil || rate != SampleRate {
				t.Fatalf("%s/%s: %d Hz, %v", lang, id, rate, err)
			}
			if len(pcm)%FrameSamples != 0 {
				t.Errorf("%s/%s: %d samples, not whole 20 ms frames", lang, id, len(pcm))
			}
			if id == HoldMusic {
				if len(pcm) != SampleRate*6/10 {
					t.Errorf("music: %d samples, want 0.6 s", len(pcm))
				}
				if p := peakDB(pcm); p > -19.8 || p < -20.2 {
					t.Errorf("music peak %.2f dBFS, want -20", p)
				}
				continue
			}
			if p := peakDB(pcm); p > -2.9 || p < -3.1 {
				t.Errorf("%s/%s: peak %.2f dBFS, want -3", lang, id, p)
			}
			// 50 ms each side, plus at most one frame of padding after.
			lead, trail := edgeSilence(pcm)
			if lead != 50*time.Millisecond || trail < 50*time.Millisecond || trail >= 70*time.Millisecond {
				t.Errorf("%s/%s: %v silence before, %v after", lang, id, lead, trail)
			}
		}
	}

	// The Mandarin greeting is two segments with about 150 ms between.
	zh := mustGet(t, c, Greeting, Mandarin)
	if gap := longestQuiet(zh.PCM); gap < 120*time.Millisecond || gap > 250*time.Millisecond {
		t.Errorf("gap between segments %v, want about 150 ms", gap)
	}
	if zh.Text != "您好。Press 9." {
		t.Errorf("text %q", zh.Text)
	}

	m, err := readManifest(os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Prompts) != 4 {
		t.Fatalf("manifest has %d entries, want 4", len(m.Prompts))
	}
	for _, e := range m.Prompts {
		p := mustGet(t, c, e.ID, e.Lang)
		i := slices.IndexFunc(c.src.entries, func(x entry) bool { return x.id == e.ID })
		if e.Version != p.Version || e.TextSHA256 != c.src.textHash(c.src.entries[i], e.Lang) || e.DurationMS != p.Duration().Milliseconds() {
			t.Errorf("manifest entry %+v does not describe its audio", e)
		}
	}
}

// TestGenerateDeterministic: the same catalog gives the same bytes, so a
// prompt's version changes only when its text does.
func TestGenerateDeterministic(t *testing.T) {
	var outs [2]string
	for i := range outs {
		outs[i] = t.TempDir()
		catalog := writeCatalog(t, outs[i], smallCatalog)
		if err := Generate(context.Background(), GenerateOptions{CatalogPath: catalog}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"manifest.json", "audio/zh/greeting.wav", "audio/en/greeting.wav", "audio/en/hold_music.wav"} {
		a, err1 := os.ReadFile(filepath.Join(outs[0], name))
		b, err2 := os.ReadFile(filepath.Join(outs[1], name))
		if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs between two runs (%v, %v)", name, err1, err2)
		}
	}
}

func longestQuiet(pcm []int16) time.Duration {
	var peak int
	for _, s := range pcm {
		peak = max(peak, abs(int(s)))
	}
	first := slices.IndexFunc(pcm, func(s int16) bool { return abs(int(s)) > peak/100 })
	best, run := 0, 0
	for _, s := range pcm[first:] {
		if abs(int(s)) > peak/100 {
			best, run = max(best, run), 0
		} else {
			run++
		}
	}
	return samplesToDuration(best)
}

func TestGenerateMissingTool(t *testing.T) {
	dir := t.TempDir()
	catalog := writeCatalog(t, dir, smallCatalog)
	for _, tc := range []struct {
		opts GenerateOptions
		pkg  string
	}{
		{GenerateOptions{CatalogPath: catalog, ESpeakPath: filepath.Join(dir, "espeak-ng")}, "espeak-ng"},
		{GenerateOptions{CatalogPath: catalog, SoxPath: "sox-not-installed-here"}, "sox"},
	} {
		err := Generate(context.Background(), tc.opts)
		var missing *MissingToolError
		if !errors.As(err, &missing) || missing.Package != tc.pkg {
			t.Errorf("err = %v, want a MissingToolError naming %q", err, tc.pkg)
		}
	}
	err := Generate(context.Background(), GenerateOptions{CatalogPath: catalog, SoxPath: "sox-not-installed-here"})
	if !errors.Is(err, exec.ErrNotFound) {
		t.Errorf("err = %v, want it to wrap exec.ErrNotFound", err)
	}
}

func TestGenerateErrors(t *testing.T) {
	dir := t.TempDir()
	if err := Generate(context.Background(), GenerateOptions{CatalogPath: filepath.Join(dir, "none.yaml")}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing catalog: %v", err)
	}
	bad := writeCatalog(t, dir, "default: zh\nprompts: {}")
	if err := Generate(context.Background(), GenerateOptions{CatalogPath: bad}); !errors.Is(err, ErrCatalog) {
		t.Errorf("bad catalog: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	good := writeCatalog(t, t.TempDir(), smallCatalog)
	if err := Generate(ctx, GenerateOptions{CatalogPath: good}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestTrimSilence(t *testing.T) {
	pcm := make([]int16, 4000)
	for i := 1000; i < 2000; i++ {
		pcm[i] = int16(10000 * math.Sin(float64(i)))
	}
	pcm[1000], pcm[1999] = 5000, -5000
	got := trimSilence(pcm, 400)
	if len(got) != 1000+2*400 || got[400] != 5000 || got[len(got)-401] != -5000 {
		t.Fatalf("trimmed to %d samples", len(got))
	}
	// Sound near the edges gets the missing silence added.
	if got := trimSilence(pcm[900:2100], 400); len(got) != 1800 || got[400] != 5000 || got[299] != 0 {
		t.Fatalf("edges: %d samples", len(got))
	}
	// Sound 40 dB below the peak is silence.
	pcm[100] = 99
	if got := trimSilence(pcm, 0); len(got) != 1000 {
		t.Fatalf("quiet sound kept: %d samples", len(got))
	}
	if trimSilence(make([]int16, 100), 10) != nil {
		t.Fatal("all silence must trim to nothing")
	}
	if got := padToFrame(make([]int16, 161)); len(got) != 320 {
		t.Fatalf("padToFrame(161) = %d", len(got))
	}
	if got := padToFrame(make([]int16, 320)); len(got) != 320 {
		t.Fatalf("padToFrame(320) = %d", len(got))
	}
}

func TestParseNotes(t *testing.T) {
	notes, err := parseNotes(" A4/1  C4/0.5\nC#5/0.25 Bb3/2 ")
	if err != nil {
		t.Fatal(err)
	}
	want := []note{{440, 1}, {261.626, 0.5}, {554.365, 0.25}, {233.082, 2}}
	if len(notes) != len(want) {
		t.Fatalf("got %v", notes)
	}
	for i := range want {
		if math.Abs(notes[i].freq-want[i].freq) > 0.01 || notes[i].seconds != want[i].seconds {
			t.Errorf("note %d = %+v, want %+v", i, notes[i], want[i])
		}
	}
	for _, bad := range []string{"", "A4", "H4/1", "A/1", "A9/1", "A4/x", "A4/0.01", "A4/11"} {
		if _, err := parseNotes(bad); err == nil {
			t.Errorf("parseNotes(%q) accepted", bad)
		}
	}
}
