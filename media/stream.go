package media

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"golang.org/x/sys/unix"

	"github.com/hotline12345/hotline/media/dtmf"
)

// DTMF methods reported by a stream.
const (
	MethodRFC4733 = "rfc4733"
	MethodInband  = "inband"
)

// ErrNoTelephoneEvent is returned by SendDigit on a stream whose peer
// negotiated no telephone-event payload type: it cannot take RFC 4733
// events, and keys reach it only as tones in the audio.
var ErrNoTelephoneEvent = errors.New("peer takes no RFC 4733 telephone-events")

// Source is live audio for a stream, such as the voice of the call it is
// bridged with.
type Source interface {
	// ReadFrame fills frame (FrameSamples bytes in the stream's codec)
	// with the next 20 ms of audio and reports whether it did. It is
	// called from the pacer once per tick while the source is set, so
	// that the source drains in real time even while a prompt plays; it
	// must not block.
	ReadFrame(frame []byte) bool
}

// sourceBox holds a Source in an atomic pointer.
type sourceBox struct{ src Source }

// StreamConfig describes one call's negotiated RTP session.
type StreamConfig struct {
	Conn   *Socket        // bound to our RTP port; the stream owns and closes it
	Remote netip.AddrPort // the peer's RTP address from its SDP
	// RemoteRTCPPort is the port of the peer's a=rtcp (RFC 3605); 0 means
	// the one above its RTP port (RFC 3550 §11). RTCP is sent when Conn
	// has an RTCP socket (PortRange.Listen binds one).
	RemoteRTCPPort uint16
	// ReportInterval is the mean time between RTCP reports, ReportInterval
	// when 0.
	ReportInterval time.Duration
	Codec          Codec
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
	// ReportsSent and ReportsReceived count RTCP compound packets.
	ReportsSent, ReportsReceived uint64
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

	// RTCP: the reception statistics of the peer's RTP, what the peer
	// reported of ours, and where our reports go.
	rx                           rxStats
	rtcpRemote                   atomic.Pointer[netip.AddrPort]
	reportsSent, reportsReceived atomic.Uint64
	reportMu                     sync.Mutex // guards remoteReport, rtt and rttKnown
	remoteReport                 RemoteReport
	rtt                          time.Duration
	rttKnown                     bool
	// Fixed at Start: our SSRC and first sequence number, for reading the
	// peer's reports, and our RTCP CNAME.
	ssrc     uint32
	firstSeq uint16
	cname    string

	mu      sync.Mutex // guards the play queue and the keys to send
	closed  bool
	queue   []*Playback
	clipIdx int
	off     int
	keys    []rune // keys waiting to be sent as RFC 4733 events

	source atomic.Pointer[sourceBox] // live audio, played when no prompt is queued
	link   atomic.Pointer[link]      // where received audio and keys go while bridged
	// hear classifies the received audio once Listen set it; the
	// receiver goroutine alone feeds it.
	hear atomic.Pointer[Classifier]

	// Touched only by the pacer goroutine that owns this stream's shard.
	hdr    rtp.Header
	buf    [12 + FrameSamples]byte
	idle   bool    // nothing was sent on the previous tick
	lastTx int64   // unix nanoseconds of the previous send
	lastTS uint32  // RTP timestamp of the previous send
	jitter float64 // RFC 3550 send jitter estimate, seconds
	live   [FrameSamples]byte
	event  eventTx // the key being sent, if any
	// RTCP sender state: payload octets sent, frames sent at the last
	// report, and when the next is due (unix nanoseconds).
	octets       uint64
	sentAtReport uint64
	nextReport   int64

	// Receive state, touched only by the shard's receiver goroutine.
	rxID     uint64
	tracker  dtmf.EventTracker
	detector *dtmf.Detector
	inband   bool

	shard     *shard
	closeOnce sync.Once
}

// Start registers the stream with the pacer and starts receiving. On error
// the socket is left open for the caller to close.
func (p *Pacer) Start(cfg StreamConfig) (*Stream, error) {
	s := &Stream{cfg: cfg, pacer: p, idle: true, detector: dtmf.NewDetector(), inband: true}
	remote := cfg.Remote
	s.remote.Store(&remote)
	rtcpRemote := rtcpAddr(remote, cfg.RemoteRTCPPort)
	s.rtcpRemote.Store(&rtcpRemote)
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
	s.ssrc, s.firstSeq = s.hdr.SSRC, s.hdr.SequenceNumber+1
	// RFC 7022: a CNAME of random bits, new for each session.
	s.cname = fmt.Sprintf("%016x@hotline", rand.Uint64())
	if err := p.add(s); err != nil {
		return nil, fmt.Errorf("rtp receive: %w", err)
	}
	return s, nil
}

// LocalAddr is the address the stream receives on.
func (s *Stream) LocalAddr() netip.AddrPort {
	return s.cfg.Conn.LocalAddr()
}

// Codec is the stream's codec.
func (s *Stream) Codec() Codec { return s.cfg.Codec }

// SetRemote changes where the peer sends from and receives on (a re-INVITE
// moved its media), and where its RTCP goes: rtcpPort, or the port above
// its RTP when 0.
func (s *Stream) SetRemote(addr netip.AddrPort, rtcpPort uint16) {
	s.remote.Store(&addr)
	r := rtcpAddr(addr, rtcpPort)
	s.rtcpRemote.Store(&r)
}

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
	return StreamStats{
		Received: s.received.Load(), Foreign: s.foreign.Load(), Malformed: s.malformed.Load(), Sent: s.sent.Load(),
		ReportsSent: s.reportsSent.Load(), ReportsReceived: s.reportsReceived.Load(),
	}
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
// socket.
func (s *Stream) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.pacer.remove(s)
		err = s.cfg.Conn.Close()
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
// there is nothing to play. Playbacks that ended are appended to done.
func (s *Stream) nextFrameLocked(done *[]*Playback) []byte {
	for len(s.queue) > 0 {
		pb := s.queue[0]
		if pb.stopped || s.clipIdx >= len(pb.clips) {
			s.queue = s.queue[1:]
			s.clipIdx, s.off = 0, 0
			*done = append(*done, pb)
			continue
		}
		clip := pb.clips[s.clipIdx]
		data := clip.payload(s.cfg.Codec)
		if s.off == 0 {
			// The instant the first frame goes out, not the tick's start:
			// a playback queued while the pacer works through its streams
			// must not seem to start before it was queued.
			pb.played = append(pb.played, Played{Ref: clip.Ref, At: time.Now()})
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
//
// A frame is, in order of precedence: a packet of the key being sent as an
// RFC 4733 event (the event replaces the audio while it lasts, and queued
// prompts wait for it), the next frame of the play queue, or the live
// source's frame. The live source is read on every tick, used or not, so
// that it never falls behind real time.
//
// Playbacks that ended are appended to done for the caller to finish once
// every stream's frame is out: waking the flows that wait on them can cost
// the pacer its P in the middle of the sends. With a nil done they are
// finished at once.
func (s *Stream) tick(deadline int64, st *PacerStats, done *[]*Playback) {
	var local []*Playback
	if done == nil {
		done = &local
	}
	var frame []byte
	s.mu.Lock()
	if !s.event.active && len(s.keys) > 0 {
		s.event = eventTx{active: true, key: s.keys[0], start: s.hdr.Timestamp}
		s.keys = s.keys[1:]
	}
	if !s.event.active {
		frame = s.nextFrameLocked(done)
	}
	s.mu.Unlock()
	for _, pb := range local {
		pb.finish()
	}
	if box := s.source.Load(); box != nil && box.src.ReadFrame(s.live[:]) && frame == nil {
		frame = s.live[:]
	}
	sending := s.sending.Load()
	switch {
	case s.event.active:
		if sending {
			s.sendEvent(deadline, st)
		}
		s.event.sent++
		if s.event.done() {
			s.event = eventTx{}
		}
		// The audio after an event starts a new talkspurt.
		s.idle = true
	case frame != nil && sending:
		s.send(frame, deadline, st)
	default:
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
	if err := s.cfg.Conn.WriteTo(s.buf[:n], *s.remote.Load()); err != nil {
		return
	}
	s.sent.Add(1)
	s.octets += uint64(len(frame))
	ns := time.Now().UnixNano()
	st.observeLateness(time.Duration(ns - deadline))
	if s.lastTx != 0 {
		// RFC 3550 §6.4.1: D is the difference between the send-time and
		// the RTP-time spacing of two frames; J moves 1/16 of the way
		// towards |D| with every frame.
		d := float64(ns-s.lastTx)/1e9 - float64(s.hdr.Timestamp-s.lastTS)/SampleRate
		s.jitter += (math.Abs(d) - s.jitter) / 16
		st.observeSpacing(math.Abs(d), s.jitter)
	}
	s.lastTx, s.lastTS = ns, s.hdr.Timestamp
}

// Shape of the RFC 4733 events a stream sends for a key: eventPackets
// packets of growing duration, one per tick (100 ms of key press, longer
// than the 40 ms a receiver needs, ITU-T Q.24), then the final packet sent
// three times on the following ticks, as §2.5.1.4 asks so that a lost
// packet does not lose the end.
const (
	eventPackets = 5
	endPackets   = 3
	eventVolume  = 10 // −10 dBm0, a keypad's level (ITU-T Q.23)
)

// eventTx is the key a stream is sending as RFC 4733 events.
type eventTx struct {
	active bool
	key    rune
	start  uint32 // RTP timestamp of every packet of the event (§2.5.1.2)
	sent   int    // packets sent so far
}

func (e *eventTx) done() bool { return e.sent >= eventPackets+endPackets }

// packet is the event's payload on its next tick.
func (e *eventTx) packet() dtmf.Event {
	ev := dtmf.Event{Key: e.key, Volume: eventVolume, Duration: uint16(min(e.sent+1, eventPackets) * FrameSamples)}
	ev.End = e.sent >= eventPackets
	return ev
}

// sendEvent sends the event's packet for this tick: the stream's SSRC and
// sequence numbers, the telephone-event payload type the peer gave, the
// event's start as the timestamp, and the marker on the first packet only
// (RFC 4733 §2.5.1.1).
func (s *Stream) sendEvent(deadline int64, st *PacerStats) {
	h := s.hdr
	s.hdr.SequenceNumber++
	h.SequenceNumber = s.hdr.SequenceNumber
	h.PayloadType = uint8(s.cfg.DTMFPayloadType)
	h.Timestamp = s.event.start
	h.Marker = s.event.sent == 0
	n, err := h.MarshalTo(s.buf[:])
	if err != nil {
		return
	}
	hn := n
	n += copy(s.buf[n:], s.event.packet().Marshal())
	if err := s.cfg.Conn.WriteTo(s.buf[:n], *s.remote.Load()); err != nil {
		return
	}
	s.sent.Add(1)
	s.octets += uint64(n - hn)
	st.observeLateness(time.Duration(time.Now().UnixNano() - deadline))
}

// SendDigit queues key to be sent to the peer as RFC 4733 events, after
// any keys queued before it. It fails with ErrNoTelephoneEvent when the
// peer negotiated no telephone-event, and with dtmf.ErrUnknownKey for a
// rune that is not a DTMF key.
func (s *Stream) SendDigit(key rune) error {
	if s.cfg.DTMFPayloadType < 0 || s.cfg.DTMFPayloadType > 127 {
		return ErrNoTelephoneEvent
	}
	if _, ok := dtmf.KeyCode(key); !ok {
		return fmt.Errorf("%w: %q", dtmf.ErrUnknownKey, key)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.keys = append(s.keys, key)
	}
	return nil
}

// SetSource sets the live audio sent when no prompt is queued; nil removes
// it, and the stream then sends its prompts only.
func (s *Stream) SetSource(src Source) {
	if src == nil {
		s.source.Store(nil)
		return
	}
	s.source.Store(&sourceBox{src: src})
}

// StopPlayback stops every queued playback: the one playing ends at the
// next frame boundary, those waiting behind it at once.
func (s *Stream) StopPlayback() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		return
	}
	s.queue[0].stopped = true
	for _, pb := range s.queue[1:] {
		pb.stopped = true
		pb.finish()
	}
	clear(s.queue[1:])
	s.queue = s.queue[:1]
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

// drain reads every packet waiting on the socket; the shard's receiver
// calls it when epoll says the socket is readable.
func (s *Stream) drain(rx *rxBuffers) {
	for {
		n, from, err := s.cfg.Conn.ReadFrom(rx.buf)
		switch {
		case err == nil:
			s.receive(rx, rx.buf[:n], from)
		case errors.Is(err, unix.EINTR):
		default:
			// EAGAIN: nothing more waiting. ECONNREFUSED and the like
			// report an ICMP error for an earlier send; they carry no
			// packet, and a closed socket ends the stream's reading.
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, ErrSocketClosed) {
				return
			}
		}
	}
}

// receive handles one datagram.
func (s *Stream) receive(rx *rxBuffers, b []byte, from netip.AddrPort) {
	// Only the negotiated peer may feed this call (no RTP hijack).
	remote := s.remote.Load()
	if from.Addr().Unmap() != remote.Addr().Unmap() || from.Port() != remote.Port() {
		s.foreign.Add(1)
		return
	}
	pkt := &rx.pkt
	if err := pkt.Unmarshal(b); err != nil || pkt.Version != 2 {
		s.malformed.Add(1)
		return
	}
	s.received.Add(1)
	now := time.Now().UnixNano()
	s.lastRx.Store(now)
	s.rx.observe(pkt.SSRC, pkt.SequenceNumber, pkt.Timestamp, now, pkt.PayloadType == s.cfg.Codec.PayloadType)
	switch {
	case int(pkt.PayloadType) == s.cfg.DTMFPayloadType:
		// A peer that signals DTMF as events has its tones removed from
		// the audio, or left in; either way, count events only.
		s.inband = false
		ev, err := dtmf.DecodeEvent(pkt.Payload)
		if err != nil {
			s.malformed.Add(1)
			return
		}
		if key, ok := s.tracker.Observe(pkt.Timestamp, ev); ok {
			s.emit(key, MethodRFC4733)
		}
	case pkt.PayloadType == s.cfg.Codec.PayloadType:
		if l := s.link.Load(); l != nil {
			l.into.push(pkt.SSRC, pkt.SequenceNumber, pkt.Payload)
		}
		hear := s.hear.Load()
		if (!s.inband && hear == nil) || len(pkt.Payload) > len(rx.pcm) {
			return
		}
		pcm := s.cfg.Codec.Decode(rx.pcm, pkt.Payload)
		if s.inband {
			s.detector.Process(pcm, s.emitInband)
		}
		if hear != nil {
			hear.Process(pcm, time.Unix(0, now))
		}
	}
}

// Listen has the received audio classified from now on, and what is heard
// reported to emit, from the receive goroutine: it must not block. A
// later Listen replaces the earlier.
func (s *Stream) Listen(opts ClassifierOptions, emit func(Sound)) {
	s.hear.Store(NewClassifier(opts, emit))
}

func (s *Stream) emitInband(key rune) { s.emit(key, MethodInband) }

// emit reports a key press, and passes a key that came as an RFC 4733
// event on to the bridged stream. Keys heard in the audio are not passed
// on: the tones themselves reach the other side in the bridged audio.
func (s *Stream) emit(key rune, method string) {
	if method == MethodRFC4733 {
		if l := s.link.Load(); l != nil {
			_ = l.to.SendDigit(key)
		}
	}
	if s.cfg.OnDigit != nil {
		s.cfg.OnDigit(key, method)
	}
}
