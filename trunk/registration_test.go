package trunk_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/internal/redistest"
	"github.com/hotline12345/hotline/trunk"
)

// TestRegistrationSchedule: a registration is renewed at half of what was
// granted, never sooner than the floor; failures in a row wait twice as
// long each time up to the cap, or as long as the registrar's
// Retry-After asks within the cap; a success starts the waits over.
func TestRegistrationSchedule(t *testing.T) {
	for _, c := range []struct{ granted, floor, want time.Duration }{
		{time.Hour, 5 * time.Second, 30 * time.Minute},
		{2 * time.Minute, 5 * time.Second, time.Minute},
		{4 * time.Second, 5 * time.Second, 5 * time.Second},
		{0, 5 * time.Second, 5 * time.Second},
	} {
		if got := trunk.RefreshIn(c.granted, c.floor); got != c.want {
			t.Errorf("granted %s, floor %s: renewed in %s, want %s", c.granted, c.floor, got, c.want)
		}
	}
	b := trunk.NewRetry(time.Second, 5*time.Minute, 0)
	var got []time.Duration
	for range 11 {
		got = append(got, trunk.RetryIn(b, 0, 5*time.Minute))
	}
	want := []time.Duration{1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300}
	for i, w := range want {
		if got[i] != w*time.Second {
			t.Errorf("failure %d: wait %s, want %s (all: %v)", i+1, got[i], w*time.Second, got)
		}
	}
	b.Reset()
	if w := trunk.RetryIn(b, 2*time.Minute, 5*time.Minute); w != 2*time.Minute {
		t.Errorf("Retry-After 2m: wait %s", w)
	}
	if w := trunk.RetryIn(b, time.Hour, 5*time.Minute); w != 5*time.Minute {
		t.Errorf("Retry-After 1h: wait %s, want the cap", w)
	}
	b.Reset()
	if w := trunk.RetryIn(b, 0, 5*time.Minute); w != time.Second {
		t.Errorf("after a success: wait %s, want 1s", w)
	}
	j := trunk.NewRetry(10*time.Second, time.Minute, 0.2)
	if w := trunk.RetryIn(j, 0, time.Minute); w < 8*time.Second || w > 12*time.Second {
		t.Errorf("jitter 0.2 of 10s: %s", w)
	}
}

// registrarFunc is a carrier's registrar as the tests script it.
type registrarFunc func(ctx context.Context, t config.Trunk, expiry time.Duration) trunk.RegisterResult

func (f registrarFunc) Register(ctx context.Context, t config.Trunk, expiry time.Duration) trunk.RegisterResult {
	return f(ctx, t, expiry)
}

// TestTwoRegistrars: of two nodes one registers the trunk; when it stops
// it removes its registration and the other registers its own; the
// trunk's registration shows it and the metric counts it.
func TestTwoRegistrars(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	tr := carrier("carrier-a", 30)
	tr.Register, tr.Username, tr.Password, tr.RegisterExpiry = true, "u", "p", config.Duration(time.Hour)
	var mu sync.Mutex
	sent := map[string][]time.Duration{} // by node, the expiries asked
	events := make(chan trunk.Transition, 16)
	var regs []*trunk.Registrar
	var stops []func()
	for _, node := range []string{"n1", "n2"} {
		ts := trunk.New(rdb, trunk.Options{Trunks: []config.Trunk{tr}})
		r := trunk.NewRegistrar(ts, trunk.RegistrarOptions{Owner: node + "/1", Node: node, Lease: 300 * time.Millisecond,
			Registerer: registrarFunc(func(_ context.Context, _ config.Trunk, expiry time.Duration) trunk.RegisterResult {
				mu.Lock()
				defer mu.Unlock()
				sent[node] = append(sent[node], expiry)
				return trunk.RegisterResult{Status: 200, Expires: time.Minute}
			}),
			OnEvent: func(ev trunk.Transition) { events <- ev }, Log: zerolog.Nop()})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			r.Run(ctx)
		}()
		regs = append(regs, r)
		stops = append(stops, func() { cancel(); <-done })
		t.Cleanup(stops[len(stops)-1])
	}
	next := func() trunk.Transition {
		t.Helper()
		select {
		case ev := <-events:
			return ev
		case <-time.After(10 * time.Second):
			t.Fatal("no event")
		}
		panic("unreachable")
	}
	first := next()
	if first.Kind != trunk.KindRegistration || first.Registration.To != trunk.Registered {
		t.Fatalf("first event %+v", first)
	}
	holder, other := 0, 1
	if first.Node == "n2" {
		holder, other = 1, 0
	}
	stops[holder]()
	if ev := next(); ev.Node != first.Node || ev.Registration.From != trunk.Registered || ev.Registration.To != trunk.NotRegistering {
		t.Errorf("the holder's stop: %+v %+v", ev, ev.Registration)
	}
	if ev := next(); ev.Node == first.Node || ev.Registration.To != trunk.Registered {
		t.Errorf("the other's registration: %+v %+v", ev, ev.Registration)
	}
	mu.Lock()
	byHolder, byOther := sent[first.Node], sent[[]string{"n1", "n2"}[other]]
	mu.Unlock()
	if len(byHolder) != 2 || byHolder[0] != time.Hour || byHolder[1] != 0 || len(byOther) != 1 || byOther[0] != time.Hour {
		t.Errorf("REGISTERs: the first holder %v, the other %v", byHolder, byOther)
	}
	st, err := trunk.New(rdb, trunk.Options{Trunks: []config.Trunk{tr}}).Status(t.Context())
	if err != nil || st[0].Registration != trunk.Registered || st[0].Register.Node == first.Node {
		t.Errorf("status %+v %v", st, err)
	}
	if n := testutil.ToFloat64(regs[other]); n != 1 {
		t.Errorf("hotline_trunk_registered %v on the node that registers", n)
	}
}
