package web

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// DefaultLimit is a list's page when the request names none.
const DefaultLimit = 50

// errCursor is a cursor of a list kept whole in memory that this API did
// not make.
var errCursor = errors.New("cursor: not one this API gave")

// pageQuery reads limit and cursor, answering 400 itself and reporting
// false when limit is not a whole number from 1 to MaxLimit.
func pageQuery(w http.ResponseWriter, r *http.Request) (limit int, cursor string, ok bool) {
	q := r.URL.Query()
	limit = DefaultLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLimit {
			writeError(w, http.StatusBadRequest, "limit must be a whole number from 1 to "+strconv.Itoa(MaxLimit))
			return 0, "", false
		}
		limit = n
	}
	return limit, q.Get("cursor"), true
}

// pageOf pages a list the store gives whole (agents, accounts, tokens,
// bans: a few hundred at most) the way the stores page long ones: ordered
// by key, each page after the key of the page before's last item, so
// that items added or removed meanwhile neither repeat nor hide others.
func pageOf[T any](items []T, limit int, cursor string, key func(T) string) (Page[T], error) {
	slices.SortFunc(items, func(a, b T) int { return strings.Compare(key(a), key(b)) })
	start := 0
	if cursor != "" {
		after, err := base64.RawURLEncoding.DecodeString(cursor)
		if err != nil || len(after) == 0 {
			return Page[T]{}, fmt.Errorf("%w: %q", errCursor, cursor)
		}
		start, _ = slices.BinarySearchFunc(items, string(after), func(it T, k string) int { return strings.Compare(key(it), k) })
		for start < len(items) && key(items[start]) == string(after) {
			start++
		}
	}
	end := min(start+limit, len(items))
	p := Page[T]{Items: items[start:end]}
	if p.Items == nil {
		p.Items = []T{}
	}
	if end < len(items) {
		p.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(key(items[end-1])))
	}
	return p, nil
}
