package sip_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/calllog"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/internal/hotlinetest"
	"github.com/hotline12345/hotline/internal/sipptest"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/media"
)

var callerSeq atomic.Int64

// newCaller returns a From-user prefix no other test uses; sipp appends
// its call number.
func newCaller() string { return fmt.Sprintf("1391%03d", callerSeq.Add(1)) }

// TestSippIntake runs intake with sipp as the citizen: RFC 2833 digits
// from sipp's own captures, typed ahead during the greeting.
func TestSippIntake(t *testing.T) {
	t.Parallel()
	h := hotlinetest.Start(t, nil)
	for _, tc := range []struct {
		name    string
		keys    string
		cat     appeal.Category
		consent bool
		digits  string
	}{
		{"emergency", "11", appeal.Emergency, true, "11"},
		{"livelihood", "22", appeal.Livelihood, false, "22"},
		{"general", "31", appeal.General, true, "31"},
		{"invalid then valid", "721", appeal.Livelihood, true, "721"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			who := newCaller()
			res := sipptest.Run(t, h.SIP, sipptest.Scenario{
				Caller:  who,
				Actions: sipptest.Keys(time.Second, 500*time.Millisecond, tc.keys),
			}, sipptest.Options{})
			if res.Successful != 1 || res.Failed != 0 {
				t.Fatalf("sipp: %s", res)
			}
			rec := h.Records.Final(t, who+"1")
			if rec.EndCause != calllog.FlowFinished || rec.Codec != "PCMU" || rec.SIPCallID == "" {
				t.Errorf("record %s %s codec %s sip call id %q", rec.EndCause, rec.EndDetail, rec.Codec, rec.SIPCallID)
			}
			a, err := h.Appeals.Get(context.Background(), rec.AppealID)
			if err != nil {
				t.Fatal(err)
			}
			if a.Category != tc.cat || a.Consent.Given != tc.consent {
				t.Errorf("appeal %s consent %v, want %s %v", a.Category, a.Consent.Given, tc.cat, tc.consent)
			}
			if got := digits(rec); got != tc.digits {
				t.Errorf("digits %q, want %q", got, tc.digits)
			}
		})
	}
}

// TestSippLateOffer: a carrier's late offer, an INVITE without SDP (the
// answer comes in the ACK), goes through intake like any call: sipp's
// keys reach the flow over the RTP our offer named, and the appeal is
// recorded.
func TestSippLateOffer(t *testing.T) {
	t.Parallel()
	h := hotlinetest.Start(t, nil)
	who := newCaller()
	res := sipptest.Run(t, h.SIP, sipptest.Scenario{
		Caller:    who,
		LateOffer: true,
		Formats:   []sipptest.Format{{PT: 8, RTPMap: "PCMA/8000"}, {PT: 101, RTPMap: "telephone-event/8000"}},
		Actions:   sipptest.Keys(time.Second, 500*time.Millisecond, "21"),
	}, sipptest.Options{})
	if res.Successful != 1 || res.Failed != 0 {
		t.Fatalf("sipp: %s", res)
	}
	rec := h.Records.Final(t, who+"1")
	if rec.EndCause != calllog.FlowFinished || rec.Codec != "PCMA" || rec.AppealID == "" {
		t.Errorf("record %s %s codec %s appeal %q", rec.EndCause, rec.EndDetail, rec.Codec, rec.AppealID)
	}
	if got := digits(rec); got != "21" {
		t.Errorf("digits %q, want 21", got)
	}
}

// TestSippSilence: a caller who presses nothing hears each question, then
// the fallbacks: a general appeal without consent.
func TestSippSilence(t *testing.T) {
	t.Parallel()
	// Each question asked once: the ivr package's tests count the tries.
	h := hotlinetest.Start(t, func(c *config.Config) {
		c.IVR.FirstDigitTimeout = config.Duration(time.Second)
		c.IVR.Tries = 1
	})
	who := newCaller()
	res := sipptest.Run(t, h.SIP, sipptest.Scenario{Caller: who}, sipptest.Options{})
	if res.Successful != 1 {
		t.Fatalf("sipp: %s", res)
	}
	rec := h.Records.Final(t, who+"1")
	a, err := h.Appeals.Get(context.Background(), rec.AppealID)
	if err != nil {
		t.Fatal(err)
	}
	if a.Category != appeal.General || a.Consent.Given || a.Consent.Key != "" {
		t.Errorf("appeal %s consent %+v, want general without consent", a.Category, a.Consent)
	}
}

// TestSippHangup: the caller hangs up during the greeting and during the
// category menu; the record says where.
func TestSippHangup(t *testing.T) {
	t.Parallel()
	h := hotlinetest.Start(t, nil)
	for _, tc := range []struct {
		after time.Duration
		stage string
	}{
		{time.Second, ivr.StageGreeting},
		{10 * time.Second, ivr.StageCategory},
	} {
		t.Run(tc.stage, func(t *testing.T) {
			t.Parallel()
			who := newCaller()
			res := sipptest.Run(t, h.SIP, sipptest.Scenario{
				Caller: who, Actions: []sipptest.Action{{Pause: tc.after}}, Hangup: true,
			}, sipptest.Options{})
			if res.Successful != 1 {
				t.Fatalf("sipp: %s", res)
			}
			rec := h.Records.Final(t, who+"1")
			if rec.EndCause != calllog.CallerHangup || rec.Stage != tc.stage || rec.AppealID != "" {
				t.Errorf("record ended %s in %s appeal %q, want caller_hangup in %s", rec.EndCause, rec.Stage, rec.AppealID, tc.stage)
			}
		})
	}
}

// TestSippNoCommonCodec: an offer of G.729 only is refused with 488.
func TestSippNoCommonCodec(t *testing.T) {
	t.Parallel()
	h := hotlinetest.Start(t, nil)
	res := sipptest.Run(t, h.SIP, sipptest.Scenario{
		Caller:  newCaller(),
		Formats: []sipptest.Format{{PT: 18, RTPMap: "G729/8000"}, {PT: 101, RTPMap: "telephone-event/8000"}},
		Expect:  488,
	}, sipptest.Options{})
	if res.Successful != 1 {
		t.Fatalf("sipp expected 488: %s", res)
	}
}

// TestSippPCMAPreferred: the caller's first supported codec wins.
func TestSippPCMAPreferred(t *testing.T) {
	t.Parallel()
	h := hotlinetest.Start(t, nil)
	who := newCaller()
	res := sipptest.Run(t, h.SIP, sipptest.Scenario{
		Caller: who,
		Formats: []sipptest.Format{
			{PT: 18, RTPMap: "G729/8000"}, {PT: 8, RTPMap: "PCMA/8000"}, {PT: 0, RTPMap: "PCMU/8000"},
			{PT: 101, RTPMap: "telephone-event/8000"},
		},
		Actions: []sipptest.Action{{Pause: time.Second}}, Hangup: true,
	}, sipptest.Options{Transport: "t1"})
	if res.Successful != 1 {
		t.Fatalf("sipp: %s", res)
	}
	if rec := h.Records.Final(t, who+"1"); rec.Codec != "PCMA" {
		t.Errorf("codec %s, want PCMA, the caller's first supported", rec.Codec)
	}
}

// TestSippHundredCalls runs 100 simultaneous intake calls: none may fail.
func TestSippHundredCalls(t *testing.T) {
	t.Parallel()
	h := hotlinetest.Start(t, nil)
	who := newCaller()
	res := sipptest.Run(t, h.SIP, sipptest.Scenario{
		Caller:  who,
		Actions: sipptest.Keys(time.Second, 500*time.Millisecond, "21"),
	}, sipptest.Options{Calls: 100, Concurrent: 100, Rate: 100})
	if res.Successful != 100 || res.Failed != 0 {
		t.Fatalf("sipp: %s", res)
	}
	for i := 1; i <= 100; i++ {
		rec := h.Records.Final(t, fmt.Sprintf("%s%d", who, i))
		if rec.EndCause != calllog.FlowFinished || rec.AppealID == "" || digits(rec) != "21" {
			t.Errorf("call %d: %s %s appeal %q digits %q", i, rec.EndCause, rec.EndDetail, rec.AppealID, digits(rec))
		}
	}
}

func digits(rec calllog.Record) string {
	var s string
	for _, ev := range rec.Events {
		if ev.Kind == "digit" {
			s += ev.Digit
		}
	}
	return s
}

// TestSippCallQuality: sipp plays the caller's RTP from a capture with
// every 20th packet dropped: the record's quality has the loss within a
// percent of the truth and every packet that came.
func TestSippCallQuality(t *testing.T) {
	t.Parallel()
	h := hotlinetest.Start(t, func(c *config.Config) { c.IVR.FirstDigitTimeout = config.Duration(time.Minute) })
	const packets = 301 // the last is not dropped, so every loss is seen
	dropped := func(i int) bool { return i%20 == 0 }
	lost := 0
	for i := 1; i <= packets; i++ {
		if dropped(i) {
			lost++
		}
	}
	capture := filepath.Join(t.TempDir(), "lossy.pcap")
	if err := os.WriteFile(capture, sipptest.RTPCapture(packets, 8, 4000, dropped), 0o644); err != nil {
		t.Fatal(err)
	}
	who := newCaller()
	res := sipptest.Run(t, h.SIP, sipptest.Scenario{
		Caller:  who,
		Formats: []sipptest.Format{{PT: 8, RTPMap: "PCMA/8000"}, {PT: 101, RTPMap: "telephone-event/8000"}},
		Audio:   capture,
		// The capture lasts 6 s; the BYE follows it.
		Actions: []sipptest.Action{{Pause: 7 * time.Second}},
		Hangup:  true,
	}, sipptest.Options{})
	if res.Successful != 1 || res.Failed != 0 {
		t.Fatalf("sipp: %s", res)
	}
	rec := h.Records.Final(t, who+"1")
	q := rec.Quality
	if q == nil {
		t.Fatalf("record %s %s has no quality", rec.EndCause, rec.EndDetail)
	}
	truth := float64(lost) / packets
	t.Logf("quality %+v; truth %d of %d lost (%.4f)", *q, lost, packets, truth)
	if math.Abs(q.LossRatio-truth) > 0.01 || q.PacketsLost != int64(lost) {
		t.Errorf("loss %.4f (%d packets), want %.4f (%d) within 1%%", q.LossRatio, q.PacketsLost, truth, lost)
	}
	if q.PacketsReceived != uint64(packets-lost) || q.PacketsExpected != packets {
		t.Errorf("%d of %d packets received, want %d of %d", q.PacketsReceived, q.PacketsExpected, packets-lost, packets)
	}
	if want := media.EstimateMOS(truth, 0); q.MOS > want+0.01 || q.MOS < 3 {
		t.Errorf("MOS %.2f, want at most %.2f (the loss alone)", q.MOS, want)
	}
}
