package appeal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/hotline12345/hotline/internal/zpage"
)

// MaxEvents bounds an appeal's history: far more steps than any appeal
// takes (an order returned and dispatched again a few times). A step
// past it is refused, so that no appeal's history grows without end.
const MaxEvents = 500

// ErrHistoryFull: the appeal has MaxEvents steps already.
var ErrHistoryFull = errors.New("appeal: history full")

// stepScript stores a step: the appeal's new document, if the document
// is still the one the step was made on (another step in between makes
// it try again), its event, and its place in the indexes.
//
// KEYS: the appeals hash, the appeal's events, the index of the state it
// leaves, the index of the state it enters, the timers, the claims, the
// counts, the chase, then the organizers' indexes it joins and those it
// leaves.
// ARGV: id, document before, document after, event, creation time in ms,
// the most events, how many organizers' indexes it joins, the counts
// field it leaves, the one it enters, the timers to set ("suffix=ms"
// joined by commas), the timers to remove (members joined by commas),
// the deadline (ms) of the stage it waits for ("" for none).
//
// Returns the event's number in the history, 0 when the document
// changed, -1 when the history is full.
var stepScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then
  return 0
end
if redis.call('LLEN', KEYS[2]) >= tonumber(ARGV[6]) then
  return -1
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
local n = redis.call('RPUSH', KEYS[2], ARGV[4])
if KEYS[3] ~= KEYS[4] then
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('ZADD', KEYS[4], ARGV[5], ARGV[1])
  redis.call('HINCRBY', KEYS[7], ARGV[8], -1)
  redis.call('HINCRBY', KEYS[7], ARGV[9], 1)
end
for suffix, ms in string.gmatch(ARGV[10], '([^,=]+)=(%d+)') do
  local m = ARGV[1] .. '|' .. suffix
  redis.call('ZADD', KEYS[5], ms, m)
  redis.call('HDEL', KEYS[6], m)
end
for m in string.gmatch(ARGV[11], '[^,]+') do
  redis.call('ZREM', KEYS[5], m)
  redis.call('HDEL', KEYS[6], m)
end
if ARGV[12] == '' then
  redis.call('ZREM', KEYS[8], ARGV[1])
else
  redis.call('ZADD', KEYS[8], ARGV[12], ARGV[1])
end
local joins = tonumber(ARGV[7])
for i = 9, #KEYS do
  if i < 9 + joins then
    redis.call('ZADD', KEYS[i], ARGV[5], ARGV[1])
  else
    redis.call('ZREM', KEYS[i], ARGV[1])
  end
end
return n + 1
`)

// Step makes act on the appeal id: it checks that the appeal's state
// allows it (an error wrapping ErrState, a *StateError with the state,
// when not), stores the appeal as it leaves it with the event that
// records it, and returns both. The step happens at the store's clock.
// Two steps on one appeal at once are made one after the other: the
// second sees the first (feedback twice is refused however close
// together). The probe's appeals take no steps.
func (s *Store) Step(ctx context.Context, id string, act Action) (Appeal, Event, error) {
	for range 16 {
		a, ev, done, err := s.tryStep(ctx, id, act)
		if err != nil || done {
			return a, ev, err
		}
	}
	return Appeal{}, Event{}, fmt.Errorf("appeal: %s %s: changed by other steps every time it was tried", act.Step, id)
}

func (s *Store) tryStep(ctx context.Context, id string, act Action) (Appeal, Event, bool, error) {
	if !validID(id) {
		return Appeal{}, Event{}, false, fmt.Errorf("%w: appeal %q", ErrNotFound, id)
	}
	before, err := s.rdb.HGet(ctx, s.appeals, id).Result()
	if errors.Is(err, redis.Nil) {
		return Appeal{}, Event{}, false, fmt.Errorf("%w: appeal %s", ErrNotFound, id)
	}
	if err != nil {
		return Appeal{}, Event{}, false, fmt.Errorf("appeal: %s %s: %w", act.Step, id, err)
	}
	a, err := decode(before)
	if err != nil {
		return Appeal{}, Event{}, false, err
	}
	if a.Synthetic {
		return Appeal{}, Event{}, false, fmt.Errorf("%w: appeal %s is the synthetic probe's: nobody works it", ErrInvalid, id)
	}
	orgs := map[string]Organizer{}
	if act.Step == Dispatch {
		list, err := s.Organizers(ctx)
		if err != nil {
			return Appeal{}, Event{}, false, err
		}
		for _, o := range list {
			orgs[o.ID] = o
		}
	}
	var was []string
	if a.Assignment != nil {
		was = a.Assignment.Organizers()
	}
	from := a.State
	timersBefore := timersOf(a, s.urge)
	ev, err := apply(&a, act, s.now().In(s.loc), s.loc, func(id string) (Organizer, bool) {
		o, ok := orgs[id]
		return o, ok
	})
	if err != nil {
		return Appeal{}, Event{}, false, err
	}
	after, err := json.Marshal(a)
	if err != nil {
		return Appeal{}, Event{}, false, fmt.Errorf("appeal: encode %s: %w", id, err)
	}
	evDoc, err := json.Marshal(ev)
	if err != nil {
		return Appeal{}, Event{}, false, fmt.Errorf("appeal: encode event of %s: %w", id, err)
	}
	setTimers, removeTimers := timerChanges(id, timersBefore, timersOf(a, s.urge))
	keys := []string{s.appeals, s.events + id, s.state + string(from), s.state + string(a.State), s.timers, s.claims, s.counts, s.chase}
	var joins, leaves []string
	switch act.Step {
	case Dispatch:
		joins = a.Assignment.Organizers()
	case Return:
		leaves = was
	}
	for _, o := range joins {
		keys = append(keys, s.organizer+o)
	}
	for _, o := range leaves {
		keys = append(keys, s.organizer+o)
	}
	n, err := stepScript.Run(ctx, s.rdb, keys, id, before, after, evDoc, a.CreatedAt.UnixMilli(), MaxEvents, len(joins),
		countsField(from, a.Category), countsField(a.State, a.Category), timerArgs(setTimers), strings.Join(removeTimers, ","), chaseScore(a)).Int()
	if err != nil {
		return Appeal{}, Event{}, false, fmt.Errorf("appeal: %s %s: %w", act.Step, id, err)
	}
	switch n {
	case 0:
		return Appeal{}, Event{}, false, nil
	case -1:
		return Appeal{}, Event{}, false, fmt.Errorf("%w: appeal %s has %d steps", ErrHistoryFull, id, MaxEvents)
	}
	ev.Seq = n
	return a, ev, true, nil
}

// History is the appeal's events, oldest first: its creation (with the
// deadlines it was created with), then every step.
func (s *Store) History(ctx context.Context, id string) ([]Event, error) {
	a, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	docs, err := s.rdb.LRange(ctx, s.events+id, 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("appeal: history of %s: %w", id, err)
	}
	dispatch, sign, feedback := Clocks(a.Category, a.CreatedAt, a.PeakMode, s.loc)
	out := make([]Event, 0, len(docs)+1)
	out = append(out, Event{Seq: 1, Step: Created, At: a.CreatedAt, By: "hotline", To: Received,
		DispatchDue: dispatch, SignDue: sign, FeedbackDue: feedback})
	for i, doc := range docs {
		var ev Event
		if err := json.Unmarshal([]byte(doc), &ev); err != nil {
			return nil, fmt.Errorf("appeal: decode event %d of %s: %w", i+2, id, err)
		}
		ev.Seq = i + 2
		out = append(out, ev)
	}
	return out, nil
}

// Filter selects appeals for Find; zero fields select all.
type Filter struct {
	State     State
	Organizer string
	Category  Category
	// Overdue keeps the appeals whose current stage is past its
	// deadline.
	Overdue bool
	Limit   int
	// Cursor is the page before's next cursor; "" for the first page.
	Cursor string
}

// Find returns a page of the appeals f selects, newest first, and the
// cursor of the next page ("" when it was the last). The probe's appeals
// are never among them. A limit below 1 means DefaultListLimit, above
// MaxListLimit MaxListLimit. A bad cursor or filter is an error wrapping
// ErrInvalid.
func (s *Store) Find(ctx context.Context, f Filter) ([]Appeal, string, error) {
	if f.Limit < 1 {
		f.Limit = DefaultListLimit
	}
	f.Limit = min(f.Limit, MaxListLimit)
	if f.State != "" && !f.State.Valid() {
		return nil, "", fmt.Errorf("%w: state %q", ErrInvalid, f.State)
	}
	if f.Category != "" && !f.Category.Valid() {
		return nil, "", fmt.Errorf("%w: category %q", ErrInvalid, f.Category)
	}
	after, err := zpage.Parse(f.Cursor)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	// The narrowest index the filter names.
	key := s.created
	switch {
	case f.Organizer != "":
		key = s.organizer + f.Organizer
	case f.State != "":
		key = s.state + string(f.State)
	}
	now := s.now()
	found := map[string]Appeal{}
	zs, next, err := zpage.Page(ctx, s.rdb, zpage.Query{Key: key, Reverse: true, After: after, Limit: f.Limit},
		func(zs []redis.Z) ([]bool, error) {
			ids := make([]string, len(zs))
			for i, z := range zs {
				ids[i] = z.Member.(string)
			}
			as, err := s.getMany(ctx, ids)
			if err != nil {
				return nil, err
			}
			keep := make([]bool, len(zs))
			for i, a := range as {
				if a == nil {
					continue
				}
				keep[i] = (f.State == "" || a.State == f.State) &&
					(f.Category == "" || a.Category == f.Category) &&
					(!f.Overdue || a.Overdue(now))
				if keep[i] {
					found[a.ID] = *a
				}
			}
			return keep, nil
		})
	if err != nil {
		return nil, "", fmt.Errorf("appeal: find: %w", err)
	}
	out := make([]Appeal, len(zs))
	for i, z := range zs {
		out[i] = found[z.Member.(string)]
	}
	cursor := ""
	if next != nil {
		cursor = next.String()
	}
	return out, cursor, nil
}

// chaseScore is the appeal's score in the chase: the deadline of the
// stage it waits for, "" when it waits for none with a deadline.
func chaseScore(a Appeal) string {
	_, due := a.Due()
	if due.IsZero() || a.State == FedBack || a.State == Closed {
		return ""
	}
	return strconv.FormatInt(due.UnixMilli(), 10)
}
