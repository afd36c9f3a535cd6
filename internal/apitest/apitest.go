// Package apitest holds the API's answers to its OpenAPI document,
// docs/openapi.json: a test hands every response it gets to
// Validator.Check, which fails the test when the status, the content type
// or the body is not one the document allows for the request's operation.
//
// It reads the committed document rather than importing web, so that
// web's own tests, of either package, may use it; web's
// TestOpenAPIDocument keeps the document what the route table says.
package apitest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	liberrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/helpers"
	"github.com/pb33f/libopenapi-validator/paths"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
	"github.com/pb33f/libopenapi/orderedmap"
)

// Document is the document's path in the module.
const Document = "docs/openapi.json"

// regenerate says how to bring the document up to date, for messages.
const regenerate = "if the route table or a reply type changed: go test ./web -run TestOpenAPIDocument -update"

// Validator checks responses against one OpenAPI 3.1 document. Its
// methods may be called from several goroutines.
type Validator struct {
	name  string // the document, for messages
	model *v3.Document
	opts  *config.ValidationOptions
	v     validator.Validator
}

// shared is the validator of the module's document, built once for every
// test of the process.
var shared = sync.OnceValues(func() (*Validator, error) {
	path, err := documentPath()
	if err != nil {
		return nil, err
	}
	doc, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return New(Document, doc)
})

// NewValidator returns the validator of docs/openapi.json, failing t when
// the document cannot be read.
func NewValidator(t testing.TB) *Validator {
	t.Helper()
	v, err := shared()
	if err != nil {
		t.Fatalf("apitest: %v", err)
	}
	return v
}

// New builds a validator of the OpenAPI document doc; name names it in
// messages.
func New(name string, doc []byte) (*Validator, error) {
	d, err := libopenapi.NewDocument(doc)
	if err != nil {
		return nil, fmt.Errorf("apitest: %s: %w", name, err)
	}
	m, err := d.BuildV3Model()
	if err != nil {
		return nil, fmt.Errorf("apitest: %s: %w", name, err)
	}
	// Formats too: a "since" that is not an RFC 3339 time is wrong.
	opts := []config.Option{config.WithFormatAssertions()}
	return &Validator{
		name:  name,
		model: &m.Model,
		opts:  config.NewValidationOptions(opts...),
		v:     validator.NewValidatorFromV3Model(&m.Model, opts...),
	}, nil
}

// documentPath finds docs/openapi.json in the module that holds the
// working directory, which go test makes the package's directory.
func documentPath() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, Document), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Check fails t unless the document allows a response of status, header
// and body to req: the status must be one of the operation's, and a
// response with content must be JSON of its schema, one without none.
func (v *Validator) Check(t testing.TB, req *http.Request, status int, header http.Header, body []byte) {
	t.Helper()
	if req == nil {
		t.Errorf("apitest: Check with no request")
		return
	}
	op, problems := v.problems(req, status, header, body)
	if len(problems) == 0 {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "apitest: %s %s answered %d, which %s does not allow", req.Method, req.URL.RequestURI(), status, v.name)
	if op != "" {
		fmt.Fprintf(&b, " (operation %s)", op)
	}
	b.WriteString(":\n")
	for _, p := range problems {
		b.WriteString("\t" + p + "\n")
	}
	if len(body) > 0 {
		const most = 1000
		excerpt := body
		if len(excerpt) > most {
			excerpt = excerpt[:most]
		}
		fmt.Fprintf(&b, "\tbody (%d bytes): %s\n", len(body), bytes.TrimSpace(excerpt))
	}
	b.WriteString("\t(" + regenerate + ")")
	t.Errorf("%s", b.String())
}

// problems lists what the document does not allow of the response, and
// names the request's operation when the document has one.
func (v *Validator) problems(req *http.Request, status int, header http.Header, body []byte) (string, []string) {
	item, errs, _ := paths.FindPath(req, v.model, v.opts)
	if item == nil {
		return "", append([]string{"the document has no path " + req.URL.Path}, messages(errs)...)
	}
	op := helpers.ExtractOperation(req, item)
	if op == nil {
		return "", []string{"the document has no " + req.Method + " of " + req.URL.Path}
	}
	if op.Responses == nil || op.Responses.Codes == nil {
		return op.OperationId, []string{"the operation declares no responses"}
	}
	answer := op.Responses.Codes.GetOrZero(strconv.Itoa(status))
	if answer == nil {
		var codes []string
		for c := range op.Responses.Codes.KeysFromOldest() {
			codes = append(codes, c)
		}
		slices.Sort(codes)
		return op.OperationId, []string{fmt.Sprintf("status %d is not one of the operation's: %s", status, strings.Join(codes, ", "))}
	}
	if orderedmap.Len(answer.Content) == 0 {
		if len(body) > 0 {
			return op.OperationId, []string{fmt.Sprintf("a %d has no content, and the body has %d bytes", status, len(body))}
		}
		return op.OperationId, nil
	}
	if header == nil {
		header = http.Header{}
	}
	ct := header.Get("Content-Type")
	if mt, _, _ := mime.ParseMediaType(ct); answer.Content.GetOrZero(mt) == nil {
		var types []string
		for t := range answer.Content.KeysFromOldest() {
			types = append(types, t)
		}
		return op.OperationId, []string{fmt.Sprintf("Content-Type %q, want %s", ct, strings.Join(types, " or "))}
	}
	resp := &http.Response{
		StatusCode: status,
		Header:     header,
		Body:       io.NopCloser(bytes.NewReader(body)),
		Request:    req,
	}
	if ok, errs := v.v.ValidateHttpResponse(req, resp); !ok {
		return op.OperationId, messages(errs)
	}
	return op.OperationId, nil
}

// messages are the validator's errors, one line each, with the place in
// the body of each schema error.
func messages(errs []*liberrors.ValidationError) []string {
	var out []string
	for _, e := range errs {
		if len(e.SchemaValidationErrors) == 0 {
			out = append(out, e.Message+": "+e.Reason)
			continue
		}
		for _, se := range e.SchemaValidationErrors {
			at := se.FieldPath
			if at == "" {
				at = "$"
			}
			out = append(out, "at "+at+": "+se.Reason)
		}
	}
	return out
}
