package appeal_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hotline12345/hotline/appeal"
)

// A reserved block is never given out by Create, and CreateAs stores an
// appeal under a number of it, once per call.
func TestReservedNumbers(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s, _ := newStore(rdb, time.Date(2026, 11, 27, 10, 0, 0, 0, cst))
		first, err := s.Create(ctx, newAppeal("call-A", appeal.General))
		if err != nil {
			t.Fatal(err)
		}
		b, err := s.Reserve(ctx, "261127", 100)
		if err != nil {
			t.Fatal(err)
		}
		if b != (appeal.Block{Day: "261127", First: 2, Last: 101}) {
			t.Fatalf("reserved %+v, want 2 to 101 of 261127", b)
		}
		next, err := s.Create(ctx, newAppeal("call-B", appeal.General))
		if err != nil {
			t.Fatal(err)
		}
		if first.ID != "2611270001" || next.ID != "2611270102" {
			t.Fatalf("Create gave %s, %s around the block; want 2611270001, 2611270102", first.ID, next.ID)
		}

		n := newAppeal("call-C", appeal.Emergency)
		n.Journaled = true
		got, err := s.CreateAs(ctx, n, b.ID(b.First))
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != "2611270002" || got.CallID != "call-C" || !got.Journaled || got.DispatchDue.IsZero() {
			t.Fatalf("CreateAs stored %+v", got)
		}
		again, err := s.CreateAs(ctx, n, b.ID(b.First))
		if err != nil || !sameAppeal(again, got) {
			t.Fatalf("CreateAs again: %+v, %v; want %+v", again, err, got)
		}
		if byCall, err := s.ByCall(ctx, "call-C"); err != nil || byCall.ID != got.ID {
			t.Fatalf("ByCall: %+v, %v", byCall, err)
		}
		// Another call cannot take the number.
		if _, err := s.CreateAs(ctx, newAppeal("call-D", appeal.General), b.ID(b.First)); !errors.Is(err, appeal.ErrIDTaken) {
			t.Fatalf("CreateAs of a taken id: %v, want ErrIDTaken", err)
		}
		list, _ := s.List(ctx, 10)
		if len(list) != 3 {
			t.Fatalf("%d appeals listed, want 3", len(list))
		}
	})
}

// The number a caller was told wins: a Create of the same call whose reply
// was lost left the appeal under another number, which CreateAs renames.
func TestToldNumberWins(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s, _ := newStore(rdb, time.Date(2026, 11, 27, 10, 0, 0, 0, cst))
		b, err := s.Reserve(ctx, "261127", 10)
		if err != nil {
			t.Fatal(err)
		}
		unheard, err := s.Create(ctx, newAppeal("call-A", appeal.General))
		if err != nil {
			t.Fatal(err)
		}
		told, err := s.CreateAs(ctx, newAppeal("call-A", appeal.General), b.ID(b.Last))
		if err != nil {
			t.Fatal(err)
		}
		if told.ID != "2611270010" {
			t.Fatalf("stored as %s, want the told 2611270010", told.ID)
		}
		if _, err := s.Get(ctx, unheard.ID); !errors.Is(err, appeal.ErrNotFound) {
			t.Errorf("the unheard number %s is still there: %v", unheard.ID, err)
		}
		if a, err := s.ByCall(ctx, "call-A"); err != nil || a.ID != told.ID {
			t.Errorf("ByCall: %+v, %v", a, err)
		}
		// A late retry of the first Create changes nothing.
		if a, err := s.Create(ctx, newAppeal("call-A", appeal.General)); err != nil || a.ID != told.ID {
			t.Errorf("Create after CreateAs: %+v, %v", a, err)
		}
		if list, _ := s.List(ctx, 10); len(list) != 1 {
			t.Errorf("%d appeals listed, want 1", len(list))
		}
	})
}
