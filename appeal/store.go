package appeal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Errors of the store; test with errors.Is.
var (
	ErrNotFound = errors.New("appeal: not found")
	ErrNoCallID = errors.New("appeal: no call id")
)

// List limits: a console page, and a cap that keeps one reply small.
const (
	DefaultListLimit = 50
	MaxListLimit     = 500
)

// StoreOptions configures a Store.
type StoreOptions struct {
	// Location is the hotline's time zone: appeal ids carry the creation
	// date there and natural days are counted there. Nil means
	// DefaultLocation (Asia/Shanghai).
	Location *time.Location
	// Now is the clock used when a New has no At. Nil means time.Now.
	Now func() time.Time
	// Prefix starts every key of the store. Empty means "hotline".
	Prefix string
	// Urge says when each stage's urge comes (StageDispatch, StageSign,
	// StageFeedback); a stage not named has DefaultUrgeRule.
	Urge map[string]UrgeRule
}

// Store keeps appeals in Redis. All its keys share the hash tag {appeals},
// so the multi-key script that creates an appeal runs on Redis Cluster too;
// a hotline's appeals (thousands a day) fit one slot easily.
//
// Keys, under <prefix>:{appeals}:
//
//	appeals        hash: id → the appeal, JSON
//	call:<callID>  the id of the call's appeal
//	seq:<YYMMDD>   the day's last sequence number
//	created        sorted set of ids by creation time (ms)
//	synthetic      the same, of the synthetic probe's appeals, which
//	               nobody works and which are not in created
//	peak           "1" while peak mode is on
//	state:<state>  sorted set of the ids of the appeals in the state, by
//	               creation time (ms); not the probe's
//	organizer:<id> sorted set of the ids of the appeals dispatched to the
//	               organizer (lead or not) and not returned, by creation
//	               time (ms)
//	events:<id>    list of the appeal's steps after its creation, JSON,
//	               oldest first (lifecycle.go)
//	organizers     hash: organizer id → the organizer, JSON
//	timers         sorted set of the clock events to come (timers.go),
//	               "<id>|<kind>|<stage>", by due time (ms); a claimed one
//	               by the end of its claim's lease
//	claims         hash: timer → "<claim token>|<due ms>" while an engine
//	               fires it (engine.go)
//	fired:<id>     hash: "<kind>|<stage>" → the due time (ms) of the
//	               appeal's clock event last fired, so that none fires twice
//	counts         hash: "<state>|<category>" → appeals in it, not the probe's
//	chase          sorted set of the ids of the appeals waiting for a stage
//	               with a deadline, by that deadline (ms): what to chase
//	clock:events   stream of the clock events fired
//
// A Store is safe for concurrent use, also by several hotline nodes.
type Store struct {
	rdb redis.UniversalClient
	loc *time.Location
	now func() time.Time

	appeals string
	callKey string
	seqKey  string
	created string
	// synthetic indexes the probe's appeals apart from created, so
	// that no list a person works shows them.
	synthetic string
	peak      string

	state      string
	organizer  string
	events     string
	organizers string
	timers     string
	claims     string
	fired      string
	counts     string
	chase      string
	clockLog   string
	urge       map[string]UrgeRule
}

// NewStore returns a Store on rdb.
func NewStore(rdb redis.UniversalClient, opts StoreOptions) *Store {
	if opts.Location == nil {
		opts.Location = DefaultLocation()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Prefix == "" {
		opts.Prefix = "hotline"
	}
	base := opts.Prefix + ":{appeals}:"
	return &Store{
		rdb:       rdb,
		loc:       opts.Location,
		now:       opts.Now,
		appeals:   base + "appeals",
		callKey:   base + "call:",
		seqKey:    base + "seq:",
		created:   base + "created",
		synthetic: base + "synthetic",
		peak:      base + "peak",

		state:      base + "state:",
		organizer:  base + "organizer:",
		events:     base + "events:",
		organizers: base + "organizers",
		timers:     base + "timers",
		claims:     base + "claims",
		fired:      base + "fired:",
		counts:     base + "counts",
		chase:      base + "chase",
		clockLog:   base + "clock:events",
		urge:       opts.Urge,
	}
}

// createScript records an appeal once per call. It runs whole or not at
// all, and running it again for the same call (a go-redis retry after a
// read timeout, or intake retrying) returns the appeal already stored, so
// the day's sequence advances once per call.
//
// Peak mode is read here, inside the script, so the appeal is created with
// the mode in force at that instant; the caller sends the appeal under
// both modes and the script keeps the matching one. The appeals live in
// one hash rather than a key per id because a script must declare every
// key it touches in KEYS, and the id is only known inside the script.
//
// The documents arrive with an empty id as their first member,
// `{"id":""`, 8 bytes, which the script replaces with the new id.
//
// KEYS: call key, peak key, the day's sequence key, the created index,
// the appeals hash, the received state's index, the timers, the counts,
// the chase. ARGV: YYMMDD, document (normal), document (peak), creation
// time in ms, "1" to index the appeal's state (not the probe's), its
// timers (normal), its timers (peak), its counts field, its dispatch
// deadline in ms (normal), the same (peak).
var createScript = redis.NewScript(`
local id = redis.call('GET', KEYS[1])
if id then
  local doc = redis.call('HGET', KEYS[5], id)
  if doc then
    return doc
  end
end
local peak = redis.call('GET', KEYS[2]) == '1'
local seq = redis.call('INCR', KEYS[3])
id = ARGV[1] .. string.format('%04d', seq)
local doc = ARGV[2]
if peak then
  doc = ARGV[3]
end
doc = '{"id":"' .. id .. '"' .. string.sub(doc, 9)
redis.call('HSET', KEYS[5], id, doc)
redis.call('SET', KEYS[1], id)
redis.call('ZADD', KEYS[4], ARGV[4], id)
if ARGV[5] == '1' then
  redis.call('ZADD', KEYS[6], ARGV[4], id)
  redis.call('HINCRBY', KEYS[8], ARGV[8], 1)
  local timers, due = ARGV[6], ARGV[9]
  if peak then
    timers, due = ARGV[7], ARGV[10]
  end
  for suffix, ms in string.gmatch(timers, '([^,=]+)=(%d+)') do
    redis.call('ZADD', KEYS[7], ms, id .. '|' .. suffix)
  end
  redis.call('ZADD', KEYS[9], due, id)
end
return doc
`)

// emptyIDPrefix is how json.Marshal starts an Appeal whose ID is empty: ID
// is the struct's first field.
var emptyIDPrefix = []byte(`{"id":""`)

// Create records the appeal of a call and returns it with its id and
// clocks. It is idempotent per CallID: a second Create for the same call
// returns the first appeal unchanged, whatever the second New says.
//
// The creation time is n.At (the store's clock when zero), in the hotline's
// zone. The id is the creation date as YYMMDD followed by the day's
// sequence number, zero-padded to four digits and growing past 9999:
// 2611270001 is the first appeal of 27 November 2026. Ids are digits only
// because they are read out to the caller digit by digit.
func (s *Store) Create(ctx context.Context, n New) (Appeal, error) {
	created, normal, peak, err := s.prepare(n)
	if err != nil {
		return Appeal{}, err
	}
	day := created.Format(dayLayout)
	keys := []string{s.callKey + n.CallID, s.peak, s.seqKey + day, s.index(n), s.appeals, s.state + string(Received), s.timers, s.counts, s.chase}
	tn, tp := s.createTimers(n, created)
	dn, dp := s.dispatchDues(n, created)
	doc, err := createScript.Run(ctx, s.rdb, keys, day, normal, peak, created.UnixMilli(), stateIndexed(n), tn, tp, countsField(Received, n.Category), dn, dp).Text()
	if err != nil {
		return Appeal{}, fmt.Errorf("appeal: create for call %s: %w", n.CallID, err)
	}
	return decode(doc)
}

// index is the sorted set that lists n's appeal: the probe's appeals
// are kept out of created.
func (s *Store) index(n New) string {
	if n.Synthetic {
		return s.synthetic
	}
	return s.created
}

// createTimers are the timers of n's appeal under both peak modes, as
// the create scripts take them.
func (s *Store) createTimers(n New, created time.Time) (normal, peak string) {
	for _, p := range []bool{false, true} {
		a := Appeal{Category: n.Category, CreatedAt: created, State: Received, Synthetic: n.Synthetic}
		a.DispatchDue, a.SignDue, a.FeedbackDue = Clocks(n.Category, created, p, s.loc)
		if p {
			peak = timerArgs(timersOf(a, s.urge))
		} else {
			normal = timerArgs(timersOf(a, s.urge))
		}
	}
	return normal, peak
}

// dispatchDues are n's dispatch deadlines in ms under both peak modes.
func (s *Store) dispatchDues(n New, created time.Time) (normal, peak int64) {
	d, _, _ := Clocks(n.Category, created, false, s.loc)
	p, _, _ := Clocks(n.Category, created, true, s.loc)
	return d.UnixMilli(), p.UnixMilli()
}

// countsField is an appeal's field in the counts.
func countsField(st State, c Category) string { return string(st) + "|" + string(c) }

// stateIndexed is the create scripts' flag that indexes n's appeal by
// state: the probe's appeals are in no state's list.
func stateIndexed(n New) string {
	if n.Synthetic {
		return "0"
	}
	return "1"
}

// dayLayout is the date part of an appeal id.
const dayLayout = "060102"

// documents are the appeal's JSON under both peak modes, with the empty
// id in front that the scripts fill in.
func (s *Store) documents(n New, created time.Time) (normal, peak []byte, err error) {
	a := Appeal{
		CallID:       n.CallID,
		Caller:       n.Caller,
		Category:     n.Category,
		Consent:      n.Consent,
		Lang:         n.Lang,
		CreatedAt:    created,
		Journaled:    n.Journaled,
		NumberUntold: n.NumberUntold,
		Synthetic:    n.Synthetic,
		State:        Received,
		Channel:      n.Channel,
		Summary:      n.Summary,
	}
	if normal, err = s.document(a, false); err != nil {
		return nil, nil, err
	}
	if peak, err = s.document(a, true); err != nil {
		return nil, nil, err
	}
	return normal, peak, nil
}

// Block is a run of a day's appeal numbers reserved by one node, which
// hands them out alone while Redis does not answer: Day is YYMMDD, and
// the sequence numbers First to Last (both included) are the node's.
type Block struct {
	Day   string `json:"day"`
	First int64  `json:"first"`
	Last  int64  `json:"last"`
}

// ID is the appeal id of sequence number seq of the block's day.
func (b Block) ID(seq int64) string { return FormatID(b.Day, seq) }

// FormatID is the appeal id of a day (YYMMDD) and a sequence number:
// zero-padded to four digits, growing past 9999.
func FormatID(day string, seq int64) string { return fmt.Sprintf("%s%04d", day, seq) }

// Day is the date part (YYMMDD) of the ids of appeals created at t, in
// the hotline's zone.
func (s *Store) Day(t time.Time) string { return t.In(s.loc).Format(dayLayout) }

// Reserve takes n numbers of day's sequence (day as Day gives it) for one
// node, in one INCRBY on the counter Create takes its numbers from, so no
// appeal created by Create or by another node's block ever gets one of
// them. A go-redis retry of the INCRBY after a lost reply reserves a
// second block and leaves the first unused: a gap in the day's numbers,
// never a number given twice.
func (s *Store) Reserve(ctx context.Context, day string, n int64) (Block, error) {
	if n < 1 {
		return Block{}, fmt.Errorf("appeal: reserve %d numbers: want at least one", n)
	}
	last, err := s.rdb.IncrBy(ctx, s.seqKey+day, n).Result()
	if err != nil {
		return Block{}, fmt.Errorf("appeal: reserve numbers of %s: %w", day, err)
	}
	return Block{Day: day, First: last - n + 1, Last: last}, nil
}

// ErrIDTaken: CreateAs was given an id another call's appeal has.
var ErrIDTaken = errors.New("appeal: id taken by another call")

// createAsScript records an appeal under an id chosen ahead (from a
// reserved Block), once per call. The id is the one the caller was told,
// so it wins: when the call already has an appeal under another id — a
// Create whose reply never arrived, so whose number nobody heard — that
// one is renamed to the id given. Running it again returns the appeal
// stored.
//
// KEYS: call key, peak key, the created index, the appeals hash, the
// received state's index, the timers, the counts, the chase. ARGV: id,
// document (normal), document (peak), creation time in ms, "1" to index
// the appeal's state, its timers (normal), its timers (peak), its counts
// field, its dispatch deadline in ms (normal), the same (peak).
var createAsScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  local doc = redis.call('HGET', KEYS[4], cur)
  if doc then
    return doc
  end
end
if redis.call('HEXISTS', KEYS[4], ARGV[1]) == 1 then
  return redis.error_reply('TAKEN appeal id ' .. ARGV[1] .. ' belongs to another call')
end
if cur then
  redis.call('HDEL', KEYS[4], cur)
  redis.call('ZREM', KEYS[3], cur)
  if redis.call('ZREM', KEYS[5], cur) == 1 then
    redis.call('HINCRBY', KEYS[7], ARGV[8], -1)
  end
  for suffix in string.gmatch(ARGV[6], '([^,=]+)=%d+') do
    redis.call('ZREM', KEYS[6], cur .. '|' .. suffix)
  end
  redis.call('ZREM', KEYS[8], cur)
end
local doc = ARGV[2]
if redis.call('GET', KEYS[2]) == '1' then
  doc = ARGV[3]
end
doc = '{"id":"' .. ARGV[1] .. '"' .. string.sub(doc, 9)
redis.call('HSET', KEYS[4], ARGV[1], doc)
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
if ARGV[5] == '1' then
  redis.call('ZADD', KEYS[5], ARGV[4], ARGV[1])
  redis.call('HINCRBY', KEYS[7], ARGV[8], 1)
  local timers, due = ARGV[6], ARGV[9]
  if redis.call('GET', KEYS[2]) == '1' then
    timers, due = ARGV[7], ARGV[10]
  end
  for suffix, ms in string.gmatch(timers, '([^,=]+)=(%d+)') do
    redis.call('ZADD', KEYS[6], ms, ARGV[1] .. '|' .. suffix)
  end
  redis.call('ZADD', KEYS[8], due, ARGV[1])
end
return doc
`)

// CreateAs records the appeal of a call under id, a number of a Block the
// node reserved, and returns it. It is idempotent per call, and the id
// given wins over one a Create of the same call made: the caller was
// told this one. Peak mode is the one in force when it runs. An id that
// another call's appeal has is an error wrapping ErrIDTaken (blocks make
// it impossible; the check keeps a fault from overwriting an appeal).
func (s *Store) CreateAs(ctx context.Context, n New, id string) (Appeal, error) {
	created, normal, peak, err := s.prepare(n)
	if err != nil {
		return Appeal{}, err
	}
	if !validID(id) {
		return Appeal{}, fmt.Errorf("appeal: create for call %s: %q is no appeal id", n.CallID, id)
	}
	keys := []string{s.callKey + n.CallID, s.peak, s.index(n), s.appeals, s.state + string(Received), s.timers, s.counts, s.chase}
	tn, tp := s.createTimers(n, created)
	dn, dp := s.dispatchDues(n, created)
	doc, err := createAsScript.Run(ctx, s.rdb, keys, id, normal, peak, created.UnixMilli(), stateIndexed(n), tn, tp, countsField(Received, n.Category), dn, dp).Text()
	if err != nil {
		if strings.HasPrefix(err.Error(), "TAKEN ") {
			return Appeal{}, fmt.Errorf("%w: %s (call %s)", ErrIDTaken, id, n.CallID)
		}
		return Appeal{}, fmt.Errorf("appeal: create %s for call %s: %w", id, n.CallID, err)
	}
	return decode(doc)
}

// prepare checks n and makes its documents under both peak modes, with
// its creation time: n.At, or the store's clock when zero, in the
// hotline's zone.
func (s *Store) prepare(n New) (created time.Time, normal, peak []byte, err error) {
	if n.CallID == "" {
		return created, nil, nil, ErrNoCallID
	}
	if !n.Category.Valid() {
		return created, nil, nil, fmt.Errorf("%w: %q", ErrUnknownCategory, n.Category)
	}
	created = n.At
	if created.IsZero() {
		created = s.now()
	}
	created = created.In(s.loc)
	normal, peak, err = s.documents(n, created)
	return created, normal, peak, err
}

// document is a's JSON under one peak mode, with the empty id in front
// that the create script fills in.
func (s *Store) document(a Appeal, peak bool) ([]byte, error) {
	a.ID = ""
	a.PeakMode = peak
	a.DispatchDue, a.SignDue, a.FeedbackDue = Clocks(a.Category, a.CreatedAt, peak, s.loc)
	b, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("appeal: encode: %w", err)
	}
	if !bytes.HasPrefix(b, emptyIDPrefix) {
		return nil, fmt.Errorf("appeal: encoded appeal does not start with %s", emptyIDPrefix)
	}
	return b, nil
}

func decode(doc string) (Appeal, error) {
	var a Appeal
	if err := json.Unmarshal([]byte(doc), &a); err != nil {
		return Appeal{}, fmt.Errorf("appeal: decode: %w", err)
	}
	if a.State == "" {
		a.State = Received // stored before appeals had states
	}
	return a, nil
}

// validID reports whether id can be an appeal id: six date digits and at
// least four sequence digits. Anything else cannot be stored, so lookups
// of it need not reach Redis (callers type ids on a keypad).
func validID(id string) bool {
	if len(id) < 10 {
		return false
	}
	for _, r := range id {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// Get returns the appeal with the given id, or an error wrapping
// ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (Appeal, error) {
	if !validID(id) {
		return Appeal{}, fmt.Errorf("%w: appeal %q", ErrNotFound, id)
	}
	doc, err := s.rdb.HGet(ctx, s.appeals, id).Result()
	if errors.Is(err, redis.Nil) {
		return Appeal{}, fmt.Errorf("%w: appeal %s", ErrNotFound, id)
	}
	if err != nil {
		return Appeal{}, fmt.Errorf("appeal: get %s: %w", id, err)
	}
	return decode(doc)
}

// getMany reads the appeals ids in one round trip: nil for one that is
// not there.
func (s *Store) getMany(ctx context.Context, ids []string) ([]*Appeal, error) {
	docs, err := s.rdb.HMGet(ctx, s.appeals, ids...).Result()
	if err != nil {
		return nil, err
	}
	out := make([]*Appeal, len(docs))
	for i, d := range docs {
		doc, ok := d.(string)
		if !ok {
			continue
		}
		a, err := decode(doc)
		if err != nil {
			return nil, err
		}
		out[i] = &a
	}
	return out, nil
}

// ByCall returns the appeal recorded for a call, or an error wrapping
// ErrNotFound.
func (s *Store) ByCall(ctx context.Context, callID string) (Appeal, error) {
	if callID == "" {
		return Appeal{}, ErrNoCallID
	}
	id, err := s.rdb.Get(ctx, s.callKey+callID).Result()
	if errors.Is(err, redis.Nil) {
		return Appeal{}, fmt.Errorf("%w: no appeal for call %s", ErrNotFound, callID)
	}
	if err != nil {
		return Appeal{}, fmt.Errorf("appeal: by call %s: %w", callID, err)
	}
	return s.Get(ctx, id)
}

// List returns the newest appeals first, the synthetic probe's left out. A limit below 1 means
// DefaultListLimit; above MaxListLimit it is cut to MaxListLimit.
func (s *Store) List(ctx context.Context, limit int) ([]Appeal, error) {
	if limit < 1 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)
	ids, err := s.rdb.ZRevRange(ctx, s.created, 0, int64(limit-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("appeal: list: %w", err)
	}
	if len(ids) == 0 {
		return []Appeal{}, nil
	}
	as, err := s.getMany(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("appeal: list: %w", err)
	}
	out := make([]Appeal, 0, len(as))
	for _, a := range as {
		if a == nil {
			continue
		}
		out = append(out, *a)
	}
	return out, nil
}

// SetPeakMode switches peak mode on or off for appeals created from now
// on; appeals already created keep their clocks. Setting the mode it
// already has is harmless, so retries are safe.
func (s *Store) SetPeakMode(ctx context.Context, on bool) error {
	v := "0"
	if on {
		v = "1"
	}
	if err := s.rdb.Set(ctx, s.peak, v, 0).Err(); err != nil {
		return fmt.Errorf("appeal: set peak mode: %w", err)
	}
	return nil
}

// PeakMode reports whether peak mode is on.
func (s *Store) PeakMode(ctx context.Context) (bool, error) {
	v, err := s.rdb.Get(ctx, s.peak).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("appeal: peak mode: %w", err)
	}
	return v == "1", nil
}

// PurgeSynthetic removes the synthetic probe's appeals created before
// before, at most limit of them (below 1: DefaultListLimit), with their
// call keys and steps, and returns how many it removed. Nobody works a
// probe's appeal, so it is kept only as long as its call's record; the
// probe calls every few minutes, and without this its appeals would grow
// without end. Every other appeal is left alone.
func (s *Store) PurgeSynthetic(ctx context.Context, before time.Time, limit int) (int, error) {
	return s.purge(ctx, s.synthetic, before, limit, func(a *Appeal) bool { return a.Synthetic }, nil)
}

// PurgeClosed removes the closed appeals created before before, at most
// limit of them (below 1: DefaultListLimit), from every list, count and
// organizer's set, with their call keys and steps, and returns how many
// it removed. An appeal still open is kept however old: it is removed
// once closed. Every call that reaches intake makes an appeal, so the
// closed ones are kept for a retention, not for ever.
func (s *Store) PurgeClosed(ctx context.Context, before time.Time, limit int) (int, error) {
	return s.purge(ctx, s.state+string(Closed), before, limit, func(a *Appeal) bool { return a.State == Closed && !a.Synthetic },
		func(p redis.Pipeliner, as []*Appeal, members []any) {
			p.ZRem(ctx, s.created, members...)
			counts := map[string]int64{}
			for _, a := range as {
				if a == nil {
					continue
				}
				counts[countsField(Closed, a.Category)]++
				if a.Assignment != nil {
					for _, o := range a.Assignment.Organizers() {
						p.ZRem(ctx, s.organizer+o, a.ID)
					}
				}
			}
			for field, n := range counts {
				p.HIncrBy(ctx, s.counts, field, -n)
			}
		})
}

// purge removes the appeals of index created before before, at most
// limit, which must all be what is says (else nothing is removed), in
// one transaction: their documents, their place in index, their call
// keys, steps and fired clocks, and what more does. Every key is in the
// slot of {appeals}, so the transaction runs on Redis Cluster too.
func (s *Store) purge(ctx context.Context, index string, before time.Time, limit int, is func(*Appeal) bool,
	more func(p redis.Pipeliner, as []*Appeal, members []any)) (int, error) {
	if limit < 1 {
		limit = DefaultListLimit
	}
	ids, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: index, Start: "-inf", Stop: "(" + strconv.FormatInt(before.UnixMilli(), 10),
		ByScore: true, Count: int64(limit)}).Result()
	if err != nil {
		return 0, fmt.Errorf("appeal: appeals to purge: %w", err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	as, err := s.getMany(ctx, ids)
	if err != nil {
		return 0, fmt.Errorf("appeal: appeals to purge: %w", err)
	}
	members := make([]any, len(ids))
	keys := make([]string, 0, 3*len(ids))
	for i, id := range ids {
		members[i] = id
		keys = append(keys, s.events+id, s.fired+id)
		a := as[i]
		if a == nil {
			continue
		}
		if !is(a) {
			return 0, fmt.Errorf("appeal: %s is in %s but is %s (synthetic %v): not purged", id, index, a.State, a.Synthetic)
		}
		if a.CallID != "" {
			keys = append(keys, s.callKey+a.CallID)
		}
	}
	if _, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HDel(ctx, s.appeals, ids...)
		p.ZRem(ctx, index, members...)
		p.Del(ctx, keys...)
		if more != nil {
			more(p, as, members)
		}
		return nil
	}); err != nil {
		return 0, fmt.Errorf("appeal: purge: %w", err)
	}
	return len(ids), nil
}
