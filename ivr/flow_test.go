package ivr_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/caller"
	"github.com/hotline12345/hotline/calllog"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/ivr/ivrtest"
	"github.com/hotline12345/hotline/prompts"
)

// TestAnyFlowRuns: the Runner runs a flow made of steps it knows nothing
// of and keeps its record; a step that ends the flow early (ErrFlowDone)
// stops the enclosing sequences too, and the call still ends well.
func TestAnyFlowRuns(t *testing.T) {
	rec := &memRecords{}
	r := newRunner(t, rec, &appeals{})
	var ran []string
	step := func(name string) ivr.Flow {
		return func(ctx context.Context, s *ivr.Session) error {
			ran = append(ran, name)
			s.Stage(name)
			return nil
		}
	}
	done := func(ctx context.Context, s *ivr.Session) error {
		s.Record.Callback = true
		return ivr.ErrFlowDone
	}
	flow := ivr.Sequence(ivr.AnswerCall, step("one"), ivr.Sequence(step("two"), done, step("never")), step("nor this"), ivr.Goodbye)

	catalog, _ := prompts.Default()
	c := ivrtest.NewFakeCall(catalog, "13900000021", 100)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		r.Runner.Serve(context.Background(), c, flow)
	}()
	tr := c.PlayScript(ivr.DTMFRFC4733, caller.Script{})
	<-finished
	if !slices.Equal(ran, []string{"one", "two"}) {
		t.Errorf("steps run %q, want one and two", ran)
	}
	got := rec.saved["13900000021"]
	if got.EndCause != calllog.FlowFinished || got.Stage != "two" || !got.Callback || got.AnsweredAt == nil {
		t.Errorf("record: cause %s, stage %q, callback %v, answered %v", got.EndCause, got.Stage, got.Callback, got.AnsweredAt)
	}
	if len(tr.HeardIDs()) != 0 {
		t.Errorf("heard %v after the flow was done", tr.HeardIDs())
	}

	// A step's error ends the call as the flow's error.
	failing := ivr.Sequence(ivr.AnswerCall, func(context.Context, *ivr.Session) error { return errors.New("no such thing") }, ivr.Goodbye)
	c = ivrtest.NewFakeCall(catalog, "13900000022", 100)
	finished = make(chan struct{})
	go func() {
		defer close(finished)
		r.Runner.Serve(context.Background(), c, failing)
	}()
	c.PlayScript(ivr.DTMFRFC4733, caller.Script{})
	<-finished
	if got := rec.saved["13900000022"]; got.EndCause != calllog.Error || got.EndDetail != "no such thing" {
		t.Errorf("failing flow: %s %q", got.EndCause, got.EndDetail)
	}
}

// recordedAppeal keeps the New an appeal was recorded from.
type recordedAppeal struct {
	appeals
	got chan appeal.New
}

func (a *recordedAppeal) Create(ctx context.Context, n appeal.New) (appeal.Appeal, error) {
	a.got <- n
	return a.appeals.Create(ctx, n)
}

// TestProbesAndTheProbeFlow: a call is a probe's when it says so or its
// caller is listed; the probe's flow runs intake, marks the record and
// the appeal synthetic, and says goodbye.
func TestProbesAndTheProbeFlow(t *testing.T) {
	catalog, _ := prompts.Default()
	p := ivr.Probes{Callers: []string{"13900000031"}}
	if !p.Is(ivrtest.NewFakeCall(catalog, "13900000031", 100)) || p.Is(ivrtest.NewFakeCall(catalog, "13900000032", 100)) {
		t.Error("Probes.Is does not go by the caller number")
	}
	if !p.Is(saysSynthetic{ivrtest.NewFakeCall(catalog, "13900000033", 100)}) {
		t.Error("Probes.Is does not take the call's word (Synthetic)")
	}

	rec := &memRecords{}
	ap := &recordedAppeal{got: make(chan appeal.New, 1)}
	r := newRunner(t, rec, ap)
	c := ivrtest.NewFakeCall(catalog, "13900000031", 100)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		r.Runner.Serve(context.Background(), c, ivr.TakeProbe(r.Intake, nil))
	}()
	tr := c.PlayScript(ivr.DTMFRFC4733, caller.Script{{On: prompts.CategoryMenu, Press: "1"}, {On: prompts.ConsentMenu, Press: "1"}})
	<-finished
	if n := <-ap.got; !n.Synthetic {
		t.Errorf("appeal recorded from %+v, want Synthetic", n)
	}
	got := rec.saved["13900000031"]
	if !got.Synthetic || got.EndCause != calllog.FlowFinished || got.Stage != ivr.StageGoodbye || got.QueuedAt != nil || got.Rating != "" {
		t.Errorf("record: synthetic %v, cause %s, stage %q, queued %v, rating %q", got.Synthetic, got.EndCause, got.Stage, got.QueuedAt, got.Rating)
	}
	if h := tr.HeardIDs(); len(h) == 0 || h[len(h)-1] != prompts.Goodbye {
		t.Errorf("heard %v, want intake and goodbye", h)
	}
}

type saysSynthetic struct{ *ivrtest.FakeCall }

func (saysSynthetic) Synthetic() bool { return true }
