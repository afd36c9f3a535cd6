package asterisk_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/asterisk/aritest"
	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/callback"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/internal/hotlinetest"
	"github.com/hotline12345/hotline/internal/testclock"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/ivr/ivrtest"
	"github.com/hotline12345/hotline/prompts"
	"github.com/hotline12345/hotline/web"
)

// TestAutomatedVisitOnDouble: the automated return visit on a call the
// ARI backend placed through a trunk's endpoint of the double, whose far
// end presses its key as each question begins: 1 at each completes the
// visit (contacted, solved, satisfied); 2 at the consent question is a
// refusal and no question follows. Asterisk's channels do not hear the
// far end's audio for hotline, so the flow goes by keys alone.
func TestAutomatedVisitOnDouble(t *testing.T) {
	t.Parallel()
	srv := newDouble(t)
	b := runBackend(t, srv, func(context.Context, ivr.Call) {})
	catalog, err := prompts.Default()
	if err != nil {
		t.Fatal(err)
	}
	questions := map[prompts.ID]bool{prompts.VisitConsent: true, prompts.VisitResponse: true, prompts.VisitSolution: true, prompts.VisitSatisfaction: true}
	for _, tc := range []struct {
		name    string
		key     rune
		outcome callback.Outcome
		asked   int
	}{
		{"1 1 1 1", '1', callback.Completed, 4},
		{"2", '2', callback.Refused, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rung := make(chan *aritest.Party, 1)
			endpoint := "visit-carrier-" + string(tc.key)
			srv.SetEndpoint("PJSIP/"+endpoint, aritest.Phone{AnswerAfter: 50 * time.Millisecond, Rung: rung})
			watch := &ivrtest.RecordWatch{}
			runner := &ivr.Runner{Catalog: catalog, Records: watch, Lang: prompts.Mandarin, Backend: "asterisk", Log: zerolog.New(zerolog.NewTestWriter(t)), Metrics: ivr.NewMetrics(nil)}
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			leg, err := b.Dial(ctx, ivr.Number{Number: "13900000095", Trunk: ivr.TrunkRoute{Name: endpoint, Endpoint: endpoint, CallerID: "12345"}},
				ivr.DialOptions{RingTimeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := leg.(ivr.Listener); ok {
				t.Error("the ARI backend's call claims to hear the far end")
			}
			far := <-rung
			asked := make(chan int, 1)
			go func() {
				n := 0
				defer func() { asked <- n }()
				for note := range far.Notes() {
					if note.Kind != aritest.NotePlaybackStarted {
						continue
					}
					if id := prompts.ID(strings.TrimPrefix(note.MediaURI, "sound:hotline/")); questions[id] {
						n++
						far.Press(tc.key)
					}
				}
			}()
			var res ivr.VisitResult
			v := &ivr.Visit{Options: ivr.VisitOptions{Timeout: 2 * time.Second}}
			runner.Serve(ctx, leg, v.Flow(ivr.VisitSubject{VisitID: "2612010001", AppealID: "2612010001", Category: appeal.Livelihood,
				Date: time.Date(2026, 12, 1, 9, 0, 0, 0, appeal.DefaultLocation())}, func(r ivr.VisitResult) { res = r }))
			if res.Outcome != tc.outcome {
				t.Errorf("result %+v, want %s", res, tc.outcome)
			}
			if tc.outcome == callback.Completed && (res.Answers == nil || *res.Answers != callback.Answers{Response: callback.Contacted, Solution: callback.Solved, Satisfaction: callback.Satisfied}) {
				t.Errorf("answers %+v", res.Answers)
			}
			if n := <-asked; n != tc.asked {
				t.Errorf("%d questions asked, want %d", n, tc.asked)
			}
			if rec := watch.Final(t, "13900000095"); rec.AppealID != "2612010001" || rec.Stage != ivr.StageGoodbye {
				t.Errorf("record: appeal %q, ended in %q", rec.AppealID, rec.Stage)
			}
		})
	}
}

// TestAutomatedVisitThroughHotlineOnDouble: hotline on the ARI backend
// (the double) makes an automated return visit from end to end: an
// appeal dispatched, signed and fed back expires on the test clock, the
// visit is decided, hotline dials the citizen through the trunk's
// endpoint, the citizen presses 1 at each question, and the organizer's
// rates show 1/1.
func TestAutomatedVisitThroughHotlineOnDouble(t *testing.T) {
	t.Parallel()
	srv := newDouble(t)
	rung := make(chan *aritest.Party, 4)
	srv.SetEndpoint("PJSIP/carrier", aritest.Phone{AnswerAfter: 50 * time.Millisecond, Rung: rung})
	loc := appeal.DefaultLocation()
	clock := testclock.New(time.Date(2026, 12, 1, 10, 0, 0, 0, loc))
	h := startHotlineWith(t, srv, hotlinetest.Options{Now: clock.Now, Tune: func(c *config.Config) {
		c.IVR.FirstDigitTimeout = config.Duration(2 * time.Second)
		c.Callback.Mode.Livelihood = "ivr"
		c.Callback.IVRCalls = 1
		c.Organizers = []config.Organizer{{ID: "water", Name: "Water bureau", Kind: "utility", District: "chaoyang"}}
		c.Trunks = []config.Trunk{{Name: "carrier", Endpoint: "carrier", Host: "carrier.example", Port: 5060, Transport: "udp", CallerID: "12345", Channels: 2,
			Probe: config.TrunkProbe{Interval: config.Duration(time.Hour), Timeout: config.Duration(time.Second), DownAfter: 3, UpAfter: 1}}}
	}})
	ctx := t.Context()
	a := h.FedBack(t, "ari-visit", "13900000097", appeal.Livelihood, "water")
	clock.Set(callback.DefaultWindows(loc).Next(a.FeedbackDue.Add(time.Minute)))

	var far *aritest.Party
	select {
	case far = <-rung:
	case <-time.After(30 * time.Second):
		t.Fatal("the citizen's phone did not ring")
	}
	questions := map[prompts.ID]bool{prompts.VisitConsent: true, prompts.VisitResponse: true, prompts.VisitSolution: true, prompts.VisitSatisfaction: true}
	for note := range far.Notes() {
		if note.Kind == aritest.NotePlaybackStarted && questions[prompts.ID(strings.TrimPrefix(note.MediaURI, "sound:hotline/"))] {
			far.Press('1')
		}
	}
	visits := callback.NewStore(h.Client, callback.StoreOptions{})
	deadline := time.Now().Add(10 * time.Second)
	var v callback.Visit
	var err error
	for {
		if v, err = visits.Get(ctx, a.ID); err == nil && v.State != callback.Waiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("visit %+v %v, not ended", v, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if v.State != callback.Done || len(v.Attempts) != 1 || v.Attempts[0].Answers == nil || v.Attempts[0].Answers.Response != callback.Contacted {
		t.Fatalf("visit %+v", v)
	}
	rates, err := visits.Rates(ctx, callback.ByOrganizer, []string{clock.Now().In(loc).Format("2006-01-02")})
	if err != nil || len(rates) != 1 || rates[0].Group != "water" || rates[0].Response.Numerator != 1 || rates[0].Response.Denominator != 1 {
		t.Errorf("rates %+v %v", rates, err)
	}
}

// TestVisitByAgentThroughHotlineOnDouble: hotline on the ARI backend
// (the double) connects a return-visit agent to the citizen: the agent's
// endpoint rings first and answers, then the citizen's number through the
// trunk's endpoint, and the two are bridged; the agent records the three
// answers through the API and the organizer's rates show 1/1.
func TestVisitByAgentThroughHotlineOnDouble(t *testing.T) {
	t.Parallel()
	srv := newDouble(t)
	agentRung, citizenRung := make(chan *aritest.Party, 4), make(chan *aritest.Party, 4)
	srv.SetEndpoint("PJSIP/visitor1", aritest.Phone{AnswerAfter: 50 * time.Millisecond, Rung: agentRung})
	srv.SetEndpoint("PJSIP/carrier", aritest.Phone{AnswerAfter: 50 * time.Millisecond, Rung: citizenRung})
	loc := appeal.DefaultLocation()
	clock := testclock.New(time.Date(2026, 12, 1, 10, 0, 0, 0, loc))
	h := startHotlineWith(t, srv, hotlinetest.Options{Now: clock.Now, Tune: func(c *config.Config) {
		c.Agents = []config.Agent{{ID: "v1", Name: "Qian Li", SIPUser: "visitor1", Password: "visitor1-pass", Categories: []string{"emergency"}}}
		c.Organizers = []config.Organizer{{ID: "water", Name: "Water bureau", Kind: "utility", District: "chaoyang"}}
		c.Trunks = []config.Trunk{{Name: "carrier", Endpoint: "carrier", Host: "carrier.example", Port: 5060, Transport: "udp", CallerID: "12345", Channels: 2,
			Probe: config.TrunkProbe{Interval: config.Duration(time.Hour), Timeout: config.Duration(time.Second), DownAfter: 3, UpAfter: 1}}}
	}})
	ctx := t.Context()
	a := h.FedBack(t, "ari-agent-visit", "13900000098", appeal.Livelihood, "water")
	clock.Set(callback.DefaultWindows(loc).Next(a.FeedbackDue.Add(time.Minute)))

	visitor := h.AgentClient(t, "qian", "v1", auth.Visitor)
	var work web.VisitWork
	deadline := time.Now().Add(20 * time.Second)
	for visitor.Do(ctx, http.MethodPost, "/api/v1/visits/next", nil, &work) != nil {
		if time.Now().After(deadline) {
			t.Fatal("no visit")
		}
		time.Sleep(100 * time.Millisecond)
	}
	var call web.VisitCallReply
	if err := visitor.Do(ctx, http.MethodPost, "/api/v1/visits/"+work.Visit.ID+"/call", nil, &call); err != nil || call.State != web.VisitCallConnected {
		t.Fatalf("call %+v %v", call, err)
	}
	agent, citizen := <-agentRung, <-citizenRung
	bridged := func(p *aritest.Party) {
		t.Helper()
		for note := range p.Notes() {
			if note.Kind == aritest.NoteBridged {
				return
			}
		}
		t.Fatalf("%s never bridged", p.ID())
	}
	bridged(agent)
	bridged(citizen)
	if name, number := citizen.Shows(); number != "12345" || strings.Contains(name, "Qian") {
		t.Errorf("the citizen's phone shows %q <%s>, want the hotline's number", name, number)
	}
	answers := json.RawMessage(`{"outcome":"completed","answers":{"response":"yes","solution":"partly","satisfaction":"satisfied"}}`)
	var v callback.Visit
	if err := visitor.Do(ctx, http.MethodPost, "/api/v1/visits/"+work.Visit.ID+"/attempts", answers, &v); err != nil || v.State != callback.Done {
		t.Fatalf("completed %+v %v", v, err)
	}
	citizen.Hangup()
	visits := callback.NewStore(h.Client, callback.StoreOptions{})
	rates, err := visits.Rates(ctx, callback.ByOrganizer, []string{clock.Now().In(loc).Format("2006-01-02")})
	if err != nil || len(rates) != 1 || rates[0].Group != "water" || rates[0].Response.Numerator != 1 || rates[0].Solution.Numerator != 0 {
		t.Errorf("rates %+v %v", rates, err)
	}
}
