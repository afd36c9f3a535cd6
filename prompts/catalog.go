// Package prompts is the hotline's prompt catalog: what each prompt says in
// each language (catalog.yaml), its audio generated from that text and
// embedded in the binary (audio/<lang>/<id>.wav, 8 kHz mono 16-bit PCM), a
// manifest of versions, the generator that remakes the audio, and a Matcher
// that tells which prompts a test caller heard.
//
// A prompt's Version is a hash of its samples, so evidence such as a recorded
// Consent names exactly the audio the citizen heard.
package prompts

import (
	"crypto/sha256"
	"embed"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hotline12345/hotline/prompts/internal/wav"
)

// SampleRate is the rate of every prompt's PCM: narrowband telephone audio,
// as carried by G.711 (ITU-T G.711, 8000 samples per second).
const SampleRate = 8000

// FrameSamples is one 20 ms packet at SampleRate, the default packetisation
// of G.711 over RTP (RFC 3551 §4.5). Every prompt is a whole number of them,
// so a player never sends a short last packet.
const FrameSamples = 160

var (
	// ErrUnknownPrompt is wrapped by Get when the id or the language is not
	// in the catalog.
	ErrUnknownPrompt = errors.New("prompts: unknown prompt")
	// ErrUnknownLang is wrapped by ParseLang for a language the hotline does
	// not speak.
	ErrUnknownLang = errors.New("prompts: unknown language")
)

//go:embed catalog.yaml manifest.json audio
var embedded embed.FS

// Prompt is one prompt in one language, with its audio.
// A Prompt is shared and must not be modified, PCM included.
type Prompt struct {
	ID      ID
	Lang    Lang
	Text    string  // the words, as people read them; empty for music
	Version string  // first 12 hex digits of the SHA-256 of PCM (16-bit little-endian)
	PCM     []int16 // SampleRate mono samples, a whole number of FrameSamples
}

// Duration is how long the prompt plays.
func (p *Prompt) Duration() time.Duration {
	return samplesToDuration(len(p.PCM))
}

func samplesToDuration(n int) time.Duration {
	return time.Duration(n) * time.Second / SampleRate
}

// Catalog holds every prompt in every language. It is immutable and safe for
// concurrent use.
type Catalog struct {
	def     Lang
	langs   []Lang
	ids     []ID
	prompts map[promptKey]*Prompt
	src     *source
}

type promptKey struct {
	id   ID
	lang Lang
}

var loadDefault = sync.OnceValues(func() (*Catalog, error) { return Load(embedded) })

// Default returns the catalog embedded in the binary. It is parsed on first
// use and shared afterwards.
func Default() (*Catalog, error) {
	return loadDefault()
}

// Load reads a catalog from fsys: catalog.yaml at its root and the audio
// under audio/<lang>/<id>.wav, as Generate writes them. Every audio file
// must be SampleRate mono 16-bit PCM and a whole number of frames.
func Load(fsys fs.FS) (*Catalog, error) {
	b, err := fs.ReadFile(fsys, "catalog.yaml")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCatalog, err)
	}
	src, err := parseSource(b)
	if err != nil {
		return nil, err
	}
	c := &Catalog{
		def:     src.def,
		langs:   src.langs(),
		prompts: make(map[promptKey]*Prompt),
		src:     src,
	}
	for _, e := range src.entries {
		c.ids = append(c.ids, e.id)
		for _, lang := range src.langsOf(e) {
			p, err := loadPrompt(fsys, e, lang)
			if err != nil {
				return nil, err
			}
			c.prompts[promptKey{e.id, lang}] = p
		}
	}
	return c, nil
}

func loadPrompt(fsys fs.FS, e entry, lang Lang) (*Prompt, error) {
	name := audioPath(lang, e.id)
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, fmt.Errorf("%w: %w (run `hotline prompts generate`)", ErrCatalog, err)
	}
	rate, pcm, err := wav.Decode(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCatalog, name, err)
	}
	switch {
	case rate != SampleRate:
		return nil, fmt.Errorf("%w: %s: %d Hz, want %d", ErrCatalog, name, rate, SampleRate)
	case len(pcm) == 0 || len(pcm)%FrameSamples != 0:
		return nil, fmt.Errorf("%w: %s: %d samples is not a whole number of %d-sample frames", ErrCatalog, name, len(pcm), FrameSamples)
	}
	return &Prompt{ID: e.id, Lang: lang, Text: e.text(lang), Version: pcmVersion(pcm), PCM: pcm}, nil
}

func audioPath(lang Lang, id ID) string {
	return path.Join("audio", string(lang), string(id)+".wav")
}

// pcmVersion is the content hash that names one recording of a prompt.
func pcmVersion(pcm []int16) string {
	h := sha256.New()
	buf := make([]byte, 2*len(pcm))
	for i, s := range pcm {
		binary.LittleEndian.PutUint16(buf[2*i:], uint16(s))
	}
	h.Write(buf)
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// Get returns prompt id in lang. A language the catalog speaks but the prompt
// lacks falls back to the default language (Mandarin); an id or a language
// the catalog does not know is an error wrapping ErrUnknownPrompt.
func (c *Catalog) Get(id ID, lang Lang) (*Prompt, error) {
	if !slices.Contains(c.langs, lang) {
		return nil, fmt.Errorf("%w: %q in language %q", ErrUnknownPrompt, id, lang)
	}
	if p, ok := c.prompts[promptKey{id, lang}]; ok {
		return p, nil
	}
	if p, ok := c.prompts[promptKey{id, c.def}]; ok {
		return p, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownPrompt, id)
}

// IDs lists the catalog's prompts in catalog order.
func (c *Catalog) IDs() []ID {
	return slices.Clone(c.ids)
}

// Langs lists the catalog's languages, the default first when the catalog
// lists it first (the embedded one does).
func (c *Catalog) Langs() []Lang {
	return slices.Clone(c.langs)
}

// DefaultLang is the language every prompt has and others fall back to.
func (c *Catalog) DefaultLang() Lang {
	return c.def
}

// ParseLang reads a language tag as found in configuration or a SIP
// Accept-Language header: "zh", "zh-CN", "cmn", "en", "en-GB" (any case).
// Only the primary subtag counts (BCP 47, RFC 5646 §2.2.1).
func ParseLang(s string) (Lang, error) {
	primary, _, _ := strings.Cut(strings.TrimSpace(s), "-")
	primary, _, _ = strings.Cut(primary, "_")
	switch strings.ToLower(primary) {
	case "zh", "cmn":
		return Mandarin, nil
	case "en":
		return English, nil
	}
	return "", fmt.Errorf("%w: %q", ErrUnknownLang, s)
}
