package auth

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hotline12345/hotline/internal/redistest"
	"github.com/hotline12345/hotline/internal/testclock"
)

// start is the test clock's first reading; the machine's clock is
// irrelevant because the store sets key lifetimes relative to its own.
var start = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

type rig struct {
	t     *testing.T
	ctx   context.Context
	rdb   redis.UniversalClient
	clock *testclock.Clock
	s     *Store
}

// newRig makes a Store on rdb with cheap password hashing; opts may
// change the rest of the options.
func newRig(t *testing.T, rdb redis.UniversalClient, opts ...func(*StoreOptions)) *rig {
	t.Helper()
	r := &rig{t: t, ctx: t.Context(), rdb: rdb, clock: testclock.New(start)}
	o := StoreOptions{Now: r.clock.Now, Password: cheap}
	for _, f := range opts {
		f(&o)
	}
	r.s = NewStore(r.rdb, o)
	return r
}

// server is the redis-server that holds the store's keys: on Cluster the
// master of the {auth} slot, which alone can say how many writes the
// store made.
func (r *rig) server() redis.UniversalClient {
	r.t.Helper()
	cc, ok := r.rdb.(*redis.ClusterClient)
	if !ok {
		return r.rdb
	}
	m, err := cc.MasterForKey(r.ctx, r.s.key("users"))
	if err != nil {
		r.t.Fatal(err)
	}
	return m
}

func (r *rig) user(name string, roles ...Role) User {
	r.t.Helper()
	u, err := r.s.AddUser(r.ctx, UserSpec{Name: name, Roles: roles, Password: goodPassword, By: "root"})
	if err != nil {
		r.t.Fatalf("add user %s: %v", name, err)
	}
	return u
}

func (r *rig) token(spec TokenSpec) (string, Token) {
	r.t.Helper()
	if spec.TTL == 0 {
		spec.TTL = time.Hour
	}
	if spec.By == "" {
		spec.By = "root"
	}
	secret, tok, err := r.s.CreateToken(r.ctx, spec)
	if err != nil {
		r.t.Fatalf("create token %+v: %v", spec, err)
	}
	return secret, tok
}

// writes is how many changes the server has made to its data set; a
// command that writes nothing leaves it as it is.
func (r *rig) writes() int64 {
	r.t.Helper()
	info, err := r.server().Info(r.ctx, "persistence").Result()
	if err != nil {
		r.t.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "rdb_changes_since_last_save:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				r.t.Fatal(err)
			}
			return n
		}
	}
	r.t.Fatalf("no rdb_changes_since_last_save in INFO:\n%s", info)
	return 0
}

// pttl is how long key has left in Redis.
func (r *rig) pttl(key string) time.Duration {
	r.t.Helper()
	d, err := r.rdb.PTTL(r.ctx, key).Result()
	if err != nil {
		r.t.Fatal(err)
	}
	return d
}

// wantTTL checks that key lives want more, give or take the real time
// the test has taken since the store set it.
func (r *rig) wantTTL(key string, want time.Duration) {
	r.t.Helper()
	got := r.pttl(key)
	if got > want || got < want-time.Minute {
		r.t.Fatalf("%s lives %v more; want %v", key, got, want)
	}
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("err = %v; want %v", err, target)
	}
}

func TestMain(m *testing.M) { os.Exit(redistest.RunTests(m)) }

func TestNewStoreDefaults(t *testing.T) {
	s := NewStore(nil, StoreOptions{Password: PasswordParams{Memory: 1024}})
	if s.prefix != "hotline:{auth}:" || s.maxLogin != DefaultMaxLoginTokens || s.retention != DefaultRetention {
		t.Fatalf("defaults: %q %d %v", s.prefix, s.maxLogin, s.retention)
	}
	if want := (PasswordParams{Memory: 1024, Time: 2, Threads: 1}); s.params != want {
		t.Fatalf("params = %+v; want %+v (zero fields take the default's)", s.params, want)
	}
	if s := NewStore(nil, StoreOptions{}); s.params != DefaultPasswordParams {
		t.Fatalf("zero params = %+v; want %+v", s.params, DefaultPasswordParams)
	}
}

// TestKeysShareOneSlot keeps every key the store writes in the {auth}
// hash slot, which multi-key scripts need on Redis Cluster.
func TestKeysShareOneSlot(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testKeysShareOneSlot)
}

func testKeysShareOneSlot(t *testing.T, rdb redis.UniversalClient) {
	r := newRig(t, rdb, func(o *StoreOptions) { o.Prefix = "hl" })
	r.user("alice", Agent)
	r.token(TokenSpec{User: "alice", Roles: []Role{Agent}, Login: true})
	r.token(TokenSpec{Roles: []Role{Ops}})
	keys := redistest.Keys(t, r.rdb, "*")
	if len(keys) < 5 {
		t.Fatalf("keys = %v; want users, user, 2 tokens, index, login index", keys)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "hl:{auth}:") {
			t.Errorf("key %q is outside hl:{auth}:", k)
		}
	}
}
