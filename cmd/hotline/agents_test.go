package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/internal/hotlinetest"
	"github.com/hotline12345/hotline/web"
)

// apiRig is a whole hotline served in-process on a real redis-server,
// and an environment with HOTLINE_API naming it and HOTLINE_TOKEN set to
// a token with every role.
type apiRig struct {
	environ
	t      *testing.T
	ctx    context.Context
	h      *hotlinetest.Hotline
	api    string
	agents *acd.Store
}

func startAPI(t *testing.T) *apiRig {
	t.Helper()
	h := hotlinetest.Start(t, nil)
	env := environ{"HOTLINE_API": h.API(), "HOTLINE_TOKEN": h.Token(t, auth.Roles...)}
	return &apiRig{environ: env, t: t, ctx: t.Context(), h: h, api: h.API(), agents: acd.NewStore(h.Client, acd.StoreOptions{Realm: "hotline"})}
}

// environ is the environment a test runs the command line in, in place
// of the process's, so that tests in parallel each have their own.
type environ map[string]string

// lookup is os.LookupEnv in e.
func (e environ) lookup(name string) (string, bool) {
	v, ok := e[name]
	return v, ok
}

// hotline runs the command line in e and returns its exit code and output.
func (e environ) hotline(args ...string) (code int, stdout, stderr string) {
	return e.hotlineIn("", args...)
}

// hotlineIn runs the command line in e with stdin as its standard input.
func (e environ) hotlineIn(stdin string, args ...string) (code int, stdout, stderr string) {
	var out, errs bytes.Buffer
	code = run(args, e.lookup, strings.NewReader(stdin), &out, &errs)
	return code, out.String(), errs.String()
}

// ok runs "hotline agents --api <server> args..." and wants it to succeed.
func (r *apiRig) ok(args ...string) string {
	r.t.Helper()
	code, out, errs := r.hotline(append([]string{"agents", "--api", r.api}, args...)...)
	if code != 0 {
		r.t.Fatalf("hotline agents %q: exit %d, stderr %q", args, code, errs)
	}
	return out
}

// apiMessage is what the API itself answers to a GET of path, to compare
// with what the command prints.
func (r *apiRig) apiMessage(method, path string, want int) string {
	r.t.Helper()
	req, err := http.NewRequestWithContext(r.ctx, method, r.api+path, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+r.environ["HOTLINE_TOKEN"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct{ Error string }
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || resp.StatusCode != want || e.Error == "" {
		r.t.Fatalf("%s %s: %d %+v %v, want %d with an error", method, path, resp.StatusCode, e, err, want)
	}
	return e.Error
}

// row returns the line of a table starting with first.
func row(table, first string) []string {
	for line := range strings.Lines(table) {
		if f := strings.Fields(line); len(f) > 0 && f[0] == first {
			return f
		}
	}
	return nil
}

func TestAgentsCommands(t *testing.T) {
	t.Parallel()
	r := startAPI(t)
	if out := r.ok("add", "--id", "a1", "--name", "Wang", "--sip-user", "wang", "--password", "s3cret-pass", "--categories", "emergency, general"); !strings.Contains(out, "a1") {
		t.Errorf("add said %q", out)
	}
	out := r.ok("list")
	if got := row(out, "a1"); strings.Join(got, " ") != "a1 Wang wang offline - emergency,general no" {
		t.Errorf("list row %q in\n%s", got, out)
	}
	if row(out, "ID") == nil {
		t.Errorf("list without a header:\n%s", out)
	}

	// The phone registers; the agent pauses and resumes.
	if _, err := r.agents.Registered(r.ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	if out := r.ok("pause", "a1", "--reason", "lunch"); !strings.Contains(out, string(acd.Paused)) {
		t.Errorf("pause said %q", out)
	}
	if a, err := r.agents.Agent(r.ctx, "a1"); err != nil || a.State != acd.Paused || a.Reason != "lunch" {
		t.Errorf("after pause: %+v %v", a, err)
	}
	if got := row(r.ok("list"), "a1"); len(got) < 7 || got[3] != "paused" || got[4] != "lunch" || got[6] != "yes" {
		t.Errorf("list row after pause %q", got)
	}
	// Flags may come before the id, and --api after the command.
	code, out, errs := r.hotline("agents", "resume", "--api", r.api, "a1")
	if code != 0 || !strings.Contains(out, string(acd.Available)) {
		t.Errorf("resume: exit %d, %q %q", code, out, errs)
	}
	if a, err := r.agents.Agent(r.ctx, "a1"); err != nil || a.State != acd.Available {
		t.Errorf("after resume: %+v %v", a, err)
	}

	// update changes what it is told and keeps the rest.
	r.ok("update", "a1", "--name", "Wang Fang")
	a, err := r.agents.Agent(r.ctx, "a1")
	if err != nil || a.Name != "Wang Fang" || a.SIPUser != "wang" || len(a.Categories) != 2 {
		t.Errorf("after update: %+v %v", a, err)
	}
	cred, err := r.agents.Credential(r.ctx, "wang")
	if md5hex, _ := acd.DigestHA1("wang", "hotline", "s3cret-pass"); err != nil || cred.HA1 != md5hex {
		t.Errorf("update without a password changed the credential: %+v %v", cred, err)
	}

	var shown web.AgentDetail
	if err := json.Unmarshal([]byte(r.ok("show", "a1")), &shown); err != nil || shown.ID != "a1" || shown.Name != "Wang Fang" || shown.Today.Day == "" {
		t.Errorf("show: %+v %v", shown, err)
	}

	if out := r.ok("delete", "a1"); !strings.Contains(out, "a1") {
		t.Errorf("delete said %q", out)
	}
	if row(r.ok("list"), "a1") != nil {
		t.Error("the deleted agent is still listed")
	}
}

func TestAgentsPasswordStdin(t *testing.T) {
	t.Parallel()
	r := startAPI(t)
	var out, errs bytes.Buffer
	agents := func(stdin string, args ...string) error {
		return agentsCmd(&cli{api: apiDefault(r.lookup), env: r.lookup, stdin: strings.NewReader(stdin), stdout: &out, stderr: &errs}, args)
	}
	err := agents("from-stdin-pw\r\nignored\n", "--api", r.api, "add", "--id", "a2", "--sip-user", "li", "--categories", "livelihood", "--password-stdin")
	if err != nil {
		t.Fatalf("add: %v (%s)", err, errs.String())
	}
	cred, err := r.agents.Credential(r.ctx, "li")
	if md5hex, _ := acd.DigestHA1("li", "hotline", "from-stdin-pw"); err != nil || cred.HA1 != md5hex {
		t.Errorf("credential %+v %v, want the hash of the first line", cred, err)
	}
	err = agents("newer-password\n", "--api", r.api, "update", "a2", "--password-stdin")
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if c, err := r.agents.Credential(r.ctx, "li"); err != nil || c == cred {
		t.Errorf("credential after a new password %+v %v", c, err)
	}
	err = agents("\n", "--api", r.api, "update", "a2", "--password-stdin")
	if e := (exitError{}); !errors.As(err, &e) || e.code != 2 {
		t.Errorf("empty password on stdin: %v, want a usage error", err)
	}
}

// TestAgentsForce: an agent stuck talking is forced back to work; the
// pause asked for during a call says it waits for the call's end; a
// resume with nothing to resume fails with the state.
func TestAgentsForce(t *testing.T) {
	t.Parallel()
	r := startAPI(t)
	r.ok("add", "--id", "a1", "--sip-user", "u1", "--password", "long-enough", "--categories", "general")
	if _, err := r.agents.Registered(r.ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	if err := r.agents.Enqueue(r.ctx, "c1", appeal.General, "node1"); err != nil {
		t.Fatal(err)
	}
	if offers, err := r.agents.Dispatch(r.ctx, 1); err != nil || len(offers) != 1 {
		t.Fatalf("dispatch: %+v %v", offers, err)
	}
	if err := r.agents.Answered(r.ctx, "c1", "a1"); err != nil {
		t.Fatal(err)
	}
	if out := r.ok("pause", "a1", "--reason", "lunch"); out != "agent a1: talking; paused (lunch) when the call ends\n" {
		t.Errorf("pause during a call said %q", out)
	}
	r.ok("resume", "a1")
	code, out, errs := r.hotline("agents", "--api", r.api, "resume", "a1")
	if code != 1 || out != "" || !strings.Contains(errs, "talking") {
		t.Errorf("resume with nothing to resume: exit %d, %q %q", code, out, errs)
	}
	if out := r.ok("force", "a1", "--state", "available", "--reason", "stuck"); out != "agent a1: available (was talking on call c1)\n" {
		t.Errorf("force said %q", out)
	}
	a, err := r.agents.Agent(r.ctx, "a1")
	if err != nil || a.State != acd.Available || a.Forced == nil || a.Forced.Reason != "stuck" || !strings.HasPrefix(a.Forced.By, "token:") {
		t.Fatalf("after force: %+v %v", a, err)
	}
	for _, args := range [][]string{{"force", "a1"}, {"force", "--state", "available"}} {
		if code, _, errs := r.hotline(append([]string{"agents", "--api", r.api}, args...)...); code != 2 || errs == "" {
			t.Errorf("%q: exit %d, %q; want a usage error", args, code, errs)
		}
	}
	if code, _, errs := r.hotline("agents", "--api", r.api, "force", "a1", "--state", "talking"); code != 1 || !strings.Contains(errs, "talking") {
		t.Errorf("force talking: exit %d, %q", code, errs)
	}
}

// TestAgentsAPIError: the API's refusal is printed as the API put it, with
// exit code 1.
func TestAgentsAPIError(t *testing.T) {
	t.Parallel()
	r := startAPI(t)
	for _, c := range []struct {
		args         []string
		method, path string
		status       int
	}{
		{[]string{"delete", "nobody"}, "DELETE", "/api/v1/agents/nobody", http.StatusNotFound},
		{[]string{"show", "nobody"}, "GET", "/api/v1/agents/nobody", http.StatusNotFound},
		{[]string{"resume", "nobody"}, "POST", "/api/v1/agents/nobody/resume", http.StatusNotFound},
	} {
		want := "hotline: " + r.apiMessage(c.method, c.path, c.status) + "\n"
		code, out, errs := r.hotline(append([]string{"agents", "--api", r.api}, c.args...)...)
		if code != 1 || errs != want || out != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 1 and %q", c.args, code, out, errs, want)
		}
	}
	// Refusals the API finds in the agent: a short password, a taken id.
	for _, args := range [][]string{
		{"add", "--id", "a1", "--sip-user", "u1", "--password", "short", "--categories", "general"},
		{"add", "--id", "a1", "--sip-user", "u1", "--password", "long-enough", "--categories", "water"},
	} {
		code, _, errs := r.hotline(append([]string{"agents", "--api", r.api}, args...)...)
		if code != 1 || !strings.HasPrefix(errs, "hotline: ") {
			t.Errorf("%q: exit %d, stderr %q, want 1 with the API's message", args, code, errs)
		}
	}
	r.ok("add", "--id", "a1", "--sip-user", "u1", "--password", "long-enough", "--categories", "general")
	if code, _, errs := r.hotline("agents", "--api", r.api, "add", "--id", "a1", "--sip-user", "u2", "--password", "long-enough", "--categories", "general"); code != 1 || errs == "" {
		t.Errorf("adding a taken id: exit %d, stderr %q", code, errs)
	}
	// A hotline that drops the connection without an answer.
	dropping := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }))
	defer dropping.Close()
	if code, out, errs := r.hotline("agents", "--api", dropping.URL, "list"); code != 1 || out != "" || !strings.Contains(errs, dropping.URL) {
		t.Errorf("API without an answer: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

func TestAgentsUsageErrors(t *testing.T) {
	t.Parallel()
	r := startAPI(t)
	api := r.api
	for _, args := range [][]string{
		{"agents"},
		{"agents", "--api", api},
		{"agents", "--api", api, "fire", "a1"},
		{"agents", "--bogus"},
		{"agents", "--api", "127.0.0.1:8080", "list"},
		{"agents", "--api", api, "list", "extra"},
		{"agents", "--api", api, "show"},
		{"agents", "--api", api, "show", "a1", "a2"},
		{"agents", "--api", api, "add", "--sip-user", "u1", "--password", "long-enough", "--categories", "general"},
		{"agents", "--api", api, "add", "--id", "a1", "--sip-user", "u1", "--categories", "general"},
		{"agents", "--api", api, "add", "--id", "a1", "--sip-user", "u1", "--categories", "general", "--password", "x", "--password-stdin"},
		{"agents", "--api", api, "add", "--id", "a1", "--bogus"},
		{"agents", "--api", api, "update", "a1"},
		{"agents", "--api", api, "pause", "a1"},
		{"agents", "--api", api, "delete"},
		{"queue", "--api", api, "extra"},
	} {
		code, out, errs := r.hotline(args...)
		if code != 2 || errs == "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2 with a message", args, code, out, errs)
		}
	}
	// Nothing reached the store.
	if agents, err := r.agents.Agents(r.ctx); err != nil || len(agents) != 0 {
		t.Errorf("agents after usage errors: %+v %v", agents, err)
	}
}

func TestQueueCommand(t *testing.T) {
	t.Parallel()
	r := startAPI(t)
	code, out, errs := r.hotline("queue", "--api", r.api)
	if code != 0 || !strings.Contains(out, "no calls waiting") || !strings.Contains(out, "0 queued") ||
		!strings.Contains(out, "15-second answer rate none (no calls)") || !strings.Contains(out, "average wait none (no call answered)") {
		t.Errorf("empty queue: exit %d, %q %q", code, out, errs)
	}
	for _, c := range []struct {
		id  string
		cat appeal.Category
	}{{"c-general", appeal.General}, {"c-emergency", appeal.Emergency}} {
		if err := r.agents.Enqueue(r.ctx, c.id, c.cat, "node1"); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errs = r.hotline("queue", "--api", r.api)
	if code != 0 {
		t.Fatalf("queue: exit %d, %q", code, errs)
	}
	first, second := row(out, "1"), row(out, "2")
	if len(first) < 5 || first[1] != "c-emergency" || first[2] != "emergency" || first[4] != "waiting" ||
		len(second) < 5 || second[1] != "c-general" {
		t.Errorf("queue table:\n%s", out)
	}
	if !strings.Contains(out, "2 queued") {
		t.Errorf("queue without today's figures:\n%s", out)
	}
	// A call turned away with nobody registered to take it counts
	// against the answer rate; the rate says what it is over.
	if err := r.agents.TurnedAway(r.ctx, "c-alone", appeal.Complex); err != nil {
		t.Fatal(err)
	}
	_, out, _ = r.hotline("queue", "--api", r.api)
	if !strings.Contains(out, "1 turned away with no agent registered") || !strings.Contains(out, "15-second answer rate 0.0% (0 of 1 calls, turned-away ones included)") {
		t.Errorf("queue with a call turned away:\n%s", out)
	}
}

// TestAPIFromTheEnvironment: HOTLINE_API names the hotline when --api is
// not given.
func TestAPIFromTheEnvironment(t *testing.T) {
	t.Parallel()
	r := startAPI(t)
	r.environ["HOTLINE_API"] = r.api
	if code, out, errs := r.hotline("agents", "list"); code != 0 || row(out, "ID") == nil {
		t.Errorf("list with HOTLINE_API: exit %d, %q %q", code, out, errs)
	}
	if code, _, errs := r.hotline("queue"); code != 0 {
		t.Errorf("queue with HOTLINE_API: exit %d, %q", code, errs)
	}
}

// TestTableWidth: Chinese names take two columns each on a terminal, and
// the columns after them still line up.
func TestTableWidth(t *testing.T) {
	t.Parallel()
	var tb table
	tb.add("ID", "NAME", "STATE")
	tb.add("a1", "王芳", "paused")
	tb.add("a2", "Li", "offline")
	tb.add("a3", "欧阳娜娜", "available")
	var b bytes.Buffer
	if err := tb.write(&b); err != nil {
		t.Fatal(err)
	}
	want := "ID  NAME      STATE\n" +
		"a1  王芳      paused\n" +
		"a2  Li        offline\n" +
		"a3  欧阳娜娜  available\n"
	if b.String() != want {
		t.Errorf("table\n%s\nwant\n%s", b.String(), want)
	}
}
