package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/hotline12345/hotline/app"
	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/caller"
	"github.com/hotline12345/hotline/calllog"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/internal/hotlinetest"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/prompts"
	"github.com/hotline12345/hotline/web"
)

// appealGate holds each call at the appeal step until released: the test
// kills Redis while callers are there.
type appealGate struct {
	inner   ivr.AppealRecorder
	arrived chan string
	release chan struct{}
}

func (g *appealGate) Create(ctx context.Context, n appeal.New) (appeal.Appeal, error) {
	select {
	case g.arrived <- n.CallID:
	default:
	}
	select {
	case <-g.release:
	case <-ctx.Done():
		return appeal.Appeal{}, context.Cause(ctx)
	}
	return g.inner.Create(ctx, n)
}

func health(t *testing.T, h *hotlinetest.Hotline) (int, web.Health) {
	t.Helper()
	res, err := http.Get(h.API() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var got web.Health
	if err := json.NewDecoder(res.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, got
}

// TestAppealsSurviveARedisOutage: Redis is killed as three callers reach
// the appeal step. Each still hears an appeal number and then that they
// will be called back; a caller arriving during the outage hears the
// apology alone; /healthz says the node serves degraded, in journal
// mode. Once Redis is back, the appeals with their consent evidence are
// stored under the numbers the callers heard, once, and every call's
// final record is there, marked for the call-back.
func TestAppealsSurviveARedisOutage(t *testing.T) {
	t.Parallel()
	gate := &appealGate{arrived: make(chan string, 10), release: make(chan struct{})}
	h := hotlinetest.StartWith(t, hotlinetest.Options{
		Tune: func(c *config.Config) { c.Journal.OutageAfter = config.Duration(time.Second) },
		Appeals: func(inner ivr.AppealRecorder) ivr.AppealRecorder {
			gate.inner = inner
			return gate
		},
	})
	whos := []string{"13700000401", "13700000402", "13700000403"}
	calls := map[string]<-chan caller.Transcript{}
	for _, who := range whos {
		calls[who] = dial(t, h, who, "1,1")
	}
	for range whos {
		select {
		case <-gate.arrived:
		case <-time.After(time.Minute):
			t.Fatal("the calls did not reach the appeal step in a minute")
		}
	}
	h.Redis.Kill(t)
	close(gate.release)

	told := map[string]string{}
	for _, who := range whos {
		var tr caller.Transcript
		select {
		case tr = <-calls[who]:
		case <-time.After(2 * time.Minute):
			t.Fatalf("the call from %s did not end", who)
		}
		told[who] = toldNumber(tr)
		heard := tr.HeardIDs()
		if tr.Status != 200 || tr.HungUpBy != caller.HungUpByServer || len(told[who]) < 10 || heard[len(heard)-1] != prompts.OutageCallback {
			t.Errorf("%s: status %d, hung up by %q, heard %v; want a number and %s last", who, tr.Status, tr.HungUpBy, heard, prompts.OutageCallback)
		}
		rec := h.Records.Final(t, who)
		if rec.EndCause != calllog.FlowFinished || rec.Stage != ivr.StageOutage || !rec.Callback || rec.AppealID != told[who] {
			t.Errorf("%s: ended %s in %q (%s), callback %v, appeal %q; want flow_finished in outage, a call-back, appeal %s",
				who, rec.EndCause, rec.Stage, rec.EndDetail, rec.Callback, rec.AppealID, told[who])
		}
	}
	if code, got := health(t, h); code != 200 || got.Status != "degraded" || got.Mode != "journal" || got.Checks["redis"] == "ok" {
		t.Errorf("/healthz during the outage: %d %+v; want 200 degraded in journal mode", code, got)
	}

	// A caller arriving during the outage hears the apology alone.
	const late = "13700000404"
	tr := <-dial(t, h, late, "1,1")
	if got := tr.HeardIDs(); tr.Status != 200 || !slices.Equal(got, []prompts.ID{prompts.OutageCallback}) {
		t.Errorf("%s: status %d, heard %v; want only %s", late, tr.Status, got, prompts.OutageCallback)
	}

	h.Redis.Start(t)
	ctx := context.Background()
	until(t, time.Minute, "the journal replayed", func() (bool, string) {
		for _, who := range append(whos, late) {
			rec := h.Records.Final(t, who)
			got, err := h.Calls.Get(ctx, rec.ID)
			if err != nil || got.EndedAt == nil {
				return false, who + "'s record: " + errString(err)
			}
		}
		return true, ""
	})
	for _, who := range whos {
		rec := h.Records.Final(t, who)
		a, err := h.Appeals.ByCall(ctx, rec.ID)
		if err != nil {
			t.Errorf("%s: appeal: %v", who, err)
			continue
		}
		if a.ID != told[who] || a.Caller != who || a.Category != appeal.Emergency || !a.Journaled {
			t.Errorf("%s: stored appeal %+v; want %s, emergency, journaled", who, a, told[who])
		}
		if c := a.Consent; !c.Given || c.Key != "1" || c.At == nil || c.PromptID != string(prompts.ConsentMenu) || c.PromptVersion == "" {
			t.Errorf("%s: consent evidence %+v", who, c)
		}
		got, _ := h.Calls.Get(ctx, rec.ID)
		if got.Stage != ivr.StageOutage || !got.Callback || got.AppealID != told[who] || len(got.Events) != len(rec.Events) {
			t.Errorf("%s: stored record %+v is not the final one", who, got)
		}
	}
	if got, _ := h.Calls.Get(ctx, h.Records.Final(t, late).ID); !got.Callback || got.Stage != ivr.StageOutage {
		t.Errorf("%s: stored record %+v, want a call-back", late, got)
	}
	if list, err := h.Appeals.List(ctx, 100); err != nil || len(list) != len(whos) {
		t.Errorf("%d appeals stored (%v), want %d: each once", len(list), err, len(whos))
	}
	if code, got := health(t, h); code != 200 || got.Status != "ok" {
		t.Errorf("/healthz after the outage: %d %+v", code, got)
	}
}

func errString(err error) string {
	if err == nil {
		return "not ended"
	}
	return err.Error()
}

// TestDrainWithRedisDown: SIGTERM's drain with Redis killed and a call in
// progress ends within shutdown.grace, /healthz says draining meanwhile,
// and the call's final record is kept in the journal for the next start.
func TestDrainWithRedisDown(t *testing.T) {
	t.Parallel()
	const grace = 4 * time.Second
	h := hotlinetest.Start(t, func(c *config.Config) { c.Shutdown.Grace = config.Duration(grace) })
	const who = "13700000405"
	done := dial(t, h, who, "")
	h.Records.Started(t, who)
	h.Redis.Kill(t)
	stopped := make(chan time.Duration)
	start := time.Now()
	go func() {
		h.Stop(t, app.ErrDrain)
		stopped <- time.Since(start)
	}()
	until(t, 10*time.Second, "/healthz says draining", func() (bool, string) {
		code, got := health(t, h)
		return code == 503 && got.Status == "draining", got.Status
	})
	took := <-stopped
	if took > grace {
		t.Errorf("the drain took %s with Redis down, past the grace of %s", took.Round(time.Millisecond), grace)
	}
	tr := <-done
	if tr.HungUpBy != caller.HungUpByServer {
		t.Errorf("hung up by %q", tr.HungUpBy)
	}
	if rec := h.Records.Final(t, who); rec.EndCause != calllog.Shutdown {
		t.Errorf("the call ended %s, want shutdown", rec.EndCause)
	}
}
