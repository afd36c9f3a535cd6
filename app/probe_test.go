package app_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/caller"
	"github.com/hotline12345/hotline/calllog"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/evaluation"
	"github.com/hotline12345/hotline/internal/agentua"
	"github.com/hotline12345/hotline/internal/hotlinetest"
	"github.com/hotline12345/hotline/internal/redistest"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/prompts"
	"github.com/hotline12345/hotline/synthetic"
)

const probeSecret = "probe-secret-0123456789"

// probeCall places a call from who that answers the menus 1, 1 and, if
// asked, rates the agent with 1; sign, when set, gives its INVITE's
// extra headers.
func probeCall(t *testing.T, h *hotlinetest.Hotline, who string, sign func(callID string) []sip.Header) caller.Transcript {
	t.Helper()
	catalog, err := prompts.Default()
	if err != nil {
		t.Error(err)
		return caller.Transcript{}
	}
	tr, err := caller.Call(t.Context(), caller.Options{
		Target: h.URI(), From: who, Catalog: catalog, Headers: sign,
		Script: caller.Script{
			{On: prompts.CategoryMenu, BargeIn: true, Press: "1"},
			{On: prompts.ConsentMenu, BargeIn: true, Press: "1"},
		},
		Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
	})
	if err != nil {
		t.Errorf("call from %s: %v", who, err) // from the call's goroutine: no Fatal
	}
	return tr
}

func signedBy(secret string, at time.Time) func(string) []sip.Header {
	return func(callID string) []sip.Header {
		return []sip.Header{sip.NewHeader(synthetic.Header, synthetic.Sign(secret, callID, at))}
	}
}

// TestProbeCallsReachNobody: with an agent's phone registered, so that a
// citizen's call would be queued and bridged, the synthetic probe's
// calls (by caller number, by signed header) run intake and end: not
// offered to the agent, no rating, a synthetic appeal no list shows, a
// record that says synthetic, and no change in the day's figures. A
// forged claim is an ordinary call.
func TestProbeCallsReachNobody(t *testing.T) {
	t.Parallel()
	const byNumber, byHeader, forged = "13900000091", "13900000092", "13900000093"
	h := hotlinetest.Start(t, func(c *config.Config) {
		c.Agents = []config.Agent{{ID: "a1", Name: "Wang Fang", SIPUser: "agent1", Password: "agent1-pass", Categories: allCategories}}
		c.ACD.WrapUp = 0
		c.Probe.Callers = []string{byNumber}
		c.Probe.Secret = probeSecret
	})
	store := acd.NewStore(h.Client, acd.StoreOptions{})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	fleet, err := agentua.Start(ctx, agentua.Options{
		Registrar: h.SIP,
		Agents:    []agentua.Agent{{User: "agent1", Password: "agent1-pass"}},
		TalkTime:  300 * time.Millisecond,
		Logger:    zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = fleet.Stop(ctx)
	})
	agentState(t, store, "a1", acd.Available)

	// The probe's two ways and a forged signature, at once: a probe is
	// an ordinary call to everything but the queue and the figures.
	signs := map[string]func(string) []sip.Header{
		byNumber: nil,
		byHeader: signedBy(probeSecret, time.Now()),
		forged:   signedBy("not-the-probe-secret", time.Now()),
	}
	heard := make(map[string]caller.Transcript)
	var mu sync.Mutex
	var calls sync.WaitGroup
	for who, sign := range signs {
		calls.Go(func() {
			tr := probeCall(t, h, who, sign)
			mu.Lock()
			heard[who] = tr
			mu.Unlock()
		})
	}
	calls.Wait()
	if t.Failed() {
		return
	}
	probes := map[string]bool{}
	for _, who := range []string{byNumber, byHeader} {
		rec := h.Records.Final(t, who)
		probes[rec.ID] = true
		if !rec.Synthetic || rec.EndCause != calllog.FlowFinished || rec.Stage != ivr.StageGoodbye {
			t.Errorf("%s: record synthetic %v, cause %s (%s), stage %s", who, rec.Synthetic, rec.EndCause, rec.EndDetail, rec.Stage)
		}
		if rec.QueuedAt != nil || rec.OfferedAt != nil || rec.AgentID != "" || rec.Rating != "" {
			t.Errorf("%s: queued %v offered %v agent %q rating %q", who, rec.QueuedAt, rec.OfferedAt, rec.AgentID, rec.Rating)
		}
		if ids := heard[who].HeardIDs(); len(ids) == 0 || ids[len(ids)-1] != prompts.Goodbye {
			t.Errorf("%s: heard %v, want intake then goodbye", who, ids)
		}
		a, err := h.Appeals.ByCall(t.Context(), rec.ID)
		if err != nil || !a.Synthetic || a.ID != rec.AppealID {
			t.Errorf("%s: appeal %+v, %v; want a synthetic one, %s", who, a, err, rec.AppealID)
		}
	}

	// Signed with another secret: an ordinary call, queued and answered.
	rec := h.Records.Final(t, forged)
	if rec.Synthetic || rec.QueuedAt == nil || rec.AgentID != "a1" {
		t.Errorf("forged: record synthetic %v, queued %v, agent %q", rec.Synthetic, rec.QueuedAt, rec.AgentID)
	}
	forgedAppeal, err := h.Appeals.ByCall(t.Context(), rec.ID)
	if err != nil || forgedAppeal.Synthetic {
		t.Errorf("forged: appeal %+v, %v", forgedAppeal, err)
	}

	// Only the forged call is anywhere a person or a figure sees.
	if list, err := h.Appeals.List(t.Context(), 0); err != nil || len(list) != 1 || list[0].ID != forgedAppeal.ID {
		t.Errorf("appeals listed %+v, %v; want the forged call's alone", list, err)
	}
	if s := fleet.Stats(); s.Offers != 1 {
		t.Errorf("the agent's phone was offered %d calls, want the forged one", s.Offers)
	}
	ratings := evaluation.NewStore(h.Client, evaluation.StoreOptions{})
	list, err := ratings.List(t.Context(), evaluation.Query{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range list {
		if probes[r.CallID] {
			t.Errorf("a probe's call rated: %+v", r)
		}
	}
	day, err := store.Day(t.Context(), time.Now())
	if err != nil || day.Queued != 1 || day.Offers != 1 || day.TurnedAway != 0 || day.Answered != 1 || day.Abandoned != 0 {
		t.Errorf("day's figures %+v, %v; want the forged call's alone", day, err)
	}
}

// The probe's appeals are kept as long as the calls' records, closed
// appeals appeals.retention: older ones are gone once the node has
// started; a citizen's open appeal as old stays, and so do the probe's
// of yesterday and an appeal closed yesterday.
func TestAppealsPurged(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	const retention = 30 * 24 * time.Hour
	appeals := appeal.NewStore(rdb, appeal.StoreOptions{})
	if err := appeals.SeedOrganizers(t.Context(), []appeal.Organizer{{ID: "water", Name: "Water Group", Kind: appeal.Utility}}); err != nil {
		t.Fatal(err)
	}
	longAgo := time.Now().Add(-retention - time.Hour)
	create := func(callID string, synthetic bool, at time.Time) appeal.Appeal {
		t.Helper()
		a, err := appeals.Create(t.Context(), appeal.New{CallID: callID, Caller: "13900000094", Category: appeal.General, Synthetic: synthetic, At: at})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	closed := func(callID string, at time.Time) appeal.Appeal {
		t.Helper()
		a := create(callID, false, at)
		for _, act := range []appeal.Action{
			{Step: appeal.Dispatch, By: "dispatcher", Assignment: appeal.Assignment{Lead: "water"}},
			{Step: appeal.Sign, By: "water-desk", Organizer: "water"},
			{Step: appeal.FeedBack, By: "water-desk", Organizer: "water", Feedback: appeal.Feedback{Result: appeal.Solved}},
			{Step: appeal.Close, By: "supervisor"},
		} {
			if _, _, err := appeals.Step(t.Context(), a.ID, act); err != nil {
				t.Fatalf("%s %s: %v", act.Step, a.ID, err)
			}
		}
		return a
	}
	const appealRetention = 400 * 24 * time.Hour
	gone := []appeal.Appeal{create("old-probe", true, longAgo), closed("old-closed", time.Now().Add(-appealRetention-time.Hour))}
	kept := []appeal.Appeal{create("old-open", false, longAgo), create("recent-probe", true, time.Now().Add(-24*time.Hour)),
		closed("recent-closed", time.Now().Add(-24*time.Hour))}

	hotlinetest.StartOn(t, srv.URL(), rdb, func(c *config.Config) {
		c.Calls.Retention = config.Duration(retention)
		c.Appeals.Retention = config.Duration(appealRetention)
	})
	deadline := time.Now().Add(10 * time.Second)
	for _, a := range gone {
		for {
			_, err := appeals.Get(t.Context(), a.ID)
			if errors.Is(err, appeal.ErrNotFound) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the appeal of %s, %s, still there: %v", a.CallID, a.ID, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for _, a := range kept {
		if _, err := appeals.Get(t.Context(), a.ID); err != nil {
			t.Errorf("appeal of %s: %v", a.CallID, err)
		}
	}
}
