package evaluation

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/hotline12345/hotline/appeal"
)

// recountChunk is how many calls Recount reads per round trip.
const recountChunk = 500

// Recount computes the line's counters of the window's days from scratch,
// from the records they should follow: each call served (its line
// record), its rating and its complaint's status, never from the
// counters. Counters and Recount agree unless a counter went wrong; Audit
// says where they do not.
func (s *Store) Recount(ctx context.Context, w Window) (Table, error) {
	days := w.Days()
	if len(days) == 0 {
		return nil, fmt.Errorf("%w: window %s to %s", ErrInvalid, w.From, w.To)
	}
	cmds := make([]*redis.StringSliceCmd, len(days))
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, d := range days {
			cmds[i] = p.SMembers(ctx, s.lineDay+d+":calls")
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("evaluation: recount: %w", err)
	}
	var ids []string
	for _, c := range cmds {
		ids = append(ids, c.Val()...)
	}
	t := Table{}
	for chunk := range slices.Chunk(ids, recountChunk) {
		if err := s.recountCalls(ctx, chunk, t); err != nil {
			return nil, fmt.Errorf("evaluation: recount: %w", err)
		}
	}
	return t, nil
}

// recountCalls adds the calls' contributions to t.
func (s *Store) recountCalls(ctx context.Context, ids []string, t Table) error {
	type reads struct {
		line      *redis.StringCmd
		rating    *redis.StringCmd
		complaint *redis.StringCmd
	}
	rs := make([]reads, len(ids))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			rs[i] = reads{
				line:      p.Get(ctx, s.lineCall+id),
				rating:    p.Get(ctx, s.ratingKey+id),
				complaint: p.HGet(ctx, s.complaintKey+id, "status"),
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	for _, r := range rs {
		f := strings.Split(r.line.Val(), "|")
		if len(f) != 6 {
			continue // expired since the index was read
		}
		day, agent, category := f[0], f[2], f[3]
		c := Counts{Served: 1}
		if doc, err := r.rating.Result(); err == nil {
			rt, err := decodeRating(doc)
			if err != nil {
				return err
			}
			switch rt.Verdict {
			case Praise:
				c.Praise = 1
			case BadReview:
				c.BadReview = 1
			case NoRating:
				c.NoRating = 1
			}
		} else if !errors.Is(err, redis.Nil) {
			return err
		}
		switch ComplaintStatus(r.complaint.Val()) {
		case Upheld:
			c.Upheld = 1
		case Dismissed:
			c.Dismissed = 1
		}
		if c.Upheld+c.Dismissed > 0 && c.BadReview == 0 {
			// A complaint is a bad review, whether or not its rating
			// was read: the counters count it as one.
			c.BadReview = 1
		}
		for _, sc := range []Scope{Hotline, {AgentID: agent}, {Category: appeal.Category(category)}} {
			t.add(day, sc, c)
		}
	}
	return nil
}

// Difference is a day and scope whose counters disagree with Recount.
type Difference struct {
	Day       string `json:"day"`
	Scope     Scope  `json:"scope"`
	Counted   Counts `json:"counted"`
	Recounted Counts `json:"recounted"`
}

// Audit compares the window's counters with a recount from the records,
// and returns every day and scope where they differ, by day and scope; none
// when the counters are right. Calls of a day still being served may move
// between the two reads: audit a day that is over.
func (s *Store) Audit(ctx context.Context, w Window) ([]Difference, error) {
	counted, err := s.Counters(ctx, w.Days())
	if err != nil {
		return nil, err
	}
	recounted, err := s.Recount(ctx, w)
	if err != nil {
		return nil, err
	}
	var out []Difference
	for _, day := range w.Days() {
		scopes := map[Scope]bool{}
		for sc := range counted[day] {
			scopes[sc] = true
		}
		for sc := range recounted[day] {
			scopes[sc] = true
		}
		for sc := range scopes {
			if a, b := counted[day][sc], recounted[day][sc]; a != b {
				out = append(out, Difference{Day: day, Scope: sc, Counted: a, Recounted: b})
			}
		}
	}
	slices.SortFunc(out, func(a, b Difference) int {
		if a.Day != b.Day {
			return strings.Compare(a.Day, b.Day)
		}
		return strings.Compare(a.Scope.row(), b.Scope.row())
	})
	return out, nil
}
