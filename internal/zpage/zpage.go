// Package zpage reads a Redis sorted set a page at a time with a cursor
// that stays right while the set changes: a page starts after the last
// member of the page before, by score and then by member, as Redis orders
// them, so members added or removed meanwhile neither repeat nor hide the
// rest (an offset would do both).
package zpage

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ErrCursor is a cursor this package did not make; test with errors.Is.
var ErrCursor = errors.New("zpage: not a cursor")

// Cursor is where a page ended: its last member and that member's score.
type Cursor struct {
	Score  float64
	Member string
}

// String is the cursor as clients pass it back: opaque, URL-safe.
func (c Cursor) String() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatFloat(c.Score, 'g', -1, 64) + " " + c.Member))
}

// Parse reads a cursor made by String; "" is the first page (nil).
func Parse(s string) (*Cursor, error) {
	if s == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %q", ErrCursor, s)
	}
	score, member, ok := strings.Cut(string(b), " ")
	f, err := strconv.ParseFloat(score, 64)
	if !ok || err != nil || member == "" {
		return nil, fmt.Errorf("%w: %q", ErrCursor, s)
	}
	return &Cursor{Score: f, Member: member}, nil
}

// Query is one page's worth of a sorted set.
type Query struct {
	Key string
	// Reverse reads from the highest score down.
	Reverse bool
	// Min and Max bound the scores as ZRANGEBYSCORE takes them ("-inf",
	// "(1700000000000"); empty means unbounded.
	Min, Max string
	// After is the cursor of the page before; nil for the first.
	After *Cursor
	Limit int
}

// Page returns up to q.Limit members after q.After, and the cursor of the
// next page, nil when there is none. keep, when not nil, drops members
// for which it returns false (records gone, say) without ending the page
// short; it sees the members in order.
func Page(ctx context.Context, rdb redis.Cmdable, q Query, keep func([]redis.Z) ([]bool, error)) ([]redis.Z, *Cursor, error) {
	lo, hi := q.Min, q.Max
	if lo == "" {
		lo = "-inf"
	}
	if hi == "" {
		hi = "+inf"
	}
	if q.After != nil {
		// The cursor's score is taken inclusively: members with that same
		// score after the cursor's member are still to come.
		s := strconv.FormatFloat(q.After.Score, 'f', -1, 64)
		if q.Reverse {
			hi = minBound(hi, s)
		} else {
			lo = maxBound(lo, s)
		}
	}
	out := make([]redis.Z, 0, q.Limit)
	chunk := int64(q.Limit + 1)
	for offset := int64(0); ; offset += chunk {
		rng := &redis.ZRangeBy{Min: lo, Max: hi, Offset: offset, Count: chunk}
		var zs []redis.Z
		var err error
		if q.Reverse {
			zs, err = rdb.ZRevRangeByScoreWithScores(ctx, q.Key, rng).Result()
		} else {
			zs, err = rdb.ZRangeByScoreWithScores(ctx, q.Key, rng).Result()
		}
		if err != nil {
			return nil, nil, err
		}
		more := int64(len(zs)) == chunk
		zs = trimSeen(zs, q)
		kept := make([]bool, len(zs))
		if keep != nil && len(zs) > 0 {
			if kept, err = keep(zs); err != nil {
				return nil, nil, err
			}
		} else {
			for i := range kept {
				kept[i] = true
			}
		}
		for i, z := range zs {
			if !kept[i] {
				continue
			}
			if len(out) == q.Limit {
				last := out[len(out)-1]
				return out, &Cursor{Score: last.Score, Member: last.Member.(string)}, nil
			}
			out = append(out, z)
		}
		if !more {
			return out, nil, nil
		}
	}
}

// trimSeen drops the members at the cursor's score that the page before
// already gave.
func trimSeen(zs []redis.Z, q Query) []redis.Z {
	if q.After == nil {
		return zs
	}
	i := 0
	for i < len(zs) && zs[i].Score == q.After.Score {
		m := zs[i].Member.(string)
		if q.Reverse && m < q.After.Member || !q.Reverse && m > q.After.Member {
			break
		}
		i++
	}
	return zs[i:]
}

func minBound(a, b string) string {
	if a == "+inf" {
		return b
	}
	return lower(a, b)
}

func maxBound(a, b string) string {
	if a == "-inf" {
		return b
	}
	return higher(a, b)
}

// lower and higher compare two ZRANGEBYSCORE bounds, an exclusive one
// ("(5") against a plain number.
func lower(a, b string) string {
	av, aex := bound(a)
	bv, _ := bound(b)
	if av < bv || av == bv && aex {
		return a
	}
	return b
}

func higher(a, b string) string {
	av, aex := bound(a)
	bv, _ := bound(b)
	if av > bv || av == bv && aex {
		return a
	}
	return b
}

func bound(s string) (float64, bool) {
	ex := strings.HasPrefix(s, "(")
	v, _ := strconv.ParseFloat(strings.TrimPrefix(s, "("), 64)
	return v, ex
}
