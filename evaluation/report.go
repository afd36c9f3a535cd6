package evaluation

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hotline12345/hotline/appeal"
)

// CountedCall is one call a window's line counts, as the counters count
// it: the report lists them so that a rate can be recomputed by hand.
type CountedCall struct {
	Day      string          `json:"day"` // the day the call counts on
	CallID   string          `json:"call_id"`
	ServedAt time.Time       `json:"served_at"`
	AgentID  string          `json:"agent_id"`
	Category appeal.Category `json:"category"`
	// Rating is praise, bad_review or none; empty when the call has no
	// rating (yet).
	Rating Verdict `json:"rating,omitempty"`
	// Decision is the review of a bad review: pending, upheld or
	// dismissed; empty for a call without one.
	Decision  ComplaintStatus `json:"decision,omitempty"`
	DecidedBy string          `json:"decided_by,omitempty"`
	DecidedAt *time.Time      `json:"decided_at,omitempty"`
	Reversals int             `json:"reversals,omitempty"` // decisions changed after the first
	Effective bool            `json:"effective"`           // an effective complaint: counted in upheld
}

// Report calls each for every call the window counts in scope, day by
// day, each day's calls by the time they were served; it stops at the
// first error each returns. The calls are read from the line's records of
// each call, which the counters sum: the counts of the calls listed are
// the counters' (Audit checks them against the ratings and reviews).
func (s *Store) Report(ctx context.Context, w Window, sc Scope, each func(CountedCall) error) error {
	if err := sc.check(); err != nil {
		return err
	}
	days := w.Days()
	if len(days) == 0 {
		return fmt.Errorf("%w: window %s to %s", ErrInvalid, w.From, w.To)
	}
	for _, day := range days {
		ids, err := s.rdb.SMembers(ctx, s.lineDay+day+":calls").Result()
		if err != nil {
			return fmt.Errorf("evaluation: report %s: %w", day, err)
		}
		var calls []CountedCall
		for chunk := range slices.Chunk(ids, recountChunk) {
			got, err := s.countedCalls(ctx, chunk, sc)
			if err != nil {
				return fmt.Errorf("evaluation: report %s: %w", day, err)
			}
			calls = append(calls, got...)
		}
		slices.SortFunc(calls, func(a, b CountedCall) int {
			return cmp.Or(a.ServedAt.Compare(b.ServedAt), strings.Compare(a.CallID, b.CallID))
		})
		for _, c := range calls {
			if err := each(c); err != nil {
				return err
			}
		}
	}
	return nil
}

// countedCalls reads the line records of ids, and the decisions of those
// with a review, keeping the calls of scope.
func (s *Store) countedCalls(ctx context.Context, ids []string, sc Scope) ([]CountedCall, error) {
	recs := make([]*redis.StringCmd, len(ids))
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			recs[i] = p.Get(ctx, s.lineCall+id)
		}
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	var out []CountedCall
	for i, r := range recs {
		f := strings.Split(r.Val(), "|")
		if len(f) != 6 {
			continue // expired since the index was read
		}
		ms, _ := strconv.ParseInt(f[1], 10, 64)
		c := CountedCall{Day: f[0], CallID: ids[i], ServedAt: time.UnixMilli(ms).In(s.loc), AgentID: f[2],
			Category: appeal.Category(f[3]), Rating: Verdict(f[4]), Decision: ComplaintStatus(f[5])}
		if (sc.AgentID != "" && c.AgentID != sc.AgentID) || (sc.Category != "" && c.Category != sc.Category) {
			continue
		}
		if c.Rating == BadReview && c.Decision == "" {
			c.Decision = Pending
		}
		c.Effective = c.Decision == Upheld
		out = append(out, c)
	}
	// Who decided, for the calls with a decision.
	type reads struct {
		at  int
		doc *redis.StringCmd
		n   *redis.IntCmd
	}
	var rs []reads
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range out {
			if c.Decision == Upheld || c.Decision == Dismissed {
				rs = append(rs, reads{at: i, doc: p.HGet(ctx, s.complaintKey+c.CallID, "doc"), n: p.LLen(ctx, s.decisions+c.CallID)})
			}
		}
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	for _, r := range rs {
		doc, err := r.doc.Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, err
		}
		cp, err := decodeComplaint(doc)
		if err != nil {
			return nil, err
		}
		c := &out[r.at]
		c.DecidedBy, c.DecidedAt = cp.ReviewedBy, cp.ReviewedAt
		c.Reversals = max(int(r.n.Val())-1, 0)
	}
	return out, nil
}
