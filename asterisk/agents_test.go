package asterisk_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/asterisk/aritest"
	"github.com/hotline12345/hotline/caller"
	"github.com/hotline12345/hotline/calllog"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/evaluation"
	"github.com/hotline12345/hotline/internal/hotlinetest"
	"github.com/hotline12345/hotline/prompts"
)

var allCategories = []string{string(appeal.Emergency), string(appeal.Livelihood), string(appeal.General), string(appeal.Complex)}

// agentState waits until the agent is in state.
func agentState(t testing.TB, h *hotlinetest.Hotline, id string, want acd.State) {
	t.Helper()
	store := acd.NewStore(h.Client, acd.StoreOptions{})
	deadline := time.Now().Add(15 * time.Second)
	for {
		a, err := store.Agent(context.Background(), id)
		if err == nil && a.State == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent %s is %s (%v), want %s", id, a.State, err, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// noLeftovers checks the double holds no channel, bridge or playback once
// every call is over.
func noLeftovers(t testing.TB, srv *aritest.Server) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ch, br, pb := srv.Channels(), srv.Bridges(), srv.Playbacks()
		if len(ch)+len(br)+len(pb) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("left in Asterisk: channels %v, bridges %v, playbacks %v", ch, br, pb)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// awaitNote reads p's notes until one of kind arrives.
func awaitNote(t testing.TB, p farEnd, kind aritest.NoteKind) aritest.Note {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case n, ok := <-p.Notes():
			if !ok {
				t.Fatalf("channel %s gone before %s", p.ID(), kind)
			}
			if n.Kind == kind {
				return n
			}
		case <-timeout:
			t.Fatalf("no %s on channel %s", kind, p.ID())
		}
	}
}

// A citizen's call on Asterisk goes through intake to the agent's phone,
// an endpoint originated into the application; the two talk in a mixing
// bridge; when the agent hangs up the caller is taken out of the bridge
// and rates the call, pressing 1 twice: one praise.
func TestAgentTakesTheCallAndTheCallerRates(t *testing.T) {
	t.Parallel()
	srv := newDouble(t)
	srv.SetEndpoint("PJSIP/1001", aritest.Phone{AnswerAfter: 200 * time.Millisecond})
	h := startHotline(t, srv, func(c *config.Config) {
		c.Agents = []config.Agent{{ID: "a1", Name: "Wang Fang", SIPUser: "1001", Password: "agent1-pass", Categories: allCategories}}
		c.ACD.WrapUp = 0
	})
	agentState(t, h, "a1", acd.Available)

	const who = "13800000101"
	done := make(chan caller.Transcript, 1)
	go func() {
		done <- call(t, srv, who, caller.Script{
			{On: prompts.Greeting, BargeIn: true, Press: "3"},
			{On: prompts.ConsentMenu, BargeIn: true, Press: "1"},
			{On: prompts.Rating, Press: "11"},
		})
	}()
	var agent *aritest.Party
	select {
	case agent = <-srv.Originated():
	case <-time.After(30 * time.Second):
		t.Fatal("the agent's phone was never called")
	}
	bridged := awaitNote(t, agent, aritest.NoteBridged)
	if len(bridged.With) != 1 {
		t.Errorf("agent bridged with %v, want the caller alone", bridged.With)
	}
	agentState(t, h, "a1", acd.Talking)
	agent.Hangup()
	tr := <-done

	rec := h.Records.Final(t, who)
	if rec.EndCause != calllog.FlowFinished || rec.AgentID != "a1" || rec.Rating != string(evaluation.Praise) {
		t.Fatalf("record: cause %s (%s) stage %s agent %q rating %q", rec.EndCause, rec.EndDetail, rec.Stage, rec.AgentID, rec.Rating)
	}
	if rec.Backend != "asterisk" || rec.SIPCallID == "" || rec.QueuedAt == nil || rec.AgentAnsweredAt == nil {
		t.Errorf("record backend %q, SIP Call-ID %q, queue times %v %v", rec.Backend, rec.SIPCallID, rec.QueuedAt, rec.AgentAnsweredAt)
	}
	ids := tr.HeardIDs()
	if i := slices.Index(ids, prompts.Rating); i < 0 || ids[len(ids)-1] != prompts.RatingThanks {
		t.Errorf("caller heard %v, want the rating question and its thanks last", ids)
	}
	ratings := evaluation.NewStore(h.Client, evaluation.StoreOptions{})
	list, err := ratings.List(t.Context(), evaluation.Query{})
	if err != nil || len(list) != 1 || list[0].Verdict != evaluation.Praise || list[0].CallID != rec.ID {
		t.Fatalf("ratings %+v %v, want one praise for the call", list, err)
	}
	agentState(t, h, "a1", acd.Available)
	noLeftovers(t, srv)
}

// An offer goes on: the first phone is busy (486), the second rings out,
// the third answers; the caller hangs up while talking: the agent's leg
// is hung up, there is no rating, and nothing is left in Asterisk.
func TestOfferGoesOnAndTheCallerHangsUpFirst(t *testing.T) {
	t.Parallel()
	srv := newDouble(t)
	srv.SetEndpoint("PJSIP/2001", aritest.Phone{Busy: true})
	srv.SetEndpoint("PJSIP/2002", aritest.Phone{NoAnswer: true})
	srv.SetEndpoint("PJSIP/2003", aritest.Phone{AnswerAfter: 100 * time.Millisecond})
	h := startHotline(t, srv, func(c *config.Config) {
		for i, id := range []string{"a1", "a2", "a3"} {
			c.Agents = append(c.Agents, config.Agent{ID: id, SIPUser: "200" + string(rune('1'+i)), Password: "password-" + id, Categories: allCategories})
		}
		c.ACD.RingTimeout = config.Duration(5 * time.Second)
		c.ACD.WrapUp = 0
	})
	for _, id := range []string{"a1", "a2", "a3"} {
		agentState(t, h, id, acd.Available)
	}

	const who = "13800000102"
	citizen, done := dial(t, srv, who, caller.Script{
		{On: prompts.Greeting, BargeIn: true, Press: "3"},
		{On: prompts.ConsentMenu, BargeIn: true, Press: "1"},
	})
	var agent *aritest.Party
	select {
	case agent = <-srv.Originated():
	case <-time.After(30 * time.Second):
		t.Fatal("no phone answered")
	}
	awaitNote(t, agent, aritest.NoteBridged)
	citizen.Hangup()
	awaitNote(t, agent, aritest.NoteHungUp)
	<-done

	rec := h.Records.Final(t, who)
	if rec.EndCause != calllog.CallerHangup || rec.AgentID != "a3" || rec.Rating != "" {
		t.Fatalf("record: cause %s stage %s agent %q rating %q", rec.EndCause, rec.Stage, rec.AgentID, rec.Rating)
	}
	store := acd.NewStore(h.Client, acd.StoreOptions{})
	// A rejection is no miss; ringing out is.
	for id, missed := range map[string]int{"a1": 0, "a2": 1, "a3": 0} {
		a, err := store.Agent(t.Context(), id)
		if err != nil || a.Missed != missed {
			t.Errorf("agent %s missed %d offers (%v), want %d", id, a.Missed, err, missed)
		}
	}
	day, err := store.Day(t.Context(), time.Now())
	if err != nil || day.Offers != 3 || day.Rejected != 1 || day.Unanswered != 1 || day.Answered != 1 {
		t.Errorf("day %+v (%v), want 3 offers: 1 rejected, 1 rang out, 1 answered", day, err)
	}
	noLeftovers(t, srv)
}
