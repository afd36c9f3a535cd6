package acd

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/internal/redistest"
)

// A call turned away because no agent of its category was registered
// counts once in the day's figures, and against the 15-second answer
// rate, beside the calls answered and abandoned.
func TestTurnedAwayCounts(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testTurnedAwayCounts)
}

func testTurnedAwayCounts(t *testing.T, rdb redis.UniversalClient) {
	r := newRigOn(t, rdb)
	r.agent("a1", appeal.General)
	r.enqueue("fast", appeal.General)
	r.enqueue("gone", appeal.General)
	wantOffers(t, r.dispatch(), "fast>a1")
	r.clock.Add(5 * time.Second)
	if err := r.s.Answered(r.ctx, "fast", "a1"); err != nil {
		t.Fatal(err)
	}
	if err := r.s.Leave(r.ctx, "gone", Abandoned); err != nil {
		t.Fatal(err)
	}
	// Nobody takes emergency calls: the caller is turned away, and a
	// retried count changes nothing.
	for range 2 {
		if err := r.s.TurnedAway(r.ctx, "alone", appeal.Emergency); err != nil {
			t.Fatal(err)
		}
	}
	// A call that was queued is not counted again as turned away.
	if err := r.s.TurnedAway(r.ctx, "fast", appeal.General); err != nil {
		t.Fatal(err)
	}
	if err := r.s.TurnedAway(r.ctx, "", appeal.General); !errors.Is(err, ErrInvalid) {
		t.Errorf("turned away without a call: %v, want ErrInvalid", err)
	}
	if err := r.s.TurnedAway(r.ctx, "x", "urgent"); !errors.Is(err, ErrInvalid) {
		t.Errorf("turned away in no category: %v, want ErrInvalid", err)
	}
	if ttl := r.rdb.TTL(r.ctx, r.s.key("c:alone")).Val(); ttl <= 0 {
		t.Errorf("the turned-away call's mark is kept for %v, want a day", ttl)
	}
	if _, err := r.s.Position(r.ctx, "alone"); !errors.Is(err, ErrNotFound) {
		t.Errorf("position of a call turned away: %v, want ErrNotFound", err)
	}
	// A call turned away is never queued afterwards.
	if err := r.s.Enqueue(r.ctx, "alone", appeal.Emergency, "node1"); err != nil {
		t.Fatal(err)
	}
	if q, err := r.s.Queue(r.ctx); err != nil || len(q) != 0 {
		t.Errorf("queue %+v %v, want empty", q, err)
	}

	d, err := r.s.Day(r.ctx, r.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if d.Queued != 2 || d.Answered != 1 || d.InTime != 1 || d.Abandoned != 1 || d.TurnedAway != 1 {
		t.Fatalf("day %+v, want 2 queued (1 answered in time, 1 abandoned) and 1 turned away", d)
	}
	if a := d.AnswerRate15s; a.AnsweredIn15s != 1 || a.Calls != 3 || a.Rate == nil || *a.Rate != 1.0/3 {
		t.Errorf("answer rate %+v, want 1 of 3: the turned-away call counts", a)
	}
	if w := d.AverageWait; w.Calls != 1 || w.Seconds == nil || *w.Seconds < 4.9 || *w.Seconds > 5.1 {
		t.Errorf("average wait %+v, want 5 s over the 1 answered call", w)
	}
	wantSaysWhatItCounts(t, d)
}

// wantSaysWhatItCounts checks that each figure's denominator, as the API
// shows it, is the sum of the day's counts it names.
func wantSaysWhatItCounts(t *testing.T, d DayFigures) {
	t.Helper()
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	var counts map[string]json.RawMessage
	if err := json.Unmarshal(b, &counts); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"answer_rate_15s", "average_wait"} {
		var f struct {
			Calls int64    `json:"calls"`
			Over  []string `json:"over"`
		}
		if err := json.Unmarshal(counts[name], &f); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var sum int64
		for _, c := range f.Over {
			var n int64
			if err := json.Unmarshal(counts[c], &n); err != nil {
				t.Fatalf("%s over %q, which is no count of the day: %v", name, c, err)
			}
			sum += n
		}
		if len(f.Over) == 0 || sum != f.Calls {
			t.Errorf("%s: %d calls over %v, which add up to %d (%s)", name, f.Calls, f.Over, sum, b)
		}
	}
}

// A day without calls has no rate and no average wait, rather than 0 %,
// which would say that every call waited too long; the counts are there.
func TestDayWithoutCallsHasNoRate(t *testing.T) {
	t.Parallel()
	r := newRigOn(t, redistest.Start(t).Client(t))
	d, err := r.s.Day(r.ctx, r.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if a := d.AnswerRate15s; a.Rate != nil || a.Calls != 0 || a.AnsweredIn15s != 0 {
		t.Errorf("answer rate of a day without calls %+v, want none", a)
	}
	if w := d.AverageWait; w.Seconds != nil || w.Calls != 0 {
		t.Errorf("average wait of a day without calls %+v, want none", w)
	}
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Rate map[string]any `json:"answer_rate_15s"`
		Wait map[string]any `json:"average_wait"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if _, ok := got.Rate["rate"]; ok || got.Rate["calls"] != 0.0 || got.Rate["answered_in_15s"] != 0.0 {
		t.Errorf("answer rate of a day without calls: %v, want the counts and no rate", got.Rate)
	}
	if _, ok := got.Wait["seconds"]; ok || got.Wait["calls"] != 0.0 {
		t.Errorf("average wait of a day without calls: %v, want the count and no average", got.Wait)
	}
	wantSaysWhatItCounts(t, d)
}
