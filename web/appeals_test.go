package web_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/web"
)

// organizerToken makes an account of the organizer role acting for
// organizer, and a token of it.
func organizerToken(t *testing.T, r *rig, name, organizer string) string {
	t.Helper()
	if _, err := r.accounts.AddUser(r.ctx, auth.UserSpec{Name: name, Roles: []auth.Role{auth.Organizer}, OrganizerID: organizer, By: "test"}); err != nil {
		t.Fatal(err)
	}
	return r.mint(auth.TokenSpec{User: name, Roles: []auth.Role{auth.Organizer}, TTL: time.Hour})
}

// conflict checks a 409 that names the appeal's state.
func conflict(t *testing.T, r *rig, token, path, body string, state appeal.State) {
	t.Helper()
	var e web.Error
	r.doAs(token, http.MethodPost, path, body, http.StatusConflict, &e)
	if e.State != string(state) || e.Error == "" {
		t.Errorf("POST %s: 409 %+v, want the state %s", path, e, state)
	}
}

// TestAppealLifeThroughTheAPI: an appeal taken by hand, dispatched by the
// hotline, signed and fed back by its organizer's own token, closed; the
// organizer sees its own appeals only and acts for itself only; illegal
// steps get 409 with the state; every step is in the history.
func TestAppealLifeThroughTheAPI(t *testing.T) {
	r := startRig(t, nil)
	if err := r.appeals.SeedOrganizers(r.ctx, []appeal.Organizer{
		{ID: "water", Name: "Water Group", Kind: appeal.Utility},
		{ID: "housing", Name: "Housing Bureau", Kind: appeal.Bureau},
	}); err != nil {
		t.Fatal(err)
	}
	water := organizerToken(t, r, "water-desk", "water")
	housing := organizerToken(t, r, "housing-desk", "housing")

	r.fails(http.MethodPost, "/api/v1/appeals", `{"caller":"13900000001","category":"livelihood","channel":"phone","summary":"no water"}`, 400)
	r.fails(http.MethodPost, "/api/v1/appeals", `{"caller":"13900000001","category":"weather","channel":"phone","summary":"x","consent":{"given":true,"evidence":"said yes"}}`, 400)
	var a appeal.Appeal
	body := `{"request_id":"req-1","caller":"13900000001","category":"livelihood","channel":"wechat","summary":"no water since 6:00","consent":{"given":true,"evidence":"wrote yes in the chat"}}`
	r.do(http.MethodPost, "/api/v1/appeals", body, http.StatusCreated, &a)
	if a.State != appeal.Received || a.Channel != "wechat" || !a.Consent.Given || a.Consent.Evidence == "" || a.Summary == "" {
		t.Fatalf("created %+v", a)
	}
	var again appeal.Appeal
	r.do(http.MethodPost, "/api/v1/appeals", body, http.StatusCreated, &again)
	if again.ID != a.ID {
		t.Errorf("the same request_id made a second appeal: %s, %s", a.ID, again.ID)
	}
	path := "/api/v1/appeals/" + a.ID

	conflict(t, r, r.token, path+"/sign", `{"organizer":"water"}`, appeal.Received)
	r.fails(http.MethodPost, path+"/dispatch", `{"lead":"nobody"}`, 400)
	var st web.StepReply
	r.do(http.MethodPost, path+"/dispatch", `{"lead":"water","note":"main burst on Dongsi"}`, 200, &st)
	if st.Appeal.State != appeal.Dispatched || st.Event.Seq != 2 || st.Event.To != appeal.Dispatched {
		t.Errorf("dispatched: %+v", st)
	}
	conflict(t, r, r.token, path+"/dispatch", `{"lead":"housing"}`, appeal.Dispatched)

	// The organizer sees its own, and only those.
	var page web.Page[appeal.Appeal]
	r.doAs(water, http.MethodGet, "/api/v1/appeals", "", 200, &page)
	if len(page.Items) != 1 || page.Items[0].ID != a.ID || page.Items[0].Caller != "13900000001" {
		t.Errorf("the organizer's list: %+v", page.Items)
	}
	r.doAs(housing, http.MethodGet, "/api/v1/appeals", "", 200, &page)
	if len(page.Items) != 0 {
		t.Errorf("another organizer's list: %+v", page.Items)
	}
	r.doAs(housing, http.MethodGet, "/api/v1/appeals?organizer=water", "", 403, nil)
	r.doAs(housing, http.MethodGet, path, "", 403, nil)
	r.doAs(housing, http.MethodPost, path+"/sign", `{}`, 403, nil)
	r.doAs(water, http.MethodPost, path+"/sign", `{"organizer":"housing"}`, 403, nil)

	r.doAs(water, http.MethodPost, path+"/sign", `{}`, 200, &st)
	if st.Appeal.State != appeal.Signed || st.Event.By != "water-desk" || st.Event.Organizer != "water" {
		t.Errorf("signed: %+v", st)
	}
	r.doAs(water, http.MethodPost, path+"/feedback", `{"result":"not_solved"}`, 400, nil)
	r.doAs(water, http.MethodPost, path+"/feedback", `{"result":"solved","note":"main repaired 14:00"}`, 200, &st)
	conflict(t, r, water, path+"/feedback", `{"result":"solved"}`, appeal.FedBack)
	r.fails(http.MethodPost, path+"/sign", `{}`, 400) // staff name the organizer
	r.do(http.MethodPost, path+"/close", `{}`, 200, &st)
	if st.Appeal.State != appeal.Closed {
		t.Errorf("closed: %+v", st.Appeal)
	}

	var events web.EventList
	r.doAs(water, http.MethodGet, path+"/events", "", 200, &events)
	var steps []string
	for _, ev := range events.Items {
		steps = append(steps, string(ev.Step))
	}
	if got := strings.Join(steps, ","); got != "created,dispatch,sign,feedback,close" {
		t.Errorf("history %s", got)
	}

	r.do(http.MethodGet, "/api/v1/appeals?state=closed&category=livelihood", "", 200, &page)
	if len(page.Items) != 1 {
		t.Errorf("closed livelihood appeals: %+v", page.Items)
	}
	r.fails(http.MethodGet, "/api/v1/appeals?state=lost", "", 400)
	r.fails(http.MethodGet, "/api/v1/appeals?overdue=maybe", "", 400)
}

// TestOrganizersAndPeakModeThroughTheAPI: organizers are managed through
// the API; peak mode is switched with a reason, and the switch shows in
// /api/v1/stats.
func TestOrganizersAndPeakModeThroughTheAPI(t *testing.T) {
	r := startRig(t, nil)
	r.do(http.MethodPut, "/api/v1/organizers/chaoyang", `{"name":"Chaoyang District Government","kind":"district","district":"Chaoyang"}`, 200, nil)
	r.fails(http.MethodPut, "/api/v1/organizers/chaoyang", `{"id":"other","name":"x","kind":"district"}`, 400)
	r.fails(http.MethodPut, "/api/v1/organizers/x", `{"name":"x","kind":"church"}`, 400)
	var list web.OrganizerList
	r.do(http.MethodGet, "/api/v1/organizers", "", 200, &list)
	if len(list.Items) != 1 || list.Items[0].Kind != appeal.District {
		t.Errorf("organizers %+v", list.Items)
	}
	r.do(http.MethodDelete, "/api/v1/organizers/chaoyang", "", 204, nil)
	r.fails(http.MethodDelete, "/api/v1/organizers/chaoyang", "", 404)

	r.fails(http.MethodPost, "/api/v1/peak-mode", `{"on":true}`, 400)
	var sw appeal.PeakSwitch
	r.do(http.MethodPost, "/api/v1/peak-mode", `{"on":true,"by":"duty chief Zhao","reason":"typhoon warning"}`, 200, &sw)
	if !sw.On || !strings.HasSuffix(sw.By, " for duty chief Zhao") {
		t.Errorf("switch %+v", sw)
	}
	var stats map[string]json.RawMessage
	r.do(http.MethodGet, "/api/v1/stats", "", 200, &stats)
	var peak appeal.PeakStatus
	if err := json.Unmarshal(stats["peak_mode"], &peak); err != nil || !peak.On || peak.Last == nil || peak.Last.Reason != "typhoon warning" {
		t.Errorf("stats' peak mode %s: %+v %v", stats["peak_mode"], peak, err)
	}
}

// TestSupervisionThroughTheAPI: an emergency appeal not dispatched two
// hours after it came in is in the overdue list, the hotline's own; its
// clock events, fired by an engine, are listed newest first.
func TestSupervisionThroughTheAPI(t *testing.T) {
	r := startRig(t, nil)
	a, err := r.appeals.Create(r.ctx, appeal.New{CallID: "sup-1", Caller: "13900000002", Category: appeal.Emergency, At: time.Now().Add(-2 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	var list web.SupervisionList
	r.do(http.MethodGet, "/api/v1/supervision?state=overdue", "", 200, &list)
	if len(list.Groups) != 1 || list.Groups[0].Organizer != "" || list.Groups[0].Items[0].Appeal.ID != a.ID || list.Groups[0].Items[0].Stage != "dispatch" {
		t.Errorf("overdue %+v", list)
	}
	r.fails(http.MethodGet, "/api/v1/supervision?state=later", "", 400)
	if _, err := appeal.NewEngine(r.appeals, appeal.EngineOptions{Node: "n1"}).Tick(r.ctx); err != nil {
		t.Fatal(err)
	}
	var evs web.Page[appeal.ClockEvent]
	r.do(http.MethodGet, "/api/v1/supervision/events?limit=2", "", 200, &evs)
	if len(evs.Items) != 2 || evs.NextCursor == "" || evs.Items[0].Appeal != a.ID || !evs.Items[0].Late {
		t.Fatalf("events %+v", evs)
	}
	var rest web.Page[appeal.ClockEvent]
	r.do(http.MethodGet, "/api/v1/supervision/events?limit=50&cursor="+evs.NextCursor, "", 200, &rest)
	if len(rest.Items) != 2 || rest.Items[0].ID >= evs.Items[1].ID {
		t.Errorf("the next page %+v", rest)
	}
}
