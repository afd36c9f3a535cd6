// Package fail2bantest reads the fail2ban filters of deploy/fail2ban as Go
// regular expressions, so that tests check the lines hotline logs against
// the filters it ships.
package fail2bantest

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Filter is a filter's failregex lines.
type Filter []*regexp.Regexp

// Load reads deploy/fail2ban/filter.d/<name> of this module and turns its
// failregex lines into Go regexps: <HOST> becomes a named group for an
// IPv4 or IPv6 address, %% (configparser's escaped %) becomes %.
func Load(t testing.TB, name string) Filter {
	t.Helper()
	f, err := os.Open(filepath.Join(moduleRoot(t), "deploy", "fail2ban", "filter.d", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var res Filter
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		var expr string
		switch {
		case strings.HasPrefix(line, "failregex"):
			_, expr, _ = strings.Cut(line, "=")
			in = true
		case in && (strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t")):
			expr = line // a continuation line: one more regex
		default:
			in = false
			continue
		}
		expr = strings.TrimSpace(expr)
		if expr == "" {
			continue
		}
		expr = strings.ReplaceAll(expr, "%%", "%")
		expr = strings.ReplaceAll(expr, "<HOST>", `(?P<host>[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9A-Fa-f:]*:[0-9A-Fa-f:.]+)`)
		re, err := regexp.Compile(expr)
		if err != nil {
			t.Fatalf("%s: failregex %q: %v", name, expr, err)
		}
		res = append(res, re)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(res) == 0 {
		t.Fatalf("no failregex in %s", name)
	}
	return res
}

// Host returns the host the filter finds in line, "" when none matches.
func (f Filter) Host(line string) string {
	for _, re := range f {
		if m := re.FindStringSubmatch(line); m != nil {
			return m[re.SubexpIndex("host")]
		}
	}
	return ""
}

// moduleRoot is the folder of go.mod above the test's working directory.
func moduleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("fail2bantest: no go.mod above the working directory")
		}
		dir = parent
	}
}
