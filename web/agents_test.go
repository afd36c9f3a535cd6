package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/evaluation"
	"github.com/hotline12345/hotline/journal"
	"github.com/hotline12345/hotline/web"
)

// addAgent provisions an agent through the API and registers its phone,
// so that it is available.
func (r *rig) addAgent(id string, cats ...appeal.Category) {
	r.t.Helper()
	pw := "pw-" + id + "-long"
	r.secret("u"+id, pw)
	body, _ := json.Marshal(map[string]any{"id": id, "name": "Agent " + id, "sip_user": "u" + id, "password": pw, "categories": cats})
	r.do("POST", "/api/v1/agents", string(body), http.StatusCreated, nil)
	if st, err := r.agents.Registered(r.ctx, id); err != nil || st != acd.Available {
		r.t.Fatalf("register %s: %s %v", id, st, err)
	}
}

func (r *rig) agent(id string) web.AgentDetail {
	r.t.Helper()
	var d web.AgentDetail
	r.do("GET", "/api/v1/agents/"+id, "", http.StatusOK, &d)
	return d
}

func TestAgentProvisioning(t *testing.T) {
	r := startRig(t, nil)
	r.secret("wang", "s3cret-pass")
	var a acd.Agent
	r.do("POST", "/api/v1/agents", `{"id":"a1","name":"王芳","sip_user":"wang","password":"s3cret-pass","categories":["general","emergency"]}`, http.StatusCreated, &a)
	if a.ID != "a1" || a.Name != "王芳" || a.SIPUser != "wang" || a.State != acd.Offline || len(a.Categories) != 2 {
		t.Errorf("created %+v", a)
	}
	cred, err := r.agents.Credential(r.ctx, "wang")
	if err != nil {
		t.Fatal(err)
	}

	var list web.Page[acd.Agent]
	body := r.do("GET", "/api/v1/agents", "", http.StatusOK, &list)
	if len(list.Items) != 1 || list.Items[0].ID != "a1" {
		t.Errorf("list %+v", list.Items)
	}
	// Times are shown in the hotline's zone, whatever the node's.
	if !strings.Contains(body, `"since": "2026-11-27T10:00:00+08:00"`) {
		t.Errorf("since not in Beijing time: %s", body)
	}

	// An update without a password keeps the credential; with one it
	// changes it.
	r.do("PUT", "/api/v1/agents/a1", `{"name":"Wang Fang","sip_user":"wang","categories":["livelihood"]}`, http.StatusOK, &a)
	if a.Name != "Wang Fang" || !slices.Equal(a.Categories, []appeal.Category{appeal.Livelihood}) {
		t.Errorf("updated %+v", a)
	}
	if c, err := r.agents.Credential(r.ctx, "wang"); err != nil || c != cred {
		t.Errorf("credential after an update without password: %+v %v, want %+v", c, err, cred)
	}
	r.secret("wang", "another-pass")
	r.do("PUT", "/api/v1/agents/a1", `{"id":"a1","name":"Wang Fang","sip_user":"wang","password":"another-pass","categories":["livelihood"]}`, http.StatusOK, &a)
	if c, err := r.agents.Credential(r.ctx, "wang"); err != nil || c == cred {
		t.Errorf("credential after a new password: %+v %v, want changed", c, err)
	}

	r.do("DELETE", "/api/v1/agents/a1", "", http.StatusNoContent, nil)
	r.fails("GET", "/api/v1/agents/a1", "", http.StatusNotFound)
	r.fails("DELETE", "/api/v1/agents/a1", "", http.StatusNotFound)
	r.do("GET", "/api/v1/agents", "", http.StatusOK, &list)
	if len(list.Items) != 0 {
		t.Errorf("list after delete %+v", list.Items)
	}
}

func TestAgentErrors(t *testing.T) {
	r := startRig(t, nil)
	r.addAgent("a1", appeal.General)
	const ok = `"name":"x","sip_user":"ux","password":"long-enough","categories":["general"]`
	for _, c := range []struct {
		name, method, path, body string
		want                     int
	}{
		{"id taken", "POST", "/api/v1/agents", `{"id":"a1",` + ok + `}`, http.StatusConflict},
		{"sip user taken", "POST", "/api/v1/agents", `{"id":"a2","name":"x","sip_user":"ua1","password":"long-enough","categories":["general"]}`, http.StatusConflict},
		{"short password", "POST", "/api/v1/agents", `{"id":"a2","name":"x","sip_user":"ux","password":"short","categories":["general"]}`, http.StatusBadRequest},
		{"no password", "POST", "/api/v1/agents", `{"id":"a2","name":"x","sip_user":"ux","categories":["general"]}`, http.StatusBadRequest},
		{"bad category", "POST", "/api/v1/agents", `{"id":"a2","name":"x","sip_user":"ux","password":"long-enough","categories":["water"]}`, http.StatusBadRequest},
		{"bad id", "POST", "/api/v1/agents", `{"id":"a 2",` + ok + `}`, http.StatusBadRequest},
		{"unknown field", "POST", "/api/v1/agents", `{"id":"a2","extension":"8001",` + ok + `}`, http.StatusBadRequest},
		{"not JSON", "POST", "/api/v1/agents", `id=a2`, http.StatusBadRequest},
		{"two values", "POST", "/api/v1/agents", `{"id":"a2",` + ok + `} {}`, http.StatusBadRequest},
		{"empty body", "POST", "/api/v1/agents", ``, http.StatusBadRequest},
		{"too big", "POST", "/api/v1/agents", `{"id":"a2",` + ok + `,"name":"` + strings.Repeat("x", web.MaxBody) + `"}`, http.StatusRequestEntityTooLarge},
		{"update other id", "PUT", "/api/v1/agents/a1", `{"id":"a9",` + ok + `}`, http.StatusBadRequest},
		{"update unknown", "PUT", "/api/v1/agents/a9", `{` + ok + `}`, http.StatusNotFound},
		{"update unknown field", "PUT", "/api/v1/agents/a1", `{"state":"available",` + ok + `}`, http.StatusBadRequest},
		{"get unknown", "GET", "/api/v1/agents/a9", ``, http.StatusNotFound},
		{"pause unknown", "POST", "/api/v1/agents/a9/pause", `{"reason":"lunch"}`, http.StatusNotFound},
		{"pause without reason", "POST", "/api/v1/agents/a1/pause", `{"reason":" "}`, http.StatusBadRequest},
		{"pause without body", "POST", "/api/v1/agents/a1/pause", ``, http.StatusBadRequest},
		{"pause unknown field", "POST", "/api/v1/agents/a1/pause", `{"reason":"lunch","minutes":30}`, http.StatusBadRequest},
		{"resume unknown", "POST", "/api/v1/agents/a9/resume", ``, http.StatusNotFound},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := *r
			r.t = t
			r.fails(c.method, c.path, c.body, c.want)
		})
	}
	// None of the failures changed anything.
	var list web.Page[acd.Agent]
	r.do("GET", "/api/v1/agents", "", http.StatusOK, &list)
	if len(list.Items) != 1 || list.Items[0].State != acd.Available || list.Items[0].Name != "Agent a1" {
		t.Errorf("agents after the failures: %+v", list.Items)
	}
}

// TestAgentInACall: an agent ringing or talking cannot be deleted, and a
// pause asked for during the call waits for its end.
func TestAgentInACall(t *testing.T) {
	r := startRig(t, nil)
	r.addAgent("a1", appeal.General)
	if err := r.agents.Enqueue(r.ctx, "c1", appeal.General, "node1"); err != nil {
		t.Fatal(err)
	}
	if offers, err := r.agents.Dispatch(r.ctx, 10); err != nil || len(offers) != 1 {
		t.Fatalf("dispatch: %+v %v", offers, err)
	}
	r.fails("DELETE", "/api/v1/agents/a1", "", http.StatusConflict)
	if err := r.agents.Answered(r.ctx, "c1", "a1"); err != nil {
		t.Fatal(err)
	}
	var e web.Error
	r.do("DELETE", "/api/v1/agents/a1", "", http.StatusConflict, &e)
	if acd.State(e.State) != acd.Talking || e.Error == "" {
		t.Errorf("delete during a call: %+v, want the state", e)
	}
	// Nothing to resume: the answer says the state, not that it resumed.
	e = web.Error{}
	r.do("POST", "/api/v1/agents/a1/resume", "", http.StatusConflict, &e)
	if acd.State(e.State) != acd.Talking {
		t.Errorf("resume during a call with no pause waiting: %+v", e)
	}
	// The pause waits for the call's end, and the answer says so.
	var st web.StateReply
	r.do("POST", "/api/v1/agents/a1/pause", `{"reason":"training"}`, http.StatusOK, &st)
	if st.State != acd.Talking || st.PauseNext != "training" {
		t.Errorf("pause during a call: %+v, want talking with the pause next", st)
	}
	if d := r.agent("a1"); d.PauseNext != "training" || d.CallID != "c1" {
		t.Errorf("agent during the call: %+v", d.Agent)
	}
	// Resuming cancels it; pausing again sets it again.
	st = web.StateReply{}
	r.do("POST", "/api/v1/agents/a1/resume", "", http.StatusOK, &st)
	if st.State != acd.Talking || st.PauseNext != "" || r.agent("a1").PauseNext != "" {
		t.Errorf("resume during a call: %+v", st)
	}
	r.do("POST", "/api/v1/agents/a1/pause", `{"reason":"training"}`, http.StatusOK, &st)
	if err := r.agents.Ended(r.ctx, "c1", "a1", 0); err != nil {
		t.Fatal(err)
	}
	if d := r.agent("a1"); d.State != acd.Paused || d.Reason != "training" {
		t.Errorf("agent after the call: %+v", d.Agent)
	}
	r.do("DELETE", "/api/v1/agents/a1", "", http.StatusNoContent, nil)
}

func TestPauseResume(t *testing.T) {
	r := startRig(t, nil)
	r.secret("ua1", "pw-a1-long")
	r.do("POST", "/api/v1/agents", `{"id":"a1","name":"x","sip_user":"ua1","password":"pw-a1-long","categories":["general"]}`, http.StatusCreated, nil)
	// An agent whose phone is not registered cannot be paused, nor
	// resumed.
	r.fails("POST", "/api/v1/agents/a1/pause", `{"reason":"lunch"}`, http.StatusConflict)
	var e web.Error
	r.do("POST", "/api/v1/agents/a1/resume", "", http.StatusConflict, &e)
	if acd.State(e.State) != acd.Offline {
		t.Errorf("resume of an offline agent: %+v", e)
	}
	if _, err := r.agents.Registered(r.ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	var st struct{ State acd.State }
	r.do("POST", "/api/v1/agents/a1/pause", `{"reason":"lunch"}`, http.StatusOK, &st)
	if st.State != acd.Paused {
		t.Errorf("pause: state %q", st.State)
	}
	if d := r.agent("a1"); d.State != acd.Paused || d.Reason != "lunch" {
		t.Errorf("paused agent %+v", d.Agent)
	}
	r.do("POST", "/api/v1/agents/a1/resume", "", http.StatusOK, &st)
	if st.State != acd.Available {
		t.Errorf("resume: state %q", st.State)
	}
	// A body sent to resume anyway is no error.
	r.do("POST", "/api/v1/agents/a1/resume", "{}", http.StatusOK, &st)
	if d := r.agent("a1"); d.State != acd.Available || d.Reason != "" {
		t.Errorf("resumed agent %+v", d.Agent)
	}
}

// TestForceState: a supervisor or an admin forces an agent stuck in a
// call back to work; the force is the authenticated user's; states that
// would be false are refused.
func TestForceState(t *testing.T) {
	r := startRig(t, nil)
	r.addAgent("a1", appeal.General)
	if err := r.agents.Enqueue(r.ctx, "c1", appeal.General, "node1"); err != nil {
		t.Fatal(err)
	}
	if offers, err := r.agents.Dispatch(r.ctx, 10); err != nil || len(offers) != 1 {
		t.Fatalf("dispatch: %+v %v", offers, err)
	}
	if err := r.agents.Answered(r.ctx, "c1", "a1"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ body string }{
		{`{"state":"talking"}`},
		{`{"state":"wrapup"}`},
		{`{"state":"paused"}`},
		{`{"state":"available","by":"someone"}`},
		{`{}`},
	} {
		r.fails("POST", "/api/v1/agents/a1/state", c.body, http.StatusBadRequest)
	}
	r.fails("POST", "/api/v1/agents/a9/state", `{"state":"available"}`, http.StatusNotFound)
	var e web.Error
	r.do("POST", "/api/v1/agents/a1/state", `{"state":"offline"}`, http.StatusConflict, &e)
	if acd.State(e.State) != acd.Talking {
		t.Errorf("force offline with a phone registered: %+v", e)
	}
	for _, role := range []auth.Role{auth.Agent, auth.Ops, auth.Visitor} {
		tok := r.mint(auth.TokenSpec{Roles: []auth.Role{role}, TTL: time.Hour})
		r.doAs(tok, "POST", "/api/v1/agents/a1/state", `{"state":"available"}`, http.StatusForbidden, nil)
	}
	if d := r.agent("a1"); d.State != acd.Talking || d.Forced != nil {
		t.Fatalf("the refusals changed the agent: %+v", d.Agent)
	}

	if _, err := r.accounts.AddUser(r.ctx, auth.UserSpec{Name: "sup1", Roles: []auth.Role{auth.Supervisor}, By: "test"}); err != nil {
		t.Fatal(err)
	}
	sup := r.mint(auth.TokenSpec{User: "sup1", Roles: []auth.Role{auth.Supervisor}, TTL: time.Hour})
	var a acd.Agent
	r.doAs(sup, "POST", "/api/v1/agents/a1/state", `{"state":"available","reason":"stuck after a crash"}`, http.StatusOK, &a)
	if a.State != acd.Available || a.CallID != "" || a.Forced == nil || a.Forced.By != "sup1" ||
		a.Forced.From != acd.Talking || a.Forced.CallID != "c1" || a.Forced.Reason != "stuck after a crash" {
		t.Fatalf("forced: %+v (forced %+v)", a, a.Forced)
	}
	if !strings.Contains(r.log.String(), "agent state forced") || !strings.Contains(r.log.String(), `"by":"sup1"`) {
		t.Errorf("the force is not in the log: %s", r.log.String())
	}
	r.do("POST", "/api/v1/agents/a1/state", `{"state":"paused","reason":"meeting"}`, http.StatusOK, &a)
	if a.State != acd.Paused || a.Reason != "meeting" || a.Forced.From != acd.Available || !strings.HasPrefix(a.Forced.By, "token:") {
		t.Fatalf("forced paused: %+v (forced %+v)", a, a.Forced)
	}
	r.do("DELETE", "/api/v1/agents/a1", "", http.StatusNoContent, nil)
}

// TestResumeOffersWaitingCalls: a resumed agent is offered the waiting
// call at once, not at the next periodic dispatch, an hour away here.
func TestResumeOffersWaitingCalls(t *testing.T) {
	r := startRig(t, func(_ *web.Options, d *acd.Distributor) { d.Interval = time.Hour })
	ctx, cancel := context.WithCancel(r.ctx)
	done := make(chan error, 1)
	go func() { done <- r.dist.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("distributor: %v", err)
		}
	})
	r.addAgent("a1", appeal.General)
	r.do("POST", "/api/v1/agents/a1/pause", `{"reason":"lunch"}`, http.StatusOK, nil)
	// Through the store, so that nothing but the resume asks for a dispatch.
	if err := r.agents.Enqueue(r.ctx, "c1", appeal.General, "node1"); err != nil {
		t.Fatal(err)
	}
	r.do("POST", "/api/v1/agents/a1/resume", "", http.StatusOK, nil)

	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var q web.QueueReport
		r.do("GET", "/api/v1/queue", "", http.StatusOK, &q)
		if len(q.Calls) == 1 && q.Calls[0].State == "offering" && q.Calls[0].AgentID == "a1" {
			break
		}
		select {
		case <-deadline:
			t.Fatalf("the call was not offered to the resumed agent: %+v", q.Calls)
		case <-tick.C:
		}
	}
	if d := r.agent("a1"); d.State != acd.Ringing || d.CallID != "c1" {
		t.Errorf("agent %+v, want ringing for c1", d.Agent)
	}
}

func TestQueue(t *testing.T) {
	r := startRig(t, nil)
	var q web.QueueReport
	r.do("GET", "/api/v1/queue", "", http.StatusOK, &q)
	if q.Calls == nil || len(q.Calls) != 0 || q.Today.Day != "2026-11-27" {
		t.Errorf("empty queue %+v", q)
	}
	if err := r.dist.Enqueue(r.ctx, "c-general", appeal.General); err != nil {
		t.Fatal(err)
	}
	r.clock.Add(time.Second)
	if err := r.dist.Enqueue(r.ctx, "c-emergency", appeal.Emergency); err != nil {
		t.Fatal(err)
	}
	body := r.do("GET", "/api/v1/queue", "", http.StatusOK, &q)
	// Emergency calls go to the front of the queue.
	if len(q.Calls) != 2 || q.Calls[0].CallID != "c-emergency" || q.Calls[0].Position != 1 ||
		q.Calls[1].CallID != "c-general" || q.Calls[1].Position != 2 || q.Calls[1].State != "waiting" || q.Calls[1].Node != "node1" {
		t.Errorf("queue %s", body)
	}
	if !strings.Contains(body, `"since": "2026-11-27T10:00:00+08:00"`) {
		t.Errorf("since not in Beijing time: %s", body)
	}
	if q.Today.Queued != 2 {
		t.Errorf("today %+v, want 2 queued", q.Today)
	}
}

// serve runs one call of agent from the queue to its end: answered after
// wait, talked for talk.
func (r *rig) serve(call, agent string, wait, talk time.Duration) {
	r.t.Helper()
	if err := r.agents.Enqueue(r.ctx, call, appeal.General, "node1"); err != nil {
		r.t.Fatal(err)
	}
	if offers, err := r.agents.Dispatch(r.ctx, 10); err != nil || len(offers) != 1 || offers[0].AgentID != agent {
		r.t.Fatalf("dispatch %s: %+v %v", call, offers, err)
	}
	r.clock.Add(wait)
	if err := r.agents.Answered(r.ctx, call, agent); err != nil {
		r.t.Fatal(err)
	}
	r.clock.Add(talk)
	if err := r.agents.Ended(r.ctx, call, agent, 0); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) rate(call, agent string, v evaluation.Verdict, at time.Time) {
	r.t.Helper()
	rt := evaluation.Rating{CallID: call, AgentID: agent, Category: appeal.General, Verdict: v, At: at, PromptID: "rating", PromptVersion: "1"}
	switch v {
	case evaluation.Praise:
		rt.Key = "1"
	case evaluation.BadReview:
		rt.Key = "2"
	default:
		rt.Reason = evaluation.ReasonNoInput
	}
	if _, err := r.ratings.Record(r.ctx, rt); err != nil {
		r.t.Fatal(err)
	}
}

// TestAgentToday: the day's work and ratings, the day taken in Beijing
// time: 23:30 on the 26th is yesterday, 00:30 on the 27th today, though
// both fall on the 26th in UTC.
func TestAgentToday(t *testing.T) {
	r := startRig(t, nil)
	r.addAgent("a1", appeal.General)
	r.addAgent("a2", appeal.General)
	if d := r.agent("a1"); d.Today != (web.AgentToday{Day: "2026-11-27"}) {
		t.Errorf("today before any call %+v", d.Today)
	}
	r.serve("c1", "a1", 5*time.Second, 90*time.Second)
	r.serve("c2", "a2", 5*time.Second, 30*time.Second)
	r.serve("c3", "a1", 5*time.Second, 60*time.Second)

	yesterday := time.Date(2026, 11, 26, 23, 30, 0, 0, beijing)
	today := time.Date(2026, 11, 27, 0, 30, 0, 0, beijing)
	r.rate("old1", "a1", evaluation.Praise, yesterday)
	r.rate("old2", "a1", evaluation.BadReview, yesterday)
	r.rate("c1", "a1", evaluation.Praise, today)
	r.rate("c3", "a1", evaluation.BadReview, today.Add(time.Hour))
	r.rate("c2", "a2", evaluation.NoRating, today)
	r.do("POST", "/api/v1/complaints/c3/review", `{"status":"upheld"}`, http.StatusOK, nil)
	r.do("POST", "/api/v1/complaints/old2/review", `{"status":"upheld"}`, http.StatusOK, nil)

	d := r.agent("a1")
	want := web.AgentToday{Day: "2026-11-27", Served: 2, TalkSec: 150, Praise: 1, BadReview: 1, Upheld: 1}
	if d.Today != want || d.ID != "a1" || d.State != acd.Available {
		t.Errorf("a1 %+v today %+v, want %+v", d.Agent, d.Today, want)
	}
	if d := r.agent("a2"); d.Today != (web.AgentToday{Day: "2026-11-27", Served: 1, TalkSec: 30, NoRating: 1}) {
		t.Errorf("a2 today %+v", d.Today)
	}
	// The agent's fields stay at the top level beside "today".
	var top struct {
		ID      string         `json:"id"`
		SIPUser string         `json:"sip_user"`
		Today   map[string]any `json:"today"`
	}
	body := r.do("GET", "/api/v1/agents/a1", "", http.StatusOK, &top)
	if top.ID != "a1" || top.SIPUser != "ua1" {
		t.Errorf("agent fields not at the top level: %s", body)
	}
	for _, k := range []string{"day", "served", "talk_seconds", "praise", "bad_review", "no_rating", "upheld"} {
		if _, ok := top.Today[k]; !ok {
			t.Errorf("today lacks %q: %s", k, body)
		}
	}
}

func TestRatingsFilters(t *testing.T) {
	r := startRig(t, nil)
	base := time.Date(2026, 11, 27, 9, 0, 0, 0, beijing)
	for i, c := range []struct{ call, agent string }{{"c1", "a1"}, {"c2", "a2"}, {"c3", "a1"}, {"c4", "a1"}} {
		r.rate(c.call, c.agent, evaluation.Praise, base.Add(time.Duration(i)*time.Minute))
	}
	calls := func(q string) []string {
		t.Helper()
		var l web.Page[evaluation.Rating]
		r.do("GET", "/api/v1/ratings"+q, "", http.StatusOK, &l)
		ids := []string{}
		for _, rt := range l.Items {
			ids = append(ids, rt.CallID)
		}
		return ids
	}
	// 09:01 Beijing is 01:01 UTC: any offset names the same instant.
	for q, want := range map[string][]string{
		"":                                  {"c4", "c3", "c2", "c1"},
		"?agent=a1":                         {"c4", "c3", "c1"},
		"?agent=a3":                         {},
		"?limit=2":                          {"c4", "c3"},
		"?from=2026-11-27T09:01:00%2B08:00": {"c4", "c3", "c2"},
		"?from=2026-11-27T01:01:00Z&to=2026-11-27T01:03:00Z":                 {"c3", "c2"},
		"?agent=a1&from=2026-11-27T09:00:30%2B08:00&to=2026-11-27T01:03:00Z": {"c3"}, // to is left out
		"?to=2026-11-27T09:00:00%2B08:00":                                    {},
	} {
		if got := calls(q); !slices.Equal(got, want) {
			t.Errorf("ratings%s: %v, want %v", q, got, want)
		}
	}
	for _, q := range []string{"?from=yesterday", "?to=2026-11-27", "?limit=0", "?limit=501", "?limit=x",
		"?from=2026-11-27T09:00:00Z&to=2026-11-27T09:00:00Z", "?from=2026-11-27T10:00:00Z&to=2026-11-27T09:00:00Z"} {
		r.fails("GET", "/api/v1/ratings"+q, "", http.StatusBadRequest)
	}
}

func TestComplaintReview(t *testing.T) {
	r := startRig(t, nil)
	at := time.Date(2026, 11, 27, 9, 0, 0, 0, beijing)
	r.rate("c1", "a1", evaluation.BadReview, at)
	r.rate("c2", "a1", evaluation.BadReview, at.Add(time.Minute))
	r.rate("c3", "a1", evaluation.Praise, at.Add(2*time.Minute))
	ids := func(q string) []string {
		t.Helper()
		var l web.Page[evaluation.Complaint]
		r.do("GET", "/api/v1/complaints"+q, "", http.StatusOK, &l)
		out := []string{}
		for _, c := range l.Items {
			out = append(out, c.ID)
		}
		return out
	}
	if got := ids("?status=pending"); !slices.Equal(got, []string{"c1", "c2"}) {
		t.Errorf("pending %v, want the oldest first", got)
	}
	// The decision is the authenticated supervisor's: no name in the
	// body is taken.
	if _, err := r.accounts.AddUser(r.ctx, auth.UserSpec{Name: "sup1", Roles: []auth.Role{auth.Supervisor}, By: "test"}); err != nil {
		t.Fatal(err)
	}
	sup := r.mint(auth.TokenSpec{User: "sup1", Roles: []auth.Role{auth.Supervisor}, TTL: time.Hour})
	var c evaluation.Complaint
	r.doAs(sup, "POST", "/api/v1/complaints/c1/review", `{"status":"upheld","note":"rude"}`, http.StatusOK, &c)
	if c.Status != evaluation.Upheld || c.ReviewedBy != "sup1" || c.Note != "rude" || c.ReviewedAt == nil {
		t.Errorf("reviewed %+v", c)
	}
	r.fails("POST", "/api/v1/complaints/c2/review", `{"status":"upheld","by":"someone else"}`, http.StatusBadRequest)
	// The same decision again is a retry; another one is a conflict.
	r.doAs(sup, "POST", "/api/v1/complaints/c1/review", `{"status":"upheld","note":"rude"}`, http.StatusOK, &c)
	r.fails("POST", "/api/v1/complaints/c1/review", `{"status":"dismissed"}`, http.StatusConflict)
	r.fails("POST", "/api/v1/complaints/c9/review", `{"status":"upheld"}`, http.StatusNotFound)
	r.fails("POST", "/api/v1/complaints/c2/review", `{"status":"pending"}`, http.StatusBadRequest)
	r.fails("POST", "/api/v1/complaints/c2/review", `{"status":"upheld","verdict":"x"}`, http.StatusBadRequest)
	r.do("POST", "/api/v1/complaints/c2/review", `{"status":"dismissed"}`, http.StatusOK, &c)
	if !strings.HasPrefix(c.ReviewedBy, "token:") {
		t.Errorf("reviewed by a token acting for no account: %q, want token:<id>", c.ReviewedBy)
	}

	for q, want := range map[string][]string{
		"":                  {"c2", "c1"},
		"?status=pending":   {},
		"?status=upheld":    {"c1"},
		"?status=dismissed": {"c2"},
		"?limit=1":          {"c2"},
	} {
		if got := ids(q); !slices.Equal(got, want) {
			t.Errorf("complaints%s: %v, want %v", q, got, want)
		}
	}
	for _, q := range []string{"?status=open", "?limit=0", "?limit=1000"} {
		r.fails("GET", "/api/v1/complaints"+q, "", http.StatusBadRequest)
	}
}

func TestStats(t *testing.T) {
	r := startRig(t, nil)
	r.addAgent("a1", appeal.General)
	r.serve("c1", "a1", 5*time.Second, time.Minute)
	r.serve("c2", "a1", 20*time.Second, time.Minute)
	r.rate("c1", "a1", evaluation.Praise, r.clock.Now())
	r.rate("c2", "a1", evaluation.BadReview, r.clock.Now())
	r.rate("old", "a1", evaluation.Praise, time.Date(2026, 11, 26, 12, 0, 0, 0, beijing))
	r.do("POST", "/api/v1/complaints/c2/review", `{"status":"upheld"}`, http.StatusOK, nil)
	// Nobody takes emergency calls: c3 is turned away; c4 hangs up
	// waiting.
	if err := r.agents.TurnedAway(r.ctx, "c3", appeal.Emergency); err != nil {
		t.Fatal(err)
	}
	if err := r.agents.Enqueue(r.ctx, "c4", appeal.General, "node1"); err != nil {
		t.Fatal(err)
	}
	if err := r.agents.Leave(r.ctx, "c4", acd.Abandoned); err != nil {
		t.Fatal(err)
	}

	var s web.Stats
	r.do("GET", "/api/v1/stats", "", http.StatusOK, &s)
	if q := s.Queue; q.Day != "2026-11-27" || q.Queued != 3 || q.Answered != 2 || q.InTime != 1 || q.Abandoned != 1 || q.TurnedAway != 1 {
		t.Errorf("queue figures %+v", s.Queue)
	}
	// c1 was answered in 5 s, c2 in 20 s; c3 was turned away and c4
	// abandoned: 1 of 4 within 15 s. The answered calls waited 25 s.
	if a := s.Queue.AnswerRate15s; a.AnsweredIn15s != 1 || a.Calls != 4 || a.Rate == nil || *a.Rate != 0.25 ||
		!slices.Equal(a.Over, []acd.Outcome{"answered", "abandoned", "callback", "lost", "turned_away"}) {
		t.Errorf("answer rate %+v, want 1 of 4 calls, turned-away ones included", a)
	}
	if w := s.Queue.AverageWait; w.Calls != 2 || w.TotalSeconds != 25 || w.Seconds == nil || *w.Seconds != 12.5 || !slices.Equal(w.Over, []acd.Outcome{"answered"}) {
		t.Errorf("average wait %+v, want 25 s over 2 answered calls", w)
	}
	if s.Ratings.Day != "2026-11-27" || s.Ratings.Praise != 1 || s.Ratings.BadReview != 1 || s.Ratings.Upheld != 1 {
		t.Errorf("rating figures %+v", s.Ratings)
	}
	if c := s.Complaints; c.Upheld != 1 || c.Served != 2 || c.RatePer10000 == nil || *c.RatePer10000 != 5000 ||
		c.State != evaluation.Over || c.From != "2026-11-27" || c.LimitPer10000 != 3 {
		t.Errorf("complaint rate %+v", s.Complaints)
	}
	s = web.Stats{}
	r.do("GET", "/api/v1/stats?day=2026-11-26", "", http.StatusOK, &s)
	if s.Queue.Day != "2026-11-26" || s.Queue.Queued != 0 || s.Ratings.Day != "2026-11-26" || s.Ratings.Praise != 1 || s.Ratings.BadReview != 0 {
		t.Errorf("yesterday %+v", s)
	}
	// A day without calls has the counts and no rate, not 0 %.
	var raw struct {
		Queue struct {
			Rate map[string]any `json:"answer_rate_15s"`
			Wait map[string]any `json:"average_wait"`
		} `json:"queue"`
	}
	r.do("GET", "/api/v1/stats?day=2026-11-26", "", http.StatusOK, &raw)
	if q := raw.Queue; q.Rate == nil || q.Rate["calls"] != 0.0 || q.Rate["answered_in_15s"] != 0.0 || q.Rate["rate"] != nil {
		t.Errorf("answer rate of a day without calls %v, want 0 of 0 and no rate", q.Rate)
	}
	if q := raw.Queue; q.Wait == nil || q.Wait["calls"] != 0.0 || q.Wait["seconds"] != nil {
		t.Errorf("average wait of a day without calls %v, want 0 calls and no average", q.Wait)
	}
	if c := s.Complaints; c.Upheld != 0 || c.Served != 1 || c.State != evaluation.Within || c.From != "2026-11-26" || !c.NextCrosses {
		t.Errorf("complaint rate of the day before %+v", s.Complaints)
	}
	for _, d := range []string{"27.11.2026", "2026-11-31", "today"} {
		r.fails("GET", "/api/v1/stats?day="+d, "", http.StatusBadRequest)
	}
}

// TestAgentHasNoSecret: the agent the API serves has no field for a
// password or a digest hash, and must never get one.
func TestAgentHasNoSecret(t *testing.T) {
	for _, typ := range []reflect.Type{reflect.TypeFor[acd.Agent](), reflect.TypeFor[web.AgentDetail]()} {
		b, err := json.Marshal(reflect.New(typ).Interface())
		if err != nil {
			t.Fatal(err)
		}
		var fields map[string]any
		if err := json.Unmarshal(b, &fields); err != nil {
			t.Fatal(err)
		}
		for f := range fields {
			for _, bad := range []string{"pass", "ha1", "hash", "secret", "cred"} {
				if strings.Contains(strings.ToLower(f), bad) {
					t.Errorf("%s serves the field %q", typ, f)
				}
			}
		}
		for i := range typ.NumField() {
			if n := strings.ToLower(typ.Field(i).Name); strings.Contains(n, "pass") || strings.Contains(n, "ha1") {
				t.Errorf("%s has the field %s", typ, typ.Field(i).Name)
			}
		}
	}
}

// journaledReviews is a rating store whose reviews Redis did not take
// but the node's journal did.
type journaledReviews struct{ *evaluation.Store }

func (journaledReviews) Review(ctx context.Context, id string, status evaluation.ComplaintStatus, by, note string) (evaluation.Complaint, error) {
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, beijing)
	return evaluation.Complaint{ID: id, Status: status, ReviewedBy: by, Note: note, ReviewedAt: &at}, journal.ErrJournaled
}

// A review the journal took, Redis not answering, is answered 202 with
// no content, as the OpenAPI document says.
func TestComplaintReviewJournaled(t *testing.T) {
	r := startRig(t, func(o *web.Options, _ *acd.Distributor) { o.Ratings = journaledReviews{o.Ratings.(*evaluation.Store)} })
	if body := r.do("POST", "/api/v1/complaints/c1/review", `{"status":"upheld","note":"rude"}`, http.StatusAccepted, nil); body != "" {
		t.Errorf("answered %q, want no content", body)
	}
}
