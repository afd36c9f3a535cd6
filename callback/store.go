package callback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hotline12345/hotline/appeal"
)

// Errors of the store; test with errors.Is.
var (
	ErrNotFound = errors.New("callback: not found")
	ErrInvalid  = errors.New("callback: invalid")
)

// StoreOptions configure a Store.
type StoreOptions struct {
	// Changed, when set, is told after each change of the worklist (a
	// visit decided, taken, put back, attempted): consoles refresh. It
	// must not block.
	Changed func()

	// Prefix starts every key of the store. Empty means "hotline".
	Prefix string
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Windows are the calling windows; zero means DefaultWindows in
	// Location.
	Windows *Windows
	// Location is the hotline's zone. Nil means appeal.DefaultLocation.
	Location *time.Location
	// Modes say how each category's return visits are made; a category
	// not named is visited by agents. Call-backs are always an agent's.
	Modes map[appeal.Category]Mode
	// Sample is the percentage of each category's consented appeals
	// visited; a category not named is visited in full (100).
	Sample map[appeal.Category]int
	// Seed keys the sample (Sampled).
	Seed string
	// Lease is how long a taken visit is the agent's when the taker
	// names no lease; 0 means DefaultLease.
	Lease time.Duration
	// Retry is the policy of attempts; zero means DefaultRetry.
	Retry Retry
	// Attempted, when set, hears the outcome of each attempt recorded.
	Attempted func(Outcome)
	// District, when set, names the district of an organizer: a
	// completed return visit counts in its lead organizer's district's
	// rates.
	District func(ctx context.Context, organizer string) (string, error)
	// PartlySolvedCounts counts "partly solved" as solved in the
	// solution rate; by default it counts as not solved.
	PartlySolvedCounts bool
	// RatesRetention is how long the rates' day counters are kept; 0
	// means DefaultRatesRetention.
	RatesRetention time.Duration
}

// Store keeps the visits in Redis. Its keys share the hash tag {visits}:
//
//	visits        hash: visit id → the visit, JSON
//	decisions     hash: appeal id → the decision on its visit (Decision),
//	              set once
//	worklist      sorted set of the waiting visits' ids: emergency first,
//	              then by due time (worklistScore)
//	dnc           hash: number → why it is not to be called, JSON
//	leases        hash: visit id → "<agent>|<lease end ms>|<worklist
//	              score>" while an agent works it
//	lease-ends    sorted set of the leased visits by lease end (ms)
//	counts        hash: "<state>|<kind>" → visits in it
//	ended:<state> sorted set of the ids of the visits that ended in the
//	              state (completed, unreachable, refused, wrong_number), by
//	              when (ms)
//	log           stream of every change, for the audit
//	rates:<day>   hash: "<group>|<counter>" → completed return visits of
//	              the day (rates.go), kept RatesRetention
//	rated:<day>   sorted set of the ids of the return visits the day's
//	              rates counted, by when completed (ms): each counts once
type Store struct {
	rdb  redis.UniversalClient
	opts StoreOptions

	base, visits, decisions, worklist, dnc, log, leases, leaseEnds, counts, ended string
}

// NewStore returns a Store on rdb.
func NewStore(rdb redis.UniversalClient, opts StoreOptions) *Store {
	if opts.Prefix == "" {
		opts.Prefix = "hotline"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Location == nil {
		opts.Location = appeal.DefaultLocation()
	}
	if opts.Windows == nil {
		w := DefaultWindows(opts.Location)
		opts.Windows = &w
	}
	if opts.Retry == (Retry{}) {
		opts.Retry = DefaultRetry
	}
	if opts.Lease <= 0 {
		opts.Lease = DefaultLease
	}
	if opts.RatesRetention <= 0 {
		opts.RatesRetention = DefaultRatesRetention
	}
	base := opts.Prefix + ":{visits}:"
	return &Store{rdb: rdb, opts: opts, base: base,
		visits: base + "visits", decisions: base + "decisions", worklist: base + "worklist", dnc: base + "dnc", log: base + "log",
		leases: base + "leases", leaseEnds: base + "lease-ends", counts: base + "counts", ended: base + "ended:"}
}

// worklistScore orders the worklist in four bands of 1e13 (ms): the
// agents' emergencies, the agents' other visits, then the same two of the
// automated visits; each band by due time.
func worklistScore(v Visit) float64 {
	band := int64(1)
	if v.Category == appeal.Emergency {
		band = 0
	}
	if v.Mode == ByIVR {
		band += 2
	}
	return float64(band*1e13 + v.Due.UnixMilli())
}

// bandOf is the first band of a mode's visits in the worklist.
func bandOf(m Mode) int64 {
	if m == ByIVR {
		return 2
	}
	return 0
}

// MaxLog bounds the audit stream of visit changes (approximately).
const MaxLog = 1000000

// decideScript records an appeal's decision once, and a visit with it
// when the decision is one.
//
// KEYS: decisions, visits, worklist, log, counts. ARGV: appeal id,
// decision, visit id, visit document ("" for none), worklist score, the
// log's fields (JSON), the log's most. Returns the decision stored (the one
// given, or the one an earlier run stored).
var decideScript = redis.NewScript(`
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return redis.call('HGET', KEYS[1], ARGV[1])
end
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[3])
  redis.call('HINCRBY', KEYS[5], 'waiting|return_visit', 1)
end
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[7], '*', 'change', ARGV[6])
return ARGV[2]
`)

// Change is one entry of the audit of visits: who, when, what.
type Change struct {
	At     time.Time `json:"at"`
	By     string    `json:"by"`
	Appeal string    `json:"appeal,omitempty"`
	Visit  string    `json:"visit,omitempty"`
	What   string    `json:"what"`
}

// AppealReader reads appeals; an *appeal.Store is one.
type AppealReader interface {
	Get(ctx context.Context, id string) (appeal.Appeal, error)
}

// Expired decides the visit of an appeal whose processing time expired:
// a visit, waiting from the next calling window, when the citizen
// consented, the sample takes it and the number is not on the
// do-not-call list; otherwise the reason there is none. The first
// decision on an appeal stands: run again, on this node or another, it
// returns the stored one and changes nothing.
func (s *Store) Expired(ctx context.Context, ev appeal.ClockEvent, appeals AppealReader) (Decision, error) {
	if ev.Kind != appeal.Expired {
		return "", fmt.Errorf("%w: a %s event starts no visit", ErrInvalid, ev.Kind)
	}
	return s.decide(ctx, ev, appeals, "processing time expired")
}

// FedBack decides the visit of an appeal whose feedback arrived, as
// Expired does (when the configuration visits on feedback): the decision
// made first, at the feedback or at the expiry, stands.
func (s *Store) FedBack(ctx context.Context, appealID string, appeals AppealReader) (Decision, error) {
	return s.decide(ctx, appeal.ClockEvent{Appeal: appealID, Kind: appeal.Expired, Stage: appeal.StageFeedback}, appeals, "feedback arrived")
}

func (s *Store) decide(ctx context.Context, ev appeal.ClockEvent, appeals AppealReader, why string) (Decision, error) {
	if got, err := s.rdb.HGet(ctx, s.decisions, ev.Appeal).Result(); err == nil {
		return Decision(got), nil
	} else if !errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("callback: decision of %s: %w", ev.Appeal, err)
	}
	a, err := appeals.Get(ctx, ev.Appeal)
	if err != nil {
		return "", fmt.Errorf("callback: the appeal of a visit: %w", err)
	}
	if ev.Due.IsZero() {
		ev.Due = a.FeedbackDue
	}
	now := s.opts.Now().In(s.opts.Location)
	decision := Visited
	switch {
	case !a.Consent.Given:
		decision = SkipNoConsent
	case !Sampled(s.opts.Seed, a.ID, s.percent(a.Category)):
		decision = SkipNotSampled
	default:
		dnc, err := s.OnDoNotCall(ctx, a.Caller)
		if err != nil {
			return "", err
		}
		if dnc {
			decision = SkipDoNotCall
		}
	}
	var doc []byte
	visit := VisitOf(a, ev, now, *s.opts.Windows)
	if s.opts.Modes[a.Category] == ByIVR {
		visit.Mode = ByIVR
	}
	if decision == Visited {
		if visit.District, err = s.district(ctx, visit); err != nil {
			return "", err
		}
	}
	if decision == Visited {
		if doc, err = json.Marshal(visit); err != nil {
			return "", fmt.Errorf("callback: encode visit %s: %w", visit.ID, err)
		}
	}
	change, err := json.Marshal(Change{At: now, By: "hotline", Appeal: a.ID, Visit: visit.ID, What: why + ": " + string(decision)})
	if err != nil {
		return "", err
	}
	got, err := decideScript.Run(ctx, s.rdb, []string{s.decisions, s.visits, s.worklist, s.log, s.counts},
		a.ID, string(decision), visit.ID, string(doc), worklistScore(visit), change, MaxLog).Text()
	if err != nil {
		return "", fmt.Errorf("callback: decide the visit of %s: %w", a.ID, err)
	}
	if Decision(got) == Visited {
		s.changed()
	}
	return Decision(got), nil
}

// VisitOf is the return visit of an appeal whose processing time
// expired: due from now, in the next calling window.
func VisitOf(a appeal.Appeal, ev appeal.ClockEvent, now time.Time, w Windows) Visit {
	v := Visit{ID: a.ID, Kind: ReturnVisit, Appeal: a.ID, Category: a.Category, State: Waiting,
		CreatedAt: now, Due: w.Next(now), Expired: ev.Due}
	if a.Assignment != nil {
		v.Organizers = a.Assignment.Organizers()
	}
	return v
}

func (s *Store) percent(c appeal.Category) int {
	if p, ok := s.opts.Sample[c]; ok {
		return p
	}
	return 100
}

// normalNumber is a number as the do-not-call list keeps it: its digits
// (and a leading +).
func normalNumber(n string) string {
	var b strings.Builder
	for i, r := range strings.TrimSpace(n) {
		if r >= '0' && r <= '9' || r == '+' && i == 0 {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// DoNotCall is a number on the do-not-call list, with why.
type DoNotCall struct {
	Number string    `json:"number" pii:"phone"`
	Reason string    `json:"reason"`
	By     string    `json:"by"`
	At     time.Time `json:"at"`
}

// AddDoNotCall puts a number on the do-not-call list: no visit calls it
// again.
func (s *Store) AddDoNotCall(ctx context.Context, number, reason, by string) error {
	n := normalNumber(number)
	if n == "" || reason == "" || by == "" {
		return fmt.Errorf("%w: a do-not-call entry needs a number, a reason and who adds it", ErrInvalid)
	}
	now := s.opts.Now().In(s.opts.Location)
	doc, err := json.Marshal(DoNotCall{Number: n, Reason: reason, By: by, At: now})
	if err != nil {
		return err
	}
	change, err := json.Marshal(Change{At: now, By: by, What: "do not call: " + reason})
	if err != nil {
		return err
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, s.dnc, n, doc)
		p.XAdd(ctx, &redis.XAddArgs{Stream: s.log, MaxLen: MaxLog, Approx: true, Values: []any{"change", change}})
		return nil
	})
	if err != nil {
		return fmt.Errorf("callback: do-not-call list: %w", err)
	}
	return nil
}

// OnDoNotCall reports whether the number is on the do-not-call list.
func (s *Store) OnDoNotCall(ctx context.Context, number string) (bool, error) {
	ok, err := s.rdb.HExists(ctx, s.dnc, normalNumber(number)).Result()
	if err != nil {
		return false, fmt.Errorf("callback: do-not-call list: %w", err)
	}
	return ok, nil
}

// Get returns the visit id, or an error wrapping ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (Visit, error) {
	doc, err := s.rdb.HGet(ctx, s.visits, id).Result()
	if errors.Is(err, redis.Nil) {
		return Visit{}, fmt.Errorf("%w: visit %s", ErrNotFound, id)
	}
	if err != nil {
		return Visit{}, fmt.Errorf("callback: visit %s: %w", id, err)
	}
	return decodeVisit(id, doc)
}

func decodeVisit(id, doc string) (Visit, error) {
	var v Visit
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		return Visit{}, fmt.Errorf("callback: decode visit %s: %w", id, err)
	}
	return v, nil
}

// Decision is the decision on an appeal's visit, "" when none was made.
func (s *Store) Decision(ctx context.Context, appealID string) (Decision, error) {
	d, err := s.rdb.HGet(ctx, s.decisions, appealID).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("callback: decision of %s: %w", appealID, err)
	}
	return Decision(d), nil
}

// Waiting lists the waiting visits' ids in the worklist's order:
// emergencies first, each by due time.
func (s *Store) Waiting(ctx context.Context, limit int) ([]string, error) {
	if limit < 1 {
		limit = 50
	}
	ids, err := s.rdb.ZRange(ctx, s.worklist, 0, int64(limit-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("callback: worklist: %w", err)
	}
	return ids, nil
}

// Changes lists the audit's latest entries, newest first.
func (s *Store) Changes(ctx context.Context, limit int) ([]Change, error) {
	msgs, err := s.rdb.XRevRangeN(ctx, s.log, "+", "-", int64(max(limit, 1))).Result()
	if err != nil {
		return nil, fmt.Errorf("callback: audit: %w", err)
	}
	out := make([]Change, 0, len(msgs))
	for _, m := range msgs {
		raw, _ := m.Values["change"].(string)
		var c Change
		if err := json.Unmarshal([]byte(raw), &c); err != nil {
			return nil, fmt.Errorf("callback: audit entry %s: %w", m.ID, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// queueCallbackScript adds a call-back once per call. KEYS: visits,
// worklist, log, counts. ARGV: id, document, score, the log's entry, the
// log's most. Returns 1 when added, 0 when the call had one.
var queueCallbackScript = redis.NewScript(`
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('HINCRBY', KEYS[4], 'waiting|queue_callback', 1)
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', 'change', ARGV[4])
return 1
`)

// QueueCallback turns a caller's request for a call-back, made while
// waiting in the queue, into an item of the worklist (kind
// queue_callback), due now or in the next calling window; one per call.
// The number to call is the appeal's.
func (s *Store) QueueCallback(ctx context.Context, callID, appealID string, cat appeal.Category) (Visit, error) {
	if callID == "" {
		return Visit{}, fmt.Errorf("%w: a call-back names its call", ErrInvalid)
	}
	now := s.opts.Now().In(s.opts.Location)
	v := Visit{ID: "cb-" + callID, Kind: QueueCallback, Appeal: appealID, Category: cat, State: Waiting, CreatedAt: now, Due: s.opts.Windows.Next(now)}
	doc, err := json.Marshal(v)
	if err != nil {
		return Visit{}, err
	}
	entry, err := json.Marshal(Change{At: now, By: "hotline", Appeal: appealID, Visit: v.ID, What: "call-back asked for in the queue"})
	if err != nil {
		return Visit{}, err
	}
	if err := queueCallbackScript.Run(ctx, s.rdb, []string{s.visits, s.worklist, s.log, s.counts}, v.ID, doc, worklistScore(v), entry, MaxLog).Err(); err != nil {
		return Visit{}, fmt.Errorf("callback: call-back of %s: %w", callID, err)
	}
	s.changed()
	return s.Get(ctx, v.ID)
}

// changed tells StoreOptions.Changed of a change.
func (s *Store) changed() {
	if s.opts.Changed != nil {
		s.opts.Changed()
	}
}
