package app_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/internal/hotlinetest"
)

// The node's clock engine fires an appeal's events due and /metrics
// shows them: the appeals by state and category, the events by kind, the
// lag, the events still to come.
func TestClockMetrics(t *testing.T) {
	h := hotlinetest.Start(t, nil)
	// Taken two hours ago and never dispatched: its dispatch and sign
	// are urged and overdue already, its feedback not yet.
	if _, err := h.Appeals.Create(t.Context(), appeal.New{CallID: "metrics", Caller: "13800000000", Category: appeal.Emergency,
		At: time.Now().Add(-2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`hotline_appeals{category="emergency",state="received"} 1`,
		`hotline_appeals{category="general",state="closed"} 0`,
		`hotline_appeal_events_total{kind="urge"} 2`,
		`hotline_appeal_events_total{kind="overdue"} 2`,
		`hotline_appeal_events_total{kind="expired"} 0`,
		`hotline_clock_lag_seconds_count 4`,
		`hotline_appeal_clock_events_pending 3`,
		`hotline_appeal_clock_behind_seconds 0`,
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(h.API() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var missing []string
		for _, w := range want {
			if !strings.Contains(string(body), w+"\n") {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics has no %s", strings.Join(missing, ", "))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
