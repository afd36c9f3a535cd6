package media

import (
	"slices"
	"sync"
	"time"
)

// Clip is audio ready to send: encoded once for every codec, padded with
// silence to whole frames, so sending a frame is a slice and a copy.
type Clip struct {
	Ref  any // what the clip is (a prompt), handed back in Played
	pcmu []byte
	pcma []byte
}

// NewClip encodes 8 kHz linear audio for every supported codec.
func NewClip(pcm []int16, ref any) *Clip {
	n := (len(pcm) + FrameSamples - 1) / FrameSamples * FrameSamples
	padded := make([]int16, n)
	copy(padded, pcm)
	return &Clip{
		Ref:  ref,
		pcmu: PCMU.Encode(make([]byte, 0, n), padded),
		pcma: PCMA.Encode(make([]byte, 0, n), padded),
	}
}

// Duration is how long the clip plays.
func (c *Clip) Duration() time.Duration {
	return time.Duration(len(c.pcmu)/FrameSamples) * FrameDuration
}

// payload is the clip in codec's encoding. The encoding is told by the
// codec's decode table, not its payload type: a peer may give either law a
// dynamic payload type (RFC 3551 §3), or even the other's static one.
func (c *Clip) payload(codec Codec) []byte {
	if codec.decode == PCMA.decode {
		return c.pcma
	}
	return c.pcmu
}

// Played is a clip that started playing, and when.
type Played struct {
	Ref any
	At  time.Time
}

// Playback is a queue of clips playing on a stream. Its methods are safe for
// concurrent use.
type Playback struct {
	stream *Stream
	clips  []*Clip
	done   chan struct{}

	// guarded by stream.mu
	stopped bool
	played  []Played
	once    sync.Once
}

// Done is closed when the last clip has been sent, the playback was stopped,
// or the stream closed.
func (p *Playback) Done() <-chan struct{} { return p.done }

// Stop ends the playback at the next frame boundary.
func (p *Playback) Stop() {
	s := p.stream
	s.mu.Lock()
	defer s.mu.Unlock()
	p.stopped = true
	// The head of the queue is playing and ends on the next tick; one still
	// waiting behind it ends now, not when the ones ahead of it end.
	for i := 1; i < len(s.queue); i++ {
		if s.queue[i] == p {
			s.queue = slices.Delete(s.queue, i, i+1)
			p.finish()
			return
		}
	}
}

// Played lists the clips that started playing.
func (p *Playback) Played() []Played {
	p.stream.mu.Lock()
	defer p.stream.mu.Unlock()
	return append([]Played(nil), p.played...)
}

func (p *Playback) finish() { p.once.Do(func() { close(p.done) }) }
