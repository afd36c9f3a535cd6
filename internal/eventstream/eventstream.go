// Package eventstream reads the Redis streams of events the domain
// packages keep (the complaint line's, the trunks'): each entry one JSON
// document in its field "doc", the entry's id the event's.
package eventstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ErrCursor is a cursor that is no entry id.
var ErrCursor = errors.New("cursor is no event id")

// Decode reads the event of entry m into a T, setting its id with setID.
func Decode[T any](m redis.XMessage, setID func(*T, string)) (T, error) {
	var ev T
	doc, _ := m.Values["doc"].(string)
	if err := json.Unmarshal([]byte(doc), &ev); err != nil {
		return ev, fmt.Errorf("decode event %s: %w", m.ID, err)
	}
	setID(&ev, m.ID)
	return ev, nil
}

// Page reads up to limit events of the stream key, newest first, before
// the cursor of the page before ("" for the first), and the next page's
// cursor ("" on the last). A cursor that is no entry id is an error
// wrapping ErrCursor.
func Page[T any](ctx context.Context, rdb redis.UniversalClient, key string, limit int, cursor string, setID func(*T, string)) ([]T, string, error) {
	top := "+"
	if cursor != "" {
		if !validID(cursor) {
			return nil, "", fmt.Errorf("%w: %q", ErrCursor, cursor)
		}
		top = "(" + cursor
	}
	msgs, err := rdb.XRevRangeN(ctx, key, top, "-", int64(limit)+1).Result()
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(msgs) > limit {
		msgs = msgs[:limit]
		next = msgs[limit-1].ID
	}
	out := make([]T, 0, len(msgs))
	for _, m := range msgs {
		ev, err := Decode(m, setID)
		if err != nil {
			return nil, "", err
		}
		out = append(out, ev)
	}
	return out, next, nil
}

// validID reports whether id is a stream entry id, ms-seq.
func validID(id string) bool {
	ms, seq, ok := strings.Cut(id, "-")
	if !ok {
		return false
	}
	_, err1 := strconv.ParseUint(ms, 10, 64)
	_, err2 := strconv.ParseUint(seq, 10, 64)
	return err1 == nil && err2 == nil
}
