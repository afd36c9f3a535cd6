package auth

import (
	"context"
	"fmt"
	"time"
)

// BootstrapUser is the account Bootstrap makes, or takes back.
const BootstrapUser = "admin"

// HasAdmin reports whether there is a way in as admin: an enabled account
// holding the admin role with a password, or a live admin token that
// Authenticate would accept with the admin role.
func (s *Store) HasAdmin(ctx context.Context) (bool, error) {
	res, err := s.run(ctx, hasAdminScript, ms(s.now()))
	if err != nil {
		return false, fmt.Errorf("auth: has admin: %w", err)
	}
	n, _ := firstInt(res)
	return n == 1, nil
}

// Bootstrap lets the first start of a hotline be administered: when there
// is no way in as admin (HasAdmin), it makes the account "admin" with the
// admin role and no password, or takes an existing "admin" back (enabled,
// with the admin role added; one that was disabled or no admin also loses
// its password and its live tokens, since it was disabled for a reason and
// whoever knew its password was no admin), and an admin token for it
// living ttl. It returns the token's secret with
// created=true; the caller shows it to the operator once.
//
// Of any number of callers, on any number of nodes, at most one gets
// created=true for one lack of an admin: the check and the making are one
// script. Otherwise it returns created=false and no secret.
//
// An admin account without a password does not count as a way in: a
// bootstrap token that expired unused would otherwise leave the hotline
// locked for good.
func (s *Store) Bootstrap(ctx context.Context, ttl time.Duration) (secret string, created bool, err error) {
	if ttl <= 0 || ttl > MaxTokenTTL {
		return "", false, fmt.Errorf("%w: ttl %v: want above zero and at most 10 years", ErrInvalid, ttl)
	}
	now := s.now()
	id, secret, sha := newSecret()
	res, err := s.run(ctx, bootstrapScript, id, sha, ms(now), ms(now.Add(ttl)), s.retention.Milliseconds(), BootstrapUser)
	if err != nil {
		return "", false, fmt.Errorf("auth: bootstrap: %w", err)
	}
	if n, _ := firstInt(res); n != 1 {
		return "", false, nil
	}
	return secret, true, nil
}

// firstInt reads the first element of a script's reply as a number.
func firstInt(res []any) (int64, bool) {
	if len(res) == 0 {
		return 0, false
	}
	n, ok := res[0].(int64)
	return n, ok
}
