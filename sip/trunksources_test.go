package sip

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/calllog"
)

var (
	carrierA    = netip.MustParsePrefix("127.0.1.0/24") // carrier-a's sources
	carrierAIP  = netip.MustParseAddr("127.0.1.7")
	carrierBIP  = netip.MustParseAddr("127.0.2.7") // what carrier-b's host resolves to
	carrierBIP2 = netip.MustParseAddr("127.0.2.8") // and, later, to
	stranger    = netip.MustParseAddr("127.0.0.9")
)

// hosts is a Resolver of a test's, whose answers the test changes.
type hosts struct {
	mu    sync.Mutex
	addrs map[string][]netip.Addr
}

func (h *hosts) set(host string, addrs ...netip.Addr) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.addrs[host] = addrs
}

var errNoSuchHost = errors.New("no such host")

func (h *hosts) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	a, ok := h.addrs[host]
	if !ok {
		return nil, errNoSuchHost
	}
	return append([]netip.Addr(nil), a...), nil
}

// inboundServer starts a server taking 12345 with two trunks: carrier-a
// known by its network and bringing in 02512345, carrier-b by its host's
// addresses and bringing in +86-10-5555. Unknown sources are refused when
// refuseUnknown says so.
func inboundServer(t *testing.T, refuseUnknown bool, tune func(*Options)) (*testServer, *hosts, *logLines) {
	t.Helper()
	dns := &hosts{addrs: map[string][]netip.Addr{"sip.carrier-b.example": {carrierBIP}}}
	lines := &logLines{tl: newTestLog(t)}
	ts := startServer(t, func(o *Options, _ *callee) {
		o.Logger = zerolog.New(lines).Level(zerolog.InfoLevel)
		o.Numbers = []string{"12345"}
		o.Trunks = []Trunk{
			{Name: "carrier-a", Sources: []netip.Prefix{carrierA}, Numbers: []string{"02512345"}},
			{Name: "carrier-b", Host: "sip.carrier-b.example", Numbers: []string{"+86-10-5555"}},
		}
		o.RefuseUnknownSources = refuseUnknown
		o.Resolver = dns
		if tune != nil {
			tune(o)
		}
	})
	return ts, dns, lines
}

// inviteFrom sends an INVITE to uri from a raw peer on from, and returns
// the peer and the final response, acknowledged.
func inviteFrom(t *testing.T, ts *testServer, from netip.Addr, uri string) (*rawPeer, *sip.Response) {
	t.Helper()
	raw := rawPeerFrom(t, from, ts.Addr())
	req := newRawRequest("INVITE", "UDP", raw.addr(), ts.Addr())
	req.lines[0] = "INVITE " + uri + " SIP/2.0"
	req.set("Content-Type", "Content-Type: application/sdp")
	req.body = string(offerSDP(newRTPPeer(t).port()))
	return raw, raw.invite(req)
}

// answeredFrom places a call from from to uri, which must be answered and
// reach the handler; it hangs up and returns the call's record as the
// call describes it.
func answeredFrom(t *testing.T, ts *testServer, from netip.Addr, uri string) calllog.Record {
	t.Helper()
	raw, res := inviteFrom(t, ts, from, uri)
	if res.StatusCode != sip.StatusOK {
		t.Fatalf("a call from %s to %s: %d %s, want 200", from, uri, res.StatusCode, res.Reason)
	}
	sc := ts.nextCall(t)
	if err := recv(t, sc.answered, "answer"); err != nil {
		t.Fatal(err)
	}
	var rec calllog.Record
	sc.call.Describe(&rec)
	if res := raw.bye(); res.StatusCode != sip.StatusOK {
		t.Errorf("BYE: %d", res.StatusCode)
	}
	sc.endCause(t)
	return rec
}

// refusedFrom sends an INVITE from from to uri, which must get code and
// reach no handler.
func refusedFrom(t *testing.T, ts *testServer, from netip.Addr, uri string, code int) *sip.Response {
	t.Helper()
	_, res := inviteFrom(t, ts, from, uri)
	if res.StatusCode != code {
		t.Fatalf("a call from %s to %s: %d %s, want %d", from, uri, res.StatusCode, res.Reason, code)
	}
	noCallAtHandler(t, ts)
	// A call answered before this one leaves the count once its
	// goroutine is done, a moment after its end cause: the refused call
	// must never be in it.
	deadline := time.Now().Add(5 * time.Second)
	for n := ts.ActiveCalls(); n != 0; n = ts.ActiveCalls() {
		if time.Now().After(deadline) {
			t.Errorf("%d calls active", n)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return res
}

// With sip.allow_unknown_sources off, a call is taken from a trunk's
// sources (its record names the trunk) and from an address an agent's
// phone is registered from; any other source gets 403, after the number
// check's 404, and is logged once a minute at most. The trunks' numbers
// are answered besides the hotline's.
func TestUnknownSourcesRefused(t *testing.T) {
	w := newWorld(t)
	reg, _ := w.newRegistrar(t, nil)
	ts, _, lines := inboundServer(t, true, func(o *Options) { o.Registrar = reg })

	// A trunk's call, to its own number and to the hotline's.
	if rec := answeredFrom(t, ts, carrierAIP, "sip:02512345@127.0.0.1"); rec.Trunk != "carrier-a" {
		t.Errorf("record of carrier-a's call: trunk %q", rec.Trunk)
	}
	if rec := answeredFrom(t, ts, carrierAIP, "tel:12345"); rec.Trunk != "carrier-a" {
		t.Errorf("record of carrier-a's call to 12345: trunk %q", rec.Trunk)
	}
	// Recognised by its host's address, bringing in a number with
	// separators.
	if rec := answeredFrom(t, ts, carrierBIP, "tel:+86105555"); rec.Trunk != "carrier-b" {
		t.Errorf("record of carrier-b's call: trunk %q", rec.Trunk)
	}
	// A number no one brings in is not found, whoever calls it.
	refusedFrom(t, ts, carrierAIP, "sip:99999@127.0.0.1", sip.StatusNotFound)
	refusedFrom(t, ts, stranger, "sip:99999@127.0.0.1", sip.StatusNotFound)

	// A stranger is refused, with why, as many times as it tries (its
	// rate aside); it is logged once.
	for range 3 {
		res := refusedFrom(t, ts, stranger, "sip:12345@127.0.0.1", sip.StatusForbidden)
		if res.GetHeader("Warning") == nil {
			t.Errorf("403 without Warning:\n%s", res)
		}
	}
	refusedFrom(t, ts, stranger, "sip:02512345@127.0.0.1", sip.StatusForbidden)
	if n := ts.Admission().UnknownSource; n != 4 {
		t.Errorf("%d refusals of unknown sources counted, want 4", n)
	}
	if got := lines.withMessage(t, unknownSourceLogged); len(got) != 1 {
		t.Errorf("%d refusals logged, want 1: %v", len(got), got)
	}

	// A phone's address is unknown until an agent's phone registers from
	// it; then its calls are taken, as no trunk's.
	p := newPhone(t, ts, "alice", "alice-secret")
	refusedFrom(t, ts, p.u.addr.Addr(), "sip:12345@127.0.0.1", sip.StatusForbidden)
	wantStatus(t, p.register(ts.Addr(), "600", p.contact), sip.StatusOK)
	c := ts.newUAC(t).call("13900000061")
	sc := ts.nextCall(t)
	if err := recv(t, sc.answered, "answer"); err != nil {
		t.Fatal(err)
	}
	var rec calllog.Record
	sc.call.Describe(&rec)
	if rec.Trunk != "" {
		t.Errorf("a phone's call names trunk %q", rec.Trunk)
	}
	c.bye()
	sc.endCause(t)
}

// With sip.allow_unknown_sources on, a call from any address is taken as
// before; a trunk's call still names its trunk.
func TestUnknownSourcesAllowed(t *testing.T) {
	ts, _, lines := inboundServer(t, false, nil)
	if rec := answeredFrom(t, ts, stranger, "sip:12345@127.0.0.1"); rec.Trunk != "" {
		t.Errorf("a stranger's call names trunk %q", rec.Trunk)
	}
	if rec := answeredFrom(t, ts, carrierAIP, "sip:02512345@127.0.0.1"); rec.Trunk != "carrier-a" {
		t.Errorf("record of carrier-a's call: trunk %q", rec.Trunk)
	}
	refusedFrom(t, ts, stranger, "sip:99999@127.0.0.1", sip.StatusNotFound)
	if n := ts.Admission().UnknownSource; n != 0 {
		t.Errorf("%d refusals of unknown sources counted", n)
	}
	if got := lines.withMessage(t, unknownSourceLogged); len(got) != 0 {
		t.Errorf("refusals logged: %v", got)
	}
}

// A trunk known by its host follows the host's addresses when they are
// looked up again, and keeps them when a look-up fails. Its sources have
// the trusted rate.
func TestTrunkHostResolvedAgain(t *testing.T) {
	ts, dns, _ := inboundServer(t, true, func(o *Options) {
		o.Limits = Limits{Calls: Rate{PerMinute: 1, Burst: 1}, TrustedCalls: Rate{PerMinute: 600, Burst: 20}}
	})
	if c := ts.adm.classify(carrierBIP); c != trustedSource {
		t.Errorf("carrier-b's address is %s to the rates, want trusted", c)
	}
	answeredFrom(t, ts, carrierBIP, "sip:12345@127.0.0.1")
	answeredFrom(t, ts, carrierBIP, "sip:12345@127.0.0.1")

	dns.set("sip.carrier-b.example", carrierBIP2)
	ts.resolveTrunks(context.Background(), false)
	if rec := answeredFrom(t, ts, carrierBIP2, "sip:12345@127.0.0.1"); rec.Trunk != "carrier-b" {
		t.Errorf("carrier-b's new address: trunk %q", rec.Trunk)
	}
	refusedFrom(t, ts, carrierBIP, "sip:12345@127.0.0.1", sip.StatusForbidden)

	dns.mu.Lock()
	delete(dns.addrs, "sip.carrier-b.example")
	dns.mu.Unlock()
	ts.resolveTrunks(context.Background(), false)
	if name, ok := ts.trunks.at(carrierBIP2); !ok || name != "carrier-b" {
		t.Errorf("after a failed look-up carrier-b's address is %q %v, want kept", name, ok)
	}
}

// sourceLog lets each source be logged once a period, and holds at most
// its number of sources: a new one when all places are taken is not
// logged, and the next line says how many were not.
func TestSourceLog(t *testing.T) {
	l := newSourceLog(time.Minute, 2)
	t0 := time.Now()
	a, b, c := sourceKey(flooder), sourceKey(neighbor), sourceKey(stranger)
	for _, step := range []struct {
		src      netip.Prefix
		at       time.Duration
		ok       bool
		unlogged uint64
	}{
		{a, 0, true, 0},
		{a, time.Second, false, 0},
		{b, 2 * time.Second, true, 1},
		{c, 3 * time.Second, false, 0}, // every place taken
		{a, 59 * time.Second, false, 0},
		{a, 60 * time.Second, true, 2}, // a's place was free again
		{c, 61 * time.Second, false, 0},
		{c, 62 * time.Second, true, 1}, // b's was
	} {
		ok, unlogged := l.allow(step.src, t0.Add(step.at))
		if ok != step.ok || unlogged != step.unlogged {
			t.Errorf("%s at %s: %v %d, want %v %d", step.src, step.at, ok, unlogged, step.ok, step.unlogged)
		}
	}
	if n := l.order.Len(); n > 2 {
		t.Errorf("%d sources held, want at most 2", n)
	}
}

// A call in on a trunk takes one of its channels (Server.SetSeize): with
// the trunk's one channel held by a call, the next is refused 503 with
// Retry-After and reaches no handler; the channel is given back, marked
// answered, when the call ends, and the trunk takes calls again.
func TestTrunkChannelsIn(t *testing.T) {
	ts, _, _ := inboundServer(t, true, nil)
	var mu sync.Mutex
	held, seized := map[string]int{}, []string{}
	ts.SetSeize(func(_ context.Context, trunk string) (func(bool), error) {
		mu.Lock()
		defer mu.Unlock()
		if held[trunk] >= 1 {
			return nil, errors.New("every channel in use")
		}
		held[trunk]++
		return func(answered bool) {
			mu.Lock()
			defer mu.Unlock()
			held[trunk]--
			seized = append(seized, fmt.Sprintf("%s answered=%v", trunk, answered))
		}, nil
	})
	raw, res := inviteFrom(t, ts, carrierAIP, "sip:12345@127.0.0.1")
	if res.StatusCode != sip.StatusOK {
		t.Fatalf("the first call: %d", res.StatusCode)
	}
	sc := ts.nextCall(t)
	if err := recv(t, sc.answered, "answer"); err != nil {
		t.Fatal(err)
	}
	_, res = inviteFrom(t, ts, carrierAIP, "sip:12345@127.0.0.1")
	if res.StatusCode != sip.StatusServiceUnavailable || res.GetHeader("Retry-After") == nil {
		t.Errorf("a call with the trunk's channel in use: want 503 with Retry-After:\n%s", res)
	}
	noCallAtHandler(t, ts)
	if res := raw.bye(); res.StatusCode != sip.StatusOK {
		t.Errorf("BYE: %d", res.StatusCode)
	}
	sc.endCause(t)
	waitUntil(t, "the channel given back", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return held["carrier-a"] == 0
	})
	answeredFrom(t, ts, carrierAIP, "sip:12345@127.0.0.1")
	mu.Lock()
	defer mu.Unlock()
	if len(seized) != 2 || seized[0] != "carrier-a answered=true" {
		t.Errorf("channels given back: %v", seized)
	}
}
