package appeal_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/internal/redistest"
	"github.com/hotline12345/hotline/internal/testclock"
	"github.com/hotline12345/hotline/storage"
)

func TestMain(m *testing.M) {
	if url := os.Getenv("HOTLINE_ENGINE_CHILD_REDIS"); url != "" {
		engineChild(url, os.Getenv("HOTLINE_ENGINE_CHILD_NOW"))
		return
	}
	os.Exit(redistest.RunTests(m))
}

// backends runs f against a real redis-server, Sentinel and Cluster (see
// redistest.Backends) and against the in-process store that storage falls
// back to, so the fallback is proven to run the same scripts.
func backends(t *testing.T, f func(t *testing.T, rdb redis.UniversalClient)) {
	redistest.Backends(t, f)
	t.Run("in-process", func(t *testing.T) {
		s, err := storage.Open(context.Background(), storage.Options{Mode: storage.InProcess})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		f(t, s.Client)
	})
}

var cst = appeal.DefaultLocation()

func newStore(rdb redis.UniversalClient, now time.Time) (*appeal.Store, *testclock.Clock) {
	c := testclock.New(now)
	return appeal.NewStore(rdb, appeal.StoreOptions{Now: c.Now}), c
}

func newAppeal(callID string, cat appeal.Category) appeal.New {
	at := time.Date(2026, 11, 27, 9, 15, 3, 0, cst)
	return appeal.New{
		CallID:   callID,
		Caller:   "13800138000",
		Category: cat,
		Lang:     "zh",
		Consent: appeal.Consent{
			Given: true, Key: "1", At: &at,
			PromptID: "consent.ask", PromptVersion: "3", Lang: "zh",
		},
	}
}

func TestCreate(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		now := time.Date(2026, 11, 27, 10, 0, 0, 0, cst)
		s, _ := newStore(rdb, now)
		n := newAppeal("call-1", appeal.Livelihood)
		a, err := s.Create(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		if a.ID != "2611270001" {
			t.Fatalf("id %q, want 2611270001", a.ID)
		}
		if a.CallID != n.CallID || a.Caller != n.Caller || a.Category != n.Category || a.Lang != n.Lang {
			t.Fatalf("appeal %+v does not match %+v", a, n)
		}
		if !a.Consent.Given || a.Consent.Key != "1" || !a.Consent.At.Equal(*n.Consent.At) || a.Consent.PromptVersion != "3" {
			t.Fatalf("consent %+v", a.Consent)
		}
		if !a.CreatedAt.Equal(now) || a.PeakMode {
			t.Fatalf("created %v peak %v", a.CreatedAt, a.PeakMode)
		}
		d, sg, f := appeal.Clocks(appeal.Livelihood, now, false, cst)
		if !a.DispatchDue.Equal(d) || !a.SignDue.Equal(sg) || !a.FeedbackDue.Equal(f) {
			t.Fatalf("clocks %v %v %v, want %v %v %v", a.DispatchDue, a.SignDue, a.FeedbackDue, d, sg, f)
		}

		got, err := s.Get(ctx, a.ID)
		if err != nil || !sameAppeal(got, a) {
			t.Fatalf("Get: %+v, %v; want %+v", got, err, a)
		}
		got, err = s.ByCall(ctx, "call-1")
		if err != nil || !sameAppeal(got, a) {
			t.Fatalf("ByCall: %+v, %v; want %+v", got, err, a)
		}
	})
}

func sameAppeal(a, b appeal.Appeal) bool {
	return a.ID == b.ID && a.CallID == b.CallID && a.Category == b.Category && a.PeakMode == b.PeakMode &&
		a.CreatedAt.Equal(b.CreatedAt) && a.DispatchDue.Equal(b.DispatchDue) &&
		a.SignDue.Equal(b.SignDue) && a.FeedbackDue.Equal(b.FeedbackDue) &&
		a.Consent.Given == b.Consent.Given && a.Consent.Key == b.Consent.Key
}

func TestCreateUsesTheTimeTheAppealWasTaken(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s, _ := newStore(rdb, time.Date(2026, 11, 28, 0, 0, 5, 0, cst))
		n := newAppeal("late-call", appeal.Emergency)
		n.At = time.Date(2026, 11, 27, 23, 59, 58, 0, cst)
		a, err := s.Create(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		if a.ID != "2611270001" || !a.CreatedAt.Equal(n.At) || !a.DispatchDue.Equal(n.At.Add(time.Hour)) {
			t.Fatalf("id %s created %v dispatch %v; want the day and clocks of At %v", a.ID, a.CreatedAt, a.DispatchDue, n.At)
		}
	})
}

func TestCreateIsIdempotentPerCall(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s, _ := newStore(rdb, time.Date(2026, 11, 27, 10, 0, 0, 0, cst))
		first, err := s.Create(ctx, newAppeal("call-A", appeal.General))
		if err != nil {
			t.Fatal(err)
		}
		// A retry, even one that says something else, returns the first.
		again, err := s.Create(ctx, newAppeal("call-A", appeal.Emergency))
		if err != nil {
			t.Fatal(err)
		}
		if !sameAppeal(again, first) {
			t.Fatalf("second Create gave %+v, want %+v", again, first)
		}
		// The day's sequence advanced once.
		next, err := s.Create(ctx, newAppeal("call-B", appeal.General))
		if err != nil {
			t.Fatal(err)
		}
		if first.ID != "2611270001" || next.ID != "2611270002" {
			t.Fatalf("ids %s, %s; want 2611270001, 2611270002", first.ID, next.ID)
		}
		list, err := s.List(ctx, 10)
		if err != nil || len(list) != 2 {
			t.Fatalf("List: %d appeals, %v; want 2", len(list), err)
		}
	})
}

func TestConcurrentCreates(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s, _ := newStore(rdb, time.Date(2026, 11, 27, 10, 0, 0, 0, cst))
		const calls = 40
		ids := make(chan string, 2*calls)
		errs := make(chan error, 2*calls)
		var wg sync.WaitGroup
		for i := range calls {
			// Each call twice at once: an intake retry racing the first try.
			for range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					a, err := s.Create(ctx, newAppeal(fmt.Sprintf("call-%d", i), appeal.General))
					if err != nil {
						errs <- err
						return
					}
					ids <- a.CallID + "=" + a.ID
				}()
			}
		}
		wg.Wait()
		close(ids)
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		byCall := map[string]string{}
		seen := map[string]string{}
		for pair := range ids {
			call, id, _ := strings.Cut(pair, "=")
			if prev, ok := byCall[call]; ok && prev != id {
				t.Fatalf("%s got two ids: %s and %s", call, prev, id)
			}
			if other, ok := seen[id]; ok && other != call {
				t.Fatalf("id %s given to %s and %s", id, other, call)
			}
			byCall[call], seen[id] = id, call
		}
		var all []string
		for id := range seen {
			all = append(all, id)
		}
		sort.Strings(all)
		if len(all) != calls || all[0] != "2611270001" || all[calls-1] != fmt.Sprintf("26112700%02d", calls) {
			t.Fatalf("ids %v, want 2611270001..%d without gaps", all, calls)
		}
	})
}

func TestIDsRestartEachDay(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s, clk := newStore(rdb, time.Date(2026, 11, 27, 23, 59, 59, 0, cst))
		want := func(call, id string) {
			t.Helper()
			a, err := s.Create(ctx, newAppeal(call, appeal.General))
			if err != nil {
				t.Fatal(err)
			}
			if a.ID != id {
				t.Fatalf("%s got id %s, want %s", call, a.ID, id)
			}
		}
		want("c1", "2611270001")
		want("c2", "2611270002")
		clk.Set(time.Date(2026, 11, 28, 0, 0, 1, 0, cst))
		want("c3", "2611280001")
		// The date is the hotline's: 16:30 UTC is already the 29th in
		// Beijing.
		clk.Set(time.Date(2026, 11, 28, 16, 30, 0, 0, time.UTC))
		want("c4", "2611290001")
		// Back to the 27th (a late At, say): its own sequence goes on.
		clk.Set(time.Date(2026, 11, 27, 12, 0, 0, 0, cst))
		want("c5", "2611270003")
	})
}

func TestIDGrowsPast9999(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s, _ := newStore(rdb, time.Date(2026, 11, 27, 10, 0, 0, 0, cst))
		// The day's counter, as the Store documents its keys.
		if err := rdb.Set(ctx, "hotline:{appeals}:seq:261127", 9998, 0).Err(); err != nil {
			t.Fatal(err)
		}
		a, err := s.Create(ctx, newAppeal("a", appeal.General))
		if err != nil || a.ID != "2611279999" {
			t.Fatalf("id %q, %v; want 2611279999", a.ID, err)
		}
		b, err := s.Create(ctx, newAppeal("b", appeal.General))
		if err != nil || b.ID != "26112710000" {
			t.Fatalf("id %q, %v; want 26112710000", b.ID, err)
		}
		if got, err := s.Get(ctx, b.ID); err != nil || got.CallID != "b" {
			t.Fatalf("Get(%s): %+v, %v", b.ID, got, err)
		}
	})
}

func TestPeakMode(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		now := time.Date(2026, 11, 27, 10, 0, 0, 0, cst)
		s, _ := newStore(rdb, now)
		if on, err := s.PeakMode(ctx); err != nil || on {
			t.Fatalf("PeakMode at start: %v, %v; want off", on, err)
		}
		if err := s.SetPeakMode(ctx, true); err != nil {
			t.Fatal(err)
		}
		if on, err := s.PeakMode(ctx); err != nil || !on {
			t.Fatalf("PeakMode: %v, %v; want on", on, err)
		}
		peak, err := s.Create(ctx, newAppeal("peak-general", appeal.General))
		if err != nil {
			t.Fatal(err)
		}
		if !peak.PeakMode || !peak.DispatchDue.Equal(now.Add(48*time.Hour)) {
			t.Fatalf("peak mode %v dispatch %v; want on and 48h", peak.PeakMode, peak.DispatchDue)
		}
		urgent, err := s.Create(ctx, newAppeal("peak-emergency", appeal.Emergency))
		if err != nil {
			t.Fatal(err)
		}
		if !urgent.PeakMode || !urgent.DispatchDue.Equal(now.Add(time.Hour)) {
			t.Fatalf("emergency in peak mode: %v %v; want recorded, 1h", urgent.PeakMode, urgent.DispatchDue)
		}

		if err := s.SetPeakMode(ctx, false); err != nil {
			t.Fatal(err)
		}
		normal, err := s.Create(ctx, newAppeal("normal-general", appeal.General))
		if err != nil {
			t.Fatal(err)
		}
		if normal.PeakMode || !normal.DispatchDue.Equal(now.Add(24*time.Hour)) {
			t.Fatalf("peak mode %v dispatch %v; want off and 24h", normal.PeakMode, normal.DispatchDue)
		}
		// Turning peak mode off does not change appeals made during it,
		// nor does a retried Create.
		again, err := s.Create(ctx, newAppeal("peak-general", appeal.General))
		if err != nil || !sameAppeal(again, peak) {
			t.Fatalf("retry after peak mode ended: %+v, %v; want %+v", again, err, peak)
		}
		got, err := s.Get(ctx, peak.ID)
		if err != nil || !got.PeakMode || !got.DispatchDue.Equal(peak.DispatchDue) {
			t.Fatalf("stored peak appeal: %+v, %v", got, err)
		}
	})
}

func TestNotFoundAndInvalid(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s, _ := newStore(rdb, time.Date(2026, 11, 27, 10, 0, 0, 0, cst))
		for _, id := range []string{"2611270001", "", "abc", "261127", "2611270001*"} {
			if _, err := s.Get(ctx, id); !errors.Is(err, appeal.ErrNotFound) {
				t.Errorf("Get(%q): %v, want ErrNotFound", id, err)
			}
		}
		if _, err := s.ByCall(ctx, "no-such-call"); !errors.Is(err, appeal.ErrNotFound) {
			t.Errorf("ByCall: %v, want ErrNotFound", err)
		}
		if _, err := s.ByCall(ctx, ""); !errors.Is(err, appeal.ErrNoCallID) {
			t.Errorf("ByCall(\"\"): %v, want ErrNoCallID", err)
		}
		if _, err := s.Create(ctx, newAppeal("", appeal.General)); !errors.Is(err, appeal.ErrNoCallID) {
			t.Errorf("Create without call id: %v, want ErrNoCallID", err)
		}
		if _, err := s.Create(ctx, newAppeal("c", "urgent")); !errors.Is(err, appeal.ErrUnknownCategory) {
			t.Errorf("Create with a bad category: %v, want ErrUnknownCategory", err)
		}
		if list, err := s.List(ctx, 10); err != nil || len(list) != 0 {
			t.Errorf("rejected Creates stored %d appeals, %v", len(list), err)
		}
	})
}

func TestList(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		start := time.Date(2026, 11, 27, 10, 0, 0, 0, cst)
		s, clk := newStore(rdb, start)
		for i := range 5 {
			clk.Set(start.Add(time.Duration(i) * time.Minute))
			if _, err := s.Create(ctx, newAppeal(fmt.Sprintf("c%d", i), appeal.General)); err != nil {
				t.Fatal(err)
			}
		}
		list, err := s.List(ctx, 3)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, a := range list {
			got = append(got, a.CallID)
		}
		if fmt.Sprint(got) != "[c4 c3 c2]" {
			t.Fatalf("List(3) = %v, want newest first [c4 c3 c2]", got)
		}
		if all, err := s.List(ctx, 0); err != nil || len(all) != 5 {
			t.Fatalf("List(0) gave %d, %v; want the default limit to cover 5", len(all), err)
		}
	})
}

func TestPrefixesAreSeparate(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		now := func() time.Time { return time.Date(2026, 11, 27, 10, 0, 0, 0, cst) }
		a := appeal.NewStore(rdb, appeal.StoreOptions{Now: now, Prefix: "site-a"})
		b := appeal.NewStore(rdb, appeal.StoreOptions{Now: now, Prefix: "site-b"})
		x, err := a.Create(ctx, newAppeal("c", appeal.General))
		if err != nil {
			t.Fatal(err)
		}
		y, err := b.Create(ctx, newAppeal("c", appeal.General))
		if err != nil {
			t.Fatal(err)
		}
		if x.ID != "2611270001" || y.ID != "2611270001" {
			t.Fatalf("ids %s, %s: each prefix has its own sequence", x.ID, y.ID)
		}
		if err := a.SetPeakMode(ctx, true); err != nil {
			t.Fatal(err)
		}
		if on, err := b.PeakMode(ctx); err != nil || on {
			t.Fatalf("peak mode leaked across prefixes: %v, %v", on, err)
		}
	})
}

// The appeals survive a clean restart and a crash of redis-server (the
// append-only file), and the same client carries on.
func TestAppealsSurviveRestartAndCrash(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	s, _ := newStore(rdb, time.Date(2026, 11, 27, 10, 0, 0, 0, cst))
	if err := s.SetPeakMode(ctx, true); err != nil {
		t.Fatal(err)
	}
	first, err := s.Create(ctx, newAppeal("before-restart", appeal.Complex))
	if err != nil {
		t.Fatal(err)
	}

	srv.Restart(t)
	if got, err := s.Get(ctx, first.ID); err != nil || !sameAppeal(got, first) {
		t.Fatalf("after Restart: %+v, %v", got, err)
	}
	second, err := s.Create(ctx, newAppeal("before-crash", appeal.Complex))
	if err != nil {
		t.Fatal(err)
	}
	if second.ID != "2611270002" || !second.PeakMode {
		t.Fatalf("after Restart: id %s peak %v; want 2611270002, peak kept", second.ID, second.PeakMode)
	}

	srv.Kill(t)
	if _, err := s.Create(ctx, newAppeal("during-crash", appeal.General)); err == nil {
		t.Fatal("Create succeeded with redis-server down")
	}
	srv.Start(t)
	for _, want := range []appeal.Appeal{first, second} {
		if got, err := s.ByCall(ctx, want.CallID); err != nil || !sameAppeal(got, want) {
			t.Fatalf("after Kill+Start, %s: %+v, %v", want.CallID, got, err)
		}
	}
	third, err := s.Create(ctx, newAppeal("after-crash", appeal.General))
	if err != nil {
		t.Fatal(err)
	}
	if third.ID != "2611270003" {
		t.Fatalf("after Kill+Start the sequence gave %s, want 2611270003", third.ID)
	}
}

func BenchmarkCreate(b *testing.B) {
	ctx := context.Background()
	s := appeal.NewStore(redistest.Start(b).Client(b), appeal.StoreOptions{})
	for i := 0; b.Loop(); i++ {
		if _, err := s.Create(ctx, newAppeal(fmt.Sprintf("bench-%d", i), appeal.General)); err != nil {
			b.Fatal(err)
		}
	}
}

// The synthetic probe's appeals get a number, read out as any, and can be
// looked up, but no list shows them.
func TestSyntheticAppealsAreNotListed(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s, clk := newStore(rdb, time.Date(2026, 11, 27, 10, 0, 0, 0, cst))
		if _, err := s.Create(ctx, newAppeal("citizen", appeal.General)); err != nil {
			t.Fatal(err)
		}
		clk.Set(clk.Now().Add(time.Minute))
		n := newAppeal("probe", appeal.General)
		n.Synthetic = true
		a, err := s.Create(ctx, n)
		if err != nil || a.ID == "" || !a.Synthetic {
			t.Fatalf("Create synthetic = %+v, %v", a, err)
		}
		n.CallID = "probe-journaled"
		b, err := s.CreateAs(ctx, n, appeal.FormatID("261127", 9000))
		if err != nil || !b.Synthetic {
			t.Fatalf("CreateAs synthetic = %+v, %v", b, err)
		}
		if got, err := s.Get(ctx, a.ID); err != nil || !got.Synthetic {
			t.Fatalf("Get %s = %+v, %v", a.ID, got, err)
		}
		list, err := s.List(ctx, 0)
		if err != nil || len(list) != 1 || list[0].CallID != "citizen" || list[0].Synthetic {
			t.Fatalf("List = %+v, %v; want the citizen's appeal alone", list, err)
		}
	})
}

// The probe's appeals older than the retention go, with their call keys,
// a batch at a time; a citizen's appeal as old stays.
func TestSyntheticAppealsPurged(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		start := time.Date(2026, 11, 27, 10, 0, 0, 0, cst)
		s, clk := newStore(rdb, start)
		old1 := newAppeal("citizen", appeal.General)
		old1.At = start
		citizen, err := s.Create(ctx, old1)
		if err != nil {
			t.Fatal(err)
		}
		var old []appeal.Appeal
		for i := range 3 {
			n := newAppeal(fmt.Sprintf("old-probe-%d", i), appeal.General)
			n.Synthetic, n.At = true, start
			a, err := s.Create(ctx, n)
			if err != nil {
				t.Fatal(err)
			}
			old = append(old, a)
		}
		clk.Set(start.Add(48 * time.Hour))
		n := newAppeal("new-probe", appeal.General)
		n.Synthetic, n.At = true, clk.Now()
		recent, err := s.Create(ctx, n)
		if err != nil {
			t.Fatal(err)
		}

		before := start.Add(24 * time.Hour)
		if got, err := s.PurgeSynthetic(ctx, before, 2); err != nil || got != 2 {
			t.Fatalf("first batch: %d, %v; want 2", got, err)
		}
		if got, err := s.PurgeSynthetic(ctx, before, 2); err != nil || got != 1 {
			t.Fatalf("second batch: %d, %v; want 1", got, err)
		}
		if got, err := s.PurgeSynthetic(ctx, before, 2); err != nil || got != 0 {
			t.Fatalf("nothing left: %d, %v", got, err)
		}
		for _, a := range old {
			if _, err := s.Get(ctx, a.ID); !errors.Is(err, appeal.ErrNotFound) {
				t.Errorf("Get %s after the purge: %v", a.ID, err)
			}
			if _, err := s.ByCall(ctx, a.CallID); !errors.Is(err, appeal.ErrNotFound) {
				t.Errorf("ByCall %s after the purge: %v", a.CallID, err)
			}
		}
		if a, err := s.ByCall(ctx, "new-probe"); err != nil || a.ID != recent.ID {
			t.Errorf("the recent probe's appeal: %+v, %v", a, err)
		}
		if a, err := s.Get(ctx, citizen.ID); err != nil || a.CallID != "citizen" {
			t.Errorf("the citizen's appeal: %+v, %v", a, err)
		}
		if n, err := rdb.Exists(ctx, "hotline:{appeals}:call:old-probe-0").Result(); err != nil || n != 0 {
			t.Errorf("the old probe's call key: %d, %v", n, err)
		}
	})
}
