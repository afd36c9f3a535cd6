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
	// ComplaintLimitPer10000 is the line: effective complaints per 10,000
	// calls served. Zero means DefaultComplaintLimit.
	ComplaintLimitPer10000 int
	// Retention is how long the line's counters and call records are kept:
	// a day's counters from the first call counted on the day, a call's
	// record from its first event. Zero means DefaultRetention.
	Retention time.Duration
	// ReviewSLA is how long a bad review may wait for its review before
	// it is flagged overdue. Zero means DefaultReviewSLA.
	ReviewSLA time.Duration
}

// DefaultReviewSLA is how long a bad review may wait for its review: a
// working day and night.
const DefaultReviewSLA = 24 * time.Hour

// Store keeps ratings and complaints in Redis. All its keys share the hash
// tag {eval}, so a rating, its counters, its index entries and its
// complaint change together in one script, on Redis Cluster too.
//
// Keys, under <prefix>:{eval}:
//
//	rating:<callID>        the call's rating, JSON; written once
//	rated                  sorted set of rated call ids by rating time (ms)
//	agent:<agentID>        the same, for one agent's calls
//	line:<day>             the line's counters of day (2026-11-27): a table
//	                       of one row per scope (counters.go)
//	line:rows              hash: scope (hotline, agent:<id>, category:<c>)
//	                       → its row in every day's table
//	line:call:<callID>     the call's state on the line (counters.go)
//	line:<day>:calls       set of the ids of the calls counted on day
//	complaint:<callID>     hash: doc (the complaint, JSON), status
//	complaints             sorted set of complaint ids by OpenedAt (ms)
//	complaints:pending     sorted set of pending ids by OpenedAt (ms)
//	complaints:upheld      sorted set of upheld ids by ReviewedAt (ms)
//	complaints:dismissed   sorted set of dismissed ids by ReviewedAt (ms)
//	decisions:<callID>     list of the complaint's decisions, JSON, oldest
//	                       first: every review and reversal
//	line:over              hash: "<scope>|<window>" → over, for each watched
//	                       window over the line (alarm.go)
//	line:events            stream of the line's alert events (alarm.go)
//	line:watcher           the lease of the node that raises them
//
// Ratings and reviews never expire: they are the audit trail of the
// complaint rate. The line:* keys expire Retention after they were made:
// a day's table and set after the first call counted on the day, a call's
// record after its first event; the row index's expiry is renewed with
// every day's first call, so it outlives every table whose rows it names.
//
// A Store is safe for concurrent use, also by several hotline nodes.
type Store struct {
	rdb       redis.UniversalClient
	loc       *time.Location
	now       func() time.Time
	limit     int
	retention time.Duration
	reviewSLA time.Duration

	ratingKey    string
	rated        string
	agentKey     string
	complaintKey string
	complaints   string
	byStatus     string
	lineDay      string
	lineRows     string
	lineCall     string
	lineStates   string
	lineEvents   string
	lineWatcher  string
	decisions    string

	batch coalescer
	// changed is signalled, without blocking, when a review decision
	// changes the line: an Alarm looks at the windows again at once.
	changed chan struct{}
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
	if opts.ComplaintLimitPer10000 <= 0 {
		opts.ComplaintLimitPer10000 = DefaultComplaintLimit
	}
	if opts.Retention <= 0 {
		opts.Retention = DefaultRetention
	}
	if opts.ReviewSLA <= 0 {
		opts.ReviewSLA = DefaultReviewSLA
	}
	base := opts.Prefix + ":{eval}:"
	return &Store{
		rdb:          rdb,
		loc:          opts.Location,
		now:          opts.Now,
		limit:        opts.ComplaintLimitPer10000,
		retention:    opts.Retention,
		reviewSLA:    opts.ReviewSLA,
		ratingKey:    base + "rating:",
		rated:        base + "rated",
		agentKey:     base + "agent:",
		complaintKey: base + "complaint:",
		complaints:   base + "complaints",
		byStatus:     base + "complaints:",
		lineDay:      base + "line:",
		lineRows:     base + "line:rows",
		lineCall:     base + "line:call:",
		lineStates:   base + "line:over",
		lineEvents:   base + "line:events",
		lineWatcher:  base + "line:watcher",
		decisions:    base + "decisions:",
		changed:      make(chan struct{}, 1),
	}
}

// day names the day of t in the store's zone.
func (s *Store) day(t time.Time) string { return t.In(s.loc).Format(dayLayout) }

// recordScript stores the first rating of a call and everything that
// follows from it, or nothing. A later run for the same call, a go-redis
// retry after a read timeout or a key repeated by the media layer, finds
// the rating and returns it, so counters move once per call (一次一评). A
// rating counts its call served when no served event came before it: an
// agent served every rated call.
//
// KEYS: the call's line keys (callPrelude), rating key, rated index, agent
// index, complaint key, complaints index, pending index. ARGV: the call's
// line arguments, rating document, rating time in ms, verdict (the counter
// field), complaint document ("" for no complaint).
//
// Returns {1, ""} when stored, {0, stored document} when the call was
// rated already, {-2, day} when the call counts on day.
var recordScript = callScript(`
local got = redis.call('MGET', KEYS[5], KEYS[1])
if got[1] then
  return {0, got[1]}
end
local st, other = callState(got[2])
if not st then
  return {-2, other}
end
redis.call('SET', KEYS[5], ARGV[7])
redis.call('ZADD', KEYS[6], ARGV[8], ARGV[1])
redis.call('ZADD', KEYS[7], ARGV[8], ARGV[1])
local decision = st.decision
if ARGV[10] ~= '' then
  redis.call('HSET', KEYS[8], 'doc', ARGV[10], 'status', 'pending')
  redis.call('ZADD', KEYS[9], ARGV[8], ARGV[1])
  redis.call('ZADD', KEYS[10], ARGV[8], ARGV[1])
  decision = 'pending'
end
moveCall(st, ARGV[9], decision)
return {1, ''}
`)

// Record stores the call's one rating: its counters, its index entries
// and, for a bad review, a pending complaint. The first rating of a call
// wins. Recording the same rating again (equal in all but At and
// ServedAt) changes nothing and returns the stored rating; a different
// rating for a rated call changes nothing and returns the stored rating
// with an error wrapping ErrAlreadyRated. An incomplete or inconsistent
// rating is an error wrapping ErrInvalid. A zero At means now. The rating
// counts on the day of ServedAt (At when zero), or of the call's served
// event when that came first.
func (s *Store) Record(ctx context.Context, r Rating) (Rating, error) {
	run, err := s.recordRun(&r)
	if err != nil {
		return Rating{}, err
	}
	stored, fresh, err := s.runShared(ctx, run)
	return s.recorded(r, stored, fresh, err)
}

// RecordAll records ratings as Record does, each in a script of its own
// (atomic and idempotent as Record is), all in one round trip: for
// replaying many ratings, as after an outage. It answers each rating in
// order, with its error.
func (s *Store) RecordAll(ctx context.Context, rs []Rating) ([]Rating, []error) {
	out, errs := make([]Rating, len(rs)), make([]error, len(rs))
	given := make([]Rating, len(rs)) // completed, leaving rs as it was
	var runs []callRun
	var at []int
	for i := range rs {
		given[i] = rs[i]
		run, err := s.recordRun(&given[i])
		if err != nil {
			errs[i] = err
			continue
		}
		runs, at = append(runs, run), append(at, i)
	}
	for j, reply := range s.runCalls(ctx, runs) {
		i := at[j]
		out[i], errs[i] = s.recorded(given[i], reply.doc, reply.flag, reply.err)
	}
	return out, errs
}

// recordRun checks r, completes its times and makes its run of
// recordScript.
func (s *Store) recordRun(r *Rating) (callRun, error) {
	if err := r.Validate(); err != nil {
		return callRun{}, err
	}
	if r.At.IsZero() {
		r.At = s.now()
	}
	r.At = r.At.In(s.loc)
	if !r.ServedAt.IsZero() {
		r.ServedAt = r.ServedAt.In(s.loc)
	}
	doc, err := json.Marshal(r)
	if err != nil {
		return callRun{}, fmt.Errorf("evaluation: encode rating of %s: %w", r.CallID, err)
	}
	var complaint []byte
	if r.Verdict == BadReview {
		complaint, err = json.Marshal(Complaint{
			ID: r.CallID, CallID: r.CallID, AppealID: r.AppealID, AgentID: r.AgentID,
			Category: r.Category, OpenedAt: r.At, ServedAt: r.ServedAt, Status: Pending,
		})
		if err != nil {
			return callRun{}, fmt.Errorf("evaluation: encode complaint of %s: %w", r.CallID, err)
		}
	}
	return callRun{
		script: recordScript,
		facts:  callFacts{callID: r.CallID, agentID: r.AgentID, category: r.Category, at: r.servedAt()},
		keys: []string{
			s.ratingKey + r.CallID, s.rated, s.agentKey + r.AgentID,
			s.complaintKey + r.CallID, s.complaints, s.byStatus + string(Pending),
		},
		args: []any{doc, r.At.UnixMilli(), string(r.Verdict), complaint},
	}, nil
}

// recorded answers recordScript's reply to a run for r.
func (s *Store) recorded(r Rating, stored string, fresh int64, err error) (Rating, error) {
	if err != nil {
		return Rating{}, fmt.Errorf("evaluation: record rating of %s: %w", r.CallID, err)
	}
	if fresh == 1 {
		return r, nil // stored as given
	}
	got, err := decodeRating(stored)
	if err != nil {
		return Rating{}, err
	}
	if !sameRating(got, r) {
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
// zone. A day without calls counts zero.
func (s *Store) AgentDay(ctx context.Context, agentID string, day time.Time) (AgentDay, error) {
	if agentID == "" {
		return AgentDay{}, fmt.Errorf("%w: no agent id", ErrInvalid)
	}
	return s.dayCounts(ctx, Scope{AgentID: agentID}, day)
}

// Totals returns the whole hotline's counters on the day of day, in the
// store's zone; AgentID is empty.
func (s *Store) Totals(ctx context.Context, day time.Time) (AgentDay, error) {
	return s.dayCounts(ctx, Hotline, day)
}

func (s *Store) dayCounts(ctx context.Context, sc Scope, day time.Time) (AgentDay, error) {
	d := s.day(day)
	per, err := s.scopeDays(ctx, sc, []string{d})
	if err != nil {
		return AgentDay{}, fmt.Errorf("evaluation: counts of %s on %s: %w", sc.row(), d, err)
	}
	c := per[0]
	return AgentDay{
		AgentID: sc.AgentID, Day: d, Served: c.Served, Praise: c.Praise, BadReview: c.BadReview,
		NoRating: c.NoRating, Upheld: c.Upheld, Dismissed: c.Dismissed, Pending: c.Pending(),
	}, nil
}
