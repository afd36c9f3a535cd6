package main

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/ban"
	"github.com/hotline12345/hotline/evaluation"
)

// TestCommandsWithRoles: every command that calls the API works with a
// token of a role the API lets through, and with a token of another role
// fails saying which role it needs and how to get one.
func TestCommandsWithRoles(t *testing.T) {
	t.Parallel()
	r := startAPI(t)
	if _, err := r.agents.Create(r.ctx, acd.AgentSpec{ID: "a1", SIPUser: "u-a1", Password: "phone-password-1", Categories: []appeal.Category{appeal.General}}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.agents.Registered(r.ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	bans, err := ban.New(ban.Options{Redis: r.h.Client})
	if err != nil {
		t.Fatal(err)
	}
	src := netip.MustParseAddr("203.0.113.66")
	for i := range 5 {
		if err := bans.Fail(r.ctx, ban.Failure{Service: "sip", Source: src, User: "x", Reason: "test", ID: string(rune('a' + i))}); err != nil {
			t.Fatal(err)
		}
	}
	// A bad review waiting for review.
	ratings := evaluation.NewStore(r.h.Client, evaluation.StoreOptions{})
	now := time.Now()
	if _, err := ratings.Record(r.ctx, evaluation.Rating{CallID: "r1", AgentID: "a1", Category: appeal.General, Verdict: evaluation.BadReview, Key: "2",
		At: now, ServedAt: now, PromptID: "rating", PromptVersion: "1"}); err != nil {
		t.Fatal(err)
	}
	accounts := auth.NewStore(r.h.Client, auth.StoreOptions{})
	_, victim, err := accounts.CreateToken(r.ctx, auth.TokenSpec{Roles: []auth.Role{auth.Ops}, TTL: time.Hour, By: "test"})
	if err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		stdin        string
		args         []string
		right, wrong auth.Role
		says         string
	}{
		{"", []string{"agents", "list"}, auth.Supervisor, auth.Agent, "a1"},
		{"", []string{"agents", "show", "a1"}, auth.Supervisor, auth.Ops, `"id": "a1"`},
		{"", []string{"agents", "add", "--id", "a2", "--sip-user", "u-a2", "--password", "phone-password-2", "--categories", "general"}, auth.Admin, auth.Supervisor, "agent a2 added"},
		{"", []string{"agents", "update", "a2", "--name", "Li Na"}, auth.Admin, auth.Supervisor, "agent a2 updated"},
		{"", []string{"agents", "pause", "a1", "--reason", "lunch"}, auth.Supervisor, auth.Ops, "paused"},
		{"", []string{"agents", "resume", "a1"}, auth.Supervisor, auth.Ops, "available"},
		{"", []string{"agents", "delete", "a2"}, auth.Admin, auth.Supervisor, "agent a2 deleted"},
		{"", []string{"queue"}, auth.Supervisor, auth.Admin, "no calls waiting"},
		{"a-good-password-1\n", []string{"users", "add", "zhao", "--role", "supervisor", "--password-stdin"}, auth.Admin, auth.Supervisor, "account zhao added, supervisor, with a password"},
		{"", []string{"users", "list"}, auth.Admin, auth.Ops, "zhao"},
		{"", []string{"users", "update", "zhao", "--role", "supervisor,ops"}, auth.Admin, auth.Supervisor, "account zhao updated"},
		{"another-password-2\n", []string{"users", "passwd", "zhao", "--password-stdin"}, auth.Admin, auth.Supervisor, "password set"},
		{"", []string{"users", "disable", "zhao"}, auth.Admin, auth.Ops, "account zhao disabled"},
		{"", []string{"users", "enable", "zhao"}, auth.Admin, auth.Ops, "account zhao enabled"},
		{"", []string{"tokens", "create", "--role", "ops", "--expires", "30d", "--name", "grafana"}, auth.Admin, auth.Supervisor, "hlt_"},
		{"", []string{"tokens", "list"}, auth.Admin, auth.Ops, "grafana"},
		{"", []string{"tokens", "revoke", victim.ID}, auth.Admin, auth.Ops, "revoked"},
		{"", []string{"bans", "list"}, auth.Ops, auth.Supervisor, "203.0.113.66"},
		{"", []string{"bans", "lift", "203.0.113.66"}, auth.Ops, auth.Agent, "lifted"},
		{"", []string{"complaints", "line"}, auth.Supervisor, auth.Ops, "the hotline, day"},
		{"", []string{"complaints", "line", "--window", "month", "--agent", "a1"}, auth.Admin, auth.Agent, "agent a1, month"},
		{"", []string{"complaints", "line", "--window", "30d", "--agents"}, auth.Supervisor, auth.Visitor, "agents, 30d"},
		{"", []string{"complaints", "audit"}, auth.Admin, auth.Ops, "the counters agree"},
		{"", []string{"complaints", "pending"}, auth.Supervisor, auth.Admin, "r1 "},
		{"", []string{"complaints", "review", "r1", "--upheld", "--note", "rude"}, auth.Supervisor, auth.Admin, "complaint r1 reviewed: upheld"},
		{"", []string{"complaints", "review", "r1", "--dismissed", "--reverse", "--note", "not rude"}, auth.Supervisor, auth.Ops, "complaint r1 reversed: dismissed"},
		{"", []string{"whoami"}, auth.Visitor, "", "visitor"},
		{"", []string{"logout"}, auth.Agent, "", "revoked"},
	} {
		if c.wrong != "" {
			r.environ["HOTLINE_TOKEN"] = r.h.Token(t, c.wrong)
			code, out, errs := r.hotlineIn(c.stdin, c.args...)
			if code != 1 || out != "" || !strings.Contains(errs, "needs the role") || !strings.Contains(errs, "hotline tokens create --role") {
				t.Errorf("%q as %s: exit %d, stdout %q, stderr %q; want 1, the role it needs and how to get it", c.args, c.wrong, code, out, errs)
			}
		}
		r.environ["HOTLINE_TOKEN"] = r.h.Token(t, c.right)
		code, out, errs := r.hotlineIn(c.stdin, c.args...)
		if code != 0 || !strings.Contains(out, c.says) {
			t.Errorf("%q as %s: exit %d, stdout %q, stderr %q; want 0 and %q", c.args, c.right, code, out, errs, c.says)
		}
	}

	// The account made above logs in; its token works for its roles.
	code, out, errs := r.hotlineIn("another-password-2\n", "login", "--user", "zhao", "--password-stdin")
	tok := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(tok, "hlt_") || strings.Count(out, "\n") != 1 {
		t.Fatalf("login: exit %d, stdout %q, stderr %q; want the token alone", code, out, errs)
	}
	r.environ["HOTLINE_TOKEN"] = tok
	if code, out, errs := r.hotline("whoami"); code != 0 || !strings.HasPrefix(out, "zhao: supervisor,ops") {
		t.Errorf("whoami after login: exit %d, %q %q", code, out, errs)
	}
	if code, _, errs := r.hotlineIn("wrong-password\n", "login", "--user", "zhao", "--password-stdin"); code != 1 || !strings.Contains(errs, "wrong user name or password") {
		t.Errorf("login with a wrong password: exit %d, %q", code, errs)
	}

	// No token at all: said plainly.
	r.environ["HOTLINE_TOKEN"] = ""
	if code, _, errs := r.hotline("agents", "list"); code != 1 || !strings.Contains(errs, "no token: set HOTLINE_TOKEN") {
		t.Errorf("without a token: exit %d, %q", code, errs)
	}
}
