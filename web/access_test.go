package web_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/calllog"
	"github.com/hotline12345/hotline/web"
)

// TestRouteTable: every route names who may call it, once.
func TestRouteTable(t *testing.T) {
	seen := map[string]bool{}
	for _, rt := range web.Routes() {
		key := rt.Method + " " + rt.Path
		if seen[key] {
			t.Errorf("%s is declared twice", key)
		}
		seen[key] = true
		switch {
		case !strings.HasPrefix(rt.Path, "/api/v1/"):
			t.Errorf("%s: not under /api/v1/", key)
		case rt.Public && len(rt.Roles) > 0:
			t.Errorf("%s: public, and yet names roles", key)
		case !rt.Public && len(rt.Roles) == 0:
			t.Errorf("%s: names no roles", key)
		case strings.TrimSpace(rt.Summary) == "":
			t.Errorf("%s: no summary", key)
		case rt.Own && !slices.Contains(rt.PathParams(), "id"):
			t.Errorf("%s: own-agent route without an {id}", key)
		}
		for _, r := range rt.Roles {
			if _, err := auth.ParseRole(string(r)); err != nil {
				t.Errorf("%s: %v", key, err)
			}
		}
	}
}

// pathFor fills a route's parameters: the agent's own id for Own routes.
func pathFor(rt web.Route, agentID string) string {
	p := rt.Path
	for _, name := range rt.PathParams() {
		v := "nobody"
		if name == "id" && rt.Own {
			v = agentID
		}
		if name == "subject" {
			v = "203.0.113.77"
		}
		p = strings.NewReplacer("{"+name+"}", v, "{"+name+"...}", v).Replace(p)
	}
	return p
}

// TestEveryRouteEveryRole: each route, called with a token of each role
// alone, answers 403 exactly when the route's table does not name the
// role; without a token every route but the public ones answers 401.
// Agents and visitors reach their own agent only.
func TestEveryRouteEveryRole(t *testing.T) {
	r := startRig(t, nil)
	own := map[auth.Role]string{}
	for _, role := range auth.Roles {
		name := "user-" + string(role)
		spec := auth.UserSpec{Name: name, Roles: []auth.Role{role}, By: "test"}
		if role == auth.Agent || role == auth.Visitor {
			spec.AgentID = "ag-" + string(role)
			own[role] = spec.AgentID
		}
		if role == auth.Organizer {
			spec.OrganizerID = "org-test"
		}
		if _, err := r.accounts.AddUser(r.ctx, spec); err != nil {
			t.Fatal(err)
		}
	}
	for i, rt := range web.Routes() {
		body := ""
		if rt.Body != nil {
			body = "{}"
		}
		t.Run(rt.Method+" "+rt.Path, func(t *testing.T) {
			r := *r
			r.t = t
			code, hdr, got := r.send(request{method: rt.Method, path: pathFor(rt, "ag-agent"), body: body})
			switch {
			case rt.Public && (code == http.StatusUnauthorized && rt.Path != "/api/v1/login" && rt.Path != "/api/v1/session" || code == http.StatusForbidden):
				t.Errorf("public, without a token: %d %s", code, got)
			case !rt.Public && code != http.StatusUnauthorized:
				t.Errorf("without a token: %d %s, want 401", code, got)
			case !rt.Public && !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer"):
				t.Errorf("401 without a Bearer challenge: %q", hdr.Get("WWW-Authenticate"))
			}
			if rt.Public {
				return
			}
			for j, role := range auth.Roles {
				// A source of its own, so that the failed passwords of
				// PUT /api/v1/me/password ban no other request.
				from := fmt.Sprintf("10.%d.%d.1", i, j)
				tok := r.mint(auth.TokenSpec{User: "user-" + string(role), Roles: []auth.Role{role}, TTL: time.Hour})
				allowed := slices.Contains(rt.Roles, role)
				agentID := own[role]
				if agentID == "" {
					agentID = "ag-agent"
				}
				code, _, got := r.send(request{method: rt.Method, path: pathFor(rt, agentID), body: body, token: tok, from: from})
				if allowed && (code == http.StatusForbidden || code == http.StatusUnauthorized) {
					t.Errorf("%s: %d %s, want it let through", role, code, got)
				}
				if !allowed && code != http.StatusForbidden {
					t.Errorf("%s: %d %s, want 403", role, code, got)
				}
				if !allowed {
					var e web.Error
					if json.Unmarshal(got, &e) != nil || !strings.Contains(e.Error, "needs the role") {
						t.Errorf("%s: 403 that does not say which role: %s", role, got)
					}
				}
				if allowed && rt.Own && own[role] != "" {
					// Another agent's: refused.
					other := r.mint(auth.TokenSpec{User: "user-" + string(role), Roles: []auth.Role{role}, TTL: time.Hour})
					if code, _, got := r.send(request{method: rt.Method, path: pathFor(rt, "someone-else"), body: body, token: other, from: from}); code != http.StatusForbidden {
						t.Errorf("%s for another agent: %d %s, want 403", role, code, got)
					}
				}
			}
		})
	}
}

// TestTokensThatNoLongerWork: expired, revoked, of a disabled account, of
// an account that lost the role: 401, or 403 for the lost role.
func TestTokensThatNoLongerWork(t *testing.T) {
	r := startRig(t, nil)
	if _, err := r.accounts.AddUser(r.ctx, auth.UserSpec{Name: "li", Roles: []auth.Role{auth.Supervisor, auth.Ops}, By: "test"}); err != nil {
		t.Fatal(err)
	}
	short := r.mint(auth.TokenSpec{User: "li", Roles: []auth.Role{auth.Supervisor}, TTL: time.Minute})
	revoked := r.mint(auth.TokenSpec{User: "li", Roles: []auth.Role{auth.Supervisor}, TTL: time.Hour})
	both := r.mint(auth.TokenSpec{User: "li", Roles: []auth.Role{auth.Supervisor, auth.Ops}, TTL: time.Hour})
	for _, tok := range []string{short, revoked, both} {
		r.doAs(tok, "GET", "/api/v1/stats", "", http.StatusOK, nil)
	}
	var me web.Me
	r.doAs(revoked, "GET", "/api/v1/me", "", http.StatusOK, &me)
	r.doAs(revoked, "POST", "/api/v1/logout", "", http.StatusNoContent, nil)
	r.clock.Add(2 * time.Minute)
	r.doAs(short, "GET", "/api/v1/stats", "", http.StatusUnauthorized, nil)
	r.doAs(revoked, "GET", "/api/v1/stats", "", http.StatusUnauthorized, nil)
	var tok auth.Token
	r.do("GET", "/api/v1/tokens/"+me.TokenID, "", http.StatusOK, &tok)
	if tok.RevokedAt == nil || tok.RevokedBy != "li" {
		t.Errorf("logged-out token %+v, want revoked by li", tok)
	}

	// Ops taken from the account: its token keeps supervisor only.
	r.do("PATCH", "/api/v1/users/li", `{"roles":["supervisor"]}`, http.StatusOK, nil)
	r.doAs(both, "GET", "/api/v1/stats", "", http.StatusOK, nil)
	r.doAs(both, "GET", "/api/v1/bans", "", http.StatusForbidden, nil)
	// Disabled: nothing.
	r.do("PATCH", "/api/v1/users/li", `{"disabled":true}`, http.StatusOK, nil)
	r.doAs(both, "GET", "/api/v1/stats", "", http.StatusUnauthorized, nil)
	r.do("PATCH", "/api/v1/users/li", `{"disabled":false}`, http.StatusOK, nil)
	r.doAs(both, "GET", "/api/v1/stats", "", http.StatusOK, nil)

	for _, bad := range []string{"hlt_x", "Basic abc", "hlt_0123456789abcdef_" + strings.Repeat("A", 43)} {
		code, _, got := r.send(request{method: "GET", path: "/api/v1/me", header: http.Header{"Authorization": {"Bearer " + bad}}})
		if code != http.StatusUnauthorized {
			t.Errorf("token %q: %d %s", bad, code, got)
		}
	}
}

// TestCrossOriginRefused: a web page on another site, in a browser of
// this host, posting text/plain (no preflight) creates nothing, even
// when the browser were to hold a token.
func TestCrossOriginRefused(t *testing.T) {
	r := startRig(t, nil)
	body := `{"id":"evil","name":"x","sip_user":"evil","password":"chosen-by-the-page","categories":["general"]}`
	for _, h := range []http.Header{
		{"Origin": {"http://evil.example"}, "Content-Type": {"text/plain"}, "Sec-Fetch-Site": {"cross-site"}},
		{"Origin": {"http://evil.example"}, "Content-Type": {"text/plain"}},
		{"Sec-Fetch-Site": {"cross-site"}, "Content-Type": {"text/plain"}},
	} {
		for _, tok := range []string{"", r.token} {
			code, _, got := r.send(request{method: "POST", path: "/api/v1/agents", body: body, token: tok, header: h})
			if code != http.StatusForbidden {
				t.Errorf("cross-origin POST %v: %d %s, want 403", h, code, got)
			}
		}
	}
	if _, err := r.agents.Agent(r.ctx, "evil"); err == nil {
		t.Fatal("the cross-origin POST created an agent")
	}
	// The same request from the hotline's own origin, or from a client
	// that is not a browser, is served.
	code, _, got := r.send(request{method: "POST", path: "/api/v1/agents", body: body, token: r.token,
		header: http.Header{"Origin": {r.srv.URL}, "Sec-Fetch-Site": {"same-origin"}}})
	if code != http.StatusCreated {
		t.Errorf("same-origin POST: %d %s", code, got)
	}
}

// TestLoginThrottled: five wrong passwords from one source within a
// minute ban it, the right password included; five from many sources
// against one account ban logins to that account; the ban ends after ten
// minutes, or when lifted.
func TestLoginThrottled(t *testing.T) {
	r := startRig(t, nil)
	if _, err := r.accounts.AddUser(r.ctx, auth.UserSpec{Name: "zhang", Roles: []auth.Role{auth.Supervisor}, Password: "correct horse 12", By: "test"}); err != nil {
		t.Fatal(err)
	}
	login := func(from, pw string) (int, string) {
		code, _, got := r.send(request{method: "POST", path: "/api/v1/login", from: from,
			body: fmt.Sprintf(`{"user":"zhang","password":%q}`, pw)})
		return code, string(got)
	}
	var tok web.TokenReply
	code, got := login("198.51.100.1", "correct horse 12")
	if code != http.StatusCreated || json.Unmarshal([]byte(got), &tok) != nil || tok.User != "zhang" || !slices.Equal(tok.Roles, []auth.Role{auth.Supervisor}) {
		t.Fatalf("login: %d %s", code, got)
	}
	r.doAs(tok.Secret, "GET", "/api/v1/stats", "", http.StatusOK, nil)

	for i := range 5 {
		if code, got := login("203.0.113.9", fmt.Sprintf("wrong %d", i)); code != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %d %s", i, code, got)
		}
	}
	code, hdr, body := r.send(request{method: "POST", path: "/api/v1/login", from: "203.0.113.9", body: `{"user":"zhang","password":"correct horse 12"}`})
	if code != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" {
		t.Fatalf("after 5 failures, the right password: %d %s, want 429 with Retry-After", code, body)
	}
	// A source that is banned is refused on every route, token or not.
	if code, _, _ := r.send(request{method: "GET", path: "/api/v1/me", from: "203.0.113.9", token: r.token}); code != http.StatusTooManyRequests {
		t.Errorf("banned source with a good token: %d, want 429", code)
	}
	if !strings.Contains(r.log.String(), `"source_ip":"203.0.113.9","user":"zhang"`) || !strings.Contains(r.log.String(), `"message":"http auth failed"`) {
		t.Errorf("no fail2ban line for the failures: %s", r.log.String())
	}
	// The five failures were all for one account too: both are banned.
	var bans web.Page[struct{ Subject string }]
	r.do("GET", "/api/v1/bans", "", http.StatusOK, &bans)
	var subjects []string
	for _, b := range bans.Items {
		subjects = append(subjects, b.Subject)
	}
	if slices.Sort(subjects); !slices.Equal(subjects, []string{"203.0.113.9", "user:http:zhang"}) {
		t.Errorf("bans %v", subjects)
	}
	for _, s := range subjects {
		r.do("DELETE", "/api/v1/bans/"+s, "", http.StatusOK, nil)
		r.fails("DELETE", "/api/v1/bans/"+s, "", http.StatusNotFound)
	}
	r.clock.Add(3 * time.Second) // past what a node remembers of a ban
	if code, got := login("203.0.113.9", "correct horse 12"); code != http.StatusCreated {
		t.Errorf("after the lift: %d %s", code, got)
	}

	// One account from many sources.
	for i := range 5 {
		login(fmt.Sprintf("198.51.100.%d", 10+i), "guess")
	}
	if code, got := login("198.51.100.99", "correct horse 12"); code != http.StatusTooManyRequests {
		t.Errorf("account guessed from 5 sources, then the right password from a sixth: %d %s, want 429", code, got)
	}
	r.clock.Add(11 * time.Minute)
	if code, got := login("198.51.100.99", "correct horse 12"); code != http.StatusCreated {
		t.Errorf("after the ban ended: %d %s", code, got)
	}

	// Unknown tokens count as failures too.
	for range 5 {
		r.send(request{method: "GET", path: "/api/v1/me", from: "203.0.113.50", token: "hlt_0123456789abcdef_" + strings.Repeat("x", 43)})
	}
	if code, _, _ := r.send(request{method: "GET", path: "/api/v1/me", from: "203.0.113.50", token: r.token}); code != http.StatusTooManyRequests {
		t.Errorf("after 5 unknown tokens, a good one: %d, want 429", code)
	}
}

// TestNumbersMasked: ops and admins see callers' numbers masked;
// return-visit agents (hotline dials for them) see them masked too;
// supervisors and agents see them whole.
func TestNumbersMasked(t *testing.T) {
	r := startRig(t, nil)
	at := time.Date(2026, 11, 27, 9, 0, 0, 0, beijing)
	if err := r.calls.Save(r.ctx, calllog.Record{ID: "c1", Caller: "13800138000", StartedAt: at, Events: []calllog.Event{}}); err != nil {
		t.Fatal(err)
	}
	ap, err := r.appeals.Create(r.ctx, appeal.New{CallID: "c1", Caller: "13800138000", Category: appeal.General, At: at})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		role auth.Role
		path string
		want string
	}{
		{auth.Supervisor, "/api/v1/calls/c1", "13800138000"},
		{auth.Ops, "/api/v1/calls/c1", "138****8000"},
		{auth.Admin, "/api/v1/calls/c1", "138****8000"},
		{auth.Ops, "/api/v1/calls", "138****8000"},
		{auth.Agent, "/api/v1/appeals/" + ap.ID, "13800138000"},
		{auth.Visitor, "/api/v1/appeals/" + ap.ID, "138****8000"},
	} {
		tok := r.mint(auth.TokenSpec{Roles: []auth.Role{c.role}, TTL: time.Hour})
		got := r.doAs(tok, "GET", c.path, "", http.StatusOK, nil)
		if !strings.Contains(got, `"caller": "`+c.want+`"`) {
			t.Errorf("%s %s: want caller %s: %s", c.role, c.path, c.want, got)
		}
		if c.want != "13800138000" && strings.Contains(got, "13800138000") {
			t.Errorf("%s %s: the whole number shows: %s", c.role, c.path, got)
		}
	}
}

func TestMaskNumber(t *testing.T) {
	for in, want := range map[string]string{
		"13800138000":              "138****8000",
		"+8613800138000":           "+86138****8000",
		"sip:13800138000@1.2.3.4":  "sip:138****8000",
		"01012345":                 "******45",
		"":                         "",
		"anonymous":                "****",
		"sip:anonymous@invalid.io": "****",
	} {
		if got := web.MaskNumber(in); got != want {
			t.Errorf("MaskNumber(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestErrorsAreJSON: unknown routes and methods answer JSON with the
// path, as every other error does (/ leads to the console).
func TestErrorsAreJSON(t *testing.T) {
	r := startRig(t, nil)
	var e web.Error
	code, _, got := r.send(request{method: "GET", path: "/api/v1/nothing-here", token: r.token, unrouted: true})
	if code != http.StatusNotFound || json.Unmarshal(got, &e) != nil || e.Path != "/api/v1/nothing-here" || e.Error == "" {
		t.Errorf("unknown route: %d %s", code, got)
	}
	if code, _, got := r.send(request{method: "GET", path: "/nothing-here", unrouted: true}); code != http.StatusNotFound || !json.Valid(got) {
		t.Errorf("GET /nothing-here: %d %s", code, got)
	}
	code, hdr, got := r.send(request{method: "PATCH", path: "/api/v1/calls", token: r.token, unrouted: true})
	if code != http.StatusMethodNotAllowed || hdr.Get("Allow") != "GET" || !json.Valid(got) {
		t.Errorf("PATCH /api/v1/calls: %d %q %s", code, hdr.Get("Allow"), got)
	}
}

// TestMetricsToken: with http.metrics_token set, /metrics and /healthz
// want it; the API's tokens do not open them.
func TestMetricsToken(t *testing.T) {
	r := startRig(t, func(o *web.Options, _ *acd.Distributor) { o.MetricsToken = "scrape-me-please-1234" })
	for _, p := range []string{"/metrics", "/healthz"} {
		if code, _, _ := r.send(request{method: "GET", path: p}); code != http.StatusUnauthorized {
			t.Errorf("%s without the token: %d", p, code)
		}
		if code, _, _ := r.send(request{method: "GET", path: p, token: r.token}); code != http.StatusUnauthorized {
			t.Errorf("%s with an API token: %d", p, code)
		}
		if code, _, body := r.send(request{method: "GET", path: p, token: "scrape-me-please-1234"}); code != http.StatusOK {
			t.Errorf("%s with the token: %d %s", p, code, body)
		}
	}
}

var rfc3339 = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$`)

// checkTimes fails for any time in a JSON answer not given in Beijing
// time, with its offset.
func checkTimes(t testing.TB, what string, body []byte) {
	t.Helper()
	var v any
	if json.Unmarshal(body, &v) != nil {
		return
	}
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		case string:
			if rfc3339.MatchString(x) && !strings.HasSuffix(x, "+08:00") && !strings.HasPrefix(x, "0001-01-01") {
				t.Errorf("%s: time %s not in the hotline's zone", what, x)
			}
		}
	}
	walk(v)
}

// TestUnknownIDsAre404: whatever a path names that is not there, however
// it is spelled, is 404, not 400.
func TestUnknownIDsAre404(t *testing.T) {
	r := startRig(t, nil)
	for _, id := range []string{"nobody", "a%202", "%E7%8E%8B", "0000000000", strings.Repeat("x", 300)} {
		for _, q := range []struct{ method, path, body string }{
			{"GET", "/api/v1/calls/" + id, ""},
			{"GET", "/api/v1/appeals/" + id, ""},
			{"GET", "/api/v1/agents/" + id, ""},
			{"PUT", "/api/v1/agents/" + id, `{"sip_user":"ux","categories":["general"]}`},
			{"PATCH", "/api/v1/agents/" + id, `{"name":"x"}`},
			{"DELETE", "/api/v1/agents/" + id, ""},
			{"POST", "/api/v1/agents/" + id + "/pause", `{"reason":"lunch"}`},
			{"POST", "/api/v1/agents/" + id + "/resume", ""},
			{"POST", "/api/v1/complaints/" + id + "/review", `{"status":"upheld"}`},
			{"GET", "/api/v1/users/" + id, ""},
			{"PATCH", "/api/v1/users/" + id, `{"disabled":true}`},
			{"PUT", "/api/v1/users/" + id + "/password", `{"password":"long-enough-pw"}`},
			{"GET", "/api/v1/tokens/" + id, ""},
			{"DELETE", "/api/v1/tokens/" + id, ""},
			{"DELETE", "/api/v1/bans/" + id, ""},
		} {
			r.fails(q.method, q.path, q.body, http.StatusNotFound)
		}
	}
}
