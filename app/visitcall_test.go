package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/callback"
	"github.com/hotline12345/hotline/caller"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/internal/baresiptest"
	"github.com/hotline12345/hotline/internal/hotlinetest"
	"github.com/hotline12345/hotline/internal/sipptest"
	"github.com/hotline12345/hotline/internal/testclock"
	"github.com/hotline12345/hotline/prompts"
	"github.com/hotline12345/hotline/web"
)

// TestReturnVisitByAgent is a return visit from end to end: a citizen
// calls, picks water-electricity-heat and consents to a return visit; the
// appeal is dispatched to the water bureau, signed and fed back through
// the API; its processing time expires on the test clock and a visit
// appears; the return-visit agent (baresip, registered) takes it and
// asks for the call: its phone rings and answers, the citizen's phone
// behind the carrier's trunk (sipp) answers, and they are connected, the
// agent paused for the queue meanwhile; the agent records the three
// answers, and the water bureau's rates show 1/1.
func TestReturnVisitByAgent(t *testing.T) {
	t.Parallel()
	loc := appeal.DefaultLocation()
	clock := testclock.New(time.Date(2026, 12, 1, 10, 0, 0, 0, loc))
	citizen := sipptest.Serve(t, sipptest.CarrierXML(200, false, "", ""), 10)
	h := hotlinetest.StartWith(t, hotlinetest.Options{Now: clock.Now, Tune: func(c *config.Config) {
		// The agent takes emergencies: the citizen's call finds nobody of
		// its category and ends after intake.
		c.Agents = []config.Agent{{ID: "v1", Name: "Qian Li", SIPUser: "visitor1", Password: "visitor1-pass", Categories: []string{"emergency"}}}
		c.ACD.WrapUp = 0
		c.Organizers = []config.Organizer{{ID: "water", Name: "Water bureau", Kind: "utility", District: "chaoyang"}}
		c.Trunks = []config.Trunk{{Name: "carrier", Host: citizen.Addr.Addr().String(), Port: int(citizen.Addr.Port()), Transport: "udp",
			CallerID: "12345", Channels: 2, Endpoint: "carrier",
			Probe: config.TrunkProbe{Interval: config.Duration(time.Hour), Timeout: config.Duration(time.Second), DownAfter: 3, UpAfter: 1}}}
	}})
	ctx := t.Context()
	agents := acd.NewStore(h.Client, acd.StoreOptions{})
	phone := baresiptest.Start(t, baresiptest.Options{User: "visitor1", Password: "visitor1-pass", Registrar: h.SIP.String(), Tone: 440, IP: "127.0.0.7"})
	agentState(t, agents, "v1", acd.Available)

	const number = "13900000081"
	<-h.Call(ctx, t, number, caller.Script{
		{On: prompts.Greeting, BargeIn: true, Press: "2"},
		{On: prompts.ConsentMenu, BargeIn: true, Press: "1"},
	})
	staff := h.APIClient(t, auth.Supervisor)
	var page web.Page[appeal.Appeal]
	if err := staff.Do(ctx, http.MethodGet, "/api/v1/appeals", nil, &page); err != nil || len(page.Items) != 1 {
		t.Fatalf("appeals %+v %v", page, err)
	}
	a := page.Items[0]
	if a.Category != appeal.Livelihood || !a.Consent.Given {
		t.Fatalf("the appeal %+v", a)
	}
	for _, step := range []struct{ path, body string }{
		{"dispatch", `{"lead":"water"}`},
		{"sign", `{"organizer":"water"}`},
		{"feedback", `{"organizer":"water","result":"solved"}`},
	} {
		if err := staff.Do(ctx, http.MethodPost, "/api/v1/appeals/"+a.ID+"/"+step.path, json.RawMessage(step.body), nil); err != nil {
			t.Fatalf("%s: %v", step.path, err)
		}
	}
	if err := staff.Do(ctx, http.MethodGet, "/api/v1/appeals/"+a.ID, nil, &a); err != nil {
		t.Fatal(err)
	}
	clock.Set(callback.DefaultWindows(loc).Next(a.FeedbackDue.Add(time.Minute)))

	visitor := h.AgentClient(t, "qian", "v1", auth.Visitor)
	var work web.VisitWork
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := visitor.Do(ctx, http.MethodPost, "/api/v1/visits/next", nil, &work)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no visit: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if work.Visit.Appeal != a.ID || work.Feedback == nil || work.Feedback.Result != appeal.Solved || work.Caller == number || work.Caller == "" {
		t.Fatalf("the visit given %+v (the number is a visitor's to see masked only)", work)
	}

	var call web.VisitCallReply
	if err := visitor.Do(ctx, http.MethodPost, "/api/v1/visits/"+work.Visit.ID+"/call", nil, &call); err != nil {
		t.Fatalf("call: %v\ncitizen:\n%s", err, citizen.Output())
	}
	if call.State != web.VisitCallConnected || call.CallID == "" {
		t.Fatalf("call %+v", call)
	}
	phone.Await("CALL_ESTABLISHED")
	if ag := agentState(t, agents, "v1", acd.Paused); ag.Reason != "return-visit" {
		t.Errorf("the agent on the visit's call: %+v", ag)
	}
	answers := `{"outcome":"completed","answers":{"response":"yes","solution":"yes","satisfaction":"satisfied"},"note":"the water came back the next day"}`
	var v callback.Visit
	if err := visitor.Do(ctx, http.MethodPost, "/api/v1/visits/"+work.Visit.ID+"/attempts", json.RawMessage(answers), &v); err != nil || v.State != callback.Done {
		t.Fatalf("completed: %+v %v", v, err)
	}
	phone.Command("hangup", "")
	agentState(t, agents, "v1", acd.Available)

	var rates web.RatesReply
	day := clock.Now().In(loc).Format("2006-01-02")
	if err := h.APIClient(t, auth.Supervisor).Do(context.Background(), http.MethodGet, "/api/v1/rates?by=organizer&day="+day, nil, &rates); err != nil {
		t.Fatal(err)
	}
	if len(rates.Items) != 1 || fmt.Sprintf("%s %d %d %d %d", rates.Items[0].Group, rates.Items[0].Response.Numerator, rates.Items[0].Response.Denominator,
		rates.Items[0].Solution.Numerator, rates.Items[0].Satisfaction.Numerator) != "water 1 1 1 1" {
		t.Errorf("rates %+v", rates)
	}
}
