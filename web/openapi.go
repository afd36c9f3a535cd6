package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/calllog"
	"github.com/hotline12345/hotline/evaluation"
	"github.com/hotline12345/hotline/trunk"
)

// openAPIEnums are the values of the domain's named string types, which
// reflection cannot list.
var openAPIEnums = enumTable(
	enumOf(acd.States...),
	enumOf(acd.Outcomes...),
	enumOf(appeal.Categories()...),
	enumOf(evaluation.Praise, evaluation.BadReview, evaluation.NoRating),
	enumOf(evaluation.Pending, evaluation.Upheld, evaluation.Dismissed),
	enumOf(auth.Roles...),
	enumOf(calllog.EndCauses...),
	enumOf(trunk.Registrations...),
	enumOf(trunk.KindHealth, trunk.KindRegistration),
)

type namedEnum struct {
	typ    reflect.Type
	values []string
}

func enumOf[T ~string](values ...T) namedEnum {
	e := namedEnum{typ: reflect.TypeFor[T]()}
	for _, v := range values {
		e.values = append(e.values, string(v))
	}
	return e
}

func enumTable(es ...namedEnum) map[reflect.Type][]string {
	m := make(map[reflect.Type][]string, len(es))
	for _, e := range es {
		m[e.typ] = e.values
	}
	return m
}

// errorAnswers describe the error statuses; every one answers an Error.
var errorAnswers = map[int]string{
	http.StatusBadRequest:            "the body or a query parameter is not what the route takes",
	http.StatusUnauthorized:          "no bearer token, or one that is unknown, expired or revoked",
	http.StatusForbidden:             "the token holds none of the route's roles, or the route is limited to the agent's own and names another",
	http.StatusNotFound:              "no such resource",
	http.StatusConflict:              "the resource's state does not allow it, or another resource holds the name",
	http.StatusRequestEntityTooLarge: "the body is larger than " + strconv.Itoa(MaxBody>>10) + " KiB",
	http.StatusTooManyRequests:       "the request's source is banned",
	http.StatusInternalServerError:   "the server failed",
	http.StatusServiceUnavailable:    "the store did not answer, or not in time: nothing was done; try again (Retry-After)",
}

// errorStatuses are the error statuses rt may answer: its own, those that
// Route.Errors says come with its kind, and two more that the handlers
// give: 413 for a body over MaxBody (decodeBody), 500 and 503 for a store
// that fails or does not answer (api.internal).
func errorStatuses(rt Route) []int {
	codes := slices.Clone(rt.Errors)
	if !rt.Public {
		codes = append(codes, http.StatusUnauthorized, http.StatusForbidden)
	}
	if rt.Body != nil || len(rt.Query) > 0 {
		codes = append(codes, http.StatusBadRequest)
	}
	if rt.Body != nil {
		codes = append(codes, http.StatusRequestEntityTooLarge)
	}
	if len(rt.PathParams()) > 0 {
		codes = append(codes, http.StatusNotFound)
	}
	codes = append(codes, http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusServiceUnavailable)
	slices.Sort(codes)
	return slices.Compact(codes)
}

// OpenAPI is the OpenAPI 3.1 document of the API that routes make, as
// indented JSON. The same routes give the same bytes: keys are sorted and
// schema names depend only on the types.
func OpenAPI(routes []Route) ([]byte, error) {
	s := newSchemas(openAPIEnums)
	paths := map[string]map[string]any{}
	opIDs := map[string]Route{}
	answers := map[int]bool{}
	for _, rt := range routes {
		op, err := openAPIOperation(s, rt)
		if err != nil {
			return nil, fmt.Errorf("web: openapi: %s %s: %w", rt.Method, rt.Path, err)
		}
		id := op["operationId"].(string)
		if other, dup := opIDs[id]; dup {
			return nil, fmt.Errorf("web: openapi: %s %s and %s %s have one operationId %s", rt.Method, rt.Path, other.Method, other.Path, id)
		}
		opIDs[id] = rt
		for _, code := range errorStatuses(rt) {
			answers[code] = true
		}
		path := pathParam.ReplaceAllString(rt.Path, "{$1}")
		if paths[path] == nil {
			paths[path] = map[string]any{}
		}
		method := strings.ToLower(rt.Method)
		if _, dup := paths[path][method]; dup {
			return nil, fmt.Errorf("web: openapi: %s %s: declared twice", rt.Method, rt.Path)
		}
		paths[path][method] = op
	}

	errSchema, err := s.of(reflect.TypeFor[Error]())
	if err != nil {
		return nil, fmt.Errorf("web: openapi: %w", err)
	}
	responses := map[string]any{}
	for code := range answers {
		responses[responseName(code)] = map[string]any{
			"description": errorDescription(code),
			"content":     jsonContent(errSchema),
		}
	}
	components, err := s.names()
	if err != nil {
		return nil, fmt.Errorf("web: openapi: %w", err)
	}

	doc := map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":   "hotline API",
			"version": "1",
			"description": "The JSON API of hotline, the telephone side of a 12345 citizen-service hotline. " +
				"Every route but the public ones takes a bearer token, and allows the roles its x-roles name. " +
				"Lists answer a page: limit items, and the next page's cursor until the last.",
		},
		"servers":  []any{map[string]any{"url": "/"}},
		"security": []any{map[string]any{"bearer": []string{}}},
		"paths":    paths,
		"components": map[string]any{
			"schemas":   components,
			"responses": responses,
			"securitySchemes": map[string]any{
				"bearer": map[string]any{
					"type":         "http",
					"scheme":       "bearer",
					"bearerFormat": "hlt_…",
					"description": "Authorization: Bearer hlt_…, a token from `hotline tokens create` " +
						"or from POST /api/v1/login.",
				},
			},
		},
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("web: openapi: %w", err)
	}
	return buf.Bytes(), nil
}

func openAPIOperation(s *schemas, rt Route) (map[string]any, error) {
	switch rt.Method {
	case "GET", "POST", "PUT", "PATCH", "DELETE":
	default:
		return nil, fmt.Errorf("method %q: want GET, POST, PUT, PATCH or DELETE", rt.Method)
	}
	if len(rt.Roles) == 0 && !rt.Public {
		return nil, fmt.Errorf("no roles, and not public")
	}
	roles := []string{}
	for _, r := range rt.Roles {
		roles = append(roles, string(r))
	}
	op := map[string]any{
		"operationId": operationID(rt),
		"summary":     rt.Summary,
		"description": whoMayCall(rt),
		"x-roles":     roles,
	}
	if rt.Public {
		op["security"] = []any{}
	}

	var params []any
	for _, name := range rt.PathParams() {
		p := map[string]any{"name": name, "in": "path", "required": true, "schema": map[string]any{"type": "string"}}
		if strings.Contains(rt.Path, "{"+name+"...}") {
			p["description"] = "the rest of the path, slashes and all"
		}
		params = append(params, p)
	}
	for _, q := range rt.Query {
		schema, err := paramSchema(q)
		if err != nil {
			return nil, err
		}
		p := map[string]any{"name": q.Name, "in": "query", "schema": schema}
		if q.Description != "" {
			p["description"] = q.Description
		}
		if q.Required {
			p["required"] = true
		}
		params = append(params, p)
	}
	if len(params) > 0 {
		op["parameters"] = params
	}

	if rt.Body != nil {
		body, err := s.of(valueType(rt.Body))
		if err != nil {
			return nil, fmt.Errorf("body: %w", err)
		}
		op["requestBody"] = map[string]any{"required": true, "content": jsonContent(body)}
	}

	status := rt.Status
	if status == 0 {
		status = http.StatusOK
		if rt.Reply == nil {
			status = http.StatusNoContent
		}
	}
	if http.StatusText(status) == "" || status >= 300 {
		return nil, fmt.Errorf("success status %d", status)
	}
	success := map[string]any{"description": http.StatusText(status)}
	if rt.Reply != nil {
		if status == http.StatusNoContent {
			return nil, fmt.Errorf("a reply with status 204, which has no content")
		}
		reply, err := s.of(valueType(rt.Reply))
		if err != nil {
			return nil, fmt.Errorf("reply: %w", err)
		}
		success["content"] = jsonContent(reply)
		if rt.CSV != "" {
			success["content"].(map[string]any)["text/csv"] = map[string]any{
				"schema": map[string]any{"type": "string", "description": "format=csv: a header row, " + rt.CSV + ", then a row per item"},
			}
		}
	}
	responses := map[string]any{strconv.Itoa(status): success}
	if rt.Accepted != "" {
		responses[strconv.Itoa(http.StatusAccepted)] = map[string]any{"description": rt.Accepted}
	}
	for _, code := range errorStatuses(rt) {
		if errorDescription(code) == "" || code < 400 {
			return nil, fmt.Errorf("error status %d", code)
		}
		responses[strconv.Itoa(code)] = map[string]any{"$ref": "#/components/responses/" + responseName(code)}
	}
	op["responses"] = responses
	return op, nil
}

// valueType is the type of a route's Body or Reply; a pointer to a value
// stands for the value.
func valueType(v any) reflect.Type {
	t := reflect.TypeOf(v)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func paramSchema(p Param) (map[string]any, error) {
	var s map[string]any
	switch p.Type {
	case "string":
		s = map[string]any{"type": "string"}
	case "integer", "boolean":
		s = map[string]any{"type": p.Type}
	case "date", "date-time":
		s = map[string]any{"type": "string", "format": p.Type}
	default:
		return nil, fmt.Errorf("query parameter %s: type %q: want string, integer, boolean, date or date-time", p.Name, p.Type)
	}
	if len(p.Enum) > 0 {
		if p.Type != "string" {
			return nil, fmt.Errorf("query parameter %s: an enum of a %s", p.Name, p.Type)
		}
		s["enum"] = p.Enum
	}
	return s, nil
}

// operationID names an operation after its method and path:
// GET /api/v1/agents/{id}/pause is getAgentsByIdPause.
func operationID(rt Route) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(rt.Method))
	for _, seg := range strings.Split(strings.TrimPrefix(rt.Path, "/api/v1"), "/") {
		if m := pathParam.FindStringSubmatch(seg); m != nil {
			b.WriteString("By")
			seg = m[1]
		}
		for _, word := range strings.FieldsFunc(seg, func(r rune) bool { return !isIdent(r) || r == '_' }) {
			b.WriteString(exportedName(word))
		}
	}
	return b.String()
}

// whoMayCall says who may call rt, in words.
func whoMayCall(rt Route) string {
	if rt.Public {
		return "Anyone, no token needed."
	}
	names := make([]string, len(rt.Roles))
	var own []string
	for i, r := range rt.Roles {
		names[i] = string(r)
		if rt.Own && (r == auth.Agent || r == auth.Visitor) {
			own = append(own, string(r))
		}
	}
	s := "Roles: " + strings.Join(names, ", ")
	switch len(own) {
	case 0:
	case 1:
		s += "; " + own[0] + ": its own agent only"
	default:
		s += "; " + strings.Join(own, " and ") + ": their own agent only"
	}
	return s + "."
}

func jsonContent(schema map[string]any) map[string]any {
	return map[string]any{"application/json": map[string]any{"schema": schema}}
}

// responseName names a shared error response: NotFound, TooManyRequests.
func responseName(code int) string {
	var b strings.Builder
	for _, word := range strings.FieldsFunc(http.StatusText(code), func(r rune) bool { return !isIdent(r) }) {
		b.WriteString(exportedName(strings.ToLower(word)))
	}
	return b.String()
}

func errorDescription(code int) string {
	if d, ok := errorAnswers[code]; ok {
		return d
	}
	return http.StatusText(code)
}

// openAPIDocument is the document of Routes(), made on first request: the
// table is fixed when the program is built.
func openAPIDocument() func() ([]byte, error) {
	return sync.OnceValues(func() ([]byte, error) { return OpenAPI(Routes()) })
}

// openAPI serves the API's OpenAPI document.
func (a *api) openAPI(w http.ResponseWriter, r *http.Request) {
	doc, err := a.document()
	if err != nil {
		a.internal(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(doc)
}
