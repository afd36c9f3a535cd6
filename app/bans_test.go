package app_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/internal/agentua"
	"github.com/hotline12345/hotline/internal/hotlinetest"
)

// registerFrom registers user with password from a phone at ip and
// returns the registrar's status: 200, or the refusal's.
func registerFrom(t *testing.T, h *hotlinetest.Hotline, ip, user, password string) int {
	t.Helper()
	f, err := agentua.Start(t.Context(), agentua.Options{
		Registrar: h.SIP, Agents: []agentua.Agent{{User: user, Password: password}}, IP: netip.MustParseAddr(ip),
		Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
	})
	if err == nil {
		if err := f.Stop(context.Background()); err != nil {
			t.Error(err)
		}
		return 200
	}
	var re *agentua.RegisterError
	if !errors.As(err, &re) || re.Status == 0 {
		t.Fatalf("register %s from %s: %v", user, ip, err)
	}
	return re.Status
}

// The registrar throttles as bans.* say, sparing bans.allow, and the
// bans show on /metrics.
func TestBansFromTheConfig(t *testing.T) {
	t.Parallel()
	h := hotlinetest.Start(t, func(c *config.Config) {
		c.Agents = []config.Agent{{ID: "a1", SIPUser: "agent1", Password: "agent1-pass", Categories: allCategories}}
		c.Bans.MaxFailures = 2
		c.Bans.Allow = []string{"127.0.0.8"}
	})
	for range 3 {
		if got := registerFrom(t, h, "127.0.0.8", "agent1", "guess"); got != 403 {
			t.Fatalf("a wrong password from an allowed address: %d, want 403", got)
		}
	}
	if got := registerFrom(t, h, "127.0.0.8", "agent1", "agent1-pass"); got != 200 {
		t.Fatalf("the right password from an allowed address after 3 failures: %d, want 200", got)
	}
	for range 2 {
		if got := registerFrom(t, h, "127.0.0.9", "agent1", "guess"); got != 403 {
			t.Fatalf("a wrong password: %d, want 403", got)
		}
	}
	if got := registerFrom(t, h, "127.0.0.9", "agent1", "agent1-pass"); got != 403 {
		t.Fatalf("the right password from a banned address: %d, want 403", got)
	}

	res, err := http.Get("http://" + h.HTTP.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`hotline_auth_failures_total{service="sip"} 5`,
		`hotline_bans_total{kind="source",service="sip"} 1`,
		`hotline_bans_active{kind="source"} 1`,
		`hotline_bans_active{kind="user"} 0`,
	} {
		if !strings.Contains(string(body), want+"\n") {
			t.Errorf("/metrics has no %s", want)
		}
	}
}
