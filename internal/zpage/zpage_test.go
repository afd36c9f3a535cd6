package zpage_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/hotline12345/hotline/internal/redistest"
	"github.com/hotline12345/hotline/internal/zpage"
)

// all reads the whole set page by page.
func all(t *testing.T, rdb redis.Cmdable, q zpage.Query, keep func([]redis.Z) ([]bool, error), between func()) []string {
	t.Helper()
	var got []string
	for range 1000 {
		page, next, err := zpage.Page(t.Context(), rdb, q, keep)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > q.Limit {
			t.Fatalf("page of %d, limit %d", len(page), q.Limit)
		}
		for _, z := range page {
			got = append(got, z.Member.(string))
		}
		if next == nil {
			return got
		}
		// The cursor goes through its text form, as clients send it.
		if q.After, err = zpage.Parse(next.String()); err != nil {
			t.Fatal(err)
		}
		if between != nil {
			between()
		}
	}
	t.Fatal("no last page")
	return nil
}

func TestPagesWithTiesAndChanges(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	ctx := t.Context()
	// Scores with many ties, so pages end inside a run of equal scores.
	var want []string
	for i := range 23 {
		m := fmt.Sprintf("m%02d", i)
		rdb.ZAdd(ctx, "k", redis.Z{Score: float64(i / 5), Member: m})
		want = append(want, m)
	}
	for _, limit := range []int{1, 2, 4, 5, 7, 23, 50} {
		got := all(t, rdb, zpage.Query{Key: "k", Limit: limit}, nil, nil)
		if !slices.Equal(got, want) {
			t.Errorf("limit %d: %v", limit, got)
		}
		rev := all(t, rdb, zpage.Query{Key: "k", Reverse: true, Limit: limit}, nil, nil)
		back := slices.Clone(want)
		slices.Reverse(back)
		if !slices.Equal(rev, back) {
			t.Errorf("reverse, limit %d: %v", limit, rev)
		}
	}

	// Newest first while new members arrive on top: nothing repeats,
	// nothing of the old set is missed.
	n := 100
	got := all(t, rdb, zpage.Query{Key: "k", Reverse: true, Limit: 3}, nil, func() {
		n++
		rdb.ZAdd(ctx, "k", redis.Z{Score: 1000, Member: fmt.Sprintf("new%d", n)})
	})
	back := slices.Clone(want)
	slices.Reverse(back)
	if !slices.Equal(got[len(got)-len(back):], back) || len(got) != len(back) {
		t.Errorf("with inserts on top: %v", got)
	}

	// Bounds and a filter: scores 1 to 3 (exclusive), odd members only.
	odd := func(zs []redis.Z) ([]bool, error) {
		k := make([]bool, len(zs))
		for i, z := range zs {
			var v int
			fmt.Sscanf(z.Member.(string), "m%d", &v)
			k[i] = v%2 == 1
		}
		return k, nil
	}
	got = all(t, rdb, zpage.Query{Key: "k", Min: "1", Max: "(3", Limit: 2}, odd, nil)
	if !slices.Equal(got, []string{"m05", "m07", "m09", "m11", "m13"}) {
		t.Errorf("bounded and filtered: %v", got)
	}
	got = all(t, rdb, zpage.Query{Key: "k", Reverse: true, Min: "(1", Max: "3", Limit: 2}, odd, nil)
	if !slices.Equal(got, []string{"m19", "m17", "m15", "m13", "m11"}) {
		t.Errorf("reverse bounded and filtered: %v", got)
	}
}

func TestParseRefusesGarbage(t *testing.T) {
	for _, s := range []string{"x", "!!", "bm90LWEtY3Vyc29y", "MSA"} {
		if _, err := zpage.Parse(s); !errors.Is(err, zpage.ErrCursor) {
			t.Errorf("Parse(%q) = %v, want ErrCursor", s, err)
		}
	}
	if c, err := zpage.Parse(""); c != nil || err != nil {
		t.Errorf("Parse(\"\") = %v, %v", c, err)
	}
}
