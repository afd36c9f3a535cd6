package trunk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/internal/webhook"
)

// The monitor probes each trunk every probe interval and keeps its health
// in Redis. One node at a time probes a trunk: it holds the trunk's lease,
// renewed at each probe, and given up when it stops, so that another
// node takes over at its next tick (or within two intervals and a timeout
// of a node that crashed). One prober spares the carrier N nodes' OPTIONS
// and keeps the probes in a row one sequence; the node writes a probe's
// health only while it holds the lease, over the health it read, so a
// state changes once, with one event, however many nodes watch. Every
// node reads the health at each tick, for its metrics.

// EventHeader is the header the webhook's requests carry besides the
// signature's: which kind of event the body is.
var EventHeader = http.Header{"X-Hotline-Event-Type": {"trunk"}}

// MonitorOptions configures a Monitor.
type MonitorOptions struct {
	// Owner names this monitor in the leases: unique per process.
	Owner string
	// Node names the node in the probes and events.
	Node string
	// Prober probes the trunks.
	Prober Prober
	// Webhook, when its URL is set, receives every event.
	Webhook webhook.Options
	// OnEvent, when set, is told of each event this monitor raised.
	OnEvent func(Transition)
	Log     zerolog.Logger
}

// Monitor watches the trunks' health (see above) and exports it as
// metrics: it is a prometheus.Collector of the health every node reads.
type Monitor struct {
	t    *Trunks
	opts MonitorOptions

	mu   sync.Mutex
	last map[string]record // by trunk, for the metrics
}

// NewMonitor returns a monitor of t's trunks.
func NewMonitor(t *Trunks, opts MonitorOptions) *Monitor {
	if opts.Owner == "" {
		opts.Owner = opts.Node
	}
	return &Monitor{t: t, opts: opts, last: map[string]record{}}
}

// Run probes every trunk every interval until ctx ends; with a webhook it
// delivers the events too.
func (m *Monitor) Run(ctx context.Context) {
	var wg sync.WaitGroup
	if m.opts.Webhook.URL != "" {
		wh := webhook.New(m.t.rdb, webhook.Stream{
			Key: m.t.eventsKey(), Name: "trunk webhook", Header: EventHeader,
			Body: func(msg redis.XMessage) ([]byte, error) {
				ev, err := decodeEvent(msg)
				if err != nil {
					return nil, err
				}
				return json.Marshal(ev)
			},
		}, m.opts.Webhook, m.opts.Owner, m.opts.Log)
		wg.Go(func() { wh.Run(ctx) })
	}
	for _, tr := range m.t.opts.Trunks {
		wg.Go(func() { m.watch(ctx, tr) })
	}
	wg.Wait()
}

// watch probes one trunk every interval, while it holds its lease.
func (m *Monitor) watch(ctx context.Context, tr config.Trunk) {
	tick := time.NewTicker(time.Duration(tr.Probe.Interval))
	defer tick.Stop()
	defer m.release(ctx, tr.Name)
	for {
		if _, _, err := m.Probe(ctx, tr.Name); err != nil && ctx.Err() == nil {
			m.opts.Log.Warn().Err(err).Str("trunk", tr.Name).Msg("trunk: probing")
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// release gives the trunk's lease up, so that another node probes it at
// its next tick.
func (m *Monitor) release(ctx context.Context, name string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	_ = releaseScript.Run(ctx, m.t.rdb, []string{m.t.leaseKey(name)}, m.opts.Owner).Err()
}

// Probe probes the trunk name once when this monitor holds (or takes) its
// lease, and records the result: the event, when its state changed. A
// monitor without the lease only reads the trunk's health.
func (m *Monitor) Probe(ctx context.Context, name string) (Transition, bool, error) {
	tr, ok := m.t.byName[name]
	if !ok {
		return Transition{}, false, fmt.Errorf("%w: %q", ErrUnknownTrunk, name)
	}
	// The lease outlasts two missed ticks, so that a node late by one
	// keeps it, and a second more, so that a stalled process still holds
	// it when it records the probe it took it for.
	lease := 2*time.Duration(tr.Probe.Interval) + time.Duration(tr.Probe.Timeout) + time.Second
	held, err := leaseScript.Run(ctx, m.t.rdb, []string{m.t.leaseKey(name)}, m.opts.Owner, lease.Milliseconds()).Int()
	if err != nil {
		return Transition{}, false, fmt.Errorf("trunk %s: probe lease: %w", name, err)
	}
	if held != 1 {
		return Transition{}, false, m.refresh(ctx, name)
	}
	at := m.t.opts.Now()
	pctx, cancel := context.WithTimeout(ctx, time.Duration(tr.Probe.Timeout))
	r := m.opts.Prober.Probe(pctx, tr)
	cancel()
	if ctx.Err() != nil {
		// Stopped while probing: the probe says nothing of the trunk.
		return Transition{}, false, ctx.Err()
	}
	if errors.Is(r.Err, ErrNotProbed) {
		m.opts.Log.Debug().Err(r.Err).Str("trunk", name).Msg("trunk: probe not sent")
		return Transition{}, false, m.refresh(ctx, name)
	}
	return m.Record(ctx, name, at, r)
}

// refresh reads the trunk's health for the metrics.
func (m *Monitor) refresh(ctx context.Context, name string) error {
	recs, err := m.t.records(ctx, name)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.last[name] = recs[name]
	m.mu.Unlock()
	return nil
}

// Record records the result r of a probe of the trunk name started at at:
// the trunk's new health and, when its state changed, the event, which it
// logs and returns. It writes only while this monitor holds the trunk's
// lease (Probe takes it), and records nothing otherwise: the holder's
// probes count. A source of results other than a Prober (a backend told
// of them) would take the lease and record them here.
func (m *Monitor) Record(ctx context.Context, name string, at time.Time, r Result) (Transition, bool, error) {
	tr, ok := m.t.byName[name]
	if !ok {
		return Transition{}, false, fmt.Errorf("%w: %q", ErrUnknownTrunk, name)
	}
	probe := Probe{At: at, Status: r.Status, Node: m.opts.Node}
	rtt := ""
	if r.Err != nil {
		probe.Error = r.Err.Error()
	} else if r.Status > 0 {
		ms := float64(r.RTT.Microseconds()) / 1000
		probe.RTTMillis = &ms
		rtt = strconv.FormatInt(r.RTT.Microseconds(), 10)
	}
	id := uuid.Must(uuid.NewV7()).String()
	// The health read may be changed by another node between the read
	// and the script (a lease handed over): read it again.
	for range 3 {
		recs, err := m.t.records(ctx, name)
		if err != nil {
			return Transition{}, false, err
		}
		cur := recs[name]
		if cur.ProbeID == id {
			return Transition{}, false, nil // written by a try whose answer was lost
		}
		next := Next(tr.Probe, cur.Health, r.Verdict())
		now := m.t.opts.Now()
		ev := Transition{Kind: KindHealth, Trunk: name, From: cur.State, To: next.State, At: now, Probe: probe,
			Failures: next.Failures, Successes: next.Successes, Node: m.opts.Node}
		doc := ""
		if ev.From != ev.To {
			b, err := json.Marshal(ev)
			if err != nil {
				return Transition{}, false, err
			}
			doc = string(b)
		}
		res, err := recordScript.Run(ctx, m.t.rdb, []string{m.t.healthKey(name), m.t.eventsKey(), m.t.leaseKey(name)},
			m.opts.Owner, cur.Seq, string(next.State), next.Failures, next.Successes, now.UnixMilli(),
			at.UnixMilli(), r.Status, rtt, probe.Error, m.opts.Node, id, m.t.opts.EventsKept, doc).Result()
		if err != nil {
			return Transition{}, false, fmt.Errorf("trunk %s: recording a probe: %w", name, err)
		}
		if code, ok := res.(int64); ok {
			switch code {
			case -1:
				m.opts.Log.Debug().Str("trunk", name).Msg("trunk: a probe not recorded: another node took the lease meanwhile")
				return Transition{}, false, m.refresh(ctx, name)
			case -2:
				continue
			}
		}
		written := record{Health: next, Since: cur.Since, Seq: cur.Seq + 1, Probe: &probe, ProbeID: id, RTT: cur.RTT}
		if rtt != "" {
			written.RTT = r.RTT
		}
		evID, changed := res.(string)
		if changed {
			written.Since = now
		}
		m.mu.Lock()
		m.last[name] = written
		m.mu.Unlock()
		if !changed {
			return Transition{}, false, nil
		}
		ev.ID = evID
		m.tell(ev)
		return ev, true, nil
	}
	return Transition{}, false, fmt.Errorf("trunk %s: recording a probe: its health kept changing", name)
}

// tell logs an event (a warning when the trunk takes no more calls) and
// hands it to OnEvent.
func (m *Monitor) tell(ev Transition) {
	e := m.opts.Log.Info()
	if !ev.To.Usable() {
		e = m.opts.Log.Warn()
	}
	e = e.Str("event", ev.ID).Str("trunk", ev.Trunk).Str("from", string(ev.From)).Str("to", string(ev.To)).
		Int("failures", ev.Failures).Int("successes", ev.Successes)
	if ev.Probe.Status != 0 {
		e = e.Int("status", ev.Probe.Status)
	}
	if ev.Probe.RTTMillis != nil {
		e = e.Float64("rtt_ms", *ev.Probe.RTTMillis)
	}
	if ev.Probe.Error != "" {
		e = e.Str("probe_error", ev.Probe.Error)
	}
	e.Msg("trunk " + string(ev.To))
	if m.opts.OnEvent != nil {
		m.opts.OnEvent(ev)
	}
}

// The metrics of the trunks' health, as every node last read it.
var (
	upDesc = prometheus.NewDesc("hotline_trunk_up",
		"1 while the trunk is up (answers its OPTIONS probes), 0 otherwise: down, in maintenance, or not probed yet.", []string{"trunk"}, nil)
	stateDesc = prometheus.NewDesc("hotline_trunk_state",
		"1 for the trunk's state (unknown, up, down, maintenance), 0 for the others.", []string{"trunk", "state"}, nil)
	rttDesc = prometheus.NewDesc("hotline_trunk_options_rtt_seconds",
		"How long the trunk took to answer the last OPTIONS probe that it answered; absent before one.", []string{"trunk"}, nil)
)

// Describe implements prometheus.Collector.
func (m *Monitor) Describe(ch chan<- *prometheus.Desc) {
	ch <- upDesc
	ch <- stateDesc
	ch <- rttDesc
}

// Collect implements prometheus.Collector.
func (m *Monitor) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, tr := range m.t.opts.Trunks {
		r, ok := m.last[tr.Name]
		if !ok {
			r = record{Health: Health{State: Unknown}}
		}
		up := 0.0
		if r.State == Up {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, up, tr.Name)
		for _, s := range States {
			v := 0.0
			if r.State == s {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(stateDesc, prometheus.GaugeValue, v, tr.Name, string(s))
		}
		if r.RTT > 0 {
			ch <- prometheus.MustNewConstMetric(rttDesc, prometheus.GaugeValue, r.RTT.Seconds(), tr.Name)
		}
	}
}
