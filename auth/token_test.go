package auth

import (
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hotline12345/hotline/internal/redistest"
)

var secretPattern = regexp.MustCompile(`^hlt_([0-9a-f]{16})_[A-Za-z0-9_-]{43}$`)

func TestCreateToken(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testCreateToken)
}

func testCreateToken(t *testing.T, rdb redis.UniversalClient) {
	r := newRig(t, rdb)
	r.user("alice", Agent, Supervisor)
	secret, tok, err := r.s.CreateToken(r.ctx, TokenSpec{
		User: "alice", Name: "laptop", Roles: []Role{Supervisor}, TTL: 8 * time.Hour, By: "root",
	})
	if err != nil {
		t.Fatal(err)
	}
	m := secretPattern.FindStringSubmatch(secret)
	if m == nil || m[1] != tok.ID {
		t.Fatalf("secret %q does not have the shape hlt_<id>_<43 base64url> with id %s", secret, tok.ID)
	}
	want := Token{ID: tok.ID, User: "alice", Name: "laptop", Roles: []Role{Supervisor},
		CreatedAt: start, CreatedBy: "root", ExpiresAt: start.Add(8 * time.Hour)}
	if !equalToken(tok, want) {
		t.Fatalf("token = %+v; want %+v", tok, want)
	}
	got, err := r.s.Token(r.ctx, tok.ID)
	if err != nil || !equalToken(got, want) {
		t.Fatalf("Token = %+v, %v; want %+v", got, err, want)
	}

	// Neither the secret nor its hash shows: not in JSON, not in Redis.
	h, err := r.rdb.HGetAll(r.ctx, r.s.tokenKey(tok.ID)).Result()
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := json.Marshal(got)
	key := secret[len(secretPrefix)+idLen+1:]
	for _, v := range h {
		if strings.Contains(v, key) {
			t.Fatalf("Redis holds the secret: %v", h)
		}
	}
	if strings.Contains(string(doc), key) || strings.Contains(string(doc), h["sha"]) {
		t.Fatalf("JSON of a token shows a secret: %s", doc)
	}

	_, err = r.s.Token(r.ctx, "0123456789abcdef")
	wantErr(t, err, ErrNotFound)
	_, err = r.s.Token(r.ctx, "../users")
	wantErr(t, err, ErrNotFound)
}

func equalToken(a, b Token) bool {
	eqTime := func(x, y *time.Time) bool { return (x == nil) == (y == nil) && (x == nil || x.Equal(*y)) }
	return a.ID == b.ID && a.User == b.User && a.Name == b.Name && slices.Equal(a.Roles, b.Roles) &&
		a.Login == b.Login && a.CreatedAt.Equal(b.CreatedAt) && a.CreatedBy == b.CreatedBy &&
		a.ExpiresAt.Equal(b.ExpiresAt) && eqTime(a.RevokedAt, b.RevokedAt) && a.RevokedBy == b.RevokedBy &&
		eqTime(a.LastUsedAt, b.LastUsedAt)
}

func TestCreateTokenRefuses(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testCreateTokenRefuses)
}

func testCreateTokenRefuses(t *testing.T, rdb redis.UniversalClient) {
	r := newRig(t, rdb)
	r.user("alice", Agent)
	r.user("carol", Admin)
	off := true
	if _, err := r.s.UpdateUser(r.ctx, "carol", UserChange{Disabled: &off, By: "root"}); err != nil {
		t.Fatal(err)
	}
	writes := r.writes()
	for _, tc := range []struct {
		spec TokenSpec
		says string // part of the error's text the admin reads
	}{
		{TokenSpec{User: "alice", Roles: []Role{Agent, Admin}}, "admin"}, // a role the account lacks
		{TokenSpec{User: "alice", Roles: []Role{Supervisor}}, "supervisor"},
		{TokenSpec{User: "bob", Roles: []Role{Agent}}, "bob"},
		{TokenSpec{User: "ALICE", Roles: []Role{Agent}}, "ALICE"},
		{TokenSpec{User: "carol", Roles: []Role{Admin}}, "disabled"},
		{TokenSpec{User: "alice"}, "roles"},
		{TokenSpec{Roles: []Role{"root"}}, "root"},
		{TokenSpec{Roles: []Role{Ops}, TTL: -time.Second}, "ttl"},
		{TokenSpec{Roles: []Role{Ops}, TTL: MaxTokenTTL + time.Second}, "ttl"},
		{TokenSpec{Roles: []Role{Ops}, Login: true}, "user"},
		{TokenSpec{Roles: []Role{Ops}, Name: strings.Repeat("n", MaxTokenName+1)}, "name"},
		{TokenSpec{Roles: []Role{Ops}, Name: "a\nb"}, "name"},
	} {
		if tc.spec.TTL == 0 {
			tc.spec.TTL = time.Hour
		}
		tc.spec.By = "root"
		_, _, err := r.s.CreateToken(r.ctx, tc.spec)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("CreateToken(%+v) = %v; want ErrInvalid saying %q", tc.spec, err, tc.says)
		}
	}
	_, _, err := r.s.CreateToken(r.ctx, TokenSpec{Roles: []Role{Ops}, TTL: time.Hour})
	wantErr(t, err, ErrInvalid) // no By
	if w := r.writes(); w != writes {
		t.Fatalf("refused tokens wrote %d changes", w-writes)
	}
	// The longest TTL and name are allowed.
	r.token(TokenSpec{Roles: []Role{Ops}, TTL: MaxTokenTTL, Name: strings.Repeat("名", MaxTokenName)})
}

// TestCreateTokenRetried runs the script twice with one id and hash, as
// go-redis does after a read timeout: one token, counted once under the
// login cap.
func TestCreateTokenRetried(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testCreateTokenRetried)
}

func testCreateTokenRetried(t *testing.T, rdb redis.UniversalClient) {
	r := newRig(t, rdb, func(o *StoreOptions) { o.MaxLoginTokens = 1 })
	r.user("alice", Agent)
	id, _, sha := newSecret()
	for i := range 2 {
		res, err := r.s.run(r.ctx, createTokenScript, id, sha, "alice", "", "agent", "1",
			ms(start), "alice", ms(start.Add(time.Hour)), r.s.retention.Milliseconds(), 1)
		if err != nil || status(res) != "ok" {
			t.Fatalf("run %d: %v, %v", i, res, err)
		}
		if tok := decodeToken(fields(res[1])); tok.RevokedAt != nil {
			t.Fatalf("run %d revoked the token it made: %+v", i, tok)
		}
	}
	_, _, otherSHA := newSecret()
	res, err := r.s.run(r.ctx, createTokenScript, id, otherSHA, "", "", "ops", "0",
		ms(start), "root", ms(start.Add(time.Hour)), r.s.retention.Milliseconds(), 1)
	if err != nil || status(res) != "collision" {
		t.Fatalf("another token with the id: %v, %v; want collision", res, err)
	}
}

func TestTokensNewestFirst(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testTokensNewestFirst)
}

func testTokensNewestFirst(t *testing.T, rdb redis.UniversalClient) {
	r := newRig(t, rdb)
	r.user("alice", Agent)
	_, a := r.token(TokenSpec{User: "alice", Roles: []Role{Agent}, TTL: time.Hour})
	r.clock.Add(time.Minute)
	_, b := r.token(TokenSpec{Roles: []Role{Ops}, Name: "prometheus", TTL: 24 * time.Hour})
	r.clock.Add(time.Minute)
	_, c := r.token(TokenSpec{User: "alice", Roles: []Role{Agent}, TTL: 24 * time.Hour})
	if _, err := r.s.RevokeToken(r.ctx, c.ID, "root"); err != nil {
		t.Fatal(err)
	}
	r.clock.Add(time.Hour) // a has expired
	ids := func(includeEnded bool) []string {
		t.Helper()
		ts, err := r.s.Tokens(r.ctx, includeEnded)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, tok := range ts {
			out = append(out, tok.ID)
		}
		return out
	}
	if got, want := ids(false), []string{b.ID}; !slices.Equal(got, want) {
		t.Fatalf("live tokens = %v; want %v", got, want)
	}
	if got, want := ids(true), []string{c.ID, b.ID, a.ID}; !slices.Equal(got, want) {
		t.Fatalf("all tokens = %v; want %v (newest first)", got, want)
	}
	// A token whose key is gone before its index entry is pruned is not
	// listed.
	if err := r.rdb.Del(r.ctx, r.s.tokenKey(b.ID)).Err(); err != nil {
		t.Fatal(err)
	}
	if got, want := ids(true), []string{c.ID, a.ID}; !slices.Equal(got, want) {
		t.Fatalf("after b's key went: %v; want %v", got, want)
	}
}

func TestRevokeToken(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testRevokeToken)
}

func testRevokeToken(t *testing.T, rdb redis.UniversalClient) {
	r := newRig(t, rdb)
	_, tok := r.token(TokenSpec{Roles: []Role{Ops}})
	r.clock.Add(time.Minute)
	got, err := r.s.RevokeToken(r.ctx, tok.ID, "boss")
	if err != nil {
		t.Fatal(err)
	}
	at := start.Add(time.Minute)
	if got.RevokedAt == nil || !got.RevokedAt.Equal(at) || got.RevokedBy != "boss" {
		t.Fatalf("revoked = %+v; want revoked at %v by boss", got, at)
	}
	r.clock.Add(time.Minute)
	again, err := r.s.RevokeToken(r.ctx, tok.ID, "someone else")
	if err != nil || !equalToken(again, got) {
		t.Fatalf("revoking again = %+v, %v; want it unchanged %+v", again, err, got)
	}
	_, err = r.s.RevokeToken(r.ctx, "0123456789abcdef", "boss")
	wantErr(t, err, ErrNotFound)
	_, err = r.s.RevokeToken(r.ctx, "nonsense", "boss")
	wantErr(t, err, ErrNotFound)
}

func TestLoginTokenCap(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testLoginTokenCap)
}

func testLoginTokenCap(t *testing.T, rdb redis.UniversalClient) {
	r := newRig(t, rdb, func(o *StoreOptions) { o.MaxLoginTokens = 3 })
	r.user("alice", Agent)
	login := TokenSpec{User: "alice", Roles: []Role{Agent}, Login: true, By: "alice"}
	var secrets []string
	var toks []Token
	for range 3 {
		s, tok := r.token(login)
		secrets, toks = append(secrets, s), append(toks, tok)
		r.clock.Add(time.Second)
	}
	// Tokens an admin makes are not capped.
	for range 3 {
		r.token(TokenSpec{User: "alice", Roles: []Role{Agent}})
	}
	if _, err := r.s.Authenticate(r.ctx, secrets[0]); err != nil {
		t.Fatalf("the oldest login token before the cap: %v", err)
	}
	s4, _ := r.token(login)
	_, err := r.s.Authenticate(r.ctx, secrets[0])
	wantErr(t, err, ErrRevoked)
	oldest, err := r.s.Token(r.ctx, toks[0].ID)
	if err != nil || oldest.RevokedBy != "login limit" {
		t.Fatalf("oldest = %+v, %v; want revoked by the login limit", oldest, err)
	}
	for _, s := range append(secrets[1:], s4) {
		if _, err := r.s.Authenticate(r.ctx, s); err != nil {
			t.Fatalf("a login token within the cap: %v", err)
		}
	}
	// Ended login tokens do not count: revoke one, let none expire, and
	// one more login revokes nothing.
	if _, err := r.s.RevokeToken(r.ctx, toks[1].ID, "alice"); err != nil {
		t.Fatal(err)
	}
	r.token(login)
	if _, err := r.s.Authenticate(r.ctx, secrets[2]); err != nil {
		t.Fatalf("after a logout, a login revoked another token: %v", err)
	}
	// Once they have all expired, three logins fit again.
	r.clock.Add(2 * time.Hour)
	var fresh []string
	for range 3 {
		s, _ := r.token(login)
		fresh = append(fresh, s)
	}
	for _, s := range fresh {
		if _, err := r.s.Authenticate(r.ctx, s); err != nil {
			t.Fatalf("expired login tokens still counted: %v", err)
		}
	}
	if n, _ := r.rdb.ZCard(r.ctx, r.s.key("login:alice")).Result(); n != 3 {
		t.Fatalf("login index holds %d; want 3", n)
	}
}

// TestTokenRetention checks that a token's key lives Retention past its
// end, expired or revoked, and that the index forgets it once it is gone.
func TestTokenRetention(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, testTokenRetention)
}

func testTokenRetention(t *testing.T, rdb redis.UniversalClient) {
	const retention = 30 * 24 * time.Hour
	r := newRig(t, rdb)
	_, live := r.token(TokenSpec{Roles: []Role{Ops}, TTL: 2 * time.Hour})
	r.wantTTL(r.s.tokenKey(live.ID), 2*time.Hour+retention)

	_, revoked := r.token(TokenSpec{Roles: []Role{Ops}, TTL: 10 * 24 * time.Hour})
	r.clock.Add(time.Hour)
	if _, err := r.s.RevokeToken(r.ctx, revoked.ID, "root"); err != nil {
		t.Fatal(err)
	}
	r.wantTTL(r.s.tokenKey(revoked.ID), retention)

	// Revoking an expired token keeps the end it had.
	r.clock.Add(2 * time.Hour)
	if _, err := r.s.RevokeToken(r.ctx, live.ID, "root"); err != nil {
		t.Fatal(err)
	}
	r.wantTTL(r.s.tokenKey(live.ID), retention-time.Hour)

	r.user("alice", Agent)
	r.token(TokenSpec{User: "alice", Roles: []Role{Agent}, Login: true, TTL: 12 * time.Hour})
	r.wantTTL(r.s.key("login:alice"), 12*time.Hour)

	// Past their keys' lifetimes, the next token write prunes the index.
	r.clock.Add(retention)
	r.token(TokenSpec{Roles: []Role{Ops}})
	for _, id := range []string{live.ID, revoked.ID} {
		if err := r.rdb.ZScore(r.ctx, r.s.key("tokens"), id).Err(); err == nil {
			t.Errorf("token %s is still in the index past its retention", id)
		}
	}
}
