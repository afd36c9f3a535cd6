package media

import (
	"errors"
	"slices"
	"sync"
	"time"
)

// ErrBridged is returned by Join for a stream that is already bridged.
var ErrBridged = errors.New("stream is already bridged")

// Jitter buffer sizes when BridgeOptions leave them zero: playout starts
// once 40 ms are held, which absorbs the usual jitter of a LAN or a carrier
// trunk, and the delay the buffer adds never passes 120 ms (ITU-T G.114
// puts the limit of unnoticed one-way delay at 150 ms).
const (
	DefaultJitterDelay = 2 * FrameDuration
	DefaultMaxDelay    = 6 * FrameDuration
)

// BridgeOptions shape the jitter buffers of a bridge.
type BridgeOptions struct {
	// JitterDelay is how much audio a buffer gathers before it plays out,
	// and again after it ran dry; DefaultJitterDelay when zero.
	JitterDelay time.Duration
	// MaxDelay is the most audio a buffer holds: beyond it the oldest is
	// dropped, so a sender whose clock runs fast does not build delay
	// up. DefaultMaxDelay when zero.
	MaxDelay time.Duration
}

// JitterStats count what one direction of a bridge did with its packets.
type JitterStats struct {
	Late      uint64 // packets that came after their place was played
	Dropped   uint64 // packets dropped because the buffer was full
	Underruns uint64 // ticks that found the buffer dry and sent silence
}

// Bridge joins two streams: the audio each receives is what the other
// sends, through a small jitter buffer, transcoded between µ-law and A-law
// when the two negotiated different laws; keys received on one as RFC 4733
// events are sent on the other as events. Frames still leave only from the
// pacer's tick: a bridged stream's received packets fill the other
// stream's buffer, and the other stream's tick reads one frame from it.
//
// A prompt queued on a bridged stream plays before the bridged audio (a
// whisper), and the bridged audio resumes after it. Its methods are safe for
// concurrent use.
type Bridge struct {
	a, b       *Stream
	aToB, bToA *link
	once       sync.Once
}

// link is one direction of a bridge, seen from the stream that receives.
type link struct {
	to   *Stream       // where this stream's audio and keys go
	into *jitterBuffer // to's source, filled with this stream's audio
}

// Join bridges a and b until Close. It fails with ErrBridged when either
// is bridged already.
func Join(a, b *Stream, opts BridgeOptions) (*Bridge, error) {
	if a == b {
		return nil, errors.New("a stream cannot be bridged with itself")
	}
	depth, limit := opts.JitterDelay, opts.MaxDelay
	if depth <= 0 {
		depth = DefaultJitterDelay
	}
	if limit <= 0 {
		limit = DefaultMaxDelay
	}
	limit = max(limit, depth+FrameDuration)
	br := &Bridge{
		a: a, b: b,
		aToB: &link{to: b, into: newJitterBuffer(a.cfg.Codec, b.cfg.Codec, depth, limit)},
		bToA: &link{to: a, into: newJitterBuffer(b.cfg.Codec, a.cfg.Codec, depth, limit)},
	}
	if !a.link.CompareAndSwap(nil, br.aToB) {
		return nil, ErrBridged
	}
	if !b.link.CompareAndSwap(nil, br.bToA) {
		a.link.CompareAndSwap(br.aToB, nil)
		return nil, ErrBridged
	}
	b.SetSource(br.aToB.into)
	a.SetSource(br.bToA.into)
	return br, nil
}

// Close ends the bridge: each stream goes back to sending its own prompts
// only, and silence between them. Keys already queued are still sent.
// Closing twice is harmless.
func (br *Bridge) Close() {
	br.once.Do(func() {
		br.a.link.CompareAndSwap(br.aToB, nil)
		br.b.link.CompareAndSwap(br.bToA, nil)
		br.b.unsetSource(br.aToB.into)
		br.a.unsetSource(br.bToA.into)
	})
}

// Stats reports each direction's jitter buffer: from a to b, and from b
// to a.
func (br *Bridge) Stats() (aToB, bToA JitterStats) {
	return br.aToB.into.stats(), br.bToA.into.stats()
}

// unsetSource removes src if it is still the stream's source.
func (s *Stream) unsetSource(src Source) {
	if box := s.source.Load(); box != nil && box.src == src {
		s.source.CompareAndSwap(box, nil)
	}
}

// RelayDigit passes a key that reached this stream's call by signalling
// (SIP INFO) on to the stream it is bridged with, as RFC 4733 events. It
// does nothing for a stream that is not bridged, and fails as SendDigit
// does on the other stream.
func (s *Stream) RelayDigit(key rune) error {
	l := s.link.Load()
	if l == nil {
		return nil
	}
	return l.to.SendDigit(key)
}

// Reordering and restarts, in sequence numbers (RFC 3550 appendix A.1):
// a packet this far behind the playout point is from a sender that
// restarted rather than a late one, and so is one this far ahead.
const (
	maxMisorder = 100
	maxDropout  = 3000
)

// jitterBuffer holds one direction's audio between the receiver that fills
// it and the pacer that plays it out: packets in sequence order, already in
// the encoding of the stream that plays them. Lost packets are not waited
// for; the delay gathered before playout is what lets reordered ones take
// their place.
type jitterBuffer struct {
	mu      sync.Mutex
	xlate   *[256]byte // from the sender's law to the player's, nil when the same
	silence byte
	depth   int // bytes gathered before playout starts
	limit   int // most bytes held

	packets []jbPacket // in sequence order
	held    int        // bytes not yet played
	playing bool
	ssrc    uint32
	next    uint16 // the sequence number after the last one played
	primed  bool   // next is set
	free    [][]byte

	late, dropped, underruns uint64
}

type jbPacket struct {
	seq  uint16
	data []byte
	off  int // bytes of data played
}

func newJitterBuffer(from, to Codec, depth, limit time.Duration) *jitterBuffer {
	jb := &jitterBuffer{
		silence: to.Silence(),
		depth:   int(depth / FrameDuration * FrameSamples),
		limit:   int(limit / FrameDuration * FrameSamples),
	}
	if from.decode != to.decode {
		// G.711's two laws map byte to byte: a table transcodes them.
		jb.xlate = new([256]byte)
		for i := range jb.xlate {
			jb.xlate[i] = to.encode(from.decode[i])
		}
	}
	return jb
}

// push adds one received packet's payload; the receiver's buffers are
// reused, so it is copied.
func (jb *jitterBuffer) push(ssrc uint32, seq uint16, payload []byte) {
	if len(payload) == 0 {
		return
	}
	jb.mu.Lock()
	defer jb.mu.Unlock()
	if jb.primed {
		d := int16(seq - jb.next)
		switch {
		case ssrc != jb.ssrc, d < -maxMisorder, int(d) > maxDropout:
			jb.resetLocked()
		case d < 0:
			jb.late++
			return
		}
	}
	jb.ssrc = ssrc
	i := len(jb.packets)
	for i > 0 && int16(seq-jb.packets[i-1].seq) < 0 {
		i--
	}
	if i > 0 && jb.packets[i-1].seq == seq {
		return // a duplicate
	}
	data := jb.allocLocked(len(payload))
	if jb.xlate != nil {
		for j, b := range payload {
			data[j] = jb.xlate[b]
		}
	} else {
		copy(data, payload)
	}
	jb.packets = slices.Insert(jb.packets, i, jbPacket{seq: seq, data: data})
	jb.held += len(data)
	for jb.held > jb.limit && len(jb.packets) > 1 {
		jb.dropped++
		jb.popLocked()
	}
}

// ReadFrame plays out one frame: silence while the buffer gathers its
// delay, and silence for what a dry buffer lacks, so that the stream keeps
// sending and its timestamps keep running.
func (jb *jitterBuffer) ReadFrame(frame []byte) bool {
	jb.mu.Lock()
	defer jb.mu.Unlock()
	n := 0
	if !jb.playing && jb.held >= jb.depth {
		jb.playing = true
	}
	if jb.playing {
		for n < len(frame) && len(jb.packets) > 0 {
			p := &jb.packets[0]
			c := copy(frame[n:], p.data[p.off:])
			n += c
			p.off += c
			jb.held -= c
			if p.off == len(p.data) {
				jb.popLocked()
			}
		}
		if n < len(frame) {
			// Dry: gather the delay again before playing on.
			jb.underruns++
			jb.playing = false
		}
	}
	for i := n; i < len(frame); i++ {
		frame[i] = jb.silence
	}
	return true
}

// popLocked takes the oldest packet off, played or dropped.
func (jb *jitterBuffer) popLocked() {
	p := jb.packets[0]
	jb.held -= len(p.data) - p.off
	jb.next, jb.primed = p.seq+1, true
	jb.free = append(jb.free, p.data[:0])
	jb.packets = slices.Delete(jb.packets, 0, 1)
}

func (jb *jitterBuffer) resetLocked() {
	for len(jb.packets) > 0 {
		jb.popLocked()
	}
	jb.primed, jb.playing = false, false
}

func (jb *jitterBuffer) allocLocked(n int) []byte {
	for len(jb.free) > 0 {
		b := jb.free[len(jb.free)-1]
		jb.free = jb.free[:len(jb.free)-1]
		if cap(b) >= n {
			return b[:n]
		}
	}
	return make([]byte, n)
}

func (jb *jitterBuffer) stats() JitterStats {
	jb.mu.Lock()
	defer jb.mu.Unlock()
	return JitterStats{Late: jb.late, Dropped: jb.dropped, Underruns: jb.underruns}
}
