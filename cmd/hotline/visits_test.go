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
	t.Setenv("HOTLINE_TOKEN", tok)
	run := func(want int, args ...string) string {
		t.Helper()
		code, out, errs := hotline(append([]string{"visits", "--api", h.API()}, args...)...)
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
	if out := run(1, "attempt", a.ID, "--outcome", "completed"); !strings.Contains(out, "not leased") {
		t.Errorf("an attempt after the lease ended: %s", out)
	}
}
