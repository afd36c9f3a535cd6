package caller

import (
	"strings"
	"time"

	"github.com/zaf/g711"

	"github.com/hotline12345/hotline/prompts"
)

// Audio framing of the call: G.711 at 8 kHz in 20 ms packets, the default
// packetisation of RFC 3551 §4.5.14, which is also how the catalog's prompts
// are cut (prompts.FrameSamples).
const (
	sampleRate    = prompts.SampleRate
	frameSamples  = prompts.FrameSamples
	frameDuration = time.Second * frameSamples / sampleRate
)

// law is one G.711 companding law (ITU-T G.711): how the caller encodes what
// it sends and decodes what it hears. One byte per sample.
type law struct {
	name   string // SDP encoding name, RFC 3551 §6
	encode func(int16) uint8
	decode func(uint8) int16
}

var (
	pcmu = law{name: "PCMU", encode: g711.EncodeUlawFrame, decode: g711.DecodeUlawFrame}
	pcma = law{name: "PCMA", encode: g711.EncodeAlawFrame, decode: g711.DecodeAlawFrame}
)

// lawByName finds a law by its SDP encoding name, in any case.
func lawByName(name string) (law, bool) {
	switch strings.ToUpper(name) {
	case pcmu.name:
		return pcmu, true
	case pcma.name:
		return pcma, true
	}
	return law{}, false
}

// encodeAll encodes pcm, one byte per sample, appending to dst.
func (l law) encodeAll(dst []byte, pcm []int16) []byte {
	for _, s := range pcm {
		dst = append(dst, l.encode(s))
	}
	return dst
}

// silence is one 20 ms frame of the law's encoding of zero.
func (l law) silence() []byte {
	f := make([]byte, frameSamples)
	z := l.encode(0)
	for i := range f {
		f[i] = z
	}
	return f
}
