package ban

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/hotline12345/hotline/internal/redistest"
	"github.com/hotline12345/hotline/internal/testclock"
	"github.com/hotline12345/hotline/logging"
)

// --- what the tests share ---

// logLines keeps the JSON lines a logger wrote.
type logLines struct {
	t     testing.TB
	mu    sync.Mutex
	lines []string
}

func (l *logLines) Write(p []byte) (int, error) {
	line := strings.TrimRight(string(p), "\n")
	l.mu.Lock()
	l.lines = append(l.lines, line)
	l.mu.Unlock()
	l.t.Log(line)
	return len(p), nil
}

func (l *logLines) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines)
}

// withMessage returns the lines whose message is msg, as written.
func (l *logLines) withMessage(t testing.TB, msg string) []string {
	t.Helper()
	var out []string
	for _, line := range l.all() {
		var f struct{ Message string }
		if err := json.Unmarshal([]byte(line), &f); err != nil {
			t.Fatalf("log line is not JSON: %v\n%s", err, line)
		}
		if f.Message == msg {
			out = append(out, line)
		}
	}
	return out
}

func TestMain(m *testing.M) { os.Exit(redistest.RunTests(m)) }

// world is what the nodes of a test share: Redis and the clock. redis
// is set when the world has a redis-server of its own (newWorld).
type world struct {
	rdb   redis.UniversalClient
	redis *redistest.Server
	clock *testclock.Clock
}

func newWorld(t testing.TB) *world {
	t.Helper()
	srv := redistest.Start(t)
	w := newWorldOn(t, srv.Client(t))
	w.redis = srv
	return w
}

func newWorldOn(t testing.TB, rdb redis.UniversalClient) *world {
	t.Helper()
	return &world{rdb: rdb, clock: testclock.New(time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC))}
}

// node is one hotline node's Bans on the world's Redis, logging with the
// production logger (so the lines are those fail2ban reads); tune adjusts
// the options first.
func (w *world) node(t testing.TB, tune func(*Options)) (*Bans, *logLines) {
	t.Helper()
	lines := &logLines{t: t}
	logger, err := logging.New(logging.Options{Level: "info", Format: "json", Out: lines})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Redis: w.rdb, Logger: logger, Now: w.clock.Now}
	if tune != nil {
		tune(&opts)
	}
	b, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return b, lines
}

var failureSeq struct {
	mu sync.Mutex
	n  int
}

// sipFailure is a wrong password for alice from src, with an ID of its
// own.
func sipFailure(src string) Failure {
	failureSeq.mu.Lock()
	failureSeq.n++
	n := failureSeq.n
	failureSeq.mu.Unlock()
	return Failure{Service: "sip", Source: netip.MustParseAddr(src), User: "alice", Reason: "wrong response", ID: fmt.Sprintf("call-%d", n)}
}

func fail(t testing.TB, b *Bans, f Failure) {
	t.Helper()
	if err := b.Fail(context.Background(), f); err != nil {
		t.Fatalf("Fail %+v: %v", f, err)
	}
}

func failTimes(t testing.TB, b *Bans, n int, f func() Failure) {
	t.Helper()
	for range n {
		fail(t, b, f())
	}
}

// isBanned asks b about src (and user of service, when not "").
func isBanned(t testing.TB, b *Bans, src, service, user string) (time.Time, bool) {
	t.Helper()
	until, banned, err := b.Banned(context.Background(), netip.MustParseAddr(src), service, user)
	if err != nil {
		t.Fatalf("Banned %s %s %s: %v", src, service, user, err)
	}
	return until, banned
}

func wantBanned(t testing.TB, b *Bans, src, service, user string, want bool) time.Time {
	t.Helper()
	until, banned := isBanned(t, b, src, service, user)
	if banned != want {
		t.Fatalf("Banned(%s, %s, %q) = %v until %s, want %v", src, service, user, banned, until, want)
	}
	return until
}

func sameBan(a, b Ban) bool {
	return a.Subject == b.Subject && a.Service == b.Service && a.Since.Equal(b.Since) && a.Until.Equal(b.Until) && a.Failures == b.Failures
}

func list(t testing.TB, b *Bans) []Ban {
	t.Helper()
	bans, err := b.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return bans
}

// --- counting and banning ---

// MaxFailures failures within the window ban the source, for every
// service, until Duration has passed; the ban is logged once, and the
// failures in the line fail2ban reads.
func TestThresholdBansTheSource(t *testing.T) {
	redistest.Backends(t, testThresholdBansTheSource)
}

func testThresholdBansTheSource(t *testing.T, rdb redis.UniversalClient) {
	w := newWorldOn(t, rdb)
	b, log := w.node(t, nil)
	src := func() Failure { return sipFailure("203.0.113.9") }
	failTimes(t, b, 4, src)
	wantBanned(t, b, "203.0.113.9", "sip", "", false)
	if len(list(t, b)) != 0 {
		t.Fatal("a ban after 4 failures")
	}
	w.clock.Add(10 * time.Second)
	fail(t, b, src())
	until := wantBanned(t, b, "203.0.113.9", "sip", "", true)
	if want := w.clock.Now().Add(10 * time.Minute); !until.Equal(want) {
		t.Errorf("banned until %s, want %s", until, want)
	}
	// An address that attacked SIP is refused by HTTP too, whoever it
	// says it is.
	wantBanned(t, b, "203.0.113.9", "http", "alice", true)
	wantBanned(t, b, "203.0.113.10", "sip", "", false)

	if got := log.withMessage(t, "sip auth failed"); len(got) != 5 {
		t.Errorf("%d failure lines, want 5", len(got))
	}
	lines := log.withMessage(t, "sip source banned")
	if len(lines) != 1 {
		t.Fatalf("%d ban lines, want 1: %v", len(lines), lines)
	}
	var line struct {
		Subject, Service string
		Failures         int
		Until            time.Time
	}
	if err := json.Unmarshal([]byte(lines[0]), &line); err != nil {
		t.Fatal(err)
	}
	if line.Subject != "203.0.113.9" || line.Service != "sip" || line.Failures != 5 || !line.Until.Equal(until) {
		t.Errorf("ban line %s", lines[0])
	}
	got := list(t, b)
	want := []Ban{{Subject: "203.0.113.9", Service: "sip", Since: w.clock.Now(), Until: until, Failures: 5}}
	if !slices.EqualFunc(got, want, sameBan) {
		t.Errorf("List %+v, want %+v", got, want)
	}

	// A banned source's failures (if a caller reports any) count for
	// nothing: no second ban, no longer one.
	failTimes(t, b, 5, src)
	if len(log.withMessage(t, "sip source banned")) != 1 {
		t.Error("a banned source was banned again")
	}

	w.clock.Add(10*time.Minute - time.Millisecond)
	wantBanned(t, b, "203.0.113.9", "sip", "", true)
	w.clock.Add(time.Millisecond)
	wantBanned(t, b, "203.0.113.9", "sip", "", false)
	if got := list(t, b); len(got) != 0 {
		t.Errorf("List after the end: %+v", got)
	}
	// The count starts again from nothing.
	failTimes(t, b, 4, src)
	wantBanned(t, b, "203.0.113.9", "sip", "", false)
}

// Failures spread wider than the window do not add up to a ban.
func TestWindowSlides(t *testing.T) {
	redistest.Backends(t, testWindowSlides)
}

func testWindowSlides(t *testing.T, rdb redis.UniversalClient) {
	w := newWorldOn(t, rdb)
	b, log := w.node(t, func(o *Options) { o.MaxFailures = 3; o.Window = time.Minute })
	for range 6 {
		fail(t, b, sipFailure("198.51.100.4"))
		w.clock.Add(31 * time.Second)
	}
	wantBanned(t, b, "198.51.100.4", "sip", "", false)
	if got := log.withMessage(t, "sip source banned"); len(got) != 0 {
		t.Fatalf("banned for failures 31 s apart with 3 in a minute needed: %v", got)
	}
	// Three within the minute do.
	w.clock.Add(time.Hour)
	for range 3 {
		fail(t, b, sipFailure("198.51.100.4"))
		w.clock.Add(29 * time.Second)
	}
	wantBanned(t, b, "198.51.100.4", "sip", "", true)
}

// Networks on the allow-list are never banned: their failures are logged,
// not in the line fail2ban reads, and not counted; a ban made before the
// network was listed is not enforced.
func TestAllowListNeverBanned(t *testing.T) {
	redistest.Backends(t, testAllowListNeverBanned)
}

func testAllowListNeverBanned(t *testing.T, rdb redis.UniversalClient) {
	w := newWorldOn(t, rdb)
	plain, _ := w.node(t, func(o *Options) { o.MaxFailures = 2 })
	failTimes(t, plain, 2, func() Failure { return sipFailure("10.1.2.3") })
	wantBanned(t, plain, "10.1.2.3", "sip", "", true)

	b, log := w.node(t, func(o *Options) {
		o.MaxFailures = 2
		o.Allow = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"),
			netip.MustParsePrefix("::ffff:198.51.100.0/120")}
	})
	wantBanned(t, b, "10.1.2.3", "sip", "", false)
	for _, src := range []string{"10.9.9.9", "::ffff:10.9.9.9", "192.0.2.7", "198.51.100.77"} {
		f := func() Failure { f := sipFailure(src); f.PerUser = true; return f }
		failTimes(t, b, 20, f)
		wantBanned(t, b, src, "sip", "alice", false)
	}
	if got := log.withMessage(t, "sip auth failed"); len(got) != 0 {
		t.Errorf("allowed sources' failures in the line fail2ban reads: %v", got)
	}
	if got := log.withMessage(t, "sip auth failed from an allowed source"); len(got) != 80 {
		t.Errorf("%d lines for allowed sources' failures, want 80", len(got))
	}
	// A source next to the allowed ones is counted as any.
	failTimes(t, b, 2, func() Failure { return sipFailure("192.0.2.8") })
	wantBanned(t, b, "192.0.2.8", "sip", "", true)
}

// With PerUser, failures count against the user of the service too: a
// password guessed at from many sources bans the user (of that service
// only), while each source stays under the limit.
func TestPerUserBans(t *testing.T) {
	redistest.Backends(t, testPerUserBans)
}

func testPerUserBans(t *testing.T, rdb redis.UniversalClient) {
	w := newWorldOn(t, rdb)
	b, log := w.node(t, nil)
	for i := range 5 {
		f := Failure{Service: "http", Source: netip.MustParseAddr(fmt.Sprintf("203.0.113.%d", i+1)), User: "alice",
			PerUser: true, Reason: "wrong password", ID: fmt.Sprintf("login-%d", i)}
		fail(t, b, f)
	}
	until := wantBanned(t, b, "198.51.100.1", "http", "alice", true)
	if want := w.clock.Now().Add(10 * time.Minute); !until.Equal(want) {
		t.Errorf("until %s, want %s", until, want)
	}
	wantBanned(t, b, "198.51.100.1", "http", "bob", false)
	wantBanned(t, b, "198.51.100.1", "sip", "alice", false)
	wantBanned(t, b, "203.0.113.1", "http", "", false)
	lines := log.withMessage(t, "http user banned")
	if len(lines) != 1 || !strings.Contains(lines[0], `"subject":"user:http:alice"`) || !strings.Contains(lines[0], `"user":"alice"`) {
		t.Errorf("user ban lines %v", lines)
	}
	if got := list(t, b); len(got) != 1 || got[0].Subject != "user:http:alice" || got[0].Service != "http" || got[0].Failures != 5 {
		t.Errorf("List %+v", got)
	}

	// Without PerUser, or for an unknown user, the user is not counted.
	for i := range 10 {
		fail(t, b, Failure{Service: "http", Source: netip.MustParseAddr(fmt.Sprintf("198.51.100.%d", i+1)), User: "bob",
			Reason: "wrong password", ID: fmt.Sprintf("bob-%d", i)})
		fail(t, b, Failure{Service: "http", Source: netip.MustParseAddr(fmt.Sprintf("192.0.2.%d", i+1)), User: "carol",
			PerUser: true, UnknownUser: true, Reason: "unknown user", ID: fmt.Sprintf("carol-%d", i)})
	}
	wantBanned(t, b, "198.51.100.200", "http", "bob", false)
	wantBanned(t, b, "198.51.100.200", "http", "carol", false)
}

// A phone set up before its agent exists retries one unknown name: that
// counts once per window, and never bans. Guessing names does.
func TestUnknownUserCountsOncePerName(t *testing.T) {
	redistest.Backends(t, testUnknownUserCountsOncePerName)
}

func testUnknownUserCountsOncePerName(t *testing.T, rdb redis.UniversalClient) {
	w := newWorldOn(t, rdb)
	b, log := w.node(t, nil)
	unknown := func(src, user string) Failure {
		f := sipFailure(src)
		f.User, f.UnknownUser, f.Reason = user, true, "unknown user"
		return f
	}
	for range 50 {
		fail(t, b, unknown("192.0.2.50", "1001"))
		w.clock.Add(5 * time.Second)
	}
	wantBanned(t, b, "192.0.2.50", "sip", "", false)
	if got := log.withMessage(t, "sip auth failed"); len(got) != 50 {
		t.Errorf("%d failure lines, want every one of the 50", len(got))
	}
	// Its wrong password for an agent that exists counts as any.
	failTimes(t, b, 3, func() Failure { return sipFailure("192.0.2.50") })
	wantBanned(t, b, "192.0.2.50", "sip", "", false)

	for i := range 5 {
		fail(t, b, unknown("192.0.2.66", fmt.Sprintf("10%02d", i)))
	}
	wantBanned(t, b, "192.0.2.66", "sip", "", true)
}

// A failure counts once by its ID, however often it is reported.
func TestFailureCountsOncePerID(t *testing.T) {
	redistest.Backends(t, testFailureCountsOncePerID)
}

func testFailureCountsOncePerID(t *testing.T, rdb redis.UniversalClient) {
	w := newWorldOn(t, rdb)
	b, _ := w.node(t, func(o *Options) { o.MaxFailures = 2 })
	f := sipFailure("203.0.113.30")
	failTimes(t, b, 10, func() Failure { return f })
	wantBanned(t, b, "203.0.113.30", "sip", "", false)
	fail(t, b, sipFailure("203.0.113.30"))
	wantBanned(t, b, "203.0.113.30", "sip", "", true)
}

// The scripts sent again with the same arguments, as go-redis does after
// a read timeout, change nothing more and answer the same: the failure
// that made a ban reports it again, so the one line is still logged.
func TestScriptsAnswerTheSameWhenSentAgain(t *testing.T) {
	redistest.Backends(t, testScriptsAnswerTheSameWhenSentAgain)
}

func testScriptsAnswerTheSameWhenSentAgain(t *testing.T, rdb redis.UniversalClient) {
	w := newWorldOn(t, rdb)
	b, _ := w.node(t, func(o *Options) { o.MaxFailures = 1 })
	ctx := context.Background()
	s := "203.0.113.31"
	ks := []string{b.keys.window(s), b.keys.ban(s), b.keys.index(KindSource)}
	args := []any{w.clock.Now().UnixMilli(), int64(60000), 1, int64(600000), "token-1", "sip", s, "id:x"}
	first, err := failScript.Run(ctx, rdb, ks, args...).Int64Slice()
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := rdb.HGetAll(ctx, b.keys.ban(s)).Result()
	again, err := failScript.Run(ctx, rdb, ks, args...).Int64Slice()
	if err != nil {
		t.Fatal(err)
	}
	if first[0] == 0 || !slices.Equal(first, again) {
		t.Errorf("first run %v, again %v", first, again)
	}
	if after, _ := rdb.HGetAll(ctx, b.keys.ban(s)).Result(); fmt.Sprint(after) != fmt.Sprint(stored) {
		t.Errorf("the ban changed: %v, then %v", stored, after)
	}
	// Another call with the same failure ID is no retry: it does not
	// report the ban as its own.
	args[4] = "token-2"
	if other, err := failScript.Run(ctx, rdb, ks, args...).Int64Slice(); err != nil || other[0] != 0 {
		t.Errorf("another call: %v %v, want no ban made", other, err)
	}

	lks := []string{b.keys.window(s), b.keys.ban(s), b.keys.index(KindSource), b.keys.lifted(s)}
	lifted, err := liftScript.Run(ctx, rdb, lks, s, "lift-1", 60000).StringSlice()
	if err != nil || len(lifted) == 0 {
		t.Fatalf("lift: %v %v", lifted, err)
	}
	liftedAgain, err := liftScript.Run(ctx, rdb, lks, s, "lift-1", 60000).StringSlice()
	if err != nil {
		t.Fatal(err)
	}
	ban1, ok1 := banOf(s, pairs(lifted))
	ban2, ok2 := banOf(s, pairs(liftedAgain))
	if !ok1 || !ok2 || !sameBan(ban1, ban2) {
		t.Errorf("lift %+v, sent again %+v", ban1, ban2)
	}
	if other, err := liftScript.Run(ctx, rdb, lks, s, "lift-2", 60000).StringSlice(); err != nil || len(other) != 0 {
		t.Errorf("a second Lift: %v %v, want nothing lifted", other, err)
	}
}

func pairs(vals []string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(vals); i += 2 {
		m[vals[i]] = vals[i+1]
	}
	return m
}

// --- lifting and listing ---

// Lift ends a ban at once on its node, and on another node sharing Redis
// within Remember; it clears the failure window, and a subject not banned
// is ErrNotFound.
func TestLift(t *testing.T) {
	redistest.Backends(t, testLift)
}

func testLift(t *testing.T, rdb redis.UniversalClient) {
	w := newWorldOn(t, rdb)
	a, log := w.node(t, nil)
	b, _ := w.node(t, nil)
	failTimes(t, a, 5, func() Failure { return sipFailure("203.0.113.40") })
	until := wantBanned(t, b, "203.0.113.40", "sip", "", true)
	since := w.clock.Now()
	w.clock.Add(time.Second)

	got, err := a.Lift(context.Background(), "203.0.113.40")
	if err != nil {
		t.Fatal(err)
	}
	if want := (Ban{Subject: "203.0.113.40", Service: "sip", Since: since, Until: until, Failures: 5}); !sameBan(got, want) {
		t.Errorf("Lift = %+v, want %+v", got, want)
	}
	wantBanned(t, a, "203.0.113.40", "sip", "", false)
	if len(list(t, a)) != 0 {
		t.Error("listed after the lift")
	}
	if len(log.withMessage(t, "ban lifted")) != 1 {
		t.Error("the lift was not logged")
	}
	// b remembers the ban it saw for a moment, no longer.
	wantBanned(t, b, "203.0.113.40", "sip", "", true)
	w.clock.Add(time.Second)
	wantBanned(t, b, "203.0.113.40", "sip", "", false)

	if _, err := a.Lift(context.Background(), "203.0.113.40"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a second Lift: %v, want ErrNotFound", err)
	}
	if _, err := a.Lift(context.Background(), "not an address"); !errors.Is(err, ErrInvalid) {
		t.Errorf("Lift of garbage: %v, want ErrInvalid", err)
	}

	// The window goes too: four failures, a Lift (of nothing banned), and
	// four more do not ban.
	failTimes(t, a, 4, func() Failure { return sipFailure("203.0.113.41") })
	if _, err := a.Lift(context.Background(), "203.0.113.41"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Lift of a source not banned: %v, want ErrNotFound", err)
	}
	failTimes(t, a, 4, func() Failure { return sipFailure("203.0.113.41") })
	wantBanned(t, a, "203.0.113.41", "sip", "", false)

	// A user's ban is lifted by its subject.
	for i := range 5 {
		fail(t, a, Failure{Service: "http", Source: netip.MustParseAddr(fmt.Sprintf("192.0.2.%d", i+1)), User: "alice",
			PerUser: true, ID: fmt.Sprint(i)})
	}
	wantBanned(t, b, "192.0.2.99", "http", "alice", true)
	if _, err := a.Lift(context.Background(), UserSubject("http", "alice")); err != nil {
		t.Fatal(err)
	}
	w.clock.Add(2 * time.Second)
	wantBanned(t, b, "192.0.2.99", "http", "alice", false)
}

// List shows the bans in force, soonest end first, sources and users
// alike.
func TestListOrder(t *testing.T) {
	redistest.Backends(t, testListOrder)
}

func testListOrder(t *testing.T, rdb redis.UniversalClient) {
	w := newWorldOn(t, rdb)
	b, _ := w.node(t, func(o *Options) { o.MaxFailures = 1 })
	start := w.clock.Now()
	for _, src := range []string{"203.0.113.3", "2001:db8:aa:bb::9", "203.0.113.1"} {
		fail(t, b, sipFailure(src))
		w.clock.Add(time.Minute)
	}
	fail(t, b, Failure{Service: "http", Source: netip.MustParseAddr("10.0.0.1"), User: "bob", PerUser: true, ID: "x"})
	var got []string
	for _, ban := range list(t, b) {
		got = append(got, fmt.Sprintf("%s %s %s", ban.Subject, ban.Service, ban.Until.Sub(start)))
	}
	want := []string{
		"203.0.113.3 sip 10m0s",
		"2001:db8:aa:bb::/64 sip 11m0s",
		"203.0.113.1 sip 12m0s",
		"10.0.0.1 http 13m0s",
		"user:http:bob http 13m0s",
	}
	if !slices.Equal(got, want) {
		t.Errorf("List\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	w.clock.Add(8 * time.Minute) // past the first two
	if got := list(t, b); len(got) != 3 || got[0].Subject != "203.0.113.1" {
		t.Errorf("List later %+v", got)
	}
}

// --- subjects ---

// An IPv6 source is counted and banned by its /64, where one host picks
// its addresses; an IPv4-mapped address is its IPv4 address.
func TestIPv6BySlash64(t *testing.T) {
	redistest.Backends(t, testIPv6BySlash64)
}

func testIPv6BySlash64(t *testing.T, rdb redis.UniversalClient) {
	w := newWorldOn(t, rdb)
	b, log := w.node(t, nil)
	for i := range 5 {
		fail(t, b, sipFailure(fmt.Sprintf("2001:db8:1:2::%x", i+1)))
	}
	wantBanned(t, b, "2001:db8:1:2:ffff:ffff:ffff:ffff", "sip", "", true)
	wantBanned(t, b, "2001:db8:1:3::1", "sip", "", false)
	if l := log.withMessage(t, "sip source banned"); len(l) != 1 || !strings.Contains(l[0], `"subject":"2001:db8:1:2::/64"`) {
		t.Errorf("ban lines %v", l)
	}
	// The failure lines name the address itself, which fail2ban bans.
	if l := log.withMessage(t, "sip auth failed"); len(l) != 5 || !strings.Contains(l[4], `"source_ip":"2001:db8:1:2::5"`) {
		t.Errorf("failure lines %v", l)
	}

	for range 4 {
		fail(t, b, sipFailure("::ffff:192.0.2.9"))
	}
	fail(t, b, sipFailure("192.0.2.9"))
	wantBanned(t, b, "192.0.2.9", "sip", "", true)
	wantBanned(t, b, "::ffff:192.0.2.9", "sip", "", true)
	if l := log.withMessage(t, "sip auth failed"); !strings.Contains(l[5], `"source_ip":"192.0.2.9"`) {
		t.Errorf("a mapped address logged as %s", l[5])
	}
}

func TestSubjects(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"203.0.113.9", "203.0.113.9"},
		{"::ffff:203.0.113.9", "203.0.113.9"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"::1", "::/64"},
	} {
		if got := SourceSubject(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("SourceSubject(%s) = %s, want %s", tc.addr, got, tc.want)
		}
	}
	if got := UserSubject("http", "alice"); got != "user:http:alice" {
		t.Errorf("UserSubject = %s", got)
	}
	for in, want := range map[string]string{
		"203.0.113.9":          "203.0.113.9",
		"203.0.113.9/32":       "203.0.113.9",
		"::ffff:203.0.113.9":   "203.0.113.9",
		"2001:db8:1:2::/64":    "2001:db8:1:2::/64",
		"2001:db8:1:2::77/64":  "2001:db8:1:2::/64",
		"2001:db8:1:2::77":     "2001:db8:1:2::/64",
		"user:http:alice":      "user:http:alice",
		"user:sip:a:b":         "user:sip:a:b",
		"::ffff:192.0.2.0/128": "192.0.2.0",
	} {
		if got, err := ParseSubject(in); err != nil || got != want {
			t.Errorf("ParseSubject(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "garbage", "203.0.113.0/24", "2001:db8::/48", "2001:db8::/128", "user:", "user:http",
		"user:http:", "user::alice", "user:HTTP:alice", "::ffff:0.0.0.0/64", "203.0.113.9:5060"} {
		if got, err := ParseSubject(in); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseSubject(%q) = %q, %v; want ErrInvalid", in, got, err)
		}
	}
}

func TestInvalidFailureAndOptions(t *testing.T) {
	redistest.Backends(t, testInvalidFailureAndOptions)
}

func testInvalidFailureAndOptions(t *testing.T, rdb redis.UniversalClient) {
	w := newWorldOn(t, rdb)
	b, _ := w.node(t, nil)
	for _, f := range []Failure{
		{Service: "sip"},
		{Service: "", Source: netip.MustParseAddr("192.0.2.1")},
		{Service: "SIP", Source: netip.MustParseAddr("192.0.2.1")},
		{Service: "s:p", Source: netip.MustParseAddr("192.0.2.1")},
	} {
		if err := b.Fail(context.Background(), f); !errors.Is(err, ErrInvalid) {
			t.Errorf("Fail %+v: %v, want ErrInvalid", f, err)
		}
	}
	if _, _, err := b.Banned(context.Background(), netip.Addr{}, "sip", ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("Banned of no address: %v", err)
	}
	for name, o := range map[string]Options{
		"no redis":          {},
		"negative window":   {Redis: rdb, Window: -time.Second},
		"negative max":      {Redis: rdb, MaxFailures: -1},
		"invalid network":   {Redis: rdb, Allow: []netip.Prefix{{}}},
		"negative remember": {Redis: rdb, Remember: -1},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// --- several nodes ---

// Two nodes on one Redis count a source's failures together; the ban is
// logged once, by the node whose failure made it, even when failures
// arrive at both at once.
func TestTwoNodesCountTogether(t *testing.T) {
	redistest.Backends(t, testTwoNodesCountTogether)
}

func testTwoNodesCountTogether(t *testing.T, rdb redis.UniversalClient) {
	w := newWorldOn(t, rdb)
	a, logA := w.node(t, nil)
	b, logB := w.node(t, nil)
	for i := range 5 {
		fail(t, []*Bans{a, b}[i%2], sipFailure("203.0.113.50"))
	}
	wantBanned(t, a, "203.0.113.50", "sip", "", true)
	wantBanned(t, b, "203.0.113.50", "sip", "", true)
	if na, nb := len(logA.withMessage(t, "sip source banned")), len(logB.withMessage(t, "sip source banned")); na+nb != 1 || na != 1 {
		t.Errorf("ban lines: %d on a, %d on b; want the one on a, whose failure was the fifth", na, nb)
	}

	before := len(logA.withMessage(t, "sip source banned")) + len(logB.withMessage(t, "sip source banned"))
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := sipFailure("203.0.113.51")
			if err := []*Bans{a, b}[i%2].Fail(context.Background(), f); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	after := len(logA.withMessage(t, "sip source banned")) + len(logB.withMessage(t, "sip source banned"))
	if after-before != 1 {
		t.Errorf("%d ban lines for 40 failures at once on two nodes, want 1", after-before)
	}
	if got := list(t, a); len(got) != 2 || got[1].Subject != "203.0.113.51" || got[1].Failures != 5 {
		t.Errorf("List %+v", got)
	}
}

// --- what stays in memory and in Redis ---

// The bans remembered are bounded, and a remembered ban is enforced
// without Redis.
func TestMemoryIsBoundedAndSparesRedis(t *testing.T) {
	w := newWorld(t)
	// A client that gives up at once when Redis is gone.
	rdb := redis.NewClient(&redis.Options{Network: "unix", Addr: w.redis.Socket(), MaxRetries: -1,
		DialerRetries: 1, DialerRetryTimeout: time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	b, _ := w.node(t, func(o *Options) { o.Redis = rdb; o.MaxFailures = 1; o.MaxRemembered = 3 })
	for i := range 10 {
		src := fmt.Sprintf("203.0.113.%d", 100+i)
		fail(t, b, sipFailure(src))
		wantBanned(t, b, src, "sip", "", true)
		if n := b.memory.size(); n > 3 {
			t.Fatalf("%d bans remembered, want at most 3", n)
		}
	}
	w.redis.Kill(t)
	wantBanned(t, b, "203.0.113.109", "sip", "", true)
	if _, _, err := b.Banned(context.Background(), netip.MustParseAddr("203.0.113.200"), "sip", ""); err == nil {
		t.Error("a source not remembered was answered without Redis")
	}
	w.clock.Add(2 * time.Second)
	if _, _, err := b.Banned(context.Background(), netip.MustParseAddr("203.0.113.109"), "sip", ""); err == nil {
		t.Error("a ban was trusted past Remember without Redis")
	}
	w.redis.Start(t)
}

func TestMemory(t *testing.T) {
	now := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	m := newMemory(2*time.Second, 2)
	m.put("a", now.Add(time.Second), now)
	m.put("b", now.Add(time.Hour), now)
	if u, ok := m.get("a", now.Add(999*time.Millisecond)); !ok || !u.Equal(now.Add(time.Second)) {
		t.Errorf("a before its end: %s %v", u, ok)
	}
	if _, ok := m.get("a", now.Add(time.Second)); ok {
		t.Error("a remembered past its end")
	}
	if _, ok := m.get("b", now.Add(2*time.Second)); ok {
		t.Error("b remembered past keep")
	}
	m.put("c", now.Add(time.Hour), now)
	m.put("d", now.Add(time.Hour), now)
	m.put("e", now.Add(time.Hour), now)
	if m.size() != 2 {
		t.Errorf("%d remembered, want 2", m.size())
	}
	if _, ok := m.get("e", now); !ok {
		t.Error("the newest ban was not kept")
	}
	m.put("f", now, now) // ended already
	if _, ok := m.get("f", now); ok {
		t.Error("an ended ban remembered")
	}
}

// Every key is under <prefix>:{ban}: (one Cluster slot, as the scripts
// need) and expires: nothing a peer sends stays for good.
func TestKeysShareOneHashTagAndExpire(t *testing.T) {
	redistest.Backends(t, testKeysShareOneHashTagAndExpire)
}

func testKeysShareOneHashTagAndExpire(t *testing.T, rdb redis.UniversalClient) {
	w := newWorldOn(t, rdb)
	b, _ := w.node(t, func(o *Options) { o.Prefix = "hl" })
	failTimes(t, b, 5, func() Failure { return sipFailure("203.0.113.60") })
	failTimes(t, b, 2, func() Failure { return sipFailure("203.0.113.61") })
	for i := range 5 {
		fail(t, b, Failure{Service: "http", Source: netip.MustParseAddr("2001:db8::1"), User: "alice", PerUser: true, ID: fmt.Sprint(i)})
	}
	fail(t, b, Failure{Service: "sip", Source: netip.MustParseAddr("203.0.113.62"), User: strings.Repeat("x", 5000), UnknownUser: true})
	if _, err := b.Lift(context.Background(), "user:http:alice"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	keys := redistest.Keys(t, rdb, "*")
	want := []string{
		"hl:{ban}:ban:2001:db8::/64", "hl:{ban}:ban:203.0.113.60",
		"hl:{ban}:fail:203.0.113.61", "hl:{ban}:fail:203.0.113.62",
		// index:user went with its last ban.
		"hl:{ban}:index:source", "hl:{ban}:lifted:user:http:alice",
	}
	if !slices.Equal(keys, want) {
		t.Errorf("keys\n%s\nwant\n%s", strings.Join(keys, "\n"), strings.Join(want, "\n"))
	}
	for _, k := range keys {
		if ttl, err := rdb.PTTL(ctx, k).Result(); err != nil || ttl <= 0 {
			t.Errorf("%s: TTL %s %v, want one", k, ttl, err)
		}
	}
	members, _ := rdb.ZRange(ctx, "hl:{ban}:fail:203.0.113.62", 0, -1).Result()
	if len(members) != 1 || len(members[0]) > maxMember {
		t.Errorf("a long name stored as %d bytes", len(members[0]))
	}
}

// --- metrics ---

// gather returns the collector's samples as "name{label=value,...}" to
// value; a pedantic registry checks Describe and Collect agree.
func gather(t testing.TB, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			var labels []string
			for _, l := range m.Label {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			out[mf.GetName()+"{"+strings.Join(labels, ",")+"}"] = value(m)
		}
	}
	return out
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return 0
}

func TestMetrics(t *testing.T) {
	redistest.Backends(t, testMetrics)
}

func testMetrics(t *testing.T, rdb redis.UniversalClient) {
	w := newWorldOn(t, rdb)
	a, _ := w.node(t, nil)
	b, _ := w.node(t, nil)
	failTimes(t, a, 5, func() Failure { return sipFailure("203.0.113.70") })
	fail(t, a, Failure{Service: "http", Source: netip.MustParseAddr("10.0.0.1"), User: "x", UnknownUser: true})
	for i := range 5 {
		fail(t, b, Failure{Service: "http", Source: netip.MustParseAddr(fmt.Sprintf("192.0.2.%d", i+1)), User: "alice", PerUser: true, ID: fmt.Sprint(i)})
	}
	gotA, gotB := gather(t, a), gather(t, b)
	wantA := map[string]float64{
		"hotline_auth_failures_total{service=http}":   1,
		"hotline_auth_failures_total{service=sip}":    5,
		"hotline_bans_total{kind=source,service=sip}": 1,
		"hotline_bans_active{kind=source}":            1,
		"hotline_bans_active{kind=user}":              1,
	}
	wantB := map[string]float64{
		"hotline_auth_failures_total{service=http}":  5,
		"hotline_bans_total{kind=user,service=http}": 1,
		"hotline_bans_active{kind=source}":           1,
		"hotline_bans_active{kind=user}":             1,
	}
	if fmt.Sprint(gotA) != fmt.Sprint(wantA) {
		t.Errorf("node a: %v\nwant %v", gotA, wantA)
	}
	if fmt.Sprint(gotB) != fmt.Sprint(wantB) {
		t.Errorf("node b: %v\nwant %v", gotB, wantB)
	}
	w.clock.Add(10 * time.Minute)
	if got := gather(t, a); got["hotline_bans_active{kind=source}"] != 0 || got["hotline_bans_active{kind=user}"] != 0 {
		t.Errorf("bans in force after their end: %v", got)
	}
}
