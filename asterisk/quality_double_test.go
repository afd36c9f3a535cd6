package asterisk_test

import (
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/hotline12345/hotline/asterisk/aritest"
	"github.com/hotline12345/hotline/calllog"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/media"
)

// callerMedia is what the double's Asterisk counts of a caller's audio:
// 4% lost, 12 ms of jitter, and the caller's RTCP report on Asterisk's
// RTP with a round trip of 60 ms.
var callerMedia = aritest.Media{
	Received: 480, Lost: 20, Jitter: 12 * time.Millisecond,
	Report: &aritest.Report{Lost: 5, Jitter: 3 * time.Millisecond, RTT: 60 * time.Millisecond},
}

// checkQuality checks a record's quality against callerMedia, with keys
// pressed (each 10 packets of RFC 4733).
func checkQuality(t *testing.T, rec calllog.Record, keys int) {
	t.Helper()
	q := rec.Quality
	if q == nil {
		t.Fatalf("record ended %s (%s) without quality", rec.EndCause, rec.EndDetail)
	}
	received := uint64(callerMedia.Received) + uint64(10*keys)
	if q.PacketsReceived != received || q.PacketsLost != 20 || q.PacketsExpected != received+20 {
		t.Errorf("packets: %d received, %d lost of %d; want %d, 20 of %d", q.PacketsReceived, q.PacketsLost, q.PacketsExpected, received, received+20)
	}
	if want := 20 / float64(received+20); math.Abs(q.LossRatio-want) > 1e-9 {
		t.Errorf("loss ratio %.5f, want %.5f", q.LossRatio, want)
	}
	if math.Abs(q.JitterMS-12) > 1e-6 {
		t.Errorf("jitter %.3f ms, want 12", q.JitterMS)
	}
	if q.RTTMS == nil || math.Abs(*q.RTTMS-60) > 1e-6 {
		t.Errorf("round trip %v, want 60 ms", q.RTTMS)
	}
	if q.RemoteJitterMS == nil || math.Abs(*q.RemoteJitterMS-3) > 1e-6 {
		t.Errorf("remote jitter %v, want 3 ms", q.RemoteJitterMS)
	}
	// Of the packets Asterisk sent, one per 20 ms since the answer.
	if q.RemoteLossRatio == nil || *q.RemoteLossRatio <= 0 || *q.RemoteLossRatio > 1 {
		t.Fatalf("remote loss ratio %v, want 5 of what Asterisk sent", q.RemoteLossRatio)
	}
	want := media.StreamMOS(max(q.LossRatio, *q.RemoteLossRatio), 12*time.Millisecond, 60*time.Millisecond)
	if math.Abs(q.MOS-want) > 1e-9 || q.MOS >= media.StreamMOS(0, 0, 0) {
		t.Errorf("MOS %.4f, want %.4f", q.MOS, want)
	}
}

// The RTP statistics Asterisk leaves on the caller's channel as it hangs
// up reach the call's record through the ivr Runner, and the quality
// histograms, whichever side hangs up; a caller that sent no RTP has no
// quality, nor has one whose statistics never arrived (the event socket
// dead as the caller hung up).
func TestCallQualityOnTheDouble(t *testing.T) {
	t.Parallel()
	srv := newDouble(t)
	h := startHotline(t, srv, func(c *config.Config) {
		// A frozen socket is given up quickly (the last case).
		c.ARI.PingInterval = config.Duration(time.Second)
		c.ARI.PingTimeout = config.Duration(500 * time.Millisecond)
	})

	// The caller hangs up (BYE) after the greeting, which Asterisk sent
	// as RTP.
	const byer = "13800000501"
	p := inbound(t, srv, byer)
	awaitNote(t, p, aritest.NotePlaybackFinished)
	p.SendMedia(callerMedia)
	p.Hangup()
	rec := h.Records.Final(t, byer)
	if rec.EndCause != calllog.CallerHangup {
		t.Errorf("ended %s, want caller_hangup", rec.EndCause)
	}
	checkQuality(t, rec, 0)

	// hotline hangs up (DELETE) at the end of the intake; the two keys
	// were RTP too.
	const intake = "13800000502"
	p = inbound(t, srv, intake)
	p.SendMedia(callerMedia)
	if tr := play(t, p, intake, intakeKeys); tr.HungUpBy != "server" {
		t.Errorf("intake call hung up by %q", tr.HungUpBy)
	}
	rec = h.Records.Final(t, intake)
	if rec.EndCause != calllog.FlowFinished {
		t.Errorf("ended %s (%s), want flow_finished", rec.EndCause, rec.EndDetail)
	}
	checkQuality(t, rec, 2)
	for _, m := range []string{"hotline_call_mos_count", "hotline_call_packet_loss_ratio_count", "hotline_call_jitter_seconds_count"} {
		if got := metric(t, h, m+`{trunk="none"}`); got != "2" {
			t.Errorf("%s %q, want the two calls", m, got)
		}
	}

	// No RTP from the caller: Asterisk's statistics count nothing.
	const silent = "13800000503"
	p = inbound(t, srv, silent)
	awaitNote(t, p, aritest.NotePlaybackStarted)
	p.Hangup()
	if rec := h.Records.Final(t, silent); rec.Quality != nil {
		t.Errorf("silent caller's quality %+v", *rec.Quality)
	}

	// The caller hangs up while hotline's socket is frozen: the hang-up's
	// events never reach it; it learns of the hang-up when it has
	// replaced the socket.
	const unseen = "13800000504"
	p = inbound(t, srv, unseen)
	awaitNote(t, p, aritest.NotePlaybackStarted)
	p.SendMedia(callerMedia)
	resume := srv.Freeze("hotline")
	defer resume()
	p.Hangup()
	rec = h.Records.Final(t, unseen)
	if rec.EndCause != calllog.CallerHangup || rec.Quality != nil {
		t.Errorf("call whose hang-up went unseen: ended %s, quality %+v", rec.EndCause, rec.Quality)
	}
	awaitHealth(t, h, http.StatusOK)
	noLeftovers(t, srv)
}
