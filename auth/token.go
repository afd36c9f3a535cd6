package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
)

// Token is a bearer token as an admin sees it: never its secret.
type Token struct {
	ID string `json:"id"`
	// User is the account the token acts for; empty when it acts for no
	// account (a scraper's, a CI job's).
	User string `json:"user,omitempty"`
	// Name says what the token is for ("prometheus", "ci").
	Name  string `json:"name,omitempty"`
	Roles []Role `json:"roles"`
	// Login says the token was made by logging in with a password, not by
	// an admin.
	Login      bool       `json:"login"`
	CreatedAt  time.Time  `json:"created_at"`
	CreatedBy  string     `json:"created_by"`
	ExpiresAt  time.Time  `json:"expires_at"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	RevokedBy  string     `json:"revoked_by,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	// IdleSeconds, when set, ends the token once it has gone unused that
	// long (a console session left alone); ExpiresAt ends it whatever its
	// use.
	IdleSeconds int64 `json:"idle_timeout_seconds,omitempty"`
}

// Ended reports whether t has expired or been revoked at now.
func (t Token) Ended(now time.Time) bool {
	return t.RevokedAt != nil || !now.Before(t.ExpiresAt)
}

// TokenSpec describes a new token.
type TokenSpec struct {
	// User is the account the token acts for; it must exist, be enabled
	// and hold every role in Roles. Empty: the token acts for no account.
	User string
	// Name says what the token is for; free text of at most MaxTokenName
	// characters.
	Name  string
	Roles []Role
	// TTL is how long the token lives: above zero, at most MaxTokenTTL.
	TTL time.Duration
	// Login marks a token made by logging in; an account keeps at most
	// StoreOptions.MaxLoginTokens live ones. It needs a User.
	Login bool
	// Idle, when above zero, ends the token once it has gone unused that
	// long; at most TTL.
	Idle time.Duration
	By   string // required
}

// Token limits.
const (
	MaxTokenTTL  = 10 * 365 * 24 * time.Hour
	MaxTokenName = 64 // characters
)

// The secret's shape: "hlt_" + 16 hex digits of id + "_" + 43 characters
// of unpadded base64url of 32 random bytes. The prefix lets secret
// scanners and people recognise a hotline token; the id finds its record
// without a search.
const (
	secretPrefix = "hlt_"
	idBytes      = 8
	keyBytes     = 32
	idLen        = 2 * idBytes
	secretLen    = len(secretPrefix) + idLen + 1 + 43
)

var secretEncoding = base64.RawURLEncoding.Strict()

// newSecret returns a new token id, its secret and the hex SHA-256 of the
// secret's random part, the only part of it that is stored. Tokens carry
// 256 random bits, so a fast hash is enough where passwords need argon2id.
func newSecret() (id, secret, sha string) {
	id = randomHex(idBytes)
	key := make([]byte, keyBytes)
	_, _ = rand.Read(key) // crypto/rand.Read never fails (Go 1.24)
	sum := sha256.Sum256(key)
	return id, secretPrefix + id + "_" + secretEncoding.EncodeToString(key), hex.EncodeToString(sum[:])
}

// parseSecret reads a secret of the shape newSecret makes, and nothing
// else (no upper-case hex, no padding, no stray bits).
func parseSecret(secret string) (id string, sum [sha256.Size]byte, ok bool) {
	if len(secret) != secretLen || !strings.HasPrefix(secret, secretPrefix) || secret[len(secretPrefix)+idLen] != '_' {
		return "", sum, false
	}
	id = secret[len(secretPrefix) : len(secretPrefix)+idLen]
	for _, c := range []byte(id) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", sum, false
		}
	}
	key, err := secretEncoding.DecodeString(secret[len(secretPrefix)+idLen+1:])
	if err != nil || len(key) != keyBytes {
		return "", sum, false
	}
	return id, sha256.Sum256(key), true
}

func validTokenID(id string) bool {
	if len(id) != idLen {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil && strings.ToLower(id) == id
}

func checkTokenName(name string) error {
	if !utf8.ValidString(name) || utf8.RuneCountInString(name) > MaxTokenName {
		return fmt.Errorf("%w: token name: want at most %d characters of UTF-8", ErrInvalid, MaxTokenName)
	}
	if strings.ContainsFunc(name, unicode.IsControl) {
		return fmt.Errorf("%w: token name: control characters", ErrInvalid)
	}
	return nil
}

func decodeToken(h map[string]string) Token {
	return Token{
		ID:          h["id"],
		User:        h["user"],
		Name:        h["name"],
		Roles:       splitRoles(h["roles"]),
		Login:       h["login"] == "1",
		CreatedAt:   msTimeOrZero(h["created"]),
		CreatedBy:   h["created_by"],
		ExpiresAt:   msTimeOrZero(h["expires"]),
		RevokedAt:   msTime(h["revoked"]),
		RevokedBy:   h["revoked_by"],
		LastUsedAt:  msTime(h["used"]),
		IdleSeconds: msInt(h["idle"]) / 1000,
	}
}

// CreateToken makes a token and returns its secret, which is shown once:
// only its hash is kept. Roles are required and must be known; TTL must be
// above zero and at most MaxTokenTTL (ErrInvalid otherwise). A token for
// an account needs the account to exist, be enabled and hold every role
// asked (ErrInvalid, naming the role it lacks). A login token beyond the
// account's MaxLoginTokens revokes its oldest one.
func (s *Store) CreateToken(ctx context.Context, spec TokenSpec) (string, Token, error) {
	roles, err := normRoles(spec.Roles)
	if err != nil {
		return "", Token{}, err
	}
	if spec.TTL <= 0 || spec.TTL > MaxTokenTTL {
		return "", Token{}, fmt.Errorf("%w: ttl %v: want above zero and at most 10 years", ErrInvalid, spec.TTL)
	}
	if spec.User != "" && !namePattern.MatchString(spec.User) {
		return "", Token{}, fmt.Errorf("%w: user %q: no such account", ErrInvalid, spec.User)
	}
	if spec.Login && spec.User == "" {
		return "", Token{}, fmt.Errorf("%w: a login token needs a user", ErrInvalid)
	}
	if spec.Idle < 0 || spec.Idle > spec.TTL {
		return "", Token{}, fmt.Errorf("%w: idle %v: want at most the ttl, %v", ErrInvalid, spec.Idle, spec.TTL)
	}
	if err := checkTokenName(spec.Name); err != nil {
		return "", Token{}, err
	}
	if err := checkBy(spec.By); err != nil {
		return "", Token{}, err
	}
	login := "0"
	if spec.Login {
		login = "1"
	}
	now := s.now()
	// A fresh id meets another token's with odds of 2^-64 per token; try
	// again rather than fail when it does.
	for range 3 {
		id, secret, sha := newSecret()
		res, err := s.run(ctx, createTokenScript, id, sha, spec.User, spec.Name, joinRoles(roles), login,
			ms(now), spec.By, ms(now.Add(spec.TTL)), s.retention.Milliseconds(), s.maxLogin, spec.Idle.Milliseconds())
		if err != nil {
			return "", Token{}, fmt.Errorf("auth: create token: %w", err)
		}
		switch status(res) {
		case "ok":
			return secret, decodeToken(fields(res[1])), nil
		case "collision":
			continue
		case "nouser":
			return "", Token{}, fmt.Errorf("%w: user %s: no such account", ErrInvalid, spec.User)
		case "disabled":
			return "", Token{}, fmt.Errorf("%w: user %s: the account is disabled", ErrInvalid, spec.User)
		case "role":
			return "", Token{}, fmt.Errorf("%w: user %s does not hold the role %v", ErrInvalid, spec.User, res[1])
		default:
			return "", Token{}, fmt.Errorf("auth: create token: script replied %v", res)
		}
	}
	return "", Token{}, errors.New("auth: create token: token ids keep colliding")
}

// Token returns a token that exists, ended or not, or an error wrapping
// ErrNotFound.
func (s *Store) Token(ctx context.Context, id string) (Token, error) {
	if !validTokenID(id) {
		return Token{}, fmt.Errorf("%w: token %q", ErrNotFound, id)
	}
	h, err := s.rdb.HGetAll(ctx, s.tokenKey(id)).Result()
	if err != nil {
		return Token{}, fmt.Errorf("auth: token %s: %w", id, err)
	}
	if len(h) == 0 {
		return Token{}, fmt.Errorf("%w: token %s", ErrNotFound, id)
	}
	return decodeToken(h), nil
}

// Tokens returns the live tokens, newest first; with includeEnded also
// those expired or revoked in the last Retention.
func (s *Store) Tokens(ctx context.Context, includeEnded bool) ([]Token, error) {
	ids, err := s.rdb.ZRange(ctx, s.key("tokens"), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("auth: tokens: %w", err)
	}
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	// One round trip: the keys share the {auth} slot.
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGetAll(ctx, s.tokenKey(id))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("auth: tokens: %w", err)
	}
	now := s.now()
	out := make([]Token, 0, len(ids))
	for _, c := range cmds {
		h := c.Val()
		if len(h) == 0 {
			continue // gone since the index was read, or not yet pruned
		}
		t := decodeToken(h)
		if includeEnded || !t.Ended(now) {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b Token) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// RevokeToken revokes a token and returns it; it stays listed for
// Retention. Revoking a revoked token returns it unchanged. An unknown id
// is an error wrapping ErrNotFound.
func (s *Store) RevokeToken(ctx context.Context, id, by string) (Token, error) {
	if !validTokenID(id) {
		return Token{}, fmt.Errorf("%w: token %q", ErrNotFound, id)
	}
	if err := checkBy(by); err != nil {
		return Token{}, err
	}
	res, err := s.run(ctx, revokeTokenScript, id, ms(s.now()), by, s.retention.Milliseconds())
	if err != nil {
		return Token{}, fmt.Errorf("auth: revoke token %s: %w", id, err)
	}
	if status(res) == "notfound" {
		return Token{}, fmt.Errorf("%w: token %s", ErrNotFound, id)
	}
	return decodeToken(fields(res[1])), nil
}
