package prompts

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/zaf/g711"

	"github.com/hotline12345/hotline/prompts/internal/wav"
)

// asteriskSoundDir is the folder under each language folder of Asterisk's
// sounds that holds the hotline's prompts, so they never clash with
// Asterisk's own (hello-world, beep, ...).
const asteriskSoundDir = "hotline"

// asteriskLangs maps the catalog's languages to Asterisk's language folders:
// Asterisk plays sound "x" on a channel whose CHANNEL(language) is L from
// sounds/L/x.<format>.
var asteriskLangs = map[Lang]string{
	Mandarin: "zh",
	English:  "en",
}

// ErrAsteriskLang is wrapped by WriteAsteriskSounds for a catalog language
// that has no Asterisk language folder.
var ErrAsteriskLang = errors.New("prompts: no Asterisk language folder for the language")

// ErrSoundsParent is wrapped by WriteAsteriskSounds when the sounds
// folder's parent is not there.
var ErrSoundsParent = errors.New("prompts: the sounds folder's parent is missing")

// AsteriskSoundName is how Asterisk names prompt id: "hotline/<id>", as in an
// ARI "sound:hotline/greeting" URI or the dialplan's
// Playback(hotline/app_unavailable). Asterisk adds the channel's language
// folder and picks whichever of the files WriteAsteriskSounds wrote the
// channel's codec needs least translation for.
func AsteriskSoundName(id ID) string {
	return asteriskSoundDir + "/" + string(id)
}

// asteriskFormat is one file format Asterisk plays a prompt from.
type asteriskFormat struct {
	ext    string
	encode func(pcm []int16) ([]byte, error)
}

// asteriskFormats are the formats written for every prompt: G.711 µ-law
// and A-law as raw samples (Asterisk's format_pcm, extensions .ulaw and
// .alaw), which a G.711 channel plays without any transcoding, and 8 kHz
// 16-bit PCM WAV (format_wav) for any other codec, so that one translation
// from signed linear is the most a call ever costs.
var asteriskFormats = []asteriskFormat{
	{"ulaw", func(pcm []int16) ([]byte, error) { return encodeG711(pcm, g711.EncodeUlawFrame), nil }},
	{"alaw", func(pcm []int16) ([]byte, error) { return encodeG711(pcm, g711.EncodeAlawFrame), nil }},
	{"wav", func(pcm []int16) ([]byte, error) {
		var b bytes.Buffer
		err := wav.Encode(&b, SampleRate, pcm)
		return b.Bytes(), err
	}},
}

// encodeG711 encodes each sample into one byte (ITU-T G.711).
func encodeG711(pcm []int16, encode func(int16) uint8) []byte {
	out := make([]byte, len(pcm))
	for i, s := range pcm {
		out[i] = encode(s)
	}
	return out
}

// WriteAsteriskSounds writes every prompt of c, in every language of c, as
// files Asterisk plays: dir/<lang>/hotline/<id>.ulaw, .alaw and .wav, where
// dir is Asterisk's sounds folder (astdatadir/sounds, usually
// /var/lib/asterisk/sounds). A prompt the catalog lacks in a language is
// written there in the default language, as Catalog.Get plays it, so the
// ARI backend and the embedded one say the same.
//
// Folders under dir are created as needed, dir itself too, but not its
// parent: a parent that is not there is a mistyped path (or Asterisk not
// installed), and filling a new tree would hide it. Each file is written to a temporary name
// and renamed, so Asterisk, which may be playing the old file, never reads
// half a new one; a file that already holds the right bytes is left as it
// is. written counts the files created or changed: running it again writes
// none. Files of prompts that left the catalog are not removed.
func WriteAsteriskSounds(c *Catalog, dir string) (written int, err error) {
	parent := filepath.Dir(filepath.Clean(dir))
	if st, err := os.Stat(parent); err != nil || !st.IsDir() {
		return 0, fmt.Errorf("%w: %s does not exist or is no folder", ErrSoundsParent, parent)
	}
	// Every language is checked before any file is written, so a catalog
	// Asterisk cannot take leaves the sounds folder as it was.
	for _, lang := range c.Langs() {
		if _, ok := asteriskLangs[lang]; !ok {
			return 0, fmt.Errorf("%w: %q", ErrAsteriskLang, lang)
		}
	}
	for _, lang := range c.Langs() {
		folder := asteriskLangs[lang]
		for _, id := range c.IDs() {
			p, err := c.Get(id, lang)
			if err != nil {
				return written, err
			}
			for _, f := range asteriskFormats {
				b, err := f.encode(p.PCM)
				if err != nil {
					return written, fmt.Errorf("prompts: %s/%s.%s: %w", lang, id, f.ext, err)
				}
				name := filepath.Join(dir, folder, asteriskSoundDir, string(id)+"."+f.ext)
				changed, err := writeIfChanged(name, b)
				if err != nil {
					return written, fmt.Errorf("prompts: %w", err)
				}
				if changed {
					written++
				}
			}
		}
	}
	return written, nil
}

// writeIfChanged writes b to name atomically unless name already holds b.
func writeIfChanged(name string, b []byte) (bool, error) {
	old, err := os.ReadFile(name)
	switch {
	case err == nil && bytes.Equal(old, b):
		return false, nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return false, err
	}
	if err := writeFileAtomic(name, b); err != nil {
		return false, err
	}
	return true, nil
}
