package asterisk_test

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/caller"
	"github.com/hotline12345/hotline/internal/asterisktest"
	"github.com/hotline12345/hotline/internal/sipptest"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/ivr/ivrtest"
	"github.com/hotline12345/hotline/media"
	"github.com/hotline12345/hotline/prompts"
)

// TestCallQualityOnAsterisk: sipp callers send a real Asterisk 22 6 s of
// RTP from a capture with every 20th packet dropped and every other
// packet 8 ms late, and the call goes on for 12.5 s; one caller hangs up
// (BYE), the other's flow does (DELETE). Each record's quality, from the
// RTPAUDIOQOS Asterisk leaves on the channel, has every packet that came,
// the loss as it was and the jitter the capture has; sipp sends no RTCP,
// so there is no remote view and no round trip. A third caller, the test
// caller (diago's media), sends RTCP: its record has the far end's view
// and the round trip too.
//
// Asterisk counts losses (lp) only at its own RTCP reports, every 5 s
// (rtp.conf's default rtcpinterval): the calls last past a report after
// the audio, as a call longer than a few seconds does, so that lp holds
// every loss.
func TestCallQualityOnAsterisk(t *testing.T) {
	t.Parallel()
	const packets = 301 // the last is not dropped, so every loss is seen
	dropped := func(i int) bool { return i%20 == 0 }
	lost := 0
	for i := 1; i <= packets; i++ {
		if dropped(i) {
			lost++
		}
	}
	const late = 8 * time.Millisecond
	capture := filepath.Join(t.TempDir(), "lossy.pcap")
	rtp := sipptest.RTPCaptureLate(packets, 0, 4000, dropped, func(i int) time.Duration {
		if i%2 == 0 {
			return late
		}
		return 0
	})
	if err := os.WriteFile(capture, rtp, 0o644); err != nil {
		t.Fatal(err)
	}
	const callLength = 12500 * time.Millisecond

	a := asterisktest.Start(t, asterisktest.Options{Trunk: "127.0.0.1"})
	catalog, err := prompts.Default()
	if err != nil {
		t.Fatal(err)
	}
	watch := &ivrtest.RecordWatch{}
	runner := &ivr.Runner{
		Catalog: catalog, Records: watch, Lang: prompts.Mandarin, Backend: "asterisk",
		Log: zerolog.New(zerolog.NewTestWriter(t)), Metrics: ivr.NewMetrics(nil),
	}
	const byer, kept, reporter = "13800000601", "13800000602", "13800000603"
	// The flow answers and greets the caller (Asterisk's RTP), then waits:
	// for the caller's BYE, or for the end of the call it gives.
	flow := func(ctx context.Context, s *ivr.Session) error {
		if err := s.Call.Answer(ctx); err != nil {
			return err
		}
		if err := s.Play(ctx, prompts.Greeting); err != nil {
			return err
		}
		var end <-chan time.Time
		if who := s.Call.Caller(); who == kept+"1" || who == reporter {
			end = time.After(callLength)
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-end:
			return nil
		}
	}
	runBackendAt(t, a.ARI, asterisktest.Username, asterisktest.Password, func(ctx context.Context, call ivr.Call) {
		runner.Serve(ctx, call, flow)
	})

	t.Run("caller sends RTCP", func(t *testing.T) {
		t.Parallel()
		_, err := caller.Call(t.Context(), caller.Options{
			Target: "sip:12345@" + a.SIP.String(), LocalIP: "127.0.0.1", From: reporter, Catalog: catalog,
			Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
		})
		if err != nil && !errors.Is(err, caller.ErrCallEnded) {
			t.Fatalf("call: %v", err)
		}
		rec := watch.Final(t, reporter)
		q := rec.Quality
		if q == nil {
			t.Fatalf("record ended %s (%s) without quality", rec.EndCause, rec.EndDetail)
		}
		if q.RTTMS == nil || q.RemoteLossRatio == nil || q.RemoteJitterMS == nil {
			t.Fatalf("quality %+v without the far end's view (rtt %v, remote loss %v, jitter %v)", *q, q.RTTMS, q.RemoteLossRatio, q.RemoteJitterMS)
		}
		t.Logf("quality %+v; rtt %.3f ms, remote loss %.4f, jitter %.3f ms", *q, *q.RTTMS, *q.RemoteLossRatio, *q.RemoteJitterMS)
		// Loopback: all but nothing lost either way, a round trip well
		// under a second.
		if q.PacketsReceived == 0 || q.LossRatio > 0.01 || *q.RemoteLossRatio > 0.01 || *q.RTTMS <= 0 || *q.RTTMS > 1000 {
			t.Errorf("quality %+v; rtt %.3f ms, remote loss %.4f", *q, *q.RTTMS, *q.RemoteLossRatio)
		}
		jitter := time.Duration(max(q.JitterMS, *q.RemoteJitterMS) * float64(time.Millisecond))
		rtt := time.Duration(*q.RTTMS * float64(time.Millisecond))
		if want := media.StreamMOS(max(q.LossRatio, *q.RemoteLossRatio), jitter, rtt); math.Abs(q.MOS-want) > 1e-6 {
			t.Errorf("MOS %.3f, want %.3f", q.MOS, want)
		}
	})
	for _, tc := range []struct {
		name, who string
		hangup    bool
	}{
		{"caller hangs up", byer, true},
		{"hotline hangs up", kept, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sc := sipptest.Scenario{
				Caller:  tc.who,
				Formats: []sipptest.Format{{PT: 0, RTPMap: "PCMU/8000"}, {PT: 101, RTPMap: "telephone-event/8000"}},
				Audio:   capture,
				Hangup:  tc.hangup,
				WaitBye: 2 * callLength,
			}
			if tc.hangup {
				sc.Actions = []sipptest.Action{{Pause: callLength}}
			}
			if res := sipptest.Run(t, a.SIP, sc, sipptest.Options{}); res.Successful != 1 || res.Failed != 0 {
				t.Fatalf("sipp: %d successful, %d failed\n%s", res.Successful, res.Failed, res.Output)
			}
			rec := watch.Final(t, tc.who+"1")
			q := rec.Quality
			if q == nil {
				t.Fatalf("record ended %s (%s) without quality", rec.EndCause, rec.EndDetail)
			}
			truth := float64(lost) / packets
			t.Logf("quality %+v; truth %d of %d lost (%.4f), every other packet %s late", *q, lost, packets, truth, late)
			if q.PacketsReceived != uint64(packets-lost) || q.PacketsLost != int64(lost) || q.PacketsExpected != packets {
				t.Errorf("%d received, %d lost of %d; want %d, %d of %d", q.PacketsReceived, q.PacketsLost, q.PacketsExpected, packets-lost, lost, packets)
			}
			if math.Abs(q.LossRatio-truth) > 0.01 {
				t.Errorf("loss %.4f, want %.4f within 1%%", q.LossRatio, truth)
			}
			// |D| is 8 ms between every two packets, to which the
			// interarrival jitter converges; sipp's own timing adds a
			// little.
			if q.JitterMS < 5 || q.JitterMS > 20 {
				t.Errorf("jitter %.3f ms, want about %s", q.JitterMS, late)
			}
			if q.RTTMS != nil || q.RemoteLossRatio != nil || q.RemoteJitterMS != nil {
				t.Errorf("a remote view without RTCP from sipp: rtt %v, remote loss %v, jitter %v", q.RTTMS, q.RemoteLossRatio, q.RemoteJitterMS)
			}
			jitter := time.Duration(q.JitterMS * float64(time.Millisecond))
			if want := media.StreamMOS(q.LossRatio, jitter, 0); math.Abs(q.MOS-want) > 1e-6 || q.MOS < 3 {
				t.Errorf("MOS %.3f, want %.3f", q.MOS, want)
			}
		})
	}
}
