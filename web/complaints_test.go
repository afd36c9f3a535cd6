package web_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/evaluation"
	"github.com/hotline12345/hotline/web"
)

// TestComplaintLine: the line over windows and scopes, the ranking, an
// agent's own line, and bad parameters answered 400 naming them.
func TestComplaintLine(t *testing.T) {
	r := startRig(t, nil)
	now := r.clock.Now() // 2026-11-27 in Beijing
	served := func(call, agent string, cat appeal.Category, at time.Time) {
		t.Helper()
		if err := r.ratings.Served(r.ctx, evaluation.ServedCall{CallID: call, AgentID: agent, Category: cat, At: at}); err != nil {
			t.Fatal(err)
		}
	}
	served("c1", "a1", appeal.General, now)
	served("c2", "a1", appeal.General, now)
	served("c3", "a2", appeal.Emergency, now)
	served("c4", "a2", appeal.General, time.Date(2026, 11, 1, 9, 0, 0, 0, beijing))
	r.rate("c2", "a1", evaluation.BadReview, now)
	r.rate("c3", "a2", evaluation.BadReview, now)
	r.do("POST", "/api/v1/complaints/c2/review", `{"status":"upheld"}`, http.StatusOK, nil)

	var l evaluation.Line
	r.do("GET", "/api/v1/complaint-line", "", http.StatusOK, &l)
	if l.Kind != evaluation.WindowDay || l.From != "2026-11-27" || l.Served != 3 || l.Upheld != 1 || l.Pending != 1 ||
		l.State != evaluation.Over || l.Budget != -1 || l.Message == "" || l.WorstCasePer10000 == nil {
		t.Errorf("today: %+v", l)
	}
	r.do("GET", "/api/v1/complaint-line?window=month&month=2026-11&agent=a2", "", http.StatusOK, &l)
	if l.AgentID != "a2" || l.Served != 2 || l.Pending != 1 || l.Upheld != 0 || l.State != evaluation.Within || !l.NextCrosses {
		t.Errorf("a2 in November: %+v", l)
	}
	r.do("GET", "/api/v1/complaint-line?window=range&from=2026-11-01&to=2026-11-26&category=general", "", http.StatusOK, &l)
	if l.Category != appeal.General || l.Served != 1 || l.From != "2026-11-01" || l.To != "2026-11-26" {
		t.Errorf("general before the 27th: %+v", l)
	}
	r.do("GET", "/api/v1/complaint-line?window=30d", "", http.StatusOK, &l)
	if l.From != "2026-10-29" || l.Served != 4 {
		t.Errorf("30 days: %+v", l)
	}

	r.addAgent("a3", appeal.General) // provisioned, no call yet
	var rk evaluation.Ranking
	r.do("GET", "/api/v1/complaint-line/agents?window=month", "", http.StatusOK, &rk)
	if len(rk.Agents) != 3 || rk.Agents[0].AgentID != "a1" || rk.Agents[1].AgentID != "a2" || rk.Agents[2].AgentID != "a3" ||
		rk.Agents[2].RatePer10000 != nil || rk.LimitPer10000 != 3 || rk.From != "2026-11-01" {
		t.Errorf("ranking: %+v", rk)
	}

	for q, param := range map[string]string{
		"?window=week":                                "window",
		"?window=month&month=2026-13":                 "month",
		"?window=range&from=2026-11-20&to=2026-11-19": "to",
		"?window=range&from=2026-11-20":               "to",
		"?window=day&day=yesterday":                   "day",
		"?agent=a1&category=general":                  "category",
		"?category=noise":                             "category",
		"?window=month&from=2026-11-01":               "from",
	} {
		var e web.Error
		r.do("GET", "/api/v1/complaint-line"+q, "", http.StatusBadRequest, &e)
		if !strings.HasPrefix(e.Error, param+" ") {
			t.Errorf("%s: %q does not name %s", q, e.Error, param)
		}
	}
	r.fails("GET", "/api/v1/complaint-line/agents?window=month&month=2026-13", "", http.StatusBadRequest)

	// An agent sees their own line, and no one else's.
	if _, err := r.accounts.AddUser(r.ctx, auth.UserSpec{Name: "ag1", Roles: []auth.Role{auth.Agent}, AgentID: "a1", By: "test"}); err != nil {
		t.Fatal(err)
	}
	ag := r.mint(auth.TokenSpec{User: "ag1", Roles: []auth.Role{auth.Agent}, TTL: time.Hour})
	r.doAs(ag, "GET", "/api/v1/agents/a1/complaint-line?window=month", "", http.StatusOK, &l)
	if l.AgentID != "a1" || l.Served != 2 || l.Upheld != 1 {
		t.Errorf("a1's own line: %+v", l)
	}
	r.doAs(ag, "GET", "/api/v1/agents/a2/complaint-line", "", http.StatusForbidden, nil)
	r.doAs(ag, "GET", "/api/v1/complaint-line", "", http.StatusForbidden, nil)
}

// TestComplaintLineAudit: counters moved only by events audit clean; a
// counter changed behind the store's back is reported, with the day, the
// scope and both counts; bad days are answered 400 naming the parameter.
func TestComplaintLineAudit(t *testing.T) {
	r := startRig(t, nil)
	now := r.clock.Now() // 2026-11-27 in Beijing
	for _, c := range []string{"c1", "c2", "c3"} {
		if err := r.ratings.Served(r.ctx, evaluation.ServedCall{CallID: c, AgentID: "a1", Category: appeal.General, At: now}); err != nil {
			t.Fatal(err)
		}
	}
	r.rate("c1", "a1", evaluation.BadReview, now)
	r.rate("c2", "a1", evaluation.BadReview, now.Add(-24*time.Hour)) // served today: counts today
	r.rate("c3", "a1", evaluation.Praise, now)
	r.do("POST", "/api/v1/complaints/c1/review", `{"status":"upheld"}`, http.StatusOK, nil)
	r.do("POST", "/api/v1/complaints/c2/review", `{"status":"dismissed"}`, http.StatusOK, nil)

	var au web.LineAudit
	r.do("GET", "/api/v1/complaint-line/audit", "", http.StatusOK, &au)
	if au.From != "2026-10-29" || au.To != "2026-11-27" || au.Differences == nil || len(au.Differences) != 0 {
		t.Errorf("clean: %+v", au)
	}

	// One more effective complaint for the hotline, written into the
	// day's table directly.
	row, err := r.rdb.HGet(r.ctx, "hotline:{eval}:line:rows", "hotline").Int()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.rdb.BitField(r.ctx, "hotline:{eval}:line:2026-11-27", "INCRBY", "i32", fmt.Sprintf("#%d", row*6+4), 1).Err(); err != nil {
		t.Fatal(err)
	}
	r.do("GET", "/api/v1/complaint-line/audit?from=2026-11-27&to=2026-11-27", "", http.StatusOK, &au)
	want := evaluation.Counts{Served: 3, Praise: 1, BadReview: 2, Upheld: 1, Dismissed: 1}
	if len(au.Differences) != 1 {
		t.Fatalf("tampered: %+v", au)
	}
	if d := au.Differences[0]; d.Day != "2026-11-27" || d.Scope != evaluation.Hotline || d.Recounted != want || d.Counted.Upheld != 2 {
		t.Errorf("tampered: %+v", d)
	}
	r.do("GET", "/api/v1/complaint-line/audit?from=2026-11-26&to=2026-11-26", "", http.StatusOK, &au)
	if len(au.Differences) != 0 {
		t.Errorf("the day before: %+v", au)
	}

	for q, param := range map[string]string{
		"?from=2026-11-20&to=2026-11-19": "to",
		"?to=2026-13-01":                 "to",
		"?from=yesterday":                "from",
		"?from=2024-01-01":               "to",
	} {
		var e web.Error
		r.do("GET", "/api/v1/complaint-line/audit"+q, "", http.StatusBadRequest, &e)
		if !strings.HasPrefix(e.Error, param+" ") {
			t.Errorf("%s: %q does not name %s", q, e.Error, param)
		}
	}
}

// TestComplaintReverse: a reviewed complaint's decision is changed by a
// reversal, which gives its reason, is recorded as the authenticated
// user's and moves the line's counts; a second review cannot change it.
func TestComplaintReverse(t *testing.T) {
	r := startRig(t, nil)
	now := r.clock.Now()
	for _, c := range []string{"c1", "c2"} {
		if err := r.ratings.Served(r.ctx, evaluation.ServedCall{CallID: c, AgentID: "a1", Category: appeal.General, At: now}); err != nil {
			t.Fatal(err)
		}
		r.rate(c, "a1", evaluation.BadReview, now)
	}
	if _, err := r.accounts.AddUser(r.ctx, auth.UserSpec{Name: "li", Roles: []auth.Role{auth.Supervisor}, By: "test"}); err != nil {
		t.Fatal(err)
	}
	li := r.mint(auth.TokenSpec{User: "li", Roles: []auth.Role{auth.Supervisor}, TTL: time.Hour})
	r.do("POST", "/api/v1/complaints/c1/review", `{"status":"upheld","note":"rude"}`, http.StatusOK, nil)

	var e web.Error
	r.do("POST", "/api/v1/complaints/c1/review", `{"status":"dismissed"}`, http.StatusConflict, &e)
	if !strings.Contains(e.Error, "/api/v1/complaints/c1/reverse") {
		t.Errorf("a second review: %q does not say how to change the decision", e.Error)
	}
	r.do("POST", "/api/v1/complaints/c1/reverse", `{"status":"dismissed"}`, http.StatusBadRequest, &e)
	if !strings.HasPrefix(e.Error, "note:") {
		t.Errorf("a reversal without a note: %q", e.Error)
	}
	var c evaluation.Complaint
	for range 2 { // a retry changes nothing
		r.doAs(li, "POST", "/api/v1/complaints/c1/reverse", `{"status":"dismissed","note":"the recording shows no rudeness"}`, http.StatusOK, &c)
		if c.Status != evaluation.Dismissed || c.ReviewedBy != "li" || c.Note != "the recording shows no rudeness" || c.ReviewedAt == nil {
			t.Errorf("reversed: %+v", c)
		}
	}
	var l evaluation.Line
	r.do("GET", "/api/v1/complaint-line", "", http.StatusOK, &l)
	if l.Served != 2 || l.Upheld != 0 || l.Dismissed != 1 || l.Pending != 1 {
		t.Errorf("after the reversal: %+v", l)
	}
	r.doAs(li, "POST", "/api/v1/complaints/c1/reverse", `{"status":"upheld","note":"rude after all"}`, http.StatusOK, &c)
	r.do("GET", "/api/v1/complaint-line", "", http.StatusOK, &l)
	if c.Status != evaluation.Upheld || l.Upheld != 1 || l.Dismissed != 0 {
		t.Errorf("reversed back: %+v, %+v", c, l)
	}

	r.do("POST", "/api/v1/complaints/c2/reverse", `{"status":"upheld","note":"x"}`, http.StatusBadRequest, &e)
	if !strings.Contains(e.Error, "pending") {
		t.Errorf("reversing a pending complaint: %q", e.Error)
	}
	r.fails("POST", "/api/v1/complaints/c2/reverse", `{"status":"maybe","note":"x"}`, http.StatusBadRequest)
	r.fails("POST", "/api/v1/complaints/nothing/reverse", `{"status":"upheld","note":"x"}`, http.StatusNotFound)
	var au web.LineAudit
	r.do("GET", "/api/v1/complaint-line/audit?from=2026-11-27&to=2026-11-27", "", http.StatusOK, &au)
	if len(au.Differences) != 0 {
		t.Errorf("audit after the reversals: %+v", au)
	}

	// The history of the decisions is kept: the review and both reversals.
	r.do("GET", "/api/v1/complaints/c1", "", http.StatusOK, &c)
	var h []string
	for _, d := range c.History {
		by, _, _ := strings.Cut(d.By, ":") // the rig's token has no user: token:<id>
		h = append(h, fmt.Sprintf("%s>%s by %s: %s", d.From, d.Status, by, d.Note))
	}
	if want := []string{"pending>upheld by token: rude", "upheld>dismissed by li: the recording shows no rudeness", "dismissed>upheld by li: rude after all"}; strings.Join(h, "; ") != strings.Join(want, "; ") {
		t.Errorf("history %q; want %q", h, want)
	}
	r.fails("GET", "/api/v1/complaints/nothing", "", http.StatusNotFound)
}

// TestComplaintLineReport lists every call a window counts, as JSON and
// CSV, with the counts of the line beside them; the events of the alarm
// are listed newest first.
func TestComplaintLineReport(t *testing.T) {
	r := startRig(t, nil)
	now := r.clock.Now() // 2026-11-27 in Beijing
	lastMonth := time.Date(2026, 10, 31, 23, 30, 0, 0, beijing)
	for i, at := range []time.Time{now.Add(-2 * time.Hour), now.Add(-time.Hour), now, lastMonth} {
		agent := []string{"a1", "a2", "a1", "a1"}[i]
		if err := r.ratings.Served(r.ctx, evaluation.ServedCall{CallID: fmt.Sprintf("c%d", i+1), AgentID: agent, Category: appeal.General, At: at}); err != nil {
			t.Fatal(err)
		}
	}
	r.rate("c1", "a1", evaluation.BadReview, now)
	r.rate("c2", "a2", evaluation.Praise, now)
	r.rate("c3", "a1", evaluation.BadReview, now)
	r.rate("c4", "a1", evaluation.BadReview, now) // a late review lands on the 31st
	r.do("POST", "/api/v1/complaints/c1/review", `{"status":"upheld","note":"rude"}`, http.StatusOK, nil)
	r.do("POST", "/api/v1/complaints/c4/review", `{"status":"dismissed"}`, http.StatusOK, nil)

	var rep web.LineReport
	r.do("GET", "/api/v1/complaint-line/report?window=month&month=2026-11", "", http.StatusOK, &rep)
	var rows []string
	for _, c := range rep.Calls {
		by, _, _ := strings.Cut(c.DecidedBy, ":") // the rig's token has no user: token:<id>
		rows = append(rows, fmt.Sprintf("%s %s %s %s %s %v", c.CallID, c.AgentID, c.Rating, c.Decision, by, c.Effective))
	}
	want := []string{"c1 a1 bad_review upheld token true", "c2 a2 praise   false", "c3 a1 bad_review pending  false"}
	if strings.Join(rows, "; ") != strings.Join(want, "; ") {
		t.Errorf("November's calls %q; want %q", rows, want)
	}
	if l := rep.Line; l.Served != 3 || l.Upheld != 1 || l.Pending != 1 || l.State != evaluation.Over {
		t.Errorf("November's line %+v", l)
	}
	r.do("GET", "/api/v1/complaint-line/report?window=month&month=2026-10&agent=a1", "", http.StatusOK, &rep)
	if len(rep.Calls) != 1 || rep.Calls[0].Day != "2026-10-31" || rep.Calls[0].Decision != evaluation.Dismissed || rep.Line.Dismissed != 1 {
		t.Errorf("October: %+v", rep)
	}

	_, hdr, body := r.send(request{method: "GET", path: "/api/v1/complaint-line/report?window=month&month=2026-11&agent=a1&format=csv", token: r.token})
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	if len(lines) != 3 || lines[0] != "day,call_id,served_at,agent_id,category,rating,decision,decided_by,decided_at,reversals,effective" ||
		!strings.HasPrefix(lines[1], "2026-11-27,c1,2026-11-27T08:00:00+08:00,a1,general,bad_review,upheld,token:") || !strings.HasSuffix(lines[1], ",0,true") ||
		!strings.HasSuffix(lines[2], ",pending,,,0,false") {
		t.Errorf("CSV:\n%s", body)
	}
	if !strings.Contains(hdr.Get("Content-Disposition"), "complaint-line-2026-11-01-2026-11-30.csv") {
		t.Errorf("Content-Disposition %q", hdr.Get("Content-Disposition"))
	}
	r.fails("GET", "/api/v1/complaint-line/report?format=xml", "", http.StatusBadRequest)
	r.fails("GET", "/api/v1/complaint-line/report?window=month&month=2026-13", "", http.StatusBadRequest)

	// The alarm's events, newest first.
	alarm := evaluation.NewAlarm(r.ratings, evaluation.AlarmOptions{Owner: "n/1", Node: "n"})
	if _, err := alarm.Check(r.ctx); err != nil {
		t.Fatal(err)
	}
	var evs web.Page[evaluation.Event]
	r.do("GET", "/api/v1/complaint-line/events?limit=2", "", http.StatusOK, &evs)
	if len(evs.Items) != 2 || evs.NextCursor == "" || evs.Items[0].Kind != evaluation.EventOver || evs.Items[0].ID <= evs.Items[1].ID {
		t.Fatalf("events: %+v", evs)
	}
	r.do("GET", "/api/v1/complaint-line/events?limit=2&cursor="+evs.NextCursor, "", http.StatusOK, &evs)
	if len(evs.Items) == 0 {
		t.Errorf("no second page")
	}
	r.fails("GET", "/api/v1/complaint-line/events?cursor=nonsense", "", http.StatusBadRequest)
}
