package app_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/callback"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/internal/hotlinetest"
	"github.com/hotline12345/hotline/internal/sipptest"
	"github.com/hotline12345/hotline/internal/testclock"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/web"
)

// visitRig is a hotline on a test clock whose livelihood visits are
// automated, with one trunk to a citizen's phone (sipp) that answers and
// presses key over and over, and the water bureau as an organizer.
type visitRig struct {
	h       *hotlinetest.Hotline
	clock   *testclock.Clock
	visits  *callback.Store
	citizen *sipptest.UAS
}

func startVisitRig(t *testing.T, key rune) *visitRig {
	t.Helper()
	loc := appeal.DefaultLocation()
	r := &visitRig{clock: testclock.New(time.Date(2026, 12, 1, 10, 0, 0, 0, loc))}
	// The trunk's probe (an OPTIONS at start) is a call to sipp as well,
	// one it does not take.
	r.citizen = sipptest.Serve(t, sipptest.PressingXML(key, 14, 1500*time.Millisecond), 10)
	r.h = hotlinetest.StartWith(t, hotlinetest.Options{Now: r.clock.Now, Tune: func(c *config.Config) {
		c.IVR.FirstDigitTimeout = config.Duration(5 * time.Second)
		c.Callback.Mode.Livelihood = "ivr"
		c.Callback.IVRCalls = 1
		c.Trunks = []config.Trunk{{Name: "carrier", Host: r.citizen.Addr.Addr().String(), Port: int(r.citizen.Addr.Port()), Transport: "udp",
			CallerID: "12345", Channels: 2, Endpoint: "carrier",
			Probe: config.TrunkProbe{Interval: config.Duration(time.Hour), Timeout: config.Duration(time.Second), DownAfter: 3, UpAfter: 1}}}
	}})
	r.visits = callback.NewStore(r.h.Client, callback.StoreOptions{})
	if err := r.h.Appeals.PutOrganizer(t.Context(), appeal.Organizer{ID: "water", Name: "Water bureau", Kind: appeal.Utility, District: "chaoyang"}); err != nil {
		t.Fatal(err)
	}
	return r
}

// expire moves the test clock past the appeal's processing time, into a
// calling window.
func (r *visitRig) expire(a appeal.Appeal) {
	r.clock.Set(callback.DefaultWindows(appeal.DefaultLocation()).Next(a.FeedbackDue.Add(time.Minute)))
}

// until waits for the visit to be in a state other than waiting.
func (r *visitRig) ended(t *testing.T, id string) callback.Visit {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		v, err := r.visits.Get(t.Context(), id)
		if err == nil && v.State != callback.Waiting {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("visit %s: %+v %v, not ended in 60 s\ncitizen:\n%s", id, v, err, r.citizen.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestAutomatedVisit: an appeal whose processing time expires on the
// test clock gets its visit, which hotline makes itself: it calls the
// citizen through the trunk, presenting the hotline's number, and the
// citizen (sipp) presses 1 to take the survey and 1 to each question;
// the attempt is recorded completed with the three answers, and the
// water bureau's rates are 1/1.
func TestAutomatedVisit(t *testing.T) {
	t.Parallel()
	r := startVisitRig(t, '1')
	a := r.h.FedBack(t, "auto-visit-1", "13900000071", appeal.Livelihood, "water")
	r.expire(a)
	v := r.ended(t, a.ID)
	last := v.Attempts[len(v.Attempts)-1]
	want := callback.Answers{Response: callback.Contacted, Solution: callback.Solved, Satisfaction: callback.Satisfied}
	if v.State != callback.Done || v.Mode != callback.ByIVR || last.Answers == nil || *last.Answers != want {
		t.Fatalf("visit %+v, last attempt %+v", v, last)
	}
	rec := r.h.Records.Final(t, "13900000071")
	if rec.Dialled != "13900000071" || rec.AppealID != a.ID || rec.Stage != ivr.StageGoodbye {
		t.Errorf("the visit's call: dialled %q for %q, ended in %q", rec.Dialled, rec.AppealID, rec.Stage)
	}
	var rates web.RatesReply
	day := r.clock.Now().In(appeal.DefaultLocation()).Format("2006-01-02")
	if err := r.h.APIClient(t, auth.Supervisor).Do(context.Background(), http.MethodGet, "/api/v1/rates?by=organizer&day="+day, nil, &rates); err != nil {
		t.Fatal(err)
	}
	if len(rates.Items) != 1 || rates.Items[0].Group != "water" || rates.Items[0].Response.Numerator != 1 || rates.Items[0].Response.Denominator != 1 ||
		rates.Items[0].Solution.Numerator != 1 || rates.Items[0].Satisfaction.Numerator != 1 {
		t.Errorf("rates %+v", rates)
	}
}

// TestAutomatedVisitDeclined: the citizen presses 2 at the consent
// question: the visit is refused, final, the number goes on the
// do-not-call list, and the citizen's next appeal gets no visit: the
// phone is never called again.
func TestAutomatedVisitDeclined(t *testing.T) {
	t.Parallel()
	r := startVisitRig(t, '2')
	a := r.h.FedBack(t, "auto-visit-2", "13900000072", appeal.Livelihood, "water")
	r.expire(a)
	v := r.ended(t, a.ID)
	if v.State != callback.Withdrawn || v.Attempts[0].Note != ivr.NoteDeclined {
		t.Fatalf("visit %+v", v)
	}
	if dnc, err := r.visits.OnDoNotCall(t.Context(), "13900000072"); err != nil || !dnc {
		t.Errorf("on the do-not-call list: %v %v", dnc, err)
	}
	b := r.h.FedBack(t, "auto-visit-3", "13900000072", appeal.Livelihood, "water")
	r.expire(b)
	deadline := time.Now().Add(30 * time.Second)
	for {
		d, err := r.visits.Decision(t.Context(), b.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d != "" {
			if d != callback.SkipDoNotCall {
				t.Errorf("the next appeal's decision: %q", d)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the next appeal was not decided")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if v, err := r.visits.Get(t.Context(), a.ID); err != nil || len(v.Attempts) != 1 {
		t.Errorf("the declined visit after the next appeal: %+v %v", v, err)
	}
	if _, err := r.visits.Get(t.Context(), b.ID); err == nil {
		t.Error("the next appeal has a visit")
	}
}
