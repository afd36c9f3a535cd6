package ivr_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/caller"
	"github.com/hotline12345/hotline/calllog"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/ivr/ivrtest"
	"github.com/hotline12345/hotline/prompts"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// memRecords keeps records in memory; it fails the first failures saves.
type memRecords struct {
	mu       sync.Mutex
	failures int
	saved    map[string]calllog.Record
	attempts int
}

func (m *memRecords) Save(ctx context.Context, r calllog.Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.attempts++
	if m.failures > 0 {
		m.failures--
		return errors.New("store down")
	}
	if m.saved == nil {
		m.saved = map[string]calllog.Record{}
	}
	m.saved[r.Caller] = r
	return nil
}

// appeals records appeals in memory; Create panics for one caller and fails
// the first failures calls. With journaled set, appeals come back as kept
// in the journal; with untold as well, without a number.
type appeals struct {
	mu                sync.Mutex
	panicFor          string
	failures          int
	calls             atomic.Int64
	journaled, untold bool
}

func (a *appeals) Create(ctx context.Context, n appeal.New) (appeal.Appeal, error) {
	a.calls.Add(1)
	if n.Caller == a.panicFor {
		panic("store exploded")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.failures > 0 {
		a.failures--
		return appeal.Appeal{}, errors.New("store down")
	}
	out := appeal.Appeal{ID: "2611270001", CallID: n.CallID, Category: n.Category, Consent: n.Consent, Journaled: a.journaled}
	if a.untold {
		out.ID, out.NumberUntold = "", true
	}
	return out, nil
}

// redisAway is Redis as a runner sees it: away for good (outage), or
// away, past a short break, once intake is over (lost).
type redisAway struct{ outage, lost bool }

func (r redisAway) Outage() bool                 { return r.outage }
func (r redisAway) RideOut(context.Context) bool { return !r.lost && !r.outage }

// citizens is a Runner with the parts of a citizen's call, composed into
// its flow when a call comes: intake alone, or with a Service, on to an
// agent.
type citizens struct {
	*ivr.Runner
	Intake  *ivr.Intake
	Service *ivr.Service
	Redis   ivr.Outage
}

// Serve runs the citizen's flow on call.
func (r *citizens) Serve(ctx context.Context, call ivr.Call) {
	flow := ivr.TakeAppeal(r.Intake, r.Redis)
	if r.Service != nil {
		flow = ivr.TakeToAgent(r.Intake, r.Service, r.Redis)
	}
	r.Runner.Serve(ctx, call, flow)
}

func newRunner(t *testing.T, rec ivr.CallRecorder, ap ivr.AppealRecorder) *citizens {
	catalog, err := prompts.Default()
	if err != nil {
		t.Fatal(err)
	}
	return &citizens{
		Runner: &ivr.Runner{Catalog: catalog, Records: rec, Lang: prompts.Mandarin, Backend: "fake", Log: zerolog.Nop(), Metrics: ivr.NewMetrics(nil)},
		Intake: &ivr.Intake{Appeals: ap, Options: ivr.IntakeOptions{FirstDigitTimeout: 50 * time.Millisecond, Tries: 3, AppealRetry: 2 * time.Second}},
	}
}

func call(t *testing.T, r *citizens, who string) caller.Transcript {
	catalog, _ := prompts.Default()
	c := ivrtest.NewFakeCall(catalog, who, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Serve(context.Background(), c)
	}()
	tr := c.PlayScript(ivr.DTMFRFC4733, caller.Script{{On: prompts.CategoryMenu, Press: "1"}, {On: prompts.ConsentMenu, Press: "1"}})
	<-done
	return tr
}

// TestPanicEndsOnlyThatCall: a panic inside one call's flow ends that call
// with cause error; a call beside it is not disturbed.
func TestPanicEndsOnlyThatCall(t *testing.T) {
	rec := &memRecords{}
	r := newRunner(t, rec, &appeals{panicFor: "bad"})
	var wg sync.WaitGroup
	for _, who := range []string{"bad", "good"} {
		wg.Go(func() { call(t, r, who) })
	}
	wg.Wait()
	if got := rec.saved["bad"]; got.EndCause != calllog.Error || got.Stage != ivr.StageAppeal {
		t.Errorf("panicking call ended %s in %s, want error in appeal", got.EndCause, got.Stage)
	}
	if got := rec.saved["good"]; got.EndCause != calllog.FlowFinished || got.AppealID == "" {
		t.Errorf("other call ended %s with appeal %q, want flow_finished with an appeal", got.EndCause, got.AppealID)
	}
}

// TestAppealRetried: while the store fails, recording the appeal is retried
// and the caller still hears the number.
func TestAppealRetried(t *testing.T) {
	rec := &memRecords{}
	ap := &appeals{failures: 3}
	r := newRunner(t, rec, ap)
	tr := call(t, r, "13900000001")
	if got := rec.saved["13900000001"]; got.EndCause != calllog.FlowFinished || got.AppealID == "" {
		t.Errorf("call ended %s (%s) with appeal %q", got.EndCause, got.EndDetail, got.AppealID)
	}
	if n := ap.calls.Load(); n != 4 {
		t.Errorf("Create called %d times, want 4 (3 failures, then success)", n)
	}
	if ids := tr.HeardIDs(); len(ids) < 2 || ids[len(ids)-1] != prompts.Goodbye {
		t.Errorf("heard %v, want the readout and goodbye", ids)
	}
}

// A call that starts while Redis does not answer hears that it will be
// called back, and nothing else; its record says so, and no appeal is
// taken.
func TestOutageCallBack(t *testing.T) {
	rec := &memRecords{}
	ap := &appeals{}
	r := newRunner(t, rec, ap)
	r.Redis = redisAway{outage: true}
	tr := call(t, r, "13900000003")
	if got := tr.HeardIDs(); !slices.Equal(got, []prompts.ID{prompts.OutageCallback}) {
		t.Errorf("heard %v, want only %s", got, prompts.OutageCallback)
	}
	got := rec.saved["13900000003"]
	if !got.Callback || got.Stage != ivr.StageOutage || got.EndCause != calllog.FlowFinished || got.AnsweredAt == nil {
		t.Errorf("record: callback %v, stage %q, cause %s; want a call-back, in outage, finished", got.Callback, got.Stage, got.EndCause)
	}
	if n := ap.calls.Load(); n != 0 {
		t.Errorf("%d appeals taken, want none", n)
	}
}

// An appeal recorded without a number: the caller hears an apology and
// that they will be called back with it, not a number.
func TestAppealNumberUntold(t *testing.T) {
	rec := &memRecords{}
	r := newRunner(t, rec, &appeals{journaled: true, untold: true})
	tr := call(t, r, "13900000004")
	ids := tr.HeardIDs()
	if slices.Contains(ids, prompts.AppealNumber) || !slices.Contains(ids, prompts.AppealNumberLater) || ids[len(ids)-1] != prompts.Goodbye {
		t.Errorf("heard %v, want %s and goodbye, no number", ids, prompts.AppealNumberLater)
	}
	if got := rec.saved["13900000004"]; got.EndCause != calllog.FlowFinished || got.AppealID != "" {
		t.Errorf("record ended %s with appeal %q", got.EndCause, got.AppealID)
	}
}

func TestEndCause(t *testing.T) {
	for _, tc := range []struct {
		call, flow error
		want       calllog.EndCause
	}{
		{ivr.ErrCallerHangup, nil, calllog.CallerHangup},
		{fmt.Errorf("wrapped: %w", ivr.ErrCallerHangup), errors.New("play failed"), calllog.CallerHangup},
		{fmt.Errorf("%w for 30s", ivr.ErrMediaTimeout), nil, calllog.MediaTimeout},
		{ivr.ErrShutdown, nil, calllog.Shutdown},
		{ivr.ErrNoAck, fmt.Errorf("answer: %w", ivr.ErrNoAck), calllog.NoAck},
		{ivr.ErrHangup, nil, calllog.FlowFinished},
		{ivr.ErrHangup, errors.New("record appeal: down"), calllog.Error},
		// The flow learnt of the caller's hang-up before the backend's
		// cause was set, and hung up itself.
		{ivr.ErrHangup, fmt.Errorf("answer: %w", ivr.ErrCallerHangup), calllog.CallerHangup},
		{errors.New("transport failed"), nil, calllog.Error},
		{nil, nil, calllog.FlowFinished},
	} {
		if got, _ := ivr.EndCause(tc.call, tc.flow); got != tc.want {
			t.Errorf("EndCause(%v, %v) = %s, want %s", tc.call, tc.flow, got, tc.want)
		}
	}
}
