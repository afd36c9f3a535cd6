package sip

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/hotline12345/hotline/ivr"
)

// fakeClock is admission's clock in tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// admissionServer starts a server with limits whose callee hangs up each
// call at once (480), on a clock of the test's.
func admissionServer(t *testing.T, limits Limits) (*testServer, *fakeClock) {
	t.Helper()
	clock := &fakeClock{t: time.Now()}
	ts := startServer(t, func(o *Options, ce *callee) {
		o.Limits = limits
		ce.before = func(ctx context.Context, c ivr.Call) { _ = c.Hangup(ctx) }
	})
	ts.adm.setClock(clock.now)
	return ts, clock
}

// rawPeerFrom is a raw peer on a loopback address of its own.
func rawPeerFrom(t *testing.T, from netip.Addr, to netip.AddrPort) *rawPeer {
	t.Helper()
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(from, 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &rawPeer{t: t, conn: conn, to: to}
}

// invites sends n INVITEs at once from from and returns how many were
// answered, once the server has answered or dropped every one (dropped
// reads the server's count of drops). Each answer, the call's 480, is
// acknowledged.
func invites(t *testing.T, ts *testServer, from netip.Addr, n int, dropped func() uint64) int {
	t.Helper()
	raw := rawPeerFrom(t, from, ts.Addr())
	before := dropped()
	sent := map[string]*sip.Request{}
	for range n {
		req := newRawRequest("INVITE", "UDP", raw.addr(), ts.Addr())
		req.set("Content-Type", "Content-Type: application/sdp")
		req.body = string(offerSDP(4000))
		b := req.bytes()
		msg, err := sip.ParseMessage(append([]byte(nil), b...))
		if err != nil {
			t.Fatal(err)
		}
		sent[req.branch] = msg.(*sip.Request)
		raw.send(b)
	}
	answered := 0
	deadline := time.Now().Add(waitFor)
	for answered+int(dropped()-before) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d answered and %d dropped of %d INVITEs", answered, dropped()-before, n)
		}
		if err := raw.conn.SetReadDeadline(time.Now().Add(10 * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		res := raw.readFinal()
		if res == nil {
			continue
		}
		branch, _ := res.Via().Params.Get("branch")
		if req, ok := sent[branch]; ok {
			delete(sent, branch)
			raw.ack(req, res)
			answered++
		}
	}
	return answered
}

// readFinal reads the next final response within the socket's deadline,
// nil when none came.
func (r *rawPeer) readFinal() *sip.Response {
	buf := make([]byte, 65536)
	for {
		n, err := r.conn.Read(buf)
		if err != nil {
			return nil
		}
		msg, err := sip.ParseMessage(append([]byte(nil), buf[:n]...))
		if err != nil {
			r.t.Fatalf("unparsable reply: %v", err)
		}
		if res, ok := msg.(*sip.Response); ok && !res.IsProvisional() {
			return res
		}
	}
}

var (
	flooder  = netip.MustParseAddr("127.0.0.5")
	neighbor = netip.MustParseAddr("127.0.0.6")
	trunk    = netip.MustParseAddr("127.0.0.7")
	agentIP  = netip.MustParseAddr("127.0.0.8")
)

// Each source may start calls at its own rate; INVITEs over it are
// dropped unanswered, and leave other sources' calls alone. Trusted
// networks (trunks) and agents' addresses have rates of their own.
func TestAdmissionPerSource(t *testing.T) {
	ts, clock := admissionServer(t, Limits{
		Calls:        Rate{PerMinute: 60, Burst: 2},
		Trusted:      []netip.Prefix{netip.PrefixFrom(trunk, 32)},
		TrustedCalls: Rate{PerMinute: 600, Burst: 20},
		AgentCalls:   Rate{PerMinute: 60, Burst: 5},
	})
	ts.adm.setAgents(func(a netip.Addr) bool { return a == agentIP })
	overRate := func(class string) func() uint64 {
		return func() uint64 { return ts.Admission().OverRate[class] }
	}
	if got := invites(t, ts, flooder, 6, overRate("untrusted")); got != 2 {
		t.Errorf("a source with a burst of 2: %d of 6 INVITEs answered", got)
	}
	if got := invites(t, ts, neighbor, 2, overRate("untrusted")); got != 2 {
		t.Errorf("another source: %d of 2 answered", got)
	}
	if got := invites(t, ts, trunk, 10, overRate("trusted")); got != 10 {
		t.Errorf("a trunk: %d of 10 answered", got)
	}
	// A trunk over its rate is told so, to send its calls elsewhere.
	raw := rawPeerFrom(t, trunk, ts.Addr())
	var last *sip.Response
	for range 11 {
		req := newRawRequest("INVITE", "UDP", raw.addr(), ts.Addr())
		req.set("Content-Type", "Content-Type: application/sdp")
		req.body = string(offerSDP(4000))
		last = raw.invite(req)
	}
	if last.StatusCode != sip.StatusServiceUnavailable || last.GetHeader("Retry-After") == nil {
		t.Errorf("a trunk over its rate: %d, want 503 with Retry-After", last.StatusCode)
	}
	if got := invites(t, ts, agentIP, 6, overRate("agent")); got != 5 {
		t.Errorf("an agent's address with a burst of 5: %d of 6 answered", got)
	}
	// A second later the flooder has one call more.
	clock.advance(time.Second)
	if got := invites(t, ts, flooder, 2, overRate("untrusted")); got != 1 {
		t.Errorf("a second later: %d of 2 answered", got)
	}
	noCallAtHandlerAfter(t, ts)
}

// noCallAtHandlerAfter drains the calls the handler was given: every one
// was hung up at once.
func noCallAtHandlerAfter(t *testing.T, ts *testServer) {
	t.Helper()
	for {
		select {
		case sc := <-ts.callee.calls:
			isClosed(t, sc.returned, "handler return")
		default:
			waitActive(t, ts, 0)
			return
		}
	}
}

// The calls of untrusted sources together are capped, so a flood from
// many addresses leaves room for trunks.
func TestAdmissionUntrustedMaxCalls(t *testing.T) {
	ts := startServer(t, func(o *Options, _ *callee) {
		o.Limits = Limits{MaxCalls: 2, Trusted: []netip.Prefix{netip.PrefixFrom(trunk, 32)}}
	})
	u := ts.newUAC(t) // from 127.0.0.1: untrusted
	c1, sc1 := answered(t, ts, u, "13900000050")
	answered(t, ts, u, "13900000051")
	dropped := func() uint64 { return ts.Admission().UntrustedCalls }
	if got := invites(t, ts, flooder, 1, dropped); got != 0 {
		t.Errorf("a third untrusted call was answered")
	}
	// A trunk still gets through.
	raw := rawPeerFrom(t, trunk, ts.Addr())
	req := newRawRequest("INVITE", "UDP", raw.addr(), ts.Addr())
	req.set("Content-Type", "Content-Type: application/sdp")
	req.body = string(offerSDP(newRTPPeer(t).port()))
	if res := raw.invite(req); res.StatusCode != sip.StatusOK {
		t.Fatalf("a trunk's call: %d", res.StatusCode)
	}
	sc := ts.nextCall(t)
	if err := recv(t, sc.answered, "answer"); err != nil {
		t.Fatal(err)
	}
	raw.bye()
	sc.endCause(t)
	// One untrusted call ends: its place is free.
	c1.bye()
	sc1.endCause(t)
	waitActive(t, ts, 1)
	answered(t, ts, u, "13900000052")
}

// The sources counted are bounded: when every place holds a source still
// counting, a new untrusted source is refused; one whose bucket is full
// again is forgotten to make room.
func TestAdmissionSourcesBounded(t *testing.T) {
	ts, clock := admissionServer(t, Limits{Calls: Rate{PerMinute: 60, Burst: 1}, Sources: 4})
	dropped := func() uint64 { return ts.Admission().OverRate["untrusted"] }
	for i := range 6 {
		from := netip.AddrFrom4([4]byte{127, 0, 1, byte(i + 1)})
		want := 1
		if i >= 4 {
			want = 0
		}
		if got := invites(t, ts, from, 1, dropped); got != want {
			t.Errorf("source %d: %d answered, want %d", i+1, got, want)
		}
	}
	if n := ts.adm.counted(untrusted); n != 4 {
		t.Errorf("%d sources counted, want 4", n)
	}
	// Their buckets full again, the old sources make room for new ones.
	clock.advance(time.Second)
	for i := range 4 {
		from := netip.AddrFrom4([4]byte{127, 0, 2, byte(i + 1)})
		if got := invites(t, ts, from, 1, dropped); got != 1 {
			t.Errorf("new source %d: %d answered", i+1, got)
		}
	}
	if n := ts.adm.counted(untrusted); n != 4 {
		t.Errorf("%d sources counted, want 4", n)
	}
	noCallAtHandlerAfter(t, ts)
}

// An address an agent's phone registered from is an agent's until its
// bindings lapse or are removed, on this node at once and on every node
// after the registrar's next sweep.
func TestAgentAddresses(t *testing.T) {
	w := newWorld(t)
	n := w.newNode(t, nil)
	other, _ := w.newRegistrar(t, nil)
	p := newPhone(t, n.ts, "alice", "alice-secret")
	from := p.u.addr.Addr()
	if n.reg.AgentAt(from) {
		t.Fatal("an agent's address before any REGISTER")
	}
	wantStatus(t, p.register(n.ts.Addr(), "600", p.contact), sip.StatusOK)
	if !n.reg.AgentAt(from) {
		t.Error("not an agent's address after its REGISTER")
	}
	if n.reg.AgentAt(netip.MustParseAddr("127.0.0.9")) {
		t.Error("another address is an agent's")
	}
	if other.AgentAt(from) {
		t.Error("another node knew before its sweep")
	}
	ctx := context.Background()
	if err := other.refreshSources(ctx); err != nil {
		t.Fatal(err)
	}
	if !other.AgentAt(from) {
		t.Error("another node does not know after its sweep")
	}
	w.clock.advance(601 * time.Second)
	if n.reg.AgentAt(from) {
		t.Error("still an agent's address once its binding lapsed")
	}
	w.clock.advance(-601 * time.Second)
	wantStatus(t, p.again(n.ts.Addr(), "0", p.contact), sip.StatusOK)
	if err := n.reg.refreshSources(ctx); err != nil {
		t.Fatal(err)
	}
	if n.reg.AgentAt(from) {
		t.Error("still an agent's address after unregistering")
	}
}
