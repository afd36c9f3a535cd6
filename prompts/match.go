package prompts

import (
	"cmp"
	"math"
	"slices"
	"time"
)

// Heard is one prompt found in received audio.
type Heard struct {
	ID       ID
	Lang     Lang
	Start    time.Duration // offset of the prompt's first sample in the received stream
	Length   time.Duration // how much of it was heard
	Complete bool          // heard to the end of its sound, not cut short
}

// Matcher finds catalog prompts in audio received over a telephone channel,
// so that a test caller can say what it heard. It is read-only after
// NewMatcher and safe for concurrent use.
//
// It works in three stages. A 5 ms amplitude envelope of the stream is
// correlated with the envelope of each prompt's first 355 ms; that is cheap
// and marks where a prompt may start. Band energies of the same frames weed
// out most of those places. Each place left is then checked on the
// waveform itself: G.711 keeps the samples of a prompt to within its
// quantisation noise (about 38 dB SNR, ITU-T G.711), so the prompt that was
// played correlates with the received samples at 0.99 and any other audio
// (another prompt, a digit, music, a DTMF tone, noise) does not. The check
// then follows the prompt in 20 ms blocks for as long as the stream keeps
// matching, which tells a complete prompt from one cut short by barge-in.
// Prompts are taken greedily from left to right.
type Matcher struct {
	templates []*template
	mean      [nBands]float64 // mean spectral shape of the prompts
}

// Matching parameters.
const (
	hop    = 40  // samples between analysis frames: 5 ms
	window = 80  // samples per analysis frame: 10 ms, two hops
	prefix = 70  // frames of a prompt's start used to find it: 355 ms
	block  = 160 // samples per block of the waveform check: 20 ms
	// alignLen is how much of a prompt's start the waveform check aligns on;
	// it stays under 400 ms so that a prompt cut at 400 ms is still found.
	alignLen = SampleRate * 350 / 1000
	// probeLen is the loud stretch of the start that picks the alignment.
	probeLen = 320
	// lagSearch is how far, in samples, the waveform check looks around the
	// starts that the envelope and the band features estimate.
	lagSearch = 3 * hop
	// groupFrames is how far apart, in frames, the envelope may place the
	// starts of prompts that begin alike.
	groupFrames = 8
	// minHeard is the least of a prompt, cut short, that is reported.
	minHeard = SampleRate * 350 / 1000

	envThreshold   = 0.75 // envelope correlation that makes a candidate
	featThreshold  = 0.8  // band feature correlation that keeps it
	alignThreshold = 0.8  // waveform correlation that confirms it
	maxResidualDB  = 5.0  // a loud block matches when the rest is this far below it
	loudDB         = 20.0 // blocks this far below the prompt's speech level are quiet
	quietDB        = 15.0 // stream energy allowed in a quiet block, below speech level
	floorDB        = 35.0 // band energies this far below the loudest count as silence
)

// bands split the audio band for the band features (a read-only table): about two thirds of
// an octave each, wider up high where speech carries less detail. They
// start at 100 Hz, below the analogue telephone band (300-3400 Hz, ITU-T
// G.712), because a digital G.711 path keeps it and hold music lives there.
var bands = [...][2]float64{{100, 250}, {250, 400}, {400, 630}, {630, 1000}, {1000, 1600}, {1600, 2500}, {2500, 3600}}

const nBands = len(bands)

// template is one prompt prepared for matching.
type template struct {
	id   ID
	lang Lang
	pcm  []float64

	env []float64 // zero-mean, unit-norm envelope of the start
	// feat is the spectral shape of the start's sounding frames (listed in
	// featFrames), as shape makes it, unit-norm.
	feat       []float64
	featFrames []int
	mean       *[nBands]float64 // the Matcher's mean shape

	alignE   float64   // energy of pcm[:alignLen]
	probeOff int       // where the probe starts in pcm
	probeE   float64   // energy of the probe
	blockE   []float64 // energy of each block
	loud     []bool    // blocks of speech (or music), not silence
	lastLoud int       // index of the last loud block
	ref      float64   // mean energy of a loud block
}

// NewMatcher prepares the prompts of c in langs (all of the catalog's
// languages when none are given). Audio that is the same in several
// languages, such as hold music, is reported in the first of them.
func NewMatcher(c *Catalog, langs ...Lang) *Matcher {
	if len(langs) == 0 {
		langs = c.Langs()
	}
	m := &Matcher{}
	seen := make(map[string]bool)
	for _, lang := range langs {
		for _, id := range c.ids {
			p, ok := c.prompts[promptKey{id, lang}]
			if !ok || seen[p.Version] {
				continue
			}
			seen[p.Version] = true
			if t := newTemplate(p); t != nil {
				m.templates = append(m.templates, t)
			}
		}
	}
	var n int
	for _, t := range m.templates {
		for i, v := range t.feat {
			m.mean[i%nBands] += v
		}
		n += len(t.featFrames)
	}
	kept := m.templates[:0]
	for i := range m.mean {
		m.mean[i] /= float64(max(1, n))
	}
	for _, t := range m.templates {
		for i := range t.feat {
			t.feat[i] -= m.mean[i%nBands]
		}
		if t.feat = normalise(t.feat); t.feat != nil {
			t.mean = &m.mean
			kept = append(kept, t)
		}
	}
	m.templates = kept
	return m
}

func newTemplate(p *Prompt) *template {
	t := &template{id: p.ID, lang: p.Lang, pcm: toFloat(p.PCM)}
	a := analyse(t.pcm)
	n := min(a.frames, prefix)
	if n < prefix/4 {
		return nil // too short to tell from anything else
	}
	t.env = normalise(slices.Clone(a.env[:n]))
	// The features proper wait for the catalog's mean shape (NewMatcher).
	t.featFrames, t.feat = shape(a.bandL[:n*nBands], a.frameMax[:n], nil, nil, &[nBands]float64{})
	if t.env == nil || len(t.featFrames) == 0 {
		return nil
	}

	head := t.pcm[:min(len(t.pcm), alignLen)]
	t.alignE = energy(head)
	var best float64
	for off := 0; off+probeLen <= len(head); off += hop {
		if e := energy(head[off : off+probeLen]); e > best {
			best, t.probeOff, t.probeE = e, off, e
		}
	}
	if t.probeE == 0 {
		return nil
	}

	nb := (len(t.pcm) + block - 1) / block
	t.blockE = make([]float64, nb)
	var peak float64
	for b := range nb {
		t.blockE[b] = energy(t.pcm[b*block : min(len(t.pcm), (b+1)*block)])
		peak = max(peak, t.blockE[b])
	}
	// The speech level is the mean of blocks within 30 dB of the loudest,
	// so that the silence at the edges and in pauses does not lower it.
	var cnt int
	for _, e := range t.blockE {
		if e >= peak*1e-3 {
			t.ref += e
			cnt++
		}
	}
	t.ref /= float64(cnt)
	t.loud = make([]bool, nb)
	for b, e := range t.blockE {
		t.loud[b] = e >= t.ref*dbToPower(-loudDB)
		if t.loud[b] {
			t.lastLoud = b
		}
	}
	return t
}

// normalise makes v zero-mean and unit-norm in place; nil if v is constant.
func normalise(v []float64) []float64 {
	var mean, norm float64
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	for i := range v {
		v[i] -= mean
		norm += v[i] * v[i]
	}
	if norm == 0 {
		return nil
	}
	norm = math.Sqrt(norm)
	for i := range v {
		v[i] /= norm
	}
	return v
}

// analysis holds the short-time features of a signal, one frame per hop.
type analysis struct {
	frames   int
	env      []float64 // RMS amplitude per frame
	bandL    []float64 // log10 of the energy per frame and band, frame-major
	frameMax []float64 // the largest of bandL in each frame
}

// analyse computes the features of x. Energies are summed per hop and
// frames are two hops, so every sample is filtered and squared once.
func analyse(x []float64) analysis {
	hops := len(x) / hop
	a := analysis{frames: max(0, hops-window/hop+1)}
	if a.frames == 0 {
		return a
	}
	hopE := make([]float64, hops)
	for h := range hops {
		hopE[h] = energy(x[h*hop : (h+1)*hop])
	}
	a.env = make([]float64, a.frames)
	for k := range a.env {
		a.env[k] = math.Sqrt((hopE[k] + hopE[k+1]) / window)
	}
	a.bandL = make([]float64, a.frames*nBands)
	for b, edges := range bands {
		f := newBandpass(edges[0], edges[1])
		for h := range hops {
			var e float64
			for _, v := range x[h*hop : (h+1)*hop] {
				y := f.step(v)
				e += y * y
			}
			hopE[h] = e
		}
		for k := range a.frames {
			// 1e-3 keeps digital silence finite; it is far below any floor.
			a.bandL[k*nBands+b] = math.Log10(hopE[k] + hopE[k+1] + 1e-3)
		}
	}
	a.frameMax = make([]float64, a.frames)
	for k := range a.frameMax {
		a.frameMax[k] = slices.Max(a.bandL[k*nBands : (k+1)*nBands])
	}
	return a
}

// shape turns log band energies l (frame-major; frameMax is the largest of
// each frame) into spectral shapes in out (allocated when nil): per frame,
// the log energies less their mean, so that loudness, which the envelope
// already compares, does not count again, and less mean, the shape that all
// the catalog's prompts have in common (more energy low than high), which
// would make any two utterances look alike. Energies are floored at floorDB
// below the largest, which keeps line noise and G.711 quantisation noise in
// near-silent bands from counting. With frames nil, the frames that sound
// (some band above the floor) are chosen and returned; otherwise the shapes
// of the given frames are computed.
func shape(l, frameMax []float64, frames []int, out []float64, mean *[nBands]float64) ([]int, []float64) {
	floor := slices.Max(frameMax) - floorDB/10
	if frames == nil {
		for k, v := range frameMax {
			if v > floor {
				frames = append(frames, k)
			}
		}
	}
	if out == nil {
		out = make([]float64, len(frames)*nBands)
	}
	for i, k := range frames {
		row := out[i*nBands : (i+1)*nBands]
		var level float64
		for b, v := range l[k*nBands : (k+1)*nBands] {
			row[b] = max(v, floor)
			level += row[b]
		}
		level /= float64(nBands)
		for b := range row {
			row[b] -= level + mean[b]
		}
	}
	return frames, out
}

// biquad is a second-order IIR section, direct form I.
type biquad struct {
	b0, b1, b2, a1, a2 float64
	x1, x2, y1, y2     float64
}

// newBandpass is the band-pass filter of the Audio EQ Cookbook (R. Bristow-
// Johnson), 0 dB peak gain, centred on the geometric mean of lo and hi.
func newBandpass(lo, hi float64) *biquad {
	f0 := math.Sqrt(lo * hi)
	w0 := 2 * math.Pi * f0 / SampleRate
	alpha := math.Sin(w0) / (2 * f0 / (hi - lo))
	a0 := 1 + alpha
	return &biquad{
		b0: alpha / a0, b1: 0, b2: -alpha / a0,
		a1: -2 * math.Cos(w0) / a0, a2: (1 - alpha) / a0,
	}
}

func (f *biquad) step(x float64) float64 {
	y := f.b0*x + f.b1*f.x1 + f.b2*f.x2 - f.a1*f.y1 - f.a2*f.y2
	f.x2, f.x1 = f.x1, x
	f.y2, f.y1 = f.y1, y
	return y
}

// candidate is a place where a prompt may start, from the envelope.
type candidate struct {
	t     *template
	frame int
	score float64
}

// received is a stream prepared for matching.
type received struct {
	x     []float64
	a     analysis
	xsum2 []float64 // running sum of x², for the energy of any stretch
}

func (r *received) energy(lo, n int) float64 {
	return max(0, r.xsum2[lo+n]-r.xsum2[lo])
}

// Match returns the prompts heard in pcm, 8 kHz audio as received (after
// G.711 encoding and decoding), in the order they were played.
func (m *Matcher) Match(pcm []int16) []Heard {
	r := &received{x: toFloat(pcm)}
	r.a = analyse(r.x)
	if r.a.frames == 0 {
		return nil
	}
	r.xsum2 = make([]float64, len(r.x)+1)
	for i, v := range r.x {
		r.xsum2[i+1] = r.xsum2[i] + v*v
	}

	cands := m.candidates(r)
	var heard []Heard
	pos := 0 // stream samples before pos are accounted for
	for i := 0; i < len(cands); {
		if cands[i].frame*hop+lagSearch < pos-block {
			i++
			continue
		}
		// Prompts that begin alike (goodbye and rating_thanks share their
		// first words) are candidates at about the same place: check them
		// all, up to a little past the start found, and keep the one that
		// matches furthest.
		j := i
		var best *verdict
		for ; j < len(cands); j++ {
			limit := cands[i].frame + groupFrames
			if best != nil {
				limit = max(limit, best.start/hop+groupFrames)
			}
			if cands[j].frame > limit {
				break
			}
			v := cands[j].t.verify(r, cands[j].frame, pos)
			if v != nil && (best == nil || v.better(best)) {
				best = v
			}
		}
		i = j
		if best == nil {
			continue
		}
		heard = append(heard, Heard{
			ID:       best.t.id,
			Lang:     best.t.lang,
			Start:    samplesToDuration(best.start),
			Length:   samplesToDuration(best.length),
			Complete: best.complete,
		})
		pos = best.start + best.consumed
	}
	return heard
}

// candidates lists, for every template, the frames where its start
// envelope correlates with the stream above envThreshold (local maxima
// only), ordered by frame.
func (m *Matcher) candidates(r *received) []candidate {
	env := r.a.env
	sum := make([]float64, len(env)+1)
	sum2 := make([]float64, len(env)+1)
	for i, v := range env {
		sum[i+1] = sum[i] + v
		sum2[i+1] = sum2[i] + v*v
	}
	var out []candidate
	scores := make([]float64, len(env))
	for _, t := range m.templates {
		n := len(t.env)
		if len(env) < n {
			continue
		}
		scores := scores[:len(env)-n+1]
		fn := float64(n)
		for k := range scores {
			scores[k] = 0
			s, s2 := sum[k+n]-sum[k], sum2[k+n]-sum2[k]
			v := s2 - s*s/fn
			if v <= 1e-9*fn {
				continue // silence: nothing to correlate
			}
			var dot float64
			w := env[k : k+n]
			for i, p := range t.env {
				dot += p * w[i]
			}
			scores[k] = dot / math.Sqrt(v)
		}
		for k, s := range scores {
			if s >= envThreshold && isPeak(scores, k, 2) {
				out = append(out, candidate{t: t, frame: k, score: s})
			}
		}
	}
	slices.SortFunc(out, func(a, b candidate) int {
		if a.frame != b.frame {
			return a.frame - b.frame
		}
		return cmp.Compare(b.score, a.score)
	})
	return out
}

// isPeak says whether s[k] is the largest within d of k (the first of equals).
func isPeak(s []float64, k, d int) bool {
	for q := max(0, k-d); q <= min(len(s)-1, k+d); q++ {
		if s[q] > s[k] || (s[q] == s[k] && q < k) {
			return false
		}
	}
	return true
}

// featScore is the best correlation of t's start band features with the
// stream within two frames of frame, and the frame where it is found.
func (t *template) featScore(r *received, frame int) (float64, int) {
	n := t.featFrames[len(t.featFrames)-1] + 1
	best, at := -1.0, frame
	w := make([]float64, len(t.feat))
	for k := max(0, frame-2); k <= min(r.a.frames-n, frame+2); k++ {
		_, w = shape(r.a.bandL[k*nBands:(k+n)*nBands], r.a.frameMax[k:k+n], t.featFrames, w, t.mean)
		var s2, dot float64
		for i, v := range w {
			s2 += v * v
			dot += t.feat[i] * v
		}
		if s2 == 0 {
			continue
		}
		if c := dot / math.Sqrt(s2); c > best {
			best, at = c, k
		}
	}
	return best, at
}

// verdict is a confirmed prompt.
type verdict struct {
	t        *template
	start    int // stream sample of the prompt's first sample
	length   int // samples heard
	consumed int // samples of the stream accounted for: up to the last sound
	matched  int // loud blocks that matched
	complete bool
	score    float64 // waveform correlation of the start
}

// better orders verdicts at one place: the one heard furthest wins.
func (v *verdict) better(o *verdict) bool {
	if v.complete != o.complete {
		return v.complete
	}
	if v.matched != o.matched {
		return v.matched > o.matched
	}
	return v.score > o.score
}

// verify checks whether t was played starting near frame and not before
// notBefore, and how much of it: first on band features, then on the
// waveform. It returns nil when t was not played there.
func (t *template) verify(r *received, frame, notBefore int) *verdict {
	fs, at := t.featScore(r, frame)
	if fs < featThreshold {
		return nil
	}
	x := r.x
	n := min(len(t.pcm), alignLen)
	lo := max(0, notBefore-block, min(frame, at)*hop-lagSearch)
	hi := min(len(x)-n, max(frame, at)*hop+lagSearch)
	if lo > hi {
		return nil
	}
	// The probe, the loudest 40 ms of the start, finds the few lags worth
	// a full check; voiced speech and music also correlate a pitch period
	// or a few off, so several are kept.
	probe := t.pcm[t.probeOff : t.probeOff+probeLen]
	lags := make([]float64, hi-lo+1)
	for s := lo; s <= hi; s++ {
		es := r.energy(s+t.probeOff, probeLen)
		if es == 0 {
			continue
		}
		w := x[s+t.probeOff : s+t.probeOff+probeLen]
		var dot float64
		for i, v := range probe {
			dot += v * w[i]
		}
		lags[s-lo] = dot / math.Sqrt(t.probeE*es)
	}
	bestLag, bestScore, bestDot := -1, 0.0, 0.0
	for _, k := range topPeaks(lags, 8) {
		s := lo + k
		es := r.energy(s, n)
		if es == 0 {
			continue
		}
		w := x[s : s+n]
		var dot float64
		for i, v := range t.pcm[:n] {
			dot += v * w[i]
		}
		if c := dot / math.Sqrt(t.alignE*es); c > bestScore {
			bestLag, bestScore, bestDot = s, c, dot
		}
	}
	if bestLag < 0 || bestScore < alignThreshold {
		return nil
	}
	v := &verdict{t: t, start: bestLag, score: bestScore}
	v.follow(x, bestDot/t.alignE)
	if !v.complete && v.length < minHeard {
		return nil
	}
	return v
}

// topPeaks returns the indexes of the n largest local maxima of s.
func topPeaks(s []float64, n int) []int {
	var peaks []int
	for k := range s {
		if s[k] > 0 && isPeak(s, k, 1) {
			peaks = append(peaks, k)
		}
	}
	slices.SortFunc(peaks, func(a, b int) int { return cmp.Compare(s[b], s[a]) })
	return peaks[:min(n, len(peaks))]
}

// follow walks the prompt in blocks from v.start while the stream matches:
// a loud block must be the prompt's block at the gain of the start, with
// what is left over at least maxResidualDB below it; a quiet block must stay
// quiet. One failing block is forgiven when the two after it match: a
// single block of another word can match by chance (synthetic fricatives
// of two words look much alike), two in a row after a failure do not.
// The prompt is complete when every loud block was passed.
func (v *verdict) follow(x []float64, gain float64) {
	t := v.t
	loudEnd := 0
	for b := 0; b < len(t.blockE); b++ {
		ok, inStream := v.blockMatches(x, gain, b)
		if !inStream {
			break
		}
		if !ok {
			if !v.forgiven(x, gain, b) {
				break
			}
			continue
		}
		if t.loud[b] {
			v.matched++
			loudEnd = b + 1
		}
	}
	// The next prompt may follow right after the last sound; the silence
	// after it matched the next prompt's own lead-in as well.
	v.consumed = loudEnd * block
	v.complete = loudEnd > t.lastLoud
	if v.complete {
		v.length = min(len(t.pcm), len(x)-v.start)
	} else {
		// Cut short: what was heard ends with the last sound that matched;
		// silence after it could as well be the line after the cut.
		v.length = loudEnd * block
	}
}

// forgiven says whether a failure at block b is followed by two matching
// blocks, or by the end of the prompt.
func (v *verdict) forgiven(x []float64, gain float64, b int) bool {
	for n := b + 1; n <= b+2 && n < len(v.t.blockE); n++ {
		if ok, _ := v.blockMatches(x, gain, n); !ok {
			return false
		}
	}
	return true
}

// blockMatches checks block b of the prompt against the stream; inStream is
// false when the block is not (wholly) in the stream or not in the prompt.
func (v *verdict) blockMatches(x []float64, gain float64, b int) (ok, inStream bool) {
	t := v.t
	if b >= len(t.blockE) {
		return false, false
	}
	lo := v.start + b*block
	hi := min(lo+block, v.start+len(t.pcm))
	if hi > len(x) {
		return false, false
	}
	ts, xs := t.pcm[b*block:b*block+(hi-lo)], x[lo:hi]
	et, es, g2 := t.blockE[b], energy(xs), gain*gain
	if !t.loud[b] {
		return es <= g2*(et+t.ref*dbToPower(-quietDB)), true
	}
	var dot float64
	for i, s := range ts {
		dot += s * xs[i]
	}
	residual := es - 2*gain*dot + g2*et
	return residual <= g2*et*dbToPower(-maxResidualDB), true
}

func energy(x []float64) float64 {
	var e float64
	for _, v := range x {
		e += v * v
	}
	return e
}

func toFloat(pcm []int16) []float64 {
	x := make([]float64, len(pcm))
	for i, s := range pcm {
		x[i] = float64(s)
	}
	return x
}

func dbToPower(db float64) float64 {
	return math.Pow(10, db/10)
}
