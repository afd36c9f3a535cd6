package web

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pb33f/jsonschema/v6"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/evaluation"
)

var update = flag.Bool("update", false, "rewrite docs/openapi.json and README.md's route table from the route table")

const openAPIFile = "../docs/openapi.json"

// TestOpenAPIDocument keeps docs/openapi.json what the route table makes.
func TestOpenAPIDocument(t *testing.T) {
	doc, err := OpenAPI(Routes())
	if err != nil {
		t.Fatal(err)
	}
	again, err := OpenAPI(Routes())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(doc, again) {
		t.Fatal("OpenAPI gave two documents for one route table")
	}
	if *update {
		if err := os.WriteFile(openAPIFile, doc, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	committed, err := os.ReadFile(openAPIFile)
	if err != nil {
		t.Fatalf("%v; make it with go test ./web -run TestOpenAPIDocument -update", err)
	}
	if !bytes.Equal(committed, doc) {
		t.Errorf("docs/openapi.json is not the route table's document (%s); "+
			"run go test ./web -run TestOpenAPIDocument -update and commit it", firstDifference(committed, doc))
	}
}

// firstDifference names the first line where got and want differ.
func firstDifference(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return "line " + strconv.Itoa(i+1) + ": " + strings.TrimSpace(gl) + ", want " + strings.TrimSpace(wl)
		}
	}
	return "no line differs"
}

// validDocument fails t unless doc is an OpenAPI 3.1 document that the
// specification's schema accepts and whose references all resolve.
func validDocument(t *testing.T, doc []byte) {
	t.Helper()
	d, err := libopenapi.NewDocument(doc)
	if err != nil {
		t.Fatal(err)
	}
	if v := d.GetSpecInfo().VersionNumeric; v != 3.1 {
		t.Errorf("OpenAPI version %v, want 3.1", v)
	}
	v, errs := validator.NewValidator(d)
	if len(errs) > 0 {
		t.Fatalf("building the model: %v", errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		for _, e := range verrs {
			t.Errorf("%s", e.Error())
			for _, se := range e.SchemaValidationErrors {
				t.Errorf("\t%s at %s (%s)", se.Reason, se.FieldPath, se.KeywordLocation)
			}
		}
	}
}

// validSchemas fails t unless every schema in doc is a JSON Schema
// 2020-12 schema, the dialect of OpenAPI 3.1: the specification's own
// schema takes any object for a schema.
func validSchemas(t *testing.T, doc []byte) {
	t.Helper()
	d, err := jsonschema.UnmarshalJSON(strings.NewReader(strings.ReplaceAll(string(doc), `"#/components/schemas/`, `"#/$defs/`)))
	if err != nil {
		t.Fatal(err)
	}
	components := jsonAt(d, "components", "schemas").(map[string]any)
	delete(d.(map[string]any)["components"].(map[string]any), "schemas")
	// Every schema outside components/schemas is the value of a "schema"
	// key: of a parameter or a media type.
	var inline []any
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				if k == "schema" {
					inline = append(inline, e)
					continue
				}
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(d)
	root := map[string]any{
		"$schema": "https://json-schema.org/draft/2020-12/schema",
		"$defs":   components,
		"anyOf":   inline,
	}
	c := jsonschema.NewCompiler()
	const url = "https://hotline.invalid/openapi-schemas.json"
	if err := c.AddResource(url, root); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Compile(url); err != nil {
		t.Errorf("the document's schemas: %v", err)
	}
}

func TestOpenAPIValid(t *testing.T) {
	t.Run("route table", func(t *testing.T) {
		doc, err := OpenAPI(Routes())
		if err != nil {
			t.Fatal(err)
		}
		validDocument(t, doc)
		validSchemas(t, doc)
	})
	t.Run("every feature", func(t *testing.T) {
		doc, err := OpenAPI(testRoutes)
		if err != nil {
			t.Fatal(err)
		}
		validDocument(t, doc)
		validSchemas(t, doc)
	})
}

// The test routes use every kind of Route and of Go type that the
// document describes.
type testThing struct {
	ID     string              `json:"id"`
	Note   string              `json:"note,omitempty"`
	At     time.Time           `json:"at"`
	Done   *time.Time          `json:"done,omitempty"`
	State  acd.State           `json:"state"`
	Prev   *acd.State          `json:"prev"`
	Tags   map[string]int      `json:"tags,omitempty"`
	Blob   []byte              `json:"blob,omitempty"`
	Count  int64               `json:"count,string"`
	Skip   string              `json:"-"`
	Day    evaluation.AgentDay `json:"day"`
	AcdDay acd.AgentDay        `json:"acd_day"`
	Next   *testThing          `json:"next,omitempty"`
	testBase
	*testExtra
}

type testBase struct {
	Kind string `json:"kind"`
	ID   string `json:"id"` // hidden by testThing's
}

type testExtra struct {
	Extra string `json:"extra"`
}

var testRoutes = []Route{
	{Method: "GET", Path: "/api/v1/things", Summary: "things | more", Roles: []auth.Role{auth.Supervisor, auth.Ops},
		Query: []Param{
			{Name: "limit", Type: "integer"},
			{Name: "all", Type: "boolean", Required: true},
			{Name: "day", Type: "date"},
			{Name: "from", Type: "date-time", Description: "at or after"},
			{Name: "state", Type: "string", Enum: []string{"a", "b"}},
		}, Reply: Page[testThing]{}},
	{Method: "GET", Path: "/api/v1/things/{id}", Summary: "one thing",
		Roles: []auth.Role{auth.Supervisor, auth.Agent, auth.Visitor}, Own: true, Reply: testThing{}},
	{Method: "POST", Path: "/api/v1/things", Summary: "make a thing",
		Roles: []auth.Role{auth.Admin}, Body: testThing{}, Reply: &testThing{}, Status: http.StatusCreated, Errors: []int{409}},
	{Method: "DELETE", Path: "/api/v1/things/{id}", Summary: "delete a thing", Roles: []auth.Role{auth.Admin}},
	{Method: "GET", Path: "/api/v1/files/{path...}", Summary: "a file", Public: true, Reply: map[string][]string{}},
}

// jsonAt is the value at the path of keys in a decoded JSON document;
// nil when there is none.
func jsonAt(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func keysOf(v any) []string {
	m, _ := v.(map[string]any)
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func asJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestOpenAPIOperations(t *testing.T) {
	b, err := OpenAPI(testRoutes)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	op := func(path, method string) any { return jsonAt(doc, "paths", path, method) }

	for _, c := range []struct {
		path, method, id string
		statuses         []string
	}{
		{"/api/v1/things", "get", "getThings", []string{"200", "400", "401", "403", "429", "500", "503"}},
		{"/api/v1/things/{id}", "get", "getThingsById", []string{"200", "401", "403", "404", "429", "500", "503"}},
		{"/api/v1/things", "post", "postThings", []string{"201", "400", "401", "403", "409", "413", "429", "500", "503"}},
		{"/api/v1/things/{id}", "delete", "deleteThingsById", []string{"204", "401", "403", "404", "429", "500", "503"}},
		{"/api/v1/files/{path}", "get", "getFilesByPath", []string{"200", "404", "429", "500", "503"}},
	} {
		o := op(c.path, c.method)
		if o == nil {
			t.Errorf("no %s %s in %v", c.method, c.path, keysOf(jsonAt(doc, "paths")))
			continue
		}
		if got := jsonAt(o, "operationId"); got != c.id {
			t.Errorf("%s %s: operationId %v, want %s", c.method, c.path, got, c.id)
		}
		if got := keysOf(jsonAt(o, "responses")); !slices.Equal(got, c.statuses) {
			t.Errorf("%s %s: statuses %v, want %v", c.method, c.path, got, c.statuses)
		}
	}

	if got := asJSON(jsonAt(op("/api/v1/files/{path}", "get"), "security")); got != "[]" {
		t.Errorf("public route's security %s, want []", got)
	}
	if got := jsonAt(op("/api/v1/things", "get"), "security"); got != nil {
		t.Errorf("a route with roles has its own security %s, want the document's", asJSON(got))
	}
	if got := asJSON(jsonAt(doc, "security")); got != `[{"bearer":[]}]` {
		t.Errorf("document's security %s", got)
	}
	if got := asJSON(jsonAt(doc, "components", "securitySchemes", "bearer", "scheme")); got != `"bearer"` {
		t.Errorf("bearer scheme %s", got)
	}

	own := op("/api/v1/things/{id}", "get")
	if got := jsonAt(own, "description").(string); got != "Roles: supervisor, agent, visitor; agent and visitor: their own agent only." {
		t.Errorf("description %q", got)
	}
	if got := asJSON(jsonAt(own, "x-roles")); got != `["supervisor","agent","visitor"]` {
		t.Errorf("x-roles %s", got)
	}
	if got := asJSON(jsonAt(op("/api/v1/files/{path}", "get"), "x-roles")); got != `[]` {
		t.Errorf("public x-roles %s", got)
	}

	wantParams := `[{"in":"query","name":"limit","schema":{"type":"integer"}},` +
		`{"in":"query","name":"all","required":true,"schema":{"type":"boolean"}},` +
		`{"in":"query","name":"day","schema":{"format":"date","type":"string"}},` +
		`{"description":"at or after","in":"query","name":"from","schema":{"format":"date-time","type":"string"}},` +
		`{"in":"query","name":"state","schema":{"enum":["a","b"],"type":"string"}}]`
	if got := asJSON(jsonAt(op("/api/v1/things", "get"), "parameters")); got != wantParams {
		t.Errorf("query parameters\n%s, want\n%s", got, wantParams)
	}
	wantPath := `[{"description":"the rest of the path, slashes and all","in":"path","name":"path","required":true,"schema":{"type":"string"}}]`
	if got := asJSON(jsonAt(op("/api/v1/files/{path}", "get"), "parameters")); got != wantPath {
		t.Errorf("path parameters %s, want %s", got, wantPath)
	}

	post := op("/api/v1/things", "post")
	if got := asJSON(jsonAt(post, "requestBody")); got != `{"content":{"application/json":{"schema":{"$ref":"#/components/schemas/TestThing"}}},"required":true}` {
		t.Errorf("request body %s", got)
	}
	if got := asJSON(jsonAt(post, "responses", "201", "content")); got != `{"application/json":{"schema":{"$ref":"#/components/schemas/TestThing"}}}` {
		t.Errorf("201 %s", got)
	}
	if got := asJSON(jsonAt(post, "responses", "409")); got != `{"$ref":"#/components/responses/Conflict"}` {
		t.Errorf("409 %s", got)
	}
	if got := asJSON(jsonAt(op("/api/v1/things/{id}", "delete"), "responses", "204")); got != `{"description":"No Content"}` {
		t.Errorf("204 %s", got)
	}
	if got := asJSON(jsonAt(doc, "components", "responses", "Conflict", "content")); got != `{"application/json":{"schema":{"$ref":"#/components/schemas/Error"}}}` {
		t.Errorf("Conflict %s", got)
	}
	if got := asJSON(jsonAt(op("/api/v1/files/{path}", "get"), "responses", "200", "content", "application/json", "schema")); got != `{"additionalProperties":{"items":{"type":"string"},"type":"array"},"type":"object"}` {
		t.Errorf("map reply %s", got)
	}
}

func TestOpenAPISchemas(t *testing.T) {
	b, err := OpenAPI(testRoutes)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	schemas := jsonAt(doc, "components", "schemas")
	want := []string{"AcdAgentDay", "Error", "EvaluationAgentDay", "PageTestThing", "State", "TestThing"}
	if got := keysOf(schemas); !slices.Equal(got, want) {
		t.Errorf("schemas %v, want %v", got, want)
	}
	if got := asJSON(jsonAt(schemas, "PageTestThing")); got != `{"additionalProperties":false,"properties":{"items":{"items":{"$ref":"#/components/schemas/TestThing"},"type":"array"},"next_cursor":{"type":"string"}},"required":["items"],"type":"object"}` {
		t.Errorf("PageTestThing %s", got)
	}
	if got := asJSON(jsonAt(schemas, "State")); got != `{"enum":["offline","available","ringing","talking","wrapup","paused"],"type":"string"}` {
		t.Errorf("State %s", got)
	}
	thing := jsonAt(schemas, "TestThing")
	if got := asJSON(jsonAt(thing, "required")); got != `["id","at","state","prev","count","day","acd_day","kind"]` {
		t.Errorf("required %s", got)
	}
	for prop, want := range map[string]string{
		"id":      `{"type":"string"}`,
		"note":    `{"type":"string"}`,
		"at":      `{"format":"date-time","type":"string"}`,
		"done":    `{"format":"date-time","type":["string","null"]}`,
		"state":   `{"$ref":"#/components/schemas/State"}`,
		"prev":    `{"anyOf":[{"$ref":"#/components/schemas/State"},{"type":"null"}]}`,
		"tags":    `{"additionalProperties":{"type":"integer"},"type":"object"}`,
		"blob":    `{"contentEncoding":"base64","type":"string"}`,
		"count":   `{"type":"string"}`,
		"day":     `{"$ref":"#/components/schemas/EvaluationAgentDay"}`,
		"acd_day": `{"$ref":"#/components/schemas/AcdAgentDay"}`,
		"next":    `{"anyOf":[{"$ref":"#/components/schemas/TestThing"},{"type":"null"}]}`,
		"kind":    `{"type":"string"}`,
		"extra":   `{"type":"string"}`,
	} {
		if got := asJSON(jsonAt(thing, "properties", prop)); got != want {
			t.Errorf("%s: %s, want %s", prop, got, want)
		}
	}
	if got := len(keysOf(jsonAt(thing, "properties"))); got != 14 {
		t.Errorf("%d properties, want 14: %v", got, keysOf(jsonAt(thing, "properties")))
	}
}

func TestOpenAPIRefusesBadRoutes(t *testing.T) {
	admin := []auth.Role{auth.Admin}
	type withChan struct {
		C chan int `json:"c"`
	}
	for name, rt := range map[string]Route{
		"method":          {Method: "FETCH", Path: "/api/v1/x", Roles: admin},
		"no roles":        {Method: "GET", Path: "/api/v1/x", Reply: Error{}},
		"query type":      {Method: "GET", Path: "/api/v1/x", Roles: admin, Query: []Param{{Name: "n", Type: "float"}}},
		"integer enum":    {Method: "GET", Path: "/api/v1/x", Roles: admin, Query: []Param{{Name: "n", Type: "integer", Enum: []string{"1"}}}},
		"204 with reply":  {Method: "GET", Path: "/api/v1/x", Roles: admin, Reply: Error{}, Status: http.StatusNoContent},
		"redirect":        {Method: "GET", Path: "/api/v1/x", Roles: admin, Status: http.StatusFound},
		"error status":    {Method: "GET", Path: "/api/v1/x", Roles: admin, Errors: []int{299}},
		"unknown status":  {Method: "GET", Path: "/api/v1/x", Roles: admin, Errors: []int{499}},
		"no JSON":         {Method: "GET", Path: "/api/v1/x", Roles: admin, Reply: withChan{}},
		"own MarshalJSON": {Method: "GET", Path: "/api/v1/x", Roles: admin, Reply: ownJSON{}},
	} {
		if _, err := OpenAPI([]Route{rt}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}

	dup := []Route{
		{Method: "GET", Path: "/api/v1/a-b", Roles: admin},
		{Method: "GET", Path: "/api/v1/a_b", Roles: admin},
	}
	if _, err := OpenAPI(dup); err == nil || !strings.Contains(err.Error(), "operationId") {
		t.Errorf("two routes of one operationId: %v", err)
	}
}

// ownJSON writes JSON that reflection cannot see.
type ownJSON struct{}

func (ownJSON) MarshalJSON() ([]byte, error) { return []byte(`"x"`), nil }

func TestOpenAPIHandler(t *testing.T) {
	want, err := OpenAPI(Routes())
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/openapi.json", (&api{document: openAPIDocument()}).openAPI)
	for range 2 {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/openapi.json", nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d", rec.Code)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
		if !bytes.Equal(rec.Body.Bytes(), want) {
			t.Error("the served document is not OpenAPI(Routes())")
		}
	}
}

func TestOpenAPITypeNames(t *testing.T) {
	for _, c := range []struct {
		t    reflect.Type
		want string
	}{
		{reflect.TypeFor[Page[acd.Agent]](), "PageAgent"},
		{reflect.TypeFor[Page[string]](), "PageString"},
		{reflect.TypeFor[Page[[]acd.Agent]](), "PageAgent"},
		{reflect.TypeFor[Page[map[string]acd.Agent]](), "PageMapStringAgent"},
		{reflect.TypeFor[acd.State](), "State"},
		{reflect.TypeFor[reviewBody](), "ReviewBody"},
	} {
		if got := typeName(c.t); got != c.want {
			t.Errorf("%s: %s, want %s", c.t, got, c.want)
		}
	}
}
