package calllog_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hotline12345/hotline/calllog"
	"github.com/hotline12345/hotline/internal/redistest"
	"github.com/hotline12345/hotline/internal/testclock"
	"github.com/hotline12345/hotline/internal/zpage"
	"github.com/hotline12345/hotline/storage"
)

func TestMain(m *testing.M) { os.Exit(redistest.RunTests(m)) }

// backends runs f against a real redis-server, Sentinel and Cluster (see
// redistest.Backends) and against the in-process store that storage falls
// back to, so the fallback is proven to run the same script.
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

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func ptr(t time.Time) *time.Time { return &t }

// stages returns a call's record as it is saved at start, at answer and
// at end.
func stages(id string, started time.Time) (start, answered, ended calllog.Record) {
	start = calllog.Record{
		ID: id, SIPCallID: id + "@carrier", Backend: "sip", Caller: "13800138000", Dialled: "12345",
		Codec: "PCMU", StartedAt: started, Lang: "zh",
		Events: []calllog.Event{{At: started, Kind: "prompt", Prompt: "greeting", Version: "2", Lang: "zh"}},
	}
	answered = start
	answered.AnsweredAt = ptr(started.Add(2 * time.Second))
	answered.Events = append(append([]calllog.Event{}, start.Events...),
		calllog.Event{At: started.Add(5 * time.Second), Kind: "digit", Digit: "1", Method: "rfc4733"})
	ended = answered
	ended.EndedAt = ptr(started.Add(time.Minute))
	ended.EndCause = calllog.CallerHangup
	ended.Stage = "rating"
	ended.AppealID = "2611270001"
	ended.Events = append(append([]calllog.Event{}, answered.Events...),
		calllog.Event{At: started.Add(50 * time.Second), Kind: "stage", Stage: "rating"})
	return start, answered, ended
}

func same(a, b calllog.Record) bool {
	return fmt.Sprintf("%+v", norm(a)) == fmt.Sprintf("%+v", norm(b))
}

// norm makes times comparable after a JSON round trip.
func norm(r calllog.Record) calllog.Record {
	r.StartedAt = r.StartedAt.UTC()
	if r.AnsweredAt != nil {
		r.AnsweredAt = ptr(r.AnsweredAt.UTC())
	}
	if r.EndedAt != nil {
		r.EndedAt = ptr(r.EndedAt.UTC())
	}
	ev := make([]calllog.Event, len(r.Events))
	for i, e := range r.Events {
		e.At = e.At.UTC()
		ev[i] = e
	}
	r.Events = ev
	return r
}

func TestSaveThroughTheCall(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s := calllog.NewStore(rdb, calllog.StoreOptions{})
		start, answered, ended := stages("call-1", t0)
		for _, r := range []calllog.Record{start, answered, ended, ended} {
			if err := s.Save(ctx, r); err != nil {
				t.Fatal(err)
			}
			got, err := s.Get(ctx, "call-1")
			if err != nil || !same(got, r) {
				t.Fatalf("Get after Save: %+v, %v\nwant %+v", got, err, r)
			}
		}
		if n, err := s.Count(ctx); err != nil || n != 1 {
			t.Fatalf("Count = %d, %v; want 1 record for one call saved four times", n, err)
		}
		list, err := s.List(ctx, 10)
		if err != nil || len(list) != 1 || !same(list[0], ended) {
			t.Fatalf("List = %+v, %v", list, err)
		}
	})
}

// A save that arrives late (a retried start record) must not undo a later
// one.
func TestLateSaveDoesNotUndoLaterOne(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s := calllog.NewStore(rdb, calllog.StoreOptions{})
		start, answered, ended := stages("call-1", t0)
		for _, r := range []calllog.Record{ended, start, answered} {
			if err := s.Save(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.Get(ctx, "call-1")
		if err != nil || !same(got, ended) {
			t.Fatalf("Get = %+v, %v\nwant the end record %+v", got, err, ended)
		}
		// Within a stage, more events is later.
		fewer := ended
		fewer.Events = ended.Events[:1]
		if err := s.Save(ctx, fewer); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Get(ctx, "call-1"); err != nil || len(got.Events) != len(ended.Events) {
			t.Fatalf("a version with fewer events replaced the record: %+v, %v", got, err)
		}
	})
}

func TestListNewestFirst(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s := calllog.NewStore(rdb, calllog.StoreOptions{})
		// Saved out of order; listed by StartedAt.
		for _, i := range []int{3, 0, 54, 7, 1} {
			r, _, _ := stages(fmt.Sprintf("c%02d", i), t0.Add(time.Duration(i)*time.Second))
			if err := s.Save(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 55 {
			r, _, _ := stages(fmt.Sprintf("c%02d", i), t0.Add(time.Duration(i)*time.Second))
			if err := s.Save(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		list, err := s.List(ctx, 3)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range list {
			ids = append(ids, r.ID)
		}
		if fmt.Sprint(ids) != "[c54 c53 c52]" {
			t.Fatalf("List(3) = %v, want [c54 c53 c52]", ids)
		}
		for _, limit := range []int{0, -1} {
			if all, err := s.List(ctx, limit); err != nil || len(all) != calllog.DefaultListLimit {
				t.Fatalf("List(%d) gave %d, %v; want the default %d", limit, len(all), err, calllog.DefaultListLimit)
			}
		}
		if all, err := s.List(ctx, 10_000); err != nil || len(all) != 55 {
			t.Fatalf("List(10000) gave %d, %v; want all 55", len(all), err)
		}
		if n, err := s.Count(ctx); err != nil || n != 55 {
			t.Fatalf("Count = %d, %v; want 55", n, err)
		}

		// Page by page, with a call starting between pages: every record
		// of the first page's time once, newest first.
		var paged []string
		cursor := ""
		for page := 0; ; page++ {
			recs, next, err := s.Page(ctx, 10, cursor)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				paged = append(paged, r.ID)
			}
			if next == "" {
				break
			}
			cursor = next
			r, _, _ := stages(fmt.Sprintf("late%d", page), t0.Add(time.Hour))
			if err := s.Save(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		if len(paged) != 55 || paged[0] != "c54" || paged[54] != "c00" {
			t.Fatalf("paged %d records %v, want c54 down to c00", len(paged), paged)
		}
		if _, _, err := s.Page(ctx, 10, "not-a-cursor"); !errors.Is(err, zpage.ErrCursor) {
			t.Fatalf("Page with a bad cursor: %v, want zpage.ErrCursor", err)
		}
	})
}

func TestRetention(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		now := time.Now()
		clk := testclock.New(now)
		s := calllog.NewStore(rdb, calllog.StoreOptions{Retention: 24 * time.Hour, Now: clk.Now})
		old, _, _ := stages("old", now.Add(-25*time.Hour))
		fresh, _, _ := stages("fresh", now.Add(-time.Hour))
		for _, r := range []calllog.Record{fresh, old} {
			if err := s.Save(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		// The fresh record expires 24 h after its start, as Redis keeps it.
		ttl, err := rdb.PTTL(ctx, "hotline:{calls}:record:fresh").Result()
		if err != nil || ttl <= 22*time.Hour || ttl > 23*time.Hour {
			t.Fatalf("fresh record TTL %v, %v; want about 23h", ttl, err)
		}
		if _, err := s.Get(ctx, "old"); !errors.Is(err, calllog.ErrNotFound) {
			t.Fatalf("Get(old): %v, want ErrNotFound", err)
		}
		list, err := s.List(ctx, 10)
		if err != nil || len(list) != 1 || list[0].ID != "fresh" {
			t.Fatalf("List = %+v, %v; want only fresh", list, err)
		}
		if n, err := s.Count(ctx); err != nil || n != 1 {
			t.Fatalf("Count = %d, %v; want 1", n, err)
		}
		if n, err := rdb.ZCard(ctx, "hotline:{calls}:started").Result(); err != nil || n != 1 {
			t.Fatalf("index holds %d, %v; want the old entry pruned", n, err)
		}

		// A record whose document is gone (expired by Redis) is skipped
		// by List and removed from the index.
		if err := rdb.Del(ctx, "hotline:{calls}:record:fresh").Err(); err != nil {
			t.Fatal(err)
		}
		if list, err := s.List(ctx, 10); err != nil || len(list) != 0 {
			t.Fatalf("List = %+v, %v; want none", list, err)
		}
		if n, err := rdb.ZCard(ctx, "hotline:{calls}:started").Result(); err != nil || n != 0 {
			t.Fatalf("index holds %d, %v; want it pruned", n, err)
		}

		// Later, the retention window moves on.
		kept, _, _ := stages("kept", now)
		if err := s.Save(ctx, kept); err != nil {
			t.Fatal(err)
		}
		clk.Set(now.Add(25 * time.Hour))
		if n, err := s.Count(ctx); err != nil || n != 0 {
			t.Fatalf("Count a day later = %d, %v; want 0", n, err)
		}
		if list, err := s.List(ctx, 10); err != nil || len(list) != 0 {
			t.Fatalf("List a day later = %+v, %v; want none", list, err)
		}
	})
}

func TestNoRetentionKeepsForever(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s := calllog.NewStore(rdb, calllog.StoreOptions{})
		r, _, _ := stages("ancient", time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))
		if err := s.Save(ctx, r); err != nil {
			t.Fatal(err)
		}
		if ttl, err := rdb.PTTL(ctx, "hotline:{calls}:record:ancient").Result(); err != nil || ttl != -1 {
			t.Fatalf("TTL %v, %v; want none", ttl, err)
		}
		if _, err := s.Get(ctx, "ancient"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestInvalidAndMissing(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s := calllog.NewStore(rdb, calllog.StoreOptions{})
		if _, err := s.Get(ctx, "nope"); !errors.Is(err, calllog.ErrNotFound) {
			t.Errorf("Get: %v, want ErrNotFound", err)
		}
		if err := s.Save(ctx, calllog.Record{StartedAt: t0}); !errors.Is(err, calllog.ErrInvalidRecord) {
			t.Errorf("Save without id: %v, want ErrInvalidRecord", err)
		}
		if err := s.Save(ctx, calllog.Record{ID: "x"}); !errors.Is(err, calllog.ErrInvalidRecord) {
			t.Errorf("Save without start: %v, want ErrInvalidRecord", err)
		}
		if n, err := s.Count(ctx); err != nil || n != 0 {
			t.Errorf("Count = %d, %v; want 0", n, err)
		}
		if list, err := s.List(ctx, 5); err != nil || len(list) != 0 {
			t.Errorf("List = %v, %v; want none", list, err)
		}
	})
}

func TestRecordsSurviveRestartAndCrash(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	s := calllog.NewStore(rdb, calllog.StoreOptions{})
	start, answered, ended := stages("call-1", t0)
	if err := s.Save(ctx, start); err != nil {
		t.Fatal(err)
	}
	srv.Restart(t)
	if err := s.Save(ctx, answered); err != nil {
		t.Fatal(err)
	}
	srv.Kill(t)
	srv.Start(t)
	if got, err := s.Get(ctx, "call-1"); err != nil || !same(got, answered) {
		t.Fatalf("after Kill+Start: %+v, %v", got, err)
	}
	if err := s.Save(ctx, ended); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Count(ctx); err != nil || n != 1 {
		t.Fatalf("Count = %d, %v; want 1", n, err)
	}
}

func BenchmarkSave(b *testing.B) {
	ctx := context.Background()
	s := calllog.NewStore(redistest.Start(b).Client(b), calllog.StoreOptions{Retention: 90 * 24 * time.Hour})
	started := time.Now()
	for i := 0; b.Loop(); i++ {
		_, _, ended := stages(fmt.Sprintf("bench-%d", i), started)
		if err := s.Save(ctx, ended); err != nil {
			b.Fatal(err)
		}
	}
}
