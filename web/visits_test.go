package web_test

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hotline12345/hotline/acd"
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
	var mine web.MyVisits
	r.doAs(visitor, http.MethodGet, "/api/v1/visits/mine", "", http.StatusOK, &mine)
	if len(mine.Held) != 1 || mine.Held[0].Visit.ID != a.ID || !mine.Held[0].Until.Equal(lease.Until) || len(mine.AttemptsToday) != 0 {
		t.Fatalf("my visits while holding one: %+v", mine)
	}
	r.doAs(visitor, http.MethodPost, "/api/v1/visits/"+a.ID+"/attempts", `{"outcome":"maybe"}`, http.StatusBadRequest, nil)
	var v callback.Visit
	r.doAs(visitor, http.MethodPost, "/api/v1/visits/"+a.ID+"/attempts", `{"outcome":"refused","note":"asked not to be called again"}`, http.StatusOK, &v)
	if v.State != callback.Withdrawn || len(v.Attempts) != 1 || v.Attempts[0].By != "v1" {
		t.Errorf("after the refusal %+v", v)
	}
	mine = web.MyVisits{}
	r.doAs(visitor, http.MethodGet, "/api/v1/visits/mine", "", http.StatusOK, &mine)
	if len(mine.Held) != 0 || len(mine.AttemptsToday) != 1 || mine.AttemptsToday[0].Visit != a.ID || mine.AttemptsToday[0].Outcome != callback.Refused || mine.AttemptsToday[0].Note != "asked not to be called again" {
		t.Errorf("my visits after the refusal: %+v", mine)
	}
	r.doAs(visitor, http.MethodPost, "/api/v1/visits/"+a.ID+"/attempts", `{"outcome":"completed","answers":{"response":"yes","solution":"yes","satisfaction":"satisfied"}}`, http.StatusConflict, nil)
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

// TestRatesThroughTheAPI: a return visit completed through the API with
// its three answers shows in the organizer's, district's and the whole
// hotline's rates, with numerators and denominators; the CSV lists it;
// the audit agrees; bad parameters are named; an agent's logout puts the
// visits it held back.
func TestRatesThroughTheAPI(t *testing.T) {
	r := startRig(t, nil)
	if err := r.appeals.PutOrganizer(r.ctx, appeal.Organizer{ID: "water", Name: "Water", Kind: appeal.Utility, District: "chaoyang"}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 2 {
		a, err := r.appeals.Create(r.ctx, appeal.New{CallID: fmt.Sprintf("rate-%d", i), Caller: fmt.Sprintf("1390000001%d", i), Category: appeal.Livelihood,
			Consent: appeal.Consent{Given: true}})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := r.appeals.Step(r.ctx, a.ID, appeal.Action{Step: appeal.Dispatch, By: "test", Assignment: appeal.Assignment{Lead: "water"}}); err != nil {
			t.Fatal(err)
		}
		if d, err := r.visits.Expired(r.ctx, appeal.ClockEvent{Appeal: a.ID, Kind: appeal.Expired, Due: a.FeedbackDue}, r.appeals); err != nil || d != callback.Visited {
			t.Fatalf("decided %q %v", d, err)
		}
		ids = append(ids, a.ID)
	}
	if _, err := r.accounts.AddUser(r.ctx, auth.UserSpec{Name: "qian", Roles: []auth.Role{auth.Visitor}, AgentID: "v2", By: "test"}); err != nil {
		t.Fatal(err)
	}
	visitor := r.mint(auth.TokenSpec{User: "qian", Roles: []auth.Role{auth.Visitor}, TTL: time.Hour})
	var work web.VisitWork
	r.doAs(visitor, http.MethodPost, "/api/v1/visits/next", "", http.StatusOK, &work)
	r.doAs(visitor, http.MethodPost, "/api/v1/visits/"+work.Visit.ID+"/attempts", `{"outcome":"completed","answers":{"response":"yes","solution":"perhaps","satisfaction":"satisfied"}}`, http.StatusBadRequest, nil)
	r.doAs(visitor, http.MethodPost, "/api/v1/visits/"+work.Visit.ID+"/attempts", `{"outcome":"completed","answers":{"response":"yes","solution":"partly","satisfaction":"basically_satisfied"},"note":"the pipe was mended, the road not yet"}`, http.StatusOK, nil)

	var rates web.RatesReply
	r.do(http.MethodGet, "/api/v1/rates?by=organizer&month=2026-11", "", http.StatusOK, &rates)
	if rates.Window.From != "2026-11-01" || rates.Window.To != "2026-11-30" || len(rates.Items) != 1 {
		t.Fatalf("rates %+v", rates)
	}
	w := rates.Items[0]
	if w.Group != "water" || w.Response.Numerator != 1 || w.Response.Denominator != 1 || w.Solution.Numerator != 0 || w.Satisfaction.Numerator != 1 || *w.Solution.Rate != 0 {
		t.Errorf("water %+v", w)
	}
	r.do(http.MethodGet, "/api/v1/rates?by=district&day=2026-11-27", "", http.StatusOK, &rates)
	if len(rates.Items) != 1 || rates.Items[0].Group != "chaoyang" {
		t.Errorf("districts %+v", rates)
	}
	rates = web.RatesReply{}
	r.do(http.MethodGet, "/api/v1/rates?day=2026-11-26", "", http.StatusOK, &rates)
	if len(rates.Items) != 1 || rates.Items[0].Group != "all" || rates.Items[0].Response.Rate != nil || rates.Items[0].Tally.Completed != 0 {
		t.Errorf("a day without visits %+v", rates)
	}
	body := r.do(http.MethodGet, "/api/v1/rates?month=2026-11&format=csv", "", http.StatusOK, nil)
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil || len(rows) != 2 || rows[1][1] != work.Visit.ID || rows[1][4] != "v2" || rows[1][5] != "water" || rows[1][6] != "chaoyang" || rows[1][9] != "partly" {
		t.Errorf("csv %q %v", rows, err)
	}
	var audit web.AuditReply
	r.do(http.MethodGet, "/api/v1/rates/audit?month=2026-11", "", http.StatusOK, &audit)
	if !audit.OK || audit.Visits != 1 {
		t.Errorf("audit %+v", audit)
	}
	for _, q := range []string{"by=street", "month=2026-13", "window=week", "from=2026-11-02&to=2026-11-01", "format=xml"} {
		var e web.Error
		r.do(http.MethodGet, "/api/v1/rates?"+q, "", http.StatusBadRequest, &e)
		if name, _, _ := strings.Cut(q, "="); name == "from" && !strings.HasPrefix(e.Error, "to ") || name != "from" && !strings.HasPrefix(e.Error, name+" ") {
			t.Errorf("%s: %q does not name the parameter", q, e.Error)
		}
	}

	// The agent takes the second visit and logs out: it is back at once.
	r.doAs(visitor, http.MethodPost, "/api/v1/visits/next", "", http.StatusOK, &work)
	if work.Visit.ID != ids[1] {
		t.Fatalf("second visit %+v", work.Visit)
	}
	r.doAs(visitor, http.MethodPost, "/api/v1/logout", "", http.StatusNoContent, nil)
	var page web.Page[callback.Visit]
	r.do(http.MethodGet, "/api/v1/visits?state=waiting", "", http.StatusOK, &page)
	if len(page.Items) != 1 || page.Items[0].ID != ids[1] {
		t.Errorf("after the logout, waiting %+v", page.Items)
	}
}

// TestVisitAtFeedback: with visits on feedback, the feedback's arrival
// through the API decides the visit; the expiry later changes nothing.
func TestVisitAtFeedback(t *testing.T) {
	r := startRig(t, func(o *web.Options, _ *acd.Distributor) { o.VisitOnFeedback = true })
	if err := r.appeals.PutOrganizer(r.ctx, appeal.Organizer{ID: "water", Name: "Water", Kind: appeal.Utility}); err != nil {
		t.Fatal(err)
	}
	a, err := r.appeals.Create(r.ctx, appeal.New{CallID: "fb-1", Caller: "13900000021", Category: appeal.Livelihood, Consent: appeal.Consent{Given: true}})
	if err != nil {
		t.Fatal(err)
	}
	for _, act := range []appeal.Action{
		{Step: appeal.Dispatch, By: "test", Assignment: appeal.Assignment{Lead: "water"}},
		{Step: appeal.Sign, By: "test", Organizer: "water"},
	} {
		if _, _, err := r.appeals.Step(r.ctx, a.ID, act); err != nil {
			t.Fatal(err)
		}
	}
	if d, err := r.visits.Decision(r.ctx, a.ID); err != nil || d != "" {
		t.Fatalf("before the feedback: %q %v", d, err)
	}
	r.do(http.MethodPost, "/api/v1/appeals/"+a.ID+"/feedback", `{"organizer":"water","result":"solved"}`, http.StatusOK, nil)
	if d, err := r.visits.Decision(r.ctx, a.ID); err != nil || d != callback.Visited {
		t.Errorf("after the feedback: %q %v", d, err)
	}
	if v, err := r.visits.Get(r.ctx, a.ID); err != nil || v.Organizers[0] != "water" {
		t.Errorf("visit %+v %v", v, err)
	}
}
