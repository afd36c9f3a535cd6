package trunk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/config"
)

// Outbound registration (RFC 3261 §10.2): a trunk with register: true is
// registered with its carrier, so that the carrier sends the trunk's
// calls to the Contact registered. A registration binds the address of
// record to one Contact, a node's own; with every node registering the
// same address of record the carrier would fork each call to all of them,
// or keep the last that registered. So one node at a time registers a
// trunk: it holds the trunk's registration lease (as one node probes it,
// with a lease of its own, as the registration's timing is not the
// probes'), renewed every third of the lease. A node that stops
// unregisters (Expires: 0) and gives the lease up; one that crashes loses
// it within the lease, and another node then registers its own Contact
// (the crashed node's binding lives on at the carrier until it expires:
// calls sent to it meanwhile are lost, the carrier's way of forking
// aside).
//
// The registration's state is kept in Redis for every node to show
// (Status, the metric hotline_trunk_registered), and each change of it is
// an event of the trunks' stream, of its own kind (KindRegistration),
// apart from the health the OPTIONS probes tell.

// The registration states of a trunk that registers (besides
// RegistrationOff and NotRegistering).
const (
	// Registered: the carrier granted the registration, until
	// RegistrationStatus.Until.
	Registered Registration = "registered"
	// RegistrationFailing: the last REGISTERs failed (no answer, refused,
	// a server error); they are retried with backoff.
	RegistrationFailing Registration = "failing"
)

// Registrations lists the registration states, in the order the API
// documents them.
var Registrations = []Registration{RegistrationOff, NotRegistering, Registered, RegistrationFailing}

// RegistrationStatus is a registering trunk's registration as the API
// shows it.
type RegistrationStatus struct {
	// Since is when the registration came to its state.
	Since *time.Time `json:"since,omitempty"`
	// Until is when the registration granted runs out (registered).
	Until *time.Time `json:"until,omitempty"`
	// LastAttempt is when the last REGISTER was sent.
	LastAttempt *time.Time `json:"last_attempt,omitempty"`
	// Status is the last final response's status; absent when none came.
	Status int `json:"status,omitempty"`
	// Reason says why the last REGISTER failed.
	Reason string `json:"reason,omitempty"`
	// Attempts are the REGISTERs failed in a row (failing).
	Attempts int `json:"attempts,omitempty"`
	// Node is the node that registers the trunk.
	Node string `json:"node,omitempty"`
}

// RegistrationChange is what a registration event says: the state the
// registration left and the one it came to, and the REGISTER's outcome
// that changed it.
type RegistrationChange struct {
	From     Registration `json:"from"`
	To       Registration `json:"to"`
	Status   int          `json:"status,omitempty"`
	Reason   string       `json:"reason,omitempty"`
	Until    *time.Time   `json:"until,omitempty"`
	Attempts int          `json:"attempts,omitempty"`
}

// EventKind tells the trunks' events apart.
type EventKind string

// The kinds of events.
const (
	// KindHealth: the trunk's health changed (the OPTIONS probes).
	KindHealth EventKind = "health"
	// KindRegistration: the trunk's registration changed.
	KindRegistration EventKind = "registration"
)

// RegisterResult is what one registration (a REGISTER, and its answer to
// a challenge) got.
type RegisterResult struct {
	// Status is the final response's status code; 0 when none came.
	Status int
	// Expires is the registration the registrar granted (a 200's Contact
	// or Expires); 0 for what was asked.
	Expires time.Duration
	// RetryAfter is how long a refusal (503) asks to wait; 0 for none.
	RetryAfter time.Duration
	// Err is why the registration failed: no answer, a transport error,
	// a challenge that the credentials did not answer.
	Err error
}

// OK reports whether the registration was granted (or removed).
func (r RegisterResult) OK() bool { return r.Err == nil && r.Status >= 200 && r.Status < 300 }

// reason says why a registration failed.
func (r RegisterResult) reason() string {
	switch {
	case r.Err != nil:
		return r.Err.Error()
	case r.Status != 0 && !r.OK():
		return "refused with " + strconv.Itoa(r.Status)
	}
	return ""
}

// ErrNotSent, wrapped in a RegisterResult's Err, says that the REGISTER
// was not sent for a reason of this side (the SIP stack is starting or
// stopping): it says nothing of the carrier and is not recorded.
var ErrNotSent = errors.New("trunk: REGISTER not sent")

// Registerer registers with a trunk's carrier: the embedded SIP backend
// sends REGISTER. An expiry of 0 removes the registration.
type Registerer interface {
	Register(ctx context.Context, t config.Trunk, expiry time.Duration) RegisterResult
}

// Defaults of RegistrarOptions.
const (
	DefaultRegistrationLease = 30 * time.Second
	DefaultRegisterTimeout   = 10 * time.Second
	DefaultMinRefresh        = 5 * time.Second
	DefaultRetryMin          = time.Second
	DefaultRetryMax          = 5 * time.Minute
	// unregisterTimeout bounds the REGISTER that removes the registration
	// at a stop: best effort, the binding expires at the carrier anyway.
	unregisterTimeout = 2 * time.Second
	// notSentRetry is how soon a REGISTER not sent is tried again.
	notSentRetry = time.Second
)

// RegistrarOptions configures a Registrar.
type RegistrarOptions struct {
	// Owner names this registrar in the leases: unique per process.
	Owner string
	// Node names the node in the state and events.
	Node string
	// Registerer sends the REGISTERs.
	Registerer Registerer
	// Lease is how long a trunk's registration lease lasts unrenewed: a
	// node that crashed has another register within it. Zero means
	// DefaultRegistrationLease.
	Lease time.Duration
	// Timeout bounds one registration, its challenge answered. Zero means
	// DefaultRegisterTimeout.
	Timeout time.Duration
	// MinRefresh is the least time between two registrations granted, so
	// that a registrar granting a few seconds is not flooded. Zero means
	// DefaultMinRefresh.
	MinRefresh time.Duration
	// RetryMin and RetryMax bound the wait after a failed registration:
	// it doubles from RetryMin at each failure in a row, up to RetryMax.
	// Zero means DefaultRetryMin and DefaultRetryMax.
	RetryMin, RetryMax time.Duration
	// Jitter spreads the waits after failures by ± this fraction. Zero
	// means none.
	Jitter float64
	// OnEvent, when set, is told of each registration event this
	// registrar raised.
	OnEvent func(Transition)
	Log     zerolog.Logger
}

// Registrar keeps the registering trunks registered with their carriers
// (see above). It is a prometheus.Collector of the registrations as this
// node last read them.
type Registrar struct {
	t    *Trunks
	opts RegistrarOptions

	mu   sync.Mutex
	last map[string]regRecord // by trunk, for the metric
}

// NewRegistrar returns a registrar of t's trunks that register.
func NewRegistrar(t *Trunks, opts RegistrarOptions) *Registrar {
	if opts.Owner == "" {
		opts.Owner = opts.Node
	}
	if opts.Lease <= 0 {
		opts.Lease = DefaultRegistrationLease
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultRegisterTimeout
	}
	if opts.MinRefresh <= 0 {
		opts.MinRefresh = DefaultMinRefresh
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = DefaultRetryMin
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = DefaultRetryMax
	}
	return &Registrar{t: t, opts: opts, last: map[string]regRecord{}}
}

// refreshIn is when a registration granted for granted is renewed: at
// half of it, so that a REGISTER lost and retried still arrives in time,
// and no sooner than floor.
func refreshIn(granted, floor time.Duration) time.Duration {
	return max(granted/2, floor)
}

// newRetry is the backoff of the failures in a row: from min, doubling,
// up to max, spread by ± jitter.
func newRetry(minWait, maxWait time.Duration, jitter float64) *backoff.ExponentialBackOff {
	b := &backoff.ExponentialBackOff{InitialInterval: minWait, Multiplier: 2, MaxInterval: maxWait, RandomizationFactor: jitter}
	b.Reset()
	return b
}

// retryIn is the wait after a failure: the next backoff, or the
// registrar's Retry-After when longer, never beyond maxWait.
func retryIn(b *backoff.ExponentialBackOff, retryAfter, maxWait time.Duration) time.Duration {
	return min(max(b.NextBackOff(), retryAfter), maxWait)
}

// Run keeps each registering trunk registered while this node holds its
// lease, until ctx ends; then it unregisters them.
func (r *Registrar) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, tr := range r.t.opts.Trunks {
		if tr.Register {
			wg.Go(func() { r.keep(ctx, tr) })
		}
	}
	wg.Wait()
}

// keep keeps one trunk registered while this node holds its lease.
func (r *Registrar) keep(ctx context.Context, tr config.Trunk) {
	log := r.opts.Log.With().Str("trunk", tr.Name).Logger()
	retry := newRetry(r.opts.RetryMin, r.opts.RetryMax, r.opts.Jitter)
	held := false
	var due time.Time // the next REGISTER; zero: at once
	renew := r.opts.Lease / 3
	defer func() {
		if held {
			r.unregister(ctx, tr)
		}
	}()
	for {
		ok, err := leaseScript.Run(ctx, r.t.rdb, []string{r.t.regLeaseKey(tr.Name)}, r.opts.Owner, r.opts.Lease.Milliseconds()).Int()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			// Redis is away: a registration held is kept up (the
			// carrier's calls depend on it), none is taken.
			log.Warn().Err(err).Msg("trunk: registration lease")
		case ok == 1:
			held = true
		case held:
			log.Warn().Msg("trunk: another node took the registration over")
			r.unregister(ctx, tr)
			held, due = false, time.Time{}
		}
		if held && !time.Now().Before(due) {
			due = r.register(ctx, tr, retry, log)
		}
		if !held {
			if err := r.refresh(ctx, tr.Name); err != nil && ctx.Err() == nil {
				log.Warn().Err(err).Msg("trunk: reading the registration")
			}
		}
		wait := renew
		if held {
			wait = min(renew, time.Until(due))
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
	}
}

// register registers the trunk once, records the outcome and returns when
// to register next.
func (r *Registrar) register(ctx context.Context, tr config.Trunk, retry *backoff.ExponentialBackOff, log zerolog.Logger) time.Time {
	expiry := time.Duration(tr.RegisterExpiry)
	if expiry <= 0 {
		expiry = config.DefaultTrunkRegisterExpiry
	}
	at := time.Now()
	rctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	res := r.opts.Registerer.Register(rctx, tr, expiry)
	cancel()
	if ctx.Err() != nil {
		return at
	}
	if errors.Is(res.Err, ErrNotSent) {
		log.Debug().Err(res.Err).Msg("trunk: REGISTER not sent")
		return time.Now().Add(notSentRetry)
	}
	var next time.Time
	state, until := RegistrationFailing, time.Time{}
	if res.OK() {
		granted := res.Expires
		if granted <= 0 {
			granted = expiry
		}
		retry.Reset()
		state, until = Registered, at.Add(granted)
		next = at.Add(refreshIn(granted, r.opts.MinRefresh))
	} else {
		next = time.Now().Add(retryIn(retry, res.RetryAfter, r.opts.RetryMax))
	}
	if _, _, err := r.Record(ctx, tr.Name, state, at, res, until); err != nil && ctx.Err() == nil {
		log.Warn().Err(err).Msg("trunk: recording the registration")
	}
	return next
}

// unregister removes this node's registration (best effort, within
// unregisterTimeout), records the trunk as not registering and gives the
// lease up.
func (r *Registrar) unregister(ctx context.Context, tr config.Trunk) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unregisterTimeout)
	defer cancel()
	at := time.Now()
	res := r.opts.Registerer.Register(ctx, tr, 0)
	if !res.OK() && !errors.Is(res.Err, ErrNotSent) {
		r.opts.Log.Info().Str("trunk", tr.Name).Int("status", res.Status).Str("reason", res.reason()).
			Msg("trunk: unregistering failed: the registration runs out at the carrier")
	}
	if _, _, err := r.Record(ctx, tr.Name, NotRegistering, at, RegisterResult{Status: res.Status}, time.Time{}); err != nil {
		r.opts.Log.Debug().Err(err).Str("trunk", tr.Name).Msg("trunk: recording the end of the registration")
	}
	_ = releaseScript.Run(ctx, r.t.rdb, []string{r.t.regLeaseKey(tr.Name)}, r.opts.Owner).Err()
}

// regRecord is a trunk's registration as Redis keeps it.
type regRecord struct {
	State    Registration
	Since    time.Time
	Until    time.Time
	At       time.Time // the last attempt
	Status   int
	Reason   string
	Attempts int
	Node     string
	Seq      int64
}

// parseRegRecord reads a registration hash; an empty one is a trunk that
// no node registers.
func parseRegRecord(m map[string]string) regRecord {
	r := regRecord{State: NotRegistering, Reason: m["reason"], Node: m["node"]}
	if s := m["state"]; s != "" {
		r.State = Registration(s)
	}
	ms := func(k string) time.Time {
		if v, err := strconv.ParseInt(m[k], 10, 64); err == nil && v > 0 {
			return time.UnixMilli(v)
		}
		return time.Time{}
	}
	r.Since, r.Until, r.At = ms("since"), ms("until"), ms("at")
	r.Status, _ = strconv.Atoi(m["status"])
	r.Attempts, _ = strconv.Atoi(m["attempts"])
	r.Seq, _ = strconv.ParseInt(m["seq"], 10, 64)
	return r
}

// current is the state the record tells at now: a registration whose
// time ran out (its node crashed, and none took over yet) is no more.
func (r regRecord) current(now time.Time) Registration {
	if r.State == Registered && !r.Until.After(now) {
		return NotRegistering
	}
	return r.State
}

// status is the record as the API shows it.
func (r regRecord) status(now time.Time) RegistrationStatus {
	at := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		return &t
	}
	s := RegistrationStatus{Since: at(r.Since), LastAttempt: at(r.At), Status: r.Status, Reason: r.Reason, Attempts: r.Attempts, Node: r.Node}
	if r.current(now) == Registered {
		s.Until = at(r.Until)
	}
	return s
}

// registrations reads the registrations of the named trunks.
func (t *Trunks) registrations(ctx context.Context, names ...string) (map[string]regRecord, error) {
	cmds := make([]*redis.MapStringStringCmd, len(names))
	_, err := t.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, n := range names {
			cmds[i] = p.HGetAll(ctx, t.registrationKey(n))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("trunk: registrations: %w", err)
	}
	out := make(map[string]regRecord, len(names))
	for i, n := range names {
		out[n] = parseRegRecord(cmds[i].Val())
	}
	return out, nil
}

// refresh reads the trunk's registration for the metric.
func (r *Registrar) refresh(ctx context.Context, name string) error {
	recs, err := r.t.registrations(ctx, name)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.last[name] = recs[name]
	r.mu.Unlock()
	return nil
}

// Record records a registration of the trunk name, sent at at, that came
// to state (until when, registered) with res: the trunk's registration
// and, when its state changed, the event, which it logs and returns. It
// writes only while this registrar holds the trunk's registration lease.
func (r *Registrar) Record(ctx context.Context, name string, state Registration, at time.Time, res RegisterResult, until time.Time) (Transition, bool, error) {
	if _, ok := r.t.byName[name]; !ok {
		return Transition{}, false, fmt.Errorf("%w: %q", ErrUnknownTrunk, name)
	}
	for range 3 {
		recs, err := r.t.registrations(ctx, name)
		if err != nil {
			return Transition{}, false, err
		}
		cur := recs[name]
		now := r.t.opts.Now()
		from := cur.current(now)
		next := regRecord{State: state, Since: cur.Since, Until: until, At: at, Status: res.Status, Reason: res.reason(), Node: r.opts.Node, Seq: cur.Seq + 1}
		if state == RegistrationFailing {
			next.Attempts = 1
			if from == RegistrationFailing {
				next.Attempts = cur.Attempts + 1
			}
		}
		doc := ""
		if from != state {
			next.Since = now
			ch := &RegistrationChange{From: from, To: state, Status: res.Status, Reason: next.Reason, Attempts: next.Attempts}
			if !until.IsZero() {
				ch.Until = &until
			}
			b, err := json.Marshal(Transition{Kind: KindRegistration, Trunk: name, At: now, Node: r.opts.Node, Registration: ch})
			if err != nil {
				return Transition{}, false, err
			}
			doc = string(b)
		}
		ms := func(t time.Time) string {
			if t.IsZero() {
				return "0"
			}
			return strconv.FormatInt(t.UnixMilli(), 10)
		}
		out, err := registrationScript.Run(ctx, r.t.rdb, []string{r.t.registrationKey(name), r.t.eventsKey(), r.t.regLeaseKey(name)},
			r.opts.Owner, cur.Seq, string(state), ms(next.Since), ms(until), ms(at), res.Status, next.Reason, next.Attempts,
			r.opts.Node, r.t.opts.EventsKept, doc).Result()
		if err != nil {
			return Transition{}, false, fmt.Errorf("trunk %s: recording a registration: %w", name, err)
		}
		if code, ok := out.(int64); ok {
			switch code {
			case -1:
				return Transition{}, false, r.refresh(ctx, name)
			case -2:
				continue
			}
		}
		r.mu.Lock()
		r.last[name] = next
		r.mu.Unlock()
		id, changed := out.(string)
		if !changed {
			return Transition{}, false, nil
		}
		ev, err := decodeEvent(redis.XMessage{ID: id, Values: map[string]any{"doc": doc}})
		if err != nil {
			return Transition{}, false, err
		}
		r.tell(ev)
		return ev, true, nil
	}
	return Transition{}, false, fmt.Errorf("trunk %s: recording a registration: it kept changing", name)
}

// tell logs a registration event (a warning when it fails) and hands it
// to OnEvent.
func (r *Registrar) tell(ev Transition) {
	ch := ev.Registration
	e := r.opts.Log.Info()
	if ch.To == RegistrationFailing {
		e = r.opts.Log.Warn()
	}
	e = e.Str("event", ev.ID).Str("trunk", ev.Trunk).Str("from", string(ch.From)).Str("to", string(ch.To))
	if ch.Status != 0 {
		e = e.Int("status", ch.Status)
	}
	if ch.Reason != "" {
		e = e.Str("reason", ch.Reason)
	}
	if ch.Until != nil {
		e = e.Time("until", *ch.Until)
	}
	e.Msg("trunk registration " + string(ch.To))
	if r.opts.OnEvent != nil {
		r.opts.OnEvent(ev)
	}
}

var registeredDesc = prometheus.NewDesc("hotline_trunk_registered",
	"1 while the trunk's registration with its carrier is granted and not run out, 0 otherwise (failing, or no node registers it); only trunks with register: true.", []string{"trunk"}, nil)

// Describe implements prometheus.Collector.
func (r *Registrar) Describe(ch chan<- *prometheus.Desc) { ch <- registeredDesc }

// Collect implements prometheus.Collector.
func (r *Registrar) Collect(ch chan<- prometheus.Metric) {
	now := r.t.opts.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, tr := range r.t.opts.Trunks {
		if !tr.Register {
			continue
		}
		v := 0.0
		if r.last[tr.Name].current(now) == Registered {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(registeredDesc, prometheus.GaugeValue, v, tr.Name)
	}
}
