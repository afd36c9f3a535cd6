package caller

import (
	"bytes"
	"time"

	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/prompts"
)

// hearing is news from the recogniser: a prompt was recognised in the
// received audio, or a prompt recognised earlier is over.
type hearing struct {
	index int           // the prompt's place in the list of prompts heard
	heard prompts.Heard // as far as it is known now
	ended bool          // the prompt is over; heard.Complete says whether it played to its end
}

// Exact recognition.
const (
	// minRun is how many consecutive frames must continue one place of one
	// prompt, and no other, before the prompt counts as heard: 60 ms,
	// shorter than the shortest prompt (a digit, 280 ms).
	minRun = 3
	// maxStart is how many places a frame may have and still start runs.
	// Silence, and little else, occurs in nearly every prompt; starting a
	// run at each of its places would cost much and tell nothing, so runs
	// start on distinctive frames and are extended back over common ones.
	maxStart = 64
	// maxLoss is how many frames in a row may be lost in the network while
	// a run goes on.
	maxLoss = 3
	// historyFrames is how far back a new run may be extended: 5 s.
	historyFrames = 256
)

// Fuzzy recognition, for a path that transcodes (a carrier, Asterisk
// mixing): the exact index then finds nothing and prompts.Matcher, which
// correlates waveforms, takes over.
const (
	// fuzzyAfter is how much sound the exact index must have failed to
	// recognise before the matcher runs in real time. The first prompt
	// is recognised exactly within 60 ms when it can be, so 2 s of sound
	// with nothing recognised means the audio was transformed.
	fuzzyAfter = 2 * sampleRate / frameSamples // frames
	// soundLevel is the mean square above which a frame counts as sound:
	// about −40 dBFS, well under speech and well over idle-channel noise.
	soundLevel = 330 * 330
	// The matcher looks at the last fuzzyWindow of audio every fuzzyEvery,
	// reaching back to the start of any prompt still playing (it needs a
	// prompt's start to find it) up to fuzzyMaxWindow. One pass over 4 s
	// costs 5 to 10 ms of one core (BenchmarkMatcherWindow), 2 to 4 % of a
	// core at 4 passes a second, and preparing the matcher 70 ms; the exact
	// index costs about 3 µs a frame, 0.015 % of a core
	// (BenchmarkRecogniseExact). That is why the matcher stays off while
	// the exact index works.
	fuzzyWindow    = 4 * sampleRate
	fuzzyEvery     = sampleRate / 4
	fuzzyMaxWindow = 30 * sampleRate
	// fuzzyCut is how long a prompt must have stopped matching before the
	// real-time matcher says it was cut short.
	fuzzyCut = sampleRate
	// fuzzySure is how much of a prompt the real-time matcher must have
	// heard, unless it heard all of it, before it reports it: prompts that
	// begin with the same words ("We did not receive...", "Thank you for
	// calling" and "Thank you for your rating") are alike for up to 0.9 s.
	fuzzySure = 1200 * time.Millisecond
	// maxRecording bounds the audio kept for the matcher: 30 minutes, 29 MB.
	maxRecording = 30 * 60 * sampleRate
)

// recogniser turns received RTP payloads into prompts heard, in real time.
// It is fed from one goroutine and is not safe for concurrent use.
type recogniser struct {
	index *frameIndex
	// newMatcher makes the matcher when it is first needed (nil: no fuzzy
	// recognition).
	newMatcher func() *prompts.Matcher
	matcher    *prompts.Matcher
	answered   time.Time
	emit       func(hearing)
	log        zerolog.Logger

	// The stream: positions are in samples from the first packet's RTP
	// timestamp, extended past wrap-around (RFC 3550 §5.1).
	started bool
	ssrc    uint32
	lastTS  uint32
	ext     int64 // position of the newest packet
	end     int64 // position after the furthest packet
	next    int64 // the frame number the exact index expects next
	// base is when position 0 was sent, as near as arrivals tell: the
	// earliest arrival less its position. A packet can be late, never
	// early, so each prompt's start is measured on the sender's RTP clock
	// rather than by when its first packet happened to arrive.
	base time.Time

	history [historyFrames]pastFrame
	runs    []*run
	heard   []prompts.Heard
	heardAt []int64 // position of each heard prompt's first sample
	// claimed is the newest frame a recognised prompt explains; frames up
	// to it count for no other prompt (prompts may end alike, and the end
	// of one with the start of the next may look like a third).
	claimed int64

	pcm     []int16 // everything received, decoded, gaps filled with silence
	sound   int     // frames of sound while nothing was recognised
	fuzzy   bool    // the matcher runs in real time
	fuzzyAt int     // len(pcm) at its last pass
	found   []fuzzyFound
}

// pastFrame is a received frame kept for extending runs back.
type pastFrame struct {
	pos   int64 // frame number; -1 when the slot is empty
	frame [frameSamples]byte
}

// run is one place in one prompt that the received frames follow.
type run struct {
	prompt      *indexedPrompt
	origin      int64 // frame number of the prompt's frame 0 in the stream
	first, last int   // the first and last frame of the prompt matched
	matched     int   // frames matched in a row
	heard       int   // index in heard once recognised, -1 before
	followed    bool  // matched the newest frame
	distinct    int64 // the newest distinctive frame matched (not silence)
}

// fuzzyFound is a prompt the real-time matcher found.
type fuzzyFound struct {
	start  int // sample of the recording where it starts
	heard  int // index in heard
	closed bool
}

func newRecogniser(index *frameIndex, newMatcher func() *prompts.Matcher, answered time.Time, emit func(hearing), log zerolog.Logger) *recogniser {
	r := &recogniser{index: index, newMatcher: newMatcher, answered: answered, emit: emit, log: log, claimed: -1}
	for i := range r.history {
		r.history[i].pos = -1
	}
	return r
}

// packet takes one received audio packet.
func (r *recogniser) packet(ssrc, timestamp uint32, payload []byte, at time.Time) {
	if len(payload) == 0 {
		return
	}
	switch {
	case !r.started:
		r.started, r.base = true, at
		r.ssrc, r.lastTS = ssrc, timestamp
	case ssrc != r.ssrc:
		// A new source (a media server switched streams) has timestamps
		// that start anywhere: it goes on from where the clock is now,
		// or where the old one stopped.
		now := int64(at.Sub(r.base)) * sampleRate / int64(time.Second)
		r.ssrc, r.lastTS, r.ext = ssrc, timestamp, max(r.end, now/frameSamples*frameSamples)
	default:
		r.ext += int64(int32(timestamp - r.lastTS))
		r.lastTS = timestamp
	}
	if r.ext < 0 {
		return // older than the first packet
	}
	if sent := at.Add(-samplesToDuration(r.ext)); sent.Before(r.base) {
		r.base = sent
	}
	r.end = max(r.end, r.ext+int64(len(payload)))
	r.record(r.ext, payload)

	if !r.fuzzy && len(payload)%frameSamples == 0 {
		pos := r.ext / frameSamples
		for i := 0; i*frameSamples < len(payload); i++ {
			if pos+int64(i) < r.next {
				continue // a duplicate or a late packet
			}
			r.frame(pos+int64(i), payload[i*frameSamples:(i+1)*frameSamples])
			r.next = pos + int64(i) + 1
		}
	}
	if !r.fuzzy && len(r.heard) == 0 && r.sound >= fuzzyAfter && r.newMatcher != nil {
		r.fuzzy, r.matcher = true, r.newMatcher()
		r.log.Info().Msg("no prompt recognised exactly in 2 s of sound: the audio is transcoded, matching waveforms instead")
	}
	if r.fuzzy && len(r.pcm)-r.fuzzyAt >= fuzzyEvery {
		r.fuzzyAt = len(r.pcm)
		r.listen()
	}
}

// record appends the decoded payload to the recording, filling a gap in the
// stream with silence.
func (r *recogniser) record(pos int64, payload []byte) {
	end := pos + int64(len(payload))
	if end <= int64(len(r.pcm)) || end > maxRecording {
		return
	}
	for int64(len(r.pcm)) < pos {
		r.pcm = append(r.pcm, 0)
	}
	var energy int64
	for i := int64(len(r.pcm)) - pos; i < int64(len(payload)); i++ {
		s := r.index.law.decode(payload[i])
		r.pcm = append(r.pcm, s)
		energy += int64(s) * int64(s)
	}
	if len(r.heard) == 0 && energy > soundLevel*int64(len(payload)) {
		r.sound += max(1, len(payload)/frameSamples)
	}
}

// frame runs the exact index on one received frame at frame number pos.
func (r *recogniser) frame(pos int64, f []byte) {
	h := &r.history[pos%historyFrames]
	h.pos = pos
	copy(h.frame[:], f)

	// Follow the runs: each either takes this frame as its next one or
	// ends here. A run that reached its prompt's end unrecognised (another
	// prompt, longer, began with the same frames) waits for this frame to
	// tell which of them played.
	places := r.index.lookup(f)
	distinct := len(places) <= maxStart
	var waiting []*run
	alive := r.runs[:0]
	for _, rn := range r.runs {
		rn.followed = false
		k := pos - rn.origin
		switch {
		case rn.last == rn.prompt.frames-1:
			waiting = append(waiting, rn)
		case k >= int64(rn.prompt.frames) || k-int64(rn.last) > maxLoss+1:
			r.stop(rn, false)
		case bytes.Equal(rn.prompt.frame(int(k)), f):
			if k == int64(rn.last)+1 {
				rn.matched++
			} else {
				rn.matched = 1 // frames were lost: count afresh
			}
			rn.last, rn.followed = int(k), true
			if distinct {
				rn.distinct = pos
			}
			if rn.heard >= 0 {
				r.claimed = pos
			}
			alive = append(alive, rn)
		default:
			r.stop(rn, false)
		}
	}
	r.runs = alive
	for _, w := range waiting {
		if !r.outlived(w) && r.unclaimed(w) >= minRun {
			r.declare(w)
			r.stop(w, true)
		}
	}

	// Start runs where a distinctive frame occurs, back over the frames
	// before it that match too.
	if distinct {
		for _, pl := range places {
			origin := pos - int64(pl.frame)
			if r.following(pl.prompt, origin) {
				continue
			}
			rn := &run{
				prompt: r.index.prompts[pl.prompt], origin: origin,
				first: int(pl.frame), last: int(pl.frame), matched: 1, heard: -1, distinct: pos,
			}
			r.extendBack(rn)
			r.runs = append(r.runs, rn)
		}
	}

	r.recognise()

	// A run that matched its prompt's last frame is complete. Unrecognised,
	// it waits for the next frame to tell whether a longer prompt that
	// begins alike goes on.
	alive = r.runs[:0]
	for _, rn := range r.runs {
		if rn.last == rn.prompt.frames-1 {
			if rn.heard >= 0 {
				r.stop(rn, true)
				continue
			}
			if r.unclaimed(rn) < minRun {
				continue
			}
		}
		alive = append(alive, rn)
	}
	r.runs = alive
}

// outlived says whether a run that matched as long as w went on past w's
// end: that one played, not w (a longer prompt beginning alike, or the same
// prompt at an earlier place when its audio repeats).
func (r *recogniser) outlived(w *run) bool {
	for _, rn := range r.runs {
		if rn.followed && rn.matched > minRun {
			return true
		}
	}
	return false
}

// following says whether a run already follows that place.
func (r *recogniser) following(prompt int32, origin int64) bool {
	p := r.index.prompts[prompt]
	for _, rn := range r.runs {
		if rn.prompt == p && rn.origin == origin {
			return true
		}
	}
	return false
}

// extendBack extends a new run over the received frames before its first.
func (r *recogniser) extendBack(rn *run) {
	for j := rn.first - 1; j >= 0; j-- {
		pos := rn.origin + int64(j)
		if pos < 0 {
			return
		}
		h := &r.history[pos%historyFrames]
		if h.pos != pos || !bytes.Equal(h.frame[:], rn.prompt.frame(j)) {
			return
		}
		rn.first = j
		rn.matched++
	}
}

// recognise declares a prompt heard when every run long enough to count
// follows that one prompt: the frames so far fit it and nothing else.
func (r *recogniser) recognise() {
	var only *indexedPrompt
	var best *run
	for _, rn := range r.runs {
		if r.unclaimed(rn) < minRun {
			continue
		}
		if only != nil && rn.prompt != only {
			return // ambiguous: frames shared by two prompts
		}
		only = rn.prompt
		if best == nil || rn.matched > best.matched {
			best = rn
		}
	}
	if best != nil {
		r.declare(best)
	}
}

// unclaimed counts the frames in a row a run matched that no recognised
// prompt explains; none unless one of them is distinctive (silence after
// the end of a prompt fits the pauses of many others).
func (r *recogniser) unclaimed(rn *run) int {
	if rn.distinct <= r.claimed {
		return 0
	}
	return int(min(int64(rn.matched), rn.origin+int64(rn.last)-r.claimed))
}

// declare reports a run's prompt heard.
func (r *recogniser) declare(rn *run) {
	r.claimed = max(r.claimed, rn.origin+int64(rn.last))
	at := rn.origin * frameSamples
	h := prompts.Heard{
		ID:     rn.prompt.id,
		Lang:   rn.prompt.lang,
		Start:  r.startOf(at),
		Length: time.Duration(rn.last+1) * frameDuration,
	}
	rn.heard = len(r.heard)
	r.heard = append(r.heard, h)
	r.heardAt = append(r.heardAt, at)
	r.emit(hearing{index: rn.heard, heard: h})
}

// stop ends a run; a recognised one is reported over.
func (r *recogniser) stop(rn *run, complete bool) {
	if rn.heard < 0 {
		return
	}
	h := &r.heard[rn.heard]
	h.Length = time.Duration(rn.last+1) * frameDuration
	h.Complete = complete
	r.emit(hearing{index: rn.heard, heard: *h, ended: true})
	rn.heard = -1
}

// finish ends the stream: prompts still playing were cut short. It returns
// the prompts heard: those of the exact index, or when it recognised
// nothing, those the matcher finds in the whole recording.
func (r *recogniser) finish() []prompts.Heard {
	for _, rn := range r.runs {
		if rn.heard < 0 && rn.last == rn.prompt.frames-1 && r.unclaimed(rn) >= minRun {
			// It played to its end and nothing came after to refute it.
			r.declare(rn)
			r.stop(rn, true)
			continue
		}
		r.stop(rn, false)
	}
	r.runs = nil
	for i := range r.found {
		r.closeFound(&r.found[i], false, 0)
	}
	if len(r.heard) > 0 && !r.fuzzy || r.newMatcher == nil || len(r.pcm) == 0 {
		// Measured against the best estimate of the clock, now final.
		for i, at := range r.heardAt {
			r.heard[i].Start = r.startOf(at)
		}
		return r.heard
	}
	if r.matcher == nil {
		r.matcher = r.newMatcher()
	}
	found := r.matcher.Match(r.pcm)
	heard := make([]prompts.Heard, 0, len(found))
	for _, h := range found {
		h.Start = r.startOf(int64(h.Start * sampleRate / time.Second))
		heard = append(heard, h)
	}
	return heard
}

// startOf is the time from the answer to the sending of position pos.
func (r *recogniser) startOf(pos int64) time.Duration {
	return r.base.Add(samplesToDuration(pos)).Sub(r.answered)
}

func samplesToDuration(n int64) time.Duration {
	return time.Duration(n) * time.Second / sampleRate
}

// listen runs the matcher over the recent audio.
func (r *recogniser) listen() {
	end := len(r.pcm)
	from := end - fuzzyWindow
	for _, f := range r.found {
		if !f.closed {
			from = min(from, f.start)
		}
	}
	from = max(from, end-fuzzyMaxWindow, 0)
	for _, h := range r.matcher.Match(r.pcm[from:end]) {
		start := from + int(h.Start*sampleRate/time.Second)
		f := r.foundAt(h, start)
		if f == nil && !h.Complete && h.Length < fuzzySure {
			continue // it may yet turn out to be another prompt that begins alike
		}
		if f == nil {
			h.Start = r.startOf(int64(start))
			h.Complete = false
			r.found = append(r.found, fuzzyFound{start: start, heard: len(r.heard)})
			f = &r.found[len(r.found)-1]
			r.heard = append(r.heard, h)
			r.heardAt = append(r.heardAt, int64(start))
			r.emit(hearing{index: f.heard, heard: h})
		}
		if f.closed {
			continue
		}
		length := int(h.Length * sampleRate / time.Second)
		switch {
		case h.Complete:
			r.closeFound(f, true, h.Length)
		case start+length < end-fuzzyCut:
			r.closeFound(f, false, h.Length)
		}
	}
	// A prompt that started too long ago to be in the window is over.
	for i := range r.found {
		if f := &r.found[i]; !f.closed && f.start < end-fuzzyMaxWindow {
			r.closeFound(f, false, 0)
		}
	}
}

// foundAt returns the prompt found before at about the same place.
func (r *recogniser) foundAt(h prompts.Heard, start int) *fuzzyFound {
	for i := range r.found {
		f := &r.found[i]
		if old := r.heard[f.heard]; old.ID == h.ID && old.Lang == h.Lang && abs(f.start-start) <= frameSamples {
			return f
		}
	}
	return nil
}

func (r *recogniser) closeFound(f *fuzzyFound, complete bool, length time.Duration) {
	if f.closed {
		return
	}
	f.closed = true
	h := &r.heard[f.heard]
	h.Complete = complete
	if length > 0 {
		h.Length = length
	}
	r.emit(hearing{index: f.heard, heard: *h, ended: true})
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
