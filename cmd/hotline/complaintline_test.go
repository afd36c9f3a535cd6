package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/caller"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/evaluation"
	"github.com/hotline12345/hotline/internal/baresiptest"
	"github.com/hotline12345/hotline/internal/hotlinetest"
	"github.com/hotline12345/hotline/prompts"
)

// TestComplaintLineEndToEnd: a citizen's call reaches an agent's phone
// (baresip), the citizen presses the bad review key, a supervisor upholds
// it with the command line; the day is then 1 effective complaint in 1
// call served, over the line, with one event for it, which the webhook
// receiver got once, signed.
func TestComplaintLineEndToEnd(t *testing.T) {
	t.Parallel()
	const secret = "a-webhook-secret-of-some-length"
	var mu sync.Mutex
	got := map[string]int{}
	var events []evaluation.Event
	received := make(chan struct{}, 16)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := evaluation.VerifySignature(secret, r.Header, body, time.Now(), time.Minute); err != nil {
			t.Errorf("webhook: %v", err)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var ev evaluation.Event
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Errorf("webhook body %s: %v", body, err)
		}
		mu.Lock()
		got[ev.ID]++
		events = append(events, ev)
		mu.Unlock()
		received <- struct{}{}
	}))
	defer hook.Close()

	h := hotlinetest.Start(t, func(c *config.Config) {
		c.Agents = append(c.Agents, config.Agent{ID: "a1", SIPUser: "user-a1", Password: "password-a1", Categories: []string{"emergency", "livelihood", "general"}})
		c.ACD.WrapUp = 0
		c.Evaluation.WebhookURL, c.Evaluation.WebhookSecret = hook.URL, secret
	})
	env := environ{"HOTLINE_API": h.API()}
	phone := baresiptest.Start(t, baresiptest.Options{User: "user-a1", Password: "password-a1", Registrar: h.SIP.String(), Tone: 440, IP: "127.0.0.6"})
	store := acd.NewStore(h.Client, acd.StoreOptions{})
	waitState(t, store, "a1", acd.Available)

	const who = "13900000011"
	done := h.Call(t.Context(), t, who, caller.Script{
		{On: prompts.Greeting, BargeIn: true, Press: "3"},
		{On: prompts.ConsentMenu, BargeIn: true, Press: "1"},
		{On: prompts.Rating, Press: "2"},
	})
	waitState(t, store, "a1", acd.Talking)
	phone.Command("hangup", "")
	<-done
	rec := h.Records.Final(t, who)
	if rec.Rating != string(evaluation.BadReview) {
		t.Fatalf("the call's rating %q", rec.Rating)
	}

	accounts := auth.NewStore(h.Client, auth.StoreOptions{})
	if _, err := accounts.AddUser(t.Context(), auth.UserSpec{Name: "wang", Roles: []auth.Role{auth.Supervisor}, By: "test"}); err != nil {
		t.Fatal(err)
	}
	tok, _, err := accounts.CreateToken(t.Context(), auth.TokenSpec{User: "wang", Roles: []auth.Role{auth.Supervisor}, TTL: time.Hour, By: "test"})
	if err != nil {
		t.Fatal(err)
	}
	env["HOTLINE_TOKEN"] = tok
	code, out, errs := env.hotline("complaints", "pending")
	if code != 0 || !strings.Contains(out, rec.ID) {
		t.Fatalf("pending: exit %d, %q, %q", code, out, errs)
	}
	code, out, errs = env.hotline("complaints", "review", rec.ID, "--upheld", "--note", "interrupted the caller")
	if code != 0 || !strings.HasPrefix(out, "complaint "+rec.ID+" reviewed: upheld by wang") {
		t.Fatalf("review: exit %d, %q, %q", code, out, errs)
	}

	day := rec.AgentAnsweredAt.In(time.FixedZone("CST", 8*3600)).Format(time.DateOnly)
	code, out, errs = env.hotline("complaints", "line", "--day", day)
	if code != 0 || !strings.Contains(out, ": over") || !strings.Contains(out, "served 1  bad reviews 1  upheld 1  dismissed 0  pending 0") {
		t.Errorf("line: exit %d, %q, %q", code, out, errs)
	}
	// The review was measured against the line before the command
	// returned: the events are there.
	code, out, errs = env.hotline("complaints", "events")
	if code != 0 || len(regexp.MustCompile(`(?m)^\S+ \S+ +over +hotline +day `).FindAllString(out, -1)) != 1 ||
		strings.Count(out, "  over  ") != 4 || strings.Contains(out, "cleared") {
		t.Errorf("events: exit %d, %q, %q", code, out, errs)
	}

	// The webhook: the four windows that crossed (the hotline's day,
	// month and 30 days, the agent's 30 days), each once.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for range 4 {
		select {
		case <-received:
		case <-ctx.Done():
			t.Fatalf("the webhook got %d events", len(got))
		}
	}
	mu.Lock()
	defer mu.Unlock()
	kinds := map[string]bool{}
	for _, ev := range events {
		if ev.Kind != evaluation.EventOver || ev.Line.Upheld != 1 || ev.Line.Served != 1 {
			t.Errorf("webhook event %+v", ev)
		}
		scope := "hotline"
		if ev.Line.AgentID != "" {
			scope = ev.Line.AgentID
		}
		kinds[scope+" "+string(ev.Watch)] = true
	}
	for id, n := range got {
		if n != 1 {
			t.Errorf("event %s delivered %d times", id, n)
		}
	}
	if len(got) != 4 || !kinds["hotline day"] || !kinds["hotline month"] || !kinds["hotline 30d"] || !kinds["a1 30d"] {
		t.Errorf("webhook events %v", kinds)
	}
}

// waitState waits for an agent's state.
func waitState(t *testing.T, store *acd.Store, id string, want acd.State) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		a, err := store.Agent(t.Context(), id)
		if err == nil && a.State == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent %s: %s (%v), want %s", id, a.State, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
