package callback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Outcome is how an attempt at a visit went.
type Outcome string

// The outcomes of an attempt.
const (
	Completed   Outcome = "completed"
	NoAnswer    Outcome = "no_answer"
	Busy        Outcome = "busy"
	Unreachable Outcome = "unreachable"
	WrongNumber Outcome = "wrong_number"
	// Refused: the citizen withdrew consent; final, and the number goes
	// on the do-not-call list.
	Refused Outcome = "refused"
	// CallLater: at a time the citizen names.
	CallLater Outcome = "call_later"
)

// Final states of a visit, besides Waiting.
const (
	Done          State = "completed"
	GaveUp        State = "unreachable"
	Withdrawn     State = "refused"
	WrongNumbered State = "wrong_number"
)

// Attempt is one try at a visit.
type Attempt struct {
	At      time.Time `json:"at"`
	By      string    `json:"by"`
	Outcome Outcome   `json:"outcome"`
	Note    string    `json:"note,omitempty"`
	// Later is when the citizen asked to be called (call_later).
	Later *time.Time `json:"later,omitempty"`
	// Answers are a completed return visit's; a completed call-back has
	// none.
	Answers *Answers `json:"answers,omitempty"`
}

// Retry is when a visit is tried again after an outcome that is not
// final, and how many attempts it gets.
type Retry struct {
	NoAnswer    time.Duration
	Busy        time.Duration
	Unreachable time.Duration
	MaxAttempts int
}

// DefaultRetry: no answer and unreachable 2 h later, busy 15 min later,
// at most 3 attempts.
var DefaultRetry = Retry{NoAnswer: 2 * time.Hour, Busy: 15 * time.Minute, Unreachable: 2 * time.Hour, MaxAttempts: 3}

// DefaultLease is how long a taken visit is the agent's unless renewed.
const DefaultLease = 10 * time.Minute

// ErrNone: no visit is due.
var ErrNone = errors.New("callback: no visit due")

// ErrClosed: no calls now, outside the calling windows; Opens says when
// the next one opens. It is an ErrNone.
type ErrClosed struct{ Opens time.Time }

func (e *ErrClosed) Error() string {
	return "callback: no visit due: outside the calling windows, the next opens " + e.Opens.Format("2006-01-02 15:04")
}

// Is makes an ErrClosed an ErrNone.
func (e *ErrClosed) Is(target error) bool { return target == ErrNone }

// ErrNotLeased: the visit is not the agent's (its lease ran out, or
// another agent has it).
var ErrNotLeased = errors.New("callback: the visit is not leased to this agent")

// takeScript puts back the visits whose lease ran out, then takes the
// first visit due — an emergency before any other — for an agent, with a
// lease.
//
// KEYS: worklist, leases (id → "agent|until|score"), lease ends (sorted
// set), log, visits. ARGV: now (ms), lease end (ms), agent, what the log says of
// the take, the log's most, now (RFC 3339), the mode's first band
// (bandOf). Returns {id, lease end, the visit} or {} when none is due.
var takeScript = redis.NewScript(`
local now = tonumber(ARGV[1])
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)) do
  local l = redis.call('HGET', KEYS[2], id)
  redis.call('HDEL', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
  if l then
    local score = string.match(l, '|([%d.e+]+)$')
    redis.call('ZADD', KEYS[1], score, id)
    redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[5], '*', 'change',
      cjson.encode({at = ARGV[6], by = 'hotline', visit = id, what = 'lease ran out: back in the worklist'}))
  end
end
local band = tonumber(ARGV[7]) * 1e13
local got = redis.call('ZRANGEBYSCORE', KEYS[1], band, band + now, 'WITHSCORES', 'LIMIT', 0, 1)
if #got == 0 then
  got = redis.call('ZRANGEBYSCORE', KEYS[1], band + 1e13, band + 1e13 + now, 'WITHSCORES', 'LIMIT', 0, 1)
end
if #got == 0 then
  return {}
end
local id, score = got[1], got[2]
redis.call('ZREM', KEYS[1], id)
redis.call('HSET', KEYS[2], id, ARGV[3] .. '|' .. ARGV[2] .. '|' .. score)
redis.call('ZADD', KEYS[3], ARGV[2], id)
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[5], '*', 'change',
  cjson.encode({at = ARGV[6], by = ARGV[3], visit = id, what = ARGV[4]}))
return {id, ARGV[2], redis.call('HGET', KEYS[5], id)}
`)

// Lease is a visit taken by an agent, until when.
type Lease struct {
	Visit Visit     `json:"visit"`
	Agent string    `json:"agent"`
	Until time.Time `json:"until"`
}

// Next takes the first visit due for agent, with a lease of lease
// (the store's Lease when 0): emergencies first, then by due time. Visits
// whose lease ran out are back in the worklist first. Two agents asking
// at once never get the same visit. ErrNone when none is due; outside the
// calling windows none is (an *ErrClosed).
func (s *Store) Next(ctx context.Context, agent string, lease time.Duration) (Lease, error) {
	return s.NextOf(ctx, ByAgent, agent, lease)
}

// NextOf is Next of the visits made in a mode: ByIVR for hotline's own
// automated caller.
func (s *Store) NextOf(ctx context.Context, m Mode, agent string, lease time.Duration) (Lease, error) {
	if agent == "" {
		return Lease{}, fmt.Errorf("%w: who takes the visit", ErrInvalid)
	}
	if lease <= 0 {
		lease = s.opts.Lease
	}
	now := s.opts.Now().In(s.opts.Location)
	if opens := s.opts.Windows.Next(now); !opens.Equal(now) {
		return Lease{}, &ErrClosed{Opens: opens}
	}
	until := now.Add(lease)
	res, err := takeScript.Run(ctx, s.rdb, []string{s.worklist, s.leases, s.leaseEnds, s.log, s.visits},
		now.UnixMilli(), until.UnixMilli(), agent, "taken until "+until.Format(time.RFC3339), MaxLog, now.Format(time.RFC3339Nano), bandOf(m)).StringSlice()
	if err != nil {
		return Lease{}, fmt.Errorf("callback: next visit: %w", err)
	}
	if len(res) < 3 {
		return Lease{}, ErrNone
	}
	v, err := decodeVisit(res[0], res[2])
	if err != nil {
		return Lease{}, err
	}
	ms, _ := strconv.ParseInt(res[1], 10, 64)
	s.changed()
	return Lease{Visit: v, Agent: agent, Until: time.UnixMilli(ms).In(s.opts.Location)}, nil
}

// releaseScript puts back every visit an agent holds. KEYS: leases,
// lease ends, worklist, log. ARGV: agent, the log's entry's what, the
// log's most, now (RFC 3339). Returns the ids put back.
var releaseScript = redis.NewScript(`
local out = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local id, l = all[i], all[i + 1]
  if string.sub(l, 1, #ARGV[1] + 1) == ARGV[1] .. '|' then
    local score = string.match(l, '|([%d.e+]+)$')
    redis.call('HDEL', KEYS[1], id)
    redis.call('ZREM', KEYS[2], id)
    redis.call('ZADD', KEYS[3], score, id)
    redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[3], '*', 'change',
      cjson.encode({at = ARGV[4], by = ARGV[1], visit = id, what = ARGV[2]}))
    out[#out + 1] = id
  end
end
return out
`)

// Release puts every visit the agent holds back in the worklist, as it
// was: when the agent logs out, or gives a visit back. It returns their
// ids.
func (s *Store) Release(ctx context.Context, agent, why string) ([]string, error) {
	if agent == "" {
		return nil, fmt.Errorf("%w: whose visits", ErrInvalid)
	}
	now := s.opts.Now().In(s.opts.Location)
	ids, err := releaseScript.Run(ctx, s.rdb, []string{s.leases, s.leaseEnds, s.worklist, s.log}, agent, "put back: "+why, MaxLog, now.Format(time.RFC3339Nano)).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("callback: release %s's visits: %w", agent, err)
	}
	if len(ids) > 0 {
		s.changed()
	}
	return ids, nil
}

// renewScript extends a lease the agent holds. KEYS: leases, lease ends.
// ARGV: id, agent, new end (ms). Returns 1, or 0 when the agent holds no
// lease on the visit.
var renewScript = redis.NewScript(`
local l = redis.call('HGET', KEYS[1], ARGV[1])
if not l or string.sub(l, 1, #ARGV[2] + 1) ~= ARGV[2] .. '|' then
  return 0
end
local score = string.match(l, '|([%d.e+]+)$')
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '|' .. ARGV[3] .. '|' .. score)
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1
`)

// Renew extends the agent's lease on a visit by lease from now
// (the store's Lease when 0); ErrNotLeased when the agent holds none.
func (s *Store) Renew(ctx context.Context, id, agent string, lease time.Duration) (time.Time, error) {
	if lease <= 0 {
		lease = s.opts.Lease
	}
	until := s.opts.Now().Add(lease).In(s.opts.Location)
	n, err := renewScript.Run(ctx, s.rdb, []string{s.leases, s.leaseEnds}, id, agent, until.UnixMilli()).Int()
	if err != nil {
		return time.Time{}, fmt.Errorf("callback: renew the lease of %s: %w", id, err)
	}
	if n == 0 {
		return time.Time{}, fmt.Errorf("%w: %s, %s", ErrNotLeased, id, agent)
	}
	return until, nil
}

// attemptScript records an attempt on a leased visit: the lease is the
// agent's, the visit's document is the one the attempt was made on; the
// lease ends, and the visit goes back to the worklist when it is to be
// tried again. A refusal puts the number on the do-not-call list. A
// completed return visit counts in its day's rates, once: the day's set
// of counted visits says whether it was.
//
// KEYS: visits, leases, lease ends, worklist, log, do-not-call list,
// counts, the index of the state it ends in (when final), the day's
// rates, the day's counted visits. ARGV: id, agent, document before,
// document after, worklist score ("" when final), the log's entry, the
// log's most, the number ("" unless refused), its do-not-call entry, the
// counts' field it leaves, the one it enters, now (ms), the rates'
// retention (s), "", then the rates' fields to count, if any (a day's
// keys get their expiry with its first completion).
// Returns 1, 0 when the agent holds no lease, -1 when the document
// changed.
var attemptScript = redis.NewScript(`
local l = redis.call('HGET', KEYS[2], ARGV[1])
if not l or string.sub(l, 1, #ARGV[2] + 1) ~= ARGV[2] .. '|' then
  return 0
end
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[3] then
  return -1
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
if ARGV[5] ~= '' then
  redis.call('ZADD', KEYS[4], ARGV[5], ARGV[1])
end
if ARGV[8] ~= '' then
  redis.call('HSET', KEYS[6], ARGV[8], ARGV[9])
end
if ARGV[10] ~= ARGV[11] then
  redis.call('HINCRBY', KEYS[7], ARGV[10], -1)
  redis.call('HINCRBY', KEYS[7], ARGV[11], 1)
  redis.call('ZADD', KEYS[8], ARGV[12], ARGV[1])
end
if #ARGV > 14 and redis.call('ZADD', KEYS[10], 'NX', ARGV[12], ARGV[1]) == 1 then
  for i = 15, #ARGV do
    redis.call('HINCRBY', KEYS[9], ARGV[i], 1)
  end
  if redis.call('TTL', KEYS[10]) < 0 then
    redis.call('EXPIRE', KEYS[9], ARGV[13])
    redis.call('EXPIRE', KEYS[10], ARGV[13])
  end
end
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[7], '*', 'change', ARGV[6])
return 1
`)

// Attempted records an attempt the agent made on a visit it holds, and
// returns the visit after it: completed, refused (consent withdrawn; the
// number goes on the do-not-call list with the note as the reason) and
// wrong_number are final; no_answer, busy and unreachable are tried again
// after the retry policy's wait, and unreachable for good after its most
// attempts; call_later at the time the citizen named. A visit tried
// again is due in the next calling window.
func (s *Store) Attempted(ctx context.Context, id, agent string, a Attempt, caller string) (Visit, error) {
	for range 8 {
		v, done, err := s.tryAttempt(ctx, id, agent, a, caller)
		if err == nil && done {
			s.changed()
		}
		if err != nil || done {
			return v, err
		}
	}
	return Visit{}, fmt.Errorf("callback: attempt on %s: changed every time it was tried", id)
}

// district is the visit's lead organizer's district, "" when none is
// known.
func (s *Store) district(ctx context.Context, v Visit) (string, error) {
	if s.opts.District == nil || len(v.Organizers) == 0 || v.Organizers[0] == "" {
		return "", nil
	}
	d, err := s.opts.District(ctx, v.Organizers[0])
	if err != nil {
		return "", fmt.Errorf("callback: the district of %s: %w", v.Organizers[0], err)
	}
	return d, nil
}

func (s *Store) tryAttempt(ctx context.Context, id, agent string, a Attempt, caller string) (Visit, bool, error) {
	before, err := s.rdb.HGet(ctx, s.visits, id).Result()
	if errors.Is(err, redis.Nil) {
		return Visit{}, false, fmt.Errorf("%w: visit %s", ErrNotFound, id)
	}
	if err != nil {
		return Visit{}, false, fmt.Errorf("callback: visit %s: %w", id, err)
	}
	var v Visit
	if err := json.Unmarshal([]byte(before), &v); err != nil {
		return Visit{}, false, fmt.Errorf("callback: decode visit %s: %w", id, err)
	}
	now := s.opts.Now().In(s.opts.Location)
	a.At, a.By = now, agent
	retry := s.opts.Retry
	score := ""
	var dnc []byte
	number := ""
	var counts completion
	switch a.Outcome {
	case Completed:
		v.State = Done
		if v.Kind == ReturnVisit {
			if a.Answers == nil {
				return Visit{}, false, fmt.Errorf("%w: a completed return visit has the three answers: response, solution, satisfaction", ErrInvalid)
			}
			if err := a.Answers.Check(); err != nil {
				return Visit{}, false, err
			}
			if v.District == "" {
				// Decided by a store that did not know the districts.
				if v.District, err = s.district(ctx, v); err != nil {
					return Visit{}, false, err
				}
			}
			counts = s.completionOf(v, *a.Answers, now)
		}
	case WrongNumber:
		v.State = WrongNumbered
	case Refused:
		v.State = Withdrawn
		if number = normalNumber(caller); number != "" {
			reason := a.Note
			if reason == "" {
				reason = "withdrew consent to return visits"
			}
			if dnc, err = json.Marshal(DoNotCall{Number: number, Reason: reason, By: agent, At: now}); err != nil {
				return Visit{}, false, err
			}
		}
	case NoAnswer, Busy, Unreachable, CallLater:
		wait := map[Outcome]time.Duration{NoAnswer: retry.NoAnswer, Busy: retry.Busy, Unreachable: retry.Unreachable}[a.Outcome]
		due := now.Add(wait)
		if a.Outcome == CallLater {
			if a.Later == nil || !a.Later.After(now) {
				return Visit{}, false, fmt.Errorf("%w: call_later names a time to come", ErrInvalid)
			}
			due = *a.Later
		}
		if a.Outcome != CallLater && len(v.Attempts)+1 >= retry.MaxAttempts {
			v.State = GaveUp
			break
		}
		v.State, v.Due = Waiting, s.opts.Windows.Next(due)
		score = strconv.FormatFloat(worklistScore(v), 'f', 0, 64)
	default:
		return Visit{}, false, fmt.Errorf("%w: outcome %q", ErrInvalid, a.Outcome)
	}
	from := string(Waiting) + "|" + string(v.Kind)
	v.Attempts = append(v.Attempts, a)
	after, err := json.Marshal(v)
	if err != nil {
		return Visit{}, false, err
	}
	what := "attempt: " + string(a.Outcome) + " → " + string(v.State)
	if v.State == Waiting {
		what += ", due " + v.Due.Format(time.RFC3339)
	}
	entry, err := json.Marshal(Change{At: now, By: agent, Appeal: v.Appeal, Visit: v.ID, What: what})
	if err != nil {
		return Visit{}, false, err
	}
	if counts.ratesKey == "" {
		// Keys of the slot, unused.
		counts.ratesKey, counts.ratedKey = s.ratesKey("-"), s.ratedKey("-")
	}
	args := []any{id, agent, before, string(after), score, string(entry), MaxLog, number, string(dnc),
		from, string(v.State) + "|" + string(v.Kind), now.UnixMilli(), int64(s.opts.RatesRetention / time.Second), ""}
	for _, f := range counts.fields {
		args = append(args, f)
	}
	n, err := attemptScript.Run(ctx, s.rdb, []string{s.visits, s.leases, s.leaseEnds, s.worklist, s.log, s.dnc, s.counts, s.ended + string(v.State), counts.ratesKey, counts.ratedKey},
		args...).Int()
	if err != nil {
		return Visit{}, false, fmt.Errorf("callback: attempt on %s: %w", id, err)
	}
	switch n {
	case 0:
		return Visit{}, false, fmt.Errorf("%w: %s, %s", ErrNotLeased, id, agent)
	case -1:
		return Visit{}, false, nil
	}
	if s.opts.Attempted != nil {
		s.opts.Attempted(a.Outcome)
	}
	return v, true, nil
}
