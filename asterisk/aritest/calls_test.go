package aritest

import (
	"fmt"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// expectSeq reads events and checks their types in order.
func (c *eventSocket) expectSeq(t *testing.T, types ...string) []map[string]any {
	t.Helper()
	var evs []map[string]any
	for _, typ := range types {
		evs = append(evs, c.expect(t, typ))
	}
	return evs
}

// notesOf collects a far end's notes once its channel is gone.
func notesOf(t *testing.T, p *Party) []Note {
	t.Helper()
	select {
	case <-p.Done():
	case <-testContext(t).Done():
		t.Fatalf("channel %s is still there", p.ID())
	}
	var notes []Note
	for n := range p.Notes() {
		notes = append(notes, n)
	}
	return notes
}

func kinds(notes []Note) string {
	var s []string
	for _, n := range notes {
		s = append(s, n.Kind.String())
	}
	return strings.Join(s, ", ")
}

func originated(t *testing.T, s *Server) *Party {
	t.Helper()
	select {
	case p := <-s.Originated():
		return p
	case <-testContext(t).Done():
		t.Fatal("no originated channel answered")
	}
	return nil
}

func TestOriginateToPhones(t *testing.T) {
	s := Start(t, Options{Speed: 20})
	rc := newREST(s)
	ws := openEvents(t, s, "hotline")
	s.SetEndpoint("PJSIP/1001", Phone{AnswerAfter: time.Second, Context: "agents"})

	// The body as CyCoreSystems/ari sends it: JSON, with variables.
	ch := rc.call(t, http.MethodPost, "/ari/channels", map[string]any{
		"endpoint": "PJSIP/1001", "app": "hotline", "appArgs": "agent,7", "callerId": `"Hotline" <12345>`,
		"timeout": 30, "channelId": "agent-1", "variables": map[string]string{"APPEAL": "A1"},
	}).want(t, http.StatusOK).json(t)
	if ch["id"] != "agent-1" || ch["state"] != "Down" || !regexp.MustCompile(`^PJSIP/1001-[0-9a-f]{8}$`).MatchString(ch["name"].(string)) {
		t.Errorf("originated channel %s", show(ch))
	}
	if got := show(ch["caller"]); got != `{"name":"Hotline","number":"12345"}` {
		t.Errorf("caller %s", got)
	}
	if got, want := show(ch["dialplan"]), show(map[string]any{
		"context": "agents", "exten": "s", "priority": 1, "app_name": "AppDial2", "app_data": "(Outgoing Line)",
	}); got != want {
		t.Errorf("dialplan %s, want %s", got, want)
	}
	evs := ws.expectSeq(t, "Dial", "ChannelStateChange", "Dial", "ChannelStateChange", "Dial", "ChannelVarset", "StasisStart")
	for i, status := range map[int]string{0: "", 2: "RINGING", 4: "ANSWER"} {
		if evs[i]["dialstatus"] != status || evs[i]["dialstring"] != "1001" {
			t.Errorf("Dial %d: %s", i, show(evs[i]))
		}
	}
	if get(evs[1], "channel", "state") != "Ringing" || get(evs[3], "channel", "state") != "Up" {
		t.Errorf("states %v, %v", get(evs[1], "channel", "state"), get(evs[3], "channel", "state"))
	}
	if got := show(evs[6]["args"]); got != `["agent","7"]` || get(evs[6], "channel", "dialplan", "app_data") != "hotline,agent,7" {
		t.Errorf("StasisStart args %s, app_data %v", got, get(evs[6], "channel", "dialplan", "app_data"))
	}
	agent := originated(t, s)
	if agent.ID() != "agent-1" {
		t.Errorf("originated %s", agent.ID())
	}
	if v := rc.call(t, http.MethodGet, "/ari/channels/agent-1/variable?variable=APPEAL", nil).want(t, http.StatusOK).json(t); v["value"] != "A1" {
		t.Errorf("APPEAL = %v", v["value"])
	}
	rc.call(t, http.MethodPost, "/ari/channels?endpoint=PJSIP/1001&app=hotline&channelId=agent-1", nil).want(t, http.StatusConflict)

	// The agent hangs up (BYE): an originated channel stays subscribed and
	// ends with STASISSTATUS and ChannelDestroyed.
	agent.Hangup()
	evs = ws.expectSeq(t, "ChannelVarset", "ChannelVarset", "ChannelVarset", "ChannelVarset", "ChannelVarset",
		"ChannelHangupRequest", "StasisEnd", "ChannelVarset", "ChannelDestroyed")
	if _, has := evs[5]["cause"]; has {
		t.Errorf("a BYE's hang-up request has a cause: %s", show(evs[5]))
	}
	if evs[7]["variable"] != "STASISSTATUS" || evs[7]["value"] != "SUCCESS" {
		t.Errorf("varset %s", show(evs[7]))
	}
	if evs[8]["cause"] != 16.0 || evs[8]["cause_txt"] != "Normal Clearing" || get(evs[8], "channel", "dialplan", "app_name") != "AppDial2" {
		t.Errorf("destroyed %s", show(evs[8]))
	}
	if n := notesOf(t, agent); len(n) != 0 {
		t.Errorf("the agent who hung up heard %s", kinds(n))
	}

	// 486 Busy Here.
	s.SetEndpoint("PJSIP/1002", Phone{AnswerAfter: 500 * time.Millisecond, Busy: true})
	rc.call(t, http.MethodPost, "/ari/channels?endpoint=PJSIP/1002&app=hotline", nil).want(t, http.StatusOK)
	evs = ws.expectSeq(t, "Dial", "ChannelHangupRequest", "Dial", "ChannelDestroyed")
	if evs[1]["cause"] != 17.0 || evs[1]["tech_cause"] != 486.0 || evs[2]["dialstatus"] != "BUSY" ||
		evs[3]["cause"] != 17.0 || evs[3]["cause_txt"] != "User busy" || evs[3]["tech_cause"] != 486.0 {
		t.Errorf("busy: %s", show(evs))
	}

	// An agent who declines: the phone rings, then 486. The channel has
	// the endpoint's caller name with originate's number, and originate's
	// caller id as its connected line (as on a real Asterisk 22).
	s.SetEndpoint("PJSIP/1004", Phone{AnswerAfter: 100 * time.Millisecond, Declines: true, CallerID: `"Agent 1004" <1004>`})
	ch = rc.call(t, http.MethodPost, "/ari/channels?endpoint=PJSIP/1004&app=hotline&callerId=13800000000", nil).want(t, http.StatusOK).json(t)
	if got := show(ch["caller"]) + show(ch["connected"]); got != `{"name":"Agent 1004","number":"13800000000"}{"name":"","number":"13800000000"}` {
		t.Errorf("caller and connected line %s", got)
	}
	evs = ws.expectSeq(t, "Dial", "ChannelStateChange", "Dial", "ChannelHangupRequest", "Dial", "ChannelDestroyed")
	if evs[2]["dialstatus"] != "RINGING" || evs[3]["cause"] != 17.0 || evs[3]["tech_cause"] != 486.0 ||
		evs[4]["dialstatus"] != "BUSY" || evs[5]["cause"] != 17.0 || evs[5]["tech_cause"] != 486.0 {
		t.Errorf("declined: %s", show(evs))
	}
	ch = rc.call(t, http.MethodPost, "/ari/channels?endpoint=PJSIP/1004&app=hotline", nil).want(t, http.StatusOK).json(t)
	if got := show(ch["caller"]) + show(ch["connected"]); got != `{"name":"Agent 1004","number":"1004"}{"name":"","number":""}` {
		t.Errorf("without callerId: caller and connected line %s", got)
	}
	ws.expectSeq(t, "Dial", "ChannelStateChange", "Dial", "ChannelHangupRequest", "Dial", "ChannelDestroyed")

	// No answer: only ChannelDestroyed when the timeout expires.
	s.SetEndpoint("PJSIP/1003", Phone{NoAnswer: true})
	rc.call(t, http.MethodPost, "/ari/channels?endpoint=PJSIP/1003&app=hotline&timeout=2", nil).want(t, http.StatusOK)
	evs = ws.expectSeq(t, "Dial", "ChannelStateChange", "Dial", "ChannelDestroyed")
	if evs[3]["cause"] != 19.0 || evs[3]["cause_txt"] != "User alerting, no answer" || get(evs[3], "channel", "state") != "Ringing" {
		t.Errorf("no answer: %s", show(evs[3]))
	}

	// Hung up by the application while it still rings, as a real
	// Asterisk 22 reports it: the Dial status and the SIP status of the
	// CANCEL follow the cause.
	for _, c := range []struct {
		reason string
		status string
		cause  float64
		tech   any
	}{
		{"normal", "NOANSWER", 16, nil},
		{"busy", "BUSY", 17, 486.0},
		{"congestion", "CONGESTION", 34, 503.0},
	} {
		id := rc.call(t, http.MethodPost, "/ari/channels?endpoint=PJSIP/1003&app=hotline", nil).want(t, http.StatusOK).json(t)["id"].(string)
		ws.expectSeq(t, "Dial", "ChannelStateChange", "Dial")
		rc.call(t, http.MethodDelete, "/ari/channels/"+id+"?reason="+c.reason, nil).want(t, http.StatusNoContent)
		evs = ws.expectSeq(t, "ChannelHangupRequest", "Dial", "ChannelDestroyed")
		if evs[0]["cause"] != 32.0 || evs[0]["soft"] != true || evs[1]["dialstatus"] != c.status ||
			evs[2]["cause"] != c.cause || evs[2]["tech_cause"] != c.tech {
			t.Errorf("cancelled with %s: %s", c.reason, show(evs))
		}
	}

	// An endpoint nobody set cannot be allocated.
	res := rc.call(t, http.MethodPost, "/ari/channels?endpoint=PJSIP/9999&app=hotline", nil).want(t, http.StatusInternalServerError)
	if string(res.body) != `{"error":"Allocation failed"}` {
		t.Errorf("body %s", res.body)
	}
	if got := s.Channels(); len(got) != 0 {
		t.Errorf("channels left: %v", got)
	}
}

// An originated channel whose application has no socket when it answers
// fails Stasis() and hangs up unseen.
func TestOriginateWithoutSocket(t *testing.T) {
	s := Start(t, Options{Speed: 100})
	rc := newREST(s)
	s.SetEndpoint("PJSIP/1001", Phone{})
	rc.call(t, http.MethodPost, "/ari/channels?endpoint=PJSIP/1001&app=hotline", nil).want(t, http.StatusOK)
	if err := s.waitIdle(testContext(t)); err != nil {
		t.Fatal(err)
	}
	if got := s.Channels(); len(got) != 0 {
		t.Errorf("channels left: %v", got)
	}
	select {
	case p := <-s.Originated():
		t.Errorf("%s was handed over without entering Stasis", p.ID())
	default:
	}
}

func TestLocalChannel(t *testing.T) {
	s := Start(t, Options{Speed: 10})
	rc := newREST(s)
	ws := openEvents(t, s, "hotline")
	one := rc.call(t, http.MethodPost, "/ari/channels?endpoint=Local/s@local-test&app=hotline&appArgs=agent", nil).want(t, http.StatusOK).json(t)
	evs := ws.expectSeq(t, "ChannelDialplan", "Dial", "ChannelStateChange", "ChannelStateChange", "Dial",
		"ChannelVarset", "StasisStart", "ChannelDialplan")
	two := evs[0]["channel"].(map[string]any)

	// The halves have consecutive ids and one name counter.
	id1, id2 := one["id"].(string), two["id"].(string)
	secs1, n1, _ := strings.Cut(id1, ".")
	secs2, n2, _ := strings.Cut(id2, ".")
	a, _ := strconv.Atoi(n1)
	b, _ := strconv.Atoi(n2)
	if secs1 != secs2 || b != a+1 {
		t.Errorf("ids %s and %s are not consecutive", id1, id2)
	}
	name1, name2 := one["name"].(string), two["name"].(string)
	if !regexp.MustCompile(`^Local/s@local-test-[0-9a-f]{8};1$`).MatchString(name1) || name2 != strings.TrimSuffix(name1, "1")+"2" {
		t.Errorf("names %s and %s", name1, name2)
	}
	if evs[7]["dialplan_app"] != "Wait" || get(evs[7], "channel", "dialplan", "priority") != 2.0 {
		t.Errorf("the ;2 half did not go on to Wait: %s", show(evs[7]))
	}
	// The ;2 half is not in Stasis.
	rc.call(t, http.MethodPost, "/ari/channels/"+id2+"/answer", nil).want(t, http.StatusConflict)

	// The dialplan side ends: both halves go.
	agent := originated(t, s)
	if agent.ID() != id1 {
		t.Errorf("originated %s, want %s", agent.ID(), id1)
	}
	agent.Hangup()
	evs = ws.expectSeq(t, "ChannelHangupRequest", "StasisEnd", "ChannelVarset", "ChannelDestroyed", "ChannelDestroyed")
	if get(evs[3], "channel", "id") != id2 || get(evs[4], "channel", "id") != id1 {
		t.Errorf("destroyed %v then %v", get(evs[3], "channel", "id"), get(evs[4], "channel", "id"))
	}
	if got := s.Channels(); len(got) != 0 {
		t.Errorf("channels left: %v", got)
	}

	// The application hangs up the ;2 half with a cause: the ;1 half,
	// in Stasis, is hung up with that cause, as on a real Asterisk 22.
	one = rc.call(t, http.MethodPost, "/ari/channels?endpoint=Local/s@local-test&app=hotline", nil).want(t, http.StatusOK).json(t)
	evs = ws.expectSeq(t, "ChannelDialplan", "Dial", "ChannelStateChange", "ChannelStateChange", "Dial",
		"ChannelVarset", "StasisStart", "ChannelDialplan")
	id1, id2 = one["id"].(string), get(evs[0], "channel", "id").(string)
	rc.call(t, http.MethodDelete, "/ari/channels/"+id2+"?reason=congestion", nil).want(t, http.StatusNoContent)
	evs = ws.expectSeq(t, "ChannelHangupRequest", "ChannelHangupRequest", "StasisEnd", "ChannelVarset", "ChannelDestroyed", "ChannelDestroyed")
	if get(evs[0], "channel", "id") != id2 || evs[0]["cause"] != 32.0 || evs[0]["soft"] != true {
		t.Errorf("the ;2 half's hang-up request %s", show(evs[0]))
	}
	if get(evs[1], "channel", "id") != id1 || evs[1]["cause"] != 34.0 || evs[1]["soft"] != nil {
		t.Errorf("the ;1 half's hang-up request %s, want cause 34", show(evs[1]))
	}
	for _, ev := range evs[4:] {
		if ev["cause"] != 34.0 {
			t.Errorf("destroyed %s, want cause 34", show(ev))
		}
	}
}

func TestPlaybacks(t *testing.T) {
	sound := func(name, _ string) (time.Duration, bool) {
		switch name {
		case "missing":
			return 0, false
		case "long":
			return time.Hour, true
		}
		return time.Second, true
	}
	s := Start(t, Options{Speed: 50, Sound: sound})
	rc := newREST(s)
	ws := openEvents(t, s, "hotline")
	caller := inbound(t, s)
	ws.expect(t, "StasisStart")
	chans := "/ari/channels/" + caller.ID()
	rc.call(t, http.MethodPost, chans+"/answer", nil).want(t, http.StatusNoContent)
	ws.expect(t, "ChannelStateChange")

	// A list of media: one playback, Continuing between the items.
	res := rc.call(t, http.MethodPost, chans+"/play?media=sound:a,sound:b&lang=zh", nil).want(t, http.StatusCreated)
	pb := res.json(t)
	if pb["media_uri"] != "sound:a" || pb["next_media_uri"] != "sound:b" || pb["state"] != "queued" || pb["language"] != "zh" {
		t.Errorf("playback %s", show(pb))
	}
	if loc := res.header.Get("Location"); loc != "/ari/playbacks/"+pb["id"].(string) {
		t.Errorf("Location %s", loc)
	}
	evs := ws.expectSeq(t, "PlaybackStarted", "PlaybackContinuing", "PlaybackStarted", "PlaybackFinished")
	if get(evs[1], "playback", "state") != "continuing" || get(evs[2], "playback", "media_uri") != "sound:b" ||
		get(evs[3], "playback", "state") != "done" || get(evs[3], "playback", "next_media_uri") != nil {
		t.Errorf("list: %s", show(evs))
	}

	// Playbacks queue; one stopped while queued finishes on its turn
	// without starting.
	rc.call(t, http.MethodPost, chans+"/play/first?media=sound:long", nil).want(t, http.StatusCreated)
	rc.call(t, http.MethodPost, chans+"/play/second?media=sound:a", nil).want(t, http.StatusCreated)
	ws.expect(t, "PlaybackStarted")
	if st := rc.call(t, http.MethodGet, "/ari/playbacks/second", nil).json(t)["state"]; st != "queued" {
		t.Errorf("second is %v", st)
	}
	rc.call(t, http.MethodPost, "/ari/playbacks/second/control?operation=pause", nil).want(t, http.StatusConflict)
	rc.call(t, http.MethodDelete, "/ari/playbacks/second", nil).want(t, http.StatusNoContent)

	// Pause publishes nothing; unpause starts again.
	rc.call(t, http.MethodPost, "/ari/playbacks/first/control?operation=pause", nil).want(t, http.StatusNoContent)
	if st := rc.call(t, http.MethodGet, "/ari/playbacks/first", nil).json(t)["state"]; st != "paused" {
		t.Errorf("first is %v", st)
	}
	rc.call(t, http.MethodPost, "/ari/playbacks/first/control?operation=unpause", nil).want(t, http.StatusNoContent)
	rc.call(t, http.MethodPost, "/ari/playbacks/first/control?operation=fly", nil).want(t, http.StatusBadRequest)
	rc.call(t, http.MethodPost, "/ari/playbacks/nothing/control?operation=pause", nil).want(t, http.StatusNotFound)
	rc.call(t, http.MethodDelete, "/ari/playbacks/first", nil).want(t, http.StatusNoContent)
	evs = ws.expectSeq(t, "PlaybackStarted", "PlaybackFinished", "PlaybackFinished")
	if get(evs[1], "playback", "id") != "first" || get(evs[2], "playback", "id") != "second" || get(evs[2], "playback", "state") != "done" {
		t.Errorf("stopping: %s", show(evs))
	}

	// A missing sound fails and the list goes on; an unknown scheme
	// starts and is gone without finishing.
	rc.call(t, http.MethodPost, chans+"/play?media=sound:missing,sound:a", nil).want(t, http.StatusCreated)
	evs = ws.expectSeq(t, "PlaybackStarted", "PlaybackFinished", "PlaybackStarted", "PlaybackFinished")
	if get(evs[1], "playback", "state") != "failed" || get(evs[3], "playback", "state") != "done" {
		t.Errorf("missing sound: %s", show(evs))
	}
	gone := rc.call(t, http.MethodPost, chans+"/play?media=nosuchscheme:x", nil).want(t, http.StatusCreated).json(t)["id"].(string)
	rc.call(t, http.MethodGet, "/ari/playbacks/"+gone, nil).want(t, http.StatusNotFound)
	rc.call(t, http.MethodPost, chans+"/play/last?media=sound:long", nil).want(t, http.StatusCreated)
	evs = ws.expectSeq(t, "PlaybackStarted", "PlaybackStarted")
	if get(evs[0], "playback", "id") != gone || get(evs[1], "playback", "id") != "last" {
		t.Errorf("unknown scheme: %s", show(evs))
	}

	// Hanging up fails the playback that is playing.
	rc.call(t, http.MethodDelete, chans, nil).want(t, http.StatusNoContent)
	evs = ws.expectSeq(t, "ChannelVarset", "ChannelVarset", "ChannelVarset", "ChannelVarset", "ChannelVarset",
		"ChannelHangupRequest", "PlaybackFinished", "StasisEnd")
	if get(evs[6], "playback", "state") != "failed" {
		t.Errorf("playback on hang-up: %s", show(evs[6]))
	}
	if got := s.Playbacks(); len(got) != 0 {
		t.Errorf("playbacks left: %v", got)
	}

	// The list, the stopped one (unpausing and the cancelled one are not
	// heard as starts), the missing sound and the next, the unknown scheme,
	// and the one the hang-up cut.
	want := "answered, playback started, playback started, playback finished, " +
		"playback started, playback finished, " +
		"playback started, playback finished, playback started, playback finished, " +
		"playback started, playback started, playback finished, hung up"
	notes := notesOf(t, caller)
	if got := kinds(notes); got != want {
		t.Errorf("the caller heard:\n%s\nwant:\n%s", got, want)
	}
	if n := notes[1]; n.MediaURI != "sound:a" || n.Language != "zh" || n.PlaybackID != pb["id"] {
		t.Errorf("first prompt note %+v", n)
	}
	if n := notes[len(notes)-1]; n.Cause != 16 {
		t.Errorf("hung up with cause %d", n.Cause)
	}
}

// bridgeOf makes a bridge of the type and adds a caller and an agent.
func bridgeOf(t *testing.T, s *Server, rc *restClient, ws *eventSocket, typ string) (caller, agent *Party, bridgeID string) {
	t.Helper()
	caller = inbound(t, s)
	ws.expect(t, "StasisStart")
	rc.call(t, http.MethodPost, "/ari/channels/"+caller.ID()+"/answer", nil).want(t, http.StatusNoContent)
	ws.expect(t, "ChannelStateChange")
	s.SetEndpoint("PJSIP/1001", Phone{})
	rc.call(t, http.MethodPost, "/ari/channels?endpoint=PJSIP/1001&app=hotline&callerId=12345", nil).want(t, http.StatusOK)
	ws.expectSeq(t, "Dial", "ChannelStateChange", "Dial", "ChannelStateChange", "Dial", "ChannelVarset", "StasisStart")
	agent = originated(t, s)
	bridgeID = rc.call(t, http.MethodPost, "/ari/bridges?type="+typ, nil).want(t, http.StatusOK).json(t)["id"].(string)
	rc.call(t, http.MethodPost, "/ari/bridges/"+bridgeID+"/addChannel?channel="+caller.ID()+","+agent.ID(), nil).want(t, http.StatusNoContent)
	return caller, agent, bridgeID
}

// untilMark reads events up to a ChannelVarset of MARK, which the test
// sets after what it checks, and returns the types before it.
func untilMark(t *testing.T, s *Server, rc *restClient, ws *eventSocket, ch string) []string {
	t.Helper()
	var types []string
	for _, ev := range eventsUntilMark(t, rc, ws, ch) {
		types = append(types, fmt.Sprint(ev["type"]))
	}
	return types
}

// eventsUntilMark is untilMark returning the events.
func eventsUntilMark(t *testing.T, rc *restClient, ws *eventSocket, ch string) []map[string]any {
	t.Helper()
	rc.call(t, http.MethodPost, "/ari/channels/"+ch+"/variable?variable=MARK&value=1", nil).want(t, http.StatusNoContent)
	var evs []map[string]any
	for {
		ev := ws.nextEvent(t)
		if ev["type"] == "ChannelVarset" && ev["variable"] == "MARK" {
			return evs
		}
		evs = append(evs, ev)
	}
}

func TestTwoPartyBridge(t *testing.T) {
	s := Start(t, Options{Speed: 50})
	rc := newREST(s)
	ws := openEvents(t, s, "hotline")
	caller, agent, bridgeID := bridgeOf(t, s, rc, ws, "mixing,dtmf_events")

	// Two PJSIP channels: both peer variables on both, and the connected
	// line of each becomes the other's caller id.
	evs := ws.expectSeq(t, "ChannelEnteredBridge", "ChannelEnteredBridge",
		"ChannelVarset", "ChannelVarset", "ChannelVarset", "ChannelVarset", "ChannelConnectedLine", "ChannelConnectedLine")
	if got := show(get(evs[1], "bridge", "channels")); got != `["`+caller.ID()+`","`+agent.ID()+`"]` {
		t.Errorf("bridge channels %s", got)
	}
	var vars []string
	for _, ev := range evs[2:6] {
		vars = append(vars, fmt.Sprintf("%v.%v", get(ev, "channel", "id") == caller.ID(), ev["variable"]))
	}
	if got := strings.Join(vars, " "); got != "true.BRIDGEPEER true.BRIDGEPVTCALLID false.BRIDGEPEER false.BRIDGEPVTCALLID" {
		t.Errorf("peer variables %s", got)
	}
	if get(evs[6], "channel", "connected", "number") != "12345" || get(evs[7], "channel", "connected", "number") != "13800138000" {
		t.Errorf("connected lines %s", show(evs[6:]))
	}

	// dtmf_events: keys are reported, and passed to the other side.
	caller.Press('5')
	if types := untilMark(t, s, rc, ws, caller.ID()); !slices.Equal(types, []string{"ChannelDtmfReceived"}) {
		t.Errorf("events for a key: %v", types)
	}

	// The caller hangs up while bridged: each RTP statistic is left on
	// the caller and, suffixed BRIDGED, on the agent (as a real Asterisk
	// 22 does), then the caller leaves; the agent stays in the bridge.
	caller.Hangup()
	var got []string
	for _, ev := range eventsUntilMark(t, rc, ws, agent.ID()) {
		who := "caller"
		if get(ev, "channel", "id") == agent.ID() {
			who = "agent"
		}
		if ev["type"] == "ChannelVarset" {
			got = append(got, fmt.Sprintf("%s.%v", who, ev["variable"]))
		} else {
			got = append(got, fmt.Sprintf("%s.%v", who, ev["type"]))
		}
	}
	want := []string{
		"caller.RTPAUDIOQOS", "agent.RTPAUDIOQOSBRIDGED", "caller.RTPAUDIOQOSJITTER", "agent.RTPAUDIOQOSJITTERBRIDGED",
		"caller.RTPAUDIOQOSLOSS", "agent.RTPAUDIOQOSLOSSBRIDGED", "caller.RTPAUDIOQOSRTT", "agent.RTPAUDIOQOSRTTBRIDGED",
		"caller.RTPAUDIOQOSMES", "agent.RTPAUDIOQOSMESBRIDGED",
		"caller.ChannelHangupRequest", "caller.BRIDGEPEER", "caller.BRIDGEPVTCALLID", "caller.ChannelLeftBridge", "caller.StasisEnd",
	}
	if !slices.Equal(got, want) {
		t.Errorf("caller hang-up while bridged:\n got %v\nwant %v", got, want)
	}
	br := rc.call(t, http.MethodGet, "/ari/bridges/"+bridgeID, nil).want(t, http.StatusOK).json(t)
	if got := show(br["channels"]); got != `["`+agent.ID()+`"]` {
		t.Errorf("bridge channels after the caller left: %s", got)
	}
	var agentNotes []Note
	for len(agentNotes) == 0 || agentNotes[len(agentNotes)-1].Kind != NoteBridged || len(agentNotes[len(agentNotes)-1].With) != 0 {
		agentNotes = append(agentNotes, <-agent.Notes())
	}
	if got := kinds(agentNotes); got != "bridged, DTMF, bridged" {
		t.Errorf("the agent heard %s", got)
	}
	// The agent leaves too; the emptied bridge, when deleted, announces
	// its end to the application whose channels were in it.
	rc.call(t, http.MethodDelete, "/ari/channels/"+agent.ID(), nil).want(t, http.StatusNoContent)
	rc.call(t, http.MethodDelete, "/ari/bridges/"+bridgeID, nil).want(t, http.StatusNoContent)
	ws.expectSeq(t, "ChannelVarset", "ChannelVarset", "ChannelVarset", "ChannelVarset", "ChannelVarset",
		"ChannelHangupRequest", "ChannelVarset", "ChannelVarset", "ChannelLeftBridge", "StasisEnd",
		"ChannelVarset", "ChannelDestroyed", "BridgeDestroyed")
}

// Without dtmf_events two PJSIP channels are bridged natively: keys pass
// end to end and Asterisk raises no ChannelDtmfReceived.
func TestNativeBridgeHidesDTMF(t *testing.T) {
	s := Start(t, Options{Speed: 50})
	rc := newREST(s)
	ws := openEvents(t, s, "hotline")
	caller, agent, _ := bridgeOf(t, s, rc, ws, "mixing")
	untilMark(t, s, rc, ws, caller.ID())
	caller.Press('5')
	if types := untilMark(t, s, rc, ws, caller.ID()); len(types) != 0 {
		t.Errorf("events for a key in a native bridge: %v", types)
	}
	for n := range agent.Notes() {
		if n.Kind == NoteDTMF {
			if n.Digit != '5' {
				t.Errorf("the agent heard %c", n.Digit)
			}
			break
		}
	}
}

func TestMultipartyBridge(t *testing.T) {
	s := Start(t, Options{})
	rc := newREST(s)
	openEvents(t, s, "hotline")
	var ids []string
	for range 3 {
		ids = append(ids, inbound(t, s).ID())
	}
	b := rc.call(t, http.MethodPost, "/ari/bridges/conference?name=room", map[string]string{"type": "mixing"}).want(t, http.StatusOK).json(t)
	if b["id"] != "conference" || b["name"] != "room" || b["technology"] != "simple_bridge" {
		t.Errorf("bridge %s", show(b))
	}
	// The same id again returns the bridge; a type with it is refused.
	rc.call(t, http.MethodPost, "/ari/bridges/conference", nil).want(t, http.StatusOK)
	rc.call(t, http.MethodPost, "/ari/bridges/conference?type=holding", nil).want(t, http.StatusInternalServerError)
	rc.call(t, http.MethodPost, "/ari/bridges?bridgeId=conference", nil).want(t, http.StatusConflict)

	// In a JSON body a list parameter is an array; a string is one value,
	// commas and all (Asterisk's generated parse_body).
	rc.call(t, http.MethodPost, "/ari/bridges/conference/addChannel", map[string]string{"channel": ids[0] + "," + ids[1]}).want(t, http.StatusBadRequest)
	rc.call(t, http.MethodPost, "/ari/bridges/conference/addChannel", map[string][]string{"channel": ids}).want(t, http.StatusNoContent)
	b = rc.call(t, http.MethodGet, "/ari/bridges/conference", nil).json(t)
	if b["technology"] != "softmix" {
		t.Errorf("three members on %v", b["technology"])
	}
	peer := rc.call(t, http.MethodGet, "/ari/channels/"+ids[0]+"/variable?variable=BRIDGEPEER", nil).json(t)["value"].(string)
	if len(strings.Split(peer, ",")) != 2 {
		t.Errorf("BRIDGEPEER %q, want the two others", peer)
	}
	rc.call(t, http.MethodPost, "/ari/bridges/conference/removeChannel?channel="+ids[2], nil).want(t, http.StatusNoContent)
	rc.call(t, http.MethodPost, "/ari/bridges/conference/removeChannel?channel="+ids[2], nil).want(t, http.StatusUnprocessableEntity)
	if b = rc.call(t, http.MethodGet, "/ari/bridges/conference", nil).json(t); b["technology"] != "simple_bridge" {
		t.Errorf("two members on %v", b["technology"])
	}
	// A form body is read like the query.
	holding := rc.postForm(t, "/ari/bridges", "type=holding").want(t, http.StatusOK).json(t)
	if holding["bridge_type"] != "holding" || holding["technology"] != "holding_bridge" {
		t.Errorf("holding bridge %s", show(holding))
	}
}

func TestRouting(t *testing.T) {
	s := Start(t, Options{})
	rc := newREST(s)
	s.SetEndpoint("PJSIP/1001", Phone{NoAnswer: true})
	for _, c := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{http.MethodGet, "/ari/channels/x/hold", http.StatusNotFound, ""},
		{http.MethodDelete, "/ari/bridges", http.StatusMethodNotAllowed, "OPTIONS,GET,POST"},
		{http.MethodGet, "/ari/channels/x/answer", http.StatusMethodNotAllowed, "OPTIONS,POST"},
		{http.MethodPut, "/ari/channels/x", http.StatusMethodNotAllowed, "OPTIONS,GET,POST,DELETE"},
		{http.MethodOptions, "/ari/channels", http.StatusNoContent, "OPTIONS,GET,POST"},
		{http.MethodGet, "/ari/asterisk/ping", http.StatusOK, ""},
	} {
		res, err := rc.send(c.method, c.path, nil, authBasic)
		if err != nil {
			t.Fatal(err)
		}
		if res.status != c.status || res.header.Get("Allow") != c.allow {
			t.Errorf("%s %s: %d, Allow %q; want %d, %q", c.method, c.path, res.status, res.header.Get("Allow"), c.status, c.allow)
		}
	}

	// A JSON body overrides the query.
	id := rc.call(t, http.MethodPost, "/ari/channels?endpoint=PJSIP/nobody&app=hotline", map[string]any{"endpoint": "PJSIP/1001"}).
		want(t, http.StatusOK).json(t)["id"].(string)
	eps := rc.call(t, http.MethodGet, "/ari/endpoints", nil).want(t, http.StatusOK)
	if got := string(eps.body); got != `[{"technology":"PJSIP","resource":"1001","state":"online","channel_ids":["`+id+`"]},`+
		`{"technology":"PJSIP","resource":"citizen","state":"online","channel_ids":[]}]` {
		t.Errorf("endpoints %s", got)
	}
	info := rc.call(t, http.MethodGet, "/ari/asterisk/info?only=system", nil).want(t, http.StatusOK)
	if got := string(info.body); got != `{"system":{"version":"22.10.1","entity_id":"02:fc:00:00:00:01"}}` {
		t.Errorf("info %s", got)
	}
}

// qosFields reads an RTPAUDIOQOS* value into its fields.
func qosFields(t *testing.T, ev map[string]any) map[string]string {
	t.Helper()
	v, _ := ev["value"].(string)
	fields := map[string]string{}
	for part := range strings.SplitSeq(v, ";") {
		if k, val, ok := strings.Cut(strings.TrimSpace(part), "="); ok {
			fields[k] = val
		}
	}
	return fields
}

// hangupStats reads the five RTP statistics of a hang-up, checking their
// order, and returns them by variable.
func hangupStats(t *testing.T, ws *eventSocket, ch string) map[string]map[string]string {
	t.Helper()
	stats := map[string]map[string]string{}
	for i, ev := range ws.expectSeq(t, "ChannelVarset", "ChannelVarset", "ChannelVarset", "ChannelVarset", "ChannelVarset") {
		name := []string{"RTPAUDIOQOS", "RTPAUDIOQOSJITTER", "RTPAUDIOQOSLOSS", "RTPAUDIOQOSRTT", "RTPAUDIOQOSMES"}[i]
		if ev["variable"] != name || get(ev, "channel", "id") != ch {
			t.Fatalf("varset %d: %v on %v, want %s on %s", i, ev["variable"], get(ev, "channel", "id"), name, ch)
		}
		stats[name] = qosFields(t, ev)
	}
	return stats
}

// The RTP statistics of a hang-up say what the double knows of the far
// end's RTP: nothing from a caller that sent none (themssrc 0, as
// recorded), 10 packets per key, and what SendMedia says, with the far
// end's report; by either hang-up path. Asterisk sets each variable once.
func TestRTPStatistics(t *testing.T) {
	s := Start(t, Options{Speed: 20})
	rc := newREST(s)
	ws := openEvents(t, s, "hotline")

	// No RTP from the caller; the application hangs up.
	quiet := inbound(t, s)
	ws.expect(t, "StasisStart")
	rc.call(t, http.MethodPost, "/ari/channels/"+quiet.ID()+"/answer", nil).want(t, http.StatusNoContent)
	ws.expect(t, "ChannelStateChange")
	rc.call(t, http.MethodDelete, "/ari/channels/"+quiet.ID(), nil).want(t, http.StatusNoContent)
	stats := hangupStats(t, ws, quiet.ID())
	ws.expectSeq(t, "ChannelHangupRequest", "StasisEnd")
	q := stats["RTPAUDIOQOS"]
	for k, want := range map[string]string{"themssrc": "0", "lp": "0", "rxcount": "0", "rxjitter": "0.000000", "txjitter": "0.000000", "rlp": "0", "rtt": "0.000000", "rxmes": "0.000000", "txmes": "0.000000"} {
		if q[k] != want {
			t.Errorf("silent caller's %s = %q, want %q", k, q[k], want)
		}
	}
	if q["ssrc"] == "" || q["ssrc"] == "0" || q["txcount"] == "" {
		t.Errorf("silent caller's RTPAUDIOQOS %v", q)
	}

	// A key, then audio with losses and an RTCP report; the caller hangs
	// up.
	talker := inbound(t, s)
	ws.expect(t, "StasisStart")
	rc.call(t, http.MethodPost, "/ari/channels/"+talker.ID()+"/answer", nil).want(t, http.StatusNoContent)
	ws.expect(t, "ChannelStateChange")
	talker.Press('1')
	ws.expect(t, "ChannelDtmfReceived")
	talker.SendMedia(Media{Received: 200, Lost: 15, Jitter: 12500 * time.Microsecond})
	talker.SendMedia(Media{Received: 75, Jitter: 8 * time.Millisecond, Report: &Report{Lost: 3, Jitter: 4 * time.Millisecond, RTT: 80 * time.Millisecond}})
	talker.Hangup()
	stats = hangupStats(t, ws, talker.ID())
	ws.expectSeq(t, "ChannelHangupRequest", "StasisEnd")
	q = stats["RTPAUDIOQOS"]
	// Asterisk's own view is in the tx fields, the far end's report in
	// the rx ones.
	for k, want := range map[string]string{"lp": "15", "rxcount": "285", "txjitter": "0.008000", "rxjitter": "0.004000", "rlp": "3", "rtt": "0.080000"} {
		if q[k] != want {
			t.Errorf("talker's %s = %q, want %q", k, q[k], want)
		}
	}
	if q["themssrc"] == "0" {
		t.Errorf("talker's themssrc 0 after it sent RTP")
	}
	// One RTCP interval: the per-interval figures are the totals.
	for v, fields := range map[string]map[string]string{
		"RTPAUDIOQOSJITTER": {"maxrxjitter": "000.008000", "avgtxjitter": "000.004000", "stdevrxjitter": "000.000000"},
		"RTPAUDIOQOSLOSS":   {"minrxlost": "015.000000", "maxtxlost": "003.000000"},
		"RTPAUDIOQOSRTT":    {"avgrtt": "000.080000"},
	} {
		for k, want := range fields {
			if got := stats[v][k]; got != want {
				t.Errorf("talker's %s %s = %q, want %q", v, k, got, want)
			}
		}
	}
	// The scores: 20 to 90, lower for Asterisk's side with 15 lost than
	// for the far end's with 3, and the same in RTPAUDIOQOSMES.
	rx, _ := strconv.ParseFloat(q["rxmes"], 64)
	tx, _ := strconv.ParseFloat(q["txmes"], 64)
	if !(20 <= tx && tx < rx && rx <= 90) {
		t.Errorf("rxmes %v, txmes %v", q["rxmes"], q["txmes"])
	}
	if got, _ := strconv.ParseFloat(stats["RTPAUDIOQOSMES"]["avgtxmes"], 64); math.Abs(got-rx) > 1e-6 {
		t.Errorf("avgtxmes %v, rxmes %v", got, rx)
	}

	// A caller bridged with two agents in turn keeps the first one's
	// statistics: Asterisk sets RTPAUDIOQOSBRIDGED only when it is not set.
	caller, agent, bridgeID := bridgeOf(t, s, rc, ws, "mixing,dtmf_events")
	untilMark(t, s, rc, ws, caller.ID())
	agent.SendMedia(Media{Received: 7})
	agent.Hangup()
	var bridged []string
	for _, ev := range eventsUntilMark(t, rc, ws, caller.ID()) {
		if ev["type"] == "ChannelVarset" && get(ev, "channel", "id") == caller.ID() {
			bridged = append(bridged, fmt.Sprint(ev["variable"]))
			if ev["variable"] == "RTPAUDIOQOSBRIDGED" && qosFields(t, ev)["rxcount"] != "7" {
				t.Errorf("the caller's RTPAUDIOQOSBRIDGED %v: not the first agent's", ev["value"])
			}
		}
	}
	if len(bridged) < 5 || bridged[0] != "RTPAUDIOQOSBRIDGED" {
		t.Errorf("the caller's variables as the first agent left: %v", bridged)
	}
	s.SetEndpoint("PJSIP/1002", Phone{})
	rc.call(t, http.MethodPost, "/ari/channels?endpoint=PJSIP/1002&app=hotline&callerId=12345", nil).want(t, http.StatusOK)
	second := originated(t, s)
	rc.call(t, http.MethodPost, "/ari/bridges/"+bridgeID+"/addChannel?channel="+second.ID(), nil).want(t, http.StatusNoContent)
	untilMark(t, s, rc, ws, caller.ID())
	second.Hangup()
	for _, ev := range eventsUntilMark(t, rc, ws, caller.ID()) {
		if v := fmt.Sprint(ev["variable"]); ev["type"] == "ChannelVarset" && strings.HasSuffix(v, "BRIDGED") {
			t.Errorf("%s set again on %v", v, get(ev, "channel", "id"))
		}
	}
}
