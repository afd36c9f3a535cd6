package media

import (
	"context"
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtcp"
)

// steadySource is live audio that never runs dry.
type steadySource struct{}

func (steadySource) ReadFrame(frame []byte) bool {
	for i := range frame {
		frame[i] = 0xFF
	}
	return true
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, waitFor)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRTCPBetweenStreams: two streams on a running pacer send each other
// RTP and RTCP from the port above their RTP: each reads the other's
// reports, and the round trip comes from an SR answered by an RR block.
func TestRTCPBetweenStreams(t *testing.T) {
	p := NewPacer(1, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	ip := netip.MustParseAddr("127.0.0.1")
	ca, err := PortRange{}.Listen(ip)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := PortRange{}.Listen(ip)
	if err != nil {
		t.Fatal(err)
	}
	start := func(conn *Socket, remote netip.AddrPort) *Stream {
		s, err := p.Start(StreamConfig{Conn: conn, Remote: remote, Codec: PCMU, DTMFPayloadType: -1, ReportInterval: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		s.SetSource(steadySource{})
		return s
	}
	a := start(ca, cb.LocalAddr())
	b := start(cb, ca.LocalAddr())
	for _, s := range []*Stream{a, b} {
		eventually(t, "reports both ways with a round trip", func() bool {
			st, q := s.Stats(), s.Quality()
			return st.ReportsSent >= 2 && st.ReportsReceived >= 2 && q.RTTKnown && q.Remote != nil
		})
		q := s.Quality()
		if q.RTT > 100*time.Millisecond {
			t.Errorf("round trip on loopback %s", q.RTT)
		}
		if q.Receive.Received == 0 || q.Receive.Lost != 0 || q.Remote.LossRatio != 0 || q.Remote.Lost != 0 {
			t.Errorf("quality %+v remote %+v: want packets, none lost", q, *q.Remote)
		}
		if q.MOS < 4.3 || q.MOS > 4.42 {
			t.Errorf("MOS %.2f on a clean loopback call", q.MOS)
		}
		if st := s.Stats(); st.Malformed != 0 || st.Foreign != 0 {
			t.Errorf("stats %+v", st)
		}
	}
}

// middle is the middle 32 bits of the NTP time of ns, as LSR carries it.
func middle(ns int64) uint32 { return uint32(ntpTime(ns) >> 16) }

func TestReceiverReportOnOurStream(t *testing.T) {
	r := newRig(t, nil)
	s := r.s
	now := time.Now().UnixNano()
	// Our SR left 100 ms ago and the peer held it 30 ms: 70 ms round trip.
	rr := &rtcp.ReceiverReport{SSRC: 9, Reports: []rtcp.ReceptionReport{
		{SSRC: s.ssrc + 1, FractionLost: 255, TotalLost: 99},
		{
			SSRC: s.ssrc, FractionLost: 64, TotalLost: 12, LastSequenceNumber: uint32(s.firstSeq) + 199,
			Jitter: 160, LastSenderReport: middle(now - int64(100*time.Millisecond)), Delay: 30 * 65536 / 1000,
		},
	}}
	b, err := rtcp.Marshal([]rtcp.Packet{rr, rtcp.NewCNAMESourceDescription(9, "peer")})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.receiveRTCP(b, now); err != nil {
		t.Fatal(err)
	}
	q := s.Quality()
	if q.Remote == nil {
		t.Fatal("no remote report")
	}
	got := *q.Remote
	if got.FractionLost != 0.25 || got.Lost != 12 || math.Abs(got.LossRatio-0.06) > 1e-9 || got.Jitter != 20*time.Millisecond {
		t.Errorf("remote report %+v, want a quarter lost lately, 12 of 200 in all, 20ms jitter", got)
	}
	if !q.RTTKnown || q.RTT < 69*time.Millisecond || q.RTT > 71*time.Millisecond {
		t.Errorf("round trip %s (known %v), want 70ms", q.RTT, q.RTTKnown)
	}
	// MOS from the worse loss (6 %) and 35 ms + 2·20 ms of delay.
	if want := EstimateMOS(0.06, q.RTT/2+40*time.Millisecond); math.Abs(q.MOS-want) > 1e-9 {
		t.Errorf("MOS %.3f, want %.3f", q.MOS, want)
	}

	// A block that has seen no SR of ours (LSR 0) gives no round trip,
	// and a negative cumulative loss (duplicates) reads as such.
	rr.Reports = []rtcp.ReceptionReport{{SSRC: s.ssrc, TotalLost: 0xffffff}}
	b, _ = rtcp.Marshal([]rtcp.Packet{rr})
	if err := s.receiveRTCP(b, now); err != nil {
		t.Fatal(err)
	}
	if q := s.Quality(); q.Remote.Lost != -1 || q.Remote.LossRatio != 0 || q.RTT > 71*time.Millisecond {
		t.Errorf("after a block without LSR: %+v, rtt %s", *q.Remote, q.RTT)
	}
	if err := s.receiveRTCP([]byte{0x80, 201, 0}, now); err == nil {
		t.Error("a truncated packet was taken")
	}
}

// TestSenderReportAnswered: the peer's SR is answered in our next report
// block with its LSR and the delay since (§6.4.1).
func TestSenderReportAnswered(t *testing.T) {
	r := newRig(t, nil)
	s := r.s
	now := time.Now().UnixNano()
	s.rx.observe(5, 1000, 0, now, true)
	sr := &rtcp.SenderReport{SSRC: 5, NTPTime: ntpTime(now), PacketCount: 1, OctetCount: 160}
	b, err := rtcp.Marshal([]rtcp.Packet{sr})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.receiveRTCP(b, now); err != nil {
		t.Fatal(err)
	}
	later := now + int64(1500*time.Millisecond)
	report, err := s.buildReport(later)
	if err != nil {
		t.Fatal(err)
	}
	pkts, err := rtcp.Unmarshal(report)
	if err != nil {
		t.Fatal(err)
	}
	// Nothing sent yet: an RR, then the SDES with our CNAME.
	rr, ok := pkts[0].(*rtcp.ReceiverReport)
	if !ok || len(pkts) != 2 || len(rr.Reports) != 1 {
		t.Fatalf("report %v", pkts)
	}
	if cname, err := rtcp.CompoundPacket(pkts).CNAME(); err != nil || cname != s.cname {
		t.Errorf("CNAME %q %v", cname, err)
	}
	blk := rr.Reports[0]
	if blk.SSRC != 5 || blk.LastSenderReport != middle(now) || blk.Delay < 98303 || blk.Delay > 98305 {
		t.Errorf("block %+v, want LSR %d and DLSR 1.5 s (98304)", blk, middle(now))
	}
}

func TestRoundTripAcrossWrap(t *testing.T) {
	// The middle 32 bits wrap every 18 hours; the difference still holds.
	now := time.Now().UnixNano()
	rb := rtcp.ReceptionReport{LastSenderReport: middle(now) - 65536/10, Delay: 0}
	if rtt, ok := roundTrip(rb, now); !ok || rtt < 99*time.Millisecond || rtt > 101*time.Millisecond {
		t.Errorf("rtt %s %v, want 100ms", rtt, ok)
	}
	// A DLSR longer than the time since the SR (a peer's clock error)
	// gives none rather than a negative round trip.
	rb.Delay = 65536
	if _, ok := roundTrip(rb, now); ok {
		t.Error("negative round trip taken")
	}
}
