package wav

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"testing"
)

func encode(t testing.TB, rate int, pcm []int16) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Encode(&buf, rate, pcm); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	pcm := []int16{0, 1, -1, 32767, -32768, 1234, -4321}
	b := encode(t, 8000, pcm)
	if len(b) != 44+2*len(pcm) {
		t.Fatalf("file is %d bytes, want a 44-byte header and %d bytes of data", len(b), 2*len(pcm))
	}
	rate, got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if rate != 8000 || !slices.Equal(got, pcm) {
		t.Fatalf("got %d Hz %v, want 8000 Hz %v", rate, got, pcm)
	}
}

// TestHeader checks the fields that other programs (sox, baresip's aufile,
// sipp's rtp_stream) read from the canonical header.
func TestHeader(t *testing.T) {
	b := encode(t, 8000, make([]int16, 160))
	le := binary.LittleEndian
	checks := []struct {
		name      string
		got, want uint32
	}{
		{"RIFF size", le.Uint32(b[4:]), uint32(36 + 320)},
		{"fmt size", le.Uint32(b[16:]), 16},
		{"format tag", uint32(le.Uint16(b[20:])), 1},
		{"channels", uint32(le.Uint16(b[22:])), 1},
		{"rate", le.Uint32(b[24:]), 8000},
		{"byte rate", le.Uint32(b[28:]), 16000},
		{"block align", uint32(le.Uint16(b[32:])), 2},
		{"bits", uint32(le.Uint16(b[34:])), 16},
		{"data size", le.Uint32(b[40:]), 320},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	if string(b[0:4]) != "RIFF" || string(b[8:16]) != "WAVEfmt " || string(b[36:40]) != "data" {
		t.Errorf("chunk ids: %q", b[:44])
	}
}

// TestSkipsOtherChunks: sox and others write LIST chunks; an odd-sized chunk
// is followed by a pad byte (RIFF, Microsoft Multimedia Programming Interface
// and Data Specifications 1.0).
func TestSkipsOtherChunks(t *testing.T) {
	b := encode(t, 8000, []int16{7, -7})
	list := []byte("LIST\x03\x00\x00\x00abc\x00")
	withList := slices.Concat(b[:36], list, b[36:])
	binary.LittleEndian.PutUint32(withList[4:], uint32(len(withList)-8))
	_, got, err := Decode(withList)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []int16{7, -7}) {
		t.Fatalf("got %v", got)
	}
}

func TestRejects(t *testing.T) {
	good := encode(t, 8000, []int16{1, 2, 3, 4})
	patch := func(off int, v uint16) []byte {
		b := slices.Clone(good)
		binary.LittleEndian.PutUint16(b[off:], v)
		return b
	}
	cases := map[string][]byte{
		"empty":           nil,
		"not RIFF":        append([]byte("RIFX"), good[4:]...),
		"stereo":          patch(22, 2),
		"8-bit":           patch(34, 8),
		"float":           patch(20, 3),
		"u-law":           patch(20, 7),
		"chunk too long":  patch(40, 1000),
		"odd data":        patch(40, 7),
		"no data chunk":   good[:36],
		"data before fmt": slices.Concat(good[:12], good[36:], good[12:36]),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if _, _, err := Decode(b); !errors.Is(err, ErrFormat) {
				t.Fatalf("err = %v, want ErrFormat", err)
			}
		})
	}
	if err := Encode(&bytes.Buffer{}, 0, nil); !errors.Is(err, ErrFormat) {
		t.Fatalf("rate 0: err = %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(encode(f, 8000, []int16{1, -1, 300}))
	f.Add([]byte("RIFF\x00\x00\x00\x00WAVE"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rate, pcm, err := Decode(b)
		if err != nil {
			return
		}
		// Whatever decodes must survive a round trip.
		rate2, pcm2, err := Decode(encode(t, rate, pcm))
		if err != nil || rate2 != rate || !slices.Equal(pcm, pcm2) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
