package main

import (
	"strings"
	"testing"
	"time"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/callback"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/internal/hotlinetest"
)

// TestVisitsCommands: an appeal whose processing time expired becomes a
// visit on the running hotline; a return-visit agent takes it with
// "hotline visits next", and records a busy line, which sends it back to
// the worklist and ends the lease.
func TestVisitsCommands(t *testing.T) {
	t.Parallel()
	h := hotlinetest.Start(t, func(c *config.Config) {
		d := &c.Callback.Days
		for _, day := range []*[]string{&d.Monday, &d.Tuesday, &d.Wednesday, &d.Thursday, &d.Friday, &d.Saturday, &d.Sunday} {
			*day = []string{"00:00-24:00"} // calls at any hour, for a test at any hour
		}
	})
	ctx := t.Context()
	a, err := h.Appeals.Create(ctx, appeal.New{CallID: "visits-cli", Caller: "13800000031", Category: appeal.Emergency,
		Consent: appeal.Consent{Given: true}, At: time.Now().Add(-4 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	visits := callback.NewStore(h.Client, callback.StoreOptions{})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := visits.Get(ctx, a.ID); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no visit")
		}
		time.Sleep(50 * time.Millisecond)
	}
	accounts := auth.NewStore(h.Client, auth.StoreOptions{})
	if _, err := accounts.AddUser(ctx, auth.UserSpec{Name: "qian", Roles: []auth.Role{auth.Visitor}, AgentID: "v7", By: "test"}); err != nil {
		t.Fatal(err)
	}
	tok, _, err := accounts.CreateToken(ctx, auth.TokenSpec{User: "qian", Roles: []auth.Role{auth.Visitor}, TTL: time.Hour, By: "test"})
	if err != nil {
		t.Fatal(err)
	}
	env := environ{"HOTLINE_TOKEN": tok}
	run := func(want int, args ...string) string {
		t.Helper()
		code, out, errs := env.hotline(append([]string{"visits", "--api", h.API()}, args...)...)
		if code != want {
			t.Fatalf("hotline visits %q: exit %d, want %d\n%s%s", args, code, want, out, errs)
		}
		return out + errs
	}
	if out := run(0, "next"); !strings.Contains(out, "visit "+a.ID+" (return visit)") || !strings.Contains(out, "emergency") {
		t.Errorf("next: %s", out)
	}
	if out := run(1, "next"); !strings.Contains(out, "no visit is due") {
		t.Errorf("next with none due: %s", out)
	}
	run(0, "renew", a.ID)
	run(2, "attempt", a.ID, "--outcome", "call_later", "--later", "soon")
	if out := run(0, "attempt", a.ID, "--outcome", "busy"); !strings.Contains(out, "waiting, due") {
		t.Errorf("busy: %s", out)
	}
	if out := run(1, "complete", a.ID, "--response", "yes", "--solution", "yes", "--satisfaction", "satisfied"); !strings.Contains(out, "not leased") {
		t.Errorf("an attempt after the lease ended: %s", out)
	}
	run(2, "complete", a.ID, "--response", "maybe", "--solution", "yes", "--satisfaction", "satisfied")

	// A visit of an appeal the water bureau led, completed by the agent:
	// the rates show 1/1 for the bureau, the CSV lists it, the audit
	// agrees — until a counter is changed behind its back.
	if err := h.Appeals.PutOrganizer(ctx, appeal.Organizer{ID: "water", Name: "Water bureau", Kind: appeal.Utility, District: "chaoyang"}); err != nil {
		t.Fatal(err)
	}
	b, err := h.Appeals.Create(ctx, appeal.New{CallID: "visits-cli-2", Caller: "13800000032", Category: appeal.Livelihood, Consent: appeal.Consent{Given: true}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.Appeals.Step(ctx, b.ID, appeal.Action{Step: appeal.Dispatch, By: "test", Assignment: appeal.Assignment{Lead: "water"}}); err != nil {
		t.Fatal(err)
	}
	allDay, _ := callback.ParseSpan("00:00-24:00")
	w := callback.Windows{Loc: appeal.DefaultLocation()}
	for i := range w.Days {
		w.Days[i] = []callback.Span{allDay}
	}
	early := callback.NewStore(h.Client, callback.StoreOptions{Windows: &w})
	if d, err := early.Expired(ctx, appeal.ClockEvent{Appeal: b.ID, Kind: appeal.Expired, Due: b.FeedbackDue}, h.Appeals); err != nil || d != callback.Visited {
		t.Fatalf("decided %q %v", d, err)
	}
	if out := run(0, "next"); !strings.Contains(out, "visit "+b.ID) || !strings.Contains(out, "organizers water") {
		t.Errorf("next: %s", out)
	}
	if out := run(0, "complete", b.ID, "--response", "yes", "--solution", "partly", "--satisfaction", "basically_satisfied"); !strings.Contains(out, "completed") {
		t.Errorf("complete: %s", out)
	}
	env["HOTLINE_TOKEN"] = h.Token(t, auth.Supervisor)
	rates := func(want int, args ...string) string {
		t.Helper()
		code, out, errs := env.hotline(append([]string{"rates", "--api", h.API()}, args...)...)
		if code != want {
			t.Fatalf("hotline rates %q: exit %d, want %d\n%s%s", args, code, want, out, errs)
		}
		return out + errs
	}
	if out := rates(0, "--by", "organizer"); !strings.Contains(out, "water") || !strings.Contains(out, "1/1 100.0%") || !strings.Contains(out, "0/1 0.0%") {
		t.Errorf("rates by organizer:\n%s", out)
	}
	if out := rates(0, "--by", "district", "--day", time.Now().In(appeal.DefaultLocation()).Format("2006-01-02")); !strings.Contains(out, "chaoyang") {
		t.Errorf("rates by district today:\n%s", out)
	}
	if out := rates(0, "--csv"); !strings.Contains(out, b.ID+","+b.ID) || !strings.Contains(out, "water,chaoyang,livelihood,yes,partly,basically_satisfied") {
		t.Errorf("rates --csv:\n%s", out)
	}
	if out := rates(0, "audit"); !strings.Contains(out, "agree with the 1 completed") {
		t.Errorf("audit:\n%s", out)
	}
	day := time.Now().In(appeal.DefaultLocation()).Format("2006-01-02")
	h.Client.HIncrBy(ctx, "hotline:{visits}:rates:"+day, "all|satisfaction:dissatisfied", 1)
	if out := rates(3, "audit"); !strings.Contains(out, "all") || !strings.Contains(out, "satisfaction:dissatisfied") {
		t.Errorf("audit after a change:\n%s", out)
	}
	if out := rates(1, "--by", "street"); !strings.Contains(out, `by "street"`) {
		t.Errorf("by street: %s", out)
	}
}
