package sip

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
	"github.com/redis/go-redis/v9"

	"github.com/hotline12345/hotline/ban"
	"github.com/hotline12345/hotline/internal/fail2bantest"
	"github.com/hotline12345/hotline/internal/redistest"
	"github.com/hotline12345/hotline/logging"
)

// --- what the registrar tests share ---

const testRealm = "hotline"

var testSecret = []byte("0123456789abcdef0123456789abcdef")

// agentBook is the agents' credentials as an agent store keeps them:
// hashes, made here from the test's passwords.
type agentBook map[string]Credential

// addAgent stores user's hashes; withSHA256 false leaves the agent with
// an MD5 hash only, as a store from before RFC 8760 would.
func (b agentBook) addAgent(user, password string, withSHA256 bool) {
	a1 := user + ":" + testRealm + ":" + password
	m := md5.Sum([]byte(a1))
	c := Credential{AgentID: "agent-" + user, HA1: hex.EncodeToString(m[:])}
	if withSHA256 {
		s := sha256.Sum256([]byte(a1))
		c.HA1SHA256 = hex.EncodeToString(s[:])
	}
	b[user] = c
}

func (b agentBook) Credential(_ context.Context, user string) (Credential, error) {
	c, ok := b[user]
	if !ok {
		return Credential{}, ErrUnknownUser
	}
	return c, nil
}

// presenceLog records Presence calls in order: "+agent" for Registered,
// "-agent" for Unregistered.
type presenceLog struct {
	mu     sync.Mutex
	events []string
}

func (p *presenceLog) Registered(_ context.Context, id string) error   { return p.add("+" + id) }
func (p *presenceLog) Unregistered(_ context.Context, id string) error { return p.add("-" + id) }

func (p *presenceLog) add(e string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, e)
	return nil
}

func (p *presenceLog) seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.events)
}

// testClock is the registrar's clock, moved by the test.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock { return &testClock{t: time.Now()} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// logLines keeps the JSON lines a logger wrote, and shows them in the
// test's log.
type logLines struct {
	tl    *testLog
	mu    sync.Mutex
	lines []string
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.lines = append(l.lines, strings.TrimRight(string(p), "\n"))
	l.mu.Unlock()
	return l.tl.Write(p)
}

// withMessage returns the lines whose message is msg, as written.
func (l *logLines) withMessage(t testing.TB, msg string) []string {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range l.lines {
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

// registrarNode is one hotline node: a registrar on the shared Redis and
// the SIP server that hands it REGISTERs.
type registrarNode struct {
	reg *Registrar
	ts  *testServer
	log *logLines
}

// world is what the nodes of a test share: Redis, the agents, the clock,
// and what Presence heard.
type world struct {
	rdb      redis.UniversalClient
	redis    *redistest.Server // set by newWorld, which starts it
	agents   agentBook
	clock    *testClock
	presence *presenceLog
}

func newWorld(t testing.TB) *world {
	t.Helper()
	srv := redistest.Start(t)
	w := newWorldOn(t, srv.Client(t))
	w.redis = srv
	return w
}

// newWorldOn is a world on rdb, for tests run by redistest.Backends.
func newWorldOn(t testing.TB, rdb redis.UniversalClient) *world {
	t.Helper()
	w := &world{rdb: rdb, agents: agentBook{}, clock: newTestClock(), presence: &presenceLog{}}
	w.agents.addAgent("alice", "alice-secret", true)
	w.agents.addAgent("bob", "bob-secret", false)
	return w
}

// newRegistrar makes a registrar on the world's Redis; tune adjusts its
// options first.
func (w *world) newRegistrar(t testing.TB, tune func(*RegistrarOptions)) (*Registrar, *logLines) {
	t.Helper()
	lines := &logLines{tl: newTestLog(t)}
	// The production logger, so the lines are those fail2ban will read.
	logger, err := logging.New(logging.Options{Level: "info", Format: "json", Out: lines})
	if err != nil {
		t.Fatal(err)
	}
	opts := RegistrarOptions{
		Credentials: w.agents,
		Presence:    w.presence,
		Redis:       w.rdb,
		Secret:      testSecret,
		Logger:      logger,
		Now:         w.clock.Now,
	}
	if tune != nil {
		tune(&opts)
	}
	r, err := NewRegistrar(opts)
	if err != nil {
		t.Fatal(err)
	}
	return r, lines
}

// withBans gives the registrar Bans of its own, on its Redis, logger and
// clock, with the throttling tune sets. Two registrars so given share
// their bans through Redis as two nodes do.
func withBans(t testing.TB, o *RegistrarOptions, tune func(*ban.Options)) {
	t.Helper()
	opts := ban.Options{Redis: o.Redis, Logger: o.Logger, Now: o.Now}
	tune(&opts)
	b, err := ban.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	o.Bans = b
}

// newNode starts a registrar and a SIP server that uses it.
func (w *world) newNode(t testing.TB, tune func(*RegistrarOptions)) *registrarNode {
	t.Helper()
	r, lines := w.newRegistrar(t, tune)
	ts := startServer(t, func(o *Options, _ *callee) { o.Registrar = r })
	return &registrarNode{reg: r, ts: ts, log: lines}
}

// phone is an agent's softphone made of a sipgo client: one Call-ID for
// all its REGISTERs, a CSeq that grows (RFC 3261 §10.2.4), and the
// digest computed with icholy/digest from the last challenge.
type phone struct {
	t        testing.TB
	u        *uac
	user     string
	password string
	callID   string
	cseq     uint32
	contact  string
	chal     *digest.Challenge
	nc       int
}

func newPhone(t testing.TB, ts *testServer, user, password string) *phone {
	t.Helper()
	u := ts.newUAC(t)
	return &phone{
		t: t, u: u, user: user, password: password,
		callID:  sip.GenerateTagN(16) + "@phone",
		contact: fmt.Sprintf("<sip:%s@%s>", user, u.addr),
	}
}

// request builds the phone's next REGISTER to server; contacts are
// Contact header values, expires the Expires header ("" for none).
func (p *phone) request(server netip.AddrPort, expires string, contacts ...string) *sip.Request {
	p.cseq++
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: server.Addr().String(), Port: int(server.Port())})
	aor := sip.Uri{Scheme: "sip", User: p.user, Host: testRealm}
	from := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	callID := sip.CallIDHeader(p.callID)
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: aor})
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: p.cseq, MethodName: sip.REGISTER})
	req.AppendHeader(sip.NewHeader("User-Agent", "test-phone"))
	for _, c := range contacts {
		req.AppendHeader(sip.NewHeader("Contact", c))
	}
	if expires != "" {
		req.AppendHeader(sip.NewHeader("Expires", expires))
	}
	return req
}

// send sends req and returns the final response.
func (p *phone) send(req *sip.Request) *sip.Response {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	res, err := p.u.client.Do(ctx, req)
	if err != nil {
		p.t.Fatalf("REGISTER: %v", err)
	}
	return res
}

// learn keeps the challenge of a 401 for alg ("" for the first offered).
func (p *phone) learn(res *sip.Response, alg string) {
	p.t.Helper()
	if res.StatusCode != sip.StatusUnauthorized {
		p.t.Fatalf("status %d, want 401", res.StatusCode)
	}
	for _, h := range res.GetHeaders("WWW-Authenticate") {
		ch, err := digest.ParseChallenge(h.Value())
		if err != nil {
			p.t.Fatal(err)
		}
		if alg == "" || ch.Algorithm == alg {
			p.chal, p.nc = ch, 0
			return
		}
	}
	p.t.Fatalf("no %s challenge in %v", alg, res.GetHeaders("WWW-Authenticate"))
}

// authorize adds the Authorization for the learned challenge, with the
// next nonce count.
func (p *phone) authorize(req *sip.Request, password string) {
	p.t.Helper()
	p.nc++
	cred, err := digest.Digest(p.chal, digest.Options{
		Method: "REGISTER", URI: req.Recipient.String(), Username: p.user, Password: password, Count: p.nc,
	})
	if err != nil {
		p.t.Fatal(err)
	}
	req.AppendHeader(sip.NewHeader("Authorization", cred.String()))
}

// register goes through the challenge and returns the response to the
// authorized REGISTER.
func (p *phone) register(server netip.AddrPort, expires string, contacts ...string) *sip.Response {
	p.t.Helper()
	p.learn(p.send(p.request(server, expires, contacts...)), "")
	req := p.request(server, expires, contacts...)
	p.authorize(req, p.password)
	return p.send(req)
}

// again sends a REGISTER authorized with the nonce already learned.
func (p *phone) again(server netip.AddrPort, expires string, contacts ...string) *sip.Response {
	p.t.Helper()
	req := p.request(server, expires, contacts...)
	p.authorize(req, p.password)
	return p.send(req)
}

// wantStatus fails the test unless res has code.
func wantStatus(t testing.TB, res *sip.Response, code int) {
	t.Helper()
	if res.StatusCode != code {
		t.Fatalf("status %d %s, want %d\n%s", res.StatusCode, res.Reason, code, res)
	}
}

// contactExpires maps each Contact of a 200 to its expires parameter.
func contactExpires(t testing.TB, res *sip.Response) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, h := range res.GetHeaders("Contact") {
		c, ok := h.(*sip.ContactHeader)
		if !ok {
			t.Fatalf("Contact %q not parsed", h.Value())
		}
		exp, ok := c.Params.Get("expires")
		if !ok {
			t.Errorf("Contact %s without expires (RFC 3261 §10.3 step 8)", c.Address.String())
		}
		out[c.Address.String()] = exp
	}
	return out
}

// eventually polls cond until it holds, failing the test after waitFor.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen within %s", what, waitFor)
		}
		<-tick.C
	}
}

func lookup(t testing.TB, r *Registrar, user string) []Binding {
	t.Helper()
	b, err := r.Lookup(context.Background(), user)
	if err != nil {
		t.Fatalf("Lookup %s: %v", user, err)
	}
	return b
}

func notRegistered(t testing.TB, r *Registrar, user string) {
	t.Helper()
	if b, err := r.Lookup(context.Background(), user); !errors.Is(err, ErrNotRegistered) {
		t.Fatalf("Lookup %s: %v %v, want ErrNotRegistered", user, b, err)
	}
}

func wantPresence(t testing.TB, w *world, want ...string) {
	t.Helper()
	if got := w.presence.seen(); !slices.Equal(got, want) {
		t.Fatalf("presence %v, want %v", got, want)
	}
}

// --- the tests ---

func TestRegisterChallengeThenBinding(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testRegisterChallengeThenBinding)
}

func testRegisterChallengeThenBinding(t *testing.T, rdb redis.UniversalClient) {
	w := newWorldOn(t, rdb)
	n := w.newNode(t, nil)
	p := newPhone(t, n.ts, "alice", "alice-secret")
	addr := n.ts.Addr()

	res := p.send(p.request(addr, "600", p.contact))
	wantStatus(t, res, sip.StatusUnauthorized)
	var algs []string
	for _, h := range res.GetHeaders("WWW-Authenticate") {
		ch, err := digest.ParseChallenge(h.Value())
		if err != nil {
			t.Fatal(err)
		}
		if ch.Realm != testRealm || !ch.SupportsQOP("auth") || ch.Stale || ch.Nonce == "" {
			t.Errorf("challenge %s", h.Value())
		}
		algs = append(algs, ch.Algorithm)
	}
	// RFC 8760 §2.4: the preferred algorithm first.
	if !slices.Equal(algs, []string{"SHA-256", "MD5"}) {
		t.Errorf("algorithms %v, want [SHA-256 MD5]", algs)
	}
	notRegistered(t, n.reg, "alice")

	p.learn(res, "SHA-256")
	req := p.request(addr, "600", p.contact)
	p.authorize(req, p.password)
	res = p.send(req)
	wantStatus(t, res, sip.StatusOK)
	want := fmt.Sprintf("sip:alice@%s", p.u.addr)
	if got := contactExpires(t, res); len(got) != 1 || got[want] != "600" {
		t.Errorf("200 contacts %v, want %s;expires=600", got, want)
	}
	if res.GetHeader("Date") == nil {
		t.Error("200 without Date (RFC 3261 §10.3 step 8)")
	}
	b := lookup(t, n.reg, "alice")
	if len(b) != 1 || b[0].Contact != want || b[0].Source != p.u.addr || b[0].Transport != "udp" ||
		b[0].User != "alice" || b[0].UserAgent != "test-phone" || !b[0].Expires.Equal(w.clock.Now().Add(600*time.Second).Truncate(time.Millisecond)) {
		t.Errorf("bindings %+v", b)
	}
	wantPresence(t, w, "+agent-alice")
}

// An agent whose store has only an MD5 hash is offered only MD5, and a
// phone that answers without qop (RFC 2069, RFC 2617 §3.2.2.1) still
// registers.
func TestRegisterMD5WithoutQop(t *testing.T) {
	redistest.Backends(t, testRegisterMD5WithoutQop)
}

func testRegisterMD5WithoutQop(t *testing.T, rdb redis.UniversalClient) {
	w := newWorldOn(t, rdb)
	n := w.newNode(t, nil)
	p := newPhone(t, n.ts, "bob", "bob-secret")
	res := p.send(p.request(n.ts.Addr(), "", p.contact))
	wantStatus(t, res, sip.StatusUnauthorized)
	if h := res.GetHeaders("WWW-Authenticate"); len(h) != 1 || !strings.Contains(h[0].Value(), "algorithm=MD5") {
		t.Fatalf("challenges %v, want MD5 only", h)
	}
	p.learn(res, "MD5")
	p.chal.QOP = nil
	res = p.again(n.ts.Addr(), "", p.contact)
	wantStatus(t, res, sip.StatusOK)
	// No Expires: the default, an hour.
	if got := contactExpires(t, res); got[fmt.Sprintf("sip:bob@%s", p.u.addr)] != "3600" {
		t.Errorf("contacts %v, want expires=3600", got)
	}
	wantPresence(t, w, "+agent-bob")
}

// A registrar told to challenge with MD5 only does so for every agent, and
// takes no SHA-256 answer.
func TestAlgorithmsOption(t *testing.T) {
	redistest.Backends(t, testAlgorithmsOption)
}

func testAlgorithmsOption(t *testing.T, rdb redis.UniversalClient) {
	w := newWorldOn(t, rdb)
	n := w.newNode(t, func(o *RegistrarOptions) { o.Algorithms = []string{"MD5"} })
	p := newPhone(t, n.ts, "alice", "alice-secret")
	res := p.send(p.request(n.ts.Addr(), "600", p.contact))
	wantStatus(t, res, sip.StatusUnauthorized)
	if h := res.GetHeaders("WWW-Authenticate"); len(h) != 1 || !strings.Contains(h[0].Value(), "algorithm=MD5") {
		t.Fatalf("challenges %v, want MD5 only", h)
	}
	p.learn(res, "MD5")
	p.chal.Algorithm = "SHA-256"
	wantStatus(t, p.again(n.ts.Addr(), "600", p.contact), sip.StatusForbidden)
	wantStatus(t, p.register(n.ts.Addr(), "600", p.contact), sip.StatusOK)

	if _, err := NewRegistrar(RegistrarOptions{Credentials: w.agents, Redis: w.rdb, Secret: testSecret,
		Algorithms: []string{"SHA-512-256"}}); err == nil {
		t.Error("an algorithm the registrar can not check was taken")
	}
}

// A wrong password and an unknown user get the same answer: one can not
// be told from the other by the response.
func TestWrongPasswordAndUnknownUserAlike(t *testing.T) {
	redistest.Backends(t, testWrongPasswordAndUnknownUserAlike)
}

func testWrongPasswordAndUnknownUserAlike(t *testing.T, rdb redis.UniversalClient) {
	w := newWorldOn(t, rdb)
	n := w.newNode(t, nil)
	addr := n.ts.Addr()

	wrong := newPhone(t, n.ts, "alice", "alice-secret")
	wrong.learn(wrong.send(wrong.request(addr, "600", wrong.contact)), "")
	req := wrong.request(addr, "600", wrong.contact)
	wrong.authorize(req, "guess")
	resWrong := wrong.send(req)

	unknown := newPhone(t, n.ts, "mallory", "anything")
	res := unknown.send(unknown.request(addr, "600", unknown.contact))
	unknown.learn(res, "")
	if len(res.GetHeaders("WWW-Authenticate")) != 2 {
		t.Errorf("an unknown user's challenge differs from a known one's: %v", res.GetHeaders("WWW-Authenticate"))
	}
	resUnknown := unknown.again(addr, "600", unknown.contact)

	wantStatus(t, resWrong, sip.StatusForbidden)
	wantStatus(t, resUnknown, sip.StatusForbidden)
	if resWrong.Reason != resUnknown.Reason {
		t.Errorf("reasons %q and %q differ", resWrong.Reason, resUnknown.Reason)
	}
	// Besides what every response copies from its request, the headers
	// are the same.
	own := func(res *sip.Response) []string {
		var out []string
		for _, h := range res.Headers() {
			switch h.Name() {
			case "Via", "From", "To", "Call-ID", "CSeq", "Content-Length":
				continue
			}
			out = append(out, h.Name()+": "+h.Value())
		}
		return out
	}
	if a, b := own(resWrong), own(resUnknown); !slices.Equal(a, b) {
		t.Errorf("headers differ:\n%v\n%v", a, b)
	}
	notRegistered(t, n.reg, "alice")
	notRegistered(t, n.reg, "mallory")
	wantPresence(t, w)
	if got := n.log.withMessage(t, "sip auth failed"); len(got) != 2 {
		t.Errorf("%d failure lines, want 2: %v", len(got), got)
	}
}

// An agent registers its own phone: credentials of one agent do not bind
// another's address of record.
func TestRegisterForAnotherUserForbidden(t *testing.T) {
	redistest.Backends(t, testRegisterForAnotherUserForbidden)
}

func testRegisterForAnotherUserForbidden(t *testing.T, rdb redis.UniversalClient) {
	w := newWorldOn(t, rdb)
	n := w.newNode(t, nil)
	p := newPhone(t, n.ts, "alice", "alice-secret")
	p.learn(p.send(p.request(n.ts.Addr(), "600", p.contact)), "")
	req := p.request(n.ts.Addr(), "600", p.contact)
	p.authorize(req, p.password)
	bob := sip.Uri{Scheme: "sip", User: "bob", Host: testRealm}
	req.ReplaceHeader(&sip.ToHeader{Address: bob})
	wantStatus(t, p.send(req), sip.StatusForbidden)
	notRegistered(t, n.reg, "bob")
	notRegistered(t, n.reg, "alice")
}

// A nonce past NonceTTL, with the right password, gets a new challenge
// with stale=true (RFC 7616 §3.3); the phone retries with it.
func TestStaleNonce(t *testing.T) {
	redistest.Backends(t, testStaleNonce)
}

func testStaleNonce(t *testing.T, rdb redis.UniversalClient) {
	w := newWorldOn(t, rdb)
	n := w.newNode(t, func(o *RegistrarOptions) { o.NonceTTL = time.Minute })
	p := newPhone(t, n.ts, "alice", "alice-secret")
	addr := n.ts.Addr()
	p.learn(p.send(p.request(addr, "600", p.contact)), "SHA-256")
	old := p.chal.Nonce
	w.clock.advance(time.Minute + time.Second)

	res := p.again(addr, "600", p.contact)
	wantStatus(t, res, sip.StatusUnauthorized)
	p.learn(res, "SHA-256")
	if !p.chal.Stale || p.chal.Nonce == old {
		t.Fatalf("challenge stale=%v nonce renewed=%v, want a new nonce with stale=true", p.chal.Stale, p.chal.Nonce != old)
	}
	notRegistered(t, n.reg, "alice")
	wantStatus(t, p.again(addr, "600", p.contact), sip.StatusOK)
	// A stale nonce with a wrong password is a failure, not a retry.
	w.clock.advance(2 * time.Minute)
	req := p.request(addr, "600", p.contact)
	p.authorize(req, "guess")
	wantStatus(t, p.send(req), sip.StatusForbidden)
	if len(n.log.withMessage(t, "sip auth failed")) != 1 {
		t.Error("the wrong password with a stale nonce was not logged as a failure")
	}
}

// A nonce count must grow: an Authorization sent again, as a replay
// would, gets a new challenge rather than a binding.
func TestReplayedNonceCount(t *testing.T) {
	redistest.Backends(t, testReplayedNonceCount)
}

func testReplayedNonceCount(t *testing.T, rdb redis.UniversalClient) {
	w := newWorldOn(t, rdb)
	n := w.newNode(t, nil)
	p := newPhone(t, n.ts, "alice", "alice-secret")
	addr := n.ts.Addr()
	wantStatus(t, p.register(addr, "600", p.contact), sip.StatusOK)
	p.nc-- // the same count once more
	res := p.again(addr, "600", "<sip:mallory@192.0.2.66:5060>")
	wantStatus(t, res, sip.StatusUnauthorized)
	p.learn(res, "")
	if !p.chal.Stale {
		t.Error("a reused nonce count is not a stale nonce")
	}
	if b := lookup(t, n.reg, "alice"); len(b) != 1 || strings.Contains(b[0].Contact, "mallory") {
		t.Errorf("bindings %+v", b)
	}
}

// Two nodes share the Secret: a nonce one issued passes at the other,
// and the binding one made is found by the other. A registrar with
// another Secret takes neither node's nonces.
func TestNonceFromAnotherNode(t *testing.T) {
	redistest.Backends(t, testNonceFromAnotherNode)
}

func testNonceFromAnotherNode(t *testing.T, rdb redis.UniversalClient) {
	w := newWorldOn(t, rdb)
	a, b := w.newNode(t, nil), w.newNode(t, nil)
	p := newPhone(t, a.ts, "alice", "alice-secret")
	p.learn(p.send(p.request(a.ts.Addr(), "600", p.contact)), "")
	wantStatus(t, p.again(b.ts.Addr(), "600", p.contact), sip.StatusOK)
	if got := lookup(t, a.reg, "alice"); len(got) != 1 {
		t.Errorf("node a sees %v", got)
	}

	other := w.newNode(t, func(o *RegistrarOptions) { o.Secret = []byte("another secret, another deployment") })
	res := p.again(other.ts.Addr(), "600", p.contact)
	wantStatus(t, res, sip.StatusUnauthorized)
	p.learn(res, "")
	if p.chal.Stale {
		t.Error("a nonce signed with another Secret was taken as stale")
	}
	if len(other.log.withMessage(t, "sip auth failed")) != 0 {
		t.Error("a foreign nonce counted as a failed password")
	}
}

// Bindings lapse at their expiry: Lookup stops returning them at once,
// and two nodes sweeping the same Redis together report the agent gone
// exactly once.
func TestExpirySweptOnceAcrossNodes(t *testing.T) {
	redistest.Backends(t, testExpirySweptOnceAcrossNodes)
}

func testExpirySweptOnceAcrossNodes(t *testing.T, rdb redis.UniversalClient) {
	w := newWorldOn(t, rdb)
	a := w.newNode(t, nil)
	b, _ := w.newRegistrar(t, nil)
	p := newPhone(t, a.ts, "alice", "alice-secret")
	wantStatus(t, p.register(a.ts.Addr(), "60", p.contact), sip.StatusOK)
	q := newPhone(t, a.ts, "bob", "bob-secret")
	wantStatus(t, q.register(a.ts.Addr(), "120", q.contact), sip.StatusOK)
	wantPresence(t, w, "+agent-alice", "+agent-bob")

	w.clock.advance(61 * time.Second)
	notRegistered(t, a.reg, "alice")
	if got, err := b.Bindings(context.Background()); err != nil || len(got) != 1 || got[0].User != "bob" {
		t.Fatalf("Bindings %v %v, want bob's only", got, err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, r := range []*Registrar{a.reg, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = r.sweep(context.Background())
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	wantPresence(t, w, "+agent-alice", "+agent-bob", "-agent-alice")
	if n, err := w.rdb.ZCard(context.Background(), "hotline:{reg}:expiry").Result(); err != nil || n != 1 {
		t.Errorf("expiry set holds %d, %v; want bob's binding only", n, err)
	}
	lookup(t, b, "bob")
}

// Run sweeps by itself until its context ends.
func TestRunSweeps(t *testing.T) {
	redistest.Backends(t, testRunSweeps)
}

func testRunSweeps(t *testing.T, rdb redis.UniversalClient) {
	w := newWorldOn(t, rdb)
	n := w.newNode(t, func(o *RegistrarOptions) { o.SweepInterval = 10 * time.Millisecond })
	p := newPhone(t, n.ts, "alice", "alice-secret")
	wantStatus(t, p.register(n.ts.Addr(), "60", p.contact), sip.StatusOK)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.reg.Run(ctx) }()
	w.clock.advance(time.Hour)
	eventually(t, "the expiry reported", func() bool { return len(w.presence.seen()) == 2 })
	cancel()
	if err := recv(t, done, "Run's return"); err != nil {
		t.Errorf("Run: %v", err)
	}
	wantPresence(t, w, "+agent-alice", "-agent-alice")
}

// A re-register refreshes the binding: it outlives its first expiry, and
// the agent is not reported registered twice. An older CSeq of the same
// Call-ID changes nothing (RFC 3261 §10.3 step 7).
func TestReRegisterRefreshes(t *testing.T) {
	redistest.Backends(t, testReRegisterRefreshes)
}

func testReRegisterRefreshes(t *testing.T, rdb redis.UniversalClient) {
	w := newWorldOn(t, rdb)
	n := w.newNode(t, nil)
	p := newPhone(t, n.ts, "alice", "alice-secret")
	addr := n.ts.Addr()
	wantStatus(t, p.register(addr, "60", p.contact), sip.StatusOK)
	first := lookup(t, n.reg, "alice")[0].Expires

	w.clock.advance(50 * time.Second)
	res := p.again(addr, "60", p.contact) // the learned nonce, next count
	wantStatus(t, res, sip.StatusOK)
	if got := contactExpires(t, res); len(got) != 1 {
		t.Errorf("contacts %v after a refresh, want one", got)
	}
	w.clock.advance(50 * time.Second)
	if err := n.reg.sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	b := lookup(t, n.reg, "alice")
	if len(b) != 1 || !b[0].Expires.After(first) {
		t.Fatalf("bindings %+v, want one refreshed past %s", b, first)
	}
	wantPresence(t, w, "+agent-alice")

	// The phone coming is news in the log; its refreshes are not.
	if got := n.log.withMessage(t, "sip register"); len(got) != 1 {
		t.Errorf("%d info lines for a registration and its refresh, want 1: %q", len(got), got)
	}

	refreshed := b[0].Expires
	p.cseq -= 2 // a delayed REGISTER from before the refresh
	res = p.again(addr, "3600", p.contact)
	wantStatus(t, res, sip.StatusBadRequest)
	if b := lookup(t, n.reg, "alice"); !b[0].Expires.Equal(refreshed) {
		t.Errorf("an out-of-order REGISTER moved the expiry to %s", b[0].Expires)
	}
}

// Expires: 0 on one Contact removes that binding; Contact: * with
// Expires: 0 removes them all, and the agent is reported gone once.
func TestUnregister(t *testing.T) {
	redistest.Backends(t, testUnregister)
}

func testUnregister(t *testing.T, rdb redis.UniversalClient) {
	w := newWorldOn(t, rdb)
	n := w.newNode(t, nil)
	p := newPhone(t, n.ts, "alice", "alice-secret")
	addr := n.ts.Addr()
	desk, mobile := "<sip:alice@192.0.2.10:5060>", "<sip:alice@192.0.2.11:5060;transport=tcp>;expires=300"
	res := p.register(addr, "600", desk, mobile)
	wantStatus(t, res, sip.StatusOK)
	got := contactExpires(t, res)
	if len(got) != 2 || got["sip:alice@192.0.2.10:5060"] != "600" || got["sip:alice@192.0.2.11:5060;transport=tcp"] != "300" {
		t.Fatalf("contacts %v", got)
	}
	if b := lookup(t, n.reg, "alice"); len(b) != 2 {
		t.Fatalf("bindings %v, want 2", b)
	}

	res = p.again(addr, "", "<sip:alice@192.0.2.10:5060>;expires=0")
	wantStatus(t, res, sip.StatusOK)
	if got := contactExpires(t, res); len(got) != 1 || got["sip:alice@192.0.2.11:5060;transport=tcp"] == "" {
		t.Fatalf("contacts after removing one: %v", got)
	}
	wantPresence(t, w, "+agent-alice")

	wantStatus(t, p.again(addr, "30", "*"), sip.StatusBadRequest)
	wantStatus(t, p.again(addr, "0", "*", desk), sip.StatusBadRequest)
	res = p.again(addr, "0", "*")
	wantStatus(t, res, sip.StatusOK)
	if got := contactExpires(t, res); len(got) != 0 {
		t.Errorf("contacts after Contact: *: %v", got)
	}
	notRegistered(t, n.reg, "alice")
	wantPresence(t, w, "+agent-alice", "-agent-alice")
}

// A REGISTER without Contact asks for the current bindings (RFC 3261
// §10.2.3) and changes nothing.
func TestRegisterQueriesBindings(t *testing.T) {
	redistest.Backends(t, testRegisterQueriesBindings)
}

func testRegisterQueriesBindings(t *testing.T, rdb redis.UniversalClient) {
	w := newWorldOn(t, rdb)
	n := w.newNode(t, nil)
	p := newPhone(t, n.ts, "alice", "alice-secret")
	wantStatus(t, p.register(n.ts.Addr(), "600", p.contact), sip.StatusOK)
	w.clock.advance(100 * time.Second)
	res := p.again(n.ts.Addr(), "")
	wantStatus(t, res, sip.StatusOK)
	if got := contactExpires(t, res); len(got) != 1 || got[fmt.Sprintf("sip:alice@%s", p.u.addr)] != "500" {
		t.Errorf("contacts %v, want the one with 500 s left", got)
	}
}

// Too short an interval gets 423 with Min-Expires (RFC 3261 §10.3 step
// 7); too long a one is shortened to MaxExpires.
func TestExpiresBounds(t *testing.T) {
	redistest.Backends(t, testExpiresBounds)
}

func testExpiresBounds(t *testing.T, rdb redis.UniversalClient) {
	w := newWorldOn(t, rdb)
	n := w.newNode(t, nil)
	p := newPhone(t, n.ts, "alice", "alice-secret")
	addr := n.ts.Addr()
	res := p.register(addr, "30", p.contact)
	wantStatus(t, res, sip.StatusIntervalToBrief)
	if h := res.GetHeader("Min-Expires"); h == nil || h.Value() != "60" {
		t.Errorf("Min-Expires %v, want 60", h)
	}
	notRegistered(t, n.reg, "alice")
	res = p.again(addr, "86400", p.contact)
	wantStatus(t, res, sip.StatusOK)
	if got := contactExpires(t, res); got[fmt.Sprintf("sip:alice@%s", p.u.addr)] != "3600" {
		t.Errorf("contacts %v, want expires capped at 3600", got)
	}
}

// After MaxFailures failures in the window the source is banned on every
// node: even the right password gets 403 unchecked, and the ban is logged
// once. It lifts after BanDuration.
func TestThrottleBansARepeatedlyFailingSource(t *testing.T) {
	redistest.Backends(t, testThrottleBansARepeatedlyFailingSource)
}

func testThrottleBansARepeatedlyFailingSource(t *testing.T, rdb redis.UniversalClient) {
	w := newWorldOn(t, rdb)
	tune := func(o *RegistrarOptions) {
		withBans(t, o, func(b *ban.Options) { b.MaxFailures = 3; b.Duration = 10 * time.Minute })
	}
	a, b := w.newNode(t, tune), w.newNode(t, tune)
	p := newPhone(t, a.ts, "alice", "alice-secret")
	p.learn(p.send(p.request(a.ts.Addr(), "600", p.contact)), "")
	for i := range 3 {
		req := p.request(a.ts.Addr(), "600", p.contact)
		p.authorize(req, fmt.Sprintf("guess-%d", i))
		wantStatus(t, p.send(req), sip.StatusForbidden)
	}
	if got := a.log.withMessage(t, "sip source banned"); len(got) != 1 {
		t.Fatalf("%d ban lines, want 1: %v", len(got), got)
	}
	for _, n := range []*registrarNode{a, b} {
		wantStatus(t, p.again(n.ts.Addr(), "600", p.contact), sip.StatusForbidden)
		// Unchecked: not even a challenge.
		wantStatus(t, p.send(p.request(n.ts.Addr(), "600", p.contact)), sip.StatusForbidden)
	}
	notRegistered(t, a.reg, "alice")
	if got := len(a.log.withMessage(t, "sip auth failed")) + len(b.log.withMessage(t, "sip auth failed")); got != 3 {
		t.Errorf("%d failure lines, want 3: a banned source is not checked", got)
	}
	if len(b.log.withMessage(t, "sip source banned")) != 0 {
		t.Error("the ban was logged by a second node")
	}

	w.clock.advance(10*time.Minute + time.Second)
	wantStatus(t, p.register(b.ts.Addr(), "600", p.contact), sip.StatusOK)
	wantStatus(t, p.register(a.ts.Addr(), "600", p.contact), sip.StatusOK)
}

// A phone set up before its agent exists retries one unknown name: it is
// refused each time but never banned. Trying names is banned.
func TestThrottleUnknownUserRetrying(t *testing.T) {
	redistest.Backends(t, testThrottleUnknownUserRetrying)
}

func testThrottleUnknownUserRetrying(t *testing.T, rdb redis.UniversalClient) {
	w := newWorldOn(t, rdb)
	n := w.newNode(t, nil)
	p := newPhone(t, n.ts, "1001", "not-yet")
	for range 12 {
		res := p.send(p.request(n.ts.Addr(), "600", p.contact))
		wantStatus(t, res, sip.StatusUnauthorized) // a challenge: not banned
		p.learn(res, "")
		wantStatus(t, p.again(n.ts.Addr(), "600", p.contact), sip.StatusForbidden)
		w.clock.advance(20 * time.Second)
	}
	if got := n.log.withMessage(t, "sip auth failed"); len(got) != 12 {
		t.Errorf("%d failure lines, want 12", len(got))
	}
	for i := range 5 {
		q := newPhone(t, n.ts, fmt.Sprintf("guess%d", i), "x")
		wantStatus(t, q.register(n.ts.Addr(), "600", q.contact), sip.StatusForbidden)
	}
	if got := n.log.withMessage(t, "sip source banned"); len(got) != 1 {
		t.Fatalf("%d ban lines after 5 names tried, want 1", len(got))
	}
	wantStatus(t, p.send(p.request(n.ts.Addr(), "600", p.contact)), sip.StatusForbidden)
}

// Failures spread wider than the window do not add up to a ban.
func TestThrottleWindowSlides(t *testing.T) {
	redistest.Backends(t, testThrottleWindowSlides)
}

func testThrottleWindowSlides(t *testing.T, rdb redis.UniversalClient) {
	w := newWorldOn(t, rdb)
	n := w.newNode(t, func(o *RegistrarOptions) {
		withBans(t, o, func(b *ban.Options) { b.MaxFailures = 3; b.Window = time.Minute })
	})
	p := newPhone(t, n.ts, "alice", "alice-secret")
	for range 5 {
		p.learn(p.send(p.request(n.ts.Addr(), "600", p.contact)), "")
		req := p.request(n.ts.Addr(), "600", p.contact)
		p.authorize(req, "guess")
		wantStatus(t, p.send(req), sip.StatusForbidden)
		w.clock.advance(31 * time.Second)
	}
	if got := n.log.withMessage(t, "sip source banned"); len(got) != 0 {
		t.Fatalf("banned for failures a minute apart: %v", got)
	}
	wantStatus(t, p.register(n.ts.Addr(), "600", p.contact), sip.StatusOK)
}

func TestLookupUnknownUser(t *testing.T) {
	redistest.Backends(t, testLookupUnknownUser)
}

func testLookupUnknownUser(t *testing.T, rdb redis.UniversalClient) {
	w := newWorldOn(t, rdb)
	r, _ := w.newRegistrar(t, nil)
	notRegistered(t, r, "nobody")
	var _ Locator = r
	if b, err := r.Bindings(context.Background()); err != nil || len(b) != 0 {
		t.Errorf("Bindings %v %v, want none", b, err)
	}
}

// Bindings live in Redis with its append-only file: a restart of Redis
// loses none.
func TestBindingSurvivesRedisRestart(t *testing.T) {
	w := newWorld(t)
	n := w.newNode(t, nil)
	p := newPhone(t, n.ts, "alice", "alice-secret")
	wantStatus(t, p.register(n.ts.Addr(), "600", p.contact), sip.StatusOK)
	before := lookup(t, n.reg, "alice")
	w.redis.Restart(t)
	after := lookup(t, n.reg, "alice")
	if len(after) != 1 || after[0] != before[0] {
		t.Errorf("after the restart %+v, before %+v", after, before)
	}
	// And the registrar carries on against the restarted server.
	wantStatus(t, p.again(n.ts.Addr(), "0", p.contact), sip.StatusOK)
	notRegistered(t, n.reg, "alice")
}

func TestRegisterWithoutRegistrar(t *testing.T) {
	ts := startServer(t, nil)
	p := newPhone(t, ts, "alice", "alice-secret")
	res := p.send(p.request(ts.Addr(), "600", p.contact))
	wantStatus(t, res, sip.StatusMethodNotAllowed)
	if h := res.GetHeader("Allow"); h == nil || strings.Contains(h.Value(), "REGISTER") {
		t.Errorf("405 with Allow %v: want one without REGISTER (RFC 3261 §8.2.1)", h)
	}
}

// OPTIONS names REGISTER among the methods only where a registrar runs.
func TestOptionsAllowsRegisterWithARegistrar(t *testing.T) {
	redistest.Backends(t, testOptionsAllowsRegisterWithARegistrar)
}

func testOptionsAllowsRegisterWithARegistrar(t *testing.T, rdb redis.UniversalClient) {
	w := newWorldOn(t, rdb)
	n := w.newNode(t, nil)
	p := newPhone(t, n.ts, "alice", "alice-secret")
	req := sip.NewRequest(sip.OPTIONS, sip.Uri{Scheme: "sip", Host: n.ts.Addr().Addr().String(), Port: int(n.ts.Addr().Port())})
	callID := sip.CallIDHeader(p.callID)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "alice", Host: testRealm}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", Host: testRealm}})
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.OPTIONS})
	res := p.send(req)
	wantStatus(t, res, sip.StatusOK)
	if h := res.GetHeader("Allow"); h == nil || !strings.Contains(h.Value(), "REGISTER") {
		t.Errorf("OPTIONS Allow %v: want REGISTER listed", h)
	}
}

func TestNewRegistrarChecksOptions(t *testing.T) {
	w := newWorld(t)
	rdb := w.rdb
	for _, tc := range []struct {
		name string
		opts RegistrarOptions
	}{
		{"no credentials", RegistrarOptions{Redis: rdb, Secret: testSecret}},
		{"no redis", RegistrarOptions{Credentials: w.agents, Secret: testSecret}},
		{"short secret", RegistrarOptions{Credentials: w.agents, Redis: rdb, Secret: []byte("short")}},
		{"default over max", RegistrarOptions{Credentials: w.agents, Redis: rdb, Secret: testSecret,
			DefaultExpires: 2 * time.Hour, MaxExpires: time.Hour}},
	} {
		if _, err := NewRegistrar(tc.opts); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

// --- fail2ban ---

// The fail2ban filter matches the line a failed REGISTER logs and finds
// the source's address in it, even when the user name is made to look
// like another address; it matches no other line.
func TestFail2banFilterMatchesTheLog(t *testing.T) {
	res := fail2bantest.Load(t, "hotline-sip.conf")
	w := newWorld(t)
	n := w.newNode(t, nil)
	for _, user := range []string{"alice", `x","source_ip":"203.0.113.9","user":"y`} {
		p := newPhone(t, n.ts, user, "guess")
		p.learn(p.send(p.request(n.ts.Addr(), "600", p.contact)), "")
		req := p.request(n.ts.Addr(), "600", p.contact)
		p.authorize(req, "guess")
		wantStatus(t, p.send(req), sip.StatusForbidden)
	}
	failures := n.log.withMessage(t, "sip auth failed")
	if len(failures) != 2 {
		t.Fatalf("%d failure lines, want 2", len(failures))
	}
	for _, line := range failures {
		if got := res.Host(line); got != "127.0.0.1" {
			t.Errorf("the filter found %q in %s, want 127.0.0.1", got, line)
		}
	}
	p := newPhone(t, n.ts, "alice", "alice-secret")
	wantStatus(t, p.register(n.ts.Addr(), "600", p.contact), sip.StatusOK)
	n.log.mu.Lock()
	lines := slices.Clone(n.log.lines)
	n.log.mu.Unlock()
	for _, line := range lines {
		if !slices.Contains(failures, line) && res.Host(line) != "" {
			t.Errorf("the filter matches a line that is no failure: %s", line)
		}
	}

	// An IPv6 source, as the same logger writes it.
	r, lines6 := w.newRegistrar(t, nil)
	req := newPhone(t, n.ts, "alice", "x").request(n.ts.Addr(), "600")
	req.AppendHeader(sip.NewHeader("Via", "SIP/2.0/UDP [2001:db8::7]:5060;branch=z9hG4bKv6"))
	r.failed(context.Background(), req, netip.MustParseAddr("2001:db8::7"), "alice", "wrong response", false)
	if got := lines6.withMessage(t, "sip auth failed"); len(got) != 1 || res.Host(got[0]) != "2001:db8::7" {
		t.Errorf("IPv6 line %v: the filter found %q", got, res.Host(strings.Join(got, "")))
	}
}

// --- baresip ---

// baresip is a real softphone registering as an agent, on its own
// loopback address.
type baresip struct {
	cmd    *exec.Cmd
	exited chan struct{}
	out    *logLines
}

func startBaresip(t *testing.T, server netip.AddrPort, user, password string) *baresip {
	t.Helper()
	dir := t.TempDir()
	config := strings.Join([]string{
		"module_path /usr/lib/baresip/modules",
		"sip_listen 127.0.0.2:0",
		"module account.so",
		"module g711.so",
		"",
	}, "\n")
	accounts := fmt.Sprintf("<sip:%s@%s;transport=udp>;auth_user=%s;auth_pass=%s;regint=60\n", user, server, user, password)
	for name, text := range map[string]string{"config": config, "accounts": accounts} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out := &logLines{tl: newTestLog(t)}
	cmd := exec.Command("baresip", "-f", dir)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("baresip: %v", err)
	}
	b := &baresip{cmd: cmd, exited: make(chan struct{}), out: out}
	go func() {
		_ = cmd.Wait()
		close(b.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-b.exited
	})
	return b
}

// quit asks baresip to stop as a user would (SIGTERM) and waits for it.
func (b *baresip) quit(t *testing.T) {
	t.Helper()
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	isClosed(t, b.exited, "baresip's exit")
}

// baresip registers with digest authentication, ends up bound with its
// source address, and unregisters (Expires: 0) when it quits. Its libre
// (1.1) gives up on a SHA-256 challenge instead of skipping it, so the
// agent here is one whose store keeps an MD5 hash only: challenged with
// MD5 alone, as such agents are.
func TestBaresipRegistersAndUnregisters(t *testing.T) {
	w := newWorld(t)
	n := w.newNode(t, nil)
	phone := startBaresip(t, n.ts.Addr(), "bob", "bob-secret")
	var bound []Binding
	// The binding is stored before presence is told of it: wait for both.
	eventually(t, "baresip bound", func() bool {
		b, err := n.reg.Lookup(context.Background(), "bob")
		bound = b
		return err == nil && len(w.presence.seen()) > 0
	})
	if len(bound) != 1 || bound[0].Source.Addr() != netip.MustParseAddr("127.0.0.2") || bound[0].Transport != "udp" ||
		!strings.HasPrefix(bound[0].Contact, "sip:bob") || !strings.Contains(bound[0].Contact, "@127.0.0.2:") || !strings.Contains(strings.ToLower(bound[0].UserAgent), "baresip") {
		t.Errorf("binding %+v", bound)
	}
	wantPresence(t, w, "+agent-bob")
	phone.quit(t)
	notRegistered(t, n.reg, "bob")
	wantPresence(t, w, "+agent-bob", "-agent-bob")
	if got := n.log.withMessage(t, "sip auth failed"); len(got) != 0 {
		t.Errorf("baresip's registration logged failures: %v", got)
	}
}

// The registrar's keys stay under the one hash tag, and the bans' under
// theirs, so Redis Cluster can run the scripts (every key of a script in
// one slot).
func TestKeysShareOneHashTag(t *testing.T) {
	redistest.Backends(t, testKeysShareOneHashTag)
}

func testKeysShareOneHashTag(t *testing.T, rdb redis.UniversalClient) {
	w := newWorldOn(t, rdb)
	n := w.newNode(t, func(o *RegistrarOptions) {
		withBans(t, o, func(b *ban.Options) { b.MaxFailures = 1 })
	})
	p := newPhone(t, n.ts, "alice", "alice-secret")
	wantStatus(t, p.register(n.ts.Addr(), "600", p.contact), sip.StatusOK)
	q := newPhone(t, n.ts, "bob", "guess")
	wantStatus(t, q.register(n.ts.Addr(), "600", q.contact), sip.StatusForbidden)
	keys := redistest.Keys(t, w.rdb, "*")
	var reg, bans int
	for _, k := range keys {
		switch {
		case strings.HasPrefix(k, "hotline:{reg}:"):
			reg++
		case strings.HasPrefix(k, "hotline:{ban}:"):
			bans++
		default:
			t.Errorf("key %q outside hotline:{reg}: and hotline:{ban}:", k)
		}
	}
	if reg < 3 || bans < 2 { // aor, expiry, nonce count; ban, index
		t.Errorf("keys %v", keys)
	}
}
