package ban

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/hotline12345/hotline/internal/fail2bantest"
)

// Each service's filter matches the failure lines Fail logs for that
// service and finds the source's address in them, whatever the user name
// holds; it matches no other line: not the other service's failures, not
// bans, lifts, or failures from allowed sources.
func TestFail2banFiltersMatchTheLog(t *testing.T) {
	filters := map[string]fail2bantest.Filter{
		"sip":  fail2bantest.Load(t, "hotline-sip.conf"),
		"http": fail2bantest.Load(t, "hotline-http.conf"),
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
			got := res.Host(line)
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
