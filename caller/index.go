package caller

import (
	"github.com/hotline12345/hotline/prompts"
)

// frameIndex finds catalog prompts in received G.711 frames exactly. The
// hotline sends every prompt frame-aligned from its first sample, encoded
// from the catalog's PCM padded to whole frames, so on a path that does not
// transcode each received payload is byte for byte one frame of a prompt.
// The index maps every such frame to the places it occurs. It is read-only
// once built and safe for concurrent use.
type frameIndex struct {
	law     law
	prompts []*indexedPrompt
	places  map[string][]framePlace // by the frame's bytes
}

// indexedPrompt is one prompt encoded with the index's law.
type indexedPrompt struct {
	id     prompts.ID
	lang   prompts.Lang
	audio  []byte // whole frames
	frames int
}

// frame returns frame i of the prompt.
func (p *indexedPrompt) frame(i int) []byte {
	return p.audio[i*frameSamples : (i+1)*frameSamples]
}

// framePlace is where a frame occurs: frame number frame of prompt number
// prompt (an index into frameIndex.prompts).
type framePlace struct {
	prompt, frame int32
}

// newFrameIndex encodes every prompt of c in every language with l. Audio
// that is the same in several languages (hold music) is indexed once, in the
// first of them, as prompts.Matcher reports it.
func newFrameIndex(c *prompts.Catalog, l law) *frameIndex {
	idx := &frameIndex{law: l, places: make(map[string][]framePlace)}
	seen := make(map[string]bool)
	for _, lang := range c.Langs() {
		for _, id := range c.IDs() {
			p, err := c.Get(id, lang)
			if err != nil || p.Lang != lang || seen[p.Version] || len(p.PCM) == 0 {
				continue // a fallback to the default language is indexed there
			}
			seen[p.Version] = true
			idx.add(id, lang, p.PCM)
		}
	}
	return idx
}

// add encodes one prompt, padded with silence to whole frames as the
// hotline sends it, and indexes its frames.
func (idx *frameIndex) add(id prompts.ID, lang prompts.Lang, pcm []int16) {
	frames := (len(pcm) + frameSamples - 1) / frameSamples
	padded := make([]int16, frames*frameSamples)
	copy(padded, pcm)
	ip := &indexedPrompt{id: id, lang: lang, audio: idx.law.encodeAll(make([]byte, 0, len(padded)), padded), frames: frames}
	n := int32(len(idx.prompts))
	idx.prompts = append(idx.prompts, ip)
	for f := range frames {
		key := string(ip.frame(f))
		idx.places[key] = append(idx.places[key], framePlace{prompt: n, frame: int32(f)})
	}
}

// lookup returns the places of a received frame.
func (idx *frameIndex) lookup(frame []byte) []framePlace {
	return idx.places[string(frame)]
}
