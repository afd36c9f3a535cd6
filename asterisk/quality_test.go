package asterisk

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/hotline12345/hotline/calllog"
	"github.com/hotline12345/hotline/media"
)

// TestRTPStatsQuality reads RTPAUDIOQOS values as Asterisk 22.10.1 sent
// them (the ari-transcripts) and as it would with a far end's RTCP, and
// garbage: what parses makes the call's quality, what does not is left
// out, and without RTP from the far end there is none.
func TestRTPStatsQuality(t *testing.T) {
	ptr := func(f float64) *float64 { return &f }
	for _, tc := range []struct {
		name  string
		value string
		want  *calllog.Quality // MOS aside
		mos   float64          // want.MOS is StreamMOS of these
		loss  float64
		jit   time.Duration
		rtt   time.Duration
	}{
		{
			// inbound-app-hangup: sipp sent no RTP.
			name:  "recorded, no RTP from the caller",
			value: "ssrc=1046395289;themssrc=0;lp=0;rxjitter=0.000000;rxcount=0;txjitter=0.000000;txcount=26;rlp=0;rtt=0.000000;rxmes=0.000000;txmes=0.000000",
		},
		{
			// bridge-agent-then-rating: one key, sipp's 10-packet RFC 4733
			// capture.
			name:  "recorded, one key",
			value: "ssrc=1773929061;themssrc=235223118;lp=0;rxjitter=0.000000;rxcount=10;txjitter=0.000000;txcount=22;rlp=0;rtt=0.000000;rxmes=0.000000;txmes=0.000000",
			want:  &calllog.Quality{PacketsReceived: 10, PacketsExpected: 10},
		},
		{
			// inbound-play-dtmf-callerhangup: two keys from two captures
			// whose sequence numbers are 445 apart, which Asterisk counts
			// as lost.
			name:  "recorded, two keys",
			value: "ssrc=2095051415;themssrc=235223118;lp=440;rxjitter=0.000000;rxcount=20;txjitter=0.000000;txcount=71;rlp=0;rtt=0.000000;rxmes=0.000000;txmes=20.000000",
			want:  &calllog.Quality{PacketsReceived: 20, PacketsExpected: 460, PacketsLost: 440, LossRatio: 440.0 / 460},
			loss:  440.0 / 460,
		},
		{
			name:  "the far end reported",
			value: "ssrc=1;themssrc=2;lp=15;rxjitter=0.004000;rxcount=285;txjitter=0.012500;txcount=300;rlp=30;rtt=0.080000;rxmes=85.100000;txmes=88.200000",
			want: &calllog.Quality{
				PacketsReceived: 285, PacketsExpected: 300, PacketsLost: 15, LossRatio: 0.05, JitterMS: 12.5,
				RTTMS: ptr(80), RemoteLossRatio: ptr(0.1), RemoteJitterMS: ptr(4),
			},
			loss: 0.1, jit: 12500 * time.Microsecond, rtt: 80 * time.Millisecond,
		},
		{
			name:  "the far end's jitter is the worse",
			value: "lp=0;rxjitter=0.030000;rxcount=100;txjitter=0.002000;txcount=100;rlp=0;rtt=0.000000;rxmes=80.000000",
			want:  &calllog.Quality{PacketsReceived: 100, PacketsExpected: 100, JitterMS: 2, RemoteLossRatio: ptr(0), RemoteJitterMS: ptr(30)},
			jit:   30 * time.Millisecond,
		},
		{
			// A report counting more duplicates than losses: its 24-bit
			// field read unsigned.
			name:  "remote loss beyond what was sent",
			value: "lp=0;rxjitter=0.000000;rxcount=50;txjitter=0.000000;txcount=50;rlp=16777215;rtt=0.000000;rxmes=20.000000",
			want:  &calllog.Quality{PacketsReceived: 50, PacketsExpected: 50, RemoteLossRatio: ptr(1), RemoteJitterMS: ptr(0)},
			loss:  1,
		},
		{
			name:  "blanks, unknown fields, a field twice",
			value: " rxcount = 9 ; lp= 50 ;colour=blue; rxcount=50;;=;novalue;",
			want:  &calllog.Quality{PacketsReceived: 50, PacketsExpected: 100, PacketsLost: 50, LossRatio: 0.5},
			loss:  0.5,
		},
		{
			name:  "fields that do not parse are left out",
			value: "rxcount=100;lp=x;txjitter=-0.5;rtt=NaN;rxjitter=inf;txcount=1e400;rlp=7;rxmes=",
			// rlp alone says the far end reported; without txcount there
			// is no ratio to make of it.
			want: &calllog.Quality{PacketsReceived: 100, PacketsExpected: 100},
		},
		{name: "rxcount does not parse", value: "rxcount=ten;lp=3;txjitter=0.001000"},
		{name: "negative rxcount", value: "rxcount=-5;lp=0"},
		{name: "empty", value: ""},
		{name: "garbage", value: "\x00\xff;;==;rxcount"},
		{
			name:  "another variable's format",
			value: "minrxjitter=000.000000;maxrxjitter=000.000000;avgrxjitter=000.000000;stdevrxjitter=000.000000;mintxjitter=000.000000;maxtxjitter=000.000000;avgtxjitter=000.000000;stdevtxjitter=000.000000;",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := parseRTPStats(tc.value).quality()
			if tc.want == nil {
				if got != nil {
					t.Fatalf("quality %+v, want none", *got)
				}
				return
			}
			if got == nil {
				t.Fatalf("no quality, want %+v", *tc.want)
			}
			want := *tc.want
			want.MOS = media.StreamMOS(tc.loss, tc.jit, tc.rtt)
			if !sameQuality(*got, want) {
				t.Errorf("quality\n got %s\nwant %s", showQuality(*got), showQuality(want))
			}
		})
	}
}

func sameQuality(a, b calllog.Quality) bool {
	near := func(x, y float64) bool { return math.Abs(x-y) < 1e-9 }
	opt := func(x, y *float64) bool { return (x == nil) == (y == nil) && (x == nil || near(*x, *y)) }
	return a.PacketsReceived == b.PacketsReceived && a.PacketsExpected == b.PacketsExpected &&
		a.PacketsLost == b.PacketsLost && near(a.LossRatio, b.LossRatio) && near(a.JitterMS, b.JitterMS) &&
		opt(a.RTTMS, b.RTTMS) && opt(a.RemoteLossRatio, b.RemoteLossRatio) && opt(a.RemoteJitterMS, b.RemoteJitterMS) &&
		near(a.MOS, b.MOS)
}

func showQuality(q calllog.Quality) string {
	opt := func(f *float64) any {
		if f == nil {
			return "-"
		}
		return *f
	}
	return fmt.Sprintf("received %d of %d, lost %d (%.4f), jitter %.3f ms, rtt %v ms, remote loss %v jitter %v ms, MOS %.4f",
		q.PacketsReceived, q.PacketsExpected, q.PacketsLost, q.LossRatio, q.JitterMS,
		opt(q.RTTMS), opt(q.RemoteLossRatio), opt(q.RemoteJitterMS), q.MOS)
}
