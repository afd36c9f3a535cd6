package media

import (
	"sync"
	"time"
)

// ReceiveStats are a stream's reception statistics as RFC 3550 Appendix A
// computes them from the RTP received from the peer.
type ReceiveStats struct {
	// Received counts the packets that entered the loss count (every
	// accepted RTP packet, duplicates included, as A.3 counts them).
	Received uint64
	// Expected is how many packets the sequence numbers say were sent:
	// the extended highest sequence number less the first, plus one
	// (A.3), summed over every source the peer used.
	Expected uint64
	// Lost is Expected less Received; duplicates can make it negative.
	Lost int64
	// Jitter is the interarrival jitter (A.8) of the peer's audio.
	Jitter time.Duration
}

// LossRatio is the fraction of the expected packets that were lost, 0 when
// none were expected or duplicates outnumber the losses.
func (r ReceiveStats) LossRatio() float64 {
	if r.Expected == 0 || r.Lost <= 0 {
		return 0
	}
	return float64(r.Lost) / float64(r.Expected)
}

// seqMod is the modulus of RTP sequence numbers. A jump further than
// maxDropout ahead (bridge.go) is a restart, accepted once the packet
// after it follows on (RFC 3550 A.1).
const seqMod = 1 << 16

// rxStats follows the peer's RTP as RFC 3550 A.1, A.3 and A.8 do. Packets
// are observed by the shard's receiver goroutine; reports are taken by the
// pacer and by whoever asks for the stream's quality: an uncontended mutex
// guards it, and observing a packet allocates nothing.
//
// A.1's probation of a new source (two packets in sequence before it
// counts) is left out: packets reach it only from the negotiated address,
// and the first packet of a call counts as the truth of the call does.
type rxStats struct {
	mu sync.Mutex

	started  bool
	ssrc     uint32
	maxSeq   uint16
	cycles   uint32 // sequence number wraps, times 2^16
	baseSeq  uint32
	badSeq   uint32
	received uint32

	// Totals of the runs before this one: a new SSRC or a restart of the
	// sequence numbers starts A.1's counts again.
	prevExpected, prevReceived uint64

	// A.3's interval counts, for each report's fraction lost.
	expectedPrior, receivedPrior uint32

	// A.8: the relative transit time of the previous audio packet and the
	// jitter, both in timestamp units; jitter is scaled by 16 as A.8's
	// integer form keeps it.
	transit     uint32
	haveTransit bool
	jitter16    uint32

	// The peer's last sender report: the middle 32 bits of its NTP time
	// (LSR) and when it arrived, for our reports' LSR and DLSR (§6.4.1).
	lastSR   uint32
	lastSRAt int64
}

// observe counts one packet (A.1's update_seq, without probation).
// audio says it carries the codec's audio, whose timestamps follow the
// sampling clock, so that it feeds the jitter; RFC 4733 events keep their
// event's start and would not. arrival is in unix nanoseconds.
func (r *rxStats) observe(ssrc uint32, seq uint16, ts uint32, arrival int64, audio bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.started || ssrc != r.ssrc {
		r.restartLocked(ssrc, seq)
	} else {
		udelta := seq - r.maxSeq
		switch {
		case udelta < maxDropout:
			// In order, with a permissible gap.
			if seq < r.maxSeq {
				r.cycles += seqMod
			}
			r.maxSeq = seq
		case uint32(udelta) <= seqMod-maxMisorder:
			// A very large jump: a restart if the next packet follows on.
			if uint32(seq) == r.badSeq {
				r.restartLocked(ssrc, seq)
			} else {
				r.badSeq = (uint32(seq) + 1) & (seqMod - 1)
				return
			}
		default:
			// A duplicate or a packet out of order: counted, no more.
		}
	}
	r.received++
	if !audio {
		return
	}
	// A.8: transit in timestamp units; its changes are the jitter.
	at := uint32(arrival / (1e9 / SampleRate))
	transit := at - ts
	if r.haveTransit {
		d := int32(transit - r.transit)
		if d < 0 {
			d = -d
		}
		// J += (|D| - J) / 16, kept as J*16 in integers.
		r.jitter16 += uint32(d) - ((r.jitter16 + 8) >> 4)
	}
	r.transit, r.haveTransit = transit, true
}

// restartLocked starts A.1's counts on a new source or sequence, keeping
// the totals so far.
func (r *rxStats) restartLocked(ssrc uint32, seq uint16) {
	if r.started {
		r.prevExpected += uint64(r.expectedLocked())
		r.prevReceived += uint64(r.received)
	}
	r.started, r.ssrc = true, ssrc
	r.baseSeq = uint32(seq)
	r.maxSeq = seq
	r.badSeq = seqMod + 1 // so seq == badSeq is false
	r.cycles, r.received = 0, 0
	r.expectedPrior, r.receivedPrior = 0, 0
	r.haveTransit = false
}

// extendedMaxLocked is the extended highest sequence number received.
func (r *rxStats) extendedMaxLocked() uint32 { return r.cycles + uint32(r.maxSeq) }

func (r *rxStats) expectedLocked() uint32 {
	if !r.started {
		return 0
	}
	return r.extendedMaxLocked() - r.baseSeq + 1
}

// stats returns the totals.
func (r *rxStats) stats() ReceiveStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := ReceiveStats{
		Received: r.prevReceived + uint64(r.received),
		Expected: r.prevExpected + uint64(r.expectedLocked()),
		Jitter:   time.Duration(r.jitter16) * time.Second / (16 * SampleRate),
	}
	st.Lost = int64(st.Expected) - int64(st.Received)
	return st
}

// reportBlock is what a reception report block says of the current source
// (RFC 3550 §6.4.1), and starts the next interval for its fraction lost.
type reportBlock struct {
	ssrc         uint32
	fractionLost uint8
	totalLost    uint32 // 24 bits, clamped
	lastSeq      uint32
	jitter       uint32
	lastSR       uint32
	delay        uint32 // DLSR, in units of 1/65536 s
}

// report returns the block for our next report, false before any packet.
func (r *rxStats) report(now int64) (reportBlock, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.started {
		return reportBlock{}, false
	}
	expected := r.expectedLocked()
	lost := int64(expected) - int64(r.received)
	// A.3: the cumulative number lost is clamped to 24 bits, signed.
	lost = max(min(lost, 0x7fffff), -0x800000)
	expInterval := expected - r.expectedPrior
	recvInterval := r.received - r.receivedPrior
	r.expectedPrior, r.receivedPrior = expected, r.received
	var fraction uint8
	if lostInterval := int64(expInterval) - int64(recvInterval); expInterval != 0 && lostInterval > 0 {
		fraction = uint8((lostInterval << 8) / int64(expInterval))
	}
	b := reportBlock{
		ssrc:         r.ssrc,
		fractionLost: fraction,
		totalLost:    uint32(lost) & 0xffffff,
		lastSeq:      r.extendedMaxLocked(),
		jitter:       r.jitter16 >> 4,
		lastSR:       r.lastSR,
	}
	if r.lastSR != 0 {
		b.delay = uint32((now - r.lastSRAt) * 65536 / 1e9)
	}
	return b, true
}

// senderReport notes the peer's sender report: the middle 32 bits of its
// NTP timestamp, and when it came.
func (r *rxStats) senderReport(ntp uint64, now int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastSR, r.lastSRAt = uint32(ntp>>16), now
}
