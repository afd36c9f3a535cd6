package callback_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/callback"
)

// ratesRig is a rig whose organizers have districts and whose visits
// know them.
func ratesRig(t *testing.T, partly bool) *rig {
	r := newRig(t, nil)
	ctx := context.Background()
	for _, o := range []appeal.Organizer{
		{ID: "water", Name: "Water bureau", Kind: appeal.Utility, District: "chaoyang"},
		{ID: "roads", Name: "Roads bureau", Kind: appeal.Bureau, District: "haidian"},
		{ID: "city", Name: "City office", Kind: appeal.Bureau},
	} {
		if err := r.appeals.PutOrganizer(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	r.visits = callback.NewStore(r.rdb, callback.StoreOptions{Now: r.clock.Now, Seed: "test-seed", PartlySolvedCounts: partly,
		District: func(ctx context.Context, id string) (string, error) {
			o, err := r.appeals.Organizer(ctx, id)
			return o.District, err
		}})
	return r
}

// dispatchedVisit makes an appeal dispatched to lead (and others), and
// its visit.
func (r *rig) dispatchedVisit(t *testing.T, call string, cat appeal.Category, lead string, others ...string) callback.Visit {
	t.Helper()
	ctx := context.Background()
	a := r.appeal(t, call, "1390000"+call, cat, true)
	if _, _, err := r.appeals.Step(ctx, a.ID, appeal.Action{Step: appeal.Dispatch, By: "dispatcher", Assignment: appeal.Assignment{Lead: lead, Others: others}}); err != nil {
		t.Fatal(err)
	}
	if d, err := r.visits.Expired(ctx, expired(a), r.appeals); err != nil || d != callback.Visited {
		t.Fatalf("%s: %q %v", a.ID, d, err)
	}
	v, err := r.visits.Get(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// complete takes the next visit, which must be v, and completes it.
func (r *rig) complete(t *testing.T, v callback.Visit, agent string, a callback.Answers) callback.Visit {
	t.Helper()
	ctx := context.Background()
	l, err := r.visits.Next(ctx, agent, 0)
	if err != nil || l.Visit.ID != v.ID {
		t.Fatalf("next: %+v %v, want %s", l.Visit, err, v.ID)
	}
	got, err := r.visits.Attempted(ctx, v.ID, agent, callback.Attempt{Outcome: callback.Completed, Answers: &a}, "")
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func ratesBy(t *testing.T, r *rig, by callback.By, days ...string) map[string]callback.Rates {
	t.Helper()
	rs, err := r.visits.Rates(context.Background(), by, days)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]callback.Rates{}
	for _, x := range rs {
		out[x.Group] = x
	}
	return out
}

func frac(f callback.Fraction) [2]int64 { return [2]int64{f.Numerator, f.Denominator} }

// TestRates: the three rates per organizer (the lead), category,
// district and overall, with their counts; partly solved is not solved;
// a visit counts on the day it was completed in the hotline's zone, once;
// a visit with answers missing is refused; the audit agrees, then finds a
// counter changed behind its back.
func TestRates(t *testing.T) {
	r := ratesRig(t, false)
	ctx := context.Background()
	yes := callback.Answers{Response: callback.Contacted, Solution: callback.Solved, Satisfaction: callback.Satisfied}
	partly := callback.Answers{Response: callback.Contacted, Solution: callback.PartlySolved, Satisfaction: callback.BasicallySatisfied}
	no := callback.Answers{Response: callback.NotContacted, Solution: callback.NotSolved, Satisfaction: callback.Dissatisfied}

	v1 := r.dispatchedVisit(t, "101", appeal.Livelihood, "water", "roads")
	v2 := r.dispatchedVisit(t, "102", appeal.Livelihood, "water")
	v3 := r.dispatchedVisit(t, "103", appeal.General, "roads")
	v4 := r.dispatchedVisit(t, "104", appeal.General, "city")

	if l, err := r.visits.Next(ctx, "v1", 0); err != nil || l.Visit.ID != v1.ID {
		t.Fatalf("next %+v %v", l, err)
	}
	for _, bad := range []callback.Attempt{
		{Outcome: callback.Completed},
		{Outcome: callback.Completed, Answers: &callback.Answers{Response: "maybe", Solution: callback.Solved, Satisfaction: callback.Satisfied}},
		{Outcome: callback.Completed, Answers: &callback.Answers{Response: callback.Contacted, Solution: callback.Solved, Satisfaction: "very"}},
	} {
		if _, err := r.visits.Attempted(ctx, v1.ID, "v1", bad, ""); !errors.Is(err, callback.ErrInvalid) {
			t.Errorf("completed with %+v: %v, want invalid", bad.Answers, err)
		}
	}
	// Two completions of one visit at once, as from two nodes: one counts.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() {
			_, errs[i] = r.visits.Attempted(ctx, v1.ID, "v1", callback.Attempt{Outcome: callback.Completed, Answers: &yes}, "")
		})
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) || !errors.Is(errors.Join(errs[0], errs[1]), callback.ErrNotLeased) {
		t.Errorf("two completions at once: %v / %v, want one, the other not leased", errs[0], errs[1])
	}
	got, err := r.visits.Get(ctx, v1.ID)
	if err != nil || got.District != "chaoyang" || got.State != callback.Done {
		t.Errorf("completed: %+v %v, want done in chaoyang", got, err)
	}
	r.complete(t, v2, "v2", partly)
	r.complete(t, v3, "v1", no)
	// v4 is completed at 00:30 the next day, hotline time (16:30 UTC).
	r.clock.Set(time.Date(2026, 11, 28, 9, 30, 0, 0, cst))
	r.complete(t, v4, "v2", yes)

	day, next := "2026-11-27", "2026-11-28"
	all := ratesBy(t, r, callback.ByAll, day)["all"]
	if frac(all.Response) != [2]int64{2, 3} || frac(all.Solution) != [2]int64{1, 3} || frac(all.Satisfaction) != [2]int64{2, 3} || all.Tally.PartlySolved != 1 {
		t.Errorf("all of %s: %+v", day, all)
	}
	org := ratesBy(t, r, callback.ByOrganizer, day, next)
	if w := org["water"]; frac(w.Response) != [2]int64{2, 2} || frac(w.Solution) != [2]int64{1, 2} || frac(w.Satisfaction) != [2]int64{2, 2} {
		t.Errorf("water: %+v", w)
	}
	if rd := org["roads"]; frac(rd.Response) != [2]int64{0, 1} || *rd.Response.Rate != 0 {
		t.Errorf("roads (lead of one, co-organizer of another): %+v", rd)
	}
	if c := org["city"]; frac(c.Solution) != [2]int64{1, 1} {
		t.Errorf("city: %+v", c)
	}
	dist := ratesBy(t, r, callback.ByDistrict, day, next)
	if len(dist) != 2 || dist["chaoyang"].Tally.Completed != 2 || dist["haidian"].Tally.Completed != 1 {
		t.Errorf("districts: %+v (city has none)", dist)
	}
	cat := ratesBy(t, r, callback.ByCategory, next)
	if len(cat) != 1 || cat["general"].Tally.Completed != 1 {
		t.Errorf("categories of %s: %+v", next, cat)
	}
	if none := ratesBy(t, r, callback.ByAll, "2026-11-01")["all"]; none.Tally.Completed != 0 || none.Response.Rate != nil {
		t.Errorf("a day without visits: %+v, want no rate", none)
	}
	if _, err := r.visits.Rates(ctx, "street", []string{day}); !errors.Is(err, callback.ErrInvalid) {
		t.Errorf("by street: %v", err)
	}
	partlyRig := callback.NewStore(r.rdb, callback.StoreOptions{Now: r.clock.Now, PartlySolvedCounts: true})
	if rs, err := partlyRig.Rates(ctx, callback.ByAll, []string{day}); err != nil || frac(rs[0].Solution) != [2]int64{2, 3} {
		t.Errorf("partly counted as solved: %+v %v", rs, err)
	}

	var counted []callback.Counted
	if err := r.visits.EachCounted(ctx, []string{day, next}, func(c callback.Counted) error {
		counted = append(counted, c)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(counted) != 4 || counted[0].Visit != v1.ID || counted[0].Organizer != "water" || counted[0].District != "chaoyang" || counted[3].Day != next || counted[3].Answers != yes {
		t.Errorf("counted: %+v", counted)
	}

	audit, err := r.visits.Audit(ctx, []string{day, next})
	if err != nil || audit.Visits != 4 || len(audit.Differences) != 0 || len(audit.Uncounted) != 0 {
		t.Fatalf("audit: %+v %v", audit, err)
	}
	r.rdb.HIncrBy(ctx, "hotline:{visits}:rates:"+day, "organizer:water|solution:yes", 1)
	r.rdb.ZRem(ctx, "hotline:{visits}:rated:"+next, v4.ID)
	audit, err = r.visits.Audit(ctx, []string{day, next})
	if err != nil || len(audit.Differences) != 1 || audit.Differences[0] != (callback.Difference{Day: day, Group: "organizer:water", Counter: "solution:yes", Kept: 2, Records: 1}) ||
		len(audit.Uncounted) != 1 || audit.Uncounted[0] != v4.ID {
		t.Errorf("audit after a change: %+v %v", audit, err)
	}
	if ttl := r.rdb.TTL(ctx, "hotline:{visits}:rates:"+day).Val(); ttl < 399*24*time.Hour || ttl > callback.DefaultRatesRetention {
		t.Errorf("the day's counters are kept %s", ttl)
	}
}

// TestCallBackCompletedCountsNowhere: a call-back asks no questions; it
// completes without answers and counts in no rate.
func TestCallBackCompletedCountsNowhere(t *testing.T) {
	r := ratesRig(t, false)
	ctx := context.Background()
	cb, err := r.visits.QueueCallback(ctx, "call-77", "", appeal.General)
	if err != nil {
		t.Fatal(err)
	}
	if l, err := r.visits.Next(ctx, "v1", 0); err != nil || l.Visit.ID != cb.ID {
		t.Fatalf("next %+v %v", l, err)
	}
	if _, err := r.visits.Attempted(ctx, cb.ID, "v1", callback.Attempt{Outcome: callback.Completed}, ""); err != nil {
		t.Fatal(err)
	}
	if all := ratesBy(t, r, callback.ByAll, "2026-11-27")["all"]; all.Tally.Completed != 0 {
		t.Errorf("a call-back counted: %+v", all)
	}
}
