package asterisk_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/asterisk/aritest"
	"github.com/hotline12345/hotline/caller"
	"github.com/hotline12345/hotline/calllog"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/internal/agentua"
	"github.com/hotline12345/hotline/internal/asterisktest"
	"github.com/hotline12345/hotline/internal/baresiptest"
	"github.com/hotline12345/hotline/internal/hotlinetest"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/ivr/ivrtest"
	"github.com/hotline12345/hotline/prompts"
)

// onAsterisk starts a private Asterisk with hotline's configuration and
// hotline connected to it over ARI.
func onAsterisk(t *testing.T, opts asterisktest.Options, tune func(*config.Config)) (*asterisktest.Asterisk, *hotlinetest.Hotline) {
	t.Helper()
	a := asterisktest.Start(t, opts)
	return a, startOn(t, a, tune)
}

// startOn starts hotline connected to a over ARI.
func startOn(t *testing.T, a *asterisktest.Asterisk, tune func(*config.Config)) *hotlinetest.Hotline {
	t.Helper()
	h := hotlinetest.Start(t, func(c *config.Config) {
		c.Backend = "asterisk"
		c.ARI.URL = a.ARI
		c.ARI.Username = asterisktest.Username
		c.ARI.Password = asterisktest.Password
		c.ARI.ReconnectMin = config.Duration(20 * time.Millisecond)
		c.ARI.ReconnectMax = config.Duration(200 * time.Millisecond)
		if tune != nil {
			tune(c)
		}
	})
	awaitHealth(t, h, http.StatusOK)
	return h
}

// asteriskHarness is the conformance suite's view of hotline on a real
// Asterisk: each citizen's call enters the trunk's dialplan as a Local
// channel held by the test (asterisktest.Callers), which hears what
// Asterisk plays to it, presses keys and hangs up as on the double.
func asteriskHarness(t *testing.T, a *asterisktest.Asterisk, h *hotlinetest.Hotline) ivrtest.Harness {
	callers := a.Callers(t)
	return ivrtest.Harness{
		Dial: func(t *testing.T, callerID string, _ ivr.DTMFMethod, script caller.Script) caller.Transcript {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			p, err := callers.Dial(ctx, callerID, "12345")
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			return play(t, p, callerID, script)
		},
		Records: h.Records,
		Calls:   h.Calls,
		Appeals: h.Appeals,
		Methods: []ivr.DTMFMethod{ivr.DTMFRFC4733},
	}
}

// TestConformanceOnAsterisk runs the conformance suite on the ARI backend
// connected to a real Asterisk 22 with hotline's configuration, in real
// time.
func TestConformanceOnAsterisk(t *testing.T) {
	t.Parallel()
	a, h := onAsterisk(t, asterisktest.Options{}, nil)
	ivrtest.Run(t, asteriskHarness(t, a, h))
}

// TestServiceConformanceOnAsterisk runs the service scenarios on a real
// Asterisk: four agents' phones (in-process UAs) register with Asterisk's
// PJSIP as agents' endpoints, answer every offer and hang up after a second
// of talk.
func TestServiceConformanceOnAsterisk(t *testing.T) {
	t.Parallel()
	ids := []string{"a1", "a2", "a3", "a4"}
	var accounts []asterisktest.Agent
	var phones []agentua.Agent
	for _, id := range ids {
		user, pass := "30"+id[1:]+"0", "password-"+id
		accounts = append(accounts, asterisktest.Agent{User: user, Password: pass})
		phones = append(phones, agentua.Agent{User: user, Password: pass})
	}
	a := asterisktest.Start(t, asterisktest.Options{Agents: accounts})
	fleet, err := agentua.Start(context.Background(), agentua.Options{
		Registrar: a.SIP, Agents: phones, TalkTime: time.Second,
		Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := fleet.Stop(ctx); err != nil {
			t.Errorf("agents' phones: %v", err)
		}
	})
	for _, ac := range accounts {
		a.AwaitEndpoint(t, ac.User, "online")
	}
	h := startOn(t, a, func(c *config.Config) {
		for i, ac := range accounts {
			c.Agents = append(c.Agents, config.Agent{ID: ids[i], SIPUser: ac.User, Password: ac.Password, Categories: allCategories})
		}
		c.ACD.WrapUp = 0
	})
	ivrtest.RunService(t, asteriskHarness(t, a, h))
}

// carrierIP is the loopback address citizens call from over SIP: the
// private Asterisk's test trunk is identified by it, as a carrier's trunk
// by its address.
const carrierIP = "127.0.0.2"

// sipCall places a citizen's call over SIP through the trunk with the test
// caller, which hears the prompts in the audio Asterisk sends and presses
// keys as RFC 4733 events; cancelling ctx hangs up. The transcript comes
// once the call is over.
func sipCall(ctx context.Context, t testing.TB, a *asterisktest.Asterisk, who string, script caller.Script) <-chan caller.Transcript {
	t.Helper()
	catalog, err := prompts.Default()
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan caller.Transcript, 1)
	go func() {
		tr, err := caller.Call(ctx, caller.Options{
			Target: "sip:12345@" + a.SIP.String(), LocalIP: carrierIP, From: who,
			Script: script, Catalog: catalog,
			Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
		})
		if err != nil && !errors.Is(err, caller.ErrCallEnded) && !errors.Is(err, context.Canceled) {
			t.Errorf("call: %v", err)
		}
		out <- tr
	}()
	return out
}

// noLeftoversIn waits until Asterisk has no channel and no bridge left.
func noLeftoversIn(t testing.TB, a *asterisktest.Asterisk) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var channels, bridges []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		}
		a.Get(t, "/channels", &channels)
		a.Get(t, "/bridges", &bridges)
		if len(channels)+len(bridges) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("left in Asterisk: channels %+v, bridges %+v", channels, bridges)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A citizen calls over SIP through the trunk; the offer goes on from a
// phone that rings out (baresip not answering) and one whose agent
// declines (486) to one that answers; the caller hangs up while talking:
// the agent's phone is hung up, there is no rating, and nothing is left
// in Asterisk.
func TestAgentsOnAsterisk(t *testing.T) {
	t.Parallel()
	ids := []string{"a1", "a2", "a3"}
	var accounts []asterisktest.Agent
	for i, id := range ids {
		accounts = append(accounts, asterisktest.Agent{User: "400" + string(rune('1'+i)), Password: "password-" + id})
	}
	a := asterisktest.Start(t, asterisktest.Options{Trunk: carrierIP, Agents: accounts})
	phones := map[string]*baresiptest.Phone{}
	for i, id := range ids {
		mode := "manual"
		if id == "a3" {
			mode = "auto"
		}
		phones[id] = baresiptest.Start(t, baresiptest.Options{
			User: accounts[i].User, Password: accounts[i].Password, Registrar: a.SIP.String(), Tone: 440,
			IP: "127.0.0." + string(rune('3'+i)), AnswerMode: mode,
		})
		a.AwaitEndpoint(t, accounts[i].User, "online")
	}
	h := startOn(t, a, func(c *config.Config) {
		for i, id := range ids {
			c.Agents = append(c.Agents, config.Agent{ID: id, SIPUser: accounts[i].User, Password: accounts[i].Password, Categories: allCategories})
		}
		c.ACD.RingTimeout = config.Duration(5 * time.Second)
		c.ACD.WrapUp = 0
	})
	for _, id := range ids {
		agentState(t, h, id, acd.Available)
	}

	const who = "13800000401"
	ctx, hangup := context.WithCancel(t.Context())
	defer hangup()
	done := sipCall(ctx, t, a, who, caller.Script{
		{On: prompts.Greeting, BargeIn: true, Press: "3"},
		{On: prompts.ConsentMenu, BargeIn: true, Press: "1"},
	})
	phones["a1"].Await("CALL_INCOMING")
	// a1 lets it ring out; then a2's phone rings and a2 declines.
	phones["a2"].Await("CALL_INCOMING")
	phones["a2"].Command("hangup", "")
	phones["a3"].Await("CALL_ESTABLISHED")
	agentState(t, h, "a3", acd.Talking)
	hangup()
	phones["a3"].Await("CALL_CLOSED")
	tr := <-done
	if tr.Status != 200 || tr.HungUpBy != "caller" {
		t.Errorf("caller's call: status %d, hung up by %q", tr.Status, tr.HungUpBy)
	}

	rec := h.Records.Final(t, who)
	if rec.EndCause != calllog.CallerHangup || rec.AgentID != "a3" || rec.Rating != "" || rec.Stage != "talking" {
		t.Fatalf("record: cause %s stage %s agent %q rating %q", rec.EndCause, rec.Stage, rec.AgentID, rec.Rating)
	}
	if rec.SIPCallID == "" {
		t.Errorf("record without the SIP Call-ID of the trunk's call")
	}
	store := acd.NewStore(h.Client, acd.StoreOptions{})
	// A rejection is no miss; ringing out is.
	for id, missed := range map[string]int{"a1": 1, "a2": 0, "a3": 0} {
		a, err := store.Agent(t.Context(), id)
		if err != nil || a.Missed != missed {
			t.Errorf("agent %s missed %d offers (%v), want %d", id, a.Missed, err, missed)
		}
	}
	day, err := store.Day(t.Context(), time.Now())
	if err != nil || day.Offers != 3 || day.Rejected != 1 || day.Unanswered != 1 || day.Answered != 1 {
		t.Errorf("day %+v (%v), want 3 offers: 1 rang out, 1 rejected, 1 answered", day, err)
	}
	agentState(t, h, "a3", acd.Available)
	noLeftoversIn(t, a)
}

// The event websocket to a real Asterisk is cut while the greeting plays
// (its TCP connection closed, as by a failing network), and stays down
// until the greeting has ended: Asterisk keeps the call in the
// application and sends the greeting's PlaybackFinished nowhere. hotline
// reconnects, learns from GET /playbacks that the greeting is over, and
// the call carries on to its end.
func TestWebsocketDroppedOnAsterisk(t *testing.T) {
	t.Parallel()
	a := asterisktest.Start(t, asterisktest.Options{})
	px := newProxy(t, strings.TrimSuffix(strings.TrimPrefix(a.ARI, "http://"), "/ari"))
	h := startOn(t, a, func(c *config.Config) { c.ARI.URL = "http://" + px.addr + "/ari" })
	callers := a.Callers(t)
	const who = "13800000402"
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	p, err := callers.Dial(ctx, who, "12345")
	if err != nil {
		t.Fatal(err)
	}
	greeting := awaitNote(t, p, aritest.NotePlaybackStarted)
	if !strings.HasSuffix(greeting.MediaURI, string(prompts.Greeting)) {
		t.Fatalf("first prompt %s, want the greeting", greeting.MediaURI)
	}
	px.stop()
	if n := awaitNote(t, p, aritest.NotePlaybackFinished); n.PlaybackID != greeting.PlaybackID || n.PlaybackState != "done" {
		t.Fatalf("the greeting ended %+v", n)
	}
	px.start(px.addr)
	tr := play(t, p, who, caller.Script{
		{On: prompts.CategoryMenu, BargeIn: true, Press: "2"},
		{On: prompts.ConsentMenu, BargeIn: true, Press: "1"},
	})
	rec := h.Records.Final(t, who)
	if rec.EndCause != calllog.FlowFinished || rec.AppealID == "" || tr.HungUpBy != "server" {
		t.Fatalf("record ended %s in %s (%s), appeal %q, hung up by %q: want the call to carry on to its end",
			rec.EndCause, rec.Stage, rec.EndDetail, rec.AppealID, tr.HungUpBy)
	}
	if got := metric(t, h, "hotline_ari_reconnects_total"); got == "" || got == "0" {
		t.Errorf("hotline_ari_reconnects_total %q after the socket was cut", got)
	}
	noLeftoversIn(t, a)
}

// A real Asterisk restarts (core restart now) during a call: the call
// ends as the caller's hang-up, hotline connects to the Asterisk that
// started again, and the next call goes through.
func TestRestartOfAsterisk(t *testing.T) {
	t.Parallel()
	a, h := onAsterisk(t, asterisktest.Options{}, nil)
	callers := a.Callers(t)
	const who = "13800000403"
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	p, err := callers.Dial(ctx, who, "12345")
	if err != nil {
		t.Fatal(err)
	}
	awaitNote(t, p, aritest.NotePlaybackStarted)
	a.Restart(t)
	if rec := h.Records.Final(t, who); rec.EndCause != calllog.CallerHangup {
		t.Errorf("call across the restart ended %s (%s), want caller_hangup", rec.EndCause, rec.EndDetail)
	}
	// The restart closed hotline's socket: it has been lost once, and is
	// up again, when a call can reach hotline rather than the fallback.
	deadline := time.Now().Add(15 * time.Second)
	for got := metric(t, h, "hotline_ari_reconnects_total"); got == "" || got == "0"; got = metric(t, h, "hotline_ari_reconnects_total") {
		if time.Now().After(deadline) {
			t.Fatalf("hotline did not notice the restart")
		}
		time.Sleep(20 * time.Millisecond)
	}
	awaitHealth(t, h, http.StatusOK)
	callers = a.Callers(t)
	const next = "13800000404"
	ctx, cancel = context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	p, err = callers.Dial(ctx, next, "12345")
	if err != nil {
		t.Fatal(err)
	}
	if tr := play(t, p, next, intakeKeys); tr.HungUpBy != "server" {
		t.Errorf("call after the restart hung up by %q", tr.HungUpBy)
	}
	if rec := h.Records.Final(t, next); rec.EndCause != calllog.FlowFinished {
		t.Errorf("call after the restart ended %s (%s)", rec.EndCause, rec.EndDetail)
	}
	noLeftoversIn(t, a)
}
