package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/audit"
	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/ban"
	"github.com/hotline12345/hotline/callback"
	"github.com/hotline12345/hotline/calllog"
	"github.com/hotline12345/hotline/evaluation"
	"github.com/hotline12345/hotline/internal/apitest"
	"github.com/hotline12345/hotline/internal/redistest"
	"github.com/hotline12345/hotline/internal/testclock"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/live"
	"github.com/hotline12345/hotline/web"
)

// beijing is the hotline's zone in these tests.
var beijing = appeal.DefaultLocation()

// cheap argon2id parameters: the tests log in often.
var cheap = auth.PasswordParams{Memory: 64, Time: 1, Threads: 1}

// rig is the whole API on real stores on a real redis-server, its clock at
// 10:00 on 27 November 2026, Beijing time. Requests come from 127.0.0.1,
// a trusted proxy, so that a test names the client's address in
// X-Forwarded-For.
type rig struct {
	t        *testing.T
	ctx      context.Context
	srv      *httptest.Server
	redis    *redistest.Server
	rdb      redis.UniversalClient
	clock    *testclock.Clock
	calls    *calllog.Store
	appeals  *appeal.Store
	visits   *callback.Store
	agents   *acd.Store
	dist     *acd.Distributor
	ratings  *evaluation.Store
	accounts *auth.Store
	bans     *ban.Bans
	audit    *audit.Log
	live     *live.Feed
	reg      *prometheus.Registry
	log      *syncBuffer
	spec     *apitest.Validator

	// token, sent by do, holds every role and acts for no account.
	token string
	// secrets are passwords, hashes and tokens no answer may carry.
	secrets []string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startRig starts the API; tune, when set, changes its options and the
// Distributor before the handler is made.
func startRig(t *testing.T, tune func(*web.Options, *acd.Distributor)) *rig {
	t.Helper()
	r := &rig{t: t, ctx: t.Context(), redis: redistest.Start(t), log: &syncBuffer{},
		clock: testclock.New(time.Date(2026, 11, 27, 10, 0, 0, 0, beijing))}
	r.rdb = r.redis.Client(t)
	log := zerolog.New(r.log)
	r.calls = calllog.NewStore(r.rdb, calllog.StoreOptions{})
	r.appeals = appeal.NewStore(r.rdb, appeal.StoreOptions{Location: beijing})
	r.visits = callback.NewStore(r.rdb, callback.StoreOptions{Location: beijing, Now: r.clock.Now,
		District: func(ctx context.Context, id string) (string, error) {
			o, err := r.appeals.Organizer(ctx, id)
			return o.District, err
		}})
	r.agents = acd.NewStore(r.rdb, acd.StoreOptions{Realm: "hotline", Location: beijing, Now: r.clock.Now})
	r.dist = &acd.Distributor{Store: r.agents, Node: "node1"}
	r.ratings = evaluation.NewStore(r.rdb, evaluation.StoreOptions{Location: beijing, Now: r.clock.Now})
	r.accounts = auth.NewStore(r.rdb, auth.StoreOptions{Now: r.clock.Now, Password: cheap})
	var err error
	if r.bans, err = ban.New(ban.Options{Redis: r.rdb, Logger: log, Now: r.clock.Now}); err != nil {
		t.Fatal(err)
	}
	r.audit = audit.New(r.rdb, audit.Options{Now: r.clock.Now})
	r.live = live.New(r.rdb, live.Options{Logger: log})
	feedCtx, stopFeed := context.WithCancel(context.Background())
	feedDone := make(chan struct{})
	go func() {
		defer close(feedDone)
		_ = r.live.Run(feedCtx)
	}()
	t.Cleanup(func() {
		stopFeed()
		<-feedDone
	})
	r.reg = prometheus.NewRegistry()
	ivr.NewMetrics(r.reg).Digits.WithLabelValues(string(ivr.DTMFInfo)).Inc()
	opts := web.Options{
		Calls: r.calls, Appeals: r.appeals, Agents: r.agents, Distribution: r.dist, Ratings: r.ratings,
		Accounts: r.accounts, Bans: r.bans, Gatherer: r.reg, Logger: log, Visits: r.visits, Audit: r.audit, Live: r.live,
		Checks:         []web.Check{{Name: "redis", Check: func(ctx context.Context) error { return r.rdb.Ping(ctx).Err() }}},
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		Location:       beijing, Now: r.clock.Now,
	}
	if tune != nil {
		tune(&opts, r.dist)
	}
	r.srv = httptest.NewServer(web.NewHandler(opts))
	t.Cleanup(r.srv.Close)
	r.spec = apitest.NewValidator(t)
	r.token = r.mint(auth.TokenSpec{Roles: auth.Roles, TTL: 24 * time.Hour})
	return r
}

// mint makes a token in the store.
func (r *rig) mint(spec auth.TokenSpec) string {
	r.t.Helper()
	if spec.By == "" {
		spec.By = "test"
	}
	secret, _, err := r.accounts.CreateToken(r.ctx, spec)
	if err != nil {
		r.t.Fatal(err)
	}
	r.secrets = append(r.secrets, secret)
	return secret
}

// secret notes a password of user whose hashes must never be served.
func (r *rig) secret(user, password string) {
	md5hex, shahex := acd.DigestHA1(user, "hotline", password)
	r.secrets = append(r.secrets, password, md5hex, shahex)
}

// request is one request of a test.
type request struct {
	method, path, body string
	token              string // "" sends none
	from               string // the client's address; 192.0.2.1 when empty
	header             http.Header
	// unrouted is a request for no route of the table (an unknown path
	// or method), which the OpenAPI document does not describe.
	unrouted bool
}

// send makes the request and returns the answer's status and body; every
// answer is checked against the OpenAPI document and for secrets.
func (r *rig) send(q request) (int, http.Header, []byte) {
	r.t.Helper()
	var rd io.Reader
	if q.body != "" {
		rd = strings.NewReader(q.body)
	}
	req, err := http.NewRequestWithContext(r.ctx, q.method, r.srv.URL+q.path, rd)
	if err != nil {
		r.t.Fatal(err)
	}
	for k, vs := range q.header {
		req.Header[k] = vs
	}
	if q.body != "" && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if q.token != "" {
		req.Header.Set("Authorization", "Bearer "+q.token)
	}
	from := q.from
	if from == "" {
		from = "192.0.2.1"
	}
	req.Header.Set("X-Forwarded-For", from)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") == "text/event-stream" {
		// A live stream does not end: its status and headers are the
		// answer (openLive reads streams).
		return resp.StatusCode, resp.Header, nil
	}
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatal(err)
	}
	fields := []string{`"password"`, `"ha1`, `"hash"`}
	if q.path == "/api/v1/openapi.json" {
		fields = nil // the schemas of the bodies name them
	}
	for _, s := range append(fields, r.secrets...) {
		if strings.Contains(string(got), s) {
			r.t.Errorf("%s %s: the answer carries %q: %s", q.method, q.path, s, got)
		}
	}
	if len(got) > 0 && q.path != "/metrics" {
		want := "application/json"
		if strings.Contains(q.path, "format=csv") && resp.StatusCode == http.StatusOK {
			want = "text/csv; charset=utf-8"
		}
		if ct := resp.Header.Get("Content-Type"); ct != want {
			r.t.Errorf("%s %s: content type %q", q.method, q.path, ct)
		}
	}
	if strings.HasPrefix(q.path, "/api/v1/") && !q.unrouted {
		r.spec.Check(r.t, req, resp.StatusCode, resp.Header, got)
	}
	checkTimes(r.t, q.method+" "+q.path, got)
	return resp.StatusCode, resp.Header, got
}

// do sends a request with the rig's all-roles token and checks the
// status; into, when set, receives the decoded answer.
func (r *rig) do(method, path, body string, want int, into any) string {
	r.t.Helper()
	return r.doAs(r.token, method, path, body, want, into)
}

func (r *rig) doAs(token, method, path, body string, want int, into any) string {
	r.t.Helper()
	code, _, got := r.send(request{method: method, path: path, body: body, token: token})
	if code != want {
		r.t.Fatalf("%s %s: %d %s, want %d", method, path, code, got, want)
	}
	if into != nil {
		if err := json.Unmarshal(got, into); err != nil {
			r.t.Fatalf("%s %s: %v in %s", method, path, err, got)
		}
	}
	return string(got)
}

// fails sends a request that must fail with want and a message.
func (r *rig) fails(method, path, body string, want int) {
	r.t.Helper()
	var e web.Error
	r.do(method, path, body, want, &e)
	if e.Error == "" {
		r.t.Errorf("%s %s: %d without an error message", method, path, want)
	}
}
