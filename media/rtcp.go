package media

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/pion/rtcp"
	"golang.org/x/sys/unix"
)

// ReportInterval is the mean time between a stream's RTCP reports: RFC
// 3550 §6.2's minimum of 5 s, enough for two parties whose RTCP is a
// fraction of a percent of their RTP. Each interval is drawn from 0.5 to
// 1.5 times it (§6.3.1), so that calls started together do not report
// together.
const ReportInterval = 5 * time.Second

// RemoteReport is what the peer's latest RTCP report said of our RTP.
type RemoteReport struct {
	At time.Time
	// FractionLost is the share of our packets lost since its previous
	// report; LossRatio the share of all it expected, Lost that number.
	FractionLost float64
	LossRatio    float64
	Lost         int64
	Jitter       time.Duration
}

// Quality is a stream's call quality: what we received, what the peer
// said it received, the round trip and an estimated MOS.
type Quality struct {
	Receive ReceiveStats
	Remote  *RemoteReport // nil until the peer reported on our RTP
	// RTT is the latest round-trip time from the peer's report (RFC 3550
	// §6.4.1) when RTTKnown: unknown while the peer sends no RTCP, or has
	// had no sender report of ours to answer.
	RTT      time.Duration
	RTTKnown bool
	// MOS is the E-model's estimate (see StreamMOS) from the worse
	// direction's loss and a one-way delay of half the round trip plus a
	// jitter buffer of twice the worse jitter.
	MOS float64
}

// Quality returns the stream's call quality so far.
func (s *Stream) Quality() Quality {
	q := Quality{Receive: s.rx.stats()}
	s.reportMu.Lock()
	if s.remoteReport.At != (time.Time{}) {
		r := s.remoteReport
		q.Remote = &r
	}
	q.RTT, q.RTTKnown = s.rtt, s.rttKnown
	s.reportMu.Unlock()
	loss, jitter := q.Receive.LossRatio(), q.Receive.Jitter
	if q.Remote != nil {
		loss, jitter = max(loss, q.Remote.LossRatio), max(jitter, q.Remote.Jitter)
	}
	q.MOS = StreamMOS(loss, jitter, q.RTT)
	return q
}

// ntpTime is t as an NTP timestamp: seconds since 1900 and a binary
// fraction (RFC 3550 §4).
func ntpTime(ns int64) uint64 {
	const unixToNTP = 2208988800
	sec := uint64(ns/1e9) + unixToNTP
	frac := uint64(ns%1e9) << 32 / 1e9
	return sec<<32 | frac
}

// maybeReport sends the stream's next RTCP report when it is due; the
// pacer calls it between ticks. It runs on the shard's goroutine, so the
// sender's state (timestamps, counts) is its own to read.
func (s *Stream) maybeReport(now int64) {
	conn := s.cfg.Conn.rtcp
	if conn == nil {
		return
	}
	if s.nextReport == 0 {
		// The first report after half an interval (§6.2: the initial
		// interval is half the minimum).
		s.nextReport = now + jittered(s.reportInterval()/2)
		return
	}
	if now < s.nextReport {
		return
	}
	s.nextReport = now + jittered(s.reportInterval())
	b, err := s.buildReport(now)
	if err != nil {
		return
	}
	// RTCP is advisory: a report that cannot go changes nothing for the
	// call.
	if conn.WriteTo(b, *s.rtcpRemote.Load()) == nil {
		s.reportsSent.Add(1)
	}
}

func (s *Stream) reportInterval() time.Duration {
	if s.cfg.ReportInterval > 0 {
		return s.cfg.ReportInterval
	}
	return ReportInterval
}

func jittered(d time.Duration) int64 {
	return int64(d/2) + rand.Int64N(int64(d))
}

// buildReport makes the compound packet of §6.1: an SR when we sent RTP
// since the last report, an RR otherwise, with a block on the peer's
// source once it has sent; then the SDES with our CNAME.
func (s *Stream) buildReport(now int64) ([]byte, error) {
	var blocks []rtcp.ReceptionReport
	if b, ok := s.rx.report(now); ok {
		blocks = append(blocks, rtcp.ReceptionReport{
			SSRC: b.ssrc, FractionLost: b.fractionLost, TotalLost: b.totalLost,
			LastSequenceNumber: b.lastSeq, Jitter: b.jitter,
			LastSenderReport: b.lastSR, Delay: b.delay,
		})
	}
	sent := s.sent.Load()
	var first rtcp.Packet
	if sent != s.sentAtReport && s.lastTx != 0 {
		// The RTP timestamp of now, on the clock of our last frame.
		rtpNow := s.lastTS + uint32((now-s.lastTx)*SampleRate/1e9)
		first = &rtcp.SenderReport{
			SSRC: s.hdr.SSRC, NTPTime: ntpTime(now), RTPTime: rtpNow,
			PacketCount: uint32(sent), OctetCount: uint32(s.octets), Reports: blocks,
		}
	} else {
		first = &rtcp.ReceiverReport{SSRC: s.hdr.SSRC, Reports: blocks}
	}
	s.sentAtReport = sent
	return rtcp.Marshal([]rtcp.Packet{first, rtcp.NewCNAMESourceDescription(s.hdr.SSRC, s.cname)})
}

// drainRTCP reads every RTCP packet waiting; the shard's receiver calls it
// when epoll says the RTCP socket is readable.
func (s *Stream) drainRTCP(rx *rxBuffers) {
	conn := s.cfg.Conn.rtcp
	for {
		n, from, err := conn.ReadFrom(rx.buf)
		switch {
		case err == nil:
			// Only the peer's host may report on the call; its port may
			// be any (a NAT's, or an a=rtcp one).
			if from.Addr().Unmap() != s.remote.Load().Addr().Unmap() {
				s.foreign.Add(1)
				continue
			}
			if err := s.receiveRTCP(rx.buf[:n], time.Now().UnixNano()); err != nil {
				s.malformed.Add(1)
			}
		case errors.Is(err, unix.EINTR):
		case errors.Is(err, unix.EAGAIN) || errors.Is(err, ErrSocketClosed):
			return
		}
	}
}

// receiveRTCP takes in one compound RTCP packet from the peer: its sender
// report's time, for the LSR and DLSR of ours, and its report block on our
// source, with the round trip it gives (§6.4.1).
func (s *Stream) receiveRTCP(b []byte, now int64) error {
	pkts, err := rtcp.Unmarshal(b)
	if err != nil {
		return fmt.Errorf("rtcp: %w", err)
	}
	s.reportsReceived.Add(1)
	for _, p := range pkts {
		var blocks []rtcp.ReceptionReport
		switch p := p.(type) {
		case *rtcp.SenderReport:
			s.rx.senderReport(p.NTPTime, now)
			blocks = p.Reports
		case *rtcp.ReceiverReport:
			blocks = p.Reports
		}
		for _, rb := range blocks {
			if rb.SSRC == s.ssrc {
				s.remoteBlock(rb, now)
			}
		}
	}
	return nil
}

// remoteBlock keeps a report block on our source.
func (s *Stream) remoteBlock(rb rtcp.ReceptionReport, now int64) {
	// TotalLost is 24 bits, signed.
	lost := int64(rb.TotalLost & 0xffffff)
	if lost&0x800000 != 0 {
		lost -= 1 << 24
	}
	r := RemoteReport{
		At:           time.Unix(0, now),
		FractionLost: float64(rb.FractionLost) / 256,
		Lost:         lost,
		Jitter:       time.Duration(rb.Jitter) * time.Second / SampleRate,
	}
	// The peer's extended highest sequence number counts from our first.
	if expected := int64(rb.LastSequenceNumber-uint32(s.firstSeq)) + 1; expected > 0 && lost > 0 {
		r.LossRatio = min(float64(lost)/float64(expected), 1)
	}
	s.reportMu.Lock()
	defer s.reportMu.Unlock()
	s.remoteReport = r
	if rtt, ok := roundTrip(rb, now); ok {
		s.rtt, s.rttKnown = rtt, true
	}
}

// roundTrip is §6.4.1's round trip: the arrival time less the LSR and DLSR
// of the peer's block, in the middle 32 bits of NTP time (1/65536 s). A
// block that has seen no SR of ours (LSR 0) gives none.
func roundTrip(rb rtcp.ReceptionReport, now int64) (time.Duration, bool) {
	if rb.LastSenderReport == 0 {
		return 0, false
	}
	a := uint32(ntpTime(now) >> 16)
	d := int32(a - rb.LastSenderReport - rb.Delay)
	if d < 0 {
		return 0, false
	}
	return time.Duration(int64(d) * int64(time.Second) >> 16), true
}

// rtcpAddr is the peer's RTCP address: the port above its RTP (RFC 3550
// §11) unless its SDP named another (RFC 3605).
func rtcpAddr(rtpAddr netip.AddrPort, port uint16) netip.AddrPort {
	if port == 0 {
		port = rtpAddr.Port() + 1
	}
	return netip.AddrPortFrom(rtpAddr.Addr(), port)
}
