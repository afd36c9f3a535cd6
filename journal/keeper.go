package journal

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/calllog"
	"github.com/hotline12345/hotline/evaluation"
)

// Kinds of the entries a Keeper writes; the key of each is in brackets.
const (
	KindAppeal  = "appeal"  // an appeal with its consent evidence [call id]
	KindCall    = "call"    // a call record, its latest version [call id]
	KindRating  = "rating"  // a call's rating [call id]
	KindServed  = "served"  // a call an agent answered, for the complaint line [call id]
	KindReview  = "review"  // a supervisor's decision on a complaint [complaint id]
	KindNumbers = "numbers" // the node's block of a day's appeal numbers [YYMMDD]
)

// AppealStore is what a Keeper needs of the appeals; *appeal.Store is one.
type AppealStore interface {
	Create(ctx context.Context, n appeal.New) (appeal.Appeal, error)
	CreateAs(ctx context.Context, n appeal.New, id string) (appeal.Appeal, error)
	Reserve(ctx context.Context, day string, n int64) (appeal.Block, error)
	ByCall(ctx context.Context, callID string) (appeal.Appeal, error)
	Day(t time.Time) string
}

// CallStore saves call records; *calllog.Store is one.
type CallStore interface {
	Save(ctx context.Context, r calllog.Record) error
}

// RatingStore keeps ratings and reviews; *evaluation.Store is one.
type RatingStore interface {
	Record(ctx context.Context, r evaluation.Rating) (evaluation.Rating, error)
	ReviewAt(ctx context.Context, id string, status evaluation.ComplaintStatus, by, note string, at time.Time) (evaluation.Complaint, error)
	Served(ctx context.Context, c evaluation.ServedCall) error
}

// KeeperOptions configure a Keeper.
type KeeperOptions struct {
	Journal *Journal
	Appeals AppealStore
	Calls   CallStore
	Ratings RatingStore
	// Ping says whether Redis answers.
	Ping func(ctx context.Context) error
	// Deadline bounds how long a write waits for Redis before the
	// journal takes it instead; default 1 s. The caller waits that long
	// at most, in silence, at the appeal step.
	Deadline time.Duration
	// Every is how often Redis is pinged, and how soon after it answers
	// again the journal is replayed; default 1 s.
	Every time.Duration
	// Block is how many appeal numbers of each day the node holds in
	// reserve for when Redis does not answer; default 100.
	Block int64
	// OutageAfter is how long Redis must have been away before it is an
	// outage (Outage) rather than a break to ride through (a Sentinel
	// failover): 0 makes every break an outage.
	OutageAfter time.Duration
	Registerer  prometheus.Registerer
	Log         zerolog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Keeper stands between the call flows and the stores in Redis: every
// write goes to Redis when it answers within the deadline, and to the
// journal when it does not, to be replayed — through the same idempotent
// store method that would have written it — once Redis answers again.
//
// Appeal numbers: the node reserves a block of each day's sequence (today
// and tomorrow) while Redis answers, with one INCRBY on the counter every
// appeal takes its number from, and keeps the block in the journal. While
// Redis does not answer, an appeal takes the next number of its day's
// block, the journal keeps the block's next free number before the caller
// hears it, and replay stores the appeal under that very number
// (appeal.Store.CreateAs), so the number read to the caller is the one
// stored. With the block used up, or no block for the day, the appeal is
// journaled without a number and numbered at replay; the caller is told
// they will be called back with it.
//
// A Keeper is safe for concurrent use. Run watches Redis and replays.
type Keeper struct {
	opts KeeperOptions
	j    *Journal
	log  zerolog.Logger

	down      atomic.Bool
	downSince atomic.Int64 // unix ns
	lastErr   atomic.Pointer[string]
	full      atomic.Bool // the last append was refused: the journal is full

	numMu sync.Mutex // guards the numbers entries: read, advance, append

	upMu sync.Mutex
	upCh chan struct{} // closed when Redis answers again; nil while it does

	replayMu sync.Mutex

	appended, replayed, failed *prometheus.CounterVec
}

// numbers is a KindNumbers entry: a block and its next free number.
type numbers struct {
	appeal.Block
	Next int64 `json:"next"`
}

// appealEntry is a KindAppeal entry: the appeal, and the number the caller
// was told ("" when none).
type appealEntry struct {
	Appeal appeal.New `json:"appeal"`
	ID     string     `json:"id,omitempty"`
}

// reviewEntry is a KindReview entry.
type reviewEntry struct {
	ID     string                     `json:"id"`
	Status evaluation.ComplaintStatus `json:"status"`
	By     string                     `json:"by"`
	Note   string                     `json:"note,omitempty"`
	At     time.Time                  `json:"at"`
}

// NewKeeper returns a Keeper; Run must run for the journal to be
// replayed.
func NewKeeper(opts KeeperOptions) *Keeper {
	if opts.Deadline <= 0 {
		opts.Deadline = time.Second
	}
	if opts.Every <= 0 {
		opts.Every = time.Second
	}
	if opts.Block <= 0 {
		opts.Block = 100
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	k := &Keeper{opts: opts, j: opts.Journal, log: opts.Log}
	k.appended = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hotline_journal_appended_total", Help: "Entries written to the local journal because Redis did not answer, by kind.",
	}, []string{"kind"})
	k.replayed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hotline_journal_replayed_total", Help: "Journal entries applied to Redis once it answered again, by kind.",
	}, []string{"kind"})
	k.failed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hotline_journal_failed_total", Help: "Journal entries Redis refused as invalid, set aside in rejected.jsonl, by kind.",
	}, []string{"kind"})
	for _, kind := range []string{KindAppeal, KindCall, KindRating, KindServed, KindReview} {
		k.appended.WithLabelValues(kind)
		k.replayed.WithLabelValues(kind)
		k.failed.WithLabelValues(kind)
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(k.appended, k.replayed, k.failed,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "hotline_journal_pending", Help: "Journal entries waiting for Redis to answer.",
			}, func() float64 { return float64(k.Pending()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "hotline_journal_bytes", Help: "Size of the local journal file.",
			}, func() float64 { return float64(k.j.Size()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "hotline_redis_up", Help: "1 while Redis answers this node, 0 while the journal takes what callers say.",
			}, func() float64 {
				if k.Down() {
					return 0
				}
				return 1
			}))
	}
	return k
}

// Down reports whether Redis is taken not to answer: a write or a ping
// failed, and no ping has succeeded since.
func (k *Keeper) Down() bool { return k.down.Load() }

// downFor is how long Redis has been taken not to answer, 0 while it
// answers, and the channel closed when it answers again.
func (k *Keeper) downFor() (time.Duration, <-chan struct{}) {
	k.upMu.Lock()
	defer k.upMu.Unlock()
	if !k.down.Load() {
		return 0, nil
	}
	return k.opts.Now().Sub(time.Unix(0, k.downSince.Load())), k.upCh
}

// Outage reports whether Redis has been away for OutageAfter or longer:
// too long to keep a caller waiting for it. New callers are then told
// they will be called back (ivr.Runner).
func (k *Keeper) Outage() bool {
	d, _ := k.downFor()
	return k.Down() && d >= k.opts.OutageAfter
}

// RideOut waits while Redis is away for less than OutageAfter, until it
// answers again (true) or the break becomes an outage or ctx ends
// (false). It returns true at once while Redis answers.
func (k *Keeper) RideOut(ctx context.Context) bool {
	for {
		d, up := k.downFor()
		if up == nil {
			return true
		}
		left := k.opts.OutageAfter - d
		if left <= 0 {
			return false
		}
		t := time.NewTimer(left)
		select {
		case <-up:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false
		}
		t.Stop()
	}
}

// Pending is the number of entries waiting to be replayed.
func (k *Keeper) Pending() int {
	n := 0
	for _, e := range k.j.Entries() {
		if e.Kind != KindNumbers {
			n++
		}
	}
	return n
}

// Check is the journal's health: an error while it refuses entries (full,
// or failing to write).
func (k *Keeper) Check(context.Context) error {
	if k.full.Load() {
		return fmt.Errorf("journal full (%d bytes): what callers say while Redis is down cannot be kept", k.j.Size())
	}
	return nil
}

// RedisCheck is Redis's health as the keeper sees it.
func (k *Keeper) RedisCheck(ctx context.Context) error {
	if k.Down() {
		msg := "does not answer"
		if p := k.lastErr.Load(); p != nil {
			msg = *p
		}
		since := time.Unix(0, k.downSince.Load())
		return fmt.Errorf("%s (since %s): writes go to the journal", msg, since.Format(time.RFC3339))
	}
	return k.ping(ctx, k.opts.Deadline)
}

// ping pings Redis, giving up after d whatever go-redis does (see
// tryRedis).
func (k *Keeper) ping(ctx context.Context, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	out := make(chan error, 1)
	go func() {
		defer cancel()
		out <- k.opts.Ping(ctx)
	}()
	select {
	case err := <-out:
		return err
	case <-ctx.Done():
		select {
		case err := <-out: // the ping's own end cancels ctx too, after sending
			return err
		default:
			return fmt.Errorf("redis did not answer a ping within %s: %w", d, ctx.Err())
		}
	}
}

func (k *Keeper) markDown(err error) {
	msg := err.Error()
	k.lastErr.Store(&msg)
	k.upMu.Lock()
	defer k.upMu.Unlock()
	if k.down.CompareAndSwap(false, true) {
		k.downSince.Store(k.opts.Now().UnixNano())
		k.upCh = make(chan struct{})
		k.log.Error().Err(err).Msg("redis does not answer: calls are journaled locally until it does")
	}
}

func (k *Keeper) markUp() {
	k.upMu.Lock()
	defer k.upMu.Unlock()
	if k.down.CompareAndSwap(true, false) {
		close(k.upCh)
		k.upCh = nil
		since := time.Unix(0, k.downSince.Load())
		k.log.Warn().Stringer("down_for", k.opts.Now().Sub(since).Round(time.Millisecond)).Int("pending", k.Pending()).
			Msg("redis answers again: replaying the journal")
	}
}

// append journals v, counting it and remembering a refusal for Check.
func (k *Keeper) append(kind, key string, v any) error {
	_, err := k.j.Append(kind, key, v)
	if err != nil {
		k.full.Store(errors.Is(err, ErrFull))
		k.log.Error().Err(err).Str("kind", kind).Str("key", key).Interface("entry", v).Msg("journal: entry not kept")
		return err
	}
	k.full.Store(false)
	k.appended.WithLabelValues(kind).Inc()
	return nil
}

// tryRedis runs write within the deadline unless Redis is known down. It
// returns whether write ran and succeeded, or failed in a way the journal
// cannot help with (permanent), and write's value then.
//
// The deadline is kept here, not left to go-redis: without
// ContextTimeoutEnabled it bounds reads by its own read timeout and
// retries, seconds on end for a Redis that takes connections but answers
// nothing (frozen, or a half-open socket). A write still waiting at the
// deadline goes on in the background and may land after the journal has
// taken it: every write here is idempotent, so the replay then changes
// nothing (an appeal's told number wins over one nobody heard).
func tryRedis[T any](k *Keeper, ctx context.Context, write func(ctx context.Context) (T, error), permanent func(error) bool) (v T, done bool, err error) {
	if k.Down() {
		return v, false, nil
	}
	type result struct {
		v   T
		err error
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), k.opts.Deadline)
	out := make(chan result, 1)
	go func() {
		defer cancel()
		v, err := write(wctx)
		out <- result{v, err}
	}()
	var r result
	select {
	case r = <-out:
	case <-wctx.Done():
		// The write's own end cancels wctx too, after sending.
		select {
		case r = <-out:
		default:
			r.err = fmt.Errorf("redis did not answer within %s: %w", k.opts.Deadline, context.DeadlineExceeded)
		}
	}
	if r.err == nil || permanent(r.err) {
		return r.v, true, r.err
	}
	k.markDown(r.err)
	return v, false, nil
}

// Appeals is the keeper's appeal recorder (ivr.AppealRecorder).
func (k *Keeper) Appeals() *Appeals { return &Appeals{k: k} }

// Appeals records appeals through a Keeper.
type Appeals struct{ k *Keeper }

func appealPermanent(err error) bool {
	return errors.Is(err, appeal.ErrNoCallID) || errors.Is(err, appeal.ErrUnknownCategory) || errors.Is(err, appeal.ErrIDTaken)
}

// Create records the appeal in Redis, or in the journal when Redis does
// not answer within the deadline. A journaled appeal comes back with
// Journaled set and the number from the node's block, or with no ID and
// NumberUntold set when no number could be had: the caller is to be told
// they will be called back. It is idempotent per call, like the store's.
func (a *Appeals) Create(ctx context.Context, n appeal.New) (appeal.Appeal, error) {
	k := a.k
	if e, ok := k.j.Get(KindAppeal, n.CallID); ok && n.CallID != "" {
		var ae appealEntry
		if err := e.Decode(&ae); err == nil {
			return journaledAppeal(ae), nil
		}
	}
	asked := n // the write may outlive this call, which changes n below
	stored, done, err := tryRedis(k, ctx, func(ctx context.Context) (appeal.Appeal, error) {
		return k.opts.Appeals.Create(ctx, asked)
	}, appealPermanent)
	if done {
		return stored, err
	}
	if n.CallID == "" {
		return appeal.Appeal{}, appeal.ErrNoCallID
	}
	if !n.Category.Valid() {
		return appeal.Appeal{}, fmt.Errorf("%w: %q", appeal.ErrUnknownCategory, n.Category)
	}
	if n.At.IsZero() {
		n.At = k.opts.Now()
	}
	n.Journaled = true
	id, err := k.takeNumber(n.At)
	if err != nil {
		return appeal.Appeal{}, err
	}
	n.NumberUntold = id == ""
	ae := appealEntry{Appeal: n, ID: id}
	if err := k.append(KindAppeal, n.CallID, ae); err != nil {
		return appeal.Appeal{}, fmt.Errorf("appeal of call %s: neither Redis nor the journal took it: %w", n.CallID, err)
	}
	k.log.Warn().Str("call_id", n.CallID).Str("appeal_id", id).Bool("number_untold", id == "").Msg("appeal journaled")
	return journaledAppeal(ae), nil
}

func journaledAppeal(ae appealEntry) appeal.Appeal {
	n := ae.Appeal
	return appeal.Appeal{
		ID: ae.ID, CallID: n.CallID, Caller: n.Caller, Category: n.Category, Consent: n.Consent,
		Lang: n.Lang, CreatedAt: n.At, Journaled: true, NumberUntold: ae.ID == "",
	}
}

// takeNumber hands out the next number of the block of at's day, "" when
// there is none left; the block's next free number is on disk before the
// number is returned, so no restart gives it again.
func (k *Keeper) takeNumber(at time.Time) (string, error) {
	day := k.opts.Appeals.Day(at)
	k.numMu.Lock()
	defer k.numMu.Unlock()
	e, ok := k.j.Get(KindNumbers, day)
	if !ok {
		return "", nil
	}
	var b numbers
	if err := e.Decode(&b); err != nil {
		return "", err
	}
	if b.Next > b.Last {
		return "", nil
	}
	id := b.ID(b.Next)
	b.Next++
	if err := k.append(KindNumbers, day, b); err != nil {
		return "", fmt.Errorf("appeal number: %w", err)
	}
	return id, nil
}

// reserve makes sure the node holds at least half a block of numbers for
// today and tomorrow, and forgets the blocks of days gone by.
func (k *Keeper) reserve(ctx context.Context) error {
	now := k.opts.Now()
	today := k.opts.Appeals.Day(now)
	days := []string{today, k.opts.Appeals.Day(now.Add(24 * time.Hour))}
	k.numMu.Lock()
	defer k.numMu.Unlock()
	for _, day := range days {
		var b numbers
		if e, ok := k.j.Get(KindNumbers, day); ok {
			if err := e.Decode(&b); err != nil {
				return err
			}
			if b.Last-b.Next+1 >= k.opts.Block/2 {
				continue
			}
		}
		blk, err := k.opts.Appeals.Reserve(ctx, day, k.opts.Block)
		if err != nil {
			return err
		}
		if err := k.append(KindNumbers, day, numbers{Block: blk, Next: blk.First}); err != nil {
			return err
		}
		k.log.Info().Str("day", day).Int64("first", blk.First).Int64("last", blk.Last).Msg("appeal numbers reserved for when redis does not answer")
	}
	var old []Entry
	for _, e := range k.j.Entries() {
		if e.Kind == KindNumbers && e.Key < today {
			old = append(old, e)
		}
	}
	return k.j.Remove(old...)
}

// Calls is the keeper's call recorder (ivr.CallRecorder).
func (k *Keeper) Calls() *Calls { return &Calls{k: k} }

// Calls saves call records through a Keeper.
type Calls struct{ k *Keeper }

// Save saves the record in Redis, or in the journal when Redis does not
// answer within the deadline; the journal keeps the latest version of a
// call's record.
func (c *Calls) Save(ctx context.Context, r calllog.Record) error {
	k := c.k
	_, done, err := tryRedis(k, ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, k.opts.Calls.Save(ctx, r) },
		func(err error) bool { return errors.Is(err, calllog.ErrInvalidRecord) })
	if done {
		return err
	}
	if r.ID == "" {
		return fmt.Errorf("%w: no id", calllog.ErrInvalidRecord)
	}
	return k.append(KindCall, r.ID, r)
}

// Ratings is the keeper's rating recorder (ivr.RatingRecorder).
func (k *Keeper) Ratings() *Ratings { return &Ratings{k: k} }

// Ratings records ratings and reviews through a Keeper.
type Ratings struct{ k *Keeper }

// Record records the call's rating in Redis, or in the journal when Redis
// does not answer within the deadline; the journaled rating is returned
// as the stored one (the first rating of a call wins at replay, as in
// Redis).
func (rs *Ratings) Record(ctx context.Context, r evaluation.Rating) (evaluation.Rating, error) {
	k := rs.k
	asked := r // the write may outlive this call, which changes r below
	stored, done, err := tryRedis(k, ctx, func(ctx context.Context) (evaluation.Rating, error) {
		return k.opts.Ratings.Record(ctx, asked)
	}, ratingPermanent)
	if done {
		return stored, err
	}
	if err := r.Validate(); err != nil {
		return evaluation.Rating{}, err
	}
	if e, ok := k.j.Get(KindRating, r.CallID); ok {
		var first evaluation.Rating
		if err := e.Decode(&first); err == nil {
			return first, nil
		}
	}
	if r.At.IsZero() {
		r.At = k.opts.Now()
	}
	if err := k.append(KindRating, r.CallID, r); err != nil {
		return evaluation.Rating{}, fmt.Errorf("rating of call %s: neither Redis nor the journal took it: %w", r.CallID, err)
	}
	return r, nil
}

// Served counts a call an agent answered as served on the complaint line,
// in Redis, or in the journal when Redis does not answer within the
// deadline: a call whose caller hangs up before rating still counts.
func (rs *Ratings) Served(ctx context.Context, c evaluation.ServedCall) error {
	k := rs.k
	_, done, err := tryRedis(k, ctx, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, k.opts.Ratings.Served(ctx, c)
	}, ratingPermanent)
	if done {
		return err
	}
	if c.CallID == "" {
		return fmt.Errorf("%w: served call without call id", evaluation.ErrInvalid)
	}
	if c.At.IsZero() {
		c.At = k.opts.Now()
	}
	if err := k.append(KindServed, c.CallID, c); err != nil {
		return fmt.Errorf("served call %s: neither Redis nor the journal took it: %w", c.CallID, err)
	}
	return nil
}

func ratingPermanent(err error) bool {
	return errors.Is(err, evaluation.ErrInvalid) || errors.Is(err, evaluation.ErrAlreadyRated) ||
		errors.Is(err, evaluation.ErrNotFound) || errors.Is(err, evaluation.ErrAlreadyReviewed)
}

// ErrJournaled: the write was kept in the journal, not in Redis; it is
// applied when Redis answers again.
var ErrJournaled = errors.New("journaled: redis does not answer; applied when it does")

// Review records a supervisor's decision on a complaint in Redis, or in
// the journal when Redis does not answer within the deadline: then the
// error wraps ErrJournaled and the complaint returned holds only what the
// decision says.
func (rs *Ratings) Review(ctx context.Context, id string, status evaluation.ComplaintStatus, by, note string) (evaluation.Complaint, error) {
	k := rs.k
	at := k.opts.Now()
	stored, done, err := tryRedis(k, ctx, func(ctx context.Context) (evaluation.Complaint, error) {
		return k.opts.Ratings.ReviewAt(ctx, id, status, by, note, at)
	}, ratingPermanent)
	if done {
		return stored, err
	}
	if (status != evaluation.Upheld && status != evaluation.Dismissed) || by == "" || id == "" {
		return evaluation.Complaint{}, fmt.Errorf("%w: complaint %q: decision %q by %q", evaluation.ErrInvalid, id, status, by)
	}
	re := reviewEntry{ID: id, Status: status, By: by, Note: note, At: at}
	if err := k.append(KindReview, id, re); err != nil {
		return evaluation.Complaint{}, fmt.Errorf("review of complaint %s: neither Redis nor the journal took it: %w", id, err)
	}
	return evaluation.Complaint{ID: id, Status: status, ReviewedAt: &at, ReviewedBy: by, Note: note}, ErrJournaled
}

// Run pings Redis every Every until ctx ends: while it answers, the
// journal is replayed and the blocks of appeal numbers kept full; while it
// does not, writes go to the journal.
func (k *Keeper) Run(ctx context.Context) {
	t := time.NewTicker(k.opts.Every)
	defer t.Stop()
	for {
		_ = k.Refresh(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Refresh is one look at Redis, as Run takes every Every: when it
// answers, the journal is replayed and the blocks of numbers filled. It
// returns why Redis was found not to answer, or nil.
func (k *Keeper) Refresh(ctx context.Context) error {
	if err := k.ping(ctx, k.opts.Every); err != nil {
		if ctx.Err() == nil {
			k.markDown(err)
		}
		return err
	}
	if k.Down() {
		k.markUp()
	}
	if err := k.Replay(ctx); err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, k.opts.Deadline)
	defer cancel()
	if err := k.reserve(rctx); err != nil && ctx.Err() == nil {
		k.log.Warn().Err(err).Msg("reserving appeal numbers")
	}
	return nil
}

// replayBatch is how many applied entries are removed at once.
const replayBatch = 100

// Replay applies every pending entry to Redis, oldest first, each through
// the store method that would have written it, and removes it once
// applied; an entry the store refuses as invalid is set aside
// (Journal.Reject). It stops at the first failure of Redis itself, marking
// Redis down, and returns that error.
func (k *Keeper) Replay(ctx context.Context) error {
	k.replayMu.Lock()
	defer k.replayMu.Unlock()
	var applied []Entry
	flush := func() {
		if len(applied) == 0 {
			return
		}
		if err := k.j.Remove(applied...); err != nil {
			k.log.Error().Err(err).Msg("journal: removing applied entries (they will be applied again, harmlessly)")
		}
		applied = applied[:0]
		// There is room again; the next append says if not.
		k.full.Store(false)
	}
	defer flush()
	start, n := k.opts.Now(), 0
	for _, e := range k.j.Entries() {
		if e.Kind == KindNumbers {
			continue
		}
		actx, cancel := context.WithTimeout(ctx, k.opts.Deadline)
		err := k.apply(actx, e)
		cancel()
		var invalid *invalidError
		switch {
		case errors.As(err, &invalid):
			k.failed.WithLabelValues(e.Kind).Inc()
			k.log.Error().Err(err).Str("kind", e.Kind).Str("key", e.Key).RawJSON("data", e.Data).Msg("journal: entry refused by the store: set aside in rejected.jsonl")
			if rerr := k.j.Reject(e, err); rerr != nil {
				k.log.Error().Err(rerr).Msg("journal: setting a refused entry aside")
			}
			continue
		case err != nil:
			if ctx.Err() == nil {
				k.markDown(err)
			}
			return err
		}
		k.replayed.WithLabelValues(e.Kind).Inc()
		applied = append(applied, e)
		n++
		if len(applied) >= replayBatch {
			flush()
		}
	}
	if n > 0 {
		k.log.Info().Int("entries", n).Stringer("took", k.opts.Now().Sub(start).Round(time.Millisecond)).Msg("journal replayed")
	}
	return nil
}

// invalidError is a store's refusal of an entry as invalid: applying it
// again cannot succeed.
type invalidError struct{ err error }

func (e *invalidError) Error() string { return e.err.Error() }
func (e *invalidError) Unwrap() error { return e.err }

// apply writes one entry through its store.
func (k *Keeper) apply(ctx context.Context, e Entry) error {
	switch e.Kind {
	case KindAppeal:
		var ae appealEntry
		if err := e.Decode(&ae); err != nil {
			return &invalidError{err}
		}
		var a appeal.Appeal
		var err error
		if ae.ID != "" {
			a, err = k.opts.Appeals.CreateAs(ctx, ae.Appeal, ae.ID)
		} else {
			a, err = k.opts.Appeals.Create(ctx, ae.Appeal)
		}
		if appealPermanent(err) {
			return &invalidError{err}
		}
		if err == nil && ae.ID == "" {
			k.log.Warn().Str("call_id", ae.Appeal.CallID).Str("appeal_id", a.ID).Msg("journaled appeal numbered: its caller is owed a call-back with the number")
		}
		return err
	case KindCall:
		var r calllog.Record
		if err := e.Decode(&r); err != nil {
			return &invalidError{err}
		}
		if r.AppealID == "" && r.EndedAt != nil {
			// An appeal journaled without a number has one now.
			if a, err := k.opts.Appeals.ByCall(ctx, r.ID); err == nil {
				r.AppealID = a.ID
			} else if !errors.Is(err, appeal.ErrNotFound) {
				return err
			}
		}
		err := k.opts.Calls.Save(ctx, r)
		if errors.Is(err, calllog.ErrInvalidRecord) {
			return &invalidError{err}
		}
		return err
	case KindRating:
		var r evaluation.Rating
		if err := e.Decode(&r); err != nil {
			return &invalidError{err}
		}
		_, err := k.opts.Ratings.Record(ctx, r)
		if errors.Is(err, evaluation.ErrAlreadyRated) {
			// The first rating of a call wins, in Redis as here.
			k.log.Warn().Err(err).Str("call_id", r.CallID).Msg("journaled rating: the call was rated already")
			return nil
		}
		if errors.Is(err, evaluation.ErrInvalid) {
			return &invalidError{err}
		}
		return err
	case KindServed:
		var c evaluation.ServedCall
		if err := e.Decode(&c); err != nil {
			return &invalidError{err}
		}
		err := k.opts.Ratings.Served(ctx, c)
		if errors.Is(err, evaluation.ErrInvalid) {
			return &invalidError{err}
		}
		return err
	case KindReview:
		var re reviewEntry
		if err := e.Decode(&re); err != nil {
			return &invalidError{err}
		}
		_, err := k.opts.Ratings.ReviewAt(ctx, re.ID, re.Status, re.By, re.Note, re.At)
		if errors.Is(err, evaluation.ErrAlreadyReviewed) {
			k.log.Warn().Err(err).Str("complaint_id", re.ID).Msg("journaled review: the complaint was reviewed already")
			return nil
		}
		if errors.Is(err, evaluation.ErrInvalid) || errors.Is(err, evaluation.ErrNotFound) {
			return &invalidError{err}
		}
		return err
	}
	return &invalidError{fmt.Errorf("journal: unknown kind %q", e.Kind)}
}
