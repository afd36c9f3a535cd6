// Package hotlinetest starts a whole hotline in-process for tests: a real
// redis-server, the embedded SIP backend on free loopback ports, and the
// HTTP API.
package hotlinetest

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/app"
	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/caller"
	"github.com/hotline12345/hotline/calllog"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/internal/redistest"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/ivr/ivrtest"
	"github.com/hotline12345/hotline/prompts"
	"github.com/hotline12345/hotline/web/client"
)

// Hotline is a running hotline.
type Hotline struct {
	SIP netip.AddrPort
	// SIPTLS is where SIP over TLS is received, when sip.tls_listen is
	// set.
	SIPTLS netip.AddrPort
	HTTP   net.Addr
	// Redis is the redis-server Start started; nil after StartOn.
	Redis *redistest.Server
	// Client is a client of the hotline's Redis.
	Client  redis.UniversalClient
	Records *ivrtest.RecordWatch
	Calls   *calllog.Store
	Appeals *appeal.Store
	Config  config.Config

	cancel context.CancelCauseFunc
	done   chan error
}

// Start runs hotline until the test ends. tune adjusts the configuration
// (it starts from the defaults, on free loopback ports, with a 1 s first
// digit timeout and a state directory of the test's).
func Start(t testing.TB, tune func(*config.Config)) *Hotline {
	t.Helper()
	return StartWith(t, Options{Tune: tune})
}

// Options are what StartWith changes of a hotline.
type Options struct {
	// Tune adjusts the configuration.
	Tune func(*config.Config)
	// Appeals wraps the appeal recorder of intake.
	Appeals func(ivr.AppealRecorder) ivr.AppealRecorder
	// Now is the clock of the appeals, their deadlines and the return
	// visits (app.Options.Now); nil is time.Now.
	Now func() time.Time
}

// StartWith is Start with more to change.
func StartWith(t testing.TB, o Options) *Hotline {
	t.Helper()
	srv := redistest.Start(t)
	h := start(t, srv.URL(), srv.Client(t), o)
	h.Redis = srv
	return h
}

// StartOn is Start on the Redis that redisURL names (a Sentinel set, a
// cluster), which rdb is a client of.
func StartOn(t testing.TB, redisURL string, rdb redis.UniversalClient, tune func(*config.Config)) *Hotline {
	t.Helper()
	return start(t, redisURL, rdb, Options{Tune: tune})
}

func start(t testing.TB, redisURL string, rdb redis.UniversalClient, o Options) *Hotline {
	t.Helper()
	tune := o.Tune
	h := &Hotline{done: make(chan error, 1)}
	cfg := config.Default()
	cfg.SIP.Listen = "127.0.0.1:0"
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Storage.Dir = t.TempDir()
	cfg.Redis.URL = redisURL
	cfg.IVR.FirstDigitTimeout = config.Duration(time.Second)
	cfg.Log.Format = "json"
	if tune != nil {
		tune(&cfg)
	}
	h.Config = cfg
	h.Client = rdb
	h.Calls = calllog.NewStore(h.Client, calllog.StoreOptions{})
	h.Appeals = appeal.NewStore(h.Client, appeal.StoreOptions{Location: cfg.Location(), Now: o.Now})

	ctx, cancel := context.WithCancelCause(context.Background())
	h.cancel = cancel
	ready := make(chan app.Addrs, 1)
	go func() {
		h.done <- app.Run(ctx, app.Options{
			Config: cfg,
			Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel),
			Ready:  func(a app.Addrs) { ready <- a },
			Records: func(inner ivr.CallRecorder) ivr.CallRecorder {
				h.Records = &ivrtest.RecordWatch{Inner: inner}
				return h.Records
			},
			Appeals: o.Appeals,
			Now:     o.Now,
		})
	}()
	select {
	case a := <-ready:
		h.SIP, h.SIPTLS, h.HTTP = a.SIP, a.SIPTLS, a.HTTP
	case err := <-h.done:
		cancel(nil)
		t.Fatalf("hotline did not start: %v", err)
	}
	t.Cleanup(func() { h.Stop(t, app.ErrInterrupt) })
	return h
}

// Stop stops hotline with a cause (app.ErrDrain drains calls first) and
// waits for it to return. Stopping twice is harmless.
func (h *Hotline) Stop(t testing.TB, cause error) {
	t.Helper()
	h.cancel(cause)
	select {
	case err, ok := <-h.done:
		if ok {
			close(h.done)
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("hotline stopped: %v", err)
			}
		}
	case <-time.After(2 * time.Minute):
		t.Errorf("hotline did not stop")
	}
}

// API is the hotline's HTTP address, "http://127.0.0.1:port".
func (h *Hotline) API() string { return "http://" + h.HTTP.String() }

// Token makes a token for the API with roles, acting for no account.
func (h *Hotline) Token(t testing.TB, roles ...auth.Role) string {
	t.Helper()
	secret, _, err := auth.NewStore(h.Client, auth.StoreOptions{}).CreateToken(t.Context(),
		auth.TokenSpec{Roles: roles, TTL: time.Hour, By: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

// APIClient is a client of the API with a token of roles.
func (h *Hotline) APIClient(t testing.TB, roles ...auth.Role) *client.Client {
	t.Helper()
	c, err := client.New(h.API(), h.Token(t, roles...))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// AgentClient is a client of the API for a new account of user with
// roles, acting as the agent agentID (a return-visit agent with
// auth.Visitor).
func (h *Hotline) AgentClient(t testing.TB, user, agentID string, roles ...auth.Role) *client.Client {
	t.Helper()
	accounts := auth.NewStore(h.Client, auth.StoreOptions{})
	if _, err := accounts.AddUser(t.Context(), auth.UserSpec{Name: user, Roles: roles, AgentID: agentID, By: "test"}); err != nil {
		t.Fatal(err)
	}
	secret, _, err := accounts.CreateToken(t.Context(), auth.TokenSpec{User: user, Roles: roles, TTL: time.Hour, By: "test"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(h.API(), secret)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// FedBack makes an appeal of caller in cat, with consent to a return
// visit, taken on the appeals' clock, dispatched to the organizer lead
// (which must exist), signed and fed back as solved.
func (h *Hotline) FedBack(t testing.TB, call, caller string, cat appeal.Category, lead string) appeal.Appeal {
	t.Helper()
	ctx := t.Context()
	a, err := h.Appeals.Create(ctx, appeal.New{CallID: call, Caller: caller, Category: cat, Consent: appeal.Consent{Given: true}})
	if err != nil {
		t.Fatal(err)
	}
	for _, act := range []appeal.Action{
		{Step: appeal.Dispatch, By: "dispatcher", Assignment: appeal.Assignment{Lead: lead}},
		{Step: appeal.Sign, By: "desk", Organizer: lead},
		{Step: appeal.FeedBack, By: "desk", Organizer: lead, Feedback: appeal.Feedback{Result: appeal.Solved}},
	} {
		if a, _, err = h.Appeals.Step(ctx, a.ID, act); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

// URI is the SIP URI of the hotline's number.
func (h *Hotline) URI() string { return "sip:12345@" + h.SIP.String() }

// Call places a citizen's call from who to hotline with the test caller,
// playing script, and returns the transcript once the call is over;
// cancelling ctx hangs it up.
func (h *Hotline) Call(ctx context.Context, t testing.TB, who string, script caller.Script) <-chan caller.Transcript {
	t.Helper()
	catalog, err := prompts.Default()
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan caller.Transcript, 1)
	go func() {
		tr, err := caller.Call(ctx, caller.Options{
			Target: h.URI(), From: who, Script: script, Catalog: catalog,
			Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
		})
		if err != nil && !errors.Is(err, caller.ErrCallEnded) && !errors.Is(err, context.Canceled) {
			t.Errorf("call: %v", err)
		}
		out <- tr
	}()
	return out
}

// AgentState polls store until the agent id is in state want, and
// returns it; it fails t after 20 s.
func AgentState(t testing.TB, store *acd.Store, id string, want acd.State) acd.Agent {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		a, err := store.Agent(t.Context(), id)
		if err == nil && a.State == want {
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent %s is %s (%v), want %s", id, a.State, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
