package agentua

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
)

// Frame timing of 20 ms PCMU: 160 samples at 8 kHz (RFC 3551 §4.5).
const (
	frameTime    = 20 * time.Millisecond
	frameSamples = 160
)

// silence is one frame of PCMU silence (G.711 µ-law's zero is 0xFF).
var silence = bytes.Repeat([]byte{0xFF}, frameSamples)

// media is the phones' RTP: one socket for every call, one pacer sending
// each call's frames every 20 ms, one reader counting what arrives.
type media struct {
	conn    *net.UDPConn
	addr    netip.AddrPort
	foreign atomic.Int64 // packets from no call's address

	mu      sync.RWMutex
	streams map[netip.AddrPort]*stream // by the far end's address
	// sending is the pacer's copy of the streams, replaced on every
	// change so that the pacer reads it without the lock.
	sending atomic.Pointer[[]*stream]
}

// stream is one call's RTP. hdr, pkt and started belong to the pacer.
type stream struct {
	remote         netip.AddrPort
	hdr            rtp.Header
	pkt            []byte // a 12-byte header, then the frame's payload
	started        bool
	sent, received atomic.Int64
}

func newMedia(ip netip.Addr) (*media, error) {
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	if err != nil {
		return nil, err
	}
	m := &media{conn: conn, addr: conn.LocalAddr().(*net.UDPAddr).AddrPort(), streams: map[netip.AddrPort]*stream{}}
	m.sending.Store(&[]*stream{})
	return m, nil
}

// add starts sending to remote and counting what comes from it.
func (m *media) add(remote netip.AddrPort) *stream {
	s := &stream{
		remote: remote,
		hdr: rtp.Header{
			Version: 2, PayloadType: pcmuPT, Marker: true,
			SequenceNumber: uint16(rand.Uint32()), Timestamp: rand.Uint32(), SSRC: rand.Uint32(),
		},
		pkt: append(make([]byte, 12, 12+frameSamples), silence...),
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	// The far end hands a port it freed to its next call at once; a call
	// still holding the address here has ended there, whatever its BYE is
	// doing, so the new call takes the address over.
	m.streams[remote] = s
	m.publishLocked()
	return s
}

// remove stops s.
func (m *media) remove(s *stream) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.streams[s.remote] == s {
		delete(m.streams, s.remote)
		m.publishLocked()
	}
}

func (m *media) publishLocked() {
	all := make([]*stream, 0, len(m.streams))
	for _, s := range m.streams {
		all = append(all, s)
	}
	m.sending.Store(&all)
}

// pace sends a frame to every stream every 20 ms on an absolute schedule,
// until ctx ends. A tick that comes too late to keep up skips the frames it
// missed rather than sending them in a burst, and the RTP timestamps
// advance by the time that passed, as a phone's clock would (RFC 3550
// §5.1).
func (m *media) pace(ctx context.Context) {
	next := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		frames := uint32(1)
		next = next.Add(frameTime)
		if late := time.Since(next); late > frameTime {
			skipped := uint32(late / frameTime)
			frames += skipped
			next = next.Add(time.Duration(skipped) * frameTime)
		}
		for _, s := range *m.sending.Load() {
			m.send(s, frames)
		}
		timer.Reset(time.Until(next))
	}
}

// send writes s's next frame, frames frame times after its last one.
func (m *media) send(s *stream, frames uint32) {
	if s.started {
		s.hdr.SequenceNumber++
		s.hdr.Timestamp += frames * frameSamples
		s.hdr.Marker = false
	}
	s.started = true
	if _, err := s.hdr.MarshalTo(s.pkt[:12]); err != nil {
		return
	}
	if _, err := m.conn.WriteToUDPAddrPort(s.pkt, s.remote); err == nil {
		s.sent.Add(1)
	}
}

// receive counts every packet that arrives to its call, until the socket
// is closed.
func (m *media) receive() {
	buf := make([]byte, 1500)
	for {
		n, from, err := m.conn.ReadFromUDPAddrPort(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		// RTP version 2 in the first two bits (RFC 3550 §5.1).
		if err != nil || n < 12 || buf[0]>>6 != 2 {
			continue
		}
		m.mu.RLock()
		s := m.streams[netip.AddrPortFrom(from.Addr().Unmap(), from.Port())]
		m.mu.RUnlock()
		if s == nil {
			m.foreign.Add(1)
			continue
		}
		s.received.Add(1)
	}
}

func (m *media) close() { m.conn.Close() }
