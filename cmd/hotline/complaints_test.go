package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/evaluation"
	"github.com/hotline12345/hotline/web"
)

// TestComplaintsLine: the command shows the counts and the state of a
// window, ranks the agents, and says which parameter is wrong.
func TestComplaintsLine(t *testing.T) {
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

	code, out, errs := hotline("complaints", "line", "--window", "month")
	if code != 0 || !strings.Contains(out, "the hotline, month") || !strings.Contains(out, ": over") ||
		!strings.Contains(out, "served 3  bad reviews 1  upheld 1  dismissed 0  pending 0") ||
		!strings.Contains(out, "1 effective complaint in 3 calls served") {
		t.Errorf("month: exit %d, %q, %q", code, out, errs)
	}
	code, out, errs = hotline("complaints", "line", "--agent", "a2")
	if code != 0 || !strings.Contains(out, "agent a2, day") || !strings.Contains(out, ": within") ||
		!strings.Contains(out, "one more effective complaint crosses it") {
		t.Errorf("a2: exit %d, %q, %q", code, out, errs)
	}
	code, out, errs = hotline("complaints", "line", "--agents")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 4 || !strings.HasPrefix(lines[2], "a1 ") || !strings.HasPrefix(lines[3], "a2 ") {
		t.Errorf("agents: exit %d, %q, %q", code, out, errs)
	}
	code, out, _ = hotline("complaints", "line", "--json", "--category", "general")
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
		code, out, errs := hotline(append([]string{"complaints", "line"}, c.args...)...)
		if code != c.code || out != "" || !strings.Contains(errs, c.names) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want %d naming %s", c.args, code, out, errs, c.code, c.names)
		}
	}
}

// TestComplaintsAudit: counters moved by events audit clean and exit 0; a
// counter changed directly in Redis is printed with both counts, and the
// command exits 3.
func TestComplaintsAudit(t *testing.T) {
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

	code, out, errs := hotline("complaints", "audit", "--from", day, "--to", day)
	if code != 0 || !strings.Contains(out, "the counters agree") || errs != "" {
		t.Errorf("clean: exit %d, %q, %q", code, out, errs)
	}
	if code, out, errs := hotline("complaints", "audit"); code != 0 || !strings.Contains(out, " to "+day+": the counters agree") {
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
	code, out, errs = hotline("complaints", "audit", "--from", day, "--to", day)
	if code != 3 || !strings.Contains(errs, "differ") {
		t.Errorf("tampered: exit %d, stderr %q; want 3", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "DAY") || strings.Join(strings.Fields(lines[2]), " ") != day+" agent a1 served 5 2" {
		t.Errorf("tampered: %q", out)
	}
	code, out, _ = hotline("complaints", "audit", "--json", "--from", day, "--to", day)
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
		code, out, errs := hotline(append([]string{"complaints", "audit"}, c.args...)...)
		if code != c.code || out != "" || !strings.Contains(errs, c.names) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want %d naming %s", c.args, code, out, errs, c.code, c.names)
		}
	}
}
