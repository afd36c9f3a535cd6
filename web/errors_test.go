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
