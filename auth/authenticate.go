package auth

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"slices"
	"time"
)

// usedEvery is how stale a token's LastUsedAt may get: recording every
// request would make each one a write.
const usedEvery = time.Minute

// ErrIdle is a token with an idle timeout that went unused longer: a
// console session left alone. It is ErrExpired too.
var ErrIdle = fmt.Errorf("%w: unused longer than its idle timeout", ErrExpired)

type passiveKey struct{}

// Passive marks a request its user did not make: a page refreshing what
// it shows by itself. Authenticate lets it through without counting it as
// use, so that a console left open still ends at its idle timeout.
func Passive(ctx context.Context) context.Context {
	return context.WithValue(ctx, passiveKey{}, true)
}

func passive(ctx context.Context) bool { v, _ := ctx.Value(passiveKey{}).(bool); return v }

// errNoRoles is a token whose account holds none of its roles any more:
// the account's roles were cut, so the token is as good as revoked.
var errNoRoles = fmt.Errorf("%w: its account no longer holds any of its roles", ErrRevoked)

// Authenticate returns the Principal a token's secret acts as.
//
// A malformed secret, an unknown id and a wrong secret are ErrBadToken;
// an expired token ErrExpired; a revoked one ErrRevoked, and so is one
// whose account holds none of its roles any more (a role taken from an
// account is taken from its tokens at once); a token of a disabled
// account ErrDisabled. When the token was found, the Principal returned
// with an error has TokenID and User set, for throttling per account; it
// is not authenticated. Otherwise it is zero.
//
// A token with an idle timeout unused that long is ErrIdle (which is
// ErrExpired).
//
// It writes nothing on failure; on success it records LastUsedAt, at most
// once a minute per token (more often for a token whose idle timeout is
// short), and not for a Passive request.
func (s *Store) Authenticate(ctx context.Context, secret string) (Principal, error) {
	id, sum, ok := parseSecret(secret)
	if !ok {
		return Principal{}, ErrBadToken
	}
	res, err := s.run(ctx, lookupScript, id)
	if err != nil {
		return Principal{}, fmt.Errorf("auth: authenticate: %w", err)
	}
	if len(res) != 2 {
		return Principal{}, fmt.Errorf("auth: authenticate: script replied %v", res)
	}
	th := fields(res[0])
	if len(th) == 0 {
		return Principal{}, ErrBadToken
	}
	t := decodeToken(th)
	p := Principal{User: t.User, TokenID: t.ID}
	if p.User == "" {
		p.User = "token:" + t.ID
	}
	stored, err := hex.DecodeString(th["sha"])
	if err != nil || subtle.ConstantTimeCompare(stored, sum[:]) != 1 {
		return p, ErrBadToken
	}
	if t.RevokedAt != nil {
		return p, ErrRevoked
	}
	now := s.now()
	if !now.Before(t.ExpiresAt) {
		return p, ErrExpired
	}
	idle := time.Duration(t.IdleSeconds) * time.Second
	if idle > 0 {
		last := t.CreatedAt
		if t.LastUsedAt != nil && t.LastUsedAt.After(last) {
			last = *t.LastUsedAt
		}
		if now.Sub(last) >= idle {
			return p, ErrIdle
		}
	}
	roles := t.Roles
	if t.User != "" {
		uh := fields(res[1])
		if uh["name"] != t.User {
			// The account is gone; accounts are not deleted, so this is
			// damage, and the token acts for nobody.
			return p, fmt.Errorf("%w: its account %s is gone", ErrRevoked, t.User)
		}
		u := decodeUser(uh)
		if u.Disabled {
			return p, ErrDisabled
		}
		roles = slices.DeleteFunc(slices.Clone(roles), func(r Role) bool { return !u.Has(r) })
		p.AgentID = u.AgentID
		p.OrganizerID = u.OrganizerID
	}
	if len(roles) == 0 {
		return Principal{User: p.User, TokenID: p.TokenID}, errNoRoles
	}
	p.Roles = roles
	p.ExpiresAt = t.ExpiresAt
	every := usedEvery
	if idle > 0 {
		// The recorded use may lag by this much: a small part of the
		// idle timeout.
		every = min(every, idle/20)
	}
	if !passive(ctx) && (t.LastUsedAt == nil || now.Sub(*t.LastUsedAt) >= every) {
		// The request is authenticated whether or not its use is
		// recorded; a Redis error here shows on the next request.
		_, _ = s.run(ctx, touchScript, id, ms(now))
	}
	return p, nil
}
