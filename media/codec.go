// Package media carries a call's audio over RTP: G.711 framing, one shared
// pacer that sends every call's frames on a single 20 ms clock, and a
// receiver per call that drops packets from anyone but the negotiated peer,
// merges RFC 4733 and in-band DTMF, and notices when media stops.
package media

import (
	"fmt"
	"strings"
	"time"

	"github.com/zaf/g711"
)

// Audio framing: G.711 at 8 kHz in 20 ms frames (RFC 3551 §4.5.14).
const (
	SampleRate    = 8000
	FrameDuration = 20 * time.Millisecond
	FrameSamples  = SampleRate / 1000 * 20 // samples (and G.711 bytes) per frame
)

// Codec is a G.711 codec with its static RTP payload type.
type Codec struct {
	Name        string // SDP encoding name
	PayloadType uint8
	decode      *[256]int16
	encode      func(int16) uint8
}

var (
	ulawTable, alawTable [256]int16
	// PCMU is G.711 µ-law, payload type 0.
	PCMU = Codec{Name: "PCMU", PayloadType: 0, decode: &ulawTable, encode: g711.EncodeUlawFrame}
	// PCMA is G.711 A-law, payload type 8.
	PCMA = Codec{Name: "PCMA", PayloadType: 8, decode: &alawTable, encode: g711.EncodeAlawFrame}
)

func init() {
	for i := range 256 {
		ulawTable[i] = g711.DecodeUlawFrame(uint8(i))
		alawTable[i] = g711.DecodeAlawFrame(uint8(i))
	}
}

// CodecByName finds a supported codec by its SDP encoding name.
func CodecByName(name string) (Codec, error) {
	switch strings.ToUpper(name) {
	case "PCMU":
		return PCMU, nil
	case "PCMA":
		return PCMA, nil
	}
	return Codec{}, fmt.Errorf("unsupported codec %q", name)
}

// Encode encodes linear samples, one byte per sample, into dst (grown as needed).
func (c Codec) Encode(dst []byte, pcm []int16) []byte {
	for _, s := range pcm {
		dst = append(dst, c.encode(s))
	}
	return dst
}

// Decode decodes payload into dst, which must hold len(payload) samples.
func (c Codec) Decode(dst []int16, payload []byte) []int16 {
	dst = dst[:len(payload)]
	for i, b := range payload {
		dst[i] = c.decode[b]
	}
	return dst
}

// Silence is one byte of the codec's encoding of zero.
func (c Codec) Silence() byte { return c.encode(0) }
