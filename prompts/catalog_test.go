package prompts

import (
	"bytes"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/hotline12345/hotline/prompts/internal/wav"
)

// idConstants reads the ID constants declared in ids.go, so that a new
// constant without a catalog entry (or the reverse) fails a test.
func idConstants(t *testing.T) map[ID]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "ids.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[ID]string)
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			if typ, ok := vs.Type.(*ast.Ident); !ok || typ.Name != "ID" {
				continue
			}
			for i, v := range vs.Values {
				lit, ok := v.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					t.Fatalf("ID constant %s is not a string literal", vs.Names[i])
				}
				s, _ := strconv.Unquote(lit.Value)
				out[ID(s)] = vs.Names[i].Name
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no ID constants found in ids.go")
	}
	return out
}

func TestCatalogMatchesIDConstants(t *testing.T) {
	c := defaultCatalog(t)
	want := idConstants(t)
	for d := '0'; d <= '9'; d++ {
		want[Digit(d)] = "Digit(" + string(d) + ")"
	}
	for m := time.January; m <= time.December; m++ {
		want[Month(m)] = "Month(" + m.String() + ")"
	}
	for d := 1; d <= 31; d++ {
		want[DayOfMonth(d)] = "DayOfMonth(" + strconv.Itoa(d) + ")"
	}
	for _, id := range c.IDs() {
		if _, ok := want[id]; !ok {
			t.Errorf("catalog.yaml has %q, which no ID constant (nor Digit) names", id)
		}
	}
	for id, name := range want {
		if !slices.Contains(c.IDs(), id) {
			t.Errorf("%s (%q) is not in catalog.yaml", name, id)
			continue
		}
		for _, lang := range c.Langs() {
			// Present in its own right, not through the Mandarin fallback.
			if _, ok := c.prompts[promptKey{id, lang}]; !ok {
				t.Errorf("%s (%q) has no %s audio", name, id, lang)
			}
		}
	}
}

// TestManifestUpToDate fails when catalog.yaml was edited without
// regenerating the audio, or the audio without the manifest.
func TestManifestUpToDate(t *testing.T) {
	c := defaultCatalog(t)
	m, err := readManifest(embedded)
	if err != nil {
		t.Fatal(err)
	}
	var want []manifestEntry
	for _, e := range c.src.entries {
		for _, lang := range c.src.langsOf(e) {
			p := mustGet(t, c, e.id, lang)
			want = append(want, manifestEntry{
				Lang: lang, ID: e.id, Version: p.Version,
				TextSHA256: c.src.textHash(e, lang),
				DurationMS: p.Duration().Milliseconds(),
			})
		}
	}
	for i := range max(len(want), len(m.Prompts)) {
		switch {
		case i >= len(m.Prompts):
			t.Errorf("manifest.json lacks %s/%s: run `hotline prompts generate`", want[i].Lang, want[i].ID)
		case i >= len(want):
			t.Errorf("manifest.json has %s/%s, which the catalog does not", m.Prompts[i].Lang, m.Prompts[i].ID)
		case m.Prompts[i].TextSHA256 != want[i].TextSHA256:
			t.Errorf("%s/%s: catalog.yaml changed since its audio was made: run `hotline prompts generate`", want[i].Lang, want[i].ID)
		case m.Prompts[i] != want[i]:
			t.Errorf("manifest.json entry %d is %+v, the audio says %+v", i, m.Prompts[i], want[i])
		}
	}
}

// TestAudioFormat checks every committed file: whole 20 ms frames, speech
// normalised to -3 dBFS with at most 100 ms of silence at either end, and
// quiet hold music of about 20 s.
func TestAudioFormat(t *testing.T) {
	c := defaultCatalog(t)
	for _, lang := range c.Langs() {
		for _, id := range c.IDs() {
			p := mustGet(t, c, id, lang)
			if len(p.PCM)%FrameSamples != 0 {
				t.Errorf("%s/%s: %d samples, not whole frames", lang, id, len(p.PCM))
			}
			peak := peakDB(p.PCM)
			if id == HoldMusic {
				if peak > -19.5 || peak < -20.5 {
					t.Errorf("%s/%s: peak %.2f dBFS, want -20", lang, id, peak)
				}
				if d := p.Duration(); d < 19*time.Second || d > 21*time.Second {
					t.Errorf("%s/%s: %v long", lang, id, d)
				}
				continue
			}
			if peak > -2.9 || peak < -3.2 {
				t.Errorf("%s/%s: peak %.2f dBFS, want -3", lang, id, peak)
			}
			lead, trail := edgeSilence(p.PCM)
			if lead > 100*time.Millisecond || trail > 100*time.Millisecond {
				t.Errorf("%s/%s: %v silence before, %v after", lang, id, lead, trail)
			}
		}
	}
}

func peakDB(pcm []int16) float64 {
	var peak int
	for _, s := range pcm {
		peak = max(peak, abs(int(s)))
	}
	return 20 * math.Log10(float64(peak)/32768)
}

// edgeSilence measures the silence (40 dB below the peak) at both ends.
func edgeSilence(pcm []int16) (lead, trail time.Duration) {
	var peak int
	for _, s := range pcm {
		peak = max(peak, abs(int(s)))
	}
	thr := peak / 100
	first := slices.IndexFunc(pcm, func(s int16) bool { return abs(int(s)) > thr })
	last := len(pcm) - 1
	for last > 0 && abs(int(pcm[last])) <= thr {
		last--
	}
	return samplesToDuration(first), samplesToDuration(len(pcm) - 1 - last)
}

func TestGet(t *testing.T) {
	c := defaultCatalog(t)
	if c2, _ := Default(); c2 != c {
		t.Error("Default returned a new catalog on the second call")
	}
	if got := c.Langs(); !slices.Equal(got, []Lang{Mandarin, English}) {
		t.Errorf("Langs() = %v", got)
	}
	if c.DefaultLang() != Mandarin {
		t.Errorf("DefaultLang() = %v", c.DefaultLang())
	}

	en := mustGet(t, c, Greeting, English)
	if en.ID != Greeting || en.Lang != English || en.Text != "Welcome to the 12345 citizen service hotline." {
		t.Errorf("en greeting: %+v", en)
	}
	zh := mustGet(t, c, Greeting, Mandarin)
	if zh.Text != "您好，欢迎致电12345市民服务热线。For English, press 9." {
		t.Errorf("zh greeting text %q", zh.Text)
	}
	if len(zh.Version) != 12 || zh.Version != pcmVersion(zh.PCM) || zh.Version == en.Version {
		t.Errorf("versions: zh %q, en %q", zh.Version, en.Version)
	}
	if zh.Duration() != time.Duration(len(zh.PCM))*125*time.Microsecond {
		t.Errorf("Duration() = %v for %d samples", zh.Duration(), len(zh.PCM))
	}
	if d := mustGet(t, c, Digit('7'), Mandarin); d.Text != "七" {
		t.Errorf("digit 7: %q", d.Text)
	}

	for _, tc := range []struct {
		id   ID
		lang Lang
	}{{"no_such_prompt", Mandarin}, {Greeting, "fr"}, {Digit('x'), English}, {Greeting, ""}} {
		if p, err := c.Get(tc.id, tc.lang); !errors.Is(err, ErrUnknownPrompt) {
			t.Errorf("Get(%q, %q) = %v, %v; want ErrUnknownPrompt", tc.id, tc.lang, p, err)
		}
	}

	ids := c.IDs()
	ids[0] = "changed"
	if c.IDs()[0] == "changed" {
		t.Error("IDs() hands out the catalog's own slice")
	}
}

// testFS is a small catalog in memory: "both" in both languages, "only_zh"
// in Mandarin only.
func testFS(t *testing.T) fstest.MapFS {
	t.Helper()
	catalog := `
default: zh
voices:
  - {lang: zh, voice: cmn-latn-pinyin, speed: 170}
  - {lang: en, voice: en, speed: 150}
prompts:
  both: {zh: 两个, en: both}
  only_zh: {zh: 中文}
`
	fsys := fstest.MapFS{"catalog.yaml": {Data: []byte(catalog)}}
	for i, name := range []string{"zh/both", "en/both", "zh/only_zh"} {
		pcm := make([]int16, 2*FrameSamples)
		pcm[10] = int16(1000 * (i + 1))
		fsys["audio/"+name+".wav"] = &fstest.MapFile{Data: wavBytes(t, SampleRate, pcm)}
	}
	return fsys
}

func wavBytes(t *testing.T, rate int, pcm []int16) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := wav.Encode(&buf, rate, pcm); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestGetFallsBackToMandarin(t *testing.T) {
	c, err := Load(testFS(t))
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Get("only_zh", English)
	if err != nil {
		t.Fatal(err)
	}
	if p.Lang != Mandarin || p.Text != "中文" {
		t.Fatalf("fallback gave %+v", p)
	}
	if p, _ := c.Get("both", English); p.Lang != English || p.Text != "both" {
		t.Fatalf("no fallback wanted, got %+v", p)
	}
}

func TestLoadErrors(t *testing.T) {
	cases := map[string]struct {
		change func(fstest.MapFS)
		also   error // wrapped besides ErrCatalog
	}{
		"no catalog":    {func(f fstest.MapFS) { delete(f, "catalog.yaml") }, fs.ErrNotExist},
		"no audio":      {func(f fstest.MapFS) { delete(f, "audio/en/both.wav") }, fs.ErrNotExist},
		"not yaml":      {func(f fstest.MapFS) { f["catalog.yaml"].Data = []byte("prompts: [") }, nil},
		"not a wav":     {func(f fstest.MapFS) { f["audio/zh/both.wav"].Data = []byte("hello") }, wav.ErrFormat},
		"16 kHz":        {func(f fstest.MapFS) { f["audio/zh/both.wav"].Data = wavBytes(t, 16000, make([]int16, 320)) }, nil},
		"half a frame":  {func(f fstest.MapFS) { f["audio/zh/both.wav"].Data = wavBytes(t, SampleRate, make([]int16, 80)) }, nil},
		"empty":         {func(f fstest.MapFS) { f["audio/zh/both.wav"].Data = wavBytes(t, SampleRate, nil) }, nil},
		"stereo header": {func(f fstest.MapFS) { f["audio/zh/both.wav"].Data[22] = 2 }, wav.ErrFormat},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			fsys := testFS(t)
			tc.change(fsys)
			_, err := Load(fsys)
			if !errors.Is(err, ErrCatalog) {
				t.Fatalf("err = %v, want ErrCatalog", err)
			}
			if tc.also != nil && !errors.Is(err, tc.also) {
				t.Fatalf("err = %v, want it to wrap %v", err, tc.also)
			}
		})
	}
}

func TestParseSourceErrors(t *testing.T) {
	const voices = "default: zh\nvoices:\n  - {lang: zh, voice: cmn-latn-pinyin, speed: 170}\n  - {lang: en, voice: en, speed: 150}\n"
	cases := map[string]string{
		"no voices":          "default: zh\nprompts: {a: {zh: x}}",
		"default not voiced": "default: fr\nvoices: [{lang: zh, voice: cmn, speed: 150}]\nprompts: {a: {zh: x}}",
		"two voices":         "default: zh\nvoices: [{lang: zh, voice: a, speed: 150}, {lang: zh, voice: b, speed: 150}]\nprompts: {a: {zh: x}}",
		"too fast":           "default: zh\nvoices: [{lang: zh, voice: a, speed: 900}]\nprompts: {a: {zh: x}}",
		"no prompts":         voices + "prompts: {}",
		"prompts a list":     voices + "prompts: [a, b]",
		"bad id":             voices + "prompts: {Greeting: {zh: x}}",
		"twice":              voices + "prompts:\n  a: {zh: x}\n  a: {zh: y}\n",
		"no default text":    voices + "prompts: {a: {en: x}}",
		"unknown language":   voices + "prompts: {a: {zh: x, fr: y}}",
		"segment language":   voices + "prompts: {a: {zh: [{text: x, lang: fr}]}}",
		"empty text":         voices + "prompts: {a: {zh: \"  \"}}",
		"empty list":         voices + "prompts: {a: {zh: []}}",
		"music and speech":   voices + "prompts: {a: {zh: x, music: {level: -20, notes: C4/1}}}",
		"bad note":           voices + "prompts: {a: {music: {level: -20, notes: H4/1}}}",
		"note too long":      voices + "prompts: {a: {music: {level: -20, notes: C4/60}}}",
		"no notes":           voices + "prompts: {a: {music: {level: -20, notes: \"\"}}}",
		"not a map":          voices + "prompts: {a: x}",
	}
	for name, y := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := parseSource([]byte(y)); !errors.Is(err, ErrCatalog) {
				t.Fatalf("err = %v, want ErrCatalog", err)
			}
		})
	}
}

func TestSegmentsAndTextHash(t *testing.T) {
	base := `
default: zh
voices:
  - {lang: zh, voice: cmn-latn-pinyin, speed: 170}
  - {lang: en, voice: en, speed: 150}
prompts:
  a:
    zh:
      - 你好。
      - {text: Press 9., lang: en}
    en:
      - {text: "Dial 12345.", say: Dial one two three four five.}
      - Thanks.
  m: {music: {level: -20, notes: "C4/0.5  E4/0.5"}}
`
	src, err := parseSource([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	a, m := src.entries[0], src.entries[1]
	if got := a.text(Mandarin); got != "你好。Press 9." {
		t.Errorf("zh text %q: no space after CJK text", got)
	}
	if got := a.text(English); got != "Dial 12345. Thanks." {
		t.Errorf("en text %q", got)
	}
	if segs := a.texts[Mandarin]; segs[0].Lang != Mandarin || segs[1].Lang != English {
		t.Errorf("segment languages: %+v", segs)
	}
	if got := src.langsOf(m); !slices.Equal(got, []Lang{Mandarin, English}) {
		t.Errorf("music languages %v", got)
	}

	hash := func(y string, id int, lang Lang) string {
		t.Helper()
		s, err := parseSource([]byte(y))
		if err != nil {
			t.Fatal(err)
		}
		return s.textHash(s.entries[id], lang)
	}
	h := hash(base, 0, English)
	if h != hash(base, 0, English) || h == hash(base, 0, Mandarin) {
		t.Fatal("text hash is not a function of the text")
	}
	edits := map[string][2]string{
		"text":  {"Thanks.", "Thank you."},
		"say":   {"Dial one two", "Dial one-two"},
		"speed": {"voice: en, speed: 150", "voice: en, speed: 160"},
		"voice": {"voice: en, speed", "voice: en-us, speed"},
	}
	for name, e := range edits {
		if hash(replaceOnce(t, base, e[0], e[1]), 0, English) == h {
			t.Errorf("changing the %s leaves the hash as it was", name)
		}
	}
	hm := hash(base, 1, Mandarin)
	if hash(replaceOnce(t, base, "E4/0.5", "E4/0.6"), 1, Mandarin) == hm {
		t.Error("changing a note leaves the hash as it was")
	}
	if hash(replaceOnce(t, base, "C4/0.5  E4/0.5", "C4/0.5 E4/0.5"), 1, Mandarin) != hm {
		t.Error("spacing between notes changes the hash")
	}
}

func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	i := strings.Index(s, old)
	if i < 0 {
		t.Fatalf("%q not in catalog", old)
	}
	return s[:i] + new + s[i+len(old):]
}

func TestParseLang(t *testing.T) {
	for in, want := range map[string]Lang{
		"zh": Mandarin, "zh-CN": Mandarin, "ZH-Hans-CN": Mandarin, "cmn": Mandarin, "zh_CN": Mandarin,
		"en": English, "en-GB": English, " EN-us ": English,
	} {
		if got, err := ParseLang(in); err != nil || got != want {
			t.Errorf("ParseLang(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "fr", "yue", "english", "-zh"} {
		if got, err := ParseLang(in); !errors.Is(err, ErrUnknownLang) {
			t.Errorf("ParseLang(%q) = %q, %v; want ErrUnknownLang", in, got, err)
		}
	}
}
