package calllog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hotline12345/hotline/internal/zpage"
)

// Errors of the store; test with errors.Is.
var (
	ErrNotFound      = errors.New("calllog: not found")
	ErrInvalidRecord = errors.New("calllog: invalid record")
)

// List limits: a console page, and a cap that keeps one reply small.
const (
	DefaultListLimit = 50
	MaxListLimit     = 500
)

// StoreOptions configures a Store.
type StoreOptions struct {
	// Prefix starts every key of the store. Empty means "hotline".
	Prefix string
	// Retention is how long a record is kept after its call started; 0
	// keeps records forever.
	Retention time.Duration
	// Now is the clock that retention is measured against. Nil means
	// time.Now.
	Now func() time.Time
}

// Store keeps call records in Redis. All its keys share the hash tag
// {calls}, so a record and its index entry change together in one script,
// on Redis Cluster too.
//
// Keys, under <prefix>:{calls}:
//
//	record:<id>  hash: doc (the record, JSON) and progress (see Save)
//	started      sorted set of record ids by StartedAt (ms)
//	open:<inst>  set: ids of the records not ended yet of the calls a node
//	             instance holds (Record.Instance), so that what a lost
//	             instance held can be found and ended (CloseLost)
//
// A Store is safe for concurrent use, also by several hotline nodes.
type Store struct {
	rdb       redis.UniversalClient
	retention time.Duration
	now       func() time.Time
	recordKey string
	index     string
	openKey   string
}

// NewStore returns a Store on rdb.
func NewStore(rdb redis.UniversalClient, opts StoreOptions) *Store {
	if opts.Prefix == "" {
		opts.Prefix = "hotline"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	base := opts.Prefix + ":{calls}:"
	return &Store{
		rdb:       rdb,
		retention: opts.Retention,
		now:       opts.Now,
		recordKey: base + "record:",
		index:     base + "started",
		openKey:   base + "open:",
	}
}

// saveScript stores a record and indexes it, unless a later version of
// the record is already stored. go-redis retries a command after a read
// timeout, and the timed-out try may still reach the server after the
// caller has moved on: without the check, a call's start record could
// land over its end record. Versions are ranked by progress (see
// progress); an equal rank overwrites, so saving the same record twice
// leaves it as it was.
//
// A record saved with a node instance is listed in the instance's open
// set until a version with an end is saved.
//
// KEYS: record key, index, and the instance's open set when the record
// names one. ARGV: document, progress, StartedAt in ms, record id, expiry
// in unix ms ("" to keep), prune scores up to this ms ("" to keep all).
var saveScript = redis.NewScript(`
local cur = tonumber(redis.call('HGET', KEYS[1], 'progress'))
if cur and cur > tonumber(ARGV[2]) then
  return 0
end
redis.call('HSET', KEYS[1], 'doc', ARGV[1], 'progress', ARGV[2])
if KEYS[3] then
  if tonumber(ARGV[2]) < ` + endedProgress + ` then
    redis.call('SADD', KEYS[3], ARGV[4])
  else
    redis.call('SREM', KEYS[3], ARGV[4])
  end
end
if ARGV[5] ~= '' then
  redis.call('PEXPIREAT', KEYS[1], ARGV[5])
end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
if ARGV[6] ~= '' then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[6])
end
return 1
`)

// progress ranks the versions of one record as a call saves them: at
// start, at answer, at end, each with the events so far. Stages weigh more
// than events; events are capped so the weights never mix.
func progress(r Record) int64 {
	var stage int64
	switch {
	case r.EndedAt != nil:
		stage = 2
	case r.AnsweredAt != nil:
		stage = 1
	}
	return stage*progressStage + int64(min(len(r.Events), progressStage-1))
}

// progressStage is the weight of a stage in progress; a record with an
// end has a progress of at least 2*progressStage.
const (
	progressStage = 1_000_000
	endedProgress = "2000000"
)

// Save stores the whole record and indexes it by StartedAt. A call saves
// its record at start, at answer and at end, each time whole; saving the
// same record again is harmless. A version older than the one stored (an
// earlier stage, or fewer events) is ignored, so a delayed retry never
// undoes a later save. With a retention, the record expires Retention
// after StartedAt.
func (s *Store) Save(ctx context.Context, r Record) error {
	if r.ID == "" {
		return fmt.Errorf("%w: no id", ErrInvalidRecord)
	}
	if r.StartedAt.IsZero() {
		return fmt.Errorf("%w: call %s has no start time", ErrInvalidRecord, r.ID)
	}
	doc, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("calllog: encode %s: %w", r.ID, err)
	}
	expireAt, pruneTo := "", ""
	if s.retention > 0 {
		expireAt = strconv.FormatInt(r.StartedAt.Add(s.retention).UnixMilli(), 10)
		pruneTo = strconv.FormatInt(s.cutoff(), 10)
	}
	keys := []string{s.recordKey + r.ID, s.index}
	if r.Instance != "" {
		keys = append(keys, s.openKey+r.Instance)
	}
	err = saveScript.Run(ctx, s.rdb, keys,
		doc, progress(r), r.StartedAt.UnixMilli(), r.ID, expireAt, pruneTo).Err()
	if err != nil {
		return fmt.Errorf("calllog: save %s: %w", r.ID, err)
	}
	return nil
}

// cutoff is the StartedAt (ms) at or before which a record has expired.
func (s *Store) cutoff() int64 {
	return s.now().Add(-s.retention).UnixMilli()
}

// minScore is the lowest index score still inside the retention.
func (s *Store) minScore() string {
	if s.retention <= 0 {
		return "-inf"
	}
	return "(" + strconv.FormatInt(s.cutoff(), 10)
}

// Get returns the record with the given id, or an error wrapping
// ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (Record, error) {
	doc, err := s.rdb.HGet(ctx, s.recordKey+id, "doc").Result()
	if errors.Is(err, redis.Nil) {
		return Record{}, fmt.Errorf("%w: call %s", ErrNotFound, id)
	}
	if err != nil {
		return Record{}, fmt.Errorf("calllog: get %s: %w", id, err)
	}
	return decode(doc)
}

func decode(doc string) (Record, error) {
	var r Record
	if err := json.Unmarshal([]byte(doc), &r); err != nil {
		return Record{}, fmt.Errorf("calllog: decode: %w", err)
	}
	return r, nil
}

// List returns the newest records, as the first page of Page does.
func (s *Store) List(ctx context.Context, limit int) ([]Record, error) {
	recs, _, err := s.Page(ctx, limit, "")
	return recs, err
}

// Page returns records newest first by StartedAt, after the cursor of
// the page before ("" for the first), and the next page's cursor, "" on
// the last. A limit below 1 means DefaultListLimit; above MaxListLimit it
// is cut to MaxListLimit. A cursor not made here is an error wrapping
// zpage.ErrCursor. Index entries whose record has expired are skipped and
// removed.
func (s *Store) Page(ctx context.Context, limit int, cursor string) ([]Record, string, error) {
	if limit < 1 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)
	after, err := zpage.Parse(cursor)
	if err != nil {
		return nil, "", err
	}
	docs := map[string]string{}
	var expired []any
	// keep reads a chunk's records in one round trip (the keys share the
	// {calls} slot) and drops the ids whose record has expired.
	keep := func(zs []redis.Z) ([]bool, error) {
		cmds := make([]*redis.StringCmd, len(zs))
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, z := range zs {
				cmds[i] = p.HGet(ctx, s.recordKey+z.Member.(string), "doc")
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, err
		}
		ok := make([]bool, len(zs))
		for i, cmd := range cmds {
			doc, err := cmd.Result()
			switch {
			case errors.Is(err, redis.Nil):
				expired = append(expired, zs[i].Member)
			case err != nil:
				return nil, err
			default:
				docs[zs[i].Member.(string)], ok[i] = doc, true
			}
		}
		return ok, nil
	}
	zs, next, err := zpage.Page(ctx, s.rdb, zpage.Query{Key: s.index, Reverse: true, Min: s.minScore(), After: after, Limit: limit}, keep)
	if err != nil {
		return nil, "", fmt.Errorf("calllog: list: %w", err)
	}
	out := make([]Record, 0, len(zs))
	for _, z := range zs {
		r, err := decode(docs[z.Member.(string)])
		if err != nil {
			return nil, "", err
		}
		out = append(out, r)
	}
	if len(expired) > 0 {
		// Removing an absent member is harmless, so this is safe to retry
		// and to race with another node doing the same.
		if err := s.rdb.ZRem(ctx, s.index, expired...).Err(); err != nil {
			return nil, "", fmt.Errorf("calllog: prune index: %w", err)
		}
	}
	nextCursor := ""
	if next != nil {
		nextCursor = next.String()
	}
	return out, nextCursor, nil
}

// Count returns how many records are kept.
func (s *Store) Count(ctx context.Context) (int64, error) {
	n, err := s.rdb.ZCount(ctx, s.index, s.minScore(), "+inf").Result()
	if err != nil {
		return 0, fmt.Errorf("calllog: count: %w", err)
	}
	return n, nil
}
