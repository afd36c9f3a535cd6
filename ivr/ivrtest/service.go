package ivrtest

import (
	"slices"
	"testing"

	"github.com/hotline12345/hotline/caller"
	"github.com/hotline12345/hotline/calllog"
	"github.com/hotline12345/hotline/evaluation"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/prompts"
)

// RunService runs the service scenarios: after intake the caller reaches
// an agent and, when the agent hangs up, is asked for the rating. h must
// dial a hotline whose agents take every category and whose phones answer
// each offer and hang up after about a second of talk. The four scenarios
// run at once: with fewer than four agents some wait in the queue, longer.
func RunService(t *testing.T, h Harness) {
	intake := caller.Script{
		{On: prompts.CategoryMenu, Press: "3"},
		{On: prompts.ConsentMenu, Press: "1"},
	}
	rated := func(t *testing.T, script caller.Script) (calllog.Record, caller.Transcript) {
		t.Helper()
		id, tr := dial(t, h, h.Methods[0], append(slices.Clone(intake), script...))
		rec := h.Records.Final(t, id)
		if rec.AgentID == "" || rec.QueuedAt == nil || rec.OfferedAt == nil || rec.AgentAnsweredAt == nil {
			t.Errorf("record names agent %q, queued %v, offered %v, answered %v: want all", rec.AgentID, rec.QueuedAt, rec.OfferedAt, rec.AgentAnsweredAt)
		}
		stored(t, h, rec)
		return rec, tr
	}

	t.Run("praise, pressed twice, counts once", func(t *testing.T) {
		t.Parallel()
		rec, tr := rated(t, caller.Script{{On: prompts.Rating, Press: "11"}})
		if tr.HungUpBy != "server" || rec.EndCause != calllog.FlowFinished || rec.Stage != ivr.StageGoodbye {
			t.Errorf("hung up by %q; record ended %s in %s (%s)", tr.HungUpBy, rec.EndCause, rec.Stage, rec.EndDetail)
		}
		if rec.Rating != string(evaluation.Praise) {
			t.Errorf("rating %q, want praise", rec.Rating)
		}
		ids := tr.HeardIDs()
		if slices.Index(ids, prompts.Rating) < slices.Index(ids, prompts.AppealNumber) || ids[len(ids)-1] != prompts.RatingThanks {
			t.Errorf("heard %v: want the appeal number, later the rating question, and its thanks last", ids)
		}
	})

	t.Run("bad review", func(t *testing.T) {
		t.Parallel()
		rec, _ := rated(t, caller.Script{{On: prompts.Rating, Press: "2"}})
		if rec.Rating != string(evaluation.BadReview) {
			t.Errorf("rating %q, want bad_review", rec.Rating)
		}
	})

	t.Run("no valid key", func(t *testing.T) {
		t.Parallel()
		rec, tr := rated(t, caller.Script{{On: prompts.Rating, Press: "7"}})
		asked := 0
		for _, id := range tr.HeardIDs() {
			if id == prompts.Rating {
				asked++
			}
		}
		ids := tr.HeardIDs()
		if rec.Rating != string(evaluation.NoRating) || asked != 3 || ids[len(ids)-1] != prompts.RatingNone {
			t.Errorf("rating %q after the question asked %d times, heard %v: want none after 3, the goodbye last", rec.Rating, asked, ids)
		}
	})

	t.Run("hang-up during the question", func(t *testing.T) {
		t.Parallel()
		rec, tr := rated(t, caller.Script{{On: prompts.Rating, BargeIn: true, Hangup: true}})
		if tr.HungUpBy != "caller" || rec.EndCause != calllog.CallerHangup || rec.Stage != ivr.StageRating || rec.Rating != string(evaluation.NoRating) {
			t.Errorf("hung up by %q; record ended %s in %s, rating %q: want caller_hangup in rating, none", tr.HungUpBy, rec.EndCause, rec.Stage, rec.Rating)
		}
	})
}
