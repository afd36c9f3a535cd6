package dtmf

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/zaf/g711"

	"github.com/hotline12345/hotline/media/dtmf/talkoff"
)

// Talk-off: speech and music must not be taken for key presses (ITU-T Q.24
// §5, "signal imitation"). A caller talks over the menu prompts all the time,
// and a false key there picks a menu item they never chose.

const mandarinText = "您好，这里是一二三四五政务服务便民热线。我们二十四小时为您服务。" +
	"紧急事项请按一，水电暖气等民生问题请按二，其他咨询请按三。" +
	"我家小区的路灯坏了一个多月，晚上很黑，老人出门很不安全，希望有关部门尽快来修。" +
	"上个星期我已经打过一次电话，工单号是二零二四零五一二，到现在还没有人联系我。" +
	"请问这个问题归哪个部门管？大概什么时候能处理好？谢谢你们，辛苦了。"

const englishText = "Hello, this is the twelve three four five citizen service hotline. " +
	"For an emergency, press one. For water, power or heating, press two. " +
	"The street lights in our neighbourhood have been broken for over a month, " +
	"and it is very dark at night. I called last week, my ticket number is two zero two four, " +
	"but nobody has called me back. Could you tell me which department handles this, " +
	"and when it will be fixed? Thank you very much, goodbye."

// voice is one espeak-ng speaker: a voice with its variant, pitch (0-99) and
// words per minute.
type voice struct {
	name         string
	pitch, speed int
}

func TestDetectorTalkOffSpeech(t *testing.T) {
	dir := t.TempDir()
	var total time.Duration
	for _, c := range []struct {
		lang   string
		text   string
		voices []voice
	}{
		{"Mandarin", mandarinText, []voice{{"cmn", 35, 150}, {"cmn+f3", 70, 170}, {"cmn+m3", 50, 190}}},
		{"English", englishText, []voice{{"en-us", 40, 160}, {"en+f4", 75, 175}, {"en-gb+m2", 55, 190}}},
	} {
		var speech []int16
		for _, v := range c.voices {
			speech = append(speech, speak(t, dir, v, c.text)...)
		}
		d := time.Duration(len(speech)) * time.Second / SampleRate
		if d < 25*time.Second {
			t.Fatalf("only %v of %s speech", d, c.lang)
		}
		total += d
		expectKeys(t, c.lang+" speech", speech, "")
		// Softer speech leaves fewer windows above the level threshold, but
		// the ratios the detector checks stay the same; check it too.
		if got := detect(scale(speech, -12), 160); got != "" {
			t.Errorf("%s speech 12 dB softer: got %q, want none", c.lang, got)
		}
	}
	if total < time.Minute {
		t.Fatalf("only %v of speech, want a minute", total)
	}
}

// talkOffFixtures are high Mandarin voices that a detector held only to the
// single-window tests and the share of energy in the two tones takes for
// keys, as 8 kHz µ-law through a telephone's 300-3400 Hz band;
// testdata/README.md says how they were made.
var talkOffFixtures = []struct {
	file, keys, voice string
}{
	// espeak-ng's cmn+f3 at pitch 94: a fundamental about 308 Hz, whose
	// 3rd and 4th harmonics fall 1.8 % below 941 Hz and 1.9 % above
	// 1209 Hz.
	{"testdata/talkoff-cmn-f3-p94.ul", "*", "cmn+f3 at 308 Hz"},
	// cmn+Alicia at pitch 80: 3rd and 5th harmonics of about 290 Hz
	// (870 and 1450 Hz) and of 319 Hz (957 and 1596 Hz), the 4th between
	// them weak.
	{"testdata/talkoff-cmn-alicia-p80.ul", "9D", "cmn+Alicia at 290-320 Hz"},
}

func TestDetectorTalkOffHighVoice(t *testing.T) {
	for _, fx := range talkOffFixtures {
		raw, err := os.ReadFile(fx.file)
		if err != nil {
			t.Fatal(err)
		}
		speech := make([]int16, len(raw))
		for i, b := range raw {
			speech[i] = g711.DecodeUlawFrame(b)
		}
		// The fixture must stay the hard case it was made to be: each key
		// passes every test but the voice's for a press, so that the
		// voice test is what rejects it.
		for _, key := range fx.keys {
			if !passesAllButVoice(speech, byte(key)) {
				t.Errorf("%s: no %q passes every test but the voice's", fx.voice, key)
			}
		}
		// Whether two harmonics pass for a moment depends on where the
		// detector's windows fall, so try every alignment.
		for offset := range halfBlock {
			pcm := slices.Concat(make([]int16, offset), speech)
			expectKeysAligned(t, fmt.Sprintf("%s at offset %d", fx.voice, offset), offset, pcm, "")
		}
	}
}

// corpusSample is the first minutes of what bench/talkoff listens to for an
// hour (docs/benchmarks.md): seed 13's first three minutes hold Mandarin and
// English callers, alone and over music, and music alone.
func corpusSample(t *testing.T) (pieces []talkoff.Piece) {
	t.Helper()
	err := talkoff.Generate(t.Context(), talkoff.Options{Seed: 13, Length: 3 * time.Minute}, func(p talkoff.Piece) error {
		pieces = append(pieces, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	made := map[string]time.Duration{}
	for _, p := range pieces {
		made[p.Language+" "+p.Kind.String()] += p.Duration()
	}
	for _, kind := range []string{"Mandarin speech", "English speech", "Mandarin speech over music", "English speech over music", " music"} {
		if made[kind] < 10*time.Second {
			t.Errorf("the sample holds %v of %q, want 10 s or more", made[kind], kind)
		}
	}
	return pieces
}

func TestDetectorTalkOffCorpus(t *testing.T) {
	// One detector over all of it, in 20 ms frames, as over a long call.
	d := NewDetector()
	for _, p := range corpusSample(t) {
		var keys []rune
		for frame := range slices.Chunk(talkoff.Decode(p.Audio), 160) {
			d.Process(frame, func(key rune) { keys = append(keys, key) })
		}
		if len(keys) > 0 {
			t.Errorf("%v (%s): got %q, want none", p.Kind, p.Description, string(keys))
		}
	}
}

func TestDetectorKeysOverSpeechAndMusic(t *testing.T) {
	// Keys pressed while the caller's radio or television plays on, 20 dB
	// above it: the voice test must not take the key's tones with a voice
	// behind them for a voice. Every 3 s of the sample, three 70 ms
	// presses 200 ms apart.
	var background []int16
	for _, p := range corpusSample(t) {
		background = append(background, talkoff.Decode(p.Audio)...)
	}
	var want, got int
	const stretch = 3 * SampleRate
	for start := 0; start+stretch <= len(background); start += stretch {
		bg := background[start : start+stretch]
		var e float64
		for _, v := range bg {
			e += float64(v) * float64(v)
		}
		rms := math.Sqrt(e / stretch)
		if rms < 30 {
			continue // a pause: nothing behind the keys
		}
		i := start / stretch
		keys := string([]byte{allKeys[i%16], allKeys[(i+5)%16], allKeys[(i+11)%16]})
		press := dial(t, keys, ms(70), ms(200), ToneOptions{})
		// The pair's power is a², two sines of amplitude a: bring the
		// background's RMS to a/10, 20 dB below.
		gain := toneAmplitude(defaultLevelDBm0) / 10 / rms
		mix := make([]int16, stretch)
		for j, v := range bg {
			x := float64(v) * gain
			if j < len(press) {
				x += float64(press[j])
			}
			mix[j] = clip16(x)
		}
		want += len(keys)
		if heard := detect(channels[1].pass(mix), 160); heard == keys {
			got += len(keys)
		} else {
			t.Errorf("keys %q over %v s of the sample: heard %q", keys, start/SampleRate, heard)
		}
	}
	if want < 100 {
		t.Errorf("only %d keys pressed over the sample", want)
	}
	t.Logf("%d of %d keys heard over speech and music 20 dB below them", got, want)
}

// passesAllButVoice reports whether somewhere in pcm the detector's windows
// hold key for as long and as purely as a press, so that only voiced stands
// between it and a key reported.
func passesAllButVoice(pcm []int16, key byte) bool {
	d := NewDetector()
	for chunk := range slices.Chunk(pcm, halfBlock) {
		d.Process(chunk, func(rune) {})
		if d.run == key && d.runLen >= hitsToBegin && d.pure() {
			return true
		}
	}
	return false
}

// speak returns text spoken by v as 8 kHz 16-bit mono PCM peaking at −1 dBFS,
// from espeak-ng piped through sox.
func speak(t *testing.T, dir string, v voice, text string) []int16 {
	t.Helper()
	out := filepath.Join(dir, fmt.Sprintf("%s-%d-%d.raw", v.name, v.pitch, v.speed))
	gen := exec.Command(tool(t, "espeak-ng"), "-v", v.name, "-p", strconv.Itoa(v.pitch), "-s", strconv.Itoa(v.speed), "--stdout", text)
	conv := exec.Command(tool(t, "sox"), "-V1", "-t", "wav", "-", "-t", "raw", "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer", "-L", out, "gain", "-n", "-1")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	gen.Stdout, conv.Stdin = w, r
	gen.Stderr, conv.Stderr = os.Stderr, os.Stderr
	if err := conv.Start(); err != nil {
		t.Fatal(err)
	}
	genErr := gen.Run()
	w.Close()
	convErr := conv.Wait()
	r.Close()
	if genErr != nil || convErr != nil {
		t.Fatalf("espeak-ng %s | sox: %v, %v", v.name, genErr, convErr)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	pcm := make([]int16, len(raw)/2)
	for i := range pcm {
		pcm[i] = int16(binary.LittleEndian.Uint16(raw[2*i:]))
	}
	if len(pcm) < SampleRate {
		t.Fatalf("%s spoke only %d samples", v.name, len(pcm))
	}
	return pcm
}

// tool returns the path of a program the test needs; CI installs them.
func tool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is needed for this test (apt-get install espeak-ng sox): %v", name, err)
	}
	return path
}

func scale(pcm []int16, db float64) []int16 {
	g := math.Pow(10, db/20)
	out := make([]int16, len(pcm))
	for i, x := range pcm {
		out[i] = clip16(float64(x) * g)
	}
	return out
}

// note returns the frequency of the equal-tempered note n semitones from
// A4 = 440 Hz. Some sit right on DTMF frequencies: F5 (698.5 Hz, 697), F♯6
// (1480 Hz, 1477), A♯5 (932 Hz, 941), E6 (1319 Hz, 1336).
func note(n int) float64 { return 440 * math.Pow(2, float64(n)/12) }

// instrument adds to pcm, from start, a note n samples long at freq hertz with
// harmonics falling as 1/h (a bowed or reed timbre) up to the harmonics-th.
func instrument(pcm []float64, start, n int, freq, amp float64, harmonics int) {
	for h := 1; h <= harmonics && float64(h)*freq < SampleRate/2; h++ {
		w := 2 * math.Pi * freq * float64(h) / SampleRate
		a := amp / float64(h)
		for i := range n {
			// 10 ms attack, then a slow decay, 20 ms release.
			env := min(1, float64(i)/80, float64(n-1-i)/160) * math.Exp(-float64(i)/(2*SampleRate))
			pcm[start+i] += a * env * math.Sin(w*float64(i))
		}
	}
}

func TestDetectorTalkOffMusic(t *testing.T) {
	const (
		A4 = 0
		F5 = 8  // 698.5 Hz
		A5 = 12 // 880 Hz
	)
	chordSeconds := 0.4
	chordLen := int(chordSeconds * SampleRate)
	// Chord progressions in several registers, some chords holding two
	// notes that alone would be a key (F5 and F♯6 are 698 and 1480 Hz, a
	// "3"), played with harmonics and as pure tones.
	progressions := [][][]int{
		{{F5, F5 + 4, F5 + 7}, {F5 + 5, F5 + 9, F5 + 12}, {F5 - 2, F5 + 2, F5 + 5}, {F5 + 2, F5 + 6, F5 + 9, F5 + 22}},
		{{A4 - 12, A4 + 4, A4 + 7, F5 + 13}, {F5, A5, A5 + 3, A5 + 9}, {A4 + 13, F5 + 14, F5 + 18}, {F5, F5 + 10, F5 + 13}},
		{{F5 + 2, F5 + 13, F5 + 22}, {F5 - 5, F5 + 4, F5 + 13}, {F5 + 14, F5 + 20, F5 + 23}, {A4 - 24, A4 - 12, F5, F5 + 13}},
	}
	for pi, prog := range progressions {
		for _, harmonics := range []int{1, 6} {
			mix := make([]float64, chordLen*len(prog)*2)
			for rep := range 2 {
				for ci, chord := range prog {
					start := (rep*len(prog) + ci) * chordLen
					for _, n := range chord {
						instrument(mix, start, chordLen, note(n), toneAmplitude(-14), harmonics)
					}
				}
			}
			pcm := make([]int16, len(mix))
			for i, v := range mix {
				pcm[i] = clip16(v)
			}
			expectKeys(t, fmt.Sprintf("progression %d, %d harmonics", pi, harmonics), pcm, "")
		}
	}
	// Sweeps: a pure tone gliding through both DTMF groups, up and down,
	// fast and slow, and a glissando with its harmonics.
	for _, s := range []struct {
		from, to  float64
		seconds   float64
		harmonics int
	}{
		{300, 3400, 0.5, 1}, {3400, 300, 0.5, 1}, {300, 3400, 3, 1}, {3400, 300, 3, 1},
		{200, 2000, 1, 6}, {2000, 200, 3, 6}, {600, 1700, 4, 3},
	} {
		expectKeys(t, fmt.Sprintf("sweep %v→%v Hz in %v s, %d harmonics", s.from, s.to, s.seconds, s.harmonics),
			sweep(s.from, s.to, s.seconds, s.harmonics), "")
	}
}

// sweep returns a tone gliding exponentially from one frequency to another
// at −10 dBm0, with harmonics falling as 1/h.
func sweep(from, to, seconds float64, harmonics int) []int16 {
	n := int(seconds * SampleRate)
	out := make([]int16, n)
	a := toneAmplitude(-10)
	phase := make([]float64, harmonics)
	for i := range out {
		f := from * math.Pow(to/from, float64(i)/float64(n))
		var v float64
		for h := range harmonics {
			if fh := f * float64(h+1); fh < SampleRate/2 {
				phase[h] += 2 * math.Pi * fh / SampleRate
				v += a / float64(h+1) * math.Sin(phase[h])
			}
		}
		out[i] = clip16(v * envelope(i, n, 80))
	}
	return out
}
