// Package wav reads and writes the one WAV layout the prompt catalog uses:
// RIFF/WAVE, a PCM "fmt " chunk (format tag 1), one channel, 16-bit signed
// little-endian samples. Anything else is refused with an error wrapping
// ErrFormat, so a stray 44.1 kHz or u-law file never reaches a call.
package wav

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ErrFormat is wrapped by every error about a malformed or unsupported file.
var ErrFormat = errors.New("wav: unsupported format")

const (
	formatPCM     = 1
	bitsPerSample = 16
	channels      = 1
	headerSize    = 44
)

// Encode writes pcm as a canonical 44-byte-header PCM WAV file.
func Encode(w io.Writer, rate int, pcm []int16) error {
	if rate <= 0 {
		return fmt.Errorf("%w: sample rate %d", ErrFormat, rate)
	}
	dataSize := 2 * len(pcm)
	if dataSize > 1<<31-headerSize {
		return fmt.Errorf("%w: %d samples do not fit a RIFF file", ErrFormat, len(pcm))
	}
	buf := make([]byte, headerSize+dataSize)
	copy(buf[0:], "RIFF")
	binary.LittleEndian.PutUint32(buf[4:], uint32(headerSize-8+dataSize))
	copy(buf[8:], "WAVE")
	copy(buf[12:], "fmt ")
	binary.LittleEndian.PutUint32(buf[16:], 16)
	binary.LittleEndian.PutUint16(buf[20:], formatPCM)
	binary.LittleEndian.PutUint16(buf[22:], channels)
	binary.LittleEndian.PutUint32(buf[24:], uint32(rate))
	binary.LittleEndian.PutUint32(buf[28:], uint32(rate*channels*bitsPerSample/8))
	binary.LittleEndian.PutUint16(buf[32:], channels*bitsPerSample/8)
	binary.LittleEndian.PutUint16(buf[34:], bitsPerSample)
	copy(buf[36:], "data")
	binary.LittleEndian.PutUint32(buf[40:], uint32(dataSize))
	for i, s := range pcm {
		binary.LittleEndian.PutUint16(buf[headerSize+2*i:], uint16(s))
	}
	_, err := w.Write(buf)
	return err
}

// Decode parses a mono 16-bit PCM WAV file and returns its sample rate and
// samples. Chunks other than "fmt " and "data" (LIST, fact, ...) are skipped,
// honouring the RIFF rule that odd-sized chunks are followed by a pad byte.
func Decode(b []byte) (rate int, pcm []int16, err error) {
	if len(b) < 12 || !bytes.Equal(b[0:4], []byte("RIFF")) || !bytes.Equal(b[8:12], []byte("WAVE")) {
		return 0, nil, fmt.Errorf("%w: not a RIFF/WAVE file", ErrFormat)
	}
	haveFmt := false
	rest := b[12:]
	for len(rest) >= 8 {
		id := string(rest[0:4])
		size := int64(binary.LittleEndian.Uint32(rest[4:8]))
		rest = rest[8:]
		if size > int64(len(rest)) {
			return 0, nil, fmt.Errorf("%w: chunk %q claims %d bytes, %d left", ErrFormat, id, size, len(rest))
		}
		body := rest[:size]
		switch id {
		case "fmt ":
			if rate, err = parseFmt(body); err != nil {
				return 0, nil, err
			}
			haveFmt = true
		case "data":
			if !haveFmt {
				return 0, nil, fmt.Errorf("%w: data chunk before fmt chunk", ErrFormat)
			}
			if size%2 != 0 {
				return 0, nil, fmt.Errorf("%w: data chunk of %d bytes is not whole 16-bit samples", ErrFormat, size)
			}
			pcm = make([]int16, size/2)
			for i := range pcm {
				pcm[i] = int16(binary.LittleEndian.Uint16(body[2*i:]))
			}
			return rate, pcm, nil
		}
		if size%2 == 1 && size < int64(len(rest)) {
			size++
		}
		rest = rest[size:]
	}
	return 0, nil, fmt.Errorf("%w: no data chunk", ErrFormat)
}

func parseFmt(body []byte) (int, error) {
	if len(body) < 16 {
		return 0, fmt.Errorf("%w: fmt chunk of %d bytes", ErrFormat, len(body))
	}
	tag := binary.LittleEndian.Uint16(body[0:])
	ch := binary.LittleEndian.Uint16(body[2:])
	rate := binary.LittleEndian.Uint32(body[4:])
	bits := binary.LittleEndian.Uint16(body[14:])
	switch {
	case tag != formatPCM:
		return 0, fmt.Errorf("%w: format tag %d, want %d (PCM)", ErrFormat, tag, formatPCM)
	case ch != channels:
		return 0, fmt.Errorf("%w: %d channels, want mono", ErrFormat, ch)
	case bits != bitsPerSample:
		return 0, fmt.Errorf("%w: %d bits per sample, want %d", ErrFormat, bits, bitsPerSample)
	case rate == 0 || rate > 1<<20:
		return 0, fmt.Errorf("%w: sample rate %d", ErrFormat, rate)
	}
	return int(rate), nil
}
