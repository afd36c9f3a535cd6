package evaluation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/internal/eventstream"
)

// The alarm watches the line over the windows a supervisor is judged on
// and says so when one crosses it: the whole hotline over the day, the
// calendar month and the rolling 30 days, and each agent over the rolling
// 30 days. Each watched window is within or over the line; crossing to
// over raises one event, and only a rate back at or under the line (a
// reversal, more calls served, or the window moving on) clears it, with
// one event too: no event while the state stays, however often it is
// looked at (hysteresis).
//
// The state of every window over the line is kept in Redis, so any node
// may look; one node at a time does (it holds a lease), and each change
// of state appends its event to a stream in the same script, so a window
// crosses once however many nodes watch.

// Defaults of AlarmOptions.
const (
	DefaultAlarmInterval = 15 * time.Second
	// DefaultEventsKept bounds the stream of events: the newest are kept.
	DefaultEventsKept = 10000
)

// EventKind says which way a window crossed the line.
type EventKind string

// The event kinds.
const (
	EventOver    EventKind = "over"    // the window went over the line
	EventCleared EventKind = "cleared" // it is back at or under the line
)

// Event is a watched window crossing the line, one way or the other. Its
// ID is unique and increasing: a receiver of the webhook drops one it has
// seen.
type Event struct {
	ID   string    `json:"id"`
	Kind EventKind `json:"kind"`
	At   time.Time `json:"at"`
	// Watch names the window watched: "day", "month" or "30d".
	Watch WindowKind `json:"watch"`
	// Line is the window's line at the time of the event: its days, the
	// scope, the counts and the message.
	Line Line   `json:"line"`
	Node string `json:"node,omitempty"` // the node that saw it
}

// watched is one window the alarm watches.
type watched struct {
	kind WindowKind
	line Line
}

// field names the window in the state hash: its scope and kind, not its
// days, so that a day's state carries over to the next day and is
// cleared there if the new day is within.
func (w watched) field() string { return w.line.Scope.row() + "|" + string(w.kind) }

// transitionScript changes a watched window's state and appends the event
// that says so, or does nothing when the window has the state already.
// Within is kept as no field, so the hash holds only the windows over the
// line.
//
// KEYS: state hash, events stream. ARGV: field, state (over or within),
// events kept, event document.
//
// Returns the event's id, or false (nil) when nothing changed.
var transitionScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1]) or 'within'
if cur == ARGV[2] then
  return false
end
if ARGV[2] == 'within' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'doc', ARGV[4])
`)

// leaseScript takes or renews the watcher's lease for ARGV[1].
//
// Returns 1 when ARGV[1] holds it, 0 when another does.
var leaseScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if not cur or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
`)

// AlarmOptions configures an Alarm.
type AlarmOptions struct {
	// Owner names this watcher in its lease: unique per process.
	Owner string
	// Node names the node in the events.
	Node string
	// Interval is how often the windows are looked at; a review looks at
	// once. Zero means DefaultAlarmInterval.
	Interval time.Duration
	// EventsKept bounds the stream of events. Zero means
	// DefaultEventsKept.
	EventsKept int
	// Webhook, when its URL is set, receives every event.
	Webhook WebhookOptions
	// OnEvent, when set, is told of each event this watcher raised.
	OnEvent func(Event)
	Log     zerolog.Logger
}

// Alarm watches the line (see above) and exports it as metrics: it is a
// prometheus.Collector of the windows' last look.
type Alarm struct {
	s    *Store
	opts AlarmOptions

	// checking keeps this node's looks in order: a look that read the
	// counts before a reversal never changes a state after the look
	// that read them after it.
	checking sync.Mutex

	mu   sync.Mutex
	last snapshot
}

// snapshot is the last look at the windows, for the metrics.
type snapshot struct {
	lines          []watched
	overdue        int64
	oldestPending  time.Duration
	reviewsPending int64
}

// NewAlarm returns an Alarm of the store's line.
func NewAlarm(s *Store, opts AlarmOptions) *Alarm {
	if opts.Interval <= 0 {
		opts.Interval = DefaultAlarmInterval
	}
	if opts.EventsKept <= 0 {
		opts.EventsKept = DefaultEventsKept
	}
	if opts.Owner == "" {
		opts.Owner = opts.Node
	}
	return &Alarm{s: s, opts: opts}
}

// Run looks at the windows every Interval, and at once after a review,
// until ctx ends; with a webhook it delivers the events too. A look that
// fails (Redis away) is logged and tried at the next.
func (a *Alarm) Run(ctx context.Context) {
	var wg sync.WaitGroup
	if a.opts.Webhook.URL != "" {
		wg.Go(func() { newWebhook(a.s, a.opts.Webhook, a.opts.Owner, a.opts.Log).Run(ctx) })
	}
	defer wg.Wait()
	t := time.NewTicker(a.opts.Interval)
	defer t.Stop()
	for {
		if _, err := a.Check(ctx); err != nil && ctx.Err() == nil {
			a.opts.Log.Warn().Err(err).Msg("complaint line: looking at the windows")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-a.s.Changes():
		}
	}
}

// Check looks at the windows once: it updates the metrics and, when this
// watcher holds the lease, raises the events of the windows that crossed
// the line, which it returns.
func (a *Alarm) Check(ctx context.Context) ([]Event, error) {
	a.checking.Lock()
	defer a.checking.Unlock()
	now := a.s.now()
	lines, err := a.look(ctx, now)
	if err != nil {
		return nil, err
	}
	snap := snapshot{lines: lines}
	if snap.reviewsPending, snap.overdue, snap.oldestPending, err = a.s.backlog(ctx, now); err != nil {
		return nil, err
	}
	a.mu.Lock()
	a.last = snap
	a.mu.Unlock()

	held, err := leaseScript.Run(ctx, a.s.rdb, []string{a.s.lineWatcher}, a.opts.Owner, (3 * a.opts.Interval).Milliseconds()).Int()
	if err != nil {
		return nil, fmt.Errorf("watcher lease: %w", err)
	}
	if held != 1 {
		return nil, nil
	}
	over, err := a.s.rdb.HGetAll(ctx, a.s.lineStates).Result()
	if err != nil {
		return nil, fmt.Errorf("windows over the line: %w", err)
	}
	seen := map[string]bool{}
	for _, w := range lines {
		seen[w.field()] = true
	}
	// A window over the line that is not among those looked at (an agent
	// with no call in the last 30 days) is looked at on its own.
	for f := range over {
		if seen[f] {
			continue
		}
		w, ok, err := a.lookAgain(ctx, f, now)
		if err != nil {
			return nil, err
		}
		if ok {
			lines = append(lines, w)
		} else {
			// A field no window of today names: drop it quietly.
			a.s.rdb.HDel(ctx, a.s.lineStates, f)
		}
	}
	var events []Event
	for _, w := range lines {
		was := State(over[w.field()])
		if was == "" {
			was = Within
		}
		if was == w.line.State {
			continue
		}
		ev, changed, err := a.transition(ctx, w, now)
		if err != nil {
			return events, err
		}
		if changed {
			events = append(events, ev)
		}
	}
	return events, nil
}

// look reads the watched windows of now.
func (a *Alarm) look(ctx context.Context, now time.Time) ([]watched, error) {
	var out []watched
	for _, kind := range []WindowKind{WindowDay, WindowMonth, WindowRolling} {
		win, err := WindowSpec{Kind: string(kind)}.Resolve(now, a.s.loc)
		if err != nil {
			return nil, err
		}
		l, err := a.s.Line(ctx, win, Hotline)
		if err != nil {
			return nil, err
		}
		out = append(out, watched{kind: kind, line: l})
	}
	win, _ := WindowSpec{Kind: string(WindowRolling)}.Resolve(now, a.s.loc)
	rank, err := a.s.AgentLines(ctx, win)
	if err != nil {
		return nil, err
	}
	for _, l := range rank.Agents {
		out = append(out, watched{kind: WindowRolling, line: l})
	}
	return out, nil
}

// lookAgain reads the window a state field names.
func (a *Alarm) lookAgain(ctx context.Context, field string, now time.Time) (watched, bool, error) {
	row, kind, ok := strings.Cut(field, "|")
	if !ok {
		return watched{}, false, nil
	}
	sc, ok := scopeOfRow(row)
	if !ok {
		return watched{}, false, nil
	}
	win, err := WindowSpec{Kind: kind}.Resolve(now, a.s.loc)
	if err != nil {
		return watched{}, false, nil
	}
	l, err := a.s.Line(ctx, win, sc)
	if err != nil {
		return watched{}, false, err
	}
	return watched{kind: win.Kind, line: l}, true, nil
}

// transition records the window's new state and its event, and tells of
// it: the log, OnEvent. changed is false when another look changed it
// first.
func (a *Alarm) transition(ctx context.Context, w watched, now time.Time) (Event, bool, error) {
	ev := Event{Kind: EventOver, At: now, Watch: w.kind, Line: w.line, Node: a.opts.Node}
	if w.line.State == Within {
		ev.Kind = EventCleared
	}
	doc, err := json.Marshal(ev)
	if err != nil {
		return Event{}, false, err
	}
	id, err := transitionScript.Run(ctx, a.s.rdb, []string{a.s.lineStates, a.s.lineEvents},
		w.field(), string(w.line.State), a.opts.EventsKept, doc).Text()
	if errors.Is(err, redis.Nil) {
		return Event{}, false, nil
	}
	if err != nil {
		return Event{}, false, fmt.Errorf("complaint line %s: %w", w.field(), err)
	}
	ev.ID = id
	l := w.line
	e := a.opts.Log.Warn()
	if ev.Kind == EventCleared {
		e = a.opts.Log.Info()
	}
	e.Str("event", id).Str("kind", string(ev.Kind)).Str("scope", l.Scope.row()).Str("window", string(w.kind)).
		Str("from", l.From).Str("to", l.To).Int64("upheld", l.Upheld).Int64("served", l.Served).
		Int64("pending", l.Pending).Int("limit_per_10000", l.LimitPer10000).Int64("budget", l.Budget).
		Str("line", l.Message).Msg("complaint line " + string(ev.Kind))
	if a.opts.OnEvent != nil {
		a.opts.OnEvent(ev)
	}
	return ev, true, nil
}

// backlog counts the pending reviews, those older than the review SLA,
// and the age of the oldest.
func (s *Store) backlog(ctx context.Context, now time.Time) (pending, overdue int64, oldest time.Duration, err error) {
	key := s.byStatus + string(Pending)
	var n, late *redis.IntCmd
	var first *redis.ZSliceCmd
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		n = p.ZCard(ctx, key)
		late = p.ZCount(ctx, key, "-inf", "("+strconv.FormatInt(now.Add(-s.reviewSLA).UnixMilli(), 10))
		first = p.ZRangeWithScores(ctx, key, 0, 0)
		return nil
	})
	if err != nil {
		return 0, 0, 0, fmt.Errorf("pending reviews: %w", err)
	}
	if zs := first.Val(); len(zs) > 0 {
		oldest = max(now.Sub(time.UnixMilli(int64(zs[0].Score))), 0)
	}
	return n.Val(), late.Val(), oldest, nil
}

// Events lists the line's events newest first, before the cursor of the
// page before ("" for the first), with the next page's cursor ("" on the
// last). A limit below 1 means DefaultListLimit, above MaxListLimit it is
// MaxListLimit.
func (s *Store) Events(ctx context.Context, limit int, cursor string) ([]Event, string, error) {
	evs, next, err := eventstream.Page(ctx, s.rdb, s.lineEvents, clampLimit(limit), cursor, setEventID)
	if errors.Is(err, eventstream.ErrCursor) {
		return nil, "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err != nil {
		return nil, "", fmt.Errorf("evaluation: line events: %w", err)
	}
	return evs, next, nil
}

func setEventID(ev *Event, id string) { ev.ID = id }

// decodeEvent reads an event from its stream entry.
func decodeEvent(m redis.XMessage) (Event, error) { return eventstream.Decode(m, setEventID) }

// The metrics of the line, from the last look.
var (
	rateDesc = prometheus.NewDesc("hotline_complaint_rate_per_10000",
		"Effective complaints per 10,000 calls served over the window; absent with no call served.", []string{"scope", "window"}, nil)
	effectiveDesc = prometheus.NewDesc("hotline_complaints_effective",
		"Effective complaints (bad reviews upheld) over the window, counted on the days of their calls.", []string{"scope", "window"}, nil)
	servedDesc = prometheus.NewDesc("hotline_calls_served",
		"Calls served (an agent answered) over the window.", []string{"scope", "window"}, nil)
	overDesc = prometheus.NewDesc("hotline_complaint_line_over",
		"1 while the window is over the line: effective complaints × 10,000 > limit × calls served.", []string{"scope", "window"}, nil)
	pendingDesc = prometheus.NewDesc("hotline_complaints_pending",
		"Bad reviews over the window not yet reviewed.", []string{"scope", "window"}, nil)
	limitDesc = prometheus.NewDesc("hotline_complaint_limit_per_10000",
		"The line: effective complaints per 10,000 calls served.", nil, nil)
	overdueDesc = prometheus.NewDesc("hotline_complaint_reviews_overdue",
		"Bad reviews waiting for their review longer than the review SLA.", nil, nil)
	oldestDesc = prometheus.NewDesc("hotline_complaint_review_oldest_pending_seconds",
		"How long the oldest bad review has waited for its review; 0 with none.", nil, nil)
	reviewsDesc = prometheus.NewDesc("hotline_complaint_reviews_pending",
		"Bad reviews waiting for their review.", nil, nil)
)

// Describe implements prometheus.Collector.
func (a *Alarm) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{rateDesc, effectiveDesc, servedDesc, overDesc, pendingDesc, limitDesc, overdueDesc, oldestDesc, reviewsDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: the windows of the last look.
func (a *Alarm) Collect(ch chan<- prometheus.Metric) {
	a.mu.Lock()
	snap := a.last
	a.mu.Unlock()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(limitDesc, float64(a.s.limit))
	gauge(overdueDesc, float64(snap.overdue))
	gauge(oldestDesc, snap.oldestPending.Seconds())
	gauge(reviewsDesc, float64(snap.reviewsPending))
	for _, w := range snap.lines {
		scope, win := w.line.Scope.row(), string(w.kind)
		gauge(effectiveDesc, float64(w.line.Upheld), scope, win)
		gauge(servedDesc, float64(w.line.Served), scope, win)
		gauge(pendingDesc, float64(w.line.Pending), scope, win)
		over := 0.0
		if w.line.State == Over {
			over = 1
		}
		gauge(overDesc, over, scope, win)
		if r := w.line.RatePer10000; r != nil {
			gauge(rateDesc, *r, scope, win)
		}
	}
}
