package prompts

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/zaf/g711"
)

// soundFile is the path WriteAsteriskSounds gives prompt id in lang's
// folder, in format ext.
func soundFile(dir string, lang Lang, id ID, ext string) string {
	return filepath.Join(dir, string(lang), filepath.FromSlash(AsteriskSoundName(id))+"."+ext)
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAsteriskSoundName(t *testing.T) {
	cases := map[ID]string{
		Greeting: "hotline/greeting",
		// extensions.conf plays this name when the application is down.
		AppUnavailable: "hotline/app_unavailable",
		Digit('7'):     "hotline/digit_7",
	}
	for id, want := range cases {
		if got := AsteriskSoundName(id); got != want {
			t.Errorf("AsteriskSoundName(%q) = %q, want %q", id, got, want)
		}
	}
}

func TestWriteAsteriskSounds(t *testing.T) {
	c := defaultCatalog(t)
	dir := t.TempDir()
	written, err := WriteAsteriskSounds(c, dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := len(c.Langs()) * len(c.IDs()) * 3; written != want {
		t.Errorf("written = %d, want %d (three formats of every prompt in every language)", written, want)
	}
	for _, lang := range c.Langs() {
		for _, id := range c.IDs() {
			p := mustGet(t, c, id, lang)
			checkWAV(t, readFile(t, soundFile(dir, lang, id, "wav")), p.PCM)
			checkG711(t, "ulaw", readFile(t, soundFile(dir, lang, id, "ulaw")), p.PCM, g711.DecodeUlawFrame)
			checkG711(t, "alaw", readFile(t, soundFile(dir, lang, id, "alaw")), p.PCM, g711.DecodeAlawFrame)
		}
	}
}

// checkWAV checks the canonical header Asterisk's format_wav reads (8 kHz,
// mono, 16-bit PCM) field by field, then the samples.
func checkWAV(t *testing.T, b []byte, pcm []int16) {
	t.Helper()
	if len(b) != 44+2*len(pcm) {
		t.Fatalf("WAV of %d bytes, want a 44-byte header and %d bytes of samples", len(b), 2*len(pcm))
	}
	le := binary.LittleEndian
	fields := []struct {
		name      string
		got, want uint32
	}{
		{"RIFF size", le.Uint32(b[4:]), uint32(36 + 2*len(pcm))},
		{"fmt size", le.Uint32(b[16:]), 16},
		{"format tag (PCM)", uint32(le.Uint16(b[20:])), 1},
		{"channels", uint32(le.Uint16(b[22:])), 1},
		{"sample rate", le.Uint32(b[24:]), SampleRate},
		{"byte rate", le.Uint32(b[28:]), 2 * SampleRate},
		{"block align", uint32(le.Uint16(b[32:])), 2},
		{"bits per sample", uint32(le.Uint16(b[34:])), 16},
		{"data size", le.Uint32(b[40:]), uint32(2 * len(pcm))},
	}
	if string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" || string(b[12:16]) != "fmt " || string(b[36:40]) != "data" {
		t.Fatalf("WAV header chunk ids %q %q %q %q", b[0:4], b[8:12], b[12:16], b[36:40])
	}
	for _, f := range fields {
		if f.got != f.want {
			t.Errorf("WAV %s = %d, want %d", f.name, f.got, f.want)
		}
	}
	for i, s := range pcm {
		if got := int16(le.Uint16(b[44+2*i:])); got != s {
			t.Fatalf("WAV sample %d = %d, want %d", i, got, s)
		}
	}
}

// checkG711 decodes the raw G.711 file and compares it with the PCM: one
// byte per sample, each within the quantisation step of its segment (G.711
// halves its precision with each doubling of the level: about 1/16 of the
// value, never less than a few units), and the whole with a
// signal-to-noise ratio G.711 reaches on speech.
func checkG711(t *testing.T, law string, b []byte, pcm []int16, decode func(uint8) int16) {
	t.Helper()
	if len(b) != len(pcm) {
		t.Fatalf("%s file of %d bytes, want one per sample: %d", law, len(b), len(pcm))
	}
	var signal, noise float64
	for i, s := range pcm {
		d := int(decode(b[i]))
		diff := d - int(s)
		if abs(diff) > abs(int(s))/16+32 {
			t.Fatalf("%s sample %d decodes to %d, want about %d", law, i, d, s)
		}
		signal += float64(s) * float64(s)
		noise += float64(diff) * float64(diff)
	}
	if signal > 0 && noise > 0 {
		if snr := 10 * math.Log10(signal/noise); snr < 25 {
			t.Errorf("%s: signal-to-noise %.1f dB, want at least 25", law, snr)
		}
	}
}

func TestWriteAsteriskSoundsIsIdempotent(t *testing.T) {
	c := defaultCatalog(t)
	dir := t.TempDir()
	if _, err := WriteAsteriskSounds(c, dir); err != nil {
		t.Fatal(err)
	}
	if written, err := WriteAsteriskSounds(c, dir); err != nil || written != 0 {
		t.Fatalf("second run: written %d, %v; want 0 files written", written, err)
	}

	// A damaged file and a missing one are put right, and only they.
	damaged := soundFile(dir, English, Goodbye, "alaw")
	want := readFile(t, damaged)
	if err := os.WriteFile(damaged, want[:10], 0o644); err != nil {
		t.Fatal(err)
	}
	missing := soundFile(dir, Mandarin, AppUnavailable, "wav")
	wantMissing := readFile(t, missing)
	if err := os.Remove(missing); err != nil {
		t.Fatal(err)
	}
	written, err := WriteAsteriskSounds(c, dir)
	if err != nil || written != 2 {
		t.Fatalf("after damage: written %d, %v; want 2", written, err)
	}
	if !bytes.Equal(readFile(t, damaged), want) || !bytes.Equal(readFile(t, missing), wantMissing) {
		t.Error("files not restored")
	}

	// Nothing but the sounds is left behind: no temporary files.
	for _, lang := range c.Langs() {
		entries, err := os.ReadDir(filepath.Join(dir, string(lang), "hotline"))
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 3*len(c.IDs()) {
			t.Errorf("%s: %d files, want %d", lang, len(entries), 3*len(c.IDs()))
		}
	}
}

func TestWriteAsteriskSoundsFallsBackToMandarin(t *testing.T) {
	c, err := Load(testFS(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := WriteAsteriskSounds(c, dir); err != nil {
		t.Fatal(err)
	}
	// An English channel asking for only_zh hears what Catalog.Get plays
	// it: the Mandarin recording.
	for _, ext := range []string{"ulaw", "alaw", "wav"} {
		zh := readFile(t, soundFile(dir, Mandarin, "only_zh", ext))
		en := readFile(t, soundFile(dir, English, "only_zh", ext))
		if !bytes.Equal(zh, en) {
			t.Errorf("en/hotline/only_zh.%s differs from the Mandarin file", ext)
		}
	}
	if bytes.Equal(readFile(t, soundFile(dir, Mandarin, "both", "wav")), readFile(t, soundFile(dir, English, "both", "wav"))) {
		t.Error("zh and en recordings of \"both\" are the same file")
	}
}

func TestWriteAsteriskSoundsRefusesUnknownLanguage(t *testing.T) {
	fsys := testFS(t)
	fsys["catalog.yaml"] = &fstest.MapFile{Data: []byte(`
default: zh
voices:
  - {lang: zh, voice: cmn-latn-pinyin, speed: 170}
  - {lang: fr, voice: fr, speed: 150}
prompts:
  both: {zh: 两个, fr: les deux}
`)}
	fsys["audio/fr/both.wav"] = fsys["audio/en/both.wav"]
	c, err := Load(fsys)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	written, err := WriteAsteriskSounds(c, dir)
	if !errors.Is(err, ErrAsteriskLang) || written != 0 {
		t.Fatalf("written %d, %v; want ErrAsteriskLang", written, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("%d entries written before the error, want none", len(entries))
	}
}

func TestWriteAsteriskSoundsIntoAFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sounds")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteAsteriskSounds(defaultCatalog(t), file); err == nil {
		t.Fatal("writing under a regular file succeeded")
	}
}
