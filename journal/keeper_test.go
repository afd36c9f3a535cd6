package journal_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/calllog"
	"github.com/hotline12345/hotline/evaluation"
	"github.com/hotline12345/hotline/internal/redistest"
	"github.com/hotline12345/hotline/journal"
)

// rig is a keeper on a real redis-server, with a journal in a folder of
// its own.
type rig struct {
	srv     *redistest.Server
	rdb     redis.UniversalClient
	dir     string
	j       *journal.Journal
	k       *journal.Keeper
	appeals *appeal.Store
	calls   *calllog.Store
	ratings *evaluation.Store
	block   int64
	// outageAfter is the keepers' OutageAfter.
	outageAfter time.Duration
}

func newRig(t *testing.T, block int64) *rig {
	t.Helper()
	srv := redistest.Start(t)
	r := &rig{srv: srv, rdb: srv.Client(t), dir: t.TempDir(), block: block}
	r.appeals = appeal.NewStore(r.rdb, appeal.StoreOptions{})
	r.calls = calllog.NewStore(r.rdb, calllog.StoreOptions{})
	r.ratings = evaluation.NewStore(r.rdb, evaluation.StoreOptions{})
	r.reopen(t)
	return r
}

// reopen opens the journal and a keeper on it, as a restarted node does.
func (r *rig) reopen(t *testing.T) {
	t.Helper()
	if r.j != nil {
		_ = r.j.Close()
	}
	log := zerolog.New(zerolog.NewTestWriter(t))
	j, err := journal.Open(journal.Options{Dir: r.dir, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close() })
	r.j = j
	r.k = journal.NewKeeper(journal.KeeperOptions{
		Journal: j, Appeals: r.appeals, Calls: r.calls, Ratings: r.ratings,
		Ping:     func(ctx context.Context) error { return r.rdb.Ping(ctx).Err() },
		Deadline: 500 * time.Millisecond, Every: 200 * time.Millisecond, Block: r.block, OutageAfter: r.outageAfter, Log: log,
	})
}

func newAppeal(callID string) appeal.New {
	at := time.Now()
	return appeal.New{
		CallID: callID, Caller: "138" + callID, Category: appeal.Emergency, Lang: "zh", At: at,
		Consent: appeal.Consent{Given: true, Key: "1", At: &at, PromptID: "consent_menu", PromptVersion: "v1", Lang: "zh"},
	}
}

func record(callID string, ended bool) calllog.Record {
	r := calllog.Record{ID: callID, Backend: "fake", Caller: "138" + callID, StartedAt: time.Now(), Events: []calllog.Event{}}
	if ended {
		at := time.Now()
		r.AnsweredAt, r.EndedAt, r.EndCause, r.Stage = &at, &at, calllog.FlowFinished, "goodbye"
	}
	return r
}

func rating(callID string) evaluation.Rating {
	return evaluation.Rating{
		CallID: callID, AgentID: "a1", Category: appeal.Emergency, Verdict: evaluation.BadReview, Key: "2",
		PromptID: "rating", PromptVersion: "v1", At: time.Now(),
	}
}

func served(callID string) evaluation.ServedCall {
	return evaluation.ServedCall{CallID: callID, AgentID: "a1", Category: appeal.Emergency, At: time.Now()}
}

// Appeals, their consent, call records, served calls and ratings taken while Redis is
// killed are journaled, the appeals under numbers of the node's block;
// once Redis is back they are stored, once, the appeals under the
// numbers given out.
func TestOutageJournaledAndReplayed(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, 10)
	if err := r.k.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if r.k.Down() {
		t.Fatal("down while Redis answers")
	}
	// The first appeal goes to Redis, after the block the node reserved.
	before, err := r.k.Appeals().Create(ctx, newAppeal("c0"))
	if err != nil || before.Journaled {
		t.Fatalf("appeal with Redis up: %+v, %v", before, err)
	}

	r.srv.Kill(t)
	told := map[string]string{}
	for _, c := range []string{"c1", "c2", "c3"} {
		a, err := r.k.Appeals().Create(ctx, newAppeal(c))
		if err != nil {
			t.Fatal(err)
		}
		if !a.Journaled || a.ID == "" || a.NumberUntold {
			t.Fatalf("%s: appeal %+v, want journaled with a number", c, a)
		}
		if again, err := r.k.Appeals().Create(ctx, newAppeal(c)); err != nil || again.ID != a.ID {
			t.Fatalf("%s: again %+v, %v; want the same number", c, again, err)
		}
		told[c] = a.ID
		if err := r.k.Calls().Save(ctx, record(c, false)); err != nil {
			t.Fatal(err)
		}
		if err := r.k.Calls().Save(ctx, record(c, true)); err != nil {
			t.Fatal(err)
		}
		if err := r.k.Ratings().Served(ctx, served(c)); err != nil {
			t.Fatal(err)
		}
		if _, err := r.k.Ratings().Record(ctx, rating(c)); err != nil {
			t.Fatal(err)
		}
	}
	// A caller who hung up before the rating question: served all the
	// same, on the complaint line's count.
	if err := r.k.Ratings().Served(ctx, served("c9")); err != nil {
		t.Fatal(err)
	}
	if !r.k.Down() {
		t.Error("not down after writes failed")
	}
	if err := r.k.RedisCheck(ctx); err == nil {
		t.Error("RedisCheck healthy while Redis is killed")
	}
	if err := r.k.Refresh(ctx); err == nil {
		t.Error("Refresh found Redis answering while it is killed")
	}
	if n := r.k.Pending(); n != 13 {
		t.Errorf("%d entries pending, want 13 (3 appeals, 3 records, 4 served calls, 3 ratings)", n)
	}

	r.srv.Start(t)
	if err := r.k.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if r.k.Down() || r.k.Pending() != 0 {
		t.Fatalf("after replay: down %v, %d pending", r.k.Down(), r.k.Pending())
	}
	// Replaying again (an entry removed but not compacted away before a
	// crash) changes nothing.
	for _, c := range []string{"c1", "c2", "c3"} {
		a, err := r.appeals.ByCall(ctx, c)
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		if a.ID != told[c] || !a.Journaled || !a.Consent.Given || a.Consent.PromptVersion != "v1" {
			t.Errorf("%s: stored %+v, want number %s with its consent", c, a, told[c])
		}
		rec, err := r.calls.Get(ctx, c)
		if err != nil || rec.EndCause != calllog.FlowFinished {
			t.Errorf("%s: record %+v, %v; want the final one", c, rec, err)
		}
		if rt, err := r.ratings.Get(ctx, c); err != nil || rt.Verdict != evaluation.BadReview {
			t.Errorf("%s: rating %+v, %v", c, rt, err)
		}
	}
	list, _ := r.appeals.List(ctx, 100)
	if len(list) != 4 {
		t.Errorf("%d appeals stored, want 4", len(list))
	}
	day, err := r.ratings.Totals(ctx, time.Now())
	if err != nil || day.BadReview != 3 || day.Served != 4 {
		t.Errorf("bad reviews counted %d and calls served %d (%v), want 3 and 4: each event once", day.BadReview, day.Served, err)
	}
	// A new appeal with Redis back takes a number after the block.
	after, err := r.k.Appeals().Create(ctx, newAppeal("c4"))
	if err != nil || after.Journaled {
		t.Fatalf("appeal after: %+v, %v", after, err)
	}
	for c, id := range told {
		if id >= after.ID || id == before.ID {
			t.Errorf("%s: told %s, which Redis gave out too (%s, %s)", c, id, before.ID, after.ID)
		}
	}
}

// A node restarted while Redis is down keeps its journal and never gives
// a number twice; with its block used up, the caller gets no number and
// the appeal is numbered at replay.
func TestRestartDuringOutage(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, 2)
	if err := r.k.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	r.srv.Kill(t)
	first, err := r.k.Appeals().Create(ctx, newAppeal("c1"))
	if err != nil || first.ID == "" {
		t.Fatalf("%+v, %v", first, err)
	}
	r.reopen(t)
	second, err := r.k.Appeals().Create(ctx, newAppeal("c2"))
	if err != nil || second.ID == "" || second.ID == first.ID {
		t.Fatalf("after a restart: %+v, %v; want a number other than %s", second, err, first.ID)
	}
	third, err := r.k.Appeals().Create(ctx, newAppeal("c3"))
	if err != nil || third.ID != "" || !third.NumberUntold || !third.Journaled {
		t.Fatalf("with the block used up: %+v, %v; want journaled, no number", third, err)
	}
	if err := r.k.Calls().Save(ctx, record("c3", true)); err != nil {
		t.Fatal(err)
	}
	r.reopen(t)
	r.srv.Start(t)
	if err := r.k.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for c, want := range map[string]string{"c1": first.ID, "c2": second.ID, "c3": ""} {
		a, err := r.appeals.ByCall(ctx, c)
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		if want != "" && a.ID != want {
			t.Errorf("%s: stored as %s, told %s", c, a.ID, want)
		}
		if want == "" && !a.NumberUntold {
			t.Errorf("%s: %+v, want marked number_untold for the call-back", c, a)
		}
		if want == "" {
			if rec, err := r.calls.Get(ctx, c); err != nil || rec.AppealID != a.ID {
				t.Errorf("%s: record's appeal %q (%v), want the number given at replay, %s", c, rec.AppealID, err, a.ID)
			}
		}
		if ids[a.ID] {
			t.Errorf("number %s given twice", a.ID)
		}
		ids[a.ID] = true
	}
}

// An entry the store refuses as invalid is set aside, not retried for
// ever nor dropped unseen.
func TestRefusedEntrySetAside(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, 10)
	bad := record("c1", true)
	bad.StartedAt = time.Time{} // the store refuses a record without a start
	if _, err := r.j.Append(journal.KindCall, "c1", bad); err != nil {
		t.Fatal(err)
	}
	if err := r.k.Calls().Save(ctx, record("c2", true)); err != nil {
		t.Fatal(err)
	}
	r.srv.Kill(t)
	if err := r.k.Calls().Save(ctx, record("c3", true)); err != nil {
		t.Fatal(err)
	}
	r.srv.Start(t)
	if err := r.k.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if n := r.k.Pending(); n != 0 {
		t.Errorf("%d pending, want 0", n)
	}
	b, err := os.ReadFile(filepath.Join(r.dir, "rejected.jsonl"))
	if err != nil || !strings.Contains(string(b), `"key":"c1"`) || strings.Count(string(b), "\n") != 1 {
		t.Errorf("rejected.jsonl: %q, %v; want the c1 record", b, err)
	}
	if _, err := r.calls.Get(ctx, "c3"); err != nil {
		t.Errorf("c3, after the refused entry: %v", err)
	}
}

// A review decided while Redis is down is applied at replay with the time
// it was taken.
func TestReviewJournaled(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, 10)
	if _, err := r.k.Ratings().Record(ctx, rating("c1")); err != nil {
		t.Fatal(err)
	}
	r.srv.Kill(t)
	c, err := r.k.Ratings().Review(ctx, "c1", evaluation.Upheld, "li", "rude")
	if !errors.Is(err, journal.ErrJournaled) || c.Status != evaluation.Upheld || c.ReviewedAt == nil {
		t.Fatalf("review while down: %+v, %v; want journaled", c, err)
	}
	r.srv.Start(t)
	if err := r.k.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := r.ratings.Complaint(ctx, "c1")
	if err != nil || got.Status != evaluation.Upheld || got.ReviewedBy != "li" || !got.ReviewedAt.Equal(*c.ReviewedAt) {
		t.Errorf("stored complaint %+v, %v; want upheld by li at %s", got, err, c.ReviewedAt)
	}
}

// Run notices Redis stop and answer again, and replays on its own.
func TestRunReplaysWhenRedisReturns(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	r := newRig(t, 10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.k.Run(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	r.srv.Kill(t)
	eventually(t, "the keeper sees Redis down", r.k.Down)
	if err := r.k.Calls().Save(ctx, record("c1", true)); err != nil {
		t.Fatal(err)
	}
	r.srv.Start(t)
	eventually(t, "the journal replayed", func() bool { return !r.k.Down() && r.k.Pending() == 0 })
	if _, err := r.calls.Get(ctx, "c1"); err != nil {
		t.Error(err)
	}
}

// eventually waits, up to a minute, for cond to hold.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not in a minute: %s", what)
		}
		<-tick.C
	}
}

// A break shorter than OutageAfter is ridden out: RideOut returns once
// Redis answers again; past OutageAfter it is an outage.
func TestRideOut(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, 10)
	r.outageAfter = time.Minute
	r.reopen(t)
	if !r.k.RideOut(ctx) || r.k.Outage() {
		t.Fatal("Redis answers: RideOut false or Outage true")
	}
	r.srv.Kill(t)
	if err := r.k.Refresh(ctx); err == nil || !r.k.Down() {
		t.Fatal("not down with Redis killed")
	}
	if r.k.Outage() {
		t.Error("an outage at once, with a minute to ride out")
	}
	back := make(chan bool)
	go func() { back <- r.k.RideOut(ctx) }()
	r.srv.Start(t)
	if err := r.k.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if !<-back {
		t.Error("RideOut false, Redis answers again")
	}

	r.outageAfter = 0
	r.reopen(t)
	r.srv.Kill(t)
	_ = r.k.Refresh(ctx)
	if !r.k.Outage() || r.k.RideOut(ctx) {
		t.Error("with no break to ride out: not an outage, or RideOut true")
	}
}

// A Redis that takes connections but answers nothing (frozen) costs a
// write the deadline, not go-redis's read timeouts and retries.
func TestFrozenRedisCostsTheDeadline(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, 10)
	if err := r.k.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	pid := r.srv.PID()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = syscall.Kill(pid, syscall.SIGCONT) }()
	start := time.Now()
	a, err := r.k.Appeals().Create(ctx, newAppeal("c1"))
	took := time.Since(start)
	if err != nil || !a.Journaled || a.ID == "" {
		t.Fatalf("appeal with Redis frozen: %+v, %v", a, err)
	}
	if took > 2*500*time.Millisecond {
		t.Errorf("the appeal took %s with a deadline of 500ms", took)
	}
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if err := r.k.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := r.appeals.ByCall(ctx, "c1"); err != nil || got.ID != a.ID {
		t.Errorf("stored %+v, %v; want %s", got, err, a.ID)
	}
}

// A full journal refuses what it cannot keep and says so in Check (and so
// /healthz); once Redis is back and the journal replayed, it is healthy.
func TestFullJournalSaysSo(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, 10)
	log := zerolog.New(zerolog.NewTestWriter(t))
	j, err := journal.Open(journal.Options{Dir: t.TempDir(), MaxSize: 4096, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close() })
	k := journal.NewKeeper(journal.KeeperOptions{
		Journal: j, Appeals: r.appeals, Calls: r.calls, Ratings: r.ratings,
		Ping: func(ctx context.Context) error { return r.rdb.Ping(ctx).Err() }, Deadline: 300 * time.Millisecond, Log: log,
	})
	r.srv.Kill(t)
	var refused error
	for i := 0; i < 100 && refused == nil; i++ {
		refused = k.Calls().Save(ctx, record(fmt.Sprintf("c%d", i), true))
	}
	if !errors.Is(refused, journal.ErrFull) {
		t.Fatalf("saves into a 4 KiB journal: %v, want ErrFull at last", refused)
	}
	if err := k.Check(ctx); err == nil {
		t.Error("Check healthy with the journal full")
	}
	r.srv.Start(t)
	if err := k.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if err := k.Check(ctx); err != nil || k.Pending() != 0 {
		t.Errorf("after the replay: Check %v, %d pending", err, k.Pending())
	}
}
