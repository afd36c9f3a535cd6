package talkoff

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"math"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// generate returns the pieces of opts, failing the test on an error.
func generate(t *testing.T, opts Options) []Piece {
	t.Helper()
	var pieces []Piece
	if err := Generate(t.Context(), opts, func(p Piece) error {
		pieces = append(pieces, p)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return pieces
}

func digest(pieces []Piece) [32]byte {
	h := sha256.New()
	for _, p := range pieces {
		h.Write([]byte(p.Description))
		h.Write(p.Audio)
	}
	return [32]byte(h.Sum(nil))
}

func TestGenerateRepeats(t *testing.T) {
	// The same seed makes the same audio, byte for byte, so a false key
	// found in an hour's run can be found again; another seed makes other
	// audio.
	opts := Options{Seed: 3, Length: 45 * time.Second}
	a, b := generate(t, opts), generate(t, opts)
	if digest(a) != digest(b) {
		t.Error("two runs with seed 3 made different audio")
	}
	opts.Seed = 4
	if digest(a) == digest(generate(t, opts)) {
		t.Error("seeds 3 and 4 made the same audio")
	}
}

func TestGenerateLength(t *testing.T) {
	var total time.Duration
	pieces := generate(t, Options{Seed: 1, Length: time.Minute})
	for _, p := range pieces[:len(pieces)-1] {
		total += p.Duration()
	}
	// The pieces reach the length asked for, and only the last one ends
	// past it.
	if last := pieces[len(pieces)-1].Duration(); total >= time.Minute || total+last < time.Minute {
		t.Errorf("pieces of %v and a last of %v for a minute", total, last)
	}
}

func TestGenerateLevels(t *testing.T) {
	// Telephone levels: each piece's loudest 20 ms lies between −35 and
	// 0 dBm0, and pauses hold silence, not noise.
	for _, p := range generate(t, Options{Seed: 2, Length: 2 * time.Minute}) {
		pcm := Decode(p.Audio)
		var loudest, quietest float64 = -100, 100
		for i := 0; i+160 <= len(pcm); i += 160 {
			var e float64
			for _, v := range pcm[i : i+160] {
				e += float64(v) * float64(v)
			}
			level := 10*math.Log10(max(e/160, 1e-9)/(32767*32767/2)) + fullScaleDBm0
			loudest, quietest = max(loudest, level), min(quietest, level)
		}
		if loudest < -35 || loudest > 0 {
			t.Errorf("%v (%s): loudest 20 ms at %.1f dBm0", p.Kind, p.Description, loudest)
		}
		if p.Kind != Music && quietest > -60 {
			t.Errorf("%v (%s): no pause below −60 dBm0 (quietest %.1f dBm0)", p.Kind, p.Description, quietest)
		}
	}
}

func TestGenerateNoMusic(t *testing.T) {
	err := Generate(t.Context(), Options{Length: time.Second, MusicDir: t.TempDir()}, func(Piece) error { return nil })
	if !errors.Is(err, ErrNoMusic) {
		t.Errorf("an empty music folder: %v, want ErrNoMusic", err)
	}
}

func TestGenerateStopsAtYieldError(t *testing.T) {
	stop := errors.New("enough")
	n := 0
	err := Generate(t.Context(), Options{Seed: 1, Length: time.Hour}, func(Piece) error {
		n++
		return stop
	})
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("Generate after the first yield's error: %v after %d pieces", err, n)
	}
}

func TestWriteWAV(t *testing.T) {
	// sox reads the file back as the same µ-law bytes.
	sox, err := exec.LookPath("sox")
	if err != nil {
		t.Fatalf("%v (apt-get install sox)", err)
	}
	audio := []byte{0xff, 0x00, 0x80, 0x12, 0xab, 0x55} // not 0x7f: µ-law's −0, which sox reads as +0
	path := filepath.Join(t.TempDir(), "a.wav")
	if err := WriteWAV(path, audio); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sox, "-V1", path, "-t", "ul", "-").Output()
	if err != nil {
		t.Fatalf("sox %s: %v", path, err)
	}
	if !bytes.Equal(out, audio) {
		t.Errorf("sox read % x, want % x", out, audio)
	}
}
