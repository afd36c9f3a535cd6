// Command talkoff measures the in-band DTMF detector's talk-off: it makes an
// hour (by default) of speech and music that holds no key press — Mandarin
// and English espeak-ng voices across pitches, speeds and variants, paced
// like callers, hold music, and callers over music, band-limited, at
// telephone levels and through G.711 µ-law (package media/dtmf/talkoff) —
// runs one detector over all of it in 20 ms frames, as over a long call, and
// counts the keys it reports. Every one is false. The audio stays in memory;
// the pieces that gave a false key are written to -out as WAV.
//
//	nice -n 19 go run ./bench/talkoff -length 1h -seed 1
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/hotline12345/hotline/media/dtmf"
	"github.com/hotline12345/hotline/media/dtmf/talkoff"
)

func main() {
	var o options
	flag.DurationVar(&o.length, "length", time.Hour, "how much audio to make and listen to")
	flag.Uint64Var(&o.seed, "seed", 1, "seed of every choice of voice, sentence, pause, level and music")
	flag.StringVar(&o.music, "music", talkoff.DefaultMusicDir, "folder of 8 kHz WAV music")
	flag.StringVar(&o.out, "out", "bench/out/talkoff", "folder for the pieces that gave a false key, as WAV")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "talkoff:", err)
		os.Exit(1)
	}
}

type options struct {
	length     time.Duration
	seed       uint64
	music, out string
}

// share is what one kind of piece added up to.
type share struct {
	pieces   int
	duration time.Duration
}

func run(ctx context.Context, o options) error {
	det := dtmf.NewDetector()
	made := map[string]*share{}
	var total, listening time.Duration
	var frames, falseKeys int
	started := time.Now()
	next := 10 * time.Minute
	err := talkoff.Generate(ctx, talkoff.Options{Seed: o.seed, Length: o.length, MusicDir: o.music}, func(p talkoff.Piece) error {
		pcm := talkoff.Decode(p.Audio)
		var keys []rune
		t0 := time.Now()
		for frame := range slices.Chunk(pcm, 160) {
			det.Process(frame, func(key rune) { keys = append(keys, key) })
			frames++
		}
		listening += time.Since(t0)

		name := p.Kind.String()
		if p.Language != "" {
			name = p.Language + " " + name
		}
		if made[name] == nil {
			made[name] = &share{}
		}
		made[name].pieces++
		made[name].duration += p.Duration()
		if len(keys) > 0 {
			falseKeys += len(keys)
			file := filepath.Join(o.out, fmt.Sprintf("seed%d-at%05.0fs.wav", o.seed, total.Seconds()))
			fmt.Printf("%v: %q in %s (%s), %s\n", total.Round(time.Second), string(keys), name, p.Description, file)
			if err := os.MkdirAll(o.out, 0o755); err != nil {
				return err
			}
			if err := talkoff.WriteWAV(file, p.Audio); err != nil {
				return err
			}
		}
		total += p.Duration()
		if total >= next {
			fmt.Fprintf(os.Stderr, "%v of audio, %d false keys, %v elapsed\n", total.Round(time.Second), falseKeys, time.Since(started).Round(time.Second))
			next += 10 * time.Minute
		}
		return nil
	})
	if err != nil {
		return err
	}

	fmt.Printf("\nseed %d: %v of audio (%d pieces), made and heard in %v\n\n", o.seed, total.Round(time.Second), countPieces(made), time.Since(started).Round(time.Second))
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "material\tpieces\tlength\tshare\t")
	names := make([]string, 0, len(made))
	for name := range made {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		s := made[name]
		fmt.Fprintf(w, "%s\t%d\t%v\t%.0f%%\t\n", name, s.pieces, s.duration.Round(time.Second), 100*s.duration.Seconds()/total.Seconds())
	}
	w.Flush()
	fmt.Printf("\nfalse keys: %d in %v\n", falseKeys, total.Round(time.Second))
	fmt.Printf("detector: %.2f µs per 20 ms frame over this audio (%d frames)\n", float64(listening.Microseconds())/float64(frames), frames)
	return nil
}

func countPieces(made map[string]*share) int {
	n := 0
	for _, s := range made {
		n += s.pieces
	}
	return n
}
