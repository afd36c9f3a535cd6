package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// EnvPrefix starts the name of every setting's environment variable:
// HOTLINE_ then the YAML key upper-cased with "_" for ".", as in
// HOTLINE_SIP_LISTEN or HOTLINE_IVR_FIRST_DIGIT_TIMEOUT.
const EnvPrefix = "HOTLINE_"

// envAlias is a well-known environment variable that sets one setting
// besides its HOTLINE_ name.
type envAlias struct {
	Var string // the variable, "REDIS_URL"
	Key string // the setting's YAML key, "redis.url"
}

// wellKnownEnv lists the variables that deployments already set by these
// names: REDIS_URL, and the ARI_ names that github.com/CyCoreSystems/ari's
// native client reads, so a deployment set up for it works unchanged.
func wellKnownEnv() []envAlias {
	return []envAlias{
		{Var: "REDIS_URL", Key: "redis.url"},
		{Var: "ARI_URL", Key: "ari.url"},
		{Var: "ARI_USERNAME", Key: "ari.username"},
		{Var: "ARI_PASSWORD", Key: "ari.password"},
		{Var: "ARI_APPLICATION", Key: "ari.application"},
	}
}

// Load reads the settings: Default, then the YAML file at path (none when
// path is ""), then the environment through env, then Validate. Later
// sources win. env is os.LookupEnv in main; nil reads no environment.
//
// The file may leave out any key; a key given without a value keeps its
// default. A key the settings do not have is an error naming its line.
//
// Every setting can be overridden by the variable EnvPrefix + its key
// (HOTLINE_SIP_LISTEN, HOTLINE_LOG_LEVEL, ...), and a few by a well-known
// name as well (REDIS_URL, ARI_URL, ARI_USERNAME, ARI_PASSWORD,
// ARI_APPLICATION). Lists are comma-separated ("PCMU,PCMA"). A
// variable set to the empty string counts as unset: container templates
// pass unset variables on as empty ones, and an empty REDIS_URL must not
// quietly swap the shared Redis for an embedded one.
//
// Problems are returned together, each a *KeyError naming the key and where
// its value came from (file and line, or variable); the Config is then the
// zero value.
func Load(path string, env func(string) (string, bool)) (Config, error) {
	c := Default()
	origins := map[string]origin{}
	var errs []error
	if path != "" {
		if err := c.decodeFile(path, origins); err != nil {
			errs = append(errs, err)
		}
	}
	if env != nil {
		errs = append(errs, c.applyEnv(env, origins)...)
	}
	for i, t := range c.Trunks {
		t = t.withDefaults()
		if env != nil {
			if v, ok := env(TrunkPasswordEnv(t.Name)); ok && v != "" {
				t.Password = v
				origins[fmt.Sprintf("trunks[%d].password", i)] = origin{source: TrunkPasswordEnv(t.Name)}
			}
		}
		c.Trunks[i] = t
	}
	if err := c.Validate(); err != nil {
		for _, ke := range keyErrors(err) {
			if o, ok := origins[ke.Key]; ok && ke.Source == "" {
				ke.Source, ke.Line = o.source, o.line
			}
		}
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return c, nil
}

// origin is where a setting's value came from.
type origin struct {
	source string // the file's path or the variable's name
	line   int    // the line in the file; 0 for a variable
}

// decodeFile applies the YAML file at path to c, recording where each value
// came from in origins.
//
// The file is walked node by node against Config's fields rather than
// decoded with yaml.v3's KnownFields(true): that refuses unknown keys too,
// but its errors are text only, while walking gives each problem the full
// dotted key and line as a KeyError.
func (c *Config) decodeFile(path string, origins map[string]origin) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file: every default stands
		}
		return &KeyError{Source: path, Err: err}
	}
	var more yaml.Node
	switch err := dec.Decode(&more); {
	case err == nil:
		return &KeyError{Source: path, Line: more.Line, Err: errors.New("a second YAML document: want one")}
	case !errors.Is(err, io.EOF):
		return &KeyError{Source: path, Err: err}
	}
	if len(doc.Content) == 0 {
		return nil
	}
	w := fileWalker{path: path, origins: origins}
	w.mapping(doc.Content[0], reflect.ValueOf(c).Elem(), "")
	return errors.Join(w.errs...)
}

// fileWalker applies YAML nodes to the fields of a settings struct.
type fileWalker struct {
	path    string
	origins map[string]origin
	errs    []error
}

func (w *fileWalker) fail(key string, line int, err error) {
	w.errs = append(w.errs, &KeyError{Key: key, Source: w.path, Line: line, Err: err})
}

// mapping applies the mapping n to the struct v, whose key is prefix.
func (w *fileWalker) mapping(n *yaml.Node, v reflect.Value, prefix string) {
	n = resolve(n)
	if isNull(n) {
		return // "sip:" with nothing under it keeps every default
	}
	if n.Kind != yaml.MappingNode {
		w.fail(prefix, n.Line, errWantMapping)
		return
	}
	fields := fieldsByKey(v.Type())
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		key := joinKey(prefix, kn.Value)
		if kn.ShortTag() == "!!merge" {
			w.fail(key, kn.Line, errMergeKey)
			continue
		}
		if first, dup := seen[kn.Value]; dup {
			w.fail(key, kn.Line, fmt.Errorf("%w (first on line %d)", ErrDuplicateKey, first))
			continue
		}
		seen[kn.Value] = kn.Line
		idx, ok := fields[kn.Value]
		if !ok {
			w.fail(key, kn.Line, ErrUnknownKey)
			continue
		}
		if f := v.Field(idx); isSection(f.Type()) {
			w.mapping(vn, f, key)
		} else if isRecordList(f.Type()) {
			w.records(vn, f, key)
		} else {
			w.leaf(vn, f, key)
		}
	}
}

// records applies the sequence of mappings n to the slice of structs v,
// whose key is key; each item's keys are checked as a section's are.
func (w *fileWalker) records(n *yaml.Node, v reflect.Value, key string) {
	n = resolve(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		w.fail(key, n.Line, errWantList)
		return
	}
	list := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		w.mapping(item, list.Index(i), fmt.Sprintf("%s[%d]", key, i))
	}
	v.Set(list)
	w.origins[key] = origin{source: w.path, line: n.Line}
}

// leaf applies the value n to the setting v, whose key is key.
func (w *fileWalker) leaf(n *yaml.Node, v reflect.Value, key string) {
	n = resolve(n)
	if isNull(n) {
		return
	}
	var err error
	switch {
	case v.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		err = setList(v, n)
	case n.Kind != yaml.ScalarNode && v.Kind() == reflect.Slice:
		err = errWantList
	case n.Kind != yaml.ScalarNode:
		err = errWantValue
	default:
		err = setValue(v, n.Value)
	}
	if err != nil {
		w.fail(key, n.Line, err)
		return
	}
	w.origins[key] = origin{source: w.path, line: n.Line}
}

// setList sets the list v from the items of the sequence n.
func setList(v reflect.Value, n *yaml.Node) error {
	items := make([]string, 0, len(n.Content))
	for _, item := range n.Content {
		item = resolve(item)
		if item.Kind != yaml.ScalarNode {
			return fmt.Errorf("line %d: %w", item.Line, errWantValue)
		}
		items = append(items, item.Value)
	}
	v.Set(reflect.ValueOf(items).Convert(v.Type()))
	return nil
}

// resolve follows an alias (*name) to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// isNull reports whether n is YAML's null: nothing, "~" or "null".
func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// applyEnv applies the environment overrides to c, recording their origins.
func (c *Config) applyEnv(env func(string) (string, bool), origins map[string]origin) []error {
	aliases := map[string]string{}
	for _, a := range wellKnownEnv() {
		aliases[a.Key] = a.Var
	}
	var errs []error
	for _, l := range c.leaves() {
		name := l.env
		raw, ok := lookup(env, name)
		if alias, has := aliases[l.key]; has {
			araw, aok := lookup(env, alias)
			switch {
			case aok && ok && araw != raw:
				errs = append(errs, &KeyError{Key: l.key, Source: alias + ", " + name, Err: ErrConflictingEnv})
				continue
			case aok:
				name, raw, ok = alias, araw, true
			}
		}
		if !ok {
			continue
		}
		if err := setValue(l.value, raw); err != nil {
			errs = append(errs, &KeyError{Key: l.key, Source: name, Err: err})
			continue
		}
		origins[l.key] = origin{source: name}
	}
	return errs
}

// lookup reads a variable, an empty one counting as unset.
func lookup(env func(string) (string, bool), name string) (string, bool) {
	v, ok := env(name)
	return v, ok && v != ""
}

// setting is one leaf of Config: a value, not a section.
type setting struct {
	key   string        // dotted YAML key, "sip.listen"
	env   string        // its variable, "HOTLINE_SIP_LISTEN"
	value reflect.Value // the field, settable
}

// leaves lists every setting of c, in declaration order, so that a new
// field gets its environment variable without further code.
func (c *Config) leaves() []setting {
	var out []setting
	var walk func(v reflect.Value, prefix string)
	walk = func(v reflect.Value, prefix string) {
		for key, idx := range orderedFields(v.Type()) {
			f := v.Field(idx)
			k := joinKey(prefix, key)
			if isSection(f.Type()) {
				walk(f, k)
				continue
			}
			if isRecordList(f.Type()) {
				continue // lists of records come from the file only
			}
			out = append(out, setting{key: k, env: envName(k), value: f})
		}
	}
	walk(reflect.ValueOf(c).Elem(), "")
	return out
}

// envName is the environment variable of the setting key.
func envName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// joinKey appends key to the dotted prefix.
func joinKey(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// isSection reports whether t is a group of settings rather than a setting.
func isSection(t reflect.Type) bool {
	return t.Kind() == reflect.Struct
}

// isRecordList reports whether t is a list of records (agents), set from
// the file only.
func isRecordList(t reflect.Type) bool {
	return t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct
}

// yamlKey is the key of a struct field: its yaml tag's name, or the
// lower-cased field name as yaml.v3 uses; "" for a field not in the file.
func yamlKey(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	switch name {
	case "-":
		return ""
	case "":
		return strings.ToLower(f.Name)
	}
	return name
}

// fieldsByKey maps the keys of struct type t to field indexes.
func fieldsByKey(t reflect.Type) map[string]int {
	m := map[string]int{}
	for key, idx := range orderedFields(t) {
		m[key] = idx
	}
	return m
}

// orderedFields yields the keys of struct type t with their field indexes,
// in declaration order.
func orderedFields(t reflect.Type) func(yield func(string, int) bool) {
	return func(yield func(string, int) bool) {
		for i := range t.NumField() {
			key := yamlKey(t.Field(i))
			if key == "" {
				continue
			}
			if !yield(key, i) {
				return
			}
		}
	}
}

// setValue sets the setting v from its text, as written in a YAML scalar or
// an environment variable. A list is comma-separated, blanks trimmed.
func setValue(v reflect.Value, raw string) error {
	switch {
	case v.Type() == reflect.TypeFor[Duration]():
		d, err := parseDuration(raw)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.String:
		v.SetString(raw)
	case v.Kind() == reflect.Int:
		n, err := strconv.Atoi(strings.TrimSpace(raw))
		if err != nil {
			return fmt.Errorf("%q: %w", raw, errWantNumber)
		}
		v.SetInt(int64(n))
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(raw))
		if err != nil {
			return fmt.Errorf("%q: %w", raw, errWantBool)
		}
		v.SetBool(b)
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
		items := []string{}
		for item := range strings.SplitSeq(raw, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
		v.Set(reflect.ValueOf(items).Convert(v.Type()))
	default:
		// Only a new setting of a type not handled here reaches this; the
		// tests set every setting from text, so they catch it.
		return fmt.Errorf("settings of type %s cannot be read from text", v.Type())
	}
	return nil
}
