package ivr_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/callback"
	"github.com/hotline12345/hotline/caller"
	"github.com/hotline12345/hotline/calllog"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/ivr/ivrtest"
	"github.com/hotline12345/hotline/prompts"
)

// keysOnly is a call whose backend hears keys only (as on Asterisk): the
// embedded interface hides the fake's Sounds.
type keysOnly struct{ ivr.Call }

// visitRun is one visit on a fake call, as the Runner serves it.
type visitRun struct {
	res   ivr.VisitResult
	err   error
	rec   calllog.Record
	heard []prompts.ID
}

// The appeal visited: made at 20:00 UTC on 4 March, 5 March in the
// hotline's zone (UTC+8).
var (
	hotlineZone = time.FixedZone("CST", 8*3600)
	visited     = ivr.VisitSubject{
		VisitID: "2603050001", AppealID: "2603050001", Category: appeal.Livelihood,
		Date: time.Date(2026, time.March, 4, 20, 0, 0, 0, time.UTC),
	}
)

// runVisit runs the visit on a fake call from who; before is told the
// call first (to make the far end heard), and hear decides whether the
// call hears the far end at all.
func runVisit(t *testing.T, who string, hear bool, opts ivr.VisitOptions, before func(*ivrtest.FakeCall), script caller.Script) visitRun {
	t.Helper()
	catalog, _ := prompts.Default()
	rec := &memRecords{}
	r := newRunner(t, rec, &appeals{})
	c := ivrtest.NewFakeCall(catalog, who, 100)
	if before != nil {
		before(c)
	}
	var call ivr.Call = c
	if !hear {
		call = keysOnly{c}
	}
	opts.Zone = hotlineZone
	if opts.Timeout == 0 {
		opts.Timeout = 200 * time.Millisecond
	}
	if opts.Listen == 0 {
		opts.Listen = 100 * time.Millisecond
	}
	v := &ivr.Visit{Options: opts}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var run visitRun
	flow := func(ctx context.Context, s *ivr.Session) error {
		err := v.Flow(visited, func(res ivr.VisitResult) { run.res = res })(ctx, s)
		run.err = err
		return err
	}
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		r.Runner.Serve(ctx, call, flow)
	}()
	tr := c.PlayScript(ivr.DTMFRFC4733, script)
	<-finished
	run.heard = tr.HeardIDs()
	run.rec = rec.saved[who]
	return run
}

var introHeard = []prompts.ID{prompts.VisitIntro, prompts.Month(time.March), prompts.DayOfMonth(5), prompts.VisitCategory, prompts.CategoryLivelihood}

func answering(keys ...string) caller.Script {
	on := []prompts.ID{prompts.VisitConsent, prompts.VisitResponse, prompts.VisitSolution, prompts.VisitSatisfaction}
	var s caller.Script
	for i, k := range keys {
		s = append(s, caller.Step{On: on[i], Press: k})
	}
	return s
}

// TestVisitCompleted: a person says hello, hears the introduction (the
// appeal's date in the hotline's zone and its category), agrees, and
// answers the three questions; the answers are the keys' and the visit is
// completed, thanked and ended.
func TestVisitCompleted(t *testing.T) {
	for _, tc := range []struct {
		keys []string
		want callback.Answers
	}{
		{[]string{"1", "1", "1", "1"}, callback.Answers{Response: callback.Contacted, Solution: callback.Solved, Satisfaction: callback.Satisfied}},
		{[]string{"1", "2", "2", "2"}, callback.Answers{Response: callback.NotContacted, Solution: callback.PartlySolved, Satisfaction: callback.BasicallySatisfied}},
		{[]string{"1", "1", "3", "3"}, callback.Answers{Response: callback.Contacted, Solution: callback.NotSolved, Satisfaction: callback.Dissatisfied}},
	} {
		// A long listening window: only the short "hello" ends it in time.
		got := runVisit(t, "13900000101", true, ivr.VisitOptions{Listen: time.Minute},
			func(c *ivrtest.FakeCall) { c.Hear(ivr.Sound{Kind: ivr.Voice, Length: 600 * time.Millisecond}) },
			answering(tc.keys...))
		if got.err != nil || got.res.Outcome != callback.Completed || got.res.Answers == nil || *got.res.Answers != tc.want {
			t.Fatalf("keys %v: %+v (answers %+v), %v; want completed with %+v", tc.keys, got.res, got.res.Answers, got.err, tc.want)
		}
		if err := got.res.Answers.Check(); err != nil {
			t.Error(err)
		}
		if !slices.Equal(got.heard[:len(introHeard)], introHeard) {
			t.Errorf("heard %v, want the introduction %v first", got.heard, introHeard)
		}
		if got.heard[len(got.heard)-1] != prompts.VisitThanks {
			t.Errorf("heard %v, want thanks last", got.heard)
		}
		if got.rec.EndCause != calllog.FlowFinished || got.rec.Stage != ivr.StageGoodbye || got.rec.AppealID != visited.AppealID {
			t.Errorf("record: %s in %q, appeal %q", got.rec.EndCause, got.rec.Stage, got.rec.AppealID)
		}
	}
}

// TestVisitRefused: 2 at consent is a refusal, said goodbye to; no
// question follows.
func TestVisitRefused(t *testing.T) {
	got := runVisit(t, "13900000102", true, ivr.VisitOptions{}, nil, answering("2"))
	if got.err != nil || got.res.Outcome != callback.Refused || got.res.Note != ivr.NoteDeclined || got.res.Answers != nil {
		t.Fatalf("%+v, %v; want refused", got.res, got.err)
	}
	if slices.Contains(got.heard, prompts.VisitResponse) || got.heard[len(got.heard)-1] != prompts.VisitDeclined {
		t.Errorf("heard %v, want no question and the refusal's goodbye", got.heard)
	}
}

// TestVisitSilence: nothing heard and no key, on a call that hears the far
// end and on one that hears keys only: the consent question is asked its
// tries, then no_answer at consent.
func TestVisitSilence(t *testing.T) {
	for _, hear := range []bool{true, false} {
		got := runVisit(t, "13900000103", hear, ivr.VisitOptions{}, nil, nil)
		if got.err != nil || got.res.Outcome != callback.NoAnswer || got.res.Note != "no valid key at "+ivr.StageVisitConsent {
			t.Fatalf("hears %v: %+v, %v; want no_answer at consent", hear, got.res, got.err)
		}
		if n := count(got.heard, prompts.VisitConsent); n != 3 || got.heard[len(got.heard)-1] != prompts.VisitGoodbye {
			t.Errorf("hears %v: heard %v: consent %d times, want 3 and a goodbye", hear, got.heard, n)
		}
		var listened bool
		for _, ev := range got.rec.Events {
			listened = listened || ev.Stage == ivr.StageVisitListen
		}
		if listened != hear {
			t.Errorf("hears %v: listened %v", hear, listened)
		}
	}
}

// TestVisitInvalidKeyThenValid: a key not on the menu is told so and the
// question asked again.
func TestVisitInvalidKeyThenValid(t *testing.T) {
	script := caller.Script{{On: prompts.VisitConsent, Press: "7"}, {On: prompts.VisitConsent, Press: "1"}}
	script = append(script, answering("1", "1", "2", "1")[1:]...)
	got := runVisit(t, "13900000104", false, ivr.VisitOptions{}, nil, script)
	want := callback.Answers{Response: callback.Contacted, Solution: callback.PartlySolved, Satisfaction: callback.Satisfied}
	if got.res.Outcome != callback.Completed || got.res.Answers == nil || *got.res.Answers != want {
		t.Fatalf("%+v, %v; want completed", got.res, got.err)
	}
	if !slices.Contains(got.heard, prompts.InvalidKey) {
		t.Errorf("heard %v, want the invalid-key message", got.heard)
	}
}

// TestVisitHangupMidway: a citizen who hangs up before the answers are
// complete is no_answer, at the stage where they left.
func TestVisitHangupMidway(t *testing.T) {
	script := append(answering("1", "1"), caller.Step{On: prompts.VisitSolution, BargeIn: true, Hangup: true})
	got := runVisit(t, "13900000105", true, ivr.VisitOptions{}, nil, script)
	if !errors.Is(got.err, ivr.ErrCallerHangup) || got.res.Outcome != callback.NoAnswer || got.res.Note != "hung up at "+ivr.StageVisitSolution {
		t.Fatalf("%+v, %v; want no_answer, hung up at the solution question", got.res, got.err)
	}
	if got.rec.EndCause != calllog.CallerHangup || got.rec.Stage != ivr.StageVisitSolution {
		t.Errorf("record: %s in %q", got.rec.EndCause, got.rec.Stage)
	}
}

// TestVisitHearsAMachine: a fax tone, or a greeting longer than a
// person's hello before the introduction ended, is no_answer with its
// note, and nothing is said of the appeal to it.
func TestVisitHearsAMachine(t *testing.T) {
	long := ivr.Sound{Kind: ivr.Voice, Length: 2500 * time.Millisecond}
	hello := ivr.Sound{Kind: ivr.Voice, Length: 500 * time.Millisecond}
	for name, tc := range map[string]struct {
		heard []ivr.Sound
		note  string
	}{
		"fax tone":            {[]ivr.Sound{{Kind: ivr.FaxTone, Length: 500 * time.Millisecond}}, ivr.NoteFax},
		"long greeting":       {[]ivr.Sound{long}, ivr.NoteAnsweringMachine},
		"hello, then more":    {[]ivr.Sound{hello, long}, ivr.NoteAnsweringMachine},
		"hello, then the fax": {[]ivr.Sound{hello, {Kind: ivr.FaxTone, Length: 500 * time.Millisecond}}, ivr.NoteFax},
	} {
		t.Run(name, func(t *testing.T) {
			got := runVisit(t, "13900000106", true, ivr.VisitOptions{Listen: time.Minute}, func(c *ivrtest.FakeCall) {
				for _, s := range tc.heard {
					c.Hear(s)
				}
			}, answering("1", "1", "1", "1"))
			if got.err != nil || got.res.Outcome != callback.NoAnswer || got.res.Note != tc.note {
				t.Fatalf("%+v, %v; want no_answer, %q", got.res, got.err, tc.note)
			}
			if slices.Contains(got.heard, prompts.VisitConsent) || got.rec.EndCause != calllog.FlowFinished {
				t.Errorf("heard %v, ended %s; want nothing asked and the flow finished", got.heard, got.rec.EndCause)
			}
		})
	}
}

// TestVisitHearsLater: once the introduction is over, a long voice is a
// person speaking over the questions, not a machine; a fax tone still ends
// the visit, at any question.
func TestVisitHearsLater(t *testing.T) {
	got := runVisit(t, "13900000107", true, ivr.VisitOptions{}, func(c *ivrtest.FakeCall) {
		c.HearOn(prompts.VisitConsent, ivr.Sound{Kind: ivr.Voice, Length: 4 * time.Second})
	}, answering("1", "1", "1", "1"))
	if got.err != nil || got.res.Outcome != callback.Completed {
		t.Errorf("a long voice over the consent question: %+v, %v; want completed", got.res, got.err)
	}

	got = runVisit(t, "13900000108", true, ivr.VisitOptions{}, func(c *ivrtest.FakeCall) {
		c.HearOn(prompts.VisitSolution, ivr.Sound{Kind: ivr.FaxTone, Length: 500 * time.Millisecond})
	}, caller.Script{{On: prompts.VisitConsent, Press: "1"}, {On: prompts.VisitResponse, Press: "1"}})
	if got.err != nil || got.res.Outcome != callback.NoAnswer || got.res.Note != ivr.NoteFax {
		t.Errorf("a fax tone at the second question: %+v, %v; want no_answer, fax", got.res, got.err)
	}
	if got.rec.Stage != ivr.StageVisitSolution {
		t.Errorf("record ends in %q, want %q", got.rec.Stage, ivr.StageVisitSolution)
	}
}

func count(ids []prompts.ID, id prompts.ID) int {
	var n int
	for _, x := range ids {
		if x == id {
			n++
		}
	}
	return n
}
