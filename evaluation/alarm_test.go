package evaluation_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/evaluation"
	"github.com/hotline12345/hotline/internal/redistest"
)

// eventNames names events as kind scope window, in order.
func eventNames(evs []evaluation.Event) []string {
	var out []string
	for _, e := range evs {
		sc := "hotline"
		if e.Line.AgentID != "" {
			sc = "agent:" + e.Line.AgentID
		}
		out = append(out, string(e.Kind)+" "+sc+" "+string(e.Watch))
	}
	return out
}

func wantEvents(t *testing.T, what string, got []evaluation.Event, want ...string) {
	t.Helper()
	g := eventNames(got)
	if strings.Join(g, "; ") != strings.Join(want, "; ") {
		t.Fatalf("%s: events %q; want %q", what, g, want)
	}
}

// TestAlarmCrossesOnce: one effective complaint in three calls served is
// over the line in every watched window; looking again, or from a second
// node, raises nothing more; a reversal clears each window once; the
// stream lists the events newest first, and the metrics follow.
func TestAlarmCrossesOnce(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testAlarmCrossesOnce)
}

func testAlarmCrossesOnce(t *testing.T, rdb redis.UniversalClient) {
	f := newLine(t, rdb)
	now := f.clock.Now()
	var told []evaluation.Event
	var mu sync.Mutex
	a := evaluation.NewAlarm(f.store, evaluation.AlarmOptions{Owner: "node-a/1", Node: "node-a", Log: zerolog.Nop(),
		OnEvent: func(e evaluation.Event) { mu.Lock(); told = append(told, e); mu.Unlock() }})
	b := evaluation.NewAlarm(evaluation.NewStore(rdb, evaluation.StoreOptions{Location: f.loc, Now: f.clock.Now}),
		evaluation.AlarmOptions{Owner: "node-b/1", Node: "node-b", Log: zerolog.Nop()})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(a)

	for _, c := range []string{"c1", "c2", "c3"} {
		f.serve(t, f.store, c, "agent-1", now.Add(-time.Hour))
	}
	evs, err := a.Check(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantEvents(t, "within", evs)

	f.rate(t, f.store, "c2", "agent-1", evaluation.BadReview, now.Add(-time.Hour), now.Add(-59*time.Minute))
	evs, _ = a.Check(f.ctx)
	wantEvents(t, "a bad review pending", evs)
	if v := testutil.ToFloat64(gaugeOf(t, reg, "hotline_complaints_pending", "hotline", "day")); v != 1 {
		t.Errorf("pending %v; want 1", v)
	}

	f.review(t, f.store, "c2", evaluation.Upheld)
	select {
	case <-f.store.Changes():
	default:
		t.Fatal("a review did not signal a change")
	}
	evs, err = a.Check(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantEvents(t, "upheld", evs, "over hotline day", "over hotline month", "over hotline 30d", "over agent:agent-1 30d")
	if l := evs[0].Line; l.Upheld != 1 || l.Served != 3 || l.State != evaluation.Over || evs[0].ID == "" || evs[0].Node != "node-a" {
		t.Errorf("event %+v", evs[0])
	}
	if len(told) != 4 {
		t.Errorf("OnEvent told %d events", len(told))
	}
	for name, want := range map[string]float64{"hotline_complaint_line_over": 1, "hotline_complaints_effective": 1, "hotline_calls_served": 3} {
		if v := testutil.ToFloat64(gaugeOf(t, reg, name, "hotline", "30d")); v != want {
			t.Errorf("%s %v; want %v", name, v, want)
		}
	}
	if v := testutil.ToFloat64(gaugeOf(t, reg, "hotline_complaint_rate_per_10000", "agent:agent-1", "30d")); v < 3333 || v > 3334 {
		t.Errorf("agent rate %v; want 3333.33", v)
	}

	for _, al := range []*evaluation.Alarm{a, b, a} {
		evs, err := al.Check(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		wantEvents(t, "looked at again", evs)
	}

	if _, err := f.store.Reverse(f.ctx, "c2", evaluation.Dismissed, "sup-2", "the agent followed the script"); err != nil {
		t.Fatal(err)
	}
	evs, _ = a.Check(f.ctx)
	wantEvents(t, "reversed", evs, "cleared hotline day", "cleared hotline month", "cleared hotline 30d", "cleared agent:agent-1 30d")
	if v := testutil.ToFloat64(gaugeOf(t, reg, "hotline_complaint_line_over", "hotline", "day")); v != 0 {
		t.Errorf("over %v after the reversal", v)
	}

	all, next, err := f.store.Events(f.ctx, 5, "")
	if err != nil || len(all) != 5 || next == "" {
		t.Fatalf("first page: %d events, next %q, %v", len(all), next, err)
	}
	rest, next, err := f.store.Events(f.ctx, 5, next)
	if err != nil || len(rest) != 3 || next != "" {
		t.Fatalf("second page: %d events, next %q, %v", len(rest), next, err)
	}
	all = append(all, rest...)
	if all[0].Kind != evaluation.EventCleared || all[7].Kind != evaluation.EventOver || all[0].ID <= all[7].ID {
		t.Errorf("not newest first: %q", eventNames(all))
	}
	if _, _, err := f.store.Events(f.ctx, 5, "junk"); err == nil {
		t.Error("a cursor that is no event id was taken")
	}
}

// gaugeOf finds one series of the registry.
func gaugeOf(t *testing.T, reg *prometheus.Registry, name, scope, window string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["scope"] == scope && labels["window"] == window {
				return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name}, func() float64 { return m.GetGauge().GetValue() })
			}
		}
	}
	t.Fatalf("no %s{scope=%q,window=%q}", name, scope, window)
	return nil
}

// TestAlarmDayMovesOn: a day over the line clears when the next day
// begins within it; the month stays over.
func TestAlarmDayMovesOn(t *testing.T) {
	t.Parallel()
	f := newLine(t, redistest.Start(t).Client(t))
	now := f.clock.Now()
	a := evaluation.NewAlarm(f.store, evaluation.AlarmOptions{Owner: "n/1", Log: zerolog.Nop()})
	f.rate(t, f.store, "c1", "agent-1", evaluation.BadReview, now, now)
	f.review(t, f.store, "c1", evaluation.Upheld)
	evs, _ := a.Check(f.ctx)
	wantEvents(t, "upheld", evs, "over hotline day", "over hotline month", "over hotline 30d", "over agent:agent-1 30d")
	f.clock.Set(now.Add(24 * time.Hour))
	evs, err := a.Check(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantEvents(t, "the next day", evs, "cleared hotline day")
	if l := evs[0].Line; l.From != now.Add(24*time.Hour).Format(time.DateOnly) || l.Served != 0 {
		t.Errorf("cleared with %+v", l)
	}
	// An agent with no call in 30 days is looked at on their own.
	f.clock.Set(now.Add(31 * 24 * time.Hour))
	evs, _ = a.Check(f.ctx)
	wantEvents(t, "31 days on", evs, "cleared hotline month", "cleared hotline 30d", "cleared agent:agent-1 30d")
}

// TestReviewsOverdue: a bad review waiting longer than the review SLA is
// flagged in the list and counted in the metrics.
func TestReviewsOverdue(t *testing.T) {
	t.Parallel()
	f := newLine(t, redistest.Start(t).Client(t))
	now := f.clock.Now()
	f.rate(t, f.store, "old", "agent-1", evaluation.BadReview, now.Add(-25*time.Hour), now.Add(-25*time.Hour))
	f.rate(t, f.store, "new", "agent-1", evaluation.BadReview, now.Add(-time.Hour), now.Add(-time.Hour))
	cs, err := f.store.Complaints(f.ctx, evaluation.Pending, 10)
	if err != nil || len(cs) != 2 {
		t.Fatalf("%d pending, %v", len(cs), err)
	}
	if cs[0].ID != "old" || !cs[0].Overdue || cs[0].AgeSeconds == nil || *cs[0].AgeSeconds != 25*3600 {
		t.Errorf("oldest first and overdue: %+v", cs[0])
	}
	if cs[1].Overdue || *cs[1].AgeSeconds != 3600 {
		t.Errorf("an hour old: %+v", cs[1])
	}
	a := evaluation.NewAlarm(f.store, evaluation.AlarmOptions{Owner: "n/1", Log: zerolog.Nop()})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(a)
	if _, err := a.Check(f.ctx); err != nil {
		t.Fatal(err)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP hotline_complaint_review_oldest_pending_seconds How long the oldest bad review has waited for its review; 0 with none.
# TYPE hotline_complaint_review_oldest_pending_seconds gauge
hotline_complaint_review_oldest_pending_seconds 90000
# HELP hotline_complaint_reviews_overdue Bad reviews waiting for their review longer than the review SLA.
# TYPE hotline_complaint_reviews_overdue gauge
hotline_complaint_reviews_overdue 1
# HELP hotline_complaint_reviews_pending Bad reviews waiting for their review.
# TYPE hotline_complaint_reviews_pending gauge
hotline_complaint_reviews_pending 2
`), "hotline_complaint_review_oldest_pending_seconds", "hotline_complaint_reviews_overdue", "hotline_complaint_reviews_pending"); err != nil {
		t.Error(err)
	}
	// The decisions are kept, reversal and all.
	f.review(t, f.store, "old", evaluation.Upheld)
	if _, err := f.store.Reverse(f.ctx, "old", evaluation.Dismissed, "sup-2", "wrong agent"); err != nil {
		t.Fatal(err)
	}
	c, err := f.store.Complaint(f.ctx, "old")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.History) != 2 || c.History[0].Status != evaluation.Upheld || c.History[0].From != evaluation.Pending || c.History[0].By != "sup-1" ||
		c.History[1].Status != evaluation.Dismissed || c.History[1].From != evaluation.Upheld || c.History[1].Note != "wrong agent" {
		t.Errorf("history %+v", c.History)
	}
	if c.Status != evaluation.Dismissed || c.ReviewedBy != "sup-2" {
		t.Errorf("complaint %+v", c)
	}
}

// receiver is a webhook receiver that checks signatures and counts each
// event id; answers gives the status of each request in turn (200 after).
type receiver struct {
	t       *testing.T
	secret  string
	mu      sync.Mutex
	answers []int
	tries   int
	got     map[string]int
	events  chan evaluation.Event
}

func newReceiver(t *testing.T, secret string, answers ...int) (*receiver, *httptest.Server) {
	r := &receiver{t: t, secret: secret, answers: answers, got: map[string]int{}, events: make(chan evaluation.Event, 16)}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	if err := evaluation.VerifySignature(r.secret, req.Header, body, time.Now(), time.Minute); err != nil {
		r.t.Errorf("webhook: %v", err)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var ev evaluation.Event
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID != req.Header.Get(evaluation.HeaderEventID) {
		r.t.Errorf("webhook body %s: %v", body, err)
	}
	r.mu.Lock()
	status := http.StatusOK
	if r.tries < len(r.answers) {
		status = r.answers[r.tries]
	}
	r.tries++
	if status == http.StatusOK {
		r.got[ev.ID]++
	}
	r.mu.Unlock()
	w.WriteHeader(status)
	if status == http.StatusOK || status == http.StatusBadRequest {
		r.events <- ev
	}
}

// TestWebhook: an event is signed, retried after a 500 and a 503, taken
// once; an event the receiver refuses with 400 is not sent again; an
// event a stopped node left unacknowledged is delivered by another.
func TestWebhook(t *testing.T) {
	t.Parallel()
	f := newLine(t, redistest.Start(t).Client(t))
	now := f.clock.Now()
	rcv, srv := newReceiver(t, "s3cret-s3cret-s3cret", 500, 503, 200, 400)
	stream := "hotline:{eval}:line:events"
	// The group takes the events that come after it is made.
	if err := f.rdb.XGroupCreateMkStream(f.ctx, stream, "webhook", "$").Err(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(f.ctx)
	through := make(chan string, 8)
	a := evaluation.NewAlarm(f.store, evaluation.AlarmOptions{Owner: "n/1", Log: zerolog.Nop(), Interval: time.Hour,
		Webhook: evaluation.WebhookOptions{URL: srv.URL, Secret: "s3cret-s3cret-s3cret", InitialInterval: 10 * time.Millisecond, ClaimAfter: 200 * time.Millisecond,
			Done: func(_, outcome string) { through <- outcome }}})
	done := make(chan struct{})
	go func() { defer close(done); a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	f.rate(t, f.store, "c1", "agent-1", evaluation.BadReview, now, now)
	f.review(t, f.store, "c1", evaluation.Upheld) // signals the alarm: four events
	outcomes := map[string]int{}
	for range 4 {
		select {
		case o := <-through:
			outcomes[o]++
		case <-time.After(10 * time.Second):
			t.Fatal("the webhook did not deliver four events")
		}
	}
	if outcomes[evaluation.WebhookDelivered] != 3 || outcomes[evaluation.WebhookRefused] != 1 {
		t.Errorf("outcomes %v", outcomes)
	}
	seen := map[string]bool{}
	for len(rcv.events) > 0 {
		seen[(<-rcv.events).ID] = true
	}
	rcv.mu.Lock()
	tries, got := rcv.tries, len(rcv.got)
	rcv.mu.Unlock()
	// 500, 503, 200 for the first; 400 (refused, dropped) for the second;
	// 200 for the others.
	if tries != 6 || got != 3 || len(seen) != 4 {
		t.Errorf("%d requests, %d events taken, %d seen; want 6, 3, 4", tries, got, len(seen))
	}
	cancel()
	<-done
	noneUnacked(t, f.rdb, stream)
}

// noneUnacked checks that the group has no event left to deliver.
func noneUnacked(t *testing.T, rdb redis.UniversalClient, stream string) {
	t.Helper()
	p, err := rdb.XPending(context.Background(), stream, "webhook").Result()
	if err != nil || p.Count != 0 {
		t.Fatalf("events not acknowledged: %+v %v", p, err)
	}
}

// TestWebhookTakesOverALostNode: an event read by a node that stopped
// before delivering it is delivered by another once it waited ClaimAfter.
func TestWebhookTakesOverALostNode(t *testing.T) {
	t.Parallel()
	f := newLine(t, redistest.Start(t).Client(t))
	now := f.clock.Now()
	stream := "hotline:{eval}:line:events"
	if err := f.rdb.XGroupCreateMkStream(f.ctx, stream, "webhook", "$").Err(); err != nil {
		t.Fatal(err)
	}
	a := evaluation.NewAlarm(f.store, evaluation.AlarmOptions{Owner: "n/1", Log: zerolog.Nop()})
	f.rate(t, f.store, "c1", "agent-1", evaluation.BadReview, now, now)
	f.review(t, f.store, "c1", evaluation.Upheld)
	evs, err := a.Check(f.ctx)
	if err != nil || len(evs) != 4 {
		t.Fatalf("%d events, %v", len(evs), err)
	}
	// The lost node read them all and delivered none.
	if err := f.rdb.XReadGroup(f.ctx, &redis.XReadGroupArgs{Group: "webhook", Consumer: "lost/1", Streams: []string{stream, ">"}}).Err(); err != nil {
		t.Fatal(err)
	}
	rcv, srv := newReceiver(t, "another-secret-0123")
	ctx, cancel := context.WithCancel(f.ctx)
	through := make(chan string, 8)
	b := evaluation.NewAlarm(f.store, evaluation.AlarmOptions{Owner: "n/2", Log: zerolog.Nop(), Interval: time.Hour,
		Webhook: evaluation.WebhookOptions{URL: srv.URL, Secret: "another-secret-0123", ClaimAfter: 100 * time.Millisecond,
			Done: func(_, outcome string) { through <- outcome }}})
	done := make(chan struct{})
	go func() { defer close(done); b.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for range 4 {
		select {
		case o := <-through:
			if o != evaluation.WebhookDelivered {
				t.Errorf("outcome %s", o)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the events the lost node left were not delivered")
		}
	}
	if len(rcv.events) != 4 {
		t.Errorf("the receiver got %d events", len(rcv.events))
	}
	cancel()
	<-done
	noneUnacked(t, f.rdb, stream)
}
