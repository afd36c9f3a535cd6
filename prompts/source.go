package prompts

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// ErrCatalog is wrapped by every error about a malformed catalog.yaml, a
// missing or malformed audio file, or a manifest that does not fit.
var ErrCatalog = errors.New("prompts: invalid catalog")

// generatorRevision is part of every text hash: a change to how audio is made
// from text (trimming, levels, framing) must bump it, so that the committed
// audio shows up as stale until it is regenerated.
const generatorRevision = 1

// source is catalog.yaml, parsed and checked.
type source struct {
	def     Lang
	voices  []voice // in catalog order; this is the order of Langs
	entries []entry // in catalog order; this is the order of IDs
}

// voice is the eSpeak NG voice that speaks one language.
type voice struct {
	Lang  Lang   `yaml:"lang"`
	Voice string `yaml:"voice"`
	Speed int    `yaml:"speed"` // words per minute, espeak-ng -s
}

// entry is one prompt of the catalog: speech per language, or music.
type entry struct {
	id    ID
	music *music
	texts map[Lang][]segment
}

// segment is a stretch of one prompt spoken with one voice.
type segment struct {
	Text string `yaml:"text"`
	Say  string `yaml:"say"`
	Lang Lang   `yaml:"lang"`
}

// music describes a melody of sine notes, one after the other.
type music struct {
	Level float64 `yaml:"level"` // peak level, dBFS
	Notes string  `yaml:"notes"` // "G3/1.0 C4/0.5 ...": note name / seconds
}

var idPattern = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// parseSource parses and checks catalog.yaml.
func parseSource(b []byte) (*source, error) {
	var raw struct {
		Default Lang      `yaml:"default"`
		Voices  []voice   `yaml:"voices"`
		Prompts yaml.Node `yaml:"prompts"`
	}
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("%w: catalog.yaml: %w", ErrCatalog, err)
	}
	s := &source{def: raw.Default, voices: raw.Voices}
	if err := s.checkVoices(); err != nil {
		return nil, err
	}
	if raw.Prompts.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%w: catalog.yaml: prompts must be a map of id to texts", ErrCatalog)
	}
	seen := make(map[ID]bool)
	for i := 0; i+1 < len(raw.Prompts.Content); i += 2 {
		k, v := raw.Prompts.Content[i], raw.Prompts.Content[i+1]
		id := ID(k.Value)
		if !idPattern.MatchString(k.Value) {
			return nil, fmt.Errorf("%w: catalog.yaml line %d: prompt id %q is not lower_snake_case", ErrCatalog, k.Line, k.Value)
		}
		if seen[id] {
			return nil, fmt.Errorf("%w: catalog.yaml line %d: prompt %q defined twice", ErrCatalog, k.Line, id)
		}
		seen[id] = true
		e, err := s.parseEntry(id, v)
		if err != nil {
			return nil, err
		}
		s.entries = append(s.entries, e)
	}
	if len(s.entries) == 0 {
		return nil, fmt.Errorf("%w: catalog.yaml has no prompts", ErrCatalog)
	}
	return s, nil
}

func (s *source) checkVoices() error {
	if len(s.voices) == 0 {
		return fmt.Errorf("%w: catalog.yaml: no voices", ErrCatalog)
	}
	seen := make(map[Lang]bool)
	for _, v := range s.voices {
		switch {
		case v.Lang == "" || v.Voice == "":
			return fmt.Errorf("%w: catalog.yaml: a voice needs lang and voice", ErrCatalog)
		case seen[v.Lang]:
			return fmt.Errorf("%w: catalog.yaml: two voices for %q", ErrCatalog, v.Lang)
		case v.Speed < 80 || v.Speed > 450:
			// espeak-ng's own range of useful speeds.
			return fmt.Errorf("%w: catalog.yaml: voice %q speed %d outside 80..450", ErrCatalog, v.Lang, v.Speed)
		}
		seen[v.Lang] = true
	}
	if !seen[s.def] {
		return fmt.Errorf("%w: catalog.yaml: default language %q has no voice", ErrCatalog, s.def)
	}
	return nil
}

func (s *source) parseEntry(id ID, n *yaml.Node) (entry, error) {
	e := entry{id: id, texts: make(map[Lang][]segment)}
	if n.Kind != yaml.MappingNode {
		return e, fmt.Errorf("%w: catalog.yaml line %d: prompt %q must map languages to texts", ErrCatalog, n.Line, id)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Value == "music" {
			var m music
			if err := v.Decode(&m); err != nil {
				return e, fmt.Errorf("%w: catalog.yaml line %d: %w", ErrCatalog, v.Line, err)
			}
			if _, err := parseNotes(m.Notes); err != nil {
				return e, fmt.Errorf("%w: catalog.yaml line %d: prompt %q: %w", ErrCatalog, v.Line, id, err)
			}
			e.music = &m
			continue
		}
		lang := Lang(k.Value)
		if _, ok := s.voice(lang); !ok {
			return e, fmt.Errorf("%w: catalog.yaml line %d: prompt %q: language %q has no voice", ErrCatalog, k.Line, id, lang)
		}
		segs, err := s.parseSegments(lang, v)
		if err != nil {
			return e, fmt.Errorf("%w: catalog.yaml line %d: prompt %q (%s): %w", ErrCatalog, v.Line, id, lang, err)
		}
		e.texts[lang] = segs
	}
	switch {
	case e.music != nil && len(e.texts) > 0:
		return e, fmt.Errorf("%w: catalog.yaml line %d: prompt %q is both music and speech", ErrCatalog, n.Line, id)
	case e.music == nil && len(e.texts[s.def]) == 0:
		// Every language falls back to the default one, so it must be there.
		return e, fmt.Errorf("%w: catalog.yaml line %d: prompt %q has no %q text", ErrCatalog, n.Line, id, s.def)
	}
	return e, nil
}

// parseSegments reads a text: a string, or a list of strings and segments.
func (s *source) parseSegments(lang Lang, n *yaml.Node) ([]segment, error) {
	items := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		items = n.Content
	}
	segs := make([]segment, 0, len(items))
	for _, it := range items {
		var seg segment
		switch it.Kind {
		case yaml.ScalarNode:
			seg.Text = it.Value
		case yaml.MappingNode:
			if err := it.Decode(&seg); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("line %d: a segment is a string or a map of text, say and lang", it.Line)
		}
		if seg.Lang == "" {
			seg.Lang = lang
		}
		if _, ok := s.voice(seg.Lang); !ok {
			return nil, fmt.Errorf("line %d: segment language %q has no voice", it.Line, seg.Lang)
		}
		seg.Text = strings.TrimSpace(seg.Text)
		seg.Say = strings.TrimSpace(seg.Say)
		if seg.Text == "" {
			return nil, fmt.Errorf("line %d: empty text", it.Line)
		}
		segs = append(segs, seg)
	}
	if len(segs) == 0 {
		return nil, errors.New("no text")
	}
	return segs, nil
}

func (s *source) voice(l Lang) (voice, bool) {
	for _, v := range s.voices {
		if v.Lang == l {
			return v, true
		}
	}
	return voice{}, false
}

func (s *source) langs() []Lang {
	out := make([]Lang, len(s.voices))
	for i, v := range s.voices {
		out[i] = v.Lang
	}
	return out
}

// langsOf lists the languages an entry has audio for, in catalog order.
// Music is the same in every language and is stored once per language, so
// that every language of the catalog is complete on its own.
func (s *source) langsOf(e entry) []Lang {
	var out []Lang
	for _, v := range s.voices {
		if e.music != nil || len(e.texts[v.Lang]) > 0 {
			out = append(out, v.Lang)
		}
	}
	return out
}

// text is what an entry says in one language, as people read it. Segments
// are joined with a space, except after CJK text, which uses no spaces.
func (e entry) text(lang Lang) string {
	var b strings.Builder
	for i, seg := range e.texts[lang] {
		if i > 0 {
			if r, _ := utf8.DecodeLastRuneInString(b.String()); r < 0x2E80 {
				b.WriteByte(' ')
			}
		}
		b.WriteString(seg.Text)
	}
	return b.String()
}

// textHash is the SHA-256 of everything the audio of (e, lang) is made from:
// the words, the voices and speeds, the melody, and generatorRevision. The
// manifest records it, and a test compares it with the catalog so that an
// edited text cannot ship with stale audio.
func (s *source) textHash(e entry, lang Lang) string {
	var b strings.Builder
	fmt.Fprintf(&b, "generator %d\n", generatorRevision)
	if e.music != nil {
		fmt.Fprintf(&b, "music\nlevel %g\nnotes %s\n", e.music.Level, strings.Join(strings.Fields(e.music.Notes), " "))
	}
	for _, seg := range e.texts[lang] {
		v, _ := s.voice(seg.Lang)
		fmt.Fprintf(&b, "segment\nvoice %s\nspeed %d\ntext %s\nsay %s\n", v.Voice, v.Speed, seg.Text, seg.Say)
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:])
}
