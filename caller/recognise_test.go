package caller

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/prompts"
)

var laws = []law{pcmu, pcma}

var (
	loadCatalog = sync.OnceValues(prompts.Default)
	indexes     sync.Map // law name → *frameIndex
)

func catalog(t testing.TB) *prompts.Catalog {
	t.Helper()
	c, err := loadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func indexFor(t testing.TB, l law) *frameIndex {
	t.Helper()
	if idx, ok := indexes.Load(l.name); ok {
		return idx.(*frameIndex)
	}
	idx, _ := indexes.LoadOrStore(l.name, newFrameIndex(catalog(t), l))
	return idx.(*frameIndex)
}

func prompt(t testing.TB, id prompts.ID, lang prompts.Lang) *prompts.Prompt {
	t.Helper()
	p, err := catalog(t).Get(id, lang)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// rtpStream is audio as a media server sends it: one 20 ms frame per tick,
// an RTP clock that runs on through pauses, prompts frame-aligned.
type rtpStream struct {
	law    law
	ssrc   uint32
	clock  uint32 // RTP timestamp of the next tick
	tick   int    // ticks since the first
	pkts   []rtpPacket
	played []prompts.Heard // what went out, Start from the first tick
}

type rtpPacket struct {
	ssrc, ts uint32
	tick     int
	payload  []byte
}

func newStream(l law) *rtpStream {
	return &rtpStream{law: l, ssrc: 0x1234, clock: 0xffff0000} // wraps after 409 frames
}

// play sends the first frames frames of a prompt (all of it when frames < 0).
func (s *rtpStream) play(p *prompts.Prompt, frames int) *rtpStream {
	audio := s.law.encodeAll(nil, p.PCM)
	for len(audio)%frameSamples != 0 {
		audio = append(audio, s.law.encode(0))
	}
	n := len(audio) / frameSamples
	if frames < 0 || frames > n {
		frames = n
	}
	s.played = append(s.played, prompts.Heard{
		ID: p.ID, Lang: p.Lang, Start: time.Duration(s.tick) * frameDuration,
		Length: time.Duration(frames) * frameDuration, Complete: frames == n,
	})
	for f := range frames {
		s.send(audio[f*frameSamples : (f+1)*frameSamples])
	}
	return s
}

// silence sends frames of digital silence.
func (s *rtpStream) silence(frames int) *rtpStream {
	for range frames {
		s.send(s.law.silence())
	}
	return s
}

// pause sends nothing for a while; the RTP clock runs on (RFC 3550 §5.1).
func (s *rtpStream) pause(frames int) *rtpStream {
	s.clock += uint32(frames * frameSamples)
	s.tick += frames
	return s
}

func (s *rtpStream) send(frame []byte) {
	s.pkts = append(s.pkts, rtpPacket{ssrc: s.ssrc, ts: s.clock, tick: s.tick, payload: frame})
	s.clock += frameSamples
	s.tick++
}

// hearingLog is what a recogniser reported.
type hearingLog struct {
	events []hearing
	heard  []prompts.Heard // from finish
}

// recogniseStream feeds a recogniser the packets as if they arrived one
// per tick from the answer on.
func recogniseStream(idx *frameIndex, matcher func() *prompts.Matcher, pkts []rtpPacket) hearingLog {
	var out hearingLog
	answered := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	r := newRecogniser(idx, matcher, answered, func(h hearing) { out.events = append(out.events, h) }, zerolog.Nop())
	for _, p := range pkts {
		r.packet(p.ssrc, p.ts, p.payload, answered.Add(time.Duration(p.tick)*frameDuration))
	}
	out.heard = r.finish()
	return out
}

// checkHeard compares what was heard with what was played, exactly.
func checkHeard(t *testing.T, got, want []prompts.Heard) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("heard\n%s\nwant\n%s", describe(got), describe(want))
	}
}

func describe(hs []prompts.Heard) string {
	var b strings.Builder
	for _, h := range hs {
		fmt.Fprintf(&b, "  %v %s/%s len %v complete %v\n", h.Start, h.ID, h.Lang, h.Length, h.Complete)
	}
	if len(hs) == 0 {
		b.WriteString("  (nothing)\n")
	}
	return b.String()
}

// checkEvents checks the news came as a caller needs it: each prompt
// recognised once, then reported over once, with what finish returns.
func checkEvents(t *testing.T, log hearingLog) {
	t.Helper()
	recognised := map[int]bool{}
	over := map[int]bool{}
	for _, ev := range log.events {
		switch {
		case !ev.ended && (recognised[ev.index] || ev.index != len(recognised)):
			t.Errorf("prompt %d (%s) recognised out of turn", ev.index, ev.heard.ID)
		case ev.ended && (!recognised[ev.index] || over[ev.index]):
			t.Errorf("prompt %d (%s) reported over before recognised or twice", ev.index, ev.heard.ID)
		case ev.ended:
			over[ev.index] = true
			// The start is measured again at the end, on the best
			// estimate of the sender's clock.
			ev.heard.Start = 0
			if ev.index < len(log.heard) && ev.heard != (prompts.Heard{ID: log.heard[ev.index].ID, Lang: log.heard[ev.index].Lang,
				Length: log.heard[ev.index].Length, Complete: log.heard[ev.index].Complete}) {
				t.Errorf("prompt %d reported over as %+v, finish says %+v", ev.index, ev.heard, log.heard[ev.index])
			}
		}
		recognised[ev.index] = true
	}
	if len(recognised) != len(log.heard) || len(over) != len(log.heard) {
		t.Errorf("%d prompts recognised and %d over, finish lists %d", len(recognised), len(over), len(log.heard))
	}
}

// reported is the language a prompt is reported in: audio the same in
// several languages is reported in the first.
func reported(t *testing.T, p *prompts.Prompt) prompts.Lang {
	c := catalog(t)
	for _, lang := range c.Langs() {
		if q := prompt(t, p.ID, lang); q.Version == p.Version {
			return lang
		}
	}
	return p.Lang
}

func TestRecogniseEveryPrompt(t *testing.T) {
	c := catalog(t)
	for _, l := range laws {
		idx := indexFor(t, l)
		for _, lang := range c.Langs() {
			for _, id := range c.IDs() {
				t.Run(fmt.Sprintf("%s/%s/%s", l.name, lang, id), func(t *testing.T) {
					p := prompt(t, id, lang)
					s := newStream(l).pause(7).silence(5).play(p, -1).silence(5)
					s.played[0].Lang = reported(t, p)
					log := recogniseStream(idx, nil, s.pkts)
					checkHeard(t, log.heard, s.played)
					checkEvents(t, log)
				})
			}
		}
	}
}

// The appeal number is read out as prompts back to back, the same digit
// several times in a row.
func TestRecogniseReadout(t *testing.T) {
	for _, l := range laws {
		for _, lang := range []prompts.Lang{prompts.Mandarin, prompts.English} {
			t.Run(l.name+"/"+string(lang), func(t *testing.T) {
				s := newStream(l).play(prompt(t, prompts.AppealNumber, lang), -1)
				for _, d := range "2611270001" {
					s.play(prompt(t, prompts.Digit(d), lang), -1)
				}
				s.play(prompt(t, prompts.Goodbye, lang), -1)
				log := recogniseStream(indexFor(t, l), nil, s.pkts)
				checkHeard(t, log.heard, s.played)
				checkEvents(t, log)
			})
		}
	}
}

// A key pressed during a menu stops it at a frame boundary and the next
// prompt follows in the next frame.
func TestRecogniseCutShort(t *testing.T) {
	for _, l := range laws {
		t.Run(l.name, func(t *testing.T) {
			s := newStream(l).
				play(prompt(t, prompts.CategoryMenu, prompts.Mandarin), 60).
				play(prompt(t, prompts.InvalidKey, prompts.Mandarin), -1).
				pause(50).
				play(prompt(t, prompts.CategoryMenu, prompts.Mandarin), -1).
				play(prompt(t, prompts.ConsentMenu, prompts.Mandarin), 25). // cut, then the line goes quiet
				pause(100).
				play(prompt(t, prompts.Goodbye, prompts.English), 40) // cut by the end of the call
			log := recogniseStream(indexFor(t, l), nil, s.pkts)
			checkHeard(t, log.heard, s.played)
			checkEvents(t, log)
		})
	}
}

// Between prompts a media server sends silence, or nothing at all; silence
// frames occur in almost every prompt and must not start or end anything.
func TestRecogniseSilenceBetween(t *testing.T) {
	for _, l := range laws {
		t.Run(l.name, func(t *testing.T) {
			s := newStream(l).silence(100).
				play(prompt(t, prompts.Greeting, prompts.Mandarin), -1).
				silence(50).
				play(prompt(t, prompts.NoInput, prompts.English), -1).
				pause(30).silence(3).pause(30).
				play(prompt(t, prompts.Digit('7'), prompts.Mandarin), -1). // starts with silence
				silence(200)
			log := recogniseStream(indexFor(t, l), nil, s.pkts)
			checkHeard(t, log.heard, s.played)
			checkEvents(t, log)

			quiet := recogniseStream(indexFor(t, l), nil, newStream(l).silence(500).pause(50).silence(500).pkts)
			checkHeard(t, quiet.heard, nil)
		})
	}
}

// Prompts that begin with the same words share their first frames exactly
// ("We did not receive a key press" and "We did not receive a rating"):
// the prompt is known, and reported from its first frame, once they part.
func TestRecogniseSharedStart(t *testing.T) {
	for _, tc := range []struct{ played, alike prompts.ID }{
		{prompts.NoInput, prompts.RatingNone},
		{prompts.RatingNone, prompts.NoInput},
		{prompts.Goodbye, prompts.RatingThanks},
		{prompts.QueuePositionEnd, prompts.Goodbye},
	} {
		t.Run(string(tc.played), func(t *testing.T) {
			p, q := prompt(t, tc.played, prompts.English), prompt(t, tc.alike, prompts.English)
			shared := sharedFrames(pcmu, p, q)
			if shared < minRun {
				t.Fatalf("%s and %s share %d frames; the catalog changed, pick others", p.ID, q.ID, shared)
			}
			s := newStream(pcmu).play(p, -1)
			log := recogniseStream(indexFor(t, pcmu), nil, s.pkts)
			checkHeard(t, log.heard, s.played)
			checkEvents(t, log)
		})
	}
}

// sharedFrames counts the frames two prompts begin with alike, after any
// leading silence.
func sharedFrames(l law, p, q *prompts.Prompt) int {
	a, b := l.encodeAll(nil, p.PCM), l.encodeAll(nil, q.PCM)
	n := 0
	for i := 0; (i+1)*frameSamples <= min(len(a), len(b)); i++ {
		if string(a[i*frameSamples:(i+1)*frameSamples]) != string(b[i*frameSamples:(i+1)*frameSamples]) {
			break
		}
		n++
	}
	return n
}

// synthetic builds an index of made-up prompts from frames named by
// letters: "abcd" is four frames, each filled with its own tone; "_" is
// silence.
func synthetic(l law, prompts map[prompts.ID]string) (*frameIndex, func(string) []byte) {
	frame := func(c byte) []byte {
		pcm := make([]int16, frameSamples)
		if c != '_' {
			f := 200 + 90*float64(c-'a')
			for i := range pcm {
				pcm[i] = int16(8000 * math.Sin(2*math.Pi*f*float64(i)/sampleRate))
			}
		}
		return l.encodeAll(nil, pcm)
	}
	audio := func(frames string) []byte {
		var out []byte
		for i := range len(frames) {
			out = append(out, frame(frames[i])...)
		}
		return out
	}
	idx := &frameIndex{law: l, places: map[string][]framePlace{}}
	ids := make([]string, 0, len(prompts))
	for id := range prompts {
		ids = append(ids, string(id))
	}
	slices.Sort(ids)
	for _, id := range ids {
		a := audio(prompts[idFrom(id)])
		pcm := make([]int16, len(a))
		for i, b := range a {
			pcm[i] = l.decode(b)
		}
		idx.add(idFrom(id), "zz", pcm)
	}
	return idx, audio
}

func idFrom(s string) prompts.ID { return prompts.ID(s) }

// syntheticStream sends frames (letters as in synthetic; "." is a tick
// with no packet).
func syntheticStream(audio func(string) []byte, frames string) []rtpPacket {
	var pkts []rtpPacket
	for i := range len(frames) {
		if frames[i] == '.' {
			continue
		}
		pkts = append(pkts, rtpPacket{ssrc: 1, ts: uint32(1000 + i*frameSamples), tick: i, payload: audio(frames[i : i+1])})
	}
	return pkts
}

func heardIDs(hs []prompts.Heard) string {
	var parts []string
	for _, h := range hs {
		s := fmt.Sprintf("%s@%d", h.ID, h.Start/frameDuration)
		if !h.Complete {
			s += fmt.Sprintf("(cut %d)", h.Length/frameDuration)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

// Made-up prompts pin down the rules: three frames that fit one place of
// one prompt and nothing else make it heard; silence is shared by all and
// starts nothing; a prompt that is the start of another is heard when the
// other does not go on.
func TestRecogniseRules(t *testing.T) {
	idx, audio := synthetic(pcmu, map[prompts.ID]string{
		"long":   "__abcdefgh__",
		"alike":  "__abcdxyz",
		"prefix": "__abc",
		"quiet":  "_____kl_____mn",
		"twice":  "pqrpqrpqr",
		"solo":   "uvwst",
		// Silence is common in a real catalog: everywhere, so too common
		// to start a run.
		"pauses": strings.Repeat("_", maxStart) + "j",
	})
	for _, tc := range []struct {
		name, stream, want string
	}{
		{"whole", "....__abcdefgh__....", "long@4"},
		{"the other", "__abcdxyz", "alike@0"},
		{"the start of two, undecided", "__abcd....", ""},
		{"a prefix alone", "__abc....", "prefix@0"},
		{"a prefix, then silence", "__abc____", "prefix@0"},
		{"two frames are not enough", "..uv..", ""},
		{"three are", "..uvw..", "solo@2(cut 3)"},
		{"only silence", "_____________", ""},
		{"sound in silence", "__________kl_____mn", "quiet@5"},
		{"back to back", "__abc__abc__abcdefgh__", "prefix@0 prefix@5 long@10"},
		{"a lost frame", "__abcd.fgh__", "long@0"},
		{"the last frame lost", "__abcdefgh_.", "long@0(cut 11)"},
		{"too many lost", "__abc....hgh", "prefix@0"},
		{"repeats inside", "pqrpqrpqr", "twice@0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := recogniseStream(idx, nil, syntheticStream(audio, tc.stream))
			if got := heardIDs(log.heard); got != strings.TrimSpace(tc.want) {
				t.Errorf("heard %q, want %q", got, strings.TrimSpace(tc.want))
			}
			checkEvents(t, log)
		})
	}
}

// Real streams are not perfect: packets are duplicated or come late, the
// clock wraps, the source changes, a sender packs two frames in a packet.
func TestRecogniseStreamQuirks(t *testing.T) {
	c := func(t *testing.T) *rtpStream {
		return newStream(pcma).
			play(prompt(t, prompts.Greeting, prompts.Mandarin), -1).
			play(prompt(t, prompts.CategoryMenu, prompts.Mandarin), -1) // crosses the wrap of the clock
	}
	t.Run("duplicated and late", func(t *testing.T) {
		s := c(t)
		var pkts []rtpPacket
		for i, p := range s.pkts {
			pkts = append(pkts, p)
			if i%50 == 7 {
				pkts = append(pkts, p, s.pkts[i-3])
			}
		}
		log := recogniseStream(indexFor(t, pcma), nil, pkts)
		checkHeard(t, log.heard, s.played)
	})
	t.Run("new source", func(t *testing.T) {
		s := newStream(pcma).play(prompt(t, prompts.Greeting, prompts.Mandarin), -1)
		s.ssrc, s.clock = 0x9999, 12345
		s.pause(10).play(prompt(t, prompts.NoInput, prompts.Mandarin), -1)
		log := recogniseStream(indexFor(t, pcma), nil, s.pkts)
		greeting := len(prompt(t, prompts.Greeting, prompts.Mandarin).PCM) / frameSamples
		if got, want := heardIDs(log.heard), fmt.Sprintf("greeting@0 no_input@%d", greeting+10); got != want {
			t.Errorf("heard %s, want %s", got, want)
		}
	})
	t.Run("late packets", func(t *testing.T) {
		// Starts are read off the sender's clock, not off the arrival of
		// each prompt's first packet, which may be late (the first one of
		// the call here).
		s := c(t)
		rng := rand.New(rand.NewPCG(3, 4))
		answered := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
		var log hearingLog
		r := newRecogniser(indexFor(t, pcma), nil, answered, func(h hearing) { log.events = append(log.events, h) }, zerolog.Nop())
		for i, p := range s.pkts {
			late := time.Duration(rng.IntN(40)) * time.Millisecond
			if i == 0 {
				late = 55 * time.Millisecond
			}
			r.packet(p.ssrc, p.ts, p.payload, answered.Add(time.Duration(p.tick)*frameDuration+late))
		}
		log.heard = r.finish()
		checkHeard(t, log.heard, s.played)
		checkEvents(t, log)
	})
	t.Run("two frames a packet", func(t *testing.T) {
		s := c(t)
		if len(s.pkts)%2 != 0 {
			s.silence(1)
		}
		var pkts []rtpPacket
		for i := 0; i+1 < len(s.pkts); i += 2 {
			p := s.pkts[i]
			p.payload = append(slices.Clone(p.payload), s.pkts[i+1].payload...)
			pkts = append(pkts, p)
		}
		log := recogniseStream(indexFor(t, pcma), nil, pkts)
		checkHeard(t, log.heard, s.played)
	})
}

// transcode carries a stream through a media server that decodes, changes
// the level and re-encodes (Asterisk with a volume, a carrier's gateway):
// no frame is left as it was sent.
func transcode(pkts []rtpPacket, from, to law, gainDB float64, rng *rand.Rand) []rtpPacket {
	g := math.Pow(10, gainDB/20)
	out := make([]rtpPacket, len(pkts))
	for i, p := range pkts {
		payload := make([]byte, len(p.payload))
		for j, b := range p.payload {
			x := float64(from.decode(b))*g + rng.NormFloat64()*3
			payload[j] = to.encode(int16(max(-32768, min(32767, math.Round(x)))))
		}
		p.payload = payload
		out[i] = p
	}
	return out
}

// On a transcoding path the exact index finds nothing; after two seconds
// of sound the matcher takes over in real time, so that a script still
// hears its prompts, and at the end it reads the whole recording.
func TestRecogniseTranscoded(t *testing.T) {
	c := catalog(t)
	matcher := sync.OnceValue(func() *prompts.Matcher { return prompts.NewMatcher(c) })
	s := newStream(pcmu).silence(25).
		play(prompt(t, prompts.Greeting, prompts.Mandarin), -1).
		pause(20).
		play(prompt(t, prompts.CategoryMenu, prompts.Mandarin), 200).
		play(prompt(t, prompts.InvalidKey, prompts.Mandarin), -1).
		pause(20).
		play(prompt(t, prompts.AppealNumber, prompts.Mandarin), -1).
		play(prompt(t, prompts.Digit('3'), prompts.Mandarin), -1).
		play(prompt(t, prompts.Goodbye, prompts.Mandarin), -1).
		silence(50)
	pkts := transcode(s.pkts, pcmu, pcma, -2, rand.New(rand.NewPCG(1, 2)))
	log := recogniseStream(indexFor(t, pcma), matcher, pkts)

	var ids []prompts.ID
	for _, h := range log.heard {
		ids = append(ids, h.ID)
	}
	want := []prompts.ID{prompts.Greeting, prompts.CategoryMenu, prompts.InvalidKey, prompts.AppealNumber, prompts.Digit('3'), prompts.Goodbye}
	if !slices.Equal(ids, want) {
		t.Fatalf("heard %v, want %v", ids, want)
	}
	for i, h := range log.heard {
		p := s.played[i]
		if h.Complete != p.Complete || (h.Start-p.Start).Abs() > frameDuration {
			t.Errorf("heard %s at %v complete %v, played at %v complete %v", h.ID, h.Start, h.Complete, p.Start, p.Complete)
		}
	}
	// In real time: the greeting is known only after two seconds of it,
	// later prompts while they play, each reported over.
	var during []prompts.ID
	ended := map[prompts.ID]bool{}
	for _, ev := range log.events {
		if !ev.ended {
			during = append(during, ev.heard.ID)
		} else if ev.heard.Complete {
			ended[ev.heard.ID] = true
		}
	}
	if !slices.Equal(during, want) {
		t.Errorf("recognised in real time %v, want %v", during, want)
	}
	for _, id := range []prompts.ID{prompts.Greeting, prompts.InvalidKey, prompts.Goodbye} {
		if !ended[id] {
			t.Errorf("%s not reported complete in real time", id)
		}
	}
}

func BenchmarkRecogniseExact(b *testing.B) {
	s := newStream(pcmu).play(prompt(b, prompts.CategoryMenu, prompts.Mandarin), -1)
	idx := indexFor(b, pcmu)
	n := 0
	for b.Loop() {
		recogniseStream(idx, nil, s.pkts)
		n++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*len(s.pkts)), "ns/frame")
}

// BenchmarkMatcherWindow is the cost of one real-time pass of the fuzzy
// matcher over a 4 s window.
func BenchmarkMatcherWindow(b *testing.B) {
	m := prompts.NewMatcher(catalog(b))
	pcm := prompt(b, prompts.CategoryMenu, prompts.Mandarin).PCM[:fuzzyWindow]
	for b.Loop() {
		m.Match(pcm)
	}
}

func BenchmarkNewFrameIndex(b *testing.B) {
	c := catalog(b)
	for b.Loop() {
		newFrameIndex(c, pcmu)
	}
}

func BenchmarkNewMatcher(b *testing.B) {
	c := catalog(b)
	for b.Loop() {
		prompts.NewMatcher(c)
	}
}
