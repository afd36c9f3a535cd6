package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/evaluation"
	"github.com/hotline12345/hotline/internal/evaltest"
	"github.com/hotline12345/hotline/web"
)

// TestComplaintsLine: the command shows the counts and the state of a
// window, ranks the agents, and says which parameter is wrong.
func TestComplaintsLine(t *testing.T) {
	t.Parallel()
	r := startAPI(t)
	s := evaluation.NewStore(r.h.Client, evaluation.StoreOptions{})
	now := time.Now()
	for i := range 3 {
		agent := []string{"a1", "a1", "a2"}[i]
		call := fmt.Sprintf("c%d", i)
		if err := s.Served(r.ctx, evaluation.ServedCall{CallID: call, AgentID: agent, Category: appeal.General, At: now}); err != nil {
			t.Fatal(err)
		}
	}
	rt := evaluation.Rating{CallID: "c0", AgentID: "a1", Category: appeal.General, Verdict: evaluation.BadReview, Key: "2",
		At: now, ServedAt: now, PromptID: "rating", PromptVersion: "1"}
	if _, err := s.Record(r.ctx, rt); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Review(r.ctx, "c0", evaluation.Upheld, "sup", ""); err != nil {
		t.Fatal(err)
	}

	code, out, errs := r.hotline("complaints", "line", "--window", "month")
	if code != 0 || !strings.Contains(out, "the hotline, month") || !strings.Contains(out, ": over") ||
		!strings.Contains(out, "served 3  bad reviews 1  upheld 1  dismissed 0  pending 0") ||
		!strings.Contains(out, "1 effective complaint in 3 calls served") {
		t.Errorf("month: exit %d, %q, %q", code, out, errs)
	}
	code, out, errs = r.hotline("complaints", "line", "--agent", "a2")
	if code != 0 || !strings.Contains(out, "agent a2, day") || !strings.Contains(out, ": within") ||
		!strings.Contains(out, "one more effective complaint crosses it") {
		t.Errorf("a2: exit %d, %q, %q", code, out, errs)
	}
	code, out, errs = r.hotline("complaints", "line", "--agents")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 4 || !strings.HasPrefix(lines[2], "a1 ") || !strings.HasPrefix(lines[3], "a2 ") {
		t.Errorf("agents: exit %d, %q, %q", code, out, errs)
	}
	code, out, _ = r.hotline("complaints", "line", "--json", "--category", "general")
	var l evaluation.Line
	if err := json.Unmarshal([]byte(out), &l); code != 0 || err != nil || l.Category != appeal.General || l.Served != 3 || l.Upheld != 1 {
		t.Errorf("json: exit %d, %+v, %v", code, l, err)
	}

	for _, c := range []struct {
		args  []string
		code  int
		names string
	}{
		{[]string{"--window", "week"}, 1, `window "week"`},
		{[]string{"--window", "month", "--month", "2026-13"}, 1, `month "2026-13"`},
		{[]string{"--window", "range", "--from", "2026-12-02", "--to", "2026-12-01"}, 1, `to "2026-12-01": before from`},
		{[]string{"--agents", "--agent", "a1"}, 2, "--agents"},
		{[]string{"extra"}, 2, "no arguments"},
	} {
		code, out, errs := r.hotline(append([]string{"complaints", "line"}, c.args...)...)
		if code != c.code || out != "" || !strings.Contains(errs, c.names) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want %d naming %s", c.args, code, out, errs, c.code, c.names)
		}
	}
}

// TestComplaintsAudit: counters moved by events audit clean and exit 0; a
// counter changed directly in Redis is printed with both counts, and the
// command exits 3.
func TestComplaintsAudit(t *testing.T) {
	t.Parallel()
	r := startAPI(t)
	s := evaluation.NewStore(r.h.Client, evaluation.StoreOptions{})
	now := time.Now()
	day := now.In(appeal.DefaultLocation()).Format(time.DateOnly)
	for _, call := range []string{"c0", "c1"} {
		if err := s.Served(r.ctx, evaluation.ServedCall{CallID: call, AgentID: "a1", Category: appeal.General, At: now}); err != nil {
			t.Fatal(err)
		}
	}
	rt := evaluation.Rating{CallID: "c0", AgentID: "a1", Category: appeal.General, Verdict: evaluation.BadReview, Key: "2",
		At: now, ServedAt: now, PromptID: "rating", PromptVersion: "1"}
	if _, err := s.Record(r.ctx, rt); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Review(r.ctx, "c0", evaluation.Upheld, "sup", ""); err != nil {
		t.Fatal(err)
	}

	code, out, errs := r.hotline("complaints", "audit", "--from", day, "--to", day)
	if code != 0 || !strings.Contains(out, "the counters agree") || errs != "" {
		t.Errorf("clean: exit %d, %q, %q", code, out, errs)
	}
	if code, out, errs := r.hotline("complaints", "audit"); code != 0 || !strings.Contains(out, " to "+day+": the counters agree") {
		t.Errorf("the 30 days to today: exit %d, %q, %q", code, out, errs)
	}

	// Agent a1's calls served, set to 5 behind the store's back.
	row, err := r.h.Client.HGet(r.ctx, "hotline:{eval}:line:rows", "agent:a1").Int()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.h.Client.BitField(r.ctx, "hotline:{eval}:line:"+day, "SET", "i32", fmt.Sprintf("#%d", row*6), 5).Err(); err != nil {
		t.Fatal(err)
	}
	code, out, errs = r.hotline("complaints", "audit", "--from", day, "--to", day)
	if code != 3 || !strings.Contains(errs, "differ") {
		t.Errorf("tampered: exit %d, stderr %q; want 3", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "DAY") || strings.Join(strings.Fields(lines[2]), " ") != day+" agent a1 served 5 2" {
		t.Errorf("tampered: %q", out)
	}
	code, out, _ = r.hotline("complaints", "audit", "--json", "--from", day, "--to", day)
	var au web.LineAudit
	if err := json.Unmarshal([]byte(out), &au); code != 3 || err != nil || len(au.Differences) != 1 ||
		au.Differences[0].Counted.Served != 5 || au.Differences[0].Recounted.Served != 2 {
		t.Errorf("json: exit %d, %+v, %v", code, au, err)
	}

	for _, c := range []struct {
		args  []string
		code  int
		names string
	}{
		{[]string{"--from", "2026-12-02", "--to", "2026-12-01"}, 1, `to "2026-12-01": before from`},
		{[]string{"--to", "2026-13-01"}, 1, `to "2026-13-01"`},
		{[]string{"extra"}, 2, "no arguments"},
	} {
		code, out, errs := r.hotline(append([]string{"complaints", "audit"}, c.args...)...)
		if code != c.code || out != "" || !strings.Contains(errs, c.names) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want %d naming %s", c.args, code, out, errs, c.code, c.names)
		}
	}
}

// TestComplaintsAuditAfterRandomEvents: 10,000 random events (calls
// served, ratings, reviews, reversals, retries and replays) sent through
// two stores, as two nodes would, leave counters that equal the model of
// the events, and "hotline complaints audit" finds no difference.
func TestComplaintsAuditAfterRandomEvents(t *testing.T) {
	t.Parallel()
	r := startAPI(t)
	loc := appeal.DefaultLocation()
	stores := []*evaluation.Store{evaluation.NewStore(r.h.Client, evaluation.StoreOptions{}), evaluation.NewStore(r.h.Client, evaluation.StoreOptions{})}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	first := time.Now().In(loc).AddDate(0, 0, -5)
	start := time.Date(first.Year(), first.Month(), first.Day(), 0, 0, 0, 0, loc)
	model, err := evaltest.Random(r.ctx, stores, rand.New(rand.NewPCG(seed, 12)), 10000, start, loc)
	if err != nil {
		t.Fatal(err)
	}
	from, to := start.Format(time.DateOnly), start.AddDate(0, 0, 2).Format(time.DateOnly)
	var sum evaluation.Counts
	for _, scopes := range model {
		sum = sum.Add(scopes[evaluation.Hotline])
	}
	code, out, errs := r.hotline("complaints", "line", "--json", "--window", "range", "--from", from, "--to", to)
	var l evaluation.Line
	if err := json.Unmarshal([]byte(out), &l); code != 0 || err != nil || l.Counts != sum {
		t.Errorf("line: exit %d, %+v, %v, %q; the model says %+v", code, l.Counts, err, errs, sum)
	}
	code, out, errs = r.hotline("complaints", "audit", "--from", from, "--to", to)
	if code != 0 || !strings.Contains(out, "the counters agree") || errs != "" {
		t.Errorf("audit: exit %d, %q, %q", code, out, errs)
	}
}

// TestComplaintsReview: the pending bad reviews oldest first with their
// age; a review recorded as the user the token acts for; a second review
// refused, saying how to reverse; a reversal moving the line back.
func TestComplaintsReview(t *testing.T) {
	t.Parallel()
	r := startAPI(t)
	s := evaluation.NewStore(r.h.Client, evaluation.StoreOptions{})
	now := time.Now()
	// c0 is the oldest, 3 hours ago, c1 2 and c2 1 — or, in the first
	// hours of the hotline's day, spread over the part of today gone by:
	// the day window must hold all three.
	step := time.Hour
	if y, m, d := now.In(appeal.DefaultLocation()).Date(); now.Sub(time.Date(y, m, d, 0, 0, 0, 0, appeal.DefaultLocation())) < 3*time.Hour+time.Minute {
		step = now.Sub(time.Date(y, m, d, 0, 0, 0, 0, appeal.DefaultLocation())) / 4
	}
	oldest := now.Add(-3 * step)
	for i, call := range []string{"c0", "c1", "c2"} {
		at := now.Add(time.Duration(i-3) * step)
		if err := s.Served(r.ctx, evaluation.ServedCall{CallID: call, AgentID: "a1", Category: appeal.General, At: at}); err != nil {
			t.Fatal(err)
		}
		rt := evaluation.Rating{CallID: call, AgentID: "a1", Category: appeal.General, Verdict: evaluation.BadReview, Key: "2",
			At: at, ServedAt: at, PromptID: "rating", PromptVersion: "1"}
		if _, err := s.Record(r.ctx, rt); err != nil {
			t.Fatal(err)
		}
	}
	accounts := auth.NewStore(r.h.Client, auth.StoreOptions{})
	if _, err := accounts.AddUser(r.ctx, auth.UserSpec{Name: "li", Roles: []auth.Role{auth.Supervisor}, By: "test"}); err != nil {
		t.Fatal(err)
	}
	tok, _, err := accounts.CreateToken(r.ctx, auth.TokenSpec{User: "li", Roles: []auth.Role{auth.Supervisor}, TTL: time.Hour, By: "test"})
	if err != nil {
		t.Fatal(err)
	}
	r.environ["HOTLINE_TOKEN"] = tok

	code, out, errs := r.hotline("complaints", "pending")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i := range lines {
		lines[i] = strings.TrimRight(lines[i], " ")
	}
	if code != 0 || len(lines) != 4 || !strings.HasPrefix(lines[0], "ID ") || !strings.HasPrefix(lines[1], "c0 ") ||
		!strings.HasSuffix(lines[1], " "+age(time.Since(oldest))) && !strings.HasSuffix(lines[1], " "+age(time.Since(oldest)-time.Minute)) ||
		!strings.HasPrefix(lines[3], "c2 ") {
		t.Errorf("pending: exit %d, %q, %q", code, out, errs)
	}

	code, out, errs = r.hotline("complaints", "review", "c0", "--upheld", "--note", "rude to the caller")
	if code != 0 || !strings.HasPrefix(out, "complaint c0 reviewed: upheld by li at ") {
		t.Errorf("review: exit %d, %q, %q", code, out, errs)
	}
	c, err := s.Complaint(r.ctx, "c0")
	if err != nil || c.Status != evaluation.Upheld || c.ReviewedBy != "li" || c.Note != "rude to the caller" {
		t.Errorf("stored: %+v, %v", c, err)
	}
	if code, out, _ := r.hotline("complaints", "pending", "--json"); code != 0 || strings.Contains(out, `"c0"`) || !strings.Contains(out, `"c1"`) {
		t.Errorf("pending after the review: exit %d, %q", code, out)
	}
	code, out, errs = r.hotline("complaints", "review", "--dismissed", "--note", "no", "c0")
	if code != 1 || out != "" || !strings.Contains(errs, "is upheld, not dismissed") || !strings.Contains(errs, "hotline complaints review c0 --dismissed --reverse") {
		t.Errorf("a second review: exit %d, %q, %q", code, out, errs)
	}
	code, out, errs = r.hotline("complaints", "review", "c0", "--dismissed", "--reverse", "--note", "the recording shows no rudeness")
	if code != 0 || !strings.HasPrefix(out, "complaint c0 reversed: dismissed by li at ") {
		t.Errorf("reversal: exit %d, %q, %q", code, out, errs)
	}
	if l, err := s.Line(r.ctx, evaluation.Window{Kind: evaluation.WindowRange, From: oldest.In(appeal.DefaultLocation()).Format(time.DateOnly),
		To: now.In(appeal.DefaultLocation()).Format(time.DateOnly)}, evaluation.Hotline); err != nil || l.Upheld != 0 || l.Dismissed != 1 || l.Pending != 2 {
		t.Errorf("the line after the reversal: %+v, %v", l, err)
	}

	code, out, errs = r.hotline("complaints", "show", "c0")
	if code != 0 || !strings.Contains(out, "complaint c0: dismissed") ||
		!regexp.MustCompile(`(?m)^\S+ \S+ +pending +upheld +li +rude to the caller$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^\S+ \S+ +upheld +dismissed +li +the recording shows no rudeness$`).MatchString(out) {
		t.Errorf("show: exit %d, %q, %q", code, out, errs)
	}
	code, out, errs = r.hotline("complaints", "report", "--window", "30d", "--csv")
	rows := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(rows) != 4 || !strings.HasPrefix(rows[0], "day,call_id,") || !strings.Contains(rows[1], ",c0,") ||
		!strings.Contains(rows[1], ",bad_review,dismissed,li,") || !strings.HasSuffix(rows[1], ",1,false") {
		t.Errorf("report: exit %d, %q, %q", code, out, errs)
	}
	code, out, errs = r.hotline("complaints", "report", "--window", "30d")
	if code != 0 || !strings.Contains(out, "served 3  bad reviews 3  upheld 0  dismissed 1  pending 2") ||
		!regexp.MustCompile(`(?m)^\S+ +c0 +\S+ +a1 +general +bad_review +dismissed +li *$`).MatchString(out) {
		t.Errorf("report as a table: exit %d, %q, %q", code, out, errs)
	}
	// The server's alarm saw the review cross the line and the reversal
	// clear it: four windows each way.
	code, out, errs = r.hotline("complaints", "events")
	if code != 0 || strings.Count(out, "  over  ") != 4 || strings.Count(out, "  cleared  ") != 4 ||
		!regexp.MustCompile(`(?m)^\S+ \S+ +over +hotline +day .* 1 +3 +over the line: 1 effective complaint in 3 calls served`).MatchString(out) {
		t.Errorf("events: exit %d, %q, %q", code, out, errs)
	}

	for _, c := range []struct {
		args  []string
		code  int
		names string
	}{
		{[]string{"c1", "--note", "x"}, 2, "--upheld or --dismissed"},
		{[]string{"c1", "--upheld", "--dismissed", "--note", "x"}, 2, "--upheld or --dismissed"},
		{[]string{"c1", "--upheld"}, 2, "--note"},
		{[]string{"--upheld", "--note", "x"}, 2, "which complaint"},
		{[]string{"c1", "c2", "--upheld", "--note", "x"}, 2, "one complaint at a time"},
		{[]string{"c9", "--upheld", "--note", "x"}, 1, "c9"},
		{[]string{"c1", "--upheld", "--reverse", "--note", "x"}, 1, "pending"},
	} {
		code, out, errs := r.hotline(append([]string{"complaints", "review"}, c.args...)...)
		if code != c.code || out != "" || !strings.Contains(errs, c.names) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want %d naming %s", c.args, code, out, errs, c.code, c.names)
		}
	}
}
