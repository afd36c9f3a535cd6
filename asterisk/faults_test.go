package asterisk_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/hotline12345/hotline/asterisk/aritest"
	"github.com/hotline12345/hotline/caller"
	"github.com/hotline12345/hotline/calllog"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/internal/hotlinetest"
	"github.com/hotline12345/hotline/prompts"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// intakeKeys answers the two menus at once: general, consent.
var intakeKeys = caller.Script{
	{On: prompts.Greeting, BargeIn: true, Press: "3"},
	{On: prompts.ConsentMenu, BargeIn: true, Press: "1"},
}

// healthz reads hotline's /healthz.
func healthz(t testing.TB, h *hotlinetest.Hotline) (int, string) {
	t.Helper()
	res, err := http.Get("http://" + h.HTTP.String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

// awaitConnected waits for hotline's socket to the double to be up or down.
func awaitConnected(t testing.TB, srv *aritest.Server, up bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.AwaitConnected(ctx, "hotline", up); err != nil {
		t.Fatalf("hotline connected %v: %v", !up, err)
	}
}

// The websocket drops while the greeting plays (a close frame; an abrupt
// TCP close): hotline reconnects and reconciles, and the call carries on
// to its end. The greeting's PlaybackFinished went to no socket; the flow
// learns from GET /playbacks that it is over.
func TestWebsocketDroppedMidCall(t *testing.T) {
	t.Parallel()
	for _, code := range []websocket.StatusCode{websocket.StatusNormalClosure, websocket.StatusAbnormalClosure} {
		t.Run(fmt.Sprint(int(code)), func(t *testing.T) {
			t.Parallel()
			srv := newDouble(t)
			h := startHotline(t, srv, nil)
			who := fmt.Sprintf("138000002%02d", int(code)%100)
			p := inbound(t, srv, who)
			if n := awaitNote(t, p, aritest.NotePlaybackStarted); !strings.HasSuffix(n.MediaURI, string(prompts.Greeting)) {
				t.Fatalf("first prompt %s, want the greeting", n.MediaURI)
			}
			srv.DropWebsockets(code)
			awaitConnected(t, srv, true)
			tr := play(t, p, who, caller.Script{
				{On: prompts.CategoryMenu, Press: "2"},
				{On: prompts.ConsentMenu, Press: "1"},
			})
			rec := h.Records.Final(t, who)
			if rec.EndCause != calllog.FlowFinished || rec.AppealID == "" {
				t.Fatalf("record ended %s in %s (%s), appeal %q: want the call to carry on to its end",
					rec.EndCause, rec.Stage, rec.EndDetail, rec.AppealID)
			}
			if tr.HungUpBy != "server" {
				t.Errorf("hung up by %q", tr.HungUpBy)
			}
			noLeftovers(t, srv)
		})
	}
}

// A half-open socket (nothing arrives, nothing is refused) is noticed by
// the ping and replaced; calls go on over the new one.
func TestHalfOpenSocketIsReplaced(t *testing.T) {
	t.Parallel()
	srv := newDouble(t)
	// Pings far enough apart that the call below, placed at once, reaches
	// the frozen socket before hotline gives up on it even on a busy
	// machine: were the socket already replaced, Stasis would find no
	// application for a moment, as on Asterisk.
	h := startHotline(t, srv, func(c *config.Config) {
		c.ARI.PingInterval = config.Duration(time.Second)
		c.ARI.PingTimeout = config.Duration(500 * time.Millisecond)
	})
	awaitHealth(t, h, http.StatusOK)
	resume := srv.Freeze("hotline")
	defer resume()
	// The call's StasisStart goes to the frozen socket and stays there;
	// only a hotline that noticed the socket is dead, connected again and
	// found the call in Stasis answers it.
	tr := call(t, srv, "13800000210", intakeKeys)
	if tr.HungUpBy != "server" || tr.Status != 200 {
		t.Errorf("call after the reconnect: status %d, hung up by %q", tr.Status, tr.HungUpBy)
	}
	if rec := h.Records.Final(t, "13800000210"); rec.EndCause != calllog.FlowFinished || rec.SIPCallID == "" {
		t.Errorf("call taken over after the reconnect: ended %s (%s), SIP Call-ID %q", rec.EndCause, rec.EndDetail, rec.SIPCallID)
	}
	noLeftovers(t, srv)
}

// proxy forwards TCP connections to a target until stopped, and can start
// again on the same address: Asterisk going away and coming back.
type proxy struct {
	t      testing.TB
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newProxy(t testing.TB, target string) *proxy {
	p := &proxy{t: t, target: target}
	p.start("127.0.0.1:0")
	p.addr = p.ln.Addr().String()
	t.Cleanup(p.stop)
	return p
}

func (p *proxy) start(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			p.wg.Go(func() { _, _ = io.Copy(u, c); u.Close() })
			p.wg.Go(func() { _, _ = io.Copy(c, u); c.Close() })
		}
	})
}

// stop closes the listener and every connection through it.
func (p *proxy) stop() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

// While Asterisk is unreachable hotline keeps retrying with backoff and
// /healthz says so; once it is back, so is hotline, and calls go through.
func TestUnreachableAsteriskIsRetriedAndReported(t *testing.T) {
	t.Parallel()
	srv := newDouble(t)
	target := strings.TrimSuffix(strings.TrimPrefix(srv.URL(), "http://"), "/ari")
	px := newProxy(t, target)
	h := startHotline(t, srv, func(c *config.Config) { c.ARI.URL = "http://" + px.addr + "/ari" })
	awaitHealth(t, h, http.StatusOK)
	px.stop()
	awaitConnected(t, srv, false)
	if body := awaitHealth(t, h, http.StatusServiceUnavailable); !strings.Contains(body, "asterisk unreachable") {
		t.Errorf("healthz with Asterisk away: %s", body)
	}
	px.start(px.addr)
	awaitConnected(t, srv, true)
	awaitHealth(t, h, http.StatusOK)
	if tr := call(t, srv, "13800000211", intakeKeys); tr.HungUpBy != "server" {
		t.Errorf("call once Asterisk is back: hung up by %q", tr.HungUpBy)
	}
	noLeftovers(t, srv)
}

// awaitHealth waits for /healthz to answer with code and returns its body.
func awaitHealth(t testing.TB, h *hotlinetest.Hotline, code int) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, body := healthz(t, h)
		if got == code {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("healthz %d %s, want %d", got, body, code)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Asterisk restarts in the middle of a call (a new start time, the channel
// gone without a word): the call ends as the caller's hang-up, hotline
// reconnects, and the next call works.
func TestAsteriskRestart(t *testing.T) {
	t.Parallel()
	srv := newDouble(t)
	h := startHotline(t, srv, nil)
	_, done := dial(t, srv, "13800000212", nil)
	h.Records.Started(t, "13800000212")
	srv.Restart()
	<-done
	rec := h.Records.Final(t, "13800000212")
	if rec.EndCause != calllog.CallerHangup {
		t.Errorf("call across the restart ended %s (%s), want caller_hangup", rec.EndCause, rec.EndDetail)
	}
	awaitConnected(t, srv, true)
	tr := call(t, srv, "13800000213", intakeKeys)
	if tr.HungUpBy != "server" {
		t.Errorf("call after the restart hung up by %q", tr.HungUpBy)
	}
	if rec := h.Records.Final(t, "13800000213"); rec.EndCause != calllog.FlowFinished {
		t.Errorf("call after the restart ended %s (%s)", rec.EndCause, rec.EndDetail)
	}
	noLeftovers(t, srv)
}

// An event type the client library does not know, undecodable frames and
// a burst of 10,000 events for channels hotline does not have: none
// crashes hotline or stalls the call in progress, which ends normally.
func TestUnknownEventsAndABurst(t *testing.T) {
	t.Parallel()
	srv := newDouble(t)
	h := startHotline(t, srv, nil)
	const who = "13800000214"
	p := inbound(t, srv, who)
	awaitNote(t, p, aritest.NotePlaybackStarted)
	srv.Emit("hotline", []byte(`{"type":"ChannelTransfer","timestamp":"2026-11-27T00:49:48.221+0000","application":"hotline","asterisk_id":"02:fc:00:00:00:01"}`))
	srv.Emit("hotline", []byte(`{"type":`))
	srv.Emit("hotline", []byte(`{"no":"type"}`))
	for i := range 10000 {
		ev, err := json.Marshal(map[string]any{
			"type": "ChannelDtmfReceived", "timestamp": "2026-11-27T00:49:48.221+0000",
			"digit": "5", "duration_ms": 100, "application": "hotline", "asterisk_id": srv.EntityID(),
			"channel": map[string]any{"id": fmt.Sprintf("1795740588.%d", 100000+i), "name": "PJSIP/citizen-00000001", "state": "Up"},
		})
		if err != nil {
			t.Fatal(err)
		}
		srv.Emit("hotline", ev)
	}
	tr := play(t, p, who, caller.Script{{On: prompts.CategoryMenu, Press: "3"}, {On: prompts.ConsentMenu, Press: "1"}})
	rec := h.Records.Final(t, who)
	if rec.EndCause != calllog.FlowFinished || tr.HungUpBy != "server" {
		t.Errorf("call ended %s (%s), hung up by %q", rec.EndCause, rec.EndDetail, tr.HungUpBy)
	}
	for _, ev := range rec.Events {
		if ev.Kind == "digit" && ev.Digit == "5" {
			t.Errorf("a key of another channel reached the call")
		}
	}
	if !srv.Connected("hotline") {
		t.Errorf("hotline lost its socket to the unknown events")
	}
	if got := metric(t, h, "hotline_ari_events_dropped_total"); got != "3" {
		t.Errorf("hotline_ari_events_dropped_total %s, want 3: the unknown type and the two bad frames", got)
	}
	noLeftovers(t, srv)
}

// A key that arrives after the channel left Stasis (events out of order)
// reaches no flow and upsets nothing: the caller's hang-up is recorded as
// such, and hotline keeps its socket.
func TestKeyAfterStasisEnd(t *testing.T) {
	t.Parallel()
	srv := newDouble(t)
	h := startHotline(t, srv, nil)
	const who = "13800000215"
	p, done := dial(t, srv, who, caller.Script{{On: prompts.CategoryMenu, BargeIn: true, Hangup: true}})
	<-done
	srv.Emit("hotline", fmt.Appendf(nil, `{"type":"ChannelDtmfReceived","timestamp":"2026-11-27T00:49:48.221+0000","digit":"1","duration_ms":100,"application":"hotline","asterisk_id":%q,"channel":{"id":%q,"name":"PJSIP/citizen-00000001","state":"Up"}}`, srv.EntityID(), p.ID()))
	rec := h.Records.Final(t, who)
	if rec.EndCause != calllog.CallerHangup || rec.Stage != "category" {
		t.Errorf("record ended %s in %s (%s), want caller_hangup in category", rec.EndCause, rec.Stage, rec.EndDetail)
	}
	if tr := call(t, srv, "13800000216", intakeKeys); tr.HungUpBy != "server" {
		t.Errorf("next call hung up by %q", tr.HungUpBy)
	}
	noLeftovers(t, srv)
}

// A call left answered in Stasis by a hotline that died (its websocket
// gone, the channel still up) is hung up by the next hotline to connect:
// no flow can take it over, and none is left orphaned. hotline also sets
// the application's event filter to the events it handles.
func TestOrphanedCallIsEnded(t *testing.T) {
	t.Parallel()
	srv := newDouble(t)
	// The hotline that died: a bare websocket for the application.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	header := http.Header{}
	header.Set("Authorization", "Basic aG90bGluZTpob3RsaW5l") // hotline:hotline
	ws, _, err := websocket.Dial(ctx, srv.WebsocketURL()+"?app=hotline", &websocket.DialOptions{HTTPHeader: header})
	if err != nil {
		t.Fatal(err)
	}
	p, err := srv.Inbound(ctx, "hotline", "13800000217", "12345")
	if err != nil {
		t.Fatal(err)
	}
	ari(t, srv, http.MethodPost, "/channels/"+p.ID()+"/answer", http.StatusNoContent, nil)
	awaitNote(t, p, aritest.NoteAnswered)
	ws.Close(websocket.StatusNormalClosure, "")
	awaitConnected(t, srv, false)

	startHotline(t, srv, nil)
	n := awaitNote(t, p, aritest.NoteHungUp)
	if n.Cause == 0 {
		t.Errorf("orphan hung up with no cause")
	}
	<-p.Done()
	var app struct {
		EventsAllowed []struct {
			Type string `json:"type"`
		} `json:"events_allowed"`
	}
	ari(t, srv, http.MethodGet, "/applications/hotline", http.StatusOK, &app)
	allowed := map[string]bool{}
	for _, e := range app.EventsAllowed {
		allowed[e.Type] = true
	}
	// ChannelVarset carries the RTP statistics of a channel's end.
	for _, want := range []string{"StasisStart", "StasisEnd", "ChannelDtmfReceived", "PlaybackFinished", "ChannelVarset"} {
		if !allowed[want] {
			t.Errorf("event filter %v lacks %s", app.EventsAllowed, want)
		}
	}
	if allowed["ChannelStateChange"] {
		t.Errorf("event filter lets ChannelStateChange through: %v", app.EventsAllowed)
	}
	noLeftovers(t, srv)
}

// ari makes one REST request to the double as hotline's ARI user.
func ari(t testing.TB, srv *aritest.Server, method, path string, want int, out any) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("hotline", "hotline")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, res.StatusCode, body, want)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatal(err)
		}
	}
}

// metric reads one unlabelled metric's value from hotline's /metrics.
func metric(t testing.TB, h *hotlinetest.Hotline, name string) string {
	t.Helper()
	res, err := http.Get("http://" + h.HTTP.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

// Asterisk answers no request for a while (its HTTP server away, the
// network dropping them; a real Asterisk behind a cut connection showed
// it) while the event socket stays up: the greeting ends, and the request
// for the category menu goes unanswered. The flow waits for it rather than
// run on past a prompt the caller never heard; once Asterisk answers again
// the menu plays, once, and the call goes on to its end.
func TestPromptWaitsForAsteriskToAnswer(t *testing.T) {
	t.Parallel()
	srv := newDouble(t)
	h := startHotline(t, srv, nil)
	const who = "13800000218"
	p := inbound(t, srv, who)
	if n := awaitNote(t, p, aritest.NotePlaybackStarted); !strings.HasSuffix(n.MediaURI, string(prompts.Greeting)) {
		t.Fatalf("first prompt %s, want the greeting", n.MediaURI)
	}
	dropped, resume := srv.DropRequests()
	defer resume()
	awaitDropped(t, dropped, "POST /ari/channels/"+p.ID()+"/play/")
	// Asked again, not given up on.
	awaitDropped(t, dropped, "GET /ari/playbacks/")
	resume()
	tr := play(t, p, who, caller.Script{
		{On: prompts.CategoryMenu, Press: "2"},
		{On: prompts.ConsentMenu, Press: "1"},
	})
	rec := h.Records.Final(t, who)
	if rec.EndCause != calllog.FlowFinished || tr.HungUpBy != "server" {
		t.Fatalf("record ended %s in %s (%s), hung up by %q", rec.EndCause, rec.Stage, rec.EndDetail, tr.HungUpBy)
	}
	if got := tr.HeardIDs(); len(got) < 2 || got[0] != prompts.CategoryMenu || got[1] != prompts.ConsentMenu {
		t.Errorf("after the greeting the caller heard %v, want the category menu, then the consent menu", got)
	}
	noLeftovers(t, srv)
}

// awaitDropped waits for a request dropped by the double whose method and
// path start with prefix.
func awaitDropped(t testing.TB, dropped <-chan string, prefix string) {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case req := <-dropped:
			if strings.HasPrefix(req, prefix) {
				return
			}
		case <-timeout:
			t.Fatalf("no request %s... dropped", prefix)
		}
	}
}
