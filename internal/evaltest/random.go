// Package evaltest drives the complaint line with random events, for the
// tests that check its counters against a recount and an audit.
package evaltest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/evaluation"
)

// call is a call of the model, as the events left it.
type call struct {
	id, agent string
	category  appeal.Category
	at        time.Time
	served    bool // counted: served, or rated
	verdict   evaluation.Verdict
	decision  evaluation.ComplaintStatus
}

// Random sends n random events to the stores, each to one of them at
// random: calls served over the 72 hours from start, ratings, reviews,
// reversals, and retries or replays of the event before. It returns the
// counters the events should have left, per day and scope, in loc.
func Random(ctx context.Context, stores []*evaluation.Store, rng *rand.Rand, n int, start time.Time, loc *time.Location) (evaluation.Table, error) {
	categories := []appeal.Category{appeal.Emergency, appeal.Livelihood, appeal.General, appeal.Complex}
	var calls []*call
	var last func() error // the last event, for a retry
	for range n {
		s := stores[rng.IntN(len(stores))]
		var ev func() error
		switch k := rng.IntN(100); {
		case k < 10 && last != nil:
			ev = last // a retry, or a replay from another node
		case k < 35 || len(calls) == 0:
			c := &call{
				id: fmt.Sprintf("c%05d", len(calls)), agent: fmt.Sprintf("agent-%d", rng.IntN(7)),
				category: categories[rng.IntN(4)],
				at:       start.Add(time.Duration(rng.IntN(72*60)) * time.Minute),
			}
			calls = append(calls, c)
			ev = func() error {
				c.served = true
				return s.Served(ctx, evaluation.ServedCall{CallID: c.id, AgentID: c.agent, Category: c.category, At: c.at})
			}
		case k < 65:
			c := calls[rng.IntN(len(calls))]
			v := []evaluation.Verdict{evaluation.Praise, evaluation.BadReview, evaluation.BadReview, evaluation.NoRating}[rng.IntN(4)]
			ev = func() error {
				r := evaluation.Rating{CallID: c.id, AgentID: c.agent, Category: c.category, Verdict: v,
					At: c.at.Add(time.Duration(rng.IntN(600)) * time.Second), ServedAt: c.at, PromptID: "rating", PromptVersion: "1"}
				if v == evaluation.NoRating {
					r.Reason = evaluation.ReasonNoInput
				} else {
					r.Key = map[evaluation.Verdict]string{evaluation.Praise: "1", evaluation.BadReview: "2"}[v]
				}
				_, err := s.Record(ctx, r)
				if errors.Is(err, evaluation.ErrAlreadyRated) && c.verdict != "" && c.verdict != v {
					return nil
				}
				if err == nil && c.verdict == "" {
					c.served, c.verdict = true, v
					if v == evaluation.BadReview {
						c.decision = evaluation.Pending
					}
				}
				return err
			}
		case k < 85:
			c := calls[rng.IntN(len(calls))]
			d := []evaluation.ComplaintStatus{evaluation.Upheld, evaluation.Dismissed}[rng.IntN(2)]
			ev = func() error {
				_, err := s.Review(ctx, c.id, d, "sup-1", "")
				switch {
				case c.decision == "" && errors.Is(err, evaluation.ErrNotFound):
					return nil
				case c.decision == evaluation.Pending && err == nil:
					c.decision = d
					return nil
				case c.decision != "" && c.decision != evaluation.Pending && c.decision != d && errors.Is(err, evaluation.ErrAlreadyReviewed):
					return nil
				case c.decision == d:
					return err
				}
				return fmt.Errorf("review of %s (%q) as %s: %v", c.id, c.decision, d, err)
			}
		default:
			c := calls[rng.IntN(len(calls))]
			d := []evaluation.ComplaintStatus{evaluation.Upheld, evaluation.Dismissed}[rng.IntN(2)]
			ev = func() error {
				_, err := s.Reverse(ctx, c.id, d, "sup-2", "on a second hearing")
				switch {
				case c.decision == "" && errors.Is(err, evaluation.ErrNotFound):
					return nil
				case c.decision == evaluation.Pending && errors.Is(err, evaluation.ErrInvalid):
					return nil
				case c.decision != "" && c.decision != evaluation.Pending && err == nil:
					c.decision = d
					return nil
				}
				return fmt.Errorf("reversal of %s (%q) to %s: %v", c.id, c.decision, d, err)
			}
		}
		if err := ev(); err != nil {
			return nil, err
		}
		last = ev
	}

	model := evaluation.Table{}
	for _, c := range calls {
		if !c.served {
			continue
		}
		n := evaluation.Counts{Served: 1}
		switch c.verdict {
		case evaluation.Praise:
			n.Praise = 1
		case evaluation.BadReview:
			n.BadReview = 1
		case evaluation.NoRating:
			n.NoRating = 1
		}
		switch c.decision {
		case evaluation.Upheld:
			n.Upheld = 1
		case evaluation.Dismissed:
			n.Dismissed = 1
		}
		day := c.at.In(loc).Format(time.DateOnly)
		for _, sc := range []evaluation.Scope{evaluation.Hotline, {AgentID: c.agent}, {Category: c.category}} {
			if model[day] == nil {
				model[day] = map[evaluation.Scope]evaluation.Counts{}
			}
			model[day][sc] = model[day][sc].Add(n)
		}
	}
	return model, nil
}
