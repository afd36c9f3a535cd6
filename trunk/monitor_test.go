package trunk_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/internal/redistest"
	"github.com/hotline12345/hotline/internal/testclock"
	"github.com/hotline12345/hotline/internal/webhook"
	"github.com/hotline12345/hotline/trunk"
)

var beijing = appeal.DefaultLocation()

// carrier is a trunk of the tests: down after 3 failures, up after 2
// live probes.
func carrier(name string, channels int) config.Trunk {
	return config.Trunk{Name: name, Host: "127.0.0.2", Port: 5060, Transport: "udp", Channels: channels,
		Probe: config.TrunkProbe{Interval: config.Duration(20 * time.Millisecond), Timeout: config.Duration(10 * time.Millisecond), DownAfter: 3, UpAfter: 2}}
}

// Probe results of the tests.
var (
	ok      = trunk.Result{Status: 200, RTT: 3 * time.Millisecond}
	notHere = trunk.Result{Status: 404, RTT: 2 * time.Millisecond}
	silent  = trunk.Result{Err: context.DeadlineExceeded}
	broken  = trunk.Result{Status: 500, RTT: time.Millisecond}
	busy    = trunk.Result{Status: 503, RTT: time.Millisecond}
)

// script is a carrier answering probes in the order given, the last one
// for ever after; it counts the probes.
type script struct {
	mu      sync.Mutex
	results []trunk.Result
	probes  int
	during  func() // runs during each probe, when set
}

func (s *script) Probe(_ context.Context, _ config.Trunk) trunk.Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.during != nil {
		s.during()
	}
	r := s.results[min(s.probes, len(s.results)-1)]
	s.probes++
	return r
}

func (s *script) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.probes
}

// transition is an event as the tests expect it.
type transition struct {
	from, to            trunk.State
	failures, successes int
}

func transitions(evs []trunk.Transition) []transition {
	out := make([]transition, len(evs))
	for i, ev := range evs {
		out[i] = transition{ev.From, ev.To, ev.Failures, ev.Successes}
	}
	return out
}

func sameTransitions(t *testing.T, got []trunk.Transition, want ...transition) {
	t.Helper()
	g := transitions(got)
	if len(g) != len(want) {
		t.Fatalf("transitions %+v, want %+v", g, want)
	}
	for i := range g {
		if g[i] != want[i] {
			t.Fatalf("transitions %+v, want %+v", g, want)
		}
	}
}

// TestMonitorStates: a carrier answering, then silent, then 503, then
// answering again raises exactly the events the hysteresis implies, at
// the probes it implies, and the status tells the last of them.
func TestMonitorStates(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	clock := testclock.New(time.Date(2026, 11, 27, 10, 0, 0, 0, beijing))
	ts := trunk.New(rdb, trunk.Options{Trunks: []config.Trunk{carrier("carrier-a", 30)}, Now: clock.Now, Location: beijing})
	pr := &script{results: []trunk.Result{ok, notHere, silent, broken, silent, silent, busy, busy, ok, ok, ok}}
	m := trunk.NewMonitor(ts, trunk.MonitorOptions{Owner: "n1/1", Node: "n1", Prober: pr, Log: zerolog.Nop()})
	var got []trunk.Transition
	at := map[int]time.Time{}
	for i := 1; i <= 11; i++ {
		clock.Add(30 * time.Second)
		ev, changed, err := m.Probe(t.Context(), "carrier-a")
		if err != nil {
			t.Fatalf("probe %d: %v", i, err)
		}
		if changed {
			got = append(got, ev)
			at[len(got)] = clock.Now()
			if !ev.At.Equal(clock.Now()) || ev.Probe.Node != "n1" || ev.Node != "n1" {
				t.Errorf("probe %d: event %+v at %s", i, ev, clock.Now())
			}
		}
	}
	sameTransitions(t, got,
		transition{trunk.Unknown, trunk.Up, 0, 1},       // probe 1
		transition{trunk.Up, trunk.Down, 3, 0},          // probe 5: the third failure in a row
		transition{trunk.Down, trunk.Maintenance, 0, 0}, // probe 7: the first 503
		transition{trunk.Maintenance, trunk.Up, 0, 2},   // probe 10: the second live probe
	)
	start := time.Date(2026, 11, 27, 10, 0, 0, 0, beijing)
	for i, probe := range []int{1, 5, 7, 10} {
		if want := start.Add(time.Duration(probe) * 30 * time.Second); !at[i+1].Equal(want) {
			t.Errorf("event %d at %s, want probe %d at %s", i+1, at[i+1], probe, want)
		}
	}
	if got[1].Probe.Error == "" || got[1].Probe.RTTMillis != nil || got[2].Probe.Status != 503 {
		t.Errorf("probes of the events: %+v, %+v", got[1].Probe, got[2].Probe)
	}

	evs, next, err := ts.Events(t.Context(), 3, "")
	if err != nil || len(evs) != 3 || next == "" || evs[0].ID != got[3].ID || evs[2].ID != got[1].ID {
		t.Fatalf("events page 1: %+v %q %v", evs, next, err)
	}
	evs, next, err = ts.Events(t.Context(), 3, next)
	if err != nil || len(evs) != 1 || next != "" || evs[0].ID != got[0].ID || evs[0].To != trunk.Up {
		t.Fatalf("events page 2: %+v %q %v", evs, next, err)
	}
	if _, _, err := ts.Events(t.Context(), 3, "nonsense"); !errors.Is(err, trunk.ErrInvalid) {
		t.Errorf("a cursor not made here: %v", err)
	}

	st, err := ts.Status(t.Context())
	if err != nil || len(st) != 1 {
		t.Fatalf("status %+v %v", st, err)
	}
	s := st[0]
	if s.State != trunk.Up || s.Since == nil || !s.Since.Equal(at[4]) || s.Successes != 3 || s.Failures != 0 ||
		s.LastProbe == nil || s.LastProbe.Status != 200 || s.LastProbe.RTTMillis == nil || *s.LastProbe.RTTMillis != 3 ||
		s.Address != "127.0.0.2:5060" || s.Transport != "udp" || s.Registration != trunk.RegistrationOff || s.Channels.Limit != 30 {
		t.Errorf("status %+v (last probe %+v)", s, s.LastProbe)
	}
}

// TestTwoMonitors: two nodes watching one trunk probe it once per round
// (the one holding its lease) and raise each event once; when that node
// stops, the other takes over at once, with the probes in a row the first
// counted.
func TestTwoMonitors(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	pr := &script{results: []trunk.Result{ok, silent, silent, silent, silent, silent, ok}}
	var mu sync.Mutex
	var got []trunk.Transition
	onEvent := func(ev trunk.Transition) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, ev)
	}
	node := func(name string) *trunk.Monitor {
		ts := trunk.New(rdb, trunk.Options{Trunks: []config.Trunk{carrier("carrier-a", 30)}})
		return trunk.NewMonitor(ts, trunk.MonitorOptions{Owner: name + "/1", Node: name, Prober: pr, OnEvent: onEvent, Log: zerolog.Nop()})
	}
	first, second := node("n1"), node("n2")
	for round := 1; round <= 3; round++ {
		for _, m := range []*trunk.Monitor{first, second, second, first} {
			if _, _, err := m.Probe(t.Context(), "carrier-a"); err != nil {
				t.Fatal(err)
			}
		}
		if pr.count() != 2*round {
			t.Fatalf("round %d: %d probes, want %d: only the lease holder probes", round, pr.count(), 2*round)
		}
	}
	// The first node stops: Run gives its lease up.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	first.Run(ctx)
	if _, changed, err := second.Probe(t.Context(), "carrier-a"); err != nil || changed || pr.count() != 7 {
		t.Fatalf("the second node's probe: %v %v, %d probes", changed, err, pr.count())
	}
	// The eighth probe, the second live one in a row, is the second
	// node's: up again.
	if ev, changed, err := second.Probe(t.Context(), "carrier-a"); err != nil || !changed || ev.Node != "n2" {
		t.Fatalf("the second node's next probe: %+v %v %v", ev, changed, err)
	}
	mu.Lock()
	defer mu.Unlock()
	sameTransitions(t, got,
		transition{trunk.Unknown, trunk.Up, 0, 1},
		transition{trunk.Up, trunk.Down, 3, 0},
		transition{trunk.Down, trunk.Up, 0, 2},
	)
	n, err := rdb.XLen(t.Context(), "hotline:{trunks}:events").Result()
	if err != nil || n != 3 {
		t.Errorf("%d events in the stream, %v", n, err)
	}
}

// TestLeaseLostDuringProbe: a node whose lease another took while it
// probed writes nothing: the other node's probes count alone.
func TestLeaseLostDuringProbe(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	ts := trunk.New(rdb, trunk.Options{Trunks: []config.Trunk{carrier("carrier-a", 30)}})
	pr := &script{results: []trunk.Result{ok}}
	pr.during = func() {
		if err := rdb.Set(context.Background(), "hotline:{trunks}:lease:carrier-a", "n2/1", time.Minute).Err(); err != nil {
			t.Error(err)
		}
	}
	m := trunk.NewMonitor(ts, trunk.MonitorOptions{Owner: "n1/1", Node: "n1", Prober: pr, Log: zerolog.Nop()})
	if _, changed, err := m.Probe(t.Context(), "carrier-a"); err != nil || changed {
		t.Fatalf("probe: %v %v", changed, err)
	}
	st, err := ts.Status(t.Context())
	if err != nil || st[0].State != trunk.Unknown || st[0].LastProbe != nil {
		t.Errorf("status %+v %v", st, err)
	}
	if n, _ := rdb.XLen(t.Context(), "hotline:{trunks}:events").Result(); n != 0 {
		t.Errorf("%d events", n)
	}
}

// TestMonitorRunAndWebhook: Run probes every interval, and each event
// reaches the ops webhook signed, marked as a trunk's, once.
func TestMonitorRunAndWebhook(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	const secret = "0123456789abcdef-ops"
	received := make(chan trunk.Transition, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := webhook.VerifySignature(secret, r.Header, body, time.Now(), time.Minute); err != nil {
			t.Errorf("webhook: %v", err)
		}
		var ev trunk.Transition
		if err := json.Unmarshal(body, &ev); err != nil || ev.ID != r.Header.Get(webhook.HeaderEventID) || r.Header.Get("X-Hotline-Event-Type") != "trunk" {
			t.Errorf("webhook request %v %s: %v", r.Header, body, err)
		}
		received <- ev
	}))
	defer srv.Close()
	// The group takes the events that come after it is made.
	if err := rdb.XGroupCreateMkStream(t.Context(), "hotline:{trunks}:events", "webhook", "$").Err(); err != nil {
		t.Fatal(err)
	}
	ts := trunk.New(rdb, trunk.Options{Trunks: []config.Trunk{carrier("carrier-a", 30)}})
	pr := &script{results: []trunk.Result{ok, silent, silent, silent, ok}}
	delivered := make(chan string, 8)
	m := trunk.NewMonitor(ts, trunk.MonitorOptions{Owner: "n1/1", Node: "n1", Prober: pr, Log: zerolog.New(zerolog.NewTestWriter(t)),
		Webhook: webhook.Options{URL: srv.URL, Secret: secret, ClaimAfter: 200 * time.Millisecond, InitialInterval: 10 * time.Millisecond,
			Done: func(_, outcome string) { delivered <- outcome }}})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	defer func() { cancel(); <-done }()
	var got []trunk.Transition
	deadline := time.After(20 * time.Second)
	for len(got) < 3 {
		select {
		case ev := <-received:
			got = append(got, ev)
		case <-deadline:
			t.Fatalf("the webhook got %d events: %+v", len(got), got)
		}
	}
	sameTransitions(t, got,
		transition{trunk.Unknown, trunk.Up, 0, 1},
		transition{trunk.Up, trunk.Down, 3, 0},
		transition{trunk.Down, trunk.Up, 0, 2},
	)
	for range 3 {
		if o := <-delivered; o != webhook.Delivered {
			t.Errorf("outcome %s", o)
		}
	}
	cancel()
	<-done
	p, err := rdb.XPending(context.Background(), "hotline:{trunks}:events", "webhook").Result()
	if err != nil || p.Count != 0 {
		t.Errorf("events not acknowledged: %+v %v", p, err)
	}
	// Run gave the lease up as it returned.
	if err := rdb.Get(context.Background(), "hotline:{trunks}:lease:carrier-a").Err(); !errors.Is(err, redis.Nil) {
		t.Errorf("lease left: %v", err)
	}
}

// TestNotProbed: a probe this side could not send says nothing of the
// trunk: nothing is recorded.
func TestNotProbed(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	ts := trunk.New(rdb, trunk.Options{Trunks: []config.Trunk{carrier("carrier-a", 30)}})
	pr := &script{results: []trunk.Result{{Err: fmt.Errorf("%w: SIP is starting", trunk.ErrNotProbed)}, ok}}
	m := trunk.NewMonitor(ts, trunk.MonitorOptions{Owner: "n1/1", Node: "n1", Prober: pr, Log: zerolog.Nop()})
	if _, changed, err := m.Probe(t.Context(), "carrier-a"); err != nil || changed {
		t.Fatalf("not probed: %v %v", changed, err)
	}
	st, err := ts.Status(t.Context())
	if err != nil || st[0].State != trunk.Unknown || st[0].LastProbe != nil {
		t.Fatalf("status %+v %v", st, err)
	}
	if ev, changed, err := m.Probe(t.Context(), "carrier-a"); err != nil || !changed || ev.To != trunk.Up {
		t.Fatalf("then probed: %+v %v %v", ev, changed, err)
	}
}
