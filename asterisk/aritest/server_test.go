package aritest

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	t.Cleanup(cancel)
	return ctx
}

// get reads a string at a path of keys in a decoded JSON object.
func get(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func inbound(t *testing.T, s *Server) *Party {
	t.Helper()
	p, err := s.Inbound(testContext(t), "hotline", `"Citizen" <13800138000>`, "12345")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAuthentication(t *testing.T) {
	s := Start(t, Options{})
	rc := newREST(s)
	for _, c := range []struct {
		name string
		path string
		auth authMode
	}{
		{"no credentials", "/ari/channels", authNone},
		{"wrong password", "/ari/channels", authBadBasic},
		{"wrong api_key", "/ari/channels?api_key=hotline:wrong", authNone},
		{"wrong api_key beside good basic auth", "/ari/channels?api_key=hotline:nope", authBoth},
		{"unknown path", "/ari/no-such-resource", authNone},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := rc.send(http.MethodGet, c.path, nil, c.auth)
			if err != nil {
				t.Fatal(err)
			}
			res.want(t, http.StatusUnauthorized)
			if got := res.header.Get("WWW-Authenticate"); got != `Basic realm="Asterisk REST Interface"` {
				t.Errorf("WWW-Authenticate %q", got)
			}
			if got := string(res.body); got != `{"message":"Authentication required"}` {
				t.Errorf("body %s", got)
			}
		})
	}
	for _, path := range []string{"/ari/channels", "/ari/channels?api_key=hotline:hotline"} {
		res, err := rc.send(http.MethodGet, path, nil, authBasic)
		if err != nil {
			t.Fatal(err)
		}
		if res.want(t, http.StatusOK); string(res.body) != "[]" {
			t.Errorf("GET %s: %s", path, res.body)
		}
	}

	ctx := testContext(t)
	if _, resp, err := dialEvents(ctx, s, "app=hotline&api_key=hotline:wrong"); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("event socket with a wrong api_key: %v", err)
	}
	// The websocket of CyCoreSystems/ari authenticates with a header.
	conn, _, err := websocket.Dial(ctx, s.WebsocketURL()+"?app=hotline", &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Basic aG90bGluZTpob3RsaW5l"}},
	})
	if err != nil {
		t.Fatalf("event socket with basic auth: %v", err)
	}
	if !s.Connected("hotline") {
		t.Error("the application is not registered")
	}
	_ = conn.CloseNow()
}

func TestOtherCredentials(t *testing.T) {
	s := Start(t, Options{Username: "ari", Password: "secret"})
	rc := newREST(s)
	if res, _ := rc.send(http.MethodGet, "/ari/channels", nil, authBasic); res.status != http.StatusUnauthorized {
		t.Errorf("hotline:hotline gave %d", res.status)
	}
	if res, _ := rc.send(http.MethodGet, "/ari/channels?api_key=ari:secret", nil, authNone); res.status != http.StatusOK {
		t.Errorf("ari:secret gave %d", res.status)
	}
}

func TestEventFilter(t *testing.T) {
	s := Start(t, Options{})
	rc := newREST(s)
	ws := openEvents(t, s, "hotline")

	app := rc.call(t, http.MethodPut, "/ari/applications/hotline/eventFilter", map[string]any{
		"allowed": []map[string]string{{"type": "StasisStart"}, {"type": "StasisEnd"}},
	}).want(t, http.StatusOK).json(t)
	if got := show(app["events_allowed"]); got != `[{"type":"StasisStart"},{"type":"StasisEnd"}]` {
		t.Errorf("events_allowed %s", got)
	}
	if got := show(app["events_disallowed"]); got != `[]` {
		t.Errorf("events_disallowed %s", got)
	}

	// Only the allowed types arrive: no state change, varsets or hang-up
	// request between StasisStart and StasisEnd.
	p := inbound(t, s)
	ws.expect(t, "StasisStart")
	rc.call(t, http.MethodPost, "/ari/channels/"+p.ID()+"/answer", nil).want(t, http.StatusNoContent)
	p.Hangup()
	if ev := ws.expect(t, "StasisEnd"); get(ev, "channel", "id") != p.ID() {
		t.Errorf("StasisEnd of %v", get(ev, "channel", "id"))
	}

	// A disallowed type never passes, even when it is also allowed; the
	// allowed list given before stays.
	app = rc.call(t, http.MethodPut, "/ari/applications/hotline/eventFilter", map[string]any{
		"disallowed": []map[string]string{{"type": "StasisEnd"}},
	}).want(t, http.StatusOK).json(t)
	if n := len(app["events_allowed"].([]any)); n != 2 {
		t.Errorf("%d allowed types left, want 2", n)
	}
	p = inbound(t, s)
	ws.expect(t, "StasisStart")
	p.Hangup()

	// An empty body clears both lists: the next event is the next call's
	// StasisStart, so the StasisEnd above never came.
	rc.call(t, http.MethodPut, "/ari/applications/hotline/eventFilter", nil).want(t, http.StatusOK)
	p = inbound(t, s)
	if ev := ws.expect(t, "StasisStart"); get(ev, "channel", "id") != p.ID() {
		t.Errorf("StasisStart of %v, want %s", get(ev, "channel", "id"), p.ID())
	}
	rc.call(t, http.MethodPost, "/ari/channels/"+p.ID()+"/answer", nil)
	ws.expect(t, "ChannelStateChange")

	for _, body := range []any{
		map[string]any{"allowed": "StasisStart"},
		map[string]any{"allowed": []map[string]string{{"name": "StasisStart"}}},
	} {
		if res := rc.call(t, http.MethodPut, "/ari/applications/hotline/eventFilter", body); res.status != http.StatusBadRequest {
			t.Errorf("filter %s gave %d, want 400", show(body), res.status)
		}
	}
	rc.call(t, http.MethodPut, "/ari/applications/nobody/eventFilter", nil).want(t, http.StatusNotFound)
}

func TestApplicationReplaced(t *testing.T) {
	s := Start(t, Options{})
	rc := newREST(s)
	ctx := testContext(t)
	old := openEvents(t, s, "hotline")
	p := inbound(t, s)
	old.expect(t, "StasisStart")

	newer := openEvents(t, s, "hotline")
	ev := old.expect(t, "ApplicationReplaced")
	keys := make([]string, 0, len(ev))
	for k := range ev {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if got := strings.Join(keys, ","); got != "application,asterisk_id,timestamp,type" {
		t.Errorf("ApplicationReplaced has keys %s", got)
	}

	// Everything now goes to the new socket, and nothing more to the old.
	rc.call(t, http.MethodPost, "/ari/channels/"+p.ID()+"/answer", nil).want(t, http.StatusNoContent)
	newer.expect(t, "ChannelStateChange")
	if err := s.waitFlushed(ctx); err != nil {
		t.Fatal(err)
	}
	if err := old.drain(ctx, s); err != nil {
		t.Fatal(err)
	}
	if n := len(old.received()); n != 2 {
		t.Errorf("the old socket received %d events, want StasisStart and ApplicationReplaced", n)
	}

	// Closing the new socket unregisters the application although the old
	// one is open; its channel stays in Stasis and keeps it listed.
	newer.close()
	if err := s.AwaitConnected(ctx, "hotline", false); err != nil {
		t.Fatal(err)
	}
	app := rc.call(t, http.MethodGet, "/ari/applications/hotline", nil).want(t, http.StatusOK).json(t)
	if got := show(app["channel_ids"]); got != `["`+p.ID()+`"]` {
		t.Errorf("channel_ids %s", got)
	}
	if _, err := s.Inbound(ctx, "hotline", "13800138000", "12345"); !errors.Is(err, ErrStasisFailed) {
		t.Errorf("a call without a socket: %v, want ErrStasisFailed", err)
	}
	if got := s.Channels(); len(got) != 1 {
		t.Errorf("channels %v, want only the first call", got)
	}

	// When its last channel goes, the application goes.
	p.Hangup()
	rc.call(t, http.MethodGet, "/ari/applications/hotline", nil).want(t, http.StatusNotFound)
	if n := len(old.received()); n != 2 {
		t.Errorf("the old socket received %d events", n)
	}
}

func TestFreeze(t *testing.T) {
	s := Start(t, Options{})
	ctx := testContext(t)
	ws := openEvents(t, s, "hotline")
	if err := ws.conn.Ping(ctx); err != nil {
		t.Fatalf("ping before freezing: %v", err)
	}

	resume := s.Freeze("hotline")
	// Half-open: the ping is never answered, and events do not come.
	quiet, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := ws.conn.Ping(quiet); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ping while frozen: %v, want no pong", err)
	}
	p := inbound(t, s)
	if !s.Connected("hotline") {
		t.Error("a frozen socket still holds its application")
	}
	if n := len(ws.received()); n != 0 {
		t.Fatalf("%d events came through a frozen socket", n)
	}

	resume()
	resume() // a second call does nothing
	if ev := ws.expect(t, "StasisStart"); get(ev, "channel", "id") != p.ID() {
		t.Errorf("StasisStart of %v", get(ev, "channel", "id"))
	}
	if err := ws.conn.Ping(ctx); err != nil {
		t.Errorf("ping after resuming: %v", err)
	}
	s.Freeze("nobody")() // no socket: nothing to freeze
}

func TestFrozenSocketCanBeDropped(t *testing.T) {
	s := Start(t, Options{})
	ws := openEvents(t, s, "hotline")
	s.Freeze("hotline")
	s.DropWebsockets(websocket.StatusNormalClosure)
	if err := ws.closeErr(); websocket.CloseStatus(err) != -1 {
		t.Errorf("a frozen socket closed with %v, want an abrupt close", err)
	}
}

func TestDropWebsockets(t *testing.T) {
	s := Start(t, Options{})
	rc := newREST(s)
	ctx := testContext(t)
	a := openEvents(t, s, "hotline")
	b := openEvents(t, s, "other")
	p := inbound(t, s)
	a.expect(t, "StasisStart")

	s.DropWebsockets(websocket.StatusNormalClosure)
	for _, c := range []*eventSocket{a, b} {
		if err := c.closeErr(); !isCloseStatus(err, websocket.StatusNormalClosure) {
			t.Errorf("socket closed with %v, want 1000", err)
		}
	}
	if s.Connected("hotline") || s.Connected("other") {
		t.Error("applications still registered")
	}
	// The call stays in Stasis without a socket.
	app := rc.call(t, http.MethodGet, "/ari/applications/hotline", nil).want(t, http.StatusOK).json(t)
	if got := show(app["channel_ids"]); got != `["`+p.ID()+`"]` {
		t.Errorf("channel_ids %s", got)
	}
	rc.call(t, http.MethodGet, "/ari/applications/other", nil).want(t, http.StatusNotFound)

	c := openEvents(t, s, "hotline")
	if err := s.AwaitConnected(ctx, "hotline", true); err != nil {
		t.Fatal(err)
	}
	s.DropWebsockets(websocket.StatusAbnormalClosure)
	if err := c.closeErr(); err == nil || websocket.CloseStatus(err) != -1 {
		t.Errorf("socket closed with %v, want no close frame (1006)", err)
	}
}

// DropRequests leaves REST requests unanswered (their connection closed)
// while the event socket stays up, until resumed.
func TestDropRequests(t *testing.T) {
	s := Start(t, Options{})
	rc := newREST(s)
	openEvents(t, s, "hotline")
	dropped, resume := s.DropRequests()
	if _, err := rc.send(http.MethodGet, "/ari/asterisk/info", nil, authBasic); err == nil {
		t.Errorf("a request was answered while requests are dropped")
	}
	select {
	case req := <-dropped:
		if req != "GET /ari/asterisk/info" {
			t.Errorf("dropped %q", req)
		}
	case <-testContext(t).Done():
		t.Fatal("the dropped request was not reported")
	}
	if !s.Connected("hotline") {
		t.Errorf("the event socket went with the requests")
	}
	resume()
	rc.call(t, http.MethodGet, "/ari/asterisk/info", nil).want(t, http.StatusOK)
}

func TestRestart(t *testing.T) {
	s := Start(t, Options{})
	rc := newREST(s)
	ctx := testContext(t)
	ws := openEvents(t, s, "hotline")
	p := inbound(t, s)
	ws.expect(t, "StasisStart")
	rc.call(t, http.MethodPost, "/ari/bridges", nil).want(t, http.StatusOK)
	rc.call(t, http.MethodPost, "/ari/channels/"+p.ID()+"/play?media=sound:hello-world", nil).want(t, http.StatusCreated)
	ws.expect(t, "PlaybackStarted")
	before := rc.call(t, http.MethodGet, "/ari/asterisk/info", nil).want(t, http.StatusOK).json(t)

	s.Restart()
	if err := ws.closeErr(); websocket.CloseStatus(err) != -1 {
		t.Errorf("socket closed with %v, want an abrupt close", err)
	}
	if n := len(ws.received()); n != 2 {
		t.Errorf("%d events, want none after the restart", n)
	}
	<-p.Done()
	var last Note
	for n := range p.Notes() {
		last = n
	}
	if last.Kind != NoteDropped {
		t.Errorf("the caller's last note is %v, want dropped", last.Kind)
	}
	if len(s.Channels())+len(s.Bridges())+len(s.Playbacks()) != 0 {
		t.Errorf("left after restart: %v %v %v", s.Channels(), s.Bridges(), s.Playbacks())
	}
	if got := string(rc.call(t, http.MethodGet, "/ari/applications", nil).body); got != "[]" {
		t.Errorf("applications after restart: %s", got)
	}
	// As a real Asterisk 22 after `core restart now`: the entity id
	// stays, the startup time is new.
	info := rc.call(t, http.MethodGet, "/ari/asterisk/info", nil).want(t, http.StatusOK).json(t)
	after := get(info, "system", "entity_id")
	if after != get(before, "system", "entity_id") || after != s.EntityID() {
		t.Errorf("entity id %v after restart, was %v", after, get(before, "system", "entity_id"))
	}
	if was, now := get(before, "status", "startup_time"), get(info, "status", "startup_time"); now == was {
		t.Errorf("startup time %v unchanged by the restart", now)
	}

	ws = openEvents(t, s, "hotline")
	if err := s.AwaitConnected(ctx, "hotline", true); err != nil {
		t.Fatal(err)
	}
	inbound(t, s)
	if ev := ws.expect(t, "StasisStart"); ev["asterisk_id"] != after {
		t.Errorf("asterisk_id %v, want %v", ev["asterisk_id"], after)
	}
}

func TestEmit(t *testing.T) {
	s := Start(t, Options{})
	ws := openEvents(t, s, "hotline")
	raw := []byte(`{"type":"NoSuchEvent","application":"hotline"}`)
	s.Emit("hotline", raw)
	for range 200 {
		s.Emit("hotline", []byte(`{"type":"Burst"}`))
	}
	s.Emit("nobody", raw) // no socket: lost
	if err := ws.count(testContext(t), 201); err != nil {
		t.Fatal(err)
	}
	if got := string(ws.frame(0)); got != string(raw) {
		t.Errorf("frame %s, want %s", got, raw)
	}
}

func TestCloseLeavesNothing(t *testing.T) {
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	rc := newREST(s)
	ctx := testContext(t)
	ws, _, err := dialEvents(ctx, s, "app=hotline&api_key=hotline:hotline")
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Inbound(ctx, "hotline", "13800138000", "12345")
	if err != nil {
		t.Fatal(err)
	}
	rc.call(t, http.MethodPost, "/ari/channels/"+p.ID()+"/play?media=sound:hello-world", nil).want(t, http.StatusCreated)
	s.SetEndpoint("PJSIP/1001", Phone{NoAnswer: true})
	rc.call(t, http.MethodPost, "/ari/channels?endpoint=PJSIP/1001&app=hotline", nil).want(t, http.StatusOK)
	frozen := s.Freeze("hotline")
	defer frozen()

	s.Close()
	s.Close()
	<-p.Done()
	if err := ws.closeErr(); err == nil {
		t.Error("the event socket is still open")
	}
	ws.close()
	if _, err := rc.send(http.MethodGet, "/ari/channels", nil, authBasic); err == nil {
		t.Error("the REST interface still answers")
	}
	if _, err := s.Inbound(ctx, "hotline", "13800138000", "12345"); !errors.Is(err, ErrClosed) {
		t.Errorf("Inbound after Close: %v", err)
	}
	goleak.VerifyNone(t)
}
