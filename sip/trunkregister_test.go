package sip

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/internal/redistest"
	"github.com/hotline12345/hotline/internal/sipptest"
	trunks "github.com/hotline12345/hotline/trunk"
)

// attempt is one registration as the test saw it.
type attempt struct {
	at, done time.Time
	expiry   time.Duration
	res      trunks.RegisterResult
}

// recordingRegisterer registers through the server and keeps every
// attempt.
type recordingRegisterer struct {
	trunks.Registerer
	mu       sync.Mutex
	attempts []attempt
}

func (r *recordingRegisterer) Register(ctx context.Context, t config.Trunk, expiry time.Duration) trunks.RegisterResult {
	at := time.Now()
	res := r.Registerer.Register(ctx, t, expiry)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts = append(r.attempts, attempt{at: at, done: time.Now(), expiry: expiry, res: res})
	return res
}

// TestTrunkRegistrationSippRegistrar registers a trunk with a carrier's
// registrar played by sipp (testdata/registrar.xml), which challenges
// every registration with digest and checks the answer: the registration
// is granted for 2 s and renewed before those run out; a 503 makes it
// fail, the retry after the backoff registers it again, and the stop
// removes it. The state changes are the registration events, in order.
func TestTrunkRegistrationSippRegistrar(t *testing.T) {
	// Not parallel: it times the refresh to within a tenth of a second.
	xml, err := os.ReadFile("testdata/registrar.xml")
	if err != nil {
		t.Fatal(err)
	}
	carrier := sipptest.Serve(t, string(xml), 1)
	tr := config.Trunk{Name: "carrier-a", Host: "127.0.0.1", Port: int(carrier.Addr.Port()), Transport: "udp", Channels: 30,
		Username: "hotline-a", Password: "s3cret", Register: true, RegisterExpiry: config.Duration(time.Hour)}
	srv := startServer(t, nil)
	rdb := redistest.Start(t).Client(t)
	ts := trunks.New(rdb, trunks.Options{Trunks: []config.Trunk{tr}})
	reg := &recordingRegisterer{Registerer: srv.TrunkRegisterer()}
	events := make(chan trunks.Transition, 16)
	r := trunks.NewRegistrar(ts, trunks.RegistrarOptions{Owner: "n1/1", Node: "n1", Registerer: reg,
		MinRefresh: 100 * time.Millisecond, RetryMin: 200 * time.Millisecond, RetryMax: time.Second,
		OnEvent: func(ev trunks.Transition) { events <- ev },
		Log:     zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()

	next := func(from, to trunks.Registration) trunks.Transition {
		t.Helper()
		select {
		case ev := <-events:
			if ev.Kind != trunks.KindRegistration || ev.Registration == nil || ev.Registration.From != from || ev.Registration.To != to {
				t.Fatalf("event %+v (%+v), want registration %s → %s\n%s", ev, ev.Registration, from, to, carrier.Output())
			}
			return ev
		case <-time.After(20 * time.Second):
			t.Fatalf("no event %s → %s\n%s", from, to, carrier.Output())
		}
		panic("unreachable")
	}
	first := next(trunks.NotRegistering, trunks.Registered)
	if u := first.Registration.Until; u == nil || u.Sub(first.At) > 3*time.Second || first.Registration.Status != 200 {
		t.Errorf("registered %+v: want 200, 2 s granted", first.Registration)
	}
	failed := next(trunks.Registered, trunks.RegistrationFailing)
	if failed.Registration.Status != 503 || failed.Registration.Attempts != 1 || failed.Registration.Reason == "" {
		t.Errorf("failing %+v: want the 503, one attempt", failed.Registration)
	}
	back := next(trunks.RegistrationFailing, trunks.Registered)
	if u := back.Registration.Until; u == nil || u.Sub(back.At) < 50*time.Second {
		t.Errorf("registered again %+v: want 60 s granted", back.Registration)
	}
	st, err := ts.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st[0].Registration != trunks.Registered || st[0].Register == nil || st[0].Register.Until == nil || st[0].Register.Node != "n1" {
		t.Errorf("status: %s %+v", st[0].Registration, st[0].Register)
	}

	cancel()
	<-done
	next(trunks.Registered, trunks.NotRegistering)
	if res := carrier.Wait(t, 10*time.Second); res.Successful != 1 {
		t.Fatalf("the registrar's scenario did not complete:\n%s", res.Output)
	}

	// The granted registrations, each renewed before it ran out: at
	// about half of it, and never after.
	reg.mu.Lock()
	defer reg.mu.Unlock()
	var okAt []attempt
	for _, a := range reg.attempts {
		if a.res.OK() && a.expiry > 0 {
			okAt = append(okAt, a)
		}
	}
	if len(okAt) != 3 {
		t.Fatalf("%d registrations granted, want 3: %+v", len(okAt), reg.attempts)
	}
	for i, a := range okAt[:2] {
		if a.res.Expires != 2*time.Second || a.expiry != time.Hour {
			t.Errorf("registration %d: asked %s, granted %s; want 1h asked, 2s granted", i+1, a.expiry, a.res.Expires)
		}
	}
	refresh := reg.attempts[2] // after the first's two REGISTERs and the second's
	for i, a := range reg.attempts {
		if a.at.After(okAt[0].done) {
			refresh = reg.attempts[i]
			break
		}
	}
	if gap := refresh.at.Sub(okAt[0].done); gap < 900*time.Millisecond || gap > 1500*time.Millisecond {
		t.Errorf("the refresh went %s after the registration granted for 2 s: want about 1 s, half of it", gap)
	}
	if !okAt[1].done.Before(okAt[0].done.Add(2 * time.Second)) {
		t.Errorf("the registration granted at %s for 2 s was renewed at %s: too late", okAt[0].done.Format("15:04:05.000"), okAt[1].done.Format("15:04:05.000"))
	}
	if last := reg.attempts[len(reg.attempts)-1]; last.expiry != 0 || !last.res.OK() {
		t.Errorf("the last REGISTER: %+v; want the removal, granted", last)
	}
}
