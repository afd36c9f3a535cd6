package main

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/caller"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/internal/hotlinetest"
	"github.com/hotline12345/hotline/prompts"
)

// TestAppealsCommands: a citizen's call through the intake leaves an
// emergency appeal; an agent dispatches it with the CLI, the organizer's
// own token signs and reports back, the agent closes it, and "appeals
// show" has every step. An illegal step exits non-zero naming the state;
// peak mode is switched with a reason.
func TestAppealsCommands(t *testing.T) {
	t.Parallel()
	h := hotlinetest.Start(t, func(c *config.Config) {
		c.Organizers = []config.Organizer{
			{ID: "water", Name: "Water Group", Kind: "utility"},
			{ID: "chaoyang", Name: "Chaoyang District Government", Kind: "district", District: "Chaoyang"},
		}
	})
	ctx := context.Background()
	tr := <-h.Call(ctx, t, "13900000077", caller.Script{
		{On: prompts.Greeting, BargeIn: true, Press: "1"},
		{On: prompts.ConsentMenu, BargeIn: true, Press: "1"},
	})
	if !slices.Contains(tr.HeardIDs(), prompts.AppealNumber) {
		t.Fatalf("the caller heard %v, no appeal number", tr.HeardIDs())
	}
	found, _, err := h.Appeals.Find(ctx, appeal.Filter{State: appeal.Received})
	if err != nil || len(found) != 1 || found[0].Category != appeal.Emergency || !found[0].Consent.Given {
		t.Fatalf("appeals after the call: %+v %v", found, err)
	}
	id := found[0].ID

	accounts := auth.NewStore(h.Client, auth.StoreOptions{})
	if _, err := accounts.AddUser(ctx, auth.UserSpec{Name: "water-desk", Roles: []auth.Role{auth.Organizer}, OrganizerID: "water", By: "test"}); err != nil {
		t.Fatal(err)
	}
	organizer, _, err := accounts.CreateToken(ctx, auth.TokenSpec{User: "water-desk", Roles: []auth.Role{auth.Organizer}, TTL: time.Hour, By: "test"})
	if err != nil {
		t.Fatal(err)
	}
	agent := h.Token(t, auth.Agent)
	env := environ{}
	as := func(token string, want int, args ...string) string {
		t.Helper()
		env["HOTLINE_TOKEN"] = token
		code, out, errs := env.hotline(append([]string{"appeals", "--api", h.API()}, args...)...)
		if code != want {
			t.Fatalf("hotline appeals %q: exit %d, want %d\n%s%s", args, code, want, out, errs)
		}
		return out + errs
	}

	if out := as(agent, 1, "sign", id, "--organizer", "water"); !strings.Contains(out, "received") {
		t.Errorf("sign before dispatch: %s", out)
	}
	if out := as(agent, 0, "dispatch", id, "--lead", "water", "--note", "main burst"); !strings.Contains(out, "received → dispatched") || !strings.Contains(out, "waits for sign") {
		t.Errorf("dispatch: %s", out)
	}
	if out := as(organizer, 0, "list"); !strings.Contains(out, id) || !strings.Contains(out, "water*") {
		t.Errorf("the organizer's list: %s", out)
	}
	as(organizer, 0, "sign", id)
	as(organizer, 2, "feedback", id, "--result", "not_solved", "--next-at", "tomorrow")
	if out := as(organizer, 1, "feedback", id, "--result", "not_solved"); !strings.Contains(out, "reason") {
		t.Errorf("a not_solved feedback without a reason: %s", out)
	}
	as(organizer, 0, "feedback", id, "--result", "not_solved", "--reason", "the main needs replacing",
		"--next-steps", "replace the main", "--next-at", "2027-01-05T09:00:00+08:00")
	if out := as(organizer, 1, "feedback", id, "--result", "solved"); !strings.Contains(out, "fed_back") {
		t.Errorf("feedback twice: %s", out)
	}
	as(agent, 0, "close", id)
	out := as(agent, 0, "show", id)
	for _, want := range []string{"emergency, closed", "consents to a return visit", "feedback: not_solved: the main needs replacing",
		"created", "dispatch", "sign", "feedback", "close", "water-desk", "note: main burst"} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}

	supervisor := h.Token(t, auth.Supervisor)
	env["HOTLINE_TOKEN"] = supervisor
	if code, _, errs := env.hotline("peak", "--api", h.API(), "on"); code != 1 || !strings.Contains(errs, "reason") {
		t.Errorf("peak on without a reason: exit %d %s", code, errs)
	}
	if code, out, errs := env.hotline("peak", "--api", h.API(), "on", "--reason", "typhoon"); code != 0 || !strings.Contains(out, "peak mode on") {
		t.Errorf("peak on: exit %d %s%s", code, out, errs)
	}
	if code, out, _ := env.hotline("peak", "--api", h.API()); code != 0 || !strings.Contains(out, "peak mode on") || !strings.Contains(out, "typhoon") {
		t.Errorf("peak status: exit %d %s", code, out)
	}
}

// withDefault runs the default command only when none is named, wherever
// the --api flag stands.
func TestWithDefault(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ args, want []string }{
		{nil, []string{"list"}},
		{[]string{"--json"}, []string{"list", "--json"}},
		{[]string{"--api", "http://h", "events"}, []string{"--api", "http://h", "events"}},
		{[]string{"--api", "http://h"}, []string{"list", "--api", "http://h"}},
		{[]string{"--help"}, []string{"--help"}},
		{[]string{"nonsense"}, []string{"nonsense"}},
		{[]string{"--by", "organizer"}, []string{"list", "--by", "organizer"}},
	} {
		if got := withDefault(tc.args, "list", "list", "events"); !slices.Equal(got, tc.want) {
			t.Errorf("withDefault(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}
