package apitest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/internal/apitest"
	"github.com/hotline12345/hotline/web"
)

// fakeT records the failures of a Check, to see it fail.
type fakeT struct {
	testing.TB
	mu     sync.Mutex
	errors []string
}

func (f *fakeT) Helper() {}

func (f *fakeT) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}

func (f *fakeT) failures() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.errors, "\n")
}

type thing struct {
	ID    string     `json:"id"`
	State acd.State  `json:"state"`
	At    time.Time  `json:"at"`
	Done  *time.Time `json:"done,omitempty"`
	Count int        `json:"count"`
}

// testValidator checks against a document of routes of its own, so that
// these tests hold whatever the route table becomes.
func testValidator(t *testing.T) *apitest.Validator {
	t.Helper()
	staff := []auth.Role{auth.Supervisor}
	doc, err := web.OpenAPI([]web.Route{
		{Method: "GET", Path: "/api/v1/things", Summary: "things", Roles: staff, Reply: web.Page[thing]{}},
		{Method: "GET", Path: "/api/v1/things/{id}", Summary: "one thing", Roles: staff, Reply: thing{}},
		{Method: "DELETE", Path: "/api/v1/things/{id}", Summary: "delete a thing", Roles: staff},
	})
	if err != nil {
		t.Fatal(err)
	}
	v, err := apitest.New("the test document", doc)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

var jsonHeader = http.Header{"Content-Type": {"application/json"}}

func TestCheck(t *testing.T) {
	v := testValidator(t)
	get := httptest.NewRequest("GET", "/api/v1/things/t1", nil)
	const good = `{"id":"t1","state":"available","at":"2026-11-27T09:00:00+08:00","count":3}`
	for _, c := range []struct {
		name   string
		req    *http.Request
		status int
		header http.Header
		body   string
		fail   string // in the failure; "" when none
	}{
		{"good", get, 200, jsonHeader, good, ""},
		{"null pointer", get, 200, jsonHeader, `{"id":"t1","state":"paused","at":"2026-11-27T09:00:00Z","done":null,"count":0}`, ""},
		{"set pointer", get, 200, http.Header{"Content-Type": {"application/json; charset=utf-8"}}, `{"id":"t1","state":"paused","at":"2026-11-27T09:00:00Z","done":"2026-11-27T10:00:00Z","count":0}`, ""},
		{"page", httptest.NewRequest("GET", "http://127.0.0.1:8080/api/v1/things?limit=2", nil), 200, jsonHeader, `{"items":[` + good + `],"next_cursor":"c2"}`, ""},
		{"error", get, 404, jsonHeader, `{"error":"no thing \"t1\""}`, ""},
		{"no content", httptest.NewRequest("DELETE", "/api/v1/things/t1", nil), 204, nil, "", ""},

		{"missing field", get, 200, jsonHeader, `{"id":"t1","at":"2026-11-27T09:00:00Z","count":3}`, "missing property 'state'"},
		{"wrong type", get, 200, jsonHeader, `{"id":"t1","state":"available","at":"2026-11-27T09:00:00Z","count":"3"}`, "at $.count"},
		{"not in the enum", get, 200, jsonHeader, `{"id":"t1","state":"asleep","at":"2026-11-27T09:00:00Z","count":3}`, "at $.state"},
		{"not a time", get, 200, jsonHeader, `{"id":"t1","state":"available","at":"yesterday","count":3}`, "at $.at"},
		{"undeclared field", get, 200, jsonHeader, `{"id":"t1","state":"available","at":"2026-11-27T09:00:00Z","count":3,"colour":"red"}`, "colour"},
		{"page of the wrong shape", httptest.NewRequest("GET", "/api/v1/things", nil), 200, jsonHeader, `{"things":[]}`, "missing property 'items'"},
		{"undeclared status", get, 418, jsonHeader, `{"error":"teapot"}`, "status 418 is not one of the operation's: 200, 401, 403, 404, 429, 500, 503"},
		{"error of the wrong shape", get, 404, jsonHeader, `{"message":"no thing"}`, "missing property 'error'"},
		{"body on a 204", httptest.NewRequest("DELETE", "/api/v1/things/t1", nil), 204, jsonHeader, `{}`, "a 204 has no content, and the body has 2 bytes"},
		{"not JSON", get, 200, jsonHeader, `<html>`, "operation getThingsById"},
		{"wrong content type", get, 200, http.Header{"Content-Type": {"text/plain; charset=utf-8"}}, good, `Content-Type "text/plain; charset=utf-8", want application/json`},
		{"no content type", get, 200, nil, good, `Content-Type "", want application/json`},
		{"unknown path", httptest.NewRequest("GET", "/api/v1/nothing", nil), 200, jsonHeader, `{}`, "the document has no path /api/v1/nothing"},
		{"unknown method", httptest.NewRequest("PATCH", "/api/v1/things/t1", nil), 200, jsonHeader, good, "the document has no PATCH of /api/v1/things/t1"},
	} {
		ft := &fakeT{}
		v.Check(ft, c.req, c.status, c.header, []byte(c.body))
		got := ft.failures()
		switch {
		case c.fail == "" && got != "":
			t.Errorf("%s: failed:\n%s", c.name, got)
		case c.fail != "" && got == "":
			t.Errorf("%s: passed, want a failure saying %q", c.name, c.fail)
		case !strings.Contains(got, c.fail):
			t.Errorf("%s: failure\n%s\ndoes not say %q", c.name, got, c.fail)
		}
	}
}

func TestCheckMessage(t *testing.T) {
	v := testValidator(t)
	ft := &fakeT{}
	v.Check(ft, httptest.NewRequest("GET", "/api/v1/things/t1?x=1", nil), 200, jsonHeader, []byte(`{"id":"t1"}`))
	got := ft.failures()
	for _, want := range []string{
		"apitest: GET /api/v1/things/t1?x=1 answered 200, which the test document does not allow (operation getThingsById):\n",
		"\tat $: missing properties",
		"\tbody (11 bytes): {\"id\":\"t1\"}\n",
		"go test ./web -run TestOpenAPIDocument -update",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("message\n%s\ndoes not say %q", got, want)
		}
	}
}

func TestCheckConcurrently(t *testing.T) {
	v := testValidator(t)
	body, err := json.Marshal(thing{ID: "t1", State: acd.Talking, At: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	ft := &fakeT{}
	for range 8 {
		wg.Go(func() {
			for range 20 {
				v.Check(ft, httptest.NewRequest("GET", "/api/v1/things/t1", nil), 200, jsonHeader, body)
				v.Check(ft, httptest.NewRequest("GET", "/api/v1/things/t1", nil), 200, jsonHeader, []byte(`{}`))
			}
		})
	}
	wg.Wait()
	if n := strings.Count(ft.failures(), "apitest:"); n != 8*20 {
		t.Errorf("%d failures, want %d", n, 8*20)
	}
}

// TestNewValidator checks that the committed document loads, once, and
// that it takes the error every route may answer.
func TestNewValidator(t *testing.T) {
	v := apitest.NewValidator(t)
	if apitest.NewValidator(t) != v {
		t.Error("NewValidator built a second validator")
	}
	for _, rt := range web.Routes() {
		path := rt.Path
		for _, p := range rt.PathParams() {
			path = strings.Replace(path, "{"+p+"}", "x", 1)
			path = strings.Replace(path, "{"+p+"...}", "x", 1)
		}
		req := httptest.NewRequest(rt.Method, path, nil)
		v.Check(t, req, http.StatusTooManyRequests, jsonHeader, []byte(`{"error":"banned"}`))
	}
}
