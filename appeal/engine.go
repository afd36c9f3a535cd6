package appeal

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/internal/webhook"
)

// ClockEvent is a clock event fired: an urge before a deadline, an
// overdue at it, the expiry of the processing time limit.
type ClockEvent struct {
	// ID is the event's id in the stream of clock events.
	ID       string    `json:"id,omitempty"`
	Appeal   string    `json:"appeal"`
	Kind     ClockKind `json:"kind"`
	Stage    string    `json:"stage"`
	Category Category  `json:"category"`
	State    State     `json:"state"`
	// Organizers are the appeal's, the lead first, when dispatched.
	Organizers []string  `json:"organizers,omitempty"`
	Due        time.Time `json:"due"`
	// Deadline is the stage's deadline (an urge's comes after it).
	Deadline time.Time `json:"deadline"`
	FiredAt  time.Time `json:"fired_at"`
	// Late says the event fired well after it was due: every engine was
	// stopped, or Redis did not answer.
	Late bool   `json:"late,omitempty"`
	Node string `json:"node"`
	// Consent is the citizen's consent to a return visit, for what an
	// expiry starts.
	Consent bool `json:"consent"`
}

// EngineOptions configure an Engine.
type EngineOptions struct {
	// Node names the node in the events it fires.
	Node string
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Poll is how often the engine looks for events due; 250 ms when 0.
	Poll time.Duration
	// Lease is how long a claimed event is the claiming engine's: one
	// that has not fired it by then (killed, stuck) leaves it to another.
	// 30 s when 0.
	Lease time.Duration
	// Batch is how many events one claim takes at most; 500 when 0.
	Batch int
	// LateAfter is how long after its due time an event fires late; one
	// minute when 0.
	LateAfter time.Duration
	// StreamLen bounds the stream of clock events (approximately);
	// 100,000 when 0.
	StreamLen int64
	// Fired, when set, hears every event fired by this engine.
	Fired func(ClockEvent)
	// Webhook, when its URL is set, receives every clock event (from
	// whichever engine fired it) as a signed POST; Consumer names this
	// process among the nodes delivering them.
	Webhook  webhook.Options
	Consumer string
	Log      zerolog.Logger
}

// Engine fires the appeals' clock events. Every node runs one on the
// same Redis: an event due is claimed by one engine at a time, with a
// lease, and recorded once — in the appeal's history, the stream of clock
// events and Fired — whichever engines run, stop or are killed.
type Engine struct {
	s    *Store
	opts EngineOptions
	// claimed, when set, hears what each claim took, before it is fired.
	claimed func(n int)
}

// NewEngine returns the clock engine of s's appeals.
func NewEngine(s *Store, opts EngineOptions) *Engine {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Poll <= 0 {
		opts.Poll = 250 * time.Millisecond
	}
	if opts.Lease <= 0 {
		opts.Lease = 30 * time.Second
	}
	if opts.Batch <= 0 {
		opts.Batch = 500
	}
	if opts.LateAfter <= 0 {
		opts.LateAfter = time.Minute
	}
	if opts.StreamLen <= 0 {
		opts.StreamLen = 100000
	}
	return &Engine{s: s, opts: opts}
}

// claimScript claims the timers due: each is moved to the end of its
// claim's lease, so that no other engine takes it meanwhile, and the
// claim remembers the token and the time it was due (a timer whose
// lapsed claim is taken again keeps its first due time).
//
// KEYS: the timers, the claims. ARGV: now (ms), lease (ms), the most to
// take, the claim's token. Returns member, token|due, lease end, ...
var claimScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
local lease = now + tonumber(ARGV[2])
local out = {}
for i = 1, #due, 2 do
  local m = due[i]
  local at = due[i + 1]
  local prev = redis.call('HGET', KEYS[2], m)
  if prev then
    at = string.match(prev, '|(%d+)$') or at
  end
  local claim = ARGV[4] .. ':' .. ((i + 1) / 2) .. '|' .. string.format('%d', tonumber(at))
  redis.call('ZADD', KEYS[1], lease, m)
  redis.call('HSET', KEYS[2], m, claim)
  out[#out + 1] = m
  out[#out + 1] = claim
  out[#out + 1] = string.format('%d', lease)
end
return out
`)

// fireScript records claimed events, each if its claim still holds: the
// timer was neither taken by another engine after the lease ran out nor
// changed by a step (which removes its claim). An event of the same due
// time fired before is not recorded again.
//
// KEYS: the timers, the claims, the stream of clock events, then for
// each event its appeal's fired and its appeal's events. ARGV: the
// stream's most, then for each event: member, claim, lease end (ms), due
// (ms), "<kind>|<stage>", the history's event, the stream's event, the
// appeal's id, the kind.
//
// Returns 1 for each event recorded, 0 for each not.
var fireScript = redis.NewScript(`
local out = {}
local n = (#ARGV - 1) / 9
for i = 0, n - 1 do
  local a = 1 + i * 9
  local m, claim, lease, due, field = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5]
  local fired, events = KEYS[4 + i * 2], KEYS[5 + i * 2]
  local ok = 0
  if redis.call('HGET', KEYS[2], m) == claim then
    redis.call('HDEL', KEYS[2], m)
    if tonumber(redis.call('ZSCORE', KEYS[1], m)) == tonumber(lease) then
      redis.call('ZREM', KEYS[1], m)
      if tonumber(redis.call('HGET', fired, field)) ~= tonumber(due) then
        redis.call('HSET', fired, field, due)
        redis.call('RPUSH', events, ARGV[a + 6])
        redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[1], '*',
          'appeal', ARGV[a + 8], 'kind', ARGV[a + 9], 'event', ARGV[a + 7])
        ok = 1
      end
    end
  end
  out[#out + 1] = ok
end
return out
`)

// claimed is one timer an engine claimed.
type claimed struct {
	member, claim string
	until         string // the lease's end, ms, as stored
	due           time.Time
	id            string
	kind          ClockKind
	stage         string
}

// Run fires events until ctx ends: at once, then every Poll, and again
// at once while a claim came back full. It delivers the events to the
// webhook meanwhile, when there is one.
func (e *Engine) Run(ctx context.Context) {
	if e.opts.Webhook.URL != "" {
		// The group before the first event: it takes those fired from now.
		if err := e.s.rdb.XGroupCreateMkStream(ctx, e.s.clockLog, webhook.DefaultGroup, "$").Err(); err != nil && !redis.HasErrorPrefix(err, "BUSYGROUP") {
			e.opts.Log.Warn().Err(err).Msg("supervision webhook: making its consumer group")
		}
		wh := webhook.New(e.s.rdb, webhook.Stream{
			Key: e.s.clockLog, Name: "supervision webhook",
			Body: func(m redis.XMessage) ([]byte, error) {
				ev, err := DecodeClockEvent(m)
				if err != nil {
					return nil, err
				}
				return json.Marshal(ev)
			},
		}, e.opts.Webhook, e.opts.Consumer, e.opts.Log)
		done := make(chan struct{})
		go func() {
			defer close(done)
			wh.Run(ctx)
		}()
		defer func() { <-done }()
	}
	t := time.NewTicker(e.opts.Poll)
	defer t.Stop()
	for {
		n, err := e.Tick(ctx)
		if err != nil && ctx.Err() == nil {
			e.opts.Log.Warn().Err(err).Msg("clock engine: firing the events due")
		}
		if err == nil && n == e.opts.Batch {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Tick claims the events due now (at most Batch) and fires them; it
// returns how many it claimed.
func (e *Engine) Tick(ctx context.Context) (int, error) {
	now := e.opts.Now()
	token := randomToken()
	res, err := claimScript.Run(ctx, e.s.rdb, []string{e.s.timers, e.s.claims},
		now.UnixMilli(), e.opts.Lease.Milliseconds(), e.opts.Batch, token).StringSlice()
	if err != nil {
		return 0, fmt.Errorf("appeal: claim clock events: %w", err)
	}
	var cs []claimed
	for i := 0; i+2 < len(res); i += 3 {
		c := claimed{member: res[i], claim: res[i+1], until: res[i+2]}
		id, kind, stage, err := parseMember(c.member)
		if err != nil {
			e.opts.Log.Error().Err(err).Msg("clock engine: a timer that is none; dropped")
			continue
		}
		_, dueText, _ := strings.Cut(c.claim, "|")
		ms, err := strconv.ParseInt(dueText, 10, 64)
		if err != nil {
			continue
		}
		c.due, c.id, c.kind, c.stage = time.UnixMilli(ms).In(e.s.loc), id, kind, stage
		cs = append(cs, c)
	}
	if e.claimed != nil {
		e.claimed(len(cs))
	}
	if len(cs) == 0 {
		return len(res) / 3, nil
	}
	return len(res) / 3, e.fire(ctx, cs)
}

// fire records the claimed events, with what their appeals are now.
func (e *Engine) fire(ctx context.Context, cs []claimed) error {
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.id
	}
	as, err := e.s.getMany(ctx, ids)
	if err != nil {
		return fmt.Errorf("appeal: read appeals of clock events: %w", err)
	}
	keys := []string{e.s.timers, e.s.claims, e.s.clockLog}
	args := []any{e.opts.StreamLen}
	var evs []ClockEvent
	for i, c := range cs {
		a := as[i]
		if a == nil {
			e.opts.Log.Warn().Str("timer", c.member).Msg("clock engine: the appeal is gone; its event dropped")
			_ = e.s.rdb.ZRem(ctx, e.s.timers, c.member).Err()
			continue
		}
		ev := e.event(*a, c)
		hist, err := json.Marshal(Event{Step: Step(c.kind), At: ev.FiredAt, By: "hotline", To: a.State,
			Stage: c.stage, Due: &ev.Due, Late: ev.Late,
			DispatchDue: a.DispatchDue, SignDue: a.SignDue, FeedbackDue: a.FeedbackDue})
		if err != nil {
			return err
		}
		entry, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		keys = append(keys, e.s.fired+c.id, e.s.events+c.id)
		args = append(args, c.member, c.claim, c.until, c.due.UnixMilli(), string(c.kind)+"|"+c.stage, hist, entry, c.id, string(c.kind))
		evs = append(evs, ev)
	}
	if len(evs) == 0 {
		return nil
	}
	res, err := fireScript.Run(ctx, e.s.rdb, keys, args...).Int64Slice()
	if err != nil {
		return fmt.Errorf("appeal: fire clock events: %w", err)
	}
	for i, ev := range evs {
		if i >= len(res) || res[i] != 1 {
			continue
		}
		log := e.opts.Log.Info()
		if ev.Kind != Urge {
			log = e.opts.Log.Warn()
		}
		log.Str("appeal", ev.Appeal).Str("kind", string(ev.Kind)).Str("stage", ev.Stage).Str("state", string(ev.State)).
			Time("due", ev.Due).Bool("late", ev.Late).Msg("appeal clock")
		if e.opts.Fired != nil {
			e.opts.Fired(ev)
		}
	}
	return nil
}

// event is the clock event a claim fires on a.
func (e *Engine) event(a Appeal, c claimed) ClockEvent {
	now := e.opts.Now().In(e.s.loc)
	ev := ClockEvent{Appeal: a.ID, Kind: c.kind, Stage: c.stage, Category: a.Category, State: a.State,
		Due: c.due, FiredAt: now, Late: now.Sub(c.due) > e.opts.LateAfter, Node: e.opts.Node, Consent: a.Consent.Given}
	switch c.stage {
	case StageDispatch:
		ev.Deadline = a.DispatchDue
	case StageSign:
		ev.Deadline = a.SignDue
	default:
		ev.Deadline = a.FeedbackDue
	}
	if a.Assignment != nil {
		ev.Organizers = a.Assignment.Organizers()
	}
	return ev
}

// ClockEvents lists the clock events fired, newest first, up to limit,
// before the cursor (an event's id; "" for the newest).
func (s *Store) ClockEvents(ctx context.Context, limit int, cursor string) ([]ClockEvent, string, error) {
	if limit < 1 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)
	end := "+"
	if cursor != "" {
		end = "(" + cursor
	}
	msgs, err := s.rdb.XRevRangeN(ctx, s.clockLog, end, "-", int64(limit)+1).Result()
	if err != nil {
		if strings.Contains(err.Error(), "Invalid stream ID") {
			return nil, "", fmt.Errorf("%w: cursor %q", ErrInvalid, cursor)
		}
		return nil, "", fmt.Errorf("appeal: clock events: %w", err)
	}
	next := ""
	if len(msgs) > limit {
		msgs = msgs[:limit]
		next = msgs[limit-1].ID
	}
	out := make([]ClockEvent, 0, len(msgs))
	for _, m := range msgs {
		ev, err := DecodeClockEvent(m)
		if err != nil {
			return nil, "", err
		}
		out = append(out, ev)
	}
	return out, next, nil
}

// ClockStream is the key of the stream of clock events, for what
// consumes them (the return visits).
func (s *Store) ClockStream() string { return s.clockLog }

// DecodeClockEvent reads a clock event from its stream entry.
func DecodeClockEvent(m redis.XMessage) (ClockEvent, error) {
	raw, _ := m.Values["event"].(string)
	var ev ClockEvent
	if err := json.Unmarshal([]byte(raw), &ev); err != nil {
		return ClockEvent{}, fmt.Errorf("appeal: clock event %s: %w", m.ID, err)
	}
	ev.ID = m.ID
	return ev, nil
}

// Pending is how many clock events are to come, and the due time of the
// earliest (zero without any): how far behind the engines are.
func (s *Store) Pending(ctx context.Context) (int64, time.Time, error) {
	n, err := s.rdb.ZCard(ctx, s.timers).Result()
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("appeal: timers: %w", err)
	}
	first, err := s.rdb.ZRangeWithScores(ctx, s.timers, 0, 0).Result()
	if err != nil || len(first) == 0 {
		return n, time.Time{}, err
	}
	return n, time.UnixMilli(int64(first[0].Score)).In(s.loc), nil
}

// Counts are the appeals by state and category, the probe's left out.
func (s *Store) Counts(ctx context.Context) (map[State]map[Category]int64, error) {
	m, err := s.rdb.HGetAll(ctx, s.counts).Result()
	if err != nil {
		return nil, fmt.Errorf("appeal: counts: %w", err)
	}
	out := map[State]map[Category]int64{}
	for k, v := range m {
		st, cat, ok := strings.Cut(k, "|")
		n, err := strconv.ParseInt(v, 10, 64)
		if !ok || err != nil {
			continue
		}
		if out[State(st)] == nil {
			out[State(st)] = map[Category]int64{}
		}
		out[State(st)][Category(cat)] = n
	}
	return out, nil
}

func randomToken() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(errors.New("appeal: no randomness"))
	}
	return hex.EncodeToString(b[:])
}
