package auth

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hotline12345/hotline/internal/redistest"
	"github.com/hotline12345/hotline/internal/testclock"
)

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testAuthenticate)
}

func testAuthenticate(t *testing.T, rdb redis.UniversalClient) {
	r := newRig(t, rdb)
	if _, err := r.s.AddUser(r.ctx, UserSpec{Name: "alice", Roles: []Role{Agent, Supervisor}, AgentID: "a1001", Password: goodPassword, By: "root"}); err != nil {
		t.Fatal(err)
	}
	secret, tok := r.token(TokenSpec{User: "alice", Roles: []Role{Supervisor, Agent}, TTL: time.Hour})
	p, err := r.s.Authenticate(r.ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	want := Principal{User: "alice", Roles: []Role{Agent, Supervisor}, AgentID: "a1001", TokenID: tok.ID, ExpiresAt: start.Add(time.Hour)}
	if !equalPrincipal(p, want) {
		t.Fatalf("Principal = %+v; want %+v", p, want)
	}

	// A token that acts for no account is its own principal.
	secret, tok = r.token(TokenSpec{Name: "prometheus", Roles: []Role{Ops}})
	p, err = r.s.Authenticate(r.ctx, secret)
	want = Principal{User: "token:" + tok.ID, Roles: []Role{Ops}, TokenID: tok.ID, ExpiresAt: start.Add(time.Hour)}
	if err != nil || !equalPrincipal(p, want) {
		t.Fatalf("Principal = %+v, %v; want %+v", p, err, want)
	}
}

func equalPrincipal(a, b Principal) bool {
	return a.User == b.User && slices.Equal(a.Roles, b.Roles) && a.AgentID == b.AgentID &&
		a.TokenID == b.TokenID && a.ExpiresAt.Equal(b.ExpiresAt)
}

// TestAuthenticateFailures checks each way a known token fails, that the
// Principal returned then names the token and account (for throttling)
// and holds no role, and that failing writes nothing.
func TestAuthenticateFailures(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testAuthenticateFailures)
}

func testAuthenticateFailures(t *testing.T, rdb redis.UniversalClient) {
	r := newRig(t, rdb)
	r.user("alice", Agent, Supervisor)
	r.user("bob", Agent)
	r.user("carol", Agent, Supervisor)

	right, wrongTok := r.token(TokenSpec{User: "alice", Roles: []Role{Agent}})
	_, other, _ := newSecret()
	wrong := right[:len(secretPrefix)+idLen+1] + other[len(secretPrefix)+idLen+1:] // its id, another's key
	expired, expiredTok := r.token(TokenSpec{User: "alice", Roles: []Role{Agent}, TTL: time.Minute})
	revoked, revokedTok := r.token(TokenSpec{Roles: []Role{Ops}, TTL: 2 * time.Hour})
	if _, err := r.s.RevokeToken(r.ctx, revokedTok.ID, "root"); err != nil {
		t.Fatal(err)
	}
	disabled, disabledTok := r.token(TokenSpec{User: "bob", Roles: []Role{Agent}, TTL: 2 * time.Hour})
	off := true
	if _, err := r.s.UpdateUser(r.ctx, "bob", UserChange{Disabled: &off, By: "root"}); err != nil {
		t.Fatal(err)
	}
	cut, cutTok := r.token(TokenSpec{User: "carol", Roles: []Role{Supervisor}, TTL: 2 * time.Hour})
	kept, keptTok := r.token(TokenSpec{User: "carol", Roles: []Role{Agent, Supervisor}, TTL: 2 * time.Hour})
	toAgent := []Role{Agent}
	if _, err := r.s.UpdateUser(r.ctx, "carol", UserChange{Roles: &toAgent, By: "root"}); err != nil {
		t.Fatal(err)
	}
	r.clock.Add(time.Minute)

	writes := r.writes()
	for _, tc := range []struct {
		what, secret string
		want         error
		tok          Token
		user         string
	}{
		{"wrong secret", wrong, ErrBadToken, wrongTok, "alice"},
		{"expired", expired, ErrExpired, expiredTok, "alice"},
		{"revoked", revoked, ErrRevoked, revokedTok, "token:" + revokedTok.ID},
		{"account disabled", disabled, ErrDisabled, disabledTok, "bob"},
		{"its only role taken from the account", cut, ErrRevoked, cutTok, "carol"},
	} {
		p, err := r.s.Authenticate(r.ctx, tc.secret)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v; want %v", tc.what, err, tc.want)
		}
		if p.TokenID != tc.tok.ID || p.User != tc.user || len(p.Roles) != 0 || p.AgentID != "" || !p.ExpiresAt.IsZero() {
			t.Errorf("%s: Principal = %+v; want only TokenID %s and User %s", tc.what, p, tc.tok.ID, tc.user)
		}
	}
	if w := r.writes(); w != writes {
		t.Fatalf("failed authentications wrote %d changes; want none", w-writes)
	}

	// A role taken from an account is taken from its tokens at once.
	p, err := r.s.Authenticate(r.ctx, kept)
	if err != nil || !slices.Equal(p.Roles, []Role{Agent}) || p.TokenID != keptTok.ID {
		t.Fatalf("token of agent+supervisor, account now agent only: %+v, %v; want role agent", p, err)
	}
}

// malformed are secrets that must fail before Redis is asked anything,
// with a zero Principal.
func malformed(valid string) []string {
	id := valid[len(secretPrefix) : len(secretPrefix)+idLen]
	key := valid[len(secretPrefix)+idLen+1:]
	return []string{
		"",
		"hlt_",
		"hlt__",
		"Bearer " + valid,
		valid + " ",
		" " + valid,
		valid + "A",
		valid[:len(valid)-1],
		"HLT_" + id + "_" + key,
		"hlt-" + id + "_" + key,
		"hlt_" + id + "-" + key,
		"hlt_" + strings.ToUpper(id) + "_" + key,
		"hlt_" + id[:15] + "g_" + key,
		"hlt_" + id + "_" + key[:42] + "=",
		"hlt_" + id + "_" + key[:42] + "+",
		"hlt_" + id + "_" + key[:42] + "/",
		"hlt_" + id + "_" + key[:42] + "\x00",
		"hlt_" + id + "_" + key[:42] + "é"[:1],
		"hlt_" + id + "_" + strings.Repeat("_", 43),
		"hlt_" + id + "_" + key[:42] + "B", // stray bits: base64url of 32 bytes ends in A, Q, g or w
		"hlt_" + id + key,
		strings.Repeat("x", 1<<16),
	}
}

func TestAuthenticateMalformed(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testAuthenticateMalformed)
}

func testAuthenticateMalformed(t *testing.T, rdb redis.UniversalClient) {
	r := newRig(t, rdb)
	valid, _ := r.token(TokenSpec{Roles: []Role{Ops}})
	for _, s := range malformed(valid) {
		if s == valid {
			continue
		}
		p, err := r.s.Authenticate(r.ctx, s)
		if !errors.Is(err, ErrBadToken) || !equalPrincipal(p, Principal{}) {
			t.Errorf("Authenticate(%.80q) = %+v, %v; want a zero Principal and ErrBadToken", s, p, err)
		}
	}
	// An unknown id is no better than a malformed secret.
	id, secret, _ := newSecret()
	p, err := r.s.Authenticate(r.ctx, secret)
	if !errors.Is(err, ErrBadToken) || p.TokenID != "" {
		t.Fatalf("unknown id %s: %+v, %v; want a zero Principal and ErrBadToken", id, p, err)
	}
}

func TestAuthenticateRecordsUseOnceAMinute(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testAuthenticateRecordsUseOnceAMinute)
}

func testAuthenticateRecordsUseOnceAMinute(t *testing.T, rdb redis.UniversalClient) {
	r := newRig(t, rdb)
	secret, tok := r.token(TokenSpec{Roles: []Role{Ops}})
	used := func() *time.Time {
		t.Helper()
		got, err := r.s.Token(r.ctx, tok.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got.LastUsedAt
	}
	if used() != nil {
		t.Fatal("a new token has been used")
	}
	auth := func() {
		t.Helper()
		if _, err := r.s.Authenticate(r.ctx, secret); err != nil {
			t.Fatal(err)
		}
	}
	auth()
	if u := used(); u == nil || !u.Equal(start) {
		t.Fatalf("LastUsedAt = %v; want %v", u, start)
	}
	writes := r.writes()
	r.clock.Add(59 * time.Second)
	auth()
	if w := r.writes(); w != writes {
		t.Fatalf("a use within the minute wrote %d changes", w-writes)
	}
	r.clock.Add(time.Second)
	auth()
	if u := used(); u == nil || !u.Equal(start.Add(time.Minute)) {
		t.Fatalf("LastUsedAt = %v; want %v", u, start.Add(time.Minute))
	}
	// Recording a use keeps the key's lifetime.
	r.wantTTL(r.s.tokenKey(tok.ID), time.Hour+DefaultRetention)
}

// FuzzAuthenticate feeds Authenticate any string: it never panics, fails
// with one of its errors, and succeeds only for the one real secret.
func FuzzAuthenticate(f *testing.F) {
	srv := redistest.Start(f)
	clock := testclock.New(start)
	s := NewStore(srv.Client(f), StoreOptions{Now: clock.Now, Password: cheap})
	valid, tok, err := s.CreateToken(f.Context(), TokenSpec{Roles: []Role{Ops}, TTL: time.Hour, By: "root"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	for _, m := range malformed(valid) {
		f.Add(m)
	}
	f.Fuzz(func(t *testing.T, secret string) {
		p, err := s.Authenticate(t.Context(), secret)
		if secret == valid {
			if err != nil || p.TokenID != tok.ID {
				t.Fatalf("the real secret: %+v, %v", p, err)
			}
			return
		}
		if !errors.Is(err, ErrBadToken) {
			t.Fatalf("Authenticate(%q) = %v; want ErrBadToken", secret, err)
		}
		if len(p.Roles) != 0 || (p.TokenID != "" && p.TokenID != tok.ID) {
			t.Fatalf("Authenticate(%q) = %+v on failure", secret, p)
		}
	})
}

// BenchmarkAuthenticate is what every API request pays to know who asks:
// one read-only script in a real redis-server and a SHA-256.
func BenchmarkAuthenticate(b *testing.B) {
	srv := redistest.Start(b)
	s := NewStore(srv.Client(b), StoreOptions{})
	ctx := b.Context()
	if _, err := s.AddUser(ctx, UserSpec{Name: "alice", Roles: []Role{Supervisor}, By: "root"}); err != nil {
		b.Fatal(err)
	}
	secret, _, err := s.CreateToken(ctx, TokenSpec{User: "alice", Roles: []Role{Supervisor}, TTL: time.Hour, By: "root"})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.Authenticate(ctx, secret); err != nil {
			b.Fatal(err)
		}
	}
}

// TestAuthenticateIdle checks a session's idle timeout: use keeps it
// alive, a passive request does not, and once it has gone unused that
// long it is ErrIdle, which is ErrExpired, whatever its TTL says.
func TestAuthenticateIdle(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testAuthenticateIdle)
}

func testAuthenticateIdle(t *testing.T, rdb redis.UniversalClient) {
	r := newRig(t, rdb)
	r.user("alice", Agent)
	secret, tok := r.token(TokenSpec{User: "alice", Roles: []Role{Agent}, TTL: 12 * time.Hour, Idle: 20 * time.Minute, Login: true})
	if tok.IdleSeconds != 20*60 {
		t.Fatalf("IdleSeconds = %d; want 1200", tok.IdleSeconds)
	}
	auth := func(ctx context.Context) error {
		_, err := r.s.Authenticate(ctx, secret)
		return err
	}
	// Used every 15 minutes for an hour: alive.
	for range 4 {
		r.clock.Add(15 * time.Minute)
		if err := auth(r.ctx); err != nil {
			t.Fatalf("used within its idle timeout: %v", err)
		}
	}
	// Refreshed by the page alone: the last use stays where it was.
	r.clock.Add(15 * time.Minute)
	if err := auth(Passive(r.ctx)); err != nil {
		t.Fatalf("a passive request within the idle timeout: %v", err)
	}
	r.clock.Add(5 * time.Minute)
	err := auth(Passive(r.ctx))
	if !errors.Is(err, ErrIdle) || !errors.Is(err, ErrExpired) {
		t.Fatalf("20 minutes after the last use: %v; want ErrIdle", err)
	}
	if err := auth(r.ctx); !errors.Is(err, ErrIdle) {
		t.Fatalf("a use after the idle timeout revived the session: %v", err)
	}
	// An idle timeout longer than the token's life is refused.
	if _, _, err := r.s.CreateToken(r.ctx, TokenSpec{User: "alice", Roles: []Role{Agent}, TTL: time.Hour, Idle: 2 * time.Hour, By: "alice"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("idle above the ttl: %v; want ErrInvalid", err)
	}
}
