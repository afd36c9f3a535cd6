package web_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/callback"
	"github.com/hotline12345/hotline/web"
)

// TestVisitsThroughTheAPI: a return-visit agent takes the next visit
// with what the appeal says of it, and records a refusal, which puts the
// number on the do-not-call list; a token of no agent gets no visit.
func TestVisitsThroughTheAPI(t *testing.T) {
	r := startRig(t, nil)
	a, err := r.appeals.Create(r.ctx, appeal.New{CallID: "visit-1", Caller: "13900000003", Category: appeal.Livelihood,
		Consent: appeal.Consent{Given: true}, At: r.clock.Now().Add(-72 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if d, err := r.visits.Expired(r.ctx, appeal.ClockEvent{Appeal: a.ID, Kind: appeal.Expired, Due: a.FeedbackDue}, r.appeals); err != nil || d != callback.Visited {
		t.Fatalf("decided %q %v", d, err)
	}
	if _, err := r.accounts.AddUser(r.ctx, auth.UserSpec{Name: "zhao", Roles: []auth.Role{auth.Visitor}, AgentID: "v1", By: "test"}); err != nil {
		t.Fatal(err)
	}
	visitor := r.mint(auth.TokenSpec{User: "zhao", Roles: []auth.Role{auth.Visitor}, TTL: time.Hour})
	noAgent := r.mint(auth.TokenSpec{Roles: []auth.Role{auth.Visitor}, TTL: time.Hour})

	r.doAs(noAgent, http.MethodPost, "/api/v1/visits/next", "", http.StatusForbidden, nil)
	var work web.VisitWork
	r.doAs(visitor, http.MethodPost, "/api/v1/visits/next", "", http.StatusOK, &work)
	if work.Visit.ID != a.ID || work.Category != appeal.Livelihood || work.LeaseUntil.IsZero() || !work.Created.Equal(a.CreatedAt) {
		t.Fatalf("work %+v", work)
	}
	r.doAs(visitor, http.MethodPost, "/api/v1/visits/next", "", http.StatusNotFound, nil)
	var lease web.LeaseReply
	r.doAs(visitor, http.MethodPost, "/api/v1/visits/"+a.ID+"/renew", "", http.StatusOK, &lease)
	r.doAs(visitor, http.MethodPost, "/api/v1/visits/"+a.ID+"/attempts", `{"outcome":"maybe"}`, http.StatusBadRequest, nil)
	var v callback.Visit
	r.doAs(visitor, http.MethodPost, "/api/v1/visits/"+a.ID+"/attempts", `{"outcome":"refused","note":"asked not to be called again"}`, http.StatusOK, &v)
	if v.State != callback.Withdrawn || len(v.Attempts) != 1 || v.Attempts[0].By != "v1" {
		t.Errorf("after the refusal %+v", v)
	}
	r.doAs(visitor, http.MethodPost, "/api/v1/visits/"+a.ID+"/attempts", `{"outcome":"completed"}`, http.StatusConflict, nil)
	// The citizen's next appeal gets no visit.
	b, err := r.appeals.Create(r.ctx, appeal.New{CallID: "visit-2", Caller: "13900000003", Category: appeal.General, Consent: appeal.Consent{Given: true}})
	if err != nil {
		t.Fatal(err)
	}
	if d, err := r.visits.Expired(r.ctx, appeal.ClockEvent{Appeal: b.ID, Kind: appeal.Expired, Due: b.FeedbackDue}, r.appeals); err != nil || d != callback.SkipDoNotCall {
		t.Errorf("after a refusal: %q %v", d, err)
	}
}

// TestVisitsListed: supervisors list the visits by state.
func TestVisitsListed(t *testing.T) {
	r := startRig(t, nil)
	for i := range 3 {
		if _, err := r.visits.QueueCallback(r.ctx, fmt.Sprintf("call-%d", i), "", appeal.General); err != nil {
			t.Fatal(err)
		}
	}
	var page web.Page[callback.Visit]
	r.do(http.MethodGet, "/api/v1/visits?limit=2", "", http.StatusOK, &page)
	if len(page.Items) != 2 || page.NextCursor == "" || page.Items[0].Kind != callback.QueueCallback {
		t.Fatalf("first page %+v", page)
	}
	var second, done web.Page[callback.Visit]
	r.do(http.MethodGet, "/api/v1/visits?state=waiting&cursor="+page.NextCursor, "", http.StatusOK, &second)
	if len(second.Items) != 1 || second.NextCursor != "" || second.Items[0].ID == page.Items[1].ID {
		t.Errorf("second page %+v", second)
	}
	r.do(http.MethodGet, "/api/v1/visits?state=completed", "", http.StatusOK, &done)
	if len(done.Items) != 0 {
		t.Errorf("completed %+v", done)
	}
	r.fails(http.MethodGet, "/api/v1/visits?state=lost", "", http.StatusBadRequest)
}
