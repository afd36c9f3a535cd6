package app_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/callback"
	"github.com/hotline12345/hotline/internal/hotlinetest"
)

// The node's clock engine fires an appeal's events due and /metrics
// shows them: the appeals by state and category, the events by kind, the
// lag, the events still to come.
func TestClockMetrics(t *testing.T) {
	t.Parallel()
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

// An appeal whose processing time expired, its citizen having consented,
// gets its return visit from the node's engine and consumer, counted on
// /metrics.
func TestExpiredAppealGetsAVisit(t *testing.T) {
	t.Parallel()
	h := hotlinetest.Start(t, nil)
	a, err := h.Appeals.Create(t.Context(), appeal.New{CallID: "visit", Caller: "13800000000", Category: appeal.Emergency,
		Consent: appeal.Consent{Given: true}, At: time.Now().Add(-4 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	visits := callback.NewStore(h.Client, callback.StoreOptions{})
	deadline := time.Now().Add(20 * time.Second)
	for {
		v, err := visits.Get(t.Context(), a.ID)
		if err == nil {
			if v.Kind != callback.ReturnVisit || v.Appeal != a.ID || v.State != callback.Waiting {
				t.Fatalf("visit %+v", v)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no visit for %s: %v", a.ID, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Counted once the decision is made, which the visit shows first.
	for {
		resp, err := http.Get(h.API() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(body), `hotline_visit_decisions_total{decision="visit"} 1`+"\n") &&
			strings.Contains(string(body), `hotline_visits{kind="return_visit",state="waiting"} 1`+"\n") &&
			strings.Contains(string(body), `hotline_visit_attempts_total{outcome="completed"} 0`+"\n") &&
			strings.Contains(string(body), "hotline_visits_oldest_due_seconds ") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("/metrics does not count the visit")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
