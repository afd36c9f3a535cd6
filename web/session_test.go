package web_test

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/audit"
	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/web"
)

// login logs name in for the console and returns the session cookie.
func (r *rig) login(name, password string) *http.Cookie {
	r.t.Helper()
	code, hdr, got := r.send(request{method: "POST", path: "/api/v1/session", body: `{"user":"` + name + `","password":"` + password + `"}`})
	if code != http.StatusCreated {
		r.t.Fatalf("log in %s: %d %s", name, code, got)
	}
	for _, c := range (&http.Response{Header: hdr}).Cookies() {
		if c.Name == web.SessionCookie {
			return c
		}
	}
	r.t.Fatalf("log in %s: no session cookie in %v", name, hdr)
	return nil
}

func cookieHeader(c *http.Cookie, more ...string) http.Header {
	h := http.Header{"Cookie": {c.Name + "=" + c.Value}}
	for i := 0; i+1 < len(more); i += 2 {
		h.Set(more[i], more[i+1])
	}
	return h
}

// TestConsoleSession checks a console session end to end: the cookie's
// attributes, the API served on it with the account's roles, requests
// from another origin refused, the idle timeout that the page's own
// refreshes do not hold off, and logout ending it.
func TestConsoleSession(t *testing.T) {
	r := startRig(t, nil)
	r.addAgent("a1", appeal.General)
	const pw = "agent one password"
	r.secret("wang", pw)
	if _, err := r.accounts.AddUser(r.ctx, auth.UserSpec{Name: "wang", Roles: []auth.Role{auth.Agent}, AgentID: "a1", Password: pw, By: "test"}); err != nil {
		t.Fatal(err)
	}
	c := r.login("wang", pw)
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Secure || c.MaxAge != int((12*time.Hour).Seconds()) {
		t.Errorf("cookie %+v; want HttpOnly, SameSite=Strict, Path=/, not Secure over plain HTTP, 12 h", c)
	}
	var me web.Me
	code, _, got := r.send(request{method: "GET", path: "/api/v1/me", header: cookieHeader(c)})
	if code != http.StatusOK || json.Unmarshal(got, &me) != nil || me.User != "wang" || me.AgentID != "a1" {
		t.Fatalf("me on the cookie: %d %s", code, got)
	}
	// The same role checks as a token's.
	if code, _, got := r.send(request{method: "GET", path: "/api/v1/agents", header: cookieHeader(c)}); code != http.StatusForbidden {
		t.Errorf("an agent's session listing agents: %d %s", code, got)
	}
	// A state change from the console's own origin goes through; one
	// from another site's page is refused, cookie or not.
	if code, _, got := r.send(request{method: "POST", path: "/api/v1/agents/a1/pause", body: `{"reason":"lunch"}`,
		header: cookieHeader(c, "Sec-Fetch-Site", "same-origin")}); code != http.StatusOK {
		t.Fatalf("pause from the console: %d %s", code, got)
	}
	if code, _, _ := r.send(request{method: "POST", path: "/api/v1/agents/a1/resume", body: `{}`, unrouted: true,
		header: cookieHeader(c, "Sec-Fetch-Site", "cross-site", "Origin", "https://elsewhere.example")}); code != http.StatusForbidden {
		t.Errorf("resume from another site: %d; want 403", code)
	}
	if d := r.agent("a1"); d.State != "paused" {
		t.Errorf("after a refused cross-site resume the agent is %s", d.State)
	}

	// The page refreshing itself does not count as use: 59 minutes of
	// it, and the session ends at the hour.
	bg := cookieHeader(c, web.BackgroundHeader, "1")
	r.clock.Add(59 * time.Minute)
	if code, _, got := r.send(request{method: "GET", path: "/api/v1/me", header: bg}); code != http.StatusOK {
		t.Fatalf("a refresh within the idle timeout: %d %s", code, got)
	}
	r.clock.Add(time.Minute)
	code, hdr, got := r.send(request{method: "GET", path: "/api/v1/me", header: bg})
	if code != http.StatusUnauthorized || !strings.Contains(string(got), "session has ended") {
		t.Fatalf("an hour without use: %d %s; want 401 saying the session ended", code, got)
	}
	if cs := (&http.Response{Header: hdr}).Cookies(); len(cs) != 1 || cs[0].Name != web.SessionCookie || cs[0].MaxAge >= 0 {
		t.Errorf("an ended session's cookie is not cleared: %v", cs)
	}

	// Used, a session lives on; logged out, it ends.
	c = r.login("wang", pw)
	for range 3 {
		r.clock.Add(50 * time.Minute)
		if code, _, got := r.send(request{method: "GET", path: "/api/v1/me", header: cookieHeader(c)}); code != http.StatusOK {
			t.Fatalf("a session in use: %d %s", code, got)
		}
	}
	code, hdr, got = r.send(request{method: "POST", path: "/api/v1/logout", header: cookieHeader(c, "Sec-Fetch-Site", "same-origin")})
	if code != http.StatusNoContent {
		t.Fatalf("logout: %d %s", code, got)
	}
	if cs := (&http.Response{Header: hdr}).Cookies(); len(cs) != 1 || cs[0].MaxAge >= 0 {
		t.Errorf("logout did not clear the cookie: %v", cs)
	}
	if code, _, _ := r.send(request{method: "GET", path: "/api/v1/me", header: cookieHeader(c)}); code != http.StatusUnauthorized {
		t.Errorf("after logout: %d", code)
	}
	// A wrong password: 401, and nothing set; five of them ban the
	// source, as the API's logins and the phones' registrations do, and
	// then even the right password is refused.
	for i := range 5 {
		code, hdr, _ = r.send(request{method: "POST", path: "/api/v1/session", body: `{"user":"wang","password":"not it at all"}`, from: "198.51.100.23"})
		if code != http.StatusUnauthorized || hdr.Get("Set-Cookie") != "" {
			t.Fatalf("wrong password %d: %d %q", i+1, code, hdr.Get("Set-Cookie"))
		}
	}
	code, hdr, got = r.send(request{method: "POST", path: "/api/v1/session", body: `{"user":"wang","password":"` + pw + `"}`, from: "198.51.100.23"})
	if code != http.StatusTooManyRequests || hdr.Get("Set-Cookie") != "" || hdr.Get("Retry-After") == "" {
		t.Errorf("the right password from a banned source: %d %s", code, got)
	}
}

// stream is a live stream read line by line.
type stream struct {
	t     *testing.T
	lines chan string
}

func (r *rig) openLive(c *http.Cookie) *stream {
	r.t.Helper()
	ctx, cancel := context.WithCancel(r.ctx)
	req, _ := http.NewRequestWithContext(ctx, "GET", r.srv.URL+"/api/v1/live", nil)
	req.AddCookie(c)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		r.t.Fatalf("live: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &stream{t: r.t, lines: make(chan string, 256)}
	go func() {
		defer close(s.lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
	}()
	r.t.Cleanup(func() {
		cancel()
		resp.Body.Close()
	})
	return s
}

// event waits for the next event named name whose data holds want; it
// fails when the stream ends first.
func (s *stream) event(name, want string) string {
	s.t.Helper()
	deadline := time.After(10 * time.Second)
	last := ""
	for {
		select {
		case line, ok := <-s.lines:
			if !ok {
				s.t.Fatalf("the stream ended before a %s event with %s", name, want)
			}
			if strings.HasPrefix(line, "event: ") {
				last = strings.TrimPrefix(line, "event: ")
			}
			if data, ok := strings.CutPrefix(line, "data: "); ok && last == name && strings.Contains(data, want) {
				return data
			}
		case <-deadline:
			s.t.Fatalf("no %s event with %s within 10 s", name, want)
		}
	}
}

// events waits for events named name holding each of wants, in any
// order.
func (s *stream) events(name string, wants ...string) {
	s.t.Helper()
	deadline := time.After(10 * time.Second)
	left := map[string]bool{}
	for _, w := range wants {
		left[w] = true
	}
	last := ""
	for len(left) > 0 {
		select {
		case line, ok := <-s.lines:
			if !ok {
				s.t.Fatalf("the stream ended before %s events with %v", name, left)
			}
			if strings.HasPrefix(line, "event: ") {
				last = strings.TrimPrefix(line, "event: ")
			}
			if data, ok := strings.CutPrefix(line, "data: "); ok && last == name {
				for w := range left {
					if strings.Contains(data, w) {
						delete(left, w)
					}
				}
			}
		case <-deadline:
			s.t.Fatalf("no %s events with %v within 10 s", name, left)
		}
	}
}

// ended waits for the stream's end.
func (s *stream) ended() {
	s.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-s.lines:
			if !ok {
				return
			}
		case <-deadline:
			s.t.Fatal("the stream did not end")
		}
	}
}

// TestLiveAndAudit checks that a change made through one session reaches
// another's live stream, that the change is in the audit log with who,
// role, source and what, and that logging out ends the session's streams
// in every tab.
func TestLiveAndAudit(t *testing.T) {
	r := startRig(t, nil)
	r.addAgent("a1", appeal.General)
	for _, u := range []struct {
		name  string
		roles []auth.Role
		agent string
	}{{"wang", []auth.Role{auth.Agent}, "a1"}, {"zhao", []auth.Role{auth.Supervisor}, ""}, {"root", []auth.Role{auth.Admin}, ""}} {
		pw := u.name + " has a long password"
		r.secret(u.name, pw)
		if _, err := r.accounts.AddUser(r.ctx, auth.UserSpec{Name: u.name, Roles: u.roles, AgentID: u.agent, Password: pw, By: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	agent := r.login("wang", "wang has a long password")
	sup := r.login("zhao", "zhao has a long password")
	wallboard := r.openLive(sup)
	tab1, tab2 := r.openLive(agent), r.openLive(agent)

	r.send(request{method: "POST", path: "/api/v1/agents/a1/pause", body: `{"reason":"training"}`, from: "203.0.113.9",
		header: cookieHeader(agent, "Sec-Fetch-Site", "same-origin")})
	wallboard.events("change", `"topic":"agents"`, `"topic":"audit"`)

	// A failed login is audited too, with the name tried.
	r.send(request{method: "POST", path: "/api/v1/session", body: `{"user":"zhao","password":"a wrong guess here"}`, from: "198.51.100.4"})

	admin := r.login("root", "root has a long password")
	var page web.Page[audit.Entry]
	code, _, got := r.send(request{method: "GET", path: "/api/v1/audit", header: cookieHeader(admin)})
	if code != http.StatusOK || json.Unmarshal(got, &page) != nil {
		t.Fatalf("audit: %d %s", code, got)
	}
	byAction := map[string]audit.Entry{}
	for _, e := range page.Items {
		if _, seen := byAction[e.Action]; !seen {
			byAction[e.Action] = e
		}
	}
	if e := byAction["agents.pause"]; e.User != "wang" || e.Source != "203.0.113.9" || e.Subject != "a1" || e.Detail["reason"] != "training" ||
		e.Status != http.StatusOK || len(e.Roles) != 1 || e.Roles[0] != "agent" || e.Path != "/api/v1/agents/a1/pause" {
		t.Errorf("the pause's audit entry: %+v", e)
	}
	if e := byAction["login.failed"]; e.User != "zhao" || e.Source != "198.51.100.4" || e.Status != http.StatusUnauthorized {
		t.Errorf("the failed login's audit entry: %+v", e)
	}
	if e := byAction["login"]; e.User != "root" || e.Status != http.StatusCreated {
		t.Errorf("the latest login's audit entry: %+v", e)
	}
	// An account's entries alone.
	var wang web.Page[audit.Entry]
	code, _, got = r.send(request{method: "GET", path: "/api/v1/audit?user=wang&action=agents", header: cookieHeader(admin)})
	if code != http.StatusOK || json.Unmarshal(got, &wang) != nil || len(wang.Items) != 1 || wang.Items[0].Action != "agents.pause" {
		t.Errorf("wang's agents actions: %d %s", code, got)
	}
	// Only admins read it.
	if code, _, _ := r.send(request{method: "GET", path: "/api/v1/audit", header: cookieHeader(sup)}); code != http.StatusForbidden {
		t.Errorf("a supervisor reading the audit log: %d", code)
	}
	// The export: every entry of the days asked, oldest first.
	code, _, got = r.send(request{method: "GET", path: "/api/v1/audit?format=csv", header: cookieHeader(admin)})
	rows, err := csv.NewReader(strings.NewReader(string(got))).ReadAll()
	if code != http.StatusOK || err != nil || len(rows) != 7 || rows[0][5] != "action" || rows[1][5] != "agents.create" || rows[6][5] != "login" {
		t.Fatalf("audit export: %d %v %q; want the six entries, oldest first", code, err, got)
	}
	if row := rows[4]; row[2] != "wang" || row[5] != "agents.pause" || row[4] != "203.0.113.9" || row[10] != `{"reason":"training"}` {
		t.Errorf("the pause exported as %q", row)
	}
	// The same search as the pages'.
	code, _, got = r.send(request{method: "GET", path: "/api/v1/audit?format=csv&user=WANG&action=agents", header: cookieHeader(admin)})
	rows, err = csv.NewReader(strings.NewReader(string(got))).ReadAll()
	if code != http.StatusOK || err != nil || len(rows) != 2 || rows[1][2] != "wang" || rows[1][5] != "agents.pause" {
		t.Errorf("wang's agents actions exported: %d %v %q", code, err, got)
	}
	if code, _, _ := r.send(request{method: "GET", path: "/api/v1/audit?format=csv&from=2026-12-09&to=2026-12-01", header: cookieHeader(admin)}); code != http.StatusBadRequest {
		t.Errorf("an export with to before from: %d", code)
	}

	// Logging out in one tab ends the session's streams in every tab;
	// another session's stream goes on.
	r.send(request{method: "POST", path: "/api/v1/logout", header: cookieHeader(agent, "Sec-Fetch-Site", "same-origin")})
	tab1.event("session", `"ended":true`)
	tab1.ended()
	tab2.event("session", `"ended":true`)
	tab2.ended()
	wallboard.event("change", `"topic":"audit"`)
}
