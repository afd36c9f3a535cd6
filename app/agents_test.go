package app_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/caller"
	"github.com/hotline12345/hotline/calllog"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/evaluation"
	"github.com/hotline12345/hotline/internal/baresiptest"
	"github.com/hotline12345/hotline/internal/hotlinetest"
	"github.com/hotline12345/hotline/prompts"
	"github.com/hotline12345/hotline/web"
	"github.com/hotline12345/hotline/web/client"
)

var allCategories = []string{"emergency", "livelihood", "general", "complex"}

// agentState polls until the agent is in state want.
func agentState(t *testing.T, store *acd.Store, id string, want acd.State) acd.Agent {
	t.Helper()
	return hotlinetest.AgentState(t, store, id, want)
}

// A citizen's call goes through intake to a real softphone registered as
// the agent; when the agent hangs up the caller hears the rating question
// and presses 1 twice: one praise is recorded.
func TestAgentTakesTheCallAndTheCallerRates(t *testing.T) {
	t.Parallel()
	h := hotlinetest.Start(t, func(c *config.Config) {
		c.Agents = []config.Agent{{ID: "a1", Name: "Wang Fang", SIPUser: "agent1", Password: "agent1-pass", Categories: allCategories}}
		c.ACD.WrapUp = 0
	})
	store := acd.NewStore(h.Client, acd.StoreOptions{})
	phone := baresiptest.Start(t, baresiptest.Options{
		User: "agent1", Password: "agent1-pass", Registrar: h.SIP.String(), Tone: 440, IP: "127.0.0.2",
	})
	agentState(t, store, "a1", acd.Available)

	const who = "13800000001"
	done := h.Call(t.Context(), t, who, caller.Script{
		{On: prompts.Greeting, BargeIn: true, Press: "3"},
		{On: prompts.ConsentMenu, BargeIn: true, Press: "1"},
		{On: prompts.Rating, Press: "11"},
	})
	phone.Await("CALL_ESTABLISHED")
	agentState(t, store, "a1", acd.Talking)
	// The agent's console shows the call it is on, and the wallboard the
	// call in progress.
	agent := h.AgentClient(t, "wang", "a1", auth.Agent)
	var d web.AgentDetail
	if err := agent.Do(t.Context(), "GET", "/api/v1/agents/a1", nil, &d); err != nil {
		t.Fatal(err)
	}
	if c := d.Call; c == nil || c.Caller != who || c.Category != appeal.General || c.AppealID == "" || c.AnsweredAt == nil || c.WaitedSeconds < 0 {
		t.Errorf("the agent's call %+v; want the caller, the appeal and its category", c)
	}
	var st web.Stats
	if err := h.APIClient(t, auth.Supervisor).Do(t.Context(), "GET", "/api/v1/stats", nil, &st); err != nil {
		t.Fatal(err)
	}
	if st.InProgress == nil || *st.InProgress != 1 {
		t.Errorf("calls in progress %v; want 1", st.InProgress)
	}
	phone.Command("hangup", "")
	tr := <-done

	rec := h.Records.Final(t, who)
	if rec.EndCause != calllog.FlowFinished || rec.AgentID != "a1" || rec.Rating != string(evaluation.Praise) {
		t.Fatalf("record: cause %s (%s) stage %s agent %q rating %q", rec.EndCause, rec.EndDetail, rec.Stage, rec.AgentID, rec.Rating)
	}
	if rec.QueuedAt == nil || rec.AgentAnsweredAt == nil {
		t.Errorf("queue times: %v %v", rec.QueuedAt, rec.AgentAnsweredAt)
	}
	ids := tr.HeardIDs()
	if len(ids) == 0 || ids[len(ids)-1] != prompts.RatingThanks {
		t.Errorf("caller heard %v, want the rating thanks last", ids)
	}
	ratings := evaluation.NewStore(h.Client, evaluation.StoreOptions{})
	list, err := ratings.List(t.Context(), evaluation.Query{})
	if err != nil || len(list) != 1 || list[0].Verdict != evaluation.Praise || list[0].CallID != rec.ID || list[0].AgentID != "a1" {
		t.Fatalf("ratings %+v %v, want one praise for the call", list, err)
	}
	agentState(t, store, "a1", acd.Available)
	day, err := store.AgentDay(t.Context(), "a1", time.Now())
	if err != nil || day.Served != 1 {
		t.Errorf("agent day %+v %v", day, err)
	}
}

// An offer the first agent does not take goes to the next: one phone rings
// out (it never answers), another rejects the call; the third answers.
// The caller hangs up first: there is no rating.
func TestOfferGoesOnToTheNextAgent(t *testing.T) {
	t.Parallel()
	h := hotlinetest.Start(t, func(c *config.Config) {
		for _, id := range []string{"a1", "a2", "a3"} {
			c.Agents = append(c.Agents, config.Agent{ID: id, SIPUser: "user-" + id, Password: "password-" + id, Categories: allCategories})
		}
		c.ACD.RingTimeout = config.Duration(5 * time.Second)
		c.ACD.WrapUp = 0
	})
	store := acd.NewStore(h.Client, acd.StoreOptions{})
	phones := map[string]*baresiptest.Phone{}
	// Registered in this order, a1 has been idle longest and is offered
	// the call first.
	for i, id := range []string{"a1", "a2", "a3"} {
		mode := "manual"
		if id == "a3" {
			mode = "auto"
		}
		phones[id] = baresiptest.Start(t, baresiptest.Options{
			User: "user-" + id, Password: "password-" + id, Registrar: h.SIP.String(), Tone: 440,
			IP: "127.0.0." + string(rune('3'+i)), AnswerMode: mode,
		})
		agentState(t, store, id, acd.Available)
	}

	const who = "13800000002"
	ctx, hangup := context.WithCancel(t.Context())
	defer hangup()
	done := h.Call(ctx, t, who, caller.Script{
		{On: prompts.Greeting, BargeIn: true, Press: "2"},
		{On: prompts.ConsentMenu, BargeIn: true, Press: "2"},
	})
	phones["a1"].Await("CALL_INCOMING")
	// a1 lets it ring out; then a2's phone rings and a2 declines.
	phones["a2"].Await("CALL_INCOMING")
	if a := agentState(t, store, "a1", acd.Available); a.Missed != 1 {
		t.Errorf("a1 missed %d offers, want 1", a.Missed)
	}
	phones["a2"].Command("hangup", "")
	phones["a3"].Await("CALL_ESTABLISHED")
	agentState(t, store, "a3", acd.Talking)
	if a := agentState(t, store, "a2", acd.Available); a.Missed != 0 {
		t.Errorf("a rejection counted as a miss: %d", a.Missed)
	}
	// The caller hangs up during the conversation: the agent's phone is
	// hung up and nobody is asked for a rating.
	hangup()
	phones["a3"].Await("CALL_CLOSED")
	<-done
	rec := h.Records.Final(t, who)
	if rec.EndCause != calllog.CallerHangup || rec.AgentID != "a3" || rec.Rating != "" || rec.Stage != "talking" {
		t.Fatalf("record: cause %s stage %s agent %q rating %q", rec.EndCause, rec.Stage, rec.AgentID, rec.Rating)
	}
	agentState(t, store, "a3", acd.Available)
}

// The only agent's phone goes away while a caller waits: the call is not
// offered to it; a phone registering later takes the call. The caller's
// bad review opens a complaint for review.
func TestAgentUnregistersWhileACallWaits(t *testing.T) {
	t.Parallel()
	h := hotlinetest.Start(t, func(c *config.Config) {
		for _, id := range []string{"a1", "a2"} {
			c.Agents = append(c.Agents, config.Agent{ID: id, SIPUser: "user-" + id, Password: "password-" + id, Categories: allCategories})
		}
		c.ACD.WrapUp = 0
	})
	store := acd.NewStore(h.Client, acd.StoreOptions{})
	first := baresiptest.Start(t, baresiptest.Options{
		User: "user-a1", Password: "password-a1", Registrar: h.SIP.String(), Tone: 440, IP: "127.0.0.6",
	})
	agentState(t, store, "a1", acd.Available)
	if _, err := store.Pause(t.Context(), "a1", "training"); err != nil {
		t.Fatal(err)
	}

	const who = "13800000003"
	done := h.Call(t.Context(), t, who, caller.Script{
		{On: prompts.Greeting, BargeIn: true, Press: "1"},
		{On: prompts.ConsentMenu, BargeIn: true, Press: "1"},
		{On: prompts.Rating, Press: "2"},
	})
	waitQueued(t, store, 1)
	first.Stop()
	agentState(t, store, "a1", acd.Offline)
	// Resuming a phoneless agent is refused: it stays offline, still no offer.
	if st, err := store.Resume(t.Context(), "a1"); !errors.Is(err, acd.ErrState) {
		t.Fatalf("resume without a phone: %s %v, want ErrState", st, err)
	}
	agentState(t, store, "a1", acd.Offline)
	second := baresiptest.Start(t, baresiptest.Options{
		User: "user-a2", Password: "password-a2", Registrar: h.SIP.String(), Tone: 440, IP: "127.0.0.7",
	})
	// The waiting call reaches the phone as soon as it registers, which
	// can be before the test listens to its events: the agent's state
	// says when they talk.
	agentState(t, store, "a2", acd.Talking)
	second.Command("hangup", "")
	<-done
	rec := h.Records.Final(t, who)
	if rec.AgentID != "a2" || rec.Rating != string(evaluation.BadReview) {
		t.Fatalf("record: cause %s stage %s agent %q rating %q", rec.EndCause, rec.Stage, rec.AgentID, rec.Rating)
	}
	ratings := evaluation.NewStore(h.Client, evaluation.StoreOptions{})
	pending, err := ratings.Complaints(t.Context(), evaluation.Pending, 10)
	if err != nil || len(pending) != 1 || pending[0].CallID != rec.ID || pending[0].AgentID != "a2" {
		t.Fatalf("pending complaints %+v %v, want the bad review", pending, err)
	}
	// Upheld, the bad review puts the day over the line: 1 effective
	// complaint of 1 call served, on the day the agent answered.
	if _, err := ratings.Review(t.Context(), rec.ID, evaluation.Upheld, "sup-1", "rude"); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(h.API(), h.Token(t, auth.Supervisor))
	if err != nil {
		t.Fatal(err)
	}
	day := rec.AgentAnsweredAt.In(appeal.DefaultLocation()).Format(time.DateOnly)
	for _, path := range []string{"/api/v1/complaint-line?day=" + day, "/api/v1/complaint-line?agent=a2&day=" + day} {
		var l evaluation.Line
		if err := c.Do(t.Context(), http.MethodGet, path, nil, &l); err != nil {
			t.Fatal(err)
		}
		if l.Served != 1 || l.BadReview != 1 || l.Upheld != 1 || l.State != evaluation.Over {
			t.Errorf("%s: %+v", path, l)
		}
	}
}

func waitQueued(t *testing.T, store *acd.Store, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		q, err := store.Queue(t.Context())
		if err == nil && len(q) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d calls queued (%v), want %d", len(q), err, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
