package dtmf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func FuzzDecodeEvent(f *testing.F) {
	// Every packet of the sipp captures, and payloads at the edges.
	files, err := filepath.Glob("/usr/share/sip-tester/dtmf_2833_*.pcap")
	if err != nil || len(files) == 0 {
		f.Fatalf("no sipp DTMF captures in /usr/share/sip-tester (package sip-tester): %v", err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		packets, err := parseRTPCapture(data)
		if err != nil {
			f.Fatalf("%s: %v", file, err)
		}
		for _, p := range packets {
			f.Add(p.Payload)
		}
	}
	for _, seed := range [][]byte{nil, {0x01}, {0x0f, 0xff, 0xff}, {0x10, 0, 0, 0}, {0xff, 0xff, 0xff, 0xff}, {0x05, 0x4a, 0x00, 0xa0, 0x0b, 0x8a}} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		ev, err := DecodeEvent(payload)
		if err != nil {
			if !errors.Is(err, ErrBadEvent) {
				t.Fatalf("DecodeEvent(% x): %v does not match ErrBadEvent", payload, err)
			}
			if len(payload) >= eventSize && payload[0] < 16 {
				t.Fatalf("DecodeEvent(% x) rejected a DTMF event: %v", payload, err)
			}
			return
		}
		// Marshal gives back the event, less the reserved bit (§2.3.3)
		// and anything after it.
		want := slices.Clone(payload[:eventSize])
		want[1] &^= 0x40
		if got := ev.Marshal(); !bytes.Equal(got, want) {
			t.Fatalf("DecodeEvent(% x) = %+v, which marshals as % x", payload, ev, got)
		}
		var tracker EventTracker
		if key, ok := tracker.Observe(0, ev); !ok || key != ev.Key {
			t.Fatalf("a new tracker's first packet %+v reported %q, %v", ev, key, ok)
		}
		if _, ok := tracker.Observe(0, ev); ok {
			t.Fatalf("the same packet %+v reported twice", ev)
		}
	})
}

func FuzzDetector(f *testing.F) {
	rng := rand.New(rand.NewPCG(5, 5))
	seeds := [][]int16{
		nil,
		Silence(ms(30)),
		dial(f, "1#", ms(60), ms(50), ToneOptions{}),
		dial(f, "D", ms(45), ms(45), ToneOptions{TwistDB: -8, LevelDBm0: -25}),
		addNoise(dial(f, "90", ms(50), ms(50), ToneOptions{}), -10, 15, rng),
		sines(SampleRate/4, 0, 3.17, 941, 1477),      // full scale, clipped
		sines(SampleRate/4, 0, -10, 697, 1394, 2091), // harmonics
	}
	square := make([]int16, 800)
	for i := range square {
		square[i] = 32767
		if i/4%2 == 0 {
			square[i] = -32768
		}
	}
	seeds = append(seeds, square)
	for i, pcm := range seeds {
		f.Add(uint8([]int{1, 7, 80, 160, 255}[i%5]), pcmBytes(pcm))
	}
	f.Fuzz(func(t *testing.T, chunk uint8, data []byte) {
		pcm := make([]int16, len(data)/2)
		for i := range pcm {
			pcm[i] = int16(binary.LittleEndian.Uint16(data[2*i:]))
		}
		whole := detect(pcm, 0)
		for _, key := range whole {
			if !strings.ContainsRune(keypad, key) {
				t.Fatalf("reported %q, not a key", key)
			}
		}
		// A press needs 25 ms and a pause or another key between presses.
		if max := len(pcm)/(2*halfBlock) + 1; len(whole) > max {
			t.Fatalf("%d keys in %d samples", len(whole), len(pcm))
		}
		if got := detect(pcm, int(chunk)); got != whole {
			t.Fatalf("fed in chunks of %d: %q; all at once: %q", chunk, got, whole)
		}
	})
}

func pcmBytes(pcm []int16) []byte {
	b := make([]byte, 2*len(pcm))
	for i, x := range pcm {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(x))
	}
	return b
}
