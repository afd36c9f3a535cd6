package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/hotline12345/hotline/caller"
	"github.com/hotline12345/hotline/calllog"
	"github.com/hotline12345/hotline/internal/hotlinetest"
	"github.com/hotline12345/hotline/internal/redistest"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/prompts"
)

// TestCallsThroughASentinelFailover: hotline on Redis Sentinel, its master
// killed while calls are at every stage: one reading its appeal number
// back, one in the greeting, one arriving while no master answers. Every
// call runs to its goodbye, and its record and its appeal are on the new
// master, under the number the caller was told; a call after the
// failover runs as usual.
func TestCallsThroughASentinelFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("a Sentinel failover takes seconds")
	}
	t.Parallel()
	set := redistest.StartSentinel(t)
	h := hotlinetest.StartOn(t, set.URL(), set.Client(t), nil)
	script, err := caller.KeysScript("1,1")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	calls := map[string]<-chan caller.Transcript{}
	call := func(who string) {
		t.Helper()
		calls[who] = h.Call(ctx, t, who, script)
	}

	// The first call has its appeal: it is reading the number back.
	call("13700000201")
	waitAppeals(t, h, 1)
	// The second is in the greeting.
	call("13700000202")
	h.Records.Answered(t, "13700000202")
	old := set.KillMaster(t)
	// The third arrives while no master answers.
	call("13700000203")
	now := set.WaitFailover(t, old)
	t.Logf("master %s killed, %s took over", old, now)
	// And one after the failover.
	call("13700000204")

	ids := map[string]string{}
	for who, done := range calls {
		var tr caller.Transcript
		select {
		case tr = <-done:
		case <-time.After(3 * time.Minute):
			t.Fatalf("the call from %s did not end", who)
		}
		if tr.Status != 200 || tr.HungUpBy != caller.HungUpByServer {
			t.Errorf("%s: status %d, hung up by %q; want answered and ended by hotline", who, tr.Status, tr.HungUpBy)
			continue
		}
		rec := h.Records.Final(t, who)
		if rec.EndCause != calllog.FlowFinished || rec.Stage != ivr.StageGoodbye || rec.AppealID == "" {
			t.Errorf("%s: ended %s in %q (%s), appeal %q; want flow_finished in goodbye with an appeal", who, rec.EndCause, rec.Stage, rec.EndDetail, rec.AppealID)
			continue
		}
		got, err := h.Calls.Get(ctx, rec.ID)
		if err != nil || got.EndCause != rec.EndCause || got.AppealID != rec.AppealID || len(got.Events) != len(rec.Events) {
			t.Errorf("%s: the stored record %+v (%v) is not the final one %+v", who, got, err, rec)
		}
		if told := toldNumber(tr); told != rec.AppealID {
			t.Errorf("%s: told appeal number %q, the record says %q", who, told, rec.AppealID)
		}
		a, err := h.Appeals.Get(ctx, rec.AppealID)
		if err != nil || a.CallID != rec.ID || a.Caller != who {
			t.Errorf("%s: appeal %s: %+v, %v", who, rec.AppealID, a, err)
		}
		if other, ok := ids[rec.AppealID]; ok {
			t.Errorf("%s and %s were both given appeal %s", other, who, rec.AppealID)
		}
		ids[rec.AppealID] = who
	}
}

// TestCallOnCluster: hotline on a Redis Cluster of three masters takes a
// call to its goodbye and stores its record and appeal.
func TestCallOnCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("a cluster takes seconds to form")
	}
	t.Parallel()
	c := redistest.StartCluster(t)
	h := hotlinetest.StartOn(t, c.URL(), c.Client(t), nil)
	script, err := caller.KeysScript("1,1")
	if err != nil {
		t.Fatal(err)
	}
	const who = "13700000301"
	tr := <-h.Call(context.Background(), t, who, script)
	rec := h.Records.Final(t, who)
	if tr.Status != 200 || rec.EndCause != calllog.FlowFinished || rec.Stage != ivr.StageGoodbye {
		t.Fatalf("status %d, ended %s in %q (%s)", tr.Status, rec.EndCause, rec.Stage, rec.EndDetail)
	}
	if told := toldNumber(tr); told != rec.AppealID {
		t.Errorf("told appeal number %q, the record says %q", told, rec.AppealID)
	}
	if got, err := h.Calls.Get(context.Background(), rec.ID); err != nil || got.AppealID != rec.AppealID {
		t.Errorf("stored record %+v, %v", got, err)
	}
	if a, err := h.Appeals.Get(context.Background(), rec.AppealID); err != nil || a.CallID != rec.ID {
		t.Errorf("appeal %s: %+v, %v", rec.AppealID, a, err)
	}
}

// toldNumber is the appeal number the caller heard read back.
func toldNumber(tr caller.Transcript) string {
	ids := tr.HeardIDs()
	for i, id := range ids {
		if id != prompts.AppealNumber {
			continue
		}
		var n []rune
		for _, d := range ids[i+1:] {
			r, ok := digitOf(d)
			if !ok {
				break
			}
			n = append(n, r)
		}
		return string(n)
	}
	return ""
}

func digitOf(id prompts.ID) (rune, bool) {
	for _, r := range "0123456789" {
		if prompts.Digit(r) == id {
			return r, true
		}
	}
	return 0, false
}

// waitAppeals waits until hotline has recorded n appeals.
func waitAppeals(t *testing.T, h *hotlinetest.Hotline, n int) {
	t.Helper()
	deadline := time.After(time.Minute)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		list, err := h.Appeals.List(context.Background(), 0)
		if err == nil && len(list) >= n {
			return
		}
		select {
		case <-deadline:
			t.Fatalf("not %d appeals in a minute (%d, %v)", n, len(list), err)
		case <-tick.C:
		}
	}
}
