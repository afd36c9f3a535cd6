package trunk

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/internal/eventstream"
)

// Defaults of Options.
const (
	// DefaultChannelLease is how long a seized channel counts without
	// being renewed: the node holding it renews it every quarter of it
	// (Run), so a node that crashed frees its channels within it.
	DefaultChannelLease = 2 * time.Minute
	// DefaultEventsKept bounds the stream of events: the newest are kept.
	DefaultEventsKept = 10000
	// Window is how far back a trunk's figures reach: the current minute
	// and the 14 before it.
	Window = 15 * time.Minute
)

// List limits of Events: a console page, and a cap that keeps one reply
// small.
const (
	DefaultListLimit = 50
	MaxListLimit     = 500
)

// Errors of the package; test with errors.Is.
var (
	// ErrUnknownTrunk is a trunk the configuration does not name.
	ErrUnknownTrunk = errors.New("trunk: no such trunk")
	// ErrFull is a trunk whose channels are all in use (see FullError).
	ErrFull = errors.New("trunk: every channel in use")
	// ErrNoTrunk is an outbound call no trunk can take (see
	// NoTrunkError).
	ErrNoTrunk = errors.New("trunk: no trunk can take the call")
	// ErrInvalid is a request the store cannot answer as asked: a cursor
	// it did not make.
	ErrInvalid = errors.New("trunk: invalid")
)

// Options configures Trunks.
type Options struct {
	// Prefix starts every key. Empty means "hotline".
	Prefix string
	// Trunks are the configured trunks, in their order of preference for
	// outbound calls, their defaults filled in (config.Load does).
	Trunks []config.Trunk
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Location is the zone times are told in (Pick's errors). Nil means
	// time.Local.
	Location *time.Location
	// ChannelLease is how long a seized channel counts unrenewed. Zero
	// means DefaultChannelLease.
	ChannelLease time.Duration
	// EventsKept bounds the stream of events. Zero means
	// DefaultEventsKept.
	EventsKept int
}

// Trunks are the configured trunks as every node shares them: their
// health, their channels and their figures. It is safe for concurrent
// use. It is a prometheus.Collector of this node's channels and calls.
type Trunks struct {
	rdb    redis.UniversalClient
	opts   Options
	base   string
	byName map[string]config.Trunk

	// mu guards live, this node's seized channels, which Run renews.
	mu   sync.Mutex
	live map[*Channel]struct{}

	calls *prometheus.CounterVec
}

// New returns the trunks of opts kept in rdb.
func New(rdb redis.UniversalClient, opts Options) *Trunks {
	if opts.Prefix == "" {
		opts.Prefix = "hotline"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Location == nil {
		opts.Location = time.Local
	}
	if opts.ChannelLease <= 0 {
		opts.ChannelLease = DefaultChannelLease
	}
	if opts.EventsKept <= 0 {
		opts.EventsKept = DefaultEventsKept
	}
	t := &Trunks{
		rdb: rdb, opts: opts, base: opts.Prefix + ":{trunks}:",
		byName: map[string]config.Trunk{}, live: map[*Channel]struct{}{},
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hotline_trunk_calls_total",
			Help: "Calls on a trunk on this node, by direction and outcome: answered, unanswered (busy, no answer, declined, given up), failed (the trunk or carrier failed it) or no_channel (turned away: every channel in use).",
		}, []string{"trunk", "direction", "outcome"}),
	}
	for _, tr := range opts.Trunks {
		t.byName[tr.Name] = tr
		for _, d := range []Direction{In, Out} {
			for _, o := range []Outcome{OutcomeAnswered, OutcomeUnanswered, OutcomeFailed, OutcomeNoChannel} {
				t.calls.WithLabelValues(tr.Name, string(d), string(o))
			}
		}
	}
	return t
}

// Trunks are the configured trunks, in order.
func (t *Trunks) Trunks() []config.Trunk { return t.opts.Trunks }

// Trunk returns the configured trunk name.
func (t *Trunks) Trunk(name string) (config.Trunk, bool) {
	tr, ok := t.byName[name]
	return tr, ok
}

func (t *Trunks) healthKey(name string) string { return t.base + "health:" + name }
func (t *Trunks) eventsKey() string            { return t.base + "events" }
func (t *Trunks) leaseKey(name string) string  { return t.base + "lease:" + name }
func (t *Trunks) registrationKey(name string) string {
	return t.base + "registration:" + name
}
func (t *Trunks) regLeaseKey(name string) string { return t.base + "register-lease:" + name }
func (t *Trunks) channelsKey(name string, d Direction) string {
	return t.base + "channels:" + name + ":" + string(d)
}
func (t *Trunks) minuteKey(name string, minute int64) string {
	return t.base + "minute:" + name + ":" + strconv.FormatInt(minute, 10)
}

// minuteOf is the Unix minute of at.
func minuteOf(at time.Time) int64 { return at.Unix() / 60 }

// minuteTTL is how long a minute's figures are kept from now: until the
// window after the minute's end, and a minute more, has passed. It is
// relative, so that it holds whatever the Redis server's clock says.
func minuteTTL(minute int64, now time.Time) int64 {
	return (minute+1)*60_000 + Window.Milliseconds() + 60_000 - now.UnixMilli()
}

// Probe is one probe of a trunk, as the last one is shown.
type Probe struct {
	At time.Time `json:"at"`
	// Status is the final response's status; absent when none came.
	Status int `json:"status,omitempty"`
	// RTTMillis is how long the response took; absent when none came.
	RTTMillis *float64 `json:"rtt_ms,omitempty"`
	// Error says why no response came.
	Error string `json:"error,omitempty"`
	// Node is the node that probed.
	Node string `json:"node,omitempty"`
}

// record is a trunk's health as Redis keeps it.
type record struct {
	Health
	Since   time.Time
	Seq     int64
	Probe   *Probe
	ProbeID string
	RTT     time.Duration // the last measured; 0 before one
}

// parseRecord reads a health hash; an empty one is a trunk not probed yet.
func parseRecord(m map[string]string) record {
	r := record{Health: Health{State: Unknown}}
	if s := m["state"]; s != "" {
		r.State = State(s)
	}
	r.Failures, _ = strconv.Atoi(m["failures"])
	r.Successes, _ = strconv.Atoi(m["successes"])
	r.Seq, _ = strconv.ParseInt(m["seq"], 10, 64)
	if ms, err := strconv.ParseInt(m["since"], 10, 64); err == nil {
		r.Since = time.UnixMilli(ms)
	}
	if us, err := strconv.ParseInt(m["rtt_us"], 10, 64); err == nil {
		r.RTT = time.Duration(us) * time.Microsecond
	}
	r.ProbeID = m["probe_id"]
	if ms, err := strconv.ParseInt(m["probe_at"], 10, 64); err == nil {
		p := &Probe{At: time.UnixMilli(ms), Error: m["probe_error"], Node: m["probe_node"]}
		p.Status, _ = strconv.Atoi(m["probe_status"])
		if us, err := strconv.ParseInt(m["probe_rtt_us"], 10, 64); err == nil {
			ms := float64(us) / 1000
			p.RTTMillis = &ms
		}
		r.Probe = p
	}
	return r
}

// records reads the health of the named trunks.
func (t *Trunks) records(ctx context.Context, names ...string) (map[string]record, error) {
	cmds := make([]*redis.MapStringStringCmd, len(names))
	_, err := t.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, n := range names {
			cmds[i] = p.HGetAll(ctx, t.healthKey(n))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("trunk: health: %w", err)
	}
	out := make(map[string]record, len(names))
	for i, n := range names {
		out[n] = parseRecord(cmds[i].Val())
	}
	return out, nil
}

// Registration says whether hotline registers with a trunk.
type Registration string

// The registrations.
const (
	// RegistrationOff: the trunk is not to be registered with
	// (register: false); it knows hotline by its address.
	RegistrationOff Registration = "off"
	// NotRegistering: the trunk asks for registration (register: true),
	// and no node registers it: the backend does not (Asterisk registers
	// through its own configuration), none runs, or the registration ran
	// out.
	NotRegistering Registration = "not_registering"
)

// Channels are a trunk's channels in use, across every node.
type Channels struct {
	In    int `json:"in"`
	Out   int `json:"out"`
	Limit int `json:"limit"`
}

// Figures count a trunk's calls: those that seized a channel, and how
// they went.
type Figures struct {
	// Calls seized a channel.
	Calls int64 `json:"calls"`
	// Answered, Unanswered and Failed are how those calls went, once
	// known: a call in progress and not answered yet is in none.
	Answered   int64 `json:"answered"`
	Unanswered int64 `json:"unanswered"`
	Failed     int64 `json:"failed"`
	// ASR is the answer-seizure ratio, Answered ÷ Calls; absent without
	// calls.
	ASR *float64 `json:"asr,omitempty"`
}

func (f *Figures) add(o Figures) {
	f.Calls += o.Calls
	f.Answered += o.Answered
	f.Unanswered += o.Unanswered
	f.Failed += o.Failed
}

func (f *Figures) ratio() {
	if f.Calls > 0 {
		r := float64(f.Answered) / float64(f.Calls)
		f.ASR = &r
	}
}

// Recent are a trunk's figures of the window (the current minute and the
// 14 before), inbound, outbound and both.
type Recent struct {
	Minutes int     `json:"minutes"`
	Total   Figures `json:"total"`
	In      Figures `json:"in"`
	Out     Figures `json:"out"`
}

// Status is a trunk as operations see it.
type Status struct {
	Name      string `json:"name"`
	Address   string `json:"address"`
	Transport string `json:"transport"`
	State     State  `json:"state"`
	// Since is when the trunk came to its state; absent while unknown.
	Since *time.Time `json:"since,omitempty"`
	// Failures and Successes are the probes in a row that failed and
	// that found the trunk alive.
	Failures  int `json:"failures"`
	Successes int `json:"successes"`
	// LastProbe is the latest probe, by whichever node; absent before
	// the first.
	LastProbe    *Probe       `json:"last_probe,omitempty"`
	Registration Registration `json:"registration"`
	// Register is the registration of a trunk that registers (register:
	// true) in detail.
	Register *RegistrationStatus `json:"register,omitempty"`
	Channels Channels            `json:"channels"`
	// Recent are the calls of the last 15 minutes.
	Recent Recent `json:"last_15_minutes"`
}

// Status reports every configured trunk, in order.
func (t *Trunks) Status(ctx context.Context) ([]Status, error) {
	names := make([]string, len(t.opts.Trunks))
	for i, tr := range t.opts.Trunks {
		names[i] = tr.Name
	}
	recs, err := t.records(ctx, names...)
	if err != nil {
		return nil, err
	}
	regs, err := t.registrations(ctx, names...)
	if err != nil {
		return nil, err
	}
	now := t.opts.Now()
	nowMs := strconv.FormatInt(now.UnixMilli(), 10)
	type counts struct{ in, out *redis.IntCmd }
	chans := make([]counts, len(names))
	minutes := make([][]*redis.MapStringStringCmd, len(names))
	last := minuteOf(now)
	_, err = t.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, n := range names {
			chans[i] = counts{
				in:  p.ZCount(ctx, t.channelsKey(n, In), "("+nowMs, "+inf"),
				out: p.ZCount(ctx, t.channelsKey(n, Out), "("+nowMs, "+inf"),
			}
			for m := last - int64(Window/time.Minute) + 1; m <= last; m++ {
				minutes[i] = append(minutes[i], p.HGetAll(ctx, t.minuteKey(n, m)))
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("trunk: channels and figures: %w", err)
	}
	out := make([]Status, len(names))
	for i, tr := range t.opts.Trunks {
		r := recs[tr.Name]
		s := Status{
			Name: tr.Name, Address: tr.Address(), Transport: tr.Transport, State: r.State,
			Failures: r.Failures, Successes: r.Successes, LastProbe: r.Probe, Registration: RegistrationOff,
			Channels: Channels{In: int(chans[i].in.Val()), Out: int(chans[i].out.Val()), Limit: tr.Channels},
			Recent:   Recent{Minutes: int(Window / time.Minute)},
		}
		if !r.Since.IsZero() {
			since := r.Since
			s.Since = &since
		}
		if tr.Register {
			reg := regs[tr.Name]
			s.Registration = reg.current(now)
			detail := reg.status(now)
			s.Register = &detail
		}
		for _, c := range minutes[i] {
			in, out := figuresOf(c.Val())
			s.Recent.In.add(in)
			s.Recent.Out.add(out)
		}
		s.Recent.Total.add(s.Recent.In)
		s.Recent.Total.add(s.Recent.Out)
		for _, f := range []*Figures{&s.Recent.In, &s.Recent.Out, &s.Recent.Total} {
			f.ratio()
		}
		out[i] = s
	}
	return out, nil
}

// figuresOf reads a minute's figures hash.
func figuresOf(m map[string]string) (in, out Figures) {
	for k, v := range m {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			continue
		}
		dir, what, _ := strings.Cut(k, ":")
		f := &in
		if dir == string(Out) {
			f = &out
		}
		switch what {
		case "seized":
			f.Calls += n
		case string(OutcomeAnswered):
			f.Answered += n
		case string(OutcomeUnanswered):
			f.Unanswered += n
		case string(OutcomeFailed):
			f.Failed += n
		}
	}
	return in, out
}

// Transition is a trunk changing state: the trunks' events. Its ID is
// unique and increasing: a receiver of the webhook drops one it has seen.
// Kind tells a change of health (From, To, Probe and the probes in a row)
// from a change of registration (Registration).
type Transition struct {
	ID    string    `json:"id"`
	Kind  EventKind `json:"kind"`
	Trunk string    `json:"trunk"`
	From  State     `json:"from,omitempty"`
	To    State     `json:"to,omitempty"`
	At    time.Time `json:"at"`
	// Probe is the probe that changed the state.
	Probe Probe `json:"probe,omitzero"`
	// Failures and Successes are the probes in a row that led to it.
	Failures  int `json:"failures"`
	Successes int `json:"successes"`
	// Node is the node that saw it.
	Node string `json:"node,omitempty"`
	// Registration is the change of a registration.
	Registration *RegistrationChange `json:"registration,omitempty"`
}

// Events lists the trunks' events newest first, before the cursor of the
// page before ("" for the first), with the next page's cursor ("" on the
// last). A limit below 1 means DefaultListLimit, above MaxListLimit it is
// MaxListLimit.
func (t *Trunks) Events(ctx context.Context, limit int, cursor string) ([]Transition, string, error) {
	if limit < 1 {
		limit = DefaultListLimit
	}
	evs, next, err := eventstream.Page(ctx, t.rdb, t.eventsKey(), min(limit, MaxListLimit), cursor, setEventID)
	if errors.Is(err, eventstream.ErrCursor) {
		return nil, "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err != nil {
		return nil, "", fmt.Errorf("trunk: events: %w", err)
	}
	return evs, next, nil
}

// setEventID sets an event's id; events written before registration
// events had no kind, and are the health's.
func setEventID(ev *Transition, id string) {
	ev.ID = id
	if ev.Kind == "" {
		ev.Kind = KindHealth
	}
}

// decodeEvent reads an event from its stream entry.
func decodeEvent(m redis.XMessage) (Transition, error) { return eventstream.Decode(m, setEventID) }
