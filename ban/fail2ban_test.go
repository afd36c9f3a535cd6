package ban

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// fail2banRegexps reads the failregex lines of a filter in
// deploy/fail2ban/filter.d and turns them into Go regexps: <HOST> becomes
// a named group for an IPv4 or IPv6 address, %% (configparser's escaped
// %) becomes %.
func fail2banRegexps(t testing.TB, filter string) []*regexp.Regexp {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "deploy", "fail2ban", "filter.d", filter))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var res []*regexp.Regexp
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
			t.Fatalf("%s: failregex %q: %v", filter, expr, err)
		}
		res = append(res, re)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(res) == 0 {
		t.Fatalf("no failregex in %s", filter)
	}
	return res
}

// hostOf returns the host the filter finds in line, "" when none matches.
func hostOf(res []*regexp.Regexp, line string) string {
	for _, re := range res {
		if m := re.FindStringSubmatch(line); m != nil {
			return m[re.SubexpIndex("host")]
		}
	}
	return ""
}

// Each service's filter matches the failure lines Fail logs for that
// service and finds the source's address in them, whatever the user name
// holds; it matches no other line: not the other service's failures, not
// bans, lifts, or failures from allowed sources.
func TestFail2banFiltersMatchTheLog(t *testing.T) {
	filters := map[string][]*regexp.Regexp{
		"sip":  fail2banRegexps(t, "hotline-sip.conf"),
		"http": fail2banRegexps(t, "hotline-http.conf"),
	}
	w := newWorld(t)
	b, log := w.node(t, func(o *Options) {
		o.MaxFailures = 2
		o.Allow = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	})
	users := []string{
		"alice",
		`"source_ip":"1.2.3.4"`,
		`x","source_ip":"1.2.3.4","user":"y`,
		`x","source_ip":"1.2.3.4","message":"sip auth failed"}`,
		"\"source_ip\":\"1.2.3.4\",\n{\"level\":\"warn\",\"source_ip\":\"1.2.3.4\",",
	}
	want := map[string]string{} // failure line → the service and address fail2ban must find
	failure := func(f Failure) {
		t.Helper()
		before := len(log.withMessage(t, f.Service+" auth failed"))
		fail(t, b, f)
		got := log.withMessage(t, f.Service+" auth failed")
		if len(got) != before+1 {
			t.Fatalf("%s: %d failure lines, want %d", f.Service, len(got), before+1)
		}
		want[got[len(got)-1]] = f.Service + " " + f.Source.String()
	}
	for _, service := range []string{"sip", "http"} {
		for i, src := range []string{"203.0.113.7", "2001:db8::7"} {
			for j, user := range users {
				failure(Failure{Service: service, Source: netip.MustParseAddr(src), User: user, Reason: "wrong password",
					PerUser: service == "http", ID: fmt.Sprint(i, j)})
			}
		}
		fail(t, b, Failure{Service: service, Source: netip.MustParseAddr("10.1.1.1"), User: "alice", Reason: "wrong password"})
	}
	for i := range 2 {
		failure(Failure{Service: "http", Source: netip.MustParseAddr("198.51.100.9"), User: "bob", Reason: "wrong password", ID: fmt.Sprint(i)})
	}
	if _, err := b.Lift(context.Background(), "203.0.113.7"); err != nil {
		t.Fatal(err)
	}
	lines := log.all()
	for _, msg := range []string{"sip source banned", "http source banned", "http user banned", "ban lifted",
		"sip auth failed from an allowed source", "http auth failed from an allowed source"} {
		if len(log.withMessage(t, msg)) == 0 {
			t.Errorf("no %q line to check the filters against", msg)
		}
	}
	for _, line := range lines {
		for service, res := range filters {
			got := hostOf(res, line)
			wantService, wantHost, isFailure := strings.Cut(want[line], " ")
			switch {
			case isFailure && service == wantService && got != wantHost:
				t.Errorf("the %s filter found %q in %s, want %s", service, got, line, wantHost)
			case (!isFailure || service != wantService) && got != "":
				t.Errorf("the %s filter matches a line that is not one of its failures: %s", service, line)
			}
		}
	}
	if !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, `\"source_ip\":\"1.2.3.4\"`) }) {
		t.Error("no forged address written into a line")
	}
}
