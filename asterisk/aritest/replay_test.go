package aritest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// The replay tests drive the double through the REST calls and far-end
// actions of each recorded Asterisk 22 scenario (testdata/*.jsonl, copied
// unchanged from the project's ari-transcripts) and compare what comes
// back with what Asterisk sent: every REST reply (status, keys, literal
// values, error bodies exactly) and every event stream, event by event
// in order, with ids, timestamps and counters held to the recorded
// format and mapped one to one.
//
// The REST lines are the script. Far-end actions come from the sipp
// scenarios the README describes and are placed where their events are:
// a StasisStart from the trunk's dialplan is a call coming in, a
// ChannelDtmfReceived a key, and RTPAUDIOQOS with no DELETE before it the
// caller's BYE. Each action is taken once every event recorded before it
// has arrived, so timers inside the double (scaled by Speed) cannot
// reorder the streams.

// transcriptLine is one line of a transcript; see the transcripts'
// README for the format.
type transcriptLine struct {
	n int // 1-based line number in the file

	TMs             int               `json:"t_ms"`
	Dir             string            `json:"dir"`
	Conn            int               `json:"conn"`
	Body            json.RawMessage   `json:"body"`
	Method          string            `json:"method"`
	Path            string            `json:"path"`
	Status          int               `json:"status"`
	Response        json.RawMessage   `json:"response"`
	ResponseText    *string           `json:"response_text"`
	TSentMs         int               `json:"t_sent_ms"`
	Headers         map[string]string `json:"headers"`
	RequestBodyText *string           `json:"request_body_text"`
	Websocket       string            `json:"websocket"`
	Action          string            `json:"action"`

	ev map[string]any // the decoded event body
}

func (l *transcriptLine) evType() string { s, _ := l.ev["type"].(string); return s }

// evChannel is the event's channel (or Dial peer) object.
func (l *transcriptLine) evChannel() map[string]any {
	if ch, ok := l.ev["channel"].(map[string]any); ok {
		return ch
	}
	ch, _ := l.ev["peer"].(map[string]any)
	return ch
}

func (l *transcriptLine) evChannelID() string {
	id, _ := l.evChannel()["id"].(string)
	return id
}

func loadTranscript(t *testing.T, name string) []*transcriptLine {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name+".jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []*transcriptLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := &transcriptLine{n: len(lines) + 1}
		if err := json.Unmarshal(sc.Bytes(), l); err != nil {
			t.Fatalf("%s line %d: %v", name, l.n, err)
		}
		if l.Dir == "event" {
			if err := json.Unmarshal(l.Body, &l.ev); err != nil {
				t.Fatalf("%s line %d: %v", name, l.n, err)
			}
		}
		lines = append(lines, l)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

// recordedSound gives the sounds the lengths Asterisk played them for in
// the recording, from PlaybackStarted to PlaybackFinished.
func recordedSound(name, _ string) (time.Duration, bool) {
	switch name {
	case "hello-world":
		return 1402 * time.Millisecond, true
	case "beep":
		return 423 * time.Millisecond, true
	case "demo-congrats":
		return 10 * time.Second, true // stopped after 0.5 s in the recording
	case "no-such-sound-file":
		return 0, false
	}
	return time.Second, true
}

// actionKind is what the replay does at one point of the script.
type actionKind int

const (
	actREST    actionKind = iota // a REST line (or a websocket handshake line)
	actOpen                      // a websocket opens
	actClose                     // a websocket closes with 1000
	actInbound                   // the caller dials in
	actPress                     // the caller presses a key
	actHangup                    // the caller hangs up
)

type action struct {
	kind actionKind
	at   int // ms into the scenario
	line *transcriptLine
	auth authMode
}

// causedBy lists, per kind of request, the event types it produces: at
// the millisecond a request was sent, events it does not produce had
// already arrived, and the replay waits for them first.
var causedBy = []struct {
	method string
	path   *regexp.Regexp
	types  []string
}{
	{"POST", regexp.MustCompile(`^/ari/channels/[^/?]+/play`), []string{"PlaybackStarted", "PlaybackFinished", "PlaybackContinuing"}},
	{"POST", regexp.MustCompile(`^/ari/channels/[^/?]+/answer`), []string{"ChannelStateChange"}},
	{"POST", regexp.MustCompile(`^/ari/channels/[^/?]+/variable`), []string{"ChannelVarset"}},
	{"POST", regexp.MustCompile(`^/ari/channels(/[^/?]+)?(\?|$)`), []string{"Dial", "ChannelStateChange", "ChannelDialplan", "ChannelVarset", "StasisStart", "ChannelHangupRequest", "ChannelDestroyed"}},
	{"DELETE", regexp.MustCompile(`^/ari/channels/`), []string{"ChannelVarset", "ChannelHangupRequest", "StasisEnd", "ChannelDestroyed", "ChannelLeftBridge", "Dial"}},
	{"DELETE", regexp.MustCompile(`^/ari/bridges/`), []string{"ChannelLeftBridge", "BridgeDestroyed", "ChannelVarset"}},
	{"POST", regexp.MustCompile(`^/ari/bridges/[^/?]+/(add|remove)Channel`), []string{"ChannelEnteredBridge", "ChannelLeftBridge", "ChannelVarset", "ChannelConnectedLine", "ChannelCallerId"}},
	{"DELETE", regexp.MustCompile(`^/ari/playbacks/`), []string{"PlaybackFinished", "PlaybackStarted"}},
	{"GET", regexp.MustCompile(`^/ari/events`), []string{"ApplicationReplaced"}},
}

// causes reports whether a could have produced the recorded event ev.
func (a *action) causes(ev *transcriptLine) bool {
	typ := ev.evType()
	switch a.kind {
	case actOpen:
		return typ == "ApplicationReplaced"
	case actClose:
		return false
	case actInbound:
		return typ == "StasisStart"
	case actPress:
		return typ == "ChannelDtmfReceived"
	case actHangup:
		return typ != "ChannelDtmfReceived"
	}
	for _, c := range causedBy {
		if c.method == a.line.Method && c.path.MatchString(a.line.Path) && slices.Contains(c.types, typ) {
			// A hang-up fails the playback it interrupts; one that ended
			// by itself ("done") was not caused by the DELETE.
			if a.line.Method == "DELETE" && typ == "PlaybackFinished" && strings.HasPrefix(a.line.Path, "/ari/channels/") {
				pb, _ := ev.ev["playback"].(map[string]any)
				return pb["state"] == "failed"
			}
			return true
		}
	}
	return false
}

// scenario is one transcript and what the replay needs beyond it.
type scenario struct {
	name  string
	speed float64
	// before runs just before the action of the given line.
	before map[int]func(r *replay, a *action) error
}

var scenarios = []scenario{
	{name: "inbound-play-dtmf-callerhangup", speed: 10},
	{name: "inbound-app-hangup", speed: 10},
	// The Local channel's 500 ms Answer() must end after addChannel, as
	// recorded: real time leaves room for the requests between.
	{name: "bridge-agent-then-rating", speed: 1},
	{name: "originate-callback", speed: 10, before: map[int]func(*replay, *action) error{
		// sipp-uas-answer.xml: 100, 180, then 200 after 1 s.
		1: func(r *replay, _ *action) error {
			r.s.SetEndpoint("PJSIP/citizen", Phone{AnswerAfter: time.Second})
			return nil
		},
		// sipp-uas-busy.xml: 100, then 486 after 0.5 s.
		22: func(r *replay, _ *action) error {
			r.s.SetEndpoint("PJSIP/citizen", Phone{AnswerAfter: 500 * time.Millisecond, Busy: true})
			return nil
		},
		// sipp-uas-noanswer.xml: 100, 180, never answers.
		27: func(r *replay, _ *action) error {
			r.s.SetEndpoint("PJSIP/citizen", Phone{NoAnswer: true})
			return nil
		},
	}},
	{name: "errors", speed: 10, before: map[int]func(*replay, *action) error{
		// The two 401s of GET /ari/channels: without credentials, then
		// with a wrong password.
		20: func(_ *replay, a *action) error { a.auth = authNone; return nil },
		21: func(_ *replay, a *action) error { a.auth = authBadBasic; return nil },
		// no-such-app-ws gives 404 once its socket (conn 2) has closed.
		29: func(r *replay, _ *action) error { return r.closeSocket(2) },
	}},
	{name: "ws-reconnect", speed: 10, before: map[int]func(*replay, *action) error{
		// sipp-uac-dtmf1-at1500ms-wait-bye.xml presses 1 while no socket
		// is connected: the event is lost.
		8: func(r *replay, _ *action) error {
			for _, p := range r.parties {
				p.Press('1')
			}
			return nil
		},
	}},
	{name: "ws-replaced", speed: 10},
}

func TestReplay(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			errs, err := runReplay(sc, loadTranscript(t, sc.name))
			report(t, errs)
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

func report(t *testing.T, errs []string) {
	t.Helper()
	for i, e := range errs {
		if i == 30 {
			t.Errorf("... and %d more differences", len(errs)-i)
			break
		}
		t.Error(e)
	}
}

// A comparison that could not fail would prove nothing. Each case changes
// the recording the way a wrong double would differ from it (five varsets
// fewer, a ChannelDestroyed for a dialplan channel, two events swapped,
// another cause, RTP counted that never came, another error text) and
// must be reported.
func TestReplayDetectsDeviations(t *testing.T) {
	cases := []struct {
		name   string
		file   string
		change func(lines []*transcriptLine) []*transcriptLine
	}{
		{"without the five varsets", "inbound-app-hangup", func(lines []*transcriptLine) []*transcriptLine {
			return slices.DeleteFunc(lines, func(l *transcriptLine) bool {
				v, _ := l.ev["variable"].(string)
				return strings.HasPrefix(v, "RTPAUDIOQOS")
			})
		}},
		{"with ChannelDestroyed for a dialplan channel", "inbound-play-dtmf-callerhangup", func(lines []*transcriptLine) []*transcriptLine {
			end := lines[len(lines)-1]
			if end.evType() != "StasisEnd" {
				t.Fatalf("the transcript does not end with StasisEnd")
			}
			extra := *end
			extra.n++
			extra.TMs++
			extra.ev = map[string]any{}
			for k, v := range end.ev {
				extra.ev[k] = v
			}
			extra.ev["type"] = "ChannelDestroyed"
			extra.ev["cause"] = 16.0
			extra.ev["cause_txt"] = "Normal Clearing"
			extra.Body, _ = json.Marshal(extra.ev)
			return append(lines, &extra)
		}},
		{"with HangupRequest after StasisEnd", "inbound-app-hangup", func(lines []*transcriptLine) []*transcriptLine {
			n := len(lines)
			lines[n-1], lines[n-2] = lines[n-2], lines[n-1]
			return lines
		}},
		{"with another hang-up cause", "inbound-app-hangup", func(lines []*transcriptLine) []*transcriptLine {
			for _, l := range lines {
				if l.evType() == "ChannelHangupRequest" {
					l.ev["cause"] = 16.0
					l.Body, _ = json.Marshal(l.ev)
				}
			}
			return lines
		}},
		{"with RTP from a caller that sent none", "inbound-app-hangup", func(lines []*transcriptLine) []*transcriptLine {
			for _, l := range lines {
				if v, _ := l.ev["value"].(string); l.ev["variable"] == "RTPAUDIOQOS" {
					l.ev["value"] = strings.Replace(v, "rxcount=0", "rxcount=10", 1)
					l.Body, _ = json.Marshal(l.ev)
				}
			}
			return lines
		}},
		{"with another error text", "errors", func(lines []*transcriptLine) []*transcriptLine {
			lines[0].Response = json.RawMessage(`{"message":"No such channel"}`)
			return lines
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sc := scenario{name: c.file, speed: 10}
			errs, err := runReplay(sc, c.change(loadTranscript(t, c.file)))
			if err != nil {
				t.Fatal(err)
			}
			if len(errs) == 0 {
				t.Fatal("the changed transcript still matched")
			}
			t.Logf("reported as expected: %s", errs[0])
		})
	}
}

// replay is one run of a scenario against a fresh double.
type replay struct {
	name    string
	s       *Server
	rest    *restClient
	m       *matcher
	ctx     context.Context
	events  map[int][]*transcriptLine // recorded events per socket, in order
	paired  map[int]int               // how many of them have been compared
	conns   map[int]*eventSocket
	open    map[int]bool
	parties map[string]*Party // by the double's channel id
	ids     map[string]bool   // every id that appears in the transcript
}

// runReplay plays a transcript and returns the differences found; err is
// for a replay that could not go on.
func runReplay(sc scenario, lines []*transcriptLine) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*waitLimit)
	defer cancel()
	s, err := New(Options{Speed: sc.speed, Sound: recordedSound})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	r := &replay{
		name:    sc.name,
		s:       s,
		rest:    newREST(s),
		m:       newMatcher(),
		ctx:     ctx,
		events:  map[int][]*transcriptLine{},
		paired:  map[int]int{},
		conns:   map[int]*eventSocket{},
		open:    map[int]bool{},
		parties: map[string]*Party{},
		ids:     map[string]bool{},
	}
	defer func() {
		for n := range r.open {
			r.conns[n].close()
		}
	}()
	for _, l := range lines {
		if l.Dir == "event" {
			conn := max(l.Conn, 1)
			r.events[conn] = append(r.events[conn], l)
			collectIDs(l.ev, r.ids)
		}
		if len(l.Response) > 0 {
			var v any
			if json.Unmarshal(l.Response, &v) == nil {
				collectIDs(v, r.ids)
			}
		}
	}
	actions := plan(lines)
	if !slices.ContainsFunc(actions, func(a *action) bool { return a.kind == actOpen && a.line.Conn <= 1 }) {
		// The socket the recorder held for the whole scenario.
		if err := r.openSocket(1, "app=hotline&api_key=hotline:hotline"); err != nil {
			return nil, err
		}
	}
	for _, a := range actions {
		if h := sc.before[a.line.n]; h != nil {
			if err := h(r, a); err != nil {
				return r.m.errs, fmt.Errorf("before line %d: %w", a.line.n, err)
			}
		}
		if err := r.awaitBefore(a); err != nil {
			return r.m.errs, fmt.Errorf("before line %d: %w", a.line.n, err)
		}
		if err := r.do(a); err != nil {
			return r.m.errs, fmt.Errorf("line %d: %w", a.line.n, err)
		}
	}
	if err := r.finish(); err != nil {
		return r.m.errs, err
	}
	return r.m.errs, nil
}

// plan orders the REST lines by the time they were sent and places the
// far-end actions at the events they cause.
func plan(lines []*transcriptLine) []*action {
	var actions []*action
	deletedAt := map[string]int{} // channel id → when a successful DELETE was sent
	for _, l := range lines {
		if l.Dir == "rest" && l.Method == "DELETE" && l.Status == http.StatusNoContent && strings.HasPrefix(l.Path, "/ari/channels/") {
			id := strings.TrimPrefix(l.Path, "/ari/channels/")
			id, _, _ = strings.Cut(id, "?")
			deletedAt[id] = l.TSentMs
		}
	}
	hungUp := map[string]bool{}
	for _, l := range lines {
		switch l.Dir {
		case "rest":
			actions = append(actions, &action{kind: actREST, at: l.TSentMs, line: l})
		case "ws":
			kind := actOpen
			if l.Action == "close" {
				kind = actClose
			}
			actions = append(actions, &action{kind: kind, at: l.TMs, line: l})
		case "event":
			dp, _ := l.evChannel()["dialplan"].(map[string]any)
			id := l.evChannelID()
			switch typ, _ := l.ev["variable"].(string); {
			case l.evType() == "StasisStart" && dp["context"] == "from-trunk" && dp["priority"] == 2.0:
				actions = append(actions, &action{kind: actInbound, at: l.TMs, line: l})
			case l.evType() == "ChannelDtmfReceived":
				actions = append(actions, &action{kind: actPress, at: l.TMs, line: l})
			case typ == "RTPAUDIOQOS" && !hungUp[id]:
				if sent, ok := deletedAt[id]; !ok || sent > l.TMs {
					actions = append(actions, &action{kind: actHangup, at: l.TMs, line: l})
				}
				hungUp[id] = true
			}
		}
	}
	slices.SortStableFunc(actions, func(a, b *action) int {
		if a.at != b.at {
			return a.at - b.at
		}
		return a.line.n - b.line.n
	})
	return actions
}

// collectIDs gathers the ids of channels, bridges and playbacks.
func collectIDs(v any, ids map[string]bool) {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if s, ok := x.(string); ok && k == "id" {
				ids[s] = true
			}
			collectIDs(x, ids)
		}
	case []any:
		for _, x := range t {
			collectIDs(x, ids)
		}
	}
}

// awaitBefore waits for every event recorded before action a, and
// compares them.
func (r *replay) awaitBefore(a *action) error {
	for conn, evs := range r.events {
		need := 0
		for _, ev := range evs {
			if ev.TMs > a.at || (ev.TMs == a.at && a.causes(ev)) {
				break
			}
			need++
		}
		if err := r.pairUpTo(conn, need); err != nil {
			return err
		}
	}
	return nil
}

// pairUpTo compares the first n events of a socket.
func (r *replay) pairUpTo(conn, n int) error {
	for r.paired[conn] < n {
		c := r.conns[conn]
		if c == nil {
			return fmt.Errorf("socket %d was never opened", conn)
		}
		i := r.paired[conn]
		if err := r.awaitFrames(c, i+1); err != nil {
			rec := r.events[conn][i]
			return fmt.Errorf("socket %d: waiting for event %d (line %d, %s): %w", conn, i+1, rec.n, rec.evType(), err)
		}
		r.compareEvent(conn, i, c.frame(i))
		r.paired[conn]++
	}
	return nil
}

// awaitFrames waits until socket c has n frames, or until the double is
// idle (no task pending, everything written) and c has read all it was
// sent: then no more will come, and waiting longer is pointless.
func (r *replay) awaitFrames(c *eventSocket, n int) error {
	ctx, cancel := context.WithCancel(r.ctx)
	counted := make(chan error, 1)
	idle := make(chan error, 1)
	go func() { counted <- c.count(ctx, n) }()
	go func() { idle <- r.s.waitIdle(ctx) }()
	var err error
	var quiet bool
	select {
	case err = <-counted:
		cancel()
		<-idle
	case err = <-idle:
		quiet = err == nil
		cancel()
		<-counted
	}
	if !quiet {
		return err
	}
	if err := c.drain(r.ctx, r.s); err != nil {
		return err
	}
	if have := len(c.received()); have < n {
		return fmt.Errorf("the double sent %d events and has nothing more to send", have)
	}
	return nil
}

func (r *replay) compareEvent(conn, i int, obs []byte) {
	rec := r.events[conn][i]
	where := fmt.Sprintf("%s socket %d event %d (line %d, %s)", r.name, conn, i+1, rec.n, rec.evType())
	var o map[string]any
	if json.Unmarshal(obs, &o) == nil && o["type"] != rec.evType() {
		r.m.errorf("%s: got %v", where, o["type"])
		return
	}
	r.m.compareJSON(where, rec.Body, obs)
}

// idToken finds the words of a path that may be ids.
var idToken = regexp.MustCompile(`[^/?&=,:]+`)

// mapPath turns the recorded ids in a path into the double's, first
// waiting for the events that introduce ids not seen yet.
func (r *replay) mapPath(path string) (string, error) {
	for _, tok := range idToken.FindAllString(path, -1) {
		for r.ids[tok] && r.m.ids[tok] == "" {
			if err := r.pairNext(); err != nil {
				return "", fmt.Errorf("id %s: %w", tok, err)
			}
		}
	}
	return idToken.ReplaceAllStringFunc(path, func(tok string) string {
		if o, ok := r.m.ids[tok]; ok {
			return o
		}
		return tok
	}), nil
}

// pairNext compares the earliest recorded event not compared yet.
func (r *replay) pairNext() error {
	best := -1
	var at *transcriptLine
	for conn, evs := range r.events {
		if i := r.paired[conn]; i < len(evs) && (at == nil || evs[i].n < at.n) {
			best, at = conn, evs[i]
		}
	}
	if best < 0 {
		return fmt.Errorf("no recorded event is left")
	}
	return r.pairUpTo(best, r.paired[best]+1)
}

func (r *replay) do(a *action) error {
	l := a.line
	switch a.kind {
	case actREST:
		if l.Websocket != "" {
			return r.handshake(l)
		}
		return r.restCall(a)
	case actOpen:
		_, query, _ := strings.Cut(l.Path, "?")
		return r.openSocket(l.Conn, query)
	case actClose:
		return r.closeSocket(l.Conn)
	case actInbound:
		ch := l.evChannel()
		caller, _ := ch["caller"].(map[string]any)
		dp, _ := ch["dialplan"].(map[string]any)
		exten, _ := dp["exten"].(string)
		p, err := r.s.Inbound(r.ctx, "hotline", fmt.Sprintf("%q <%s>", caller["name"], caller["number"]), exten)
		if err != nil {
			return err
		}
		r.m.id(fmt.Sprintf("%s line %d (the caller)", r.name, l.n), "channel", l.evChannelID(), p.ID())
		r.parties[p.ID()] = p
		return nil
	case actPress, actHangup:
		p := r.parties[r.m.ids[l.evChannelID()]]
		if p == nil {
			return fmt.Errorf("no far end for channel %s", l.evChannelID())
		}
		if a.kind == actHangup {
			p.Hangup()
			return nil
		}
		digit, _ := l.ev["digit"].(string)
		p.Press([]rune(digit)[0])
	}
	return nil
}

func (r *replay) openSocket(conn int, query string) error {
	c, _, err := dialEvents(r.ctx, r.s, query)
	if err != nil {
		return fmt.Errorf("socket %d: %w", conn, err)
	}
	r.conns[conn] = c
	r.open[conn] = true
	return nil
}

// closeSocket closes a socket with 1000 once the double has written
// everything queued on it, and waits until the double has let it go.
func (r *replay) closeSocket(conn int) error {
	if !r.open[conn] {
		return fmt.Errorf("socket %d is not open", conn)
	}
	if err := r.s.waitFlushed(r.ctx); err != nil {
		return err
	}
	if err := r.conns[conn].drain(r.ctx, r.s); err != nil {
		return fmt.Errorf("socket %d: %w", conn, err)
	}
	r.conns[conn].close()
	delete(r.open, conn)
	return r.s.waitSockets(r.ctx, len(r.open))
}

func (r *replay) restCall(a *action) error {
	l := a.line
	path, err := r.mapPath(l.Path)
	if err != nil {
		return err
	}
	var body []byte
	if l.RequestBodyText != nil {
		body = []byte(*l.RequestBodyText)
	}
	res, err := r.rest.send(l.Method, path, body, a.auth)
	if err != nil {
		return err
	}
	r.compareReply(l, res)
	return nil
}

// handshake replays a recorded websocket handshake: one that opened a
// socket, or one that failed with an HTTP error.
func (r *replay) handshake(l *transcriptLine) error {
	_, query, _ := strings.Cut(l.Path, "?")
	if l.Websocket == "open" {
		return r.openSocket(l.Conn, query)
	}
	c, resp, err := dialEvents(r.ctx, r.s, query)
	if err == nil {
		c.close()
		r.m.errorf("%s line %d: the handshake succeeded, want %d", r.name, l.n, l.Status)
		return nil
	}
	if resp == nil {
		return fmt.Errorf("handshake: %w", err)
	}
	b, _ := io.ReadAll(resp.Body)
	r.compareReply(l, restResult{status: resp.StatusCode, header: resp.Header, body: b})
	return nil
}

// compareReply compares a REST reply with the recorded one.
func (r *replay) compareReply(l *transcriptLine, res restResult) {
	where := fmt.Sprintf("%s line %d (%s %s)", r.name, l.n, l.Method, l.Path)
	if res.status != l.Status {
		r.m.errorf("%s: status %d, want %d (%s)", where, res.status, l.Status, res.body)
	}
	switch {
	case l.ResponseText != nil:
		if string(res.body) != *l.ResponseText {
			r.m.errorf("%s: body %q, want %q", where, res.body, *l.ResponseText)
		}
	case len(l.Response) == 0 || string(l.Response) == "null":
		if len(bytes.TrimSpace(res.body)) != 0 {
			r.m.errorf("%s: body %q, want none", where, res.body)
		}
	default:
		r.m.compareJSON(where, l.Response, res.body)
	}
	if l.Headers == nil {
		return
	}
	for _, h := range []string{"Content-Type", "Www-Authenticate", "Allow", "Location"} {
		want, recorded := l.Headers[h]
		got := res.header.Get(h)
		switch {
		case recorded != (got != ""):
			r.m.errorf("%s: header %s is %q, want %q", where, h, got, want)
		case h == "Location" && recorded:
			rid, _ := strings.CutPrefix(want, "/ari/playbacks/")
			oid, ok := strings.CutPrefix(got, "/ari/playbacks/")
			if !ok {
				r.m.errorf("%s: Location %q, want %q", where, got, want)
				continue
			}
			r.m.id(where+" Location", "playback", rid, oid)
		case got != want:
			r.m.errorf("%s: header %s is %q, want %q", where, h, got, want)
		}
	}
}

// finish waits until the double has nothing more to send, closes the
// sockets, compares the rest of each stream, and checks that nothing is
// left behind.
func (r *replay) finish() error {
	if err := r.s.waitIdle(r.ctx); err != nil {
		return fmt.Errorf("the double never went idle: %w", err)
	}
	for n := range r.open {
		if err := r.conns[n].drain(r.ctx, r.s); err != nil {
			return fmt.Errorf("socket %d: %w", n, err)
		}
		r.conns[n].close()
		delete(r.open, n)
	}
	for conn, evs := range r.events {
		c := r.conns[conn]
		got := c.received()
		for i := r.paired[conn]; i < min(len(evs), len(got)); i++ {
			r.compareEvent(conn, i, got[i])
		}
		r.paired[conn] = len(evs)
		if len(got) != len(evs) {
			r.m.errorf("%s socket %d: %d events, the recording has %d; %s", r.name, conn, len(got), len(evs), streamDiff(evs, got))
		}
	}
	for conn, c := range r.conns {
		if len(r.events[conn]) == 0 && len(c.received()) > 0 {
			r.m.errorf("%s socket %d: %d events, the recording has none: %s", r.name, conn, len(c.received()), c.received()[0])
		}
	}
	if ids := r.s.Channels(); len(ids) > 0 {
		r.m.errorf("%s: channels left: %v", r.name, ids)
	}
	if ids := r.s.Bridges(); len(ids) > 0 {
		r.m.errorf("%s: bridges left: %v", r.name, ids)
	}
	if ids := r.s.Playbacks(); len(ids) > 0 {
		r.m.errorf("%s: playbacks left: %v", r.name, ids)
	}
	return nil
}

// streamDiff names the event types of both streams past their common
// length.
func streamDiff(rec []*transcriptLine, got [][]byte) string {
	var want, have []string
	for i := min(len(rec), len(got)); i < len(rec); i++ {
		want = append(want, rec[i].evType())
	}
	for i := min(len(rec), len(got)); i < len(got); i++ {
		var o map[string]any
		_ = json.Unmarshal(got[i], &o)
		have = append(have, fmt.Sprint(o["type"]))
	}
	return fmt.Sprintf("missing %v, extra %v", want, have)
}
