package web

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/evaluation"
)

// TestStatusOf: the stores' errors, wrapped as the stores wrap them, and
// the HTTP status each answers.
func TestStatusOf(t *testing.T) {
	for _, c := range []struct {
		err  error
		want int
	}{
		{acd.ErrInvalid, http.StatusBadRequest},
		{evaluation.ErrInvalid, http.StatusBadRequest},
		{acd.ErrNotFound, http.StatusNotFound},
		{evaluation.ErrNotFound, http.StatusNotFound},
		{acd.ErrConflict, http.StatusConflict},
		{acd.ErrState, http.StatusConflict},
		{evaluation.ErrAlreadyReviewed, http.StatusConflict},
		{evaluation.ErrAlreadyRated, 0},
		{context.DeadlineExceeded, 0},
		{fmt.Errorf("acd: agents: %w", context.Canceled), 0},
	} {
		wrapped := fmt.Errorf("outer: %w", c.err)
		if got := statusOf(wrapped); got != c.want {
			t.Errorf("statusOf(%v) = %d, want %d", wrapped, got, c.want)
		}
	}
}

// TestComplaintRate: the line is three per ten thousand calls served, and
// exactly three is not over it.
func TestComplaintRate(t *testing.T) {
	for _, c := range []struct {
		upheld, served int64
		per            float64
		over           bool
	}{
		{0, 0, 0, false},
		{1, 0, 0, true}, // a complaint with no call served that day
		{3, 10000, 3, false},
		{4, 10000, 4, true},
		{1, 3334, 10000.0 / 3334, false},
		{1, 3333, 10000.0 / 3333, true},
		{0, 500, 0, false},
	} {
		got := complaintRate(c.upheld, c.served)
		if got != (ComplaintRate{Upheld: c.upheld, Served: c.served, Per10000: c.per, OverTheLimit: c.over}) {
			t.Errorf("complaintRate(%d, %d) = %+v, want %v per 10000, over %v", c.upheld, c.served, got, c.per, c.over)
		}
	}
}
