package callback

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/internal/zpage"
)

// Leased is the state a waiting visit is in while an agent holds it.
const Leased State = "leased"

// ListStates are the states List takes.
var ListStates = []State{Waiting, Leased, Done, GaveUp, Withdrawn, WrongNumbered}

// List returns a page of the visits in a state: waiting in the
// worklist's order, leased by the end of their lease, ended ones newest
// first; and the next page's cursor ("" on the last).
func (s *Store) List(ctx context.Context, st State, limit int, cursor string) ([]Visit, string, error) {
	if limit < 1 {
		limit = 50
	}
	limit = min(limit, 500)
	after, err := zpage.Parse(cursor)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	q := zpage.Query{After: after, Limit: limit}
	switch st {
	case Waiting:
		q.Key = s.worklist
	case Leased:
		q.Key = s.leaseEnds
	case Done, GaveUp, Withdrawn, WrongNumbered:
		q.Key, q.Reverse = s.ended+string(st), true
	default:
		return nil, "", fmt.Errorf("%w: state %q", ErrInvalid, st)
	}
	zs, next, err := zpage.Page(ctx, s.rdb, q, nil)
	if err != nil {
		return nil, "", fmt.Errorf("callback: list: %w", err)
	}
	ids := make([]string, len(zs))
	for i, z := range zs {
		ids[i] = z.Member.(string)
	}
	out, err := s.visitsOf(ctx, ids)
	if err != nil {
		return nil, "", err
	}
	if st == Leased {
		for i := range out {
			out[i].State = Leased
		}
	}
	c := ""
	if next != nil {
		c = next.String()
	}
	return out, c, nil
}

// Figures are the visits by state and kind, with those leased among the
// waiting ones, and how long the longest-due waiting visit has been due.
type Figures struct {
	ByState map[State]map[Kind]int64
	Leased  int64
	// OldestDue is the earliest due time of a waiting visit not leased;
	// zero without any.
	OldestDue time.Time
}

// Figures reads the visits' figures.
func (s *Store) Figures(ctx context.Context) (Figures, error) {
	var counts *redis.MapStringStringCmd
	var leased *redis.IntCmd
	var firsts [4]*redis.ZSliceCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		counts = p.HGetAll(ctx, s.counts)
		leased = p.HLen(ctx, s.leases)
		for band := range firsts {
			firsts[band] = p.ZRangeByScoreWithScores(ctx, s.worklist, &redis.ZRangeBy{
				Min: strconv.FormatInt(int64(band)*1e13, 10), Max: "(" + strconv.FormatInt(int64(band+1)*1e13, 10), Count: 1})
		}
		return nil
	})
	if err != nil {
		return Figures{}, fmt.Errorf("callback: figures: %w", err)
	}
	f := Figures{ByState: map[State]map[Kind]int64{}, Leased: leased.Val()}
	for k, v := range counts.Val() {
		st, kind, ok := strings.Cut(k, "|")
		n, err := strconv.ParseInt(v, 10, 64)
		if !ok || err != nil {
			continue
		}
		if f.ByState[State(st)] == nil {
			f.ByState[State(st)] = map[Kind]int64{}
		}
		f.ByState[State(st)][Kind(kind)] = n
	}
	var dues []time.Time
	for i, c := range firsts {
		if zs := c.Val(); len(zs) > 0 {
			ms := int64(zs[0].Score) - int64(i)*1e13
			dues = append(dues, time.UnixMilli(ms).In(s.opts.Location))
		}
	}
	if len(dues) > 0 {
		f.OldestDue = slices.MinFunc(dues, func(a, b time.Time) int { return a.Compare(b) })
	}
	return f, nil
}

// Held returns the visits agent holds a lease on, soonest lease end
// first.
func (s *Store) Held(ctx context.Context, agent string) ([]Lease, error) {
	all, err := s.rdb.HGetAll(ctx, s.leases).Result()
	if err != nil {
		return nil, fmt.Errorf("callback: held: %w", err)
	}
	var ids []string
	until := map[string]time.Time{}
	for id, v := range all {
		parts := strings.Split(v, "|")
		if len(parts) < 2 || parts[0] != agent {
			continue
		}
		ms, _ := strconv.ParseInt(parts[1], 10, 64)
		ids = append(ids, id)
		until[id] = time.UnixMilli(ms)
	}
	// A visit ended since the leases were read is not there.
	vs, err := s.visitsOf(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]Lease, len(vs))
	for i, v := range vs {
		out[i] = Lease{Visit: v, Agent: agent, Until: until[v.ID]}
	}
	slices.SortFunc(out, func(a, b Lease) int { return a.Until.Compare(b.Until) })
	return out, nil
}

// visitsOf reads the visits ids name in one round trip, in their order,
// leaving out those not there.
func (s *Store) visitsOf(ctx context.Context, ids []string) ([]Visit, error) {
	out := []Visit{}
	if len(ids) == 0 {
		return out, nil
	}
	docs, err := s.rdb.HMGet(ctx, s.visits, ids...).Result()
	if err != nil {
		return nil, fmt.Errorf("callback: visits: %w", err)
	}
	for i, d := range docs {
		doc, ok := d.(string)
		if !ok {
			continue
		}
		v, err := decodeVisit(ids[i], doc)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// AgentAttempt is an attempt with the visit it was made on.
type AgentAttempt struct {
	Visit    string          `json:"visit"`
	Appeal   string          `json:"appeal,omitempty"`
	Category appeal.Category `json:"category"`
	Attempt
}

// AttemptsBy returns the attempts agent recorded since since, newest
// first. The visits are found through the newest entries of the visits'
// audit back to since (at most maxScan entries back); the attempts are
// read from the visits themselves.
func (s *Store) AttemptsBy(ctx context.Context, agent string, since time.Time) ([]AgentAttempt, error) {
	const chunk, maxScan = 1000, 50_000
	var ids []string
	seen := map[string]bool{}
	top := "+"
scan:
	for scanned := 0; scanned < maxScan; scanned += chunk {
		msgs, err := s.rdb.XRevRangeN(ctx, s.log, top, "-", chunk).Result()
		if err != nil {
			return nil, fmt.Errorf("callback: attempts by %s: %w", agent, err)
		}
		for _, m := range msgs {
			raw, _ := m.Values["change"].(string)
			var c Change
			if err := json.Unmarshal([]byte(raw), &c); err != nil {
				continue // not an entry this reads
			}
			if c.At.Before(since) {
				break scan
			}
			if c.By == agent && strings.HasPrefix(c.What, "attempt: ") && !seen[c.Visit] {
				seen[c.Visit] = true
				ids = append(ids, c.Visit)
			}
		}
		if len(msgs) < chunk {
			break
		}
		top = "(" + msgs[len(msgs)-1].ID
	}
	vs, err := s.visitsOf(ctx, ids)
	if err != nil {
		return nil, err
	}
	var out []AgentAttempt
	for _, v := range vs {
		for _, a := range v.Attempts {
			if a.By == agent && !a.At.Before(since) {
				out = append(out, AgentAttempt{Visit: v.ID, Appeal: v.Appeal, Category: v.Category, Attempt: a})
			}
		}
	}
	slices.SortFunc(out, func(a, b AgentAttempt) int { return b.At.Compare(a.At) })
	return out, nil
}
