package web

import (
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"
	"unicode"
)

// schemas describes Go types as JSON Schema 2020-12, the dialect of
// OpenAPI 3.1, the way encoding/json writes them: json tags name the
// properties, fields without omitempty or omitzero are required, pointers
// may be null, embedded structs lend their fields. Named structs and the
// named string types of enums become components, referenced with $ref.
//
// A reflector of our own rather than github.com/invopop/jsonschema: that
// one names a generic type after its full type arguments (a $ref with
// slashes in it), gives two types of the same name one schema (acd and
// evaluation each have an AgentDay), cannot say that a pointer field may
// be null, and leaves named string types inline; fixing all four through
// its hooks takes a second walk of the types, which is this file.
type schemas struct {
	enums map[reflect.Type][]string
	// defs are the components, by type: named structs and enums. They
	// are named only when every type is known (names), so that a name
	// does not depend on the order the routes are listed in.
	defs map[reflect.Type]map[string]any
	// refs are the {"$ref": …} objects pointing at each component, to
	// be filled in by names.
	refs map[reflect.Type][]map[string]any
}

func newSchemas(enums map[reflect.Type][]string) *schemas {
	return &schemas{
		enums: enums,
		defs:  map[reflect.Type]map[string]any{},
		refs:  map[reflect.Type][]map[string]any{},
	}
}

var (
	timeType       = reflect.TypeFor[time.Time]()
	rawMessageType = reflect.TypeFor[json.RawMessage]()
	jsonMarshaler  = reflect.TypeFor[json.Marshaler]()
	textMarshaler  = reflect.TypeFor[encoding.TextMarshaler]()
)

// of is the schema of t's JSON: inline for unnamed and basic types, a
// reference for components.
func (s *schemas) of(t reflect.Type) (map[string]any, error) {
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}, nil
	case t == rawMessageType:
		return map[string]any{}, nil // any JSON value
	case s.enums[t] != nil:
		return s.ref(t, func(def map[string]any) error {
			def["type"] = "string"
			def["enum"] = s.enums[t]
			return nil
		})
	case t.Kind() == reflect.Pointer:
		elem, err := s.of(t.Elem())
		if err != nil {
			return nil, err
		}
		return nullable(elem), nil
	case implements(t, jsonMarshaler):
		return nil, fmt.Errorf("%s has its own MarshalJSON, whose JSON reflection cannot see", t)
	case implements(t, textMarshaler):
		return map[string]any{"type": "string"}, nil
	}
	switch t.Kind() {
	case reflect.Bool:
		return map[string]any{"type": "boolean"}, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return map[string]any{"type": "integer"}, nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer", "minimum": 0}, nil
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}, nil
	case reflect.String:
		return map[string]any{"type": "string"}, nil
	case reflect.Interface:
		return map[string]any{}, nil
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 && !implements(t.Elem(), jsonMarshaler) && !implements(t.Elem(), textMarshaler) {
			return map[string]any{"type": "string", "contentEncoding": "base64"}, nil
		}
		items, err := s.of(t.Elem())
		if err != nil {
			return nil, err
		}
		return map[string]any{"type": "array", "items": items}, nil
	case reflect.Array:
		items, err := s.of(t.Elem())
		if err != nil {
			return nil, err
		}
		return map[string]any{"type": "array", "items": items, "minItems": t.Len(), "maxItems": t.Len()}, nil
	case reflect.Map:
		return s.mapOf(t)
	case reflect.Struct:
		if t.Name() == "" {
			def := map[string]any{}
			return def, s.object(t, def)
		}
		return s.ref(t, func(def map[string]any) error { return s.object(t, def) })
	}
	return nil, fmt.Errorf("%s: a %s has no JSON", t, t.Kind())
}

// ref returns a reference to t's component, describing it with fill the
// first time.
func (s *schemas) ref(t reflect.Type, fill func(def map[string]any) error) (map[string]any, error) {
	if _, ok := s.defs[t]; !ok {
		def := map[string]any{}
		// Entered before it is filled, so that a type that contains
		// itself refers to itself instead of recursing for ever.
		s.defs[t] = def
		if err := fill(def); err != nil {
			return nil, err
		}
	}
	r := map[string]any{"$ref": ""}
	s.refs[t] = append(s.refs[t], r)
	return r, nil
}

func (s *schemas) mapOf(t reflect.Type) (map[string]any, error) {
	m := map[string]any{"type": "object"}
	switch k := t.Key(); {
	case k.Kind() == reflect.String:
	case implements(k, textMarshaler):
	case k.Kind() >= reflect.Int && k.Kind() <= reflect.Uint64:
		m["propertyNames"] = map[string]any{"pattern": "^-?[0-9]+$"}
	default:
		return nil, fmt.Errorf("%s: encoding/json takes no %s as a key", t, k)
	}
	v, err := s.of(t.Elem())
	if err != nil {
		return nil, err
	}
	m["additionalProperties"] = v
	return m, nil
}

// object describes struct type t in def.
func (s *schemas) object(t reflect.Type, def map[string]any) error {
	props := map[string]any{}
	required := []string{}
	for _, f := range jsonFields(t) {
		var p map[string]any
		if f.quoted {
			p = map[string]any{"type": "string"}
			if f.typ.Kind() == reflect.Pointer {
				p = nullable(p)
			}
		} else {
			var err error
			if p, err = s.of(f.typ); err != nil {
				return fmt.Errorf("%s.%s: %w", t, f.goName, err)
			}
		}
		props[f.name] = p
		if !f.optional {
			required = append(required, f.name)
		}
	}
	def["type"] = "object"
	def["properties"] = props
	if len(required) > 0 {
		def["required"] = required
	}
	// The server writes no other field and reads none: decodeBody
	// refuses unknown fields.
	def["additionalProperties"] = false
	return nil
}

// nullable is s that also takes null: a type array for an inline schema,
// anyOf for a reference.
func nullable(s map[string]any) map[string]any {
	typ, ok := s["type"].(string)
	if !ok {
		if _, isArray := s["type"].([]string); isArray || len(s) == 0 {
			return s // already takes null, or anything
		}
		return map[string]any{"anyOf": []any{s, map[string]any{"type": "null"}}}
	}
	n := make(map[string]any, len(s))
	for k, v := range s {
		n[k] = v
	}
	n["type"] = []string{typ, "null"}
	if enum, ok := s["enum"].([]string); ok {
		vals := make([]any, 0, len(enum)+1)
		for _, v := range enum {
			vals = append(vals, v)
		}
		n["enum"] = append(vals, nil)
	}
	return n
}

// names gives every component its name and fills in the references:
// the type's name, its type arguments spelt out (PageAgent for
// Page[acd.Agent]); when two types share a name, each is prefixed with
// its package's (AcdAgentDay, EvaluationAgentDay).
func (s *schemas) names() (map[string]any, error) {
	byName := map[string][]reflect.Type{}
	for t := range s.defs {
		n := typeName(t)
		byName[n] = append(byName[n], t)
	}
	out := map[string]any{}
	owner := map[string]reflect.Type{}
	for n, ts := range byName {
		for _, t := range ts {
			name := n
			if len(ts) > 1 {
				name = exportedName(pkgName(t)) + n
			}
			if other, dup := owner[name]; dup {
				return nil, fmt.Errorf("%s and %s would both be the schema %s", t, other, name)
			}
			owner[name] = t
			out[name] = s.defs[t]
			for _, r := range s.refs[t] {
				r["$ref"] = "#/components/schemas/" + name
			}
		}
	}
	return out, nil
}

// typeName is t's name without package paths: Page[github.com/…/acd.Agent]
// is PageAgent.
func typeName(t reflect.Type) string {
	name := t.Name()
	var b strings.Builder
	for i := 0; i < len(name); {
		j := i
		for j < len(name) && isIdent(rune(name[j])) {
			j++
		}
		if j == i {
			i++
			continue
		}
		// A word followed by '.' or '/' is part of a package path.
		if j == len(name) || (name[j] != '.' && name[j] != '/') {
			b.WriteString(exportedName(name[i:j]))
		}
		i = j
	}
	return b.String()
}

func pkgName(t reflect.Type) string {
	p := t.PkgPath()
	return p[strings.LastIndexByte(p, '/')+1:]
}

func exportedName(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func isIdent(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r)
}

func implements(t, iface reflect.Type) bool {
	return t.Implements(iface) || (t.Kind() != reflect.Pointer && reflect.PointerTo(t).Implements(iface))
}

// jsonField is one property of a struct's JSON.
type jsonField struct {
	name     string
	goName   string
	typ      reflect.Type
	index    []int
	tagged   bool // named by its json tag
	optional bool // omitempty or omitzero, or promoted from an embedded pointer
	quoted   bool // the ",string" option on a number or bool
}

// jsonFields lists the fields encoding/json writes for struct type t,
// following its rules (encoding/json's typeFields): embedded structs
// without a json name lend their fields, a shallower field hides a deeper
// one of the same name, at the same depth a tagged field hides untagged
// ones, and otherwise fields that clash are all left out.
func jsonFields(t reflect.Type) []jsonField {
	type level struct {
		typ      reflect.Type
		index    []int
		optional bool
	}
	var all []jsonField
	visited := map[reflect.Type]bool{}
	next := []level{{typ: t}}
	for len(next) > 0 {
		current := next
		next = nil
		for _, l := range current {
			if visited[l.typ] {
				continue
			}
			visited[l.typ] = true
			for i := range l.typ.NumField() {
				sf := l.typ.Field(i)
				ft := sf.Type
				if sf.Anonymous {
					if ft.Kind() == reflect.Pointer {
						ft = ft.Elem()
					}
					if !sf.IsExported() && ft.Kind() != reflect.Struct {
						continue
					}
				} else if !sf.IsExported() {
					continue
				}
				tag := sf.Tag.Get("json")
				if tag == "-" {
					continue
				}
				name, opts, _ := strings.Cut(tag, ",")
				options := strings.Split(opts, ",")
				index := append(slices.Clone(l.index), i)
				if name == "" && sf.Anonymous && ft.Kind() == reflect.Struct {
					next = append(next, level{typ: ft, index: index, optional: l.optional || sf.Type.Kind() == reflect.Pointer})
					continue
				}
				f := jsonField{name: name, goName: sf.Name, typ: sf.Type, index: index, tagged: name != "",
					optional: l.optional || slices.Contains(options, "omitempty") || slices.Contains(options, "omitzero")}
				if f.name == "" {
					f.name = sf.Name
				}
				if slices.Contains(options, "string") {
					qt := sf.Type
					if qt.Name() == "" && qt.Kind() == reflect.Pointer {
						qt = qt.Elem()
					}
					switch qt.Kind() {
					case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
						reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
						reflect.Float32, reflect.Float64, reflect.String:
						f.quoted = true
					}
				}
				all = append(all, f)
			}
		}
	}

	byName := map[string][]jsonField{}
	for _, f := range all {
		byName[f.name] = append(byName[f.name], f)
	}
	var out []jsonField
	for _, fs := range byName {
		if f, ok := dominant(fs); ok {
			out = append(out, f)
		}
	}
	slices.SortFunc(out, func(a, b jsonField) int { return slices.Compare(a.index, b.index) })
	return out
}

// dominant is the field of fs, all of one name, that encoding/json
// writes, if any.
func dominant(fs []jsonField) (jsonField, bool) {
	depth := len(fs[0].index)
	for _, f := range fs {
		depth = min(depth, len(f.index))
	}
	var top, tagged []jsonField
	for _, f := range fs {
		if len(f.index) == depth {
			top = append(top, f)
			if f.tagged {
				tagged = append(tagged, f)
			}
		}
	}
	switch {
	case len(top) == 1:
		return top[0], true
	case len(tagged) == 1:
		return tagged[0], true
	}
	return jsonField{}, false
}
