package media

import (
	"testing"
	"time"
)

// feed observes packets of one source with sequence numbers seqs, 20 ms
// apart in both timestamp and arrival unless arrival says otherwise.
func feed(r *rxStats, ssrc uint32, seqs []uint16, arrival func(i int) int64) {
	for i, seq := range seqs {
		at := int64(i) * int64(FrameDuration)
		if arrival != nil {
			at = arrival(i)
		}
		r.observe(ssrc, seq, uint32(seq)*FrameSamples, at+1e12, true)
	}
}

func TestRxStatsLoss(t *testing.T) {
	// 501 packets from sequence number 65500 (so the count wraps), every
	// 20th dropped: 25 lost of 501.
	var seqs []uint16
	for i := 1; i <= 501; i++ {
		if i%20 != 0 {
			seqs = append(seqs, uint16(65500+i))
		}
	}
	var r rxStats
	feed(&r, 7, seqs, nil)
	st := r.stats()
	if st.Received != 476 || st.Expected != 501 || st.Lost != 25 {
		t.Fatalf("stats %+v, want 476 received of 501 expected, 25 lost", st)
	}
	if got := st.LossRatio(); got < 0.0498 || got > 0.0500 {
		t.Errorf("loss ratio %.4f, want 25/501", got)
	}
	b, ok := r.report(0)
	if !ok || b.totalLost != 25 || b.lastSeq != 65500+501 || b.ssrc != 7 {
		t.Errorf("report %+v", b)
	}
	// 25/501 of 256, truncated (A.3).
	if b.fractionLost != 12 {
		t.Errorf("fraction lost %d/256, want 12", b.fractionLost)
	}
	// The next interval has nothing new: nothing lost in it.
	if b, _ := r.report(0); b.fractionLost != 0 || b.totalLost != 25 {
		t.Errorf("second report %+v", b)
	}
}

func TestRxStatsDuplicatesAndReorder(t *testing.T) {
	var r rxStats
	feed(&r, 1, []uint16{10, 11, 13, 12, 14, 14, 15}, nil)
	st := r.stats()
	// 10..15 expected; 7 received with one duplicate: lost is −1.
	if st.Expected != 6 || st.Received != 7 || st.Lost != -1 || st.LossRatio() != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestRxStatsNewSource(t *testing.T) {
	// The peer changes SSRC (a re-INVITE to another media server): the
	// counts of both sources add up.
	var r rxStats
	feed(&r, 1, []uint16{100, 101, 103}, nil)
	feed(&r, 2, []uint16{5000, 5001, 5002, 5004}, nil)
	if st := r.stats(); st.Expected != 9 || st.Received != 7 || st.Lost != 2 {
		t.Errorf("stats %+v, want 7 of 9", st)
	}
}

func TestRxStatsRestart(t *testing.T) {
	// A jump beyond maxDropout is taken for a restart once the next
	// packet follows it (A.1): the counts start again from that packet,
	// and the lone packet of the jump counts neither way.
	var r rxStats
	feed(&r, 1, []uint16{100, 101, 102, 20000, 20001, 20002}, nil)
	if st := r.stats(); st.Expected != 5 || st.Received != 5 {
		t.Errorf("stats %+v, want 5 of 5: 3 before the jump, 2 after it", st)
	}
}

func TestRxStatsJitter(t *testing.T) {
	// Arrivals alternately 10 ms early and on time: |D| is 80 timestamp
	// units on every packet, and J converges to 80 units, 10 ms.
	seqs := make([]uint16, 400)
	for i := range seqs {
		seqs[i] = uint16(i)
	}
	var r rxStats
	feed(&r, 1, seqs, func(i int) int64 {
		at := int64(i) * int64(FrameDuration)
		if i%2 == 1 {
			at -= int64(10 * time.Millisecond)
		}
		return at
	})
	if j := r.stats().Jitter; j < 9*time.Millisecond || j > 10*time.Millisecond {
		t.Errorf("jitter %s, want about 10ms", j)
	}
	// A steady stream has none.
	var steady rxStats
	feed(&steady, 1, seqs, nil)
	if j := steady.stats().Jitter; j != 0 {
		t.Errorf("steady jitter %s", j)
	}
}
