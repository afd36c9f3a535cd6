package asteriskconf

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// A reader of Asterisk's configuration syntax (main/config.c), enough for
// the files in this directory:
//
//	[name]                  a section ("category")
//	[name](!)               a template, which configures nothing itself
//	[name](tpl1,tpl2)       a section that starts with the templates' settings
//	[name](!,tpl)           a template built on another
//	[name](+)               more settings for the section already named
//	key = value             a setting
//	key => value            the same ("exten => ...", "load => ...")
//	; comment               to the end of the line; "\;" is a literal ";"
//	;-- comment --;         a block comment, which may span lines and nest
//	#include file           the file's lines, read here
//	#tryinclude file        the same, when the file exists

// Errors of the reader; each problem is a *confError wrapping one.
var (
	errSyntax   = errors.New("syntax error")
	errTemplate = errors.New("bad template reference")
	errInclude  = errors.New("bad #include")
)

// confError is a problem at a line of a file.
type confError struct {
	file string
	line int
	err  error
	msg  string
}

func (e *confError) Error() string {
	return fmt.Sprintf("%s:%d: %v: %s", e.file, e.line, e.err, e.msg)
}

func (e *confError) Unwrap() error { return e.err }

// setting is one "key = value" line.
type setting struct {
	key, value string
	file       string
	line       int
}

// section is a [name] and its settings: those copied from its templates,
// then its own, in file order.
type section struct {
	name     string
	file     string
	line     int
	template bool
	bases    []string
	settings []setting
}

// get returns the last value of key: later settings override earlier ones,
// as for PJSIP's type= inherited from a template.
func (s *section) get(key string) (string, bool) {
	for i := len(s.settings) - 1; i >= 0; i-- {
		if s.settings[i].key == key {
			return s.settings[i].value, true
		}
	}
	return "", false
}

// all returns every value of key in order, as for "exten" or "load".
func (s *section) all(key string) []setting {
	var out []setting
	for _, st := range s.settings {
		if st.key == key {
			out = append(out, st)
		}
	}
	return out
}

// conf is one file as Asterisk reads it, includes inlined.
type conf struct {
	name     string
	sections []*section
}

// named returns the sections called name, in file order: PJSIP files give
// one name to several sections of different types.
func (c *conf) named(name string) []*section {
	var out []*section
	for _, s := range c.sections {
		if s.name == name {
			out = append(out, s)
		}
	}
	return out
}

// first returns the first section called name, or nil.
func (c *conf) first(name string) *section {
	if s := c.named(name); len(s) > 0 {
		return s[0]
	}
	return nil
}

// maxIncludeDepth stops an #include loop.
const maxIncludeDepth = 10

// parseConf reads file name of fsys and everything it includes. Problems
// are returned joined, each a *confError.
func parseConf(fsys fs.FS, name string) (*conf, error) {
	p := &parser{fsys: fsys, c: &conf{name: name}}
	p.file(name, 0)
	return p.c, errors.Join(p.errs...)
}

type parser struct {
	fsys     fs.FS
	c        *conf
	cur      *section
	errs     []error
	comments int // depth of ;-- --; block comments
}

func (p *parser) fail(file string, line int, err error, format string, args ...any) {
	p.errs = append(p.errs, &confError{file: file, line: line, err: err, msg: fmt.Sprintf(format, args...)})
}

func (p *parser) file(name string, depth int) {
	b, err := fs.ReadFile(p.fsys, name)
	if err != nil {
		p.fail(name, 0, errInclude, "%v", err)
		return
	}
	for i, raw := range strings.Split(string(b), "\n") {
		p.line(name, i+1, strings.TrimSuffix(raw, "\r"), depth)
	}
}

func (p *parser) line(file string, n int, raw string, depth int) {
	text := p.stripComments(raw)
	text = strings.TrimSpace(text)
	switch {
	case text == "":
	case strings.HasPrefix(text, "#"):
		p.directive(file, n, text, depth)
	case strings.HasPrefix(text, "["):
		p.header(file, n, text)
	default:
		p.setting(file, n, text)
	}
}

// stripComments removes ; comments and ;-- --; block comments and turns
// "\;" into ";".
func (p *parser) stripComments(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case p.comments > 0 && strings.HasPrefix(s[i:], "--;"):
			p.comments--
			i += 2
		case strings.HasPrefix(s[i:], ";--"):
			p.comments++
			i += 2
		case p.comments > 0:
		case strings.HasPrefix(s[i:], `\;`):
			b.WriteByte(';')
			i++
		case s[i] == ';':
			return b.String()
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func (p *parser) directive(file string, n int, text string, depth int) {
	word, arg, _ := strings.Cut(text, " ")
	arg = strings.Trim(strings.TrimSpace(arg), `"<>`)
	switch word {
	case "#include", "#tryinclude":
		if arg == "" {
			p.fail(file, n, errInclude, "%s names no file", word)
			return
		}
		if depth >= maxIncludeDepth {
			p.fail(file, n, errInclude, "#include nested deeper than %d: a loop?", maxIncludeDepth)
			return
		}
		// Relative names are relative to Asterisk's configuration
		// folder, /etc/asterisk, which is this directory.
		name := path.Clean(strings.TrimPrefix(arg, "/etc/asterisk/"))
		if _, err := fs.Stat(p.fsys, name); err != nil {
			if word == "#include" {
				p.fail(file, n, errInclude, "%s: %v", arg, err)
			}
			return
		}
		p.file(name, depth+1)
	default:
		// #exec runs a program at every reload: not in a shipped
		// configuration.
		p.fail(file, n, errSyntax, "directive %s is not used here", word)
	}
}

func (p *parser) header(file string, n int, text string) {
	end := strings.IndexByte(text, ']')
	if end < 0 {
		p.fail(file, n, errSyntax, "%q: no closing ]", text)
		return
	}
	name, rest := strings.TrimSpace(text[1:end]), strings.TrimSpace(text[end+1:])
	if name == "" {
		p.fail(file, n, errSyntax, "a section without a name")
		return
	}
	s := &section{name: name, file: file, line: n}
	if rest != "" {
		if !strings.HasPrefix(rest, "(") || !strings.HasSuffix(rest, ")") {
			p.fail(file, n, errSyntax, "%q: want (options) after the section name", rest)
			return
		}
		for opt := range strings.SplitSeq(rest[1:len(rest)-1], ",") {
			opt = strings.TrimSpace(opt)
			switch opt {
			case "!":
				s.template = true
			case "+":
				// More settings for the section already named.
				if prev := p.c.named(name); len(prev) > 0 {
					p.cur = prev[len(prev)-1]
					return
				}
				p.fail(file, n, errTemplate, "[%s](+) adds to a section not defined before", name)
				return
			case "":
				p.fail(file, n, errSyntax, "empty option in %q", rest)
			default:
				p.inherit(s, opt, file, n)
			}
		}
	}
	p.c.sections = append(p.c.sections, s)
	p.cur = s
}

// inherit copies the settings of template base into s. Asterisk looks the
// template up when it reads the line, so it must come earlier in the file.
func (p *parser) inherit(s *section, base, file string, n int) {
	prev := p.c.named(base)
	if len(prev) == 0 {
		p.fail(file, n, errTemplate, "[%s] inherits %q, which is not defined above it", s.name, base)
		return
	}
	t := prev[len(prev)-1]
	if !t.template {
		p.fail(file, n, errTemplate, "[%s] inherits [%s] (%s:%d), which is not a template (!)", s.name, base, t.file, t.line)
		return
	}
	s.bases = append(s.bases, base)
	s.settings = append(s.settings, t.settings...)
}

func (p *parser) setting(file string, n int, text string) {
	eq := strings.IndexByte(text, '=')
	if eq < 0 {
		p.fail(file, n, errSyntax, "%q: want key = value", text)
		return
	}
	key, value := strings.TrimSpace(text[:eq]), text[eq+1:]
	value = strings.TrimSpace(strings.TrimPrefix(value, ">"))
	switch {
	case key == "":
		p.fail(file, n, errSyntax, "%q: no key", text)
	case p.cur == nil:
		p.fail(file, n, errSyntax, "%q before any [section]", text)
	default:
		p.cur.settings = append(p.cur.settings, setting{key: key, value: value, file: file, line: n})
	}
}

// splitTop splits s at each sep outside (), {}, [] and double quotes, as
// Asterisk splits application arguments; ${EXTEN:1} or $[a:b] stay whole.
func splitTop(s string, sep byte) []string {
	var out []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '(' || c == '{' || c == '[':
			depth++
		case c == ')' || c == '}' || c == ']':
			depth--
		case c == sep && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// step is one priority of the dialplan: an application and its arguments.
type step struct {
	context, exten string
	app, args      string
	file           string
	line           int
}

// dialplan is extensions.conf: its contexts and their steps in order.
type dialplan struct {
	contexts map[string]*section
	steps    []step
	includes []setting // include => context, with where it was written
}

// readDialplan reads the contexts of extensions.conf. Every section but
// [general] and [globals] is a context; "exten => NAME,PRIORITY,App(args)"
// starts an extension and "same => PRIORITY,App(args)" continues it.
func readDialplan(c *conf) (*dialplan, error) {
	d := &dialplan{contexts: map[string]*section{}}
	var errs []error
	for _, s := range c.sections {
		if s.name == "general" || s.name == "globals" {
			continue
		}
		d.contexts[s.name] = s
		exten := ""
		for _, st := range s.settings {
			var rest string
			switch st.key {
			case "exten":
				name, r, ok := strings.Cut(st.value, ",")
				if !ok {
					errs = append(errs, &confError{st.file, st.line, errSyntax, "exten without a priority"})
					continue
				}
				exten, rest = strings.TrimSpace(name), r
			case "same":
				if exten == "" {
					errs = append(errs, &confError{st.file, st.line, errSyntax, "same => before any exten =>"})
					continue
				}
				rest = st.value
			case "include":
				d.includes = append(d.includes, st)
				continue
			default:
				continue
			}
			prio, app, ok := strings.Cut(rest, ",")
			if !ok {
				errs = append(errs, &confError{st.file, st.line, errSyntax, "priority without an application"})
				continue
			}
			if strings.TrimSpace(prio) == "hint" {
				continue // a device to watch, not an application
			}
			name, args := parseApp(strings.TrimSpace(app))
			d.steps = append(d.steps, step{context: s.name, exten: exten, app: name, args: args, file: st.file, line: st.line})
		}
	}
	return d, errors.Join(errs...)
}

// parseApp splits "App(args)" into App and args.
func parseApp(s string) (name, args string) {
	open := strings.IndexByte(s, '(')
	if open < 0 || !strings.HasSuffix(s, ")") {
		return s, ""
	}
	return strings.TrimSpace(s[:open]), s[open+1 : len(s)-1]
}

// extension returns the steps of exten in context, in order.
func (d *dialplan) extension(context, exten string) []step {
	var out []step
	for _, st := range d.steps {
		if st.context == context && st.exten == exten {
			out = append(out, st)
		}
	}
	return out
}

func TestParseConf(t *testing.T) {
	fsys := fstest.MapFS{
		"main.conf": {Data: []byte(`
; a comment
[base](!)          ; a template
type = endpoint
allow = ulaw

[more](!,base)
allow = alaw

[one](more)
context => from-trunk ; "=>" as "="
note = a\;b
;-- a block comment
[ignored]
  --;
#include extra.conf
#tryinclude missing.conf
[one](+)
after = yes
`)},
		"extra.conf": {Data: []byte("included = yes\n[two]\nx=1\n")},
	}
	c, err := parseConf(fsys, "main.conf")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range c.sections {
		names = append(names, s.name)
	}
	if want := []string{"base", "more", "one", "two"}; !slices.Equal(names, want) {
		t.Fatalf("sections %q, want %q", names, want)
	}
	one := c.first("one")
	if one.template || !slices.Equal(one.bases, []string{"more"}) || !c.first("more").template {
		t.Errorf("[one] template %v bases %q", one.template, one.bases)
	}
	var got []string
	for _, st := range one.settings {
		got = append(got, st.key+"="+st.value)
	}
	// Inherited settings come first, the nearest template's last; the
	// include continues [one]; (+) adds to it.
	want := []string{"type=endpoint", "allow=ulaw", "allow=alaw", "context=from-trunk", "note=a;b", "included=yes", "after=yes"}
	if !slices.Equal(got, want) {
		t.Errorf("[one] settings %q, want %q", got, want)
	}
	if v, _ := one.get("allow"); v != "alaw" {
		t.Errorf("get(allow) = %q, want the last value", v)
	}
	if st := c.first("two").settings[0]; st.file != "extra.conf" || st.line != 3 {
		t.Errorf("x=1 is at %s:%d, want extra.conf:3", st.file, st.line)
	}
}

func TestParseConfErrors(t *testing.T) {
	cases := map[string]struct {
		text string
		want error
		line int
	}{
		"no =":              {"[a]\nb\n", errSyntax, 2},
		"no key":            {"[a]\n= b\n", errSyntax, 2},
		"no section":        {"a = b\n", errSyntax, 1},
		"unnamed section":   {"[]\n", errSyntax, 1},
		"junk after ]":      {"[a] b\n", errSyntax, 1},
		"unknown directive": {"#exec ls\n", errSyntax, 1},
		"undefined base":    {"[a](b)\n", errTemplate, 1},
		"base not template": {"[b]\n[a](b)\n", errTemplate, 2},
		"base below":        {"[a](b)\n[b](!)\n", errTemplate, 1},
		"+ of nothing":      {"[a](+)\n", errTemplate, 1},
		"missing include":   {"[a]\n#include nope.conf\n", errInclude, 2},
		"include loop":      {"[a]\n#include main.conf\n", errInclude, 2},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := parseConf(fstest.MapFS{"main.conf": {Data: []byte(tc.text)}}, "main.conf")
			var ce *confError
			if !errors.Is(err, tc.want) || !errors.As(err, &ce) || ce.line != tc.line {
				t.Fatalf("got %v, want %v at line %d", err, tc.want, tc.line)
			}
		})
	}
}

func TestSplitTop(t *testing.T) {
	cases := []struct {
		in   string
		sep  byte
		want []string
	}{
		{"a,b,c", ',', []string{"a", "b", "c"}},
		{"${EXTEN:1},1", ',', []string{"${EXTEN:1}", "1"}},
		{`ctx,s,1:other,${X:2},1`, ':', []string{"ctx,s,1", "other,${X:2},1"}},
		{`CDR(userfield)="a,b",c`, ',', []string{`CDR(userfield)="a,b"`, "c"}},
		{"sub,s,1(x,y)", ',', []string{"sub", "s", "1(x,y)"}},
		{"", ',', []string{""}},
	}
	for _, tc := range cases {
		if got := splitTop(tc.in, tc.sep); !slices.Equal(got, tc.want) {
			t.Errorf("splitTop(%q, %q) = %q, want %q", tc.in, tc.sep, got, tc.want)
		}
	}
}

func TestReadDialplan(t *testing.T) {
	c, err := parseConf(fstest.MapFS{"extensions.conf": {Data: []byte(`
[general]
static = yes
[ctx]
exten => 1,1,NoOp(x)
 same => n(label),Goto(ctx,1,1)
exten => 1000,hint,PJSIP/1000
exten => 2,1,Hangup
include => other
[other]
`)}}, "extensions.conf")
	if err != nil {
		t.Fatal(err)
	}
	d, err := readDialplan(c)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, st := range d.steps {
		got = append(got, fmt.Sprintf("%s/%s %s(%s)", st.context, st.exten, st.app, st.args))
	}
	want := []string{"ctx/1 NoOp(x)", "ctx/1 Goto(ctx,1,1)", "ctx/2 Hangup()"}
	if !slices.Equal(got, want) {
		t.Errorf("steps %q, want %q", got, want)
	}
	if d.contexts["general"] != nil || d.contexts["other"] == nil || len(d.includes) != 1 {
		t.Errorf("contexts %v includes %v", d.contexts, d.includes)
	}

	for name, text := range map[string]string{
		"same first":     "[ctx]\nsame => n,NoOp()\n",
		"no priority":    "[ctx]\nexten => 1\n",
		"no application": "[ctx]\nexten => 1,1\n",
	} {
		c, err := parseConf(fstest.MapFS{"extensions.conf": {Data: []byte(text)}}, "extensions.conf")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := readDialplan(c); !errors.Is(err, errSyntax) {
			t.Errorf("%s: %v, want errSyntax", name, err)
		}
	}
}
