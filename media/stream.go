package media

import (
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"

	"github.com/hotline12345/hotline/media/dtmf"
)

// DTMF methods reported by a stream.
const (
	MethodRFC4733 = "rfc4733"
	MethodInband  = "inband"
)

// StreamConfig describes one call's negotiated RTP session.
type StreamConfig struct {
	Conn   *net.UDPConn   // bound to our RTP port; the stream owns and closes it
	Remote netip.AddrPort // the peer's RTP address from its SDP
	Codec  Codec
	// DTMFPayloadType is the peer's telephone-event payload type, or -1
	// when it offered none.
	DTMFPayloadType int
	// MediaTimeout ends the stream's wait for the peer: OnTimeout is called
	// once when no RTP arrived for this long (not counting while on hold).
	MediaTimeout time.Duration
	// OnDigit is called from the receive goroutine for each key press, by
	// method. It must not block.
	OnDigit func(key rune, method string)
	// OnTimeout is called once, from the pacer, when media stopped.
	OnTimeout func()
}

// StreamStats are a stream's receive counters.
type StreamStats struct {
	Received  uint64 // RTP packets accepted from the peer
	Foreign   uint64 // packets dropped because they came from another address
	Malformed uint64 // packets from the peer that were not RTP
	Sent      uint64 // frames sent
}

// Stream is one call's RTP session: a symmetric socket (RFC 4961: we send
// from the port we receive on), frames sent by the shared Pacer, and a
// receive goroutine. Its methods are safe for concurrent use.
type Stream struct {
	cfg   StreamConfig
	pacer *Pacer

	remote   atomic.Pointer[netip.AddrPort]
	sending  atomic.Bool  // false while the peer holds the call (a=sendonly/inactive from it)
	waiting  atomic.Bool  // media timeout armed: the peer is expected to send
	lastRx   atomic.Int64 // unix nanoseconds of the last accepted packet
	timedOut atomic.Bool

	received, foreign, malformed, sent atomic.Uint64

	mu      sync.Mutex // guards the play queue
	closed  bool
	queue   []*Playback
	clipIdx int
	off     int

	// Touched only by the pacer goroutine that owns this stream's shard.
	hdr    rtp.Header
	buf    [12 + FrameSamples]byte
	idle   bool  // nothing was sent on the previous tick
	lastTx int64 // unix nanoseconds of the previous send

	closeOnce sync.Once
	readDone  chan struct{}
}

// Start registers the stream with the pacer and starts receiving.
func (p *Pacer) Start(cfg StreamConfig) *Stream {
	s := &Stream{cfg: cfg, pacer: p, readDone: make(chan struct{}), idle: true}
	remote := cfg.Remote
	s.remote.Store(&remote)
	s.sending.Store(true)
	s.waiting.Store(true)
	s.lastRx.Store(time.Now().UnixNano())
	s.hdr = rtp.Header{
		Version:        2,
		PayloadType:    cfg.Codec.PayloadType,
		SequenceNumber: uint16(rand.Uint32()),
		Timestamp:      rand.Uint32(),
		SSRC:           rand.Uint32(),
	}
	go s.readLoop()
	p.add(s)
	return s
}

// LocalAddr is the address the stream receives on.
func (s *Stream) LocalAddr() netip.AddrPort {
	return s.cfg.Conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Codec is the stream's codec.
func (s *Stream) Codec() Codec { return s.cfg.Codec }

// SetRemote changes where the peer sends from and receives on (a re-INVITE
// moved its media).
func (s *Stream) SetRemote(addr netip.AddrPort) { s.remote.Store(&addr) }

// SetDirection follows the peer's hold state: send says whether the peer
// wants our audio, recv whether it sends its own. While the peer does not
// send, the media timeout is suspended.
func (s *Stream) SetDirection(send, recv bool) {
	s.sending.Store(send)
	if recv && !s.waiting.Load() {
		s.lastRx.Store(time.Now().UnixNano())
	}
	s.waiting.Store(recv)
}

// Stats returns the stream's counters.
func (s *Stream) Stats() StreamStats {
	return StreamStats{Received: s.received.Load(), Foreign: s.foreign.Load(), Malformed: s.malformed.Load(), Sent: s.sent.Load()}
}

// Play queues clips after whatever is already queued and returns the
// playback. On a closed stream the playback is done at once.
func (s *Stream) Play(clips ...*Clip) *Playback {
	pb := &Playback{stream: s, clips: clips, done: make(chan struct{})}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		pb.finish()
		return pb
	}
	s.queue = append(s.queue, pb)
	return pb
}

// Close stops sending and receiving, ends queued playbacks and closes the
// socket. It waits for the receive goroutine to exit.
func (s *Stream) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.pacer.remove(s)
		err = s.cfg.Conn.Close()
		<-s.readDone
		s.mu.Lock()
		q := s.queue
		s.queue = nil
		s.closed = true
		s.mu.Unlock()
		for _, pb := range q {
			pb.finish()
		}
	})
	return err
}

// nextFrameLocked returns the next frame of the play queue, or nil when
// there is nothing to play.
func (s *Stream) nextFrameLocked(now time.Time) []byte {
	for len(s.queue) > 0 {
		pb := s.queue[0]
		if pb.stopped || s.clipIdx >= len(pb.clips) {
			s.queue = s.queue[1:]
			s.clipIdx, s.off = 0, 0
			pb.finish()
			continue
		}
		clip := pb.clips[s.clipIdx]
		data := clip.payload(s.cfg.Codec)
		if s.off == 0 {
			pb.played = append(pb.played, Played{Ref: clip.Ref, At: now})
		}
		if len(data) == 0 {
			s.clipIdx++
			continue
		}
		frame := data[s.off : s.off+FrameSamples]
		s.off += FrameSamples
		if s.off >= len(data) {
			s.clipIdx++
			s.off = 0
		}
		return frame
	}
	return nil
}

// tick runs on the pacer: it sends the next frame, if any, and advances the
// RTP clock whether or not a frame was sent, so that timestamps follow real
// time across silences (RFC 3550 §5.1). The first frame after a silence
// carries the marker bit.
func (s *Stream) tick(now time.Time, deadline int64, st *PacerStats) {
	s.mu.Lock()
	frame := s.nextFrameLocked(now)
	s.mu.Unlock()
	if frame != nil && s.sending.Load() {
		s.send(frame, deadline, st)
	} else {
		s.idle = true
	}
	s.hdr.Timestamp += FrameSamples
}

func (s *Stream) send(frame []byte, deadline int64, st *PacerStats) {
	s.hdr.Marker = s.idle
	s.idle = false
	s.hdr.SequenceNumber++
	n, err := s.hdr.MarshalTo(s.buf[:])
	if err != nil {
		return
	}
	n += copy(s.buf[n:], frame)
	if _, err := s.cfg.Conn.WriteToUDPAddrPort(s.buf[:n], *s.remote.Load()); err != nil {
		return
	}
	s.sent.Add(1)
	ns := time.Now().UnixNano()
	st.observeLateness(time.Duration(ns - deadline))
	if s.lastTx != 0 && !s.hdr.Marker {
		st.observeInterval(time.Duration(ns - s.lastTx))
	}
	s.lastTx = ns
}

// checkTimeout fires OnTimeout once when the peer has been silent too long.
func (s *Stream) checkTimeout(now int64) {
	if s.cfg.MediaTimeout <= 0 || !s.waiting.Load() || s.timedOut.Load() {
		return
	}
	if time.Duration(now-s.lastRx.Load()) < s.cfg.MediaTimeout {
		return
	}
	if s.timedOut.CompareAndSwap(false, true) && s.cfg.OnTimeout != nil {
		s.cfg.OnTimeout()
	}
}

func (s *Stream) readLoop() {
	defer close(s.readDone)
	buf := make([]byte, 1500)
	pcm := make([]int16, 1500)
	var pkt rtp.Packet
	var tracker dtmf.EventTracker
	detector := dtmf.NewDetector()
	inband := true
	emitInband := func(key rune) { s.emit(key, MethodInband) }
	for {
		n, from, err := s.cfg.Conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		// Only the negotiated peer may feed this call (no RTP hijack).
		remote := s.remote.Load()
		if from.Addr().Unmap() != remote.Addr().Unmap() || from.Port() != remote.Port() {
			s.foreign.Add(1)
			continue
		}
		if err := pkt.Unmarshal(buf[:n]); err != nil || pkt.Version != 2 {
			s.malformed.Add(1)
			continue
		}
		s.received.Add(1)
		s.lastRx.Store(time.Now().UnixNano())
		switch {
		case int(pkt.PayloadType) == s.cfg.DTMFPayloadType:
			// A peer that signals DTMF as events has its tones removed
			// from the audio, or left in; either way, count events only.
			inband = false
			ev, err := dtmf.DecodeEvent(pkt.Payload)
			if err != nil {
				s.malformed.Add(1)
				continue
			}
			if key, ok := tracker.Observe(pkt.Timestamp, ev); ok {
				s.emit(key, MethodRFC4733)
			}
		case pkt.PayloadType == s.cfg.Codec.PayloadType && inband:
			if len(pkt.Payload) > len(pcm) {
				continue
			}
			detector.Process(s.cfg.Codec.Decode(pcm, pkt.Payload), emitInband)
		}
	}
}

func (s *Stream) emit(key rune, method string) {
	if s.cfg.OnDigit != nil {
		s.cfg.OnDigit(key, method)
	}
}
