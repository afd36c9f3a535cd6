package asterisk_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/asterisk"
	"github.com/hotline12345/hotline/asterisk/aritest"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/prompts"
	"github.com/hotline12345/hotline/trunk"
)

// runBackend runs the backend alone against the double, handing each
// call to handler, until the test ends; it returns once connected.
func runBackend(t *testing.T, srv *aritest.Server, handler asterisk.Handler) *asterisk.Backend {
	t.Helper()
	return runBackendAt(t, srv.URL(), "hotline", "hotline", handler)
}

// runBackendAt runs the backend alone against the ARI at url, handing each
// call to handler, until the test ends; it returns once connected.
func runBackendAt(t *testing.T, url, user, password string, handler asterisk.Handler) *asterisk.Backend {
	t.Helper()
	catalog, err := prompts.Default()
	if err != nil {
		t.Fatal(err)
	}
	b, err := asterisk.New(asterisk.Options{
		URL: url, Username: user, Password: password, Catalog: catalog,
		Logger: zerolog.New(zerolog.NewTestWriter(t)), Handler: handler,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	deadline := time.Now().Add(30 * time.Second)
	for b.Healthy() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("not connected: %v", b.Healthy())
		}
		time.Sleep(5 * time.Millisecond)
	}
	return b
}

// A draining backend refuses new calls with congestion, so that the
// trunk tries another node, and waits for the calls in progress.
func TestDrainRefusesNewCalls(t *testing.T) {
	t.Parallel()
	srv := newDouble(t)
	release := make(chan struct{})
	handled := make(chan string, 2)
	b := runBackend(t, srv, func(ctx context.Context, call ivr.Call) {
		handled <- call.Caller()
		if err := call.Answer(ctx); err != nil {
			t.Errorf("answer: %v", err)
		}
		<-release
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	first, err := srv.Inbound(ctx, "hotline", "13800000302", "12345")
	if err != nil {
		t.Fatal(err)
	}
	if got := <-handled; got != "13800000302" {
		t.Fatalf("handled %s", got)
	}
	expired, stop := context.WithCancel(context.Background())
	stop()
	if err := b.Drain(expired); err == nil {
		t.Fatalf("Drain returned at once with a call in progress")
	}
	second, err := srv.Inbound(ctx, "hotline", "13800000303", "12345")
	if err != nil {
		t.Fatal(err)
	}
	if n := awaitNote(t, second, aritest.NoteHungUp); n.Cause != 34 {
		t.Errorf("new call while draining hung up with cause %d, want 34 (congestion)", n.Cause)
	}
	select {
	case who := <-handled:
		t.Errorf("call from %s handled while draining", who)
	default:
	}
	drained := make(chan error, 1)
	go func() { drained <- b.Drain(context.Background()) }()
	close(release)
	if err := <-drained; err != nil {
		t.Errorf("Drain: %v", err)
	}
	<-first.Done()
	noLeftovers(t, srv)
}

// Requests about a channel that is already gone get 404 from Asterisk:
// the events saying so are held back (a slow socket), and the flow's
// answer meets the 404. It learns the caller hung up; hanging up is a
// no-op; nothing is left in Asterisk.
func TestRequestsAfterTheCallerLeft(t *testing.T) {
	t.Parallel()
	srv := newDouble(t)
	calls := make(chan ivr.Call, 1)
	proceed := make(chan struct{})
	results := make(chan error, 3)
	runBackend(t, srv, func(ctx context.Context, call ivr.Call) {
		calls <- call
		<-proceed
		results <- call.Answer(ctx)
		_, err := call.Play(ctx, prompts.Mandarin, prompts.Greeting)
		results <- err
		results <- call.Hangup(ctx)
	})
	ictx, icancel := context.WithTimeout(context.Background(), 10*time.Second)
	p, err := srv.Inbound(ictx, "hotline", "13800000301", "12345")
	icancel()
	if err != nil {
		t.Fatal(err)
	}
	call := <-calls
	resume := srv.Freeze("hotline")
	p.Hangup()
	<-p.Done()
	close(proceed)
	if err := <-results; !errors.Is(err, ivr.ErrCallerHangup) {
		t.Errorf("Answer on a gone channel: %v, want %v", err, ivr.ErrCallerHangup)
	}
	if err := <-results; !errors.Is(err, ivr.ErrCallerHangup) {
		t.Errorf("Play on a gone channel: %v, want %v", err, ivr.ErrCallerHangup)
	}
	if err := <-results; err != nil {
		t.Errorf("Hangup of a gone channel: %v", err)
	}
	resume()
	if !errors.Is(call.Err(), ivr.ErrCallerHangup) {
		t.Errorf("call ended with %v", call.Err())
	}
	noLeftovers(t, srv)
}

// Asterisk restarts (a crash: no event says so) while an agent's phone
// rings for a caller. On reconnecting hotline sees Asterisk's new start
// time: the offer ends at once rather than when a ring that no longer
// exists would have timed out, and no channel of the old Asterisk stays
// tracked.
func TestRestartEndsAnOfferInFlight(t *testing.T) {
	t.Parallel()
	srv := newDouble(t)
	srv.SetEndpoint("PJSIP/1001", aritest.Phone{NoAnswer: true})
	var backend atomic.Pointer[asterisk.Backend]
	dialled := make(chan error, 1)
	b := runBackend(t, srv, func(ctx context.Context, call ivr.Call) {
		if err := call.Answer(ctx); err != nil {
			t.Errorf("answer: %v", err)
		}
		_, err := backend.Load().Dial(ctx, ivr.Agent{AgentID: "a1", SIPUser: "1001"}, ivr.DialOptions{Parent: call, RingTimeout: time.Minute})
		dialled <- err
	})
	backend.Store(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := srv.Inbound(ctx, "hotline", "13800000304", "12345"); err != nil {
		t.Fatal(err)
	}
	for len(srv.Channels()) < 2 {
		if ctx.Err() != nil {
			t.Fatalf("the agent's phone was never rung: channels %v", srv.Channels())
		}
		time.Sleep(5 * time.Millisecond)
	}
	srv.Restart()
	select {
	case err := <-dialled:
		if err == nil {
			t.Errorf("Dial across the restart answered")
		}
	case <-ctx.Done():
		t.Fatalf("the offer still waits after the restart")
	}
	for b.Channels() != 0 {
		if ctx.Err() != nil {
			t.Fatalf("hotline still tracks %d channels of the Asterisk that restarted", b.Channels())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The hang-up that ends a call goes unanswered (Asterisk's HTTP server
// away): hotline asks again until Asterisk answers, rather than leave the
// caller on a channel nobody handles.
func TestHangupRetriedUntilAsteriskAnswers(t *testing.T) {
	t.Parallel()
	srv := newDouble(t)
	release := make(chan struct{})
	runBackend(t, srv, func(ctx context.Context, call ivr.Call) {
		if err := call.Answer(ctx); err != nil {
			t.Errorf("answer: %v", err)
		}
		<-release
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := srv.Inbound(ctx, "hotline", "13800000305", "12345")
	if err != nil {
		t.Fatal(err)
	}
	awaitNote(t, p, aritest.NoteAnswered)
	dropped, resume := srv.DropRequests()
	defer resume()
	close(release)
	awaitDropped(t, dropped, "DELETE /ari/channels/"+p.ID())
	awaitDropped(t, dropped, "DELETE /ari/channels/"+p.ID())
	resume()
	if n := awaitNote(t, p, aritest.NoteHungUp); n.Cause != 16 {
		t.Errorf("hung up with cause %d, want 16", n.Cause)
	}
	noLeftovers(t, srv)
}

// A call of its own (no parent) to a number through a trunk is an
// originate to PJSIP/<number>@<the trunk's endpoint> presenting the
// trunk's caller id; the carrier's answer, busy and no answer are told
// apart, and an endpoint Asterisk does not have is unreachable.
func TestDialNumberThroughATrunk(t *testing.T) {
	t.Parallel()
	srv := newDouble(t)
	srv.SetEndpoint("PJSIP/carrier-a", aritest.Phone{AnswerAfter: 50 * time.Millisecond})
	srv.SetEndpoint("PJSIP/carrier-busy", aritest.Phone{AnswerAfter: 50 * time.Millisecond, Busy: true})
	srv.SetEndpoint("PJSIP/carrier-mute", aritest.Phone{NoAnswer: true})
	b := runBackend(t, srv, func(context.Context, ivr.Call) {})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	route := func(endpoint string) ivr.TrunkRoute {
		return ivr.TrunkRoute{Name: endpoint, Endpoint: endpoint, CallerID: "12345"}
	}

	leg, err := b.Dial(ctx, ivr.Number{Number: "13900000041", Trunk: route("carrier-a")}, ivr.DialOptions{RingTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if leg.Caller() != "13900000041" {
		t.Errorf("the leg's caller %q, want the number", leg.Caller())
	}
	var p *aritest.Party
	select {
	case p = <-srv.Originated():
	case <-ctx.Done():
		t.Fatal("no originated channel")
	}
	if name := srv.ChannelName(p.ID()); !strings.HasPrefix(name, "PJSIP/carrier-a-") {
		t.Errorf("channel %q, want one of the trunk's endpoint", name)
	}
	if err := leg.Hangup(ctx); err != nil {
		t.Fatal(err)
	}

	for endpoint, want := range map[string]error{"carrier-busy": ivr.ErrBusy, "carrier-mute": ivr.ErrRangOut, "no-such-trunk": ivr.ErrUnreachable} {
		_, err := b.Dial(ctx, ivr.Number{Number: "13900000042", Trunk: route(endpoint)}, ivr.DialOptions{RingTimeout: time.Second})
		if !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", endpoint, err, want)
		}
	}
	noLeftovers(t, srv)
}

// The trunks' health on Asterisk comes from its endpoints' state (its own
// qualify): online is a live probe, offline a failed one, and an endpoint
// Asterisk does not have fails too.
func TestProbeReadsTheEndpointState(t *testing.T) {
	t.Parallel()
	srv := newDouble(t)
	srv.SetEndpoint("PJSIP/carrier-up", aritest.Phone{})
	srv.SetEndpoint("PJSIP/carrier-gone", aritest.Phone{Offline: true})
	b := runBackend(t, srv, func(context.Context, ivr.Call) {})
	ctx := t.Context()
	probe := func(endpoint string) trunk.Result {
		return b.Probe(ctx, config.Trunk{Name: endpoint, Endpoint: endpoint})
	}
	if r := probe("carrier-up"); r.Status != 200 || r.Err != nil || r.Verdict() != trunk.Alive {
		t.Errorf("online: %+v", r)
	}
	if r := probe("carrier-gone"); r.Err == nil || r.Verdict() != trunk.Failed {
		t.Errorf("offline: %+v", r)
	}
	if r := probe("no-such-trunk"); r.Err == nil || errors.Is(r.Err, trunk.ErrNotProbed) {
		t.Errorf("unknown endpoint: %+v", r)
	}
}
