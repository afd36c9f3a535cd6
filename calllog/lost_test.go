package calllog_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hotline12345/hotline/calllog"
)

// held returns a call's three records as node instance inst saves them.
func held(id, inst string, started time.Time) (start, answered, ended calllog.Record) {
	start, answered, ended = stages(id, started)
	for _, r := range []*calllog.Record{&start, &answered, &ended} {
		r.Node, r.Instance = "n1", inst
	}
	return start, answered, ended
}

// TestCloseOpen: the records a lost node instance left open are ended
// with node_lost, once; those of other instances, and those ended, are
// left as they are; a late save of the lost instance undoes nothing.
func TestCloseOpen(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s := calllog.NewStore(rdb, calllog.StoreOptions{})
		_, talking, _ := held("call-1", "i1", t0)
		_, _, done := held("call-2", "i1", t0)
		other, _, _ := held("call-3", "i2", t0)
		early, _, _ := held("call-4", "i1", t0.Add(time.Hour))
		for _, r := range []calllog.Record{talking, done, other, early} {
			if err := s.Save(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		if n, err := s.OpenCount(ctx, "i1"); err != nil || n != 2 {
			t.Fatalf("open records of i1: %d %v, want 2 (the ended one is not open)", n, err)
		}

		lost := t0.Add(10 * time.Minute)
		n, err := s.CloseOpen(ctx, "i1", lost, calllog.NodeLost, "node n1 lost")
		if err != nil || n != 2 {
			t.Fatalf("CloseOpen: %d %v, want 2", n, err)
		}
		got, err := s.Get(ctx, "call-1")
		if err != nil || got.EndCause != calllog.NodeLost || got.EndedAt == nil || !got.EndedAt.Equal(lost) ||
			got.EndDetail != "node n1 lost" || got.AnsweredAt == nil || got.Node != "n1" {
			t.Fatalf("call-1 after CloseOpen: %+v %v", got, err)
		}
		// A call that started after the last sign of life ends when it started.
		if got, err := s.Get(ctx, "call-4"); err != nil || got.EndedAt == nil || !got.EndedAt.Equal(early.StartedAt) {
			t.Fatalf("call-4 after CloseOpen: %+v %v", got, err)
		}
		if got, err := s.Get(ctx, "call-2"); err != nil || got.EndCause != calllog.CallerHangup {
			t.Fatalf("the ended call-2 changed: %+v %v", got, err)
		}
		if got, err := s.Get(ctx, "call-3"); err != nil || got.EndedAt != nil {
			t.Fatalf("call-3 of another instance changed: %+v %v", got, err)
		}
		if n, err := s.OpenCount(ctx, "i1"); err != nil || n != 0 {
			t.Fatalf("open records of i1 after CloseOpen: %d %v", n, err)
		}
		if n, err := s.CloseOpen(ctx, "i1", lost.Add(time.Minute), calllog.NodeLost, "again"); err != nil || n != 0 {
			t.Fatalf("CloseOpen again: %d %v, want nothing", n, err)
		}

		// The lost instance's retried answer record arrives late: the end stands.
		if err := s.Save(ctx, talking); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Get(ctx, "call-1"); err != nil || got.EndCause != calllog.NodeLost {
			t.Fatalf("a late save undid the end: %+v %v", got, err)
		}
		if n, err := s.OpenCount(ctx, "i1"); err != nil || n != 0 {
			t.Fatalf("a late save listed the record as open again: %d %v", n, err)
		}
		if _, err := s.CloseOpen(ctx, "", lost, calllog.NodeLost, ""); !errors.Is(err, calllog.ErrInvalidRecord) {
			t.Errorf("CloseOpen without an instance: %v", err)
		}
	})
}

// TestOpenUntilEnded: a record is listed open from its first save to the
// save with its end, and only with an instance.
func TestOpenUntilEnded(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s := calllog.NewStore(rdb, calllog.StoreOptions{})
		start, answered, ended := held("call-1", "i1", t0)
		for i, r := range []calllog.Record{start, answered, ended} {
			if err := s.Save(ctx, r); err != nil {
				t.Fatal(err)
			}
			want := int64(1)
			if i == 2 {
				want = 0
			}
			if n, err := s.OpenCount(ctx, "i1"); err != nil || n != want {
				t.Fatalf("after save %d: %d open, %v; want %d", i, n, err, want)
			}
		}
		plain, _, _ := stages("call-2", t0)
		if err := s.Save(ctx, plain); err != nil {
			t.Fatal(err)
		}
		if n, err := s.OpenCount(ctx, ""); err != nil || n != 0 {
			t.Fatalf("a record without an instance is listed: %d %v", n, err)
		}
	})
}
