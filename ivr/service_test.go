package ivr_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/callback"
	"github.com/hotline12345/hotline/caller"
	"github.com/hotline12345/hotline/calllog"
	"github.com/hotline12345/hotline/evaluation"
	"github.com/hotline12345/hotline/internal/redistest"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/ivr/ivrtest"
	"github.com/hotline12345/hotline/prompts"
)

// agents is a Connector whose agents behave as told: "answer" (then hang
// up as soon as the bridge starts), "ringout", "reject".
type agents struct {
	catalog  *prompts.Catalog
	behave   map[string]string
	mu       sync.Mutex
	dialled  []string
	callers  []string
	bridged  chan struct{}
	hangupBy string // "agent" ends the bridge from the agent's side at once
}

func (a *agents) Dial(ctx context.Context, to ivr.Destination, opts ivr.DialOptions) (ivr.Call, error) {
	t := to.(ivr.Agent)
	a.mu.Lock()
	a.dialled = append(a.dialled, t.AgentID)
	a.callers = append(a.callers, opts.Parent.Caller())
	a.mu.Unlock()
	switch a.behave[t.AgentID] {
	case "answer":
		return ivrtest.NewFakeCall(a.catalog, t.SIPUser, 100), nil
	case "reject":
		return nil, ivr.ErrRejected
	}
	return nil, ivr.ErrRangOut
}

func (a *agents) Bridge(ctx context.Context, call, agent ivr.Call) (ivr.BridgeEnd, error) {
	if a.bridged != nil {
		close(a.bridged)
	}
	if a.hangupBy == "agent" {
		_ = agent.Hangup(ctx)
		return ivr.AgentHungUp, nil
	}
	select {
	case <-call.Done():
		_ = agent.Hangup(ctx)
		return ivr.CallerHungUp, nil
	case <-agent.Done():
		return ivr.AgentHungUp, nil
	}
}

type serviceRig struct {
	t       *testing.T
	runner  *citizens
	rec     *memRecords
	acd     *acd.Store
	ratings *evaluation.Store
	visits  *callback.Store
	conn    *agents
}

func newServiceRig(t *testing.T, behave map[string]string) *serviceRig {
	t.Helper()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	catalog, err := prompts.Default()
	if err != nil {
		t.Fatal(err)
	}
	store := acd.NewStore(rdb, acd.StoreOptions{})
	d := &acd.Distributor{Store: store, Node: "n1", Interval: 20 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = d.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	for _, id := range []string{"a1", "a2"} {
		if _, err := store.Create(t.Context(), acd.AgentSpec{ID: id, SIPUser: "u" + id, Password: "password-" + id, Categories: acd.Categories}); err != nil {
			t.Fatal(err)
		}
		if _, err := store.Registered(t.Context(), id); err != nil {
			t.Fatal(err)
		}
	}
	rig := &serviceRig{t: t, rec: &memRecords{}, acd: store, ratings: evaluation.NewStore(rdb, evaluation.StoreOptions{}),
		conn: &agents{catalog: catalog, behave: behave, hangupBy: "agent"}}
	rig.runner = newRunner(t, rig.rec, &appeals{})
	rig.visits = callback.NewStore(rdb, callback.StoreOptions{})
	rig.runner.Service = &ivr.Service{Queue: d, Dialer: rig.conn, Bridger: rig.conn, Ratings: rig.ratings, Served: rig.ratings, Metrics: rig.runner.Metrics, Options: ivr.ServiceOptions{
		Rating: ivr.RatingOptions{Timeout: 50 * time.Millisecond},
	}, CallBacks: ivr.CallBackFunc(func(ctx context.Context, req ivr.CallBackRequest) error {
		_, err := rig.visits.QueueCallback(ctx, req.CallID, req.AppealID, req.Category)
		return err
	})}
	return rig
}

// waitQueued waits until n calls are in the queue.
func (r *serviceRig) waitQueued(n int) {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		q, err := r.acd.Queue(r.t.Context())
		if err == nil && len(q) == n {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%d calls queued (%v), want %d", len(q), err, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waits is the queue wait histogram of the calls whose wait ended with
// outcome.
func (r *serviceRig) waits(outcome acd.Outcome) *dto.Histogram {
	r.t.Helper()
	var m dto.Metric
	if err := r.runner.Metrics.QueueWait.WithLabelValues(string(outcome)).(prometheus.Metric).Write(&m); err != nil {
		r.t.Fatal(err)
	}
	return m.GetHistogram()
}

// wantWaits checks that only the calls ending their wait with outcome were
// observed, n of them.
func (r *serviceRig) wantWaits(outcome acd.Outcome, n uint64) {
	r.t.Helper()
	for _, o := range []acd.Outcome{acd.OutcomeAnswered, acd.OutcomeAbandoned, acd.OutcomeCallback} {
		want := uint64(0)
		if o == outcome {
			want = n
		}
		if got := r.waits(o).GetSampleCount(); got != want {
			r.t.Errorf("%s waits observed %d times, want %d", o, got, want)
		}
	}
}

func (r *serviceRig) call(who string, script caller.Script) (caller.Transcript, calllog.Record) {
	return r.callWrapped(who, script, nil)
}

// callWrapped is call with the flow seeing wrap(call) instead of the call.
func (r *serviceRig) callWrapped(who string, script caller.Script, wrap func(*ivrtest.FakeCall) ivr.Call) (caller.Transcript, calllog.Record) {
	catalog, _ := prompts.Default()
	c := ivrtest.NewFakeCall(catalog, who, 100)
	var call ivr.Call = c
	if wrap != nil {
		call = wrap(c)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.runner.Serve(context.Background(), call)
	}()
	tr := c.PlayScript(ivr.DTMFRFC4733, script)
	<-done
	r.rec.mu.Lock()
	defer r.rec.mu.Unlock()
	return tr, r.rec.saved[who]
}

var intakeKeys = caller.Script{{On: prompts.CategoryMenu, Press: "3"}, {On: prompts.ConsentMenu, Press: "1"}}

// The first agent lets the call ring out, the next answers and hangs up;
// the caller rates the call once, with praise.
func TestServiceToAgentAndRating(t *testing.T) {
	t.Parallel()
	r := newServiceRig(t, map[string]string{"a1": "ringout", "a2": "answer"})
	script := append(append(caller.Script{}, intakeKeys...), caller.Step{On: prompts.Rating, Press: "1"})
	tr, rec := r.call("13900000010", script)
	if rec.EndCause != calllog.FlowFinished || rec.AgentID != "a2" || rec.Rating != string(evaluation.Praise) {
		t.Fatalf("record: cause %s (%s) agent %q rating %q", rec.EndCause, rec.EndDetail, rec.AgentID, rec.Rating)
	}
	if rec.QueuedAt == nil || rec.OfferedAt == nil || rec.AgentAnsweredAt == nil || rec.OfferedAt.Before(*rec.QueuedAt) {
		t.Errorf("queue times %v %v %v", rec.QueuedAt, rec.OfferedAt, rec.AgentAnsweredAt)
	}
	if got := r.conn.dialled; len(got) != 2 || got[0] != "a1" || got[1] != "a2" {
		t.Errorf("dialled %v, want a1 then a2", got)
	}
	ids := tr.HeardIDs()
	if len(ids) < 2 || ids[len(ids)-1] != prompts.RatingThanks {
		t.Errorf("heard %v, want the rating thanks last", ids)
	}
	rt, err := r.ratings.Get(t.Context(), rec.ID)
	if err != nil || rt.Verdict != evaluation.Praise || rt.AgentID != "a2" || rt.Key != "1" || rt.PromptID != string(prompts.Rating) || rt.PromptVersion == "" {
		t.Fatalf("rating %+v %v", rt, err)
	}
	a1, _ := r.acd.Agent(t.Context(), "a1")
	if a1.Missed != 1 {
		t.Errorf("a1 missed %d offers, want 1", a1.Missed)
	}
	day, err := r.acd.AgentDay(t.Context(), "a2", time.Now())
	if err != nil || day.Served != 1 {
		t.Errorf("a2 served %+v %v", day, err)
	}
	// The complaint line counts the call served by a2, on the day a2
	// answered, with its praise; a1, who let it ring out, served none.
	line, err := r.ratings.AgentDay(t.Context(), "a2", *rec.AgentAnsweredAt)
	if err != nil || line.Served != 1 || line.Praise != 1 {
		t.Errorf("a2 on the line: %+v %v", line, err)
	}
	if line, err := r.ratings.AgentDay(t.Context(), "a1", *rec.AgentAnsweredAt); err != nil || line.Served != 0 {
		t.Errorf("a1 on the line: %+v %v", line, err)
	}
	if !rt.ServedAt.Equal(*rec.AgentAnsweredAt) {
		t.Errorf("rating served at %v; the agent answered at %v", rt.ServedAt, *rec.AgentAnsweredAt)
	}
	// The wait, from joining the queue to a2 answering, is observed
	// once, as the record has it.
	r.wantWaits(acd.OutcomeAnswered, 1)
	if got, want := r.waits(acd.OutcomeAnswered).GetSampleSum(), rec.AgentAnsweredAt.Sub(*rec.QueuedAt).Seconds(); got != want {
		t.Errorf("answered wait observed %v s, the record says %v s", got, want)
	}
	if d, err := r.acd.Day(t.Context(), time.Now()); err != nil || d.Answered != 1 || d.AnswerRate15s.Calls != 1 {
		t.Errorf("day %+v %v, want 1 call answered", d, err)
	}
}

// keyBeforeQuestion is a call on which a key arrives as the rating
// question is queued, before any of it could be heard.
type keyBeforeQuestion struct {
	*ivrtest.FakeCall
	key  rune
	once sync.Once
}

func (c *keyBeforeQuestion) Play(ctx context.Context, lang prompts.Lang, ids ...prompts.ID) (ivr.Playback, error) {
	if slices.Contains(ids, prompts.Rating) {
		c.once.Do(func() { c.Press(c.key, ivr.DTMFRFC4733) })
	}
	return c.FakeCall.Play(ctx, lang, ids...)
}

// A key that reaches us between the agent's hang-up and the question's
// first frame answers nothing: the question starts again and the key
// pressed after it is the rating.
func TestServiceKeyBeforeTheQuestionIsNoRating(t *testing.T) {
	t.Parallel()
	r := newServiceRig(t, map[string]string{"a1": "answer", "a2": "answer"})
	script := append(append(caller.Script{}, intakeKeys...), caller.Step{On: prompts.Rating, Press: "1"})
	tr, rec := r.callWrapped("13900000013", script, func(c *ivrtest.FakeCall) ivr.Call {
		return &keyBeforeQuestion{FakeCall: c, key: '2'}
	})
	if rec.Rating != string(evaluation.Praise) {
		t.Fatalf("record: cause %s (%s) rating %q, want praise: the early 2 is no bad review", rec.EndCause, rec.EndDetail, rec.Rating)
	}
	if ids := tr.HeardIDs(); ids[len(ids)-1] != prompts.RatingThanks {
		t.Errorf("heard %v, want the rating thanks last", ids)
	}
	rt, err := r.ratings.Get(t.Context(), rec.ID)
	if err != nil || rt.Verdict != evaluation.Praise || rt.Key != "1" {
		t.Fatalf("rating %+v %v", rt, err)
	}
	// The question that was heard is the one timed.
	var m dto.Metric
	if err := r.runner.Metrics.RatingDelay.Write(&m); err != nil || m.GetHistogram().GetSampleCount() != 1 {
		t.Errorf("rating delay observed %d times (%v), want once", m.GetHistogram().GetSampleCount(), err)
	}
}

// A caller who hangs up during the rating question leaves "no rating",
// recorded as such.
func TestServiceHangupDuringRating(t *testing.T) {
	t.Parallel()
	r := newServiceRig(t, map[string]string{"a1": "answer", "a2": "answer"})
	script := append(append(caller.Script{}, intakeKeys...), caller.Step{On: prompts.Rating, BargeIn: true, Hangup: true})
	_, rec := r.call("13900000011", script)
	if rec.EndCause != calllog.CallerHangup || rec.Stage != ivr.StageRating || rec.Rating != string(evaluation.NoRating) {
		t.Fatalf("record: cause %s stage %s rating %q", rec.EndCause, rec.Stage, rec.Rating)
	}
	rt, err := r.ratings.Get(t.Context(), rec.ID)
	if err != nil || rt.Verdict != evaluation.NoRating || rt.Reason != evaluation.ReasonCallerHangup {
		t.Fatalf("rating %+v %v", rt, err)
	}
}

// Invalid keys and silence: the question is asked three times, then a
// polite goodbye and no rating.
func TestServiceNoValidRating(t *testing.T) {
	t.Parallel()
	r := newServiceRig(t, map[string]string{"a1": "answer", "a2": "answer"})
	script := append(append(caller.Script{}, intakeKeys...), caller.Step{On: prompts.Rating, Press: "7"})
	tr, rec := r.call("13900000012", script)
	if rec.Rating != string(evaluation.NoRating) || rec.EndCause != calllog.FlowFinished {
		t.Fatalf("record: cause %s rating %q", rec.EndCause, rec.Rating)
	}
	asked := 0
	for _, id := range tr.HeardIDs() {
		if id == prompts.Rating {
			asked++
		}
	}
	if ids := tr.HeardIDs(); asked != 3 || ids[len(ids)-1] != prompts.RatingNone {
		t.Errorf("asked %d times, heard %v", asked, ids)
	}
	rt, err := r.ratings.Get(t.Context(), rec.ID)
	if err != nil || rt.Verdict != evaluation.NoRating || rt.Reason != evaluation.ReasonNoInput {
		t.Fatalf("rating %+v %v (the last try was silence)", rt, err)
	}
}

// With no agent's phone registered, the caller is not queued: the call
// ends after the appeal number, as intake alone ends it.
func TestServiceWithoutAgents(t *testing.T) {
	t.Parallel()
	r := newServiceRig(t, map[string]string{})
	for _, id := range []string{"a1", "a2"} {
		if _, err := r.acd.Unregistered(t.Context(), id); err != nil {
			t.Fatal(err)
		}
	}
	tr, rec := r.call("13900000014", intakeKeys)
	if rec.EndCause != calllog.FlowFinished || rec.QueuedAt != nil || rec.AppealID == "" {
		t.Fatalf("record: cause %s queued %v appeal %q", rec.EndCause, rec.QueuedAt, rec.AppealID)
	}
	if ids := tr.HeardIDs(); ids[len(ids)-1] != prompts.Goodbye {
		t.Errorf("heard %v, want goodbye last", ids)
	}
	// The caller asked for an agent and got none: the call counts in the
	// day's figures, turned away, and against the answer rate.
	d, err := r.acd.Day(t.Context(), time.Now())
	if err != nil || d.TurnedAway != 1 || d.Queued != 0 {
		t.Fatalf("day %+v %v, want 1 call turned away, none queued", d, err)
	}
	if a := d.AnswerRate15s; a.Calls != 1 || a.AnsweredIn15s != 0 || a.Rate == nil || *a.Rate != 0 {
		t.Errorf("answer rate %+v, want 0 of 1", a)
	}
	if n := testutil.ToFloat64(r.runner.Metrics.TurnedAway.WithLabelValues(string(appeal.General))); n != 1 {
		t.Errorf("hotline_calls_turned_away_total{category=general} %v, want 1", n)
	}
	r.wantWaits("", 0)
}

// A caller whose appeal went to the journal, Redis not answering for
// longer than a short break, is not queued for an agent, whose states
// live in Redis: they hear their number and that they will be called
// back, and the record says so.
func TestServiceJournaledAppealCalledBack(t *testing.T) {
	t.Parallel()
	r := newServiceRig(t, map[string]string{})
	r.runner.Intake.Appeals = &appeals{journaled: true}
	r.runner.Redis = redisAway{lost: true}
	tr, rec := r.call("13900000015", intakeKeys)
	if rec.EndCause != calllog.FlowFinished || rec.QueuedAt != nil || !rec.Callback || rec.Stage != ivr.StageOutage {
		t.Fatalf("record: cause %s, queued %v, callback %v, stage %q", rec.EndCause, rec.QueuedAt, rec.Callback, rec.Stage)
	}
	ids := tr.HeardIDs()
	if !slices.Contains(ids, prompts.AppealNumber) || ids[len(ids)-1] != prompts.OutageCallback {
		t.Errorf("heard %v, want the number and %s last", ids, prompts.OutageCallback)
	}
	if q, err := r.acd.Queue(t.Context()); err != nil || len(q) != 0 {
		t.Errorf("queue %v, %v; want empty", q, err)
	}
}

// An emergency caller arriving behind ten general callers is served first;
// the others follow in the order they came.
func TestServiceEmergencyServedFirst(t *testing.T) {
	t.Parallel()
	r := newServiceRig(t, map[string]string{"a1": "answer"})
	if _, err := r.acd.Unregistered(t.Context(), "a2"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.acd.Pause(t.Context(), "a1", "briefing"); err != nil {
		t.Fatal(err)
	}
	rate := caller.Step{On: prompts.Rating, Press: "1"}
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			r.call(fmt.Sprintf("general-%02d", i), caller.Script{{On: prompts.CategoryMenu, Press: "3"}, {On: prompts.ConsentMenu, Press: "2"}, rate})
		})
		r.waitQueued(i + 1)
	}
	wg.Go(func() {
		r.call("emergency", caller.Script{{On: prompts.CategoryMenu, Press: "1"}, {On: prompts.ConsentMenu, Press: "2"}, rate})
	})
	r.waitQueued(11)
	if _, err := r.acd.Resume(t.Context(), "a1"); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	r.conn.mu.Lock()
	got := r.conn.callers
	r.conn.mu.Unlock()
	if len(got) != 11 || got[0] != "emergency" {
		t.Fatalf("served %v, want the emergency caller first", got)
	}
	for i, who := range got[1:] {
		if want := fmt.Sprintf("general-%02d", i); who != want {
			t.Errorf("served #%d %s, want %s", i+2, who, want)
		}
	}
}

// A caller who hangs up while waiting for an agent is never asked, and
// counts as abandoned.
func TestServiceAbandonedInQueue(t *testing.T) {
	t.Parallel()
	r := newServiceRig(t, map[string]string{})
	for _, id := range []string{"a1", "a2"} {
		if _, err := r.acd.Pause(t.Context(), id, "meeting"); err != nil {
			t.Fatal(err)
		}
	}
	script := append(append(caller.Script{}, intakeKeys...), caller.Step{On: prompts.QueueWait, BargeIn: true, Hangup: true})
	_, rec := r.call("13900000013", script)
	if rec.EndCause != calllog.CallerHangup || rec.Stage != ivr.StageQueue || rec.Rating != "" || rec.AgentID != "" {
		t.Fatalf("record: cause %s stage %s rating %q agent %q", rec.EndCause, rec.Stage, rec.Rating, rec.AgentID)
	}
	if _, err := r.ratings.Get(t.Context(), rec.ID); !errors.Is(err, evaluation.ErrNotFound) {
		t.Errorf("rating of a caller who never reached an agent: %v", err)
	}
	day, err := r.acd.Day(t.Context(), time.Now())
	if err != nil || day.Abandoned != 1 || day.AnswerRate15s.Calls != 1 || day.AnswerRate15s.AnsweredIn15s != 0 {
		t.Errorf("day %+v %v", day, err)
	}
	r.wantWaits(acd.OutcomeAbandoned, 1)
	if line, err := r.ratings.Totals(t.Context(), time.Now()); err != nil || line.Served != 0 {
		t.Errorf("a call nobody answered counted served: %+v %v", line, err)
	}
}

// While nobody is free the caller hears the position; after the maximum
// wait a caller who consented may press 1 to leave with a call-back
// requested.
func TestServiceCallbackAfterTheMaximumWait(t *testing.T) {
	t.Parallel()
	r := newServiceRig(t, map[string]string{})
	for _, id := range []string{"a1", "a2"} {
		if _, err := r.acd.Pause(t.Context(), id, "meeting"); err != nil {
			t.Fatal(err)
		}
	}
	r.runner.Service.Options.MaxWait = 300 * time.Millisecond
	r.runner.Service.Options.PositionEvery = 100 * time.Millisecond
	script := caller.Script{
		{On: prompts.CategoryMenu, Press: "3"}, {On: prompts.ConsentMenu, Press: "1"},
		{On: prompts.QueueLeaveOffer, Press: "1"},
	}
	tr, rec := r.call("13900000015", script)
	if !rec.Callback || rec.EndCause != calllog.FlowFinished || rec.Stage != ivr.StageGoodbye || rec.Rating != "" {
		t.Fatalf("record: callback %v cause %s stage %s rating %q", rec.Callback, rec.EndCause, rec.Stage, rec.Rating)
	}
	ids := tr.HeardIDs()
	heard := map[prompts.ID]bool{}
	for _, id := range ids {
		heard[id] = true
	}
	for _, want := range []prompts.ID{prompts.QueueWait, prompts.QueuePosition, prompts.Digit('1'), prompts.QueuePositionEnd, prompts.CallbackNoted} {
		if !heard[want] {
			t.Errorf("never heard %s: %v", want, ids)
		}
	}
	day, err := r.acd.Day(t.Context(), time.Now())
	if err != nil || day.Callback != 1 || day.Abandoned != 0 {
		t.Errorf("day %+v %v", day, err)
	}
	// The call-back is work: an item in the worklist, due in the next
	// calling window.
	v, err := r.visits.Get(t.Context(), "cb-"+rec.ID)
	if err != nil || v.Kind != callback.QueueCallback || v.State != callback.Waiting || v.Appeal != rec.AppealID || v.Appeal == "" ||
		!v.Due.Equal(callback.DefaultWindows(appeal.DefaultLocation()).Next(v.CreatedAt)) {
		t.Errorf("the call-back's item %+v %v", v, err)
	}
	// The caller waited at least the maximum wait before leaving.
	r.wantWaits(acd.OutcomeCallback, 1)
	if w := r.waits(acd.OutcomeCallback).GetSampleSum(); w < 0.3 {
		t.Errorf("call-back wait observed %v s, want at least the maximum wait", w)
	}
}

// A caller who declined a return visit is never offered a call-back.
func TestServiceNoCallbackWithoutConsent(t *testing.T) {
	t.Parallel()
	r := newServiceRig(t, map[string]string{})
	for _, id := range []string{"a1", "a2"} {
		if _, err := r.acd.Pause(t.Context(), id, "meeting"); err != nil {
			t.Fatal(err)
		}
	}
	r.runner.Service.Options.MaxWait = 100 * time.Millisecond
	r.runner.Service.Options.PositionEvery = 150 * time.Millisecond
	// The caller waits through three position announcements, then hangs up.
	script := caller.Script{
		{On: prompts.CategoryMenu, Press: "3"}, {On: prompts.ConsentMenu, Press: "2"},
		{On: prompts.QueuePositionEnd}, {On: prompts.QueuePositionEnd},
		{On: prompts.QueuePositionEnd, Hangup: true},
	}
	tr, rec := r.call("13900000016", script)
	if rec.Callback || rec.EndCause != calllog.CallerHangup {
		t.Fatalf("record: callback %v cause %s", rec.Callback, rec.EndCause)
	}
	for _, id := range tr.HeardIDs() {
		if id == prompts.QueueLeaveOffer {
			t.Fatalf("a caller without consent was offered a call-back: %v", tr.HeardIDs())
		}
	}
}

// A call whose caller hangs up while talking to the agent is not rated,
// and still counts served: the citizen talked to an agent.
func TestServiceServedWithoutRating(t *testing.T) {
	t.Parallel()
	r := newServiceRig(t, map[string]string{"a1": "answer", "a2": "answer"})
	r.conn.hangupBy = "caller"
	r.conn.bridged = make(chan struct{})
	_, rec := r.callWrapped("13900000020", intakeKeys, func(c *ivrtest.FakeCall) ivr.Call {
		go func() {
			<-r.conn.bridged
			_ = c.Hangup(context.Background())
		}()
		return c
	})
	if rec.AgentID == "" || rec.AgentAnsweredAt == nil || rec.Rating != "" {
		t.Fatalf("record: agent %q answered %v rating %q", rec.AgentID, rec.AgentAnsweredAt, rec.Rating)
	}
	line, err := r.ratings.AgentDay(t.Context(), rec.AgentID, *rec.AgentAnsweredAt)
	if err != nil || line.Served != 1 || line.Praise+line.BadReview+line.NoRating != 0 {
		t.Fatalf("%s on the line: %+v %v", rec.AgentID, line, err)
	}
}
