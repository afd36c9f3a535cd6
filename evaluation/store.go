package evaluation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/internal/zpage"
)

// List limits: a console page, and a cap that keeps one reply small.
const (
	DefaultListLimit = 50
	MaxListLimit     = 500
)

// dayLayout names a day in keys and in AgentDay.Day.
const dayLayout = "2006-01-02"

// StoreOptions configures a Store.
type StoreOptions struct {
	// Prefix starts every key of the store. Empty means "hotline".
	Prefix string
	// Location sets the day boundaries of the counters. Nil means
	// appeal.DefaultLocation() (Asia/Shanghai), the zone the appeals' dates
	// are counted in, so a node's TZ never moves a rating to another day.
	Location *time.Location
	// Now is the clock for a Rating without At and for review times. Nil
	// means time.Now.
	Now func() time.Time
}

// Store keeps ratings and complaints in Redis. All its keys share the hash
// tag {eval}, so a rating, its counters, its index entries and its
// complaint change together in one script, on Redis Cluster too.
//
// Keys, under <prefix>:{eval}:
//
//	rating:<callID>        the call's rating, JSON; written once
//	rated                  sorted set of rated call ids by rating time (ms)
//	agent:<agentID>        the same, for one agent's calls
//	count:<day>            hash: praise, bad_review, none, upheld, dismissed
//	                       of the whole hotline on day (2026-11-27)
//	count:<day>:<agentID>  the same, for one agent
//	complaint:<callID>     hash: doc (the complaint, JSON), status
//	complaints             sorted set of complaint ids by OpenedAt (ms)
//	complaints:pending     sorted set of pending ids by OpenedAt (ms)
//	complaints:upheld      sorted set of upheld ids by ReviewedAt (ms)
//	complaints:dismissed   sorted set of dismissed ids by ReviewedAt (ms)
//
// Nothing expires: ratings and reviews are the audit trail of the complaint
// rate.
//
// A Store is safe for concurrent use, also by several hotline nodes.
type Store struct {
	rdb redis.UniversalClient
	loc *time.Location
	now func() time.Time

	ratingKey    string
	rated        string
	agentKey     string
	countKey     string
	complaintKey string
	complaints   string
	byStatus     string
}

// NewStore returns a Store on rdb.
func NewStore(rdb redis.UniversalClient, opts StoreOptions) *Store {
	if opts.Prefix == "" {
		opts.Prefix = "hotline"
	}
	if opts.Location == nil {
		opts.Location = appeal.DefaultLocation()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	base := opts.Prefix + ":{eval}:"
	return &Store{
		rdb:          rdb,
		loc:          opts.Location,
		now:          opts.Now,
		ratingKey:    base + "rating:",
		rated:        base + "rated",
		agentKey:     base + "agent:",
		countKey:     base + "count:",
		complaintKey: base + "complaint:",
		complaints:   base + "complaints",
		byStatus:     base + "complaints:",
	}
}

// day names the day of t in the store's zone.
func (s *Store) day(t time.Time) string { return t.In(s.loc).Format(dayLayout) }

// counts returns the counter keys of a day: the hotline's and the agent's.
func (s *Store) counts(day, agentID string) (total, agent string) {
	total = s.countKey + day
	return total, total + ":" + agentID
}

// recordScript stores the first rating of a call and everything that
// follows from it, or nothing. A later run for the same call, a go-redis
// retry after a read timeout or a key repeated by the media layer, finds
// the rating and returns it, so counters move once per call (一次一评).
//
// KEYS: rating key, rated index, agent index, day counters, agent's day
// counters, complaint key, complaints index, pending index. ARGV: rating
// document, rating time in ms, call id, verdict (the counter field),
// complaint document ("" for no complaint).
//
// Returns {1, document} when stored, {0, stored document} when the call
// was rated already.
var recordScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then
  return {0, cur}
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[3])
redis.call('HINCRBY', KEYS[4], ARGV[4], 1)
redis.call('HINCRBY', KEYS[5], ARGV[4], 1)
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[6], 'doc', ARGV[5], 'status', 'pending')
  redis.call('ZADD', KEYS[7], ARGV[2], ARGV[3])
  redis.call('ZADD', KEYS[8], ARGV[2], ARGV[3])
end
return {1, ARGV[1]}
`)

// Record stores the call's one rating: its counters, its index entries
// and, for a bad review, a pending complaint. The first rating of a call
// wins. Recording the same rating again (equal in all but At) changes
// nothing and returns the stored rating; a different rating for a rated
// call changes nothing and returns the stored rating with an error
// wrapping ErrAlreadyRated. An incomplete or inconsistent rating is an
// error wrapping ErrInvalid. A zero At means now.
func (s *Store) Record(ctx context.Context, r Rating) (Rating, error) {
	if err := r.Validate(); err != nil {
		return Rating{}, err
	}
	if r.At.IsZero() {
		r.At = s.now()
	}
	r.At = r.At.In(s.loc)
	doc, err := json.Marshal(r)
	if err != nil {
		return Rating{}, fmt.Errorf("evaluation: encode rating of %s: %w", r.CallID, err)
	}
	var complaint []byte
	if r.Verdict == BadReview {
		complaint, err = json.Marshal(Complaint{
			ID: r.CallID, CallID: r.CallID, AppealID: r.AppealID, AgentID: r.AgentID,
			Category: r.Category, OpenedAt: r.At, Status: Pending,
		})
		if err != nil {
			return Rating{}, fmt.Errorf("evaluation: encode complaint of %s: %w", r.CallID, err)
		}
	}
	total, agent := s.counts(s.day(r.At), r.AgentID)
	keys := []string{
		s.ratingKey + r.CallID, s.rated, s.agentKey + r.AgentID, total, agent,
		s.complaintKey + r.CallID, s.complaints, s.byStatus + string(Pending),
	}
	res, err := recordScript.Run(ctx, s.rdb, keys,
		doc, r.At.UnixMilli(), r.CallID, string(r.Verdict), complaint).Slice()
	if err != nil {
		return Rating{}, fmt.Errorf("evaluation: record rating of %s: %w", r.CallID, err)
	}
	stored, fresh, err := scriptReply(res)
	if err != nil {
		return Rating{}, fmt.Errorf("evaluation: record rating of %s: %w", r.CallID, err)
	}
	got, err := decodeRating(stored)
	if err != nil {
		return Rating{}, err
	}
	if fresh != 1 && !sameRating(got, r) {
		return got, fmt.Errorf("%w: call %s has %s, not %s", ErrAlreadyRated, r.CallID, got.Verdict, r.Verdict)
	}
	return got, nil
}

// scriptReply reads the {flag, document} reply of a script.
func scriptReply(res []any) (doc string, flag int64, err error) {
	if len(res) != 2 {
		return "", 0, fmt.Errorf("script replied %v", res)
	}
	flag, ok := res[0].(int64)
	if !ok {
		return "", 0, fmt.Errorf("script replied %v", res)
	}
	doc, _ = res[1].(string)
	return doc, flag, nil
}

func decodeRating(doc string) (Rating, error) {
	var r Rating
	if err := json.Unmarshal([]byte(doc), &r); err != nil {
		return Rating{}, fmt.Errorf("evaluation: decode rating: %w", err)
	}
	return r, nil
}

// Get returns the rating of a call, or an error wrapping ErrNotFound when
// the call has none (it was never asked, or not yet).
func (s *Store) Get(ctx context.Context, callID string) (Rating, error) {
	doc, err := s.rdb.Get(ctx, s.ratingKey+callID).Result()
	if errors.Is(err, redis.Nil) {
		return Rating{}, fmt.Errorf("%w: no rating of call %s", ErrNotFound, callID)
	}
	if err != nil {
		return Rating{}, fmt.Errorf("evaluation: get rating of %s: %w", callID, err)
	}
	return decodeRating(doc)
}

// Query selects ratings for List.
type Query struct {
	// From and To bound the rating time, From included and To excluded,
	// to the millisecond. A zero bound is open.
	From, To time.Time
	// AgentID keeps one agent's ratings; empty keeps all.
	AgentID string
	// Limit below 1 means DefaultListLimit; above MaxListLimit it is cut to
	// MaxListLimit.
	Limit int
	// Cursor is the next-page cursor ListPage gave; "" for the first page.
	Cursor string
}

// List returns ratings newest first: the first page of ListPage.
func (s *Store) List(ctx context.Context, q Query) ([]Rating, error) {
	q.Cursor = ""
	out, _, err := s.ListPage(ctx, q)
	return out, err
}

// ListPage returns ratings newest first, after q.Cursor, and the next
// page's cursor, "" on the last. A cursor not made here is an error
// wrapping zpage.ErrCursor.
func (s *Store) ListPage(ctx context.Context, q Query) ([]Rating, string, error) {
	after, err := zpage.Parse(q.Cursor)
	if err != nil {
		return nil, "", err
	}
	zq := zpage.Query{Key: s.rated, Reverse: true, After: after, Limit: clampLimit(q.Limit)}
	if q.AgentID != "" {
		zq.Key = s.agentKey + q.AgentID
	}
	if !q.From.IsZero() {
		zq.Min = strconv.FormatInt(q.From.UnixMilli(), 10)
	}
	if !q.To.IsZero() {
		zq.Max = "(" + strconv.FormatInt(q.To.UnixMilli(), 10)
	}
	docs := map[string]string{}
	keep := func(zs []redis.Z) ([]bool, error) {
		keys := make([]string, len(zs))
		for i, z := range zs {
			keys[i] = s.ratingKey + z.Member.(string)
		}
		// One MGET: the keys share the {eval} slot.
		vals, err := s.rdb.MGet(ctx, keys...).Result()
		if err != nil {
			return nil, err
		}
		ok := make([]bool, len(zs))
		for i, v := range vals {
			if doc, isDoc := v.(string); isDoc {
				docs[zs[i].Member.(string)], ok[i] = doc, true
			}
		}
		return ok, nil
	}
	zs, next, err := zpage.Page(ctx, s.rdb, zq, keep)
	if err != nil {
		return nil, "", fmt.Errorf("evaluation: list ratings: %w", err)
	}
	out := make([]Rating, 0, len(zs))
	for _, z := range zs {
		r, err := decodeRating(docs[z.Member.(string)])
		if err != nil {
			return nil, "", err
		}
		out = append(out, r)
	}
	return out, cursorText(next), nil
}

// cursorText is a next page's cursor as callers pass it back; "" for none.
func cursorText(c *zpage.Cursor) string {
	if c == nil {
		return ""
	}
	return c.String()
}

func clampLimit(n int) int {
	if n < 1 {
		return DefaultListLimit
	}
	return min(n, MaxListLimit)
}

// AgentDay returns one agent's counters on the day of day, in the store's
// zone. A day without ratings counts zero.
func (s *Store) AgentDay(ctx context.Context, agentID string, day time.Time) (AgentDay, error) {
	if agentID == "" {
		return AgentDay{}, fmt.Errorf("%w: no agent id", ErrInvalid)
	}
	d := s.day(day)
	_, key := s.counts(d, agentID)
	return s.readCounts(ctx, key, AgentDay{AgentID: agentID, Day: d})
}

// Totals returns the whole hotline's counters on the day of day, in the
// store's zone; AgentID is empty.
func (s *Store) Totals(ctx context.Context, day time.Time) (AgentDay, error) {
	d := s.day(day)
	key, _ := s.counts(d, "")
	return s.readCounts(ctx, key, AgentDay{Day: d})
}

func (s *Store) readCounts(ctx context.Context, key string, a AgentDay) (AgentDay, error) {
	vals, err := s.rdb.HMGet(ctx, key,
		string(Praise), string(BadReview), string(NoRating), string(Upheld), string(Dismissed)).Result()
	if err != nil {
		return AgentDay{}, fmt.Errorf("evaluation: counts %s: %w", key, err)
	}
	fields := []*int64{&a.Praise, &a.BadReview, &a.NoRating, &a.Upheld, &a.Dismissed}
	for i, v := range vals {
		str, ok := v.(string)
		if !ok {
			continue // never counted
		}
		n, err := strconv.ParseInt(str, 10, 64)
		if err != nil {
			return AgentDay{}, fmt.Errorf("evaluation: counts %s: %w", key, err)
		}
		*fields[i] = n
	}
	return a, nil
}
