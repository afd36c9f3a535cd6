// Package ban throttles authentication: failed attempts are counted per
// source address (and, for logins, per user) in a sliding window shared by
// every node through Redis, and a subject that fails too often is banned
// for a while. Each failure is logged in the one line fail2ban's filters
// match (deploy/fail2ban). Networks on the allow-list are never banned.
// It owns the ban keys in Redis.
package ban

import (
	"errors"
	"net/netip"
	"time"
)

// ErrNotFound is a ban that is not there; test with errors.Is.
var ErrNotFound = errors.New("ban: not found")

// ErrInvalid is a subject, service or failure that can not be right (a
// subject that names neither an address nor a user, a failure without a
// source); test with errors.Is.
var ErrInvalid = errors.New("ban: invalid")

// Failure is one failed authentication.
type Failure struct {
	// Service is "sip" (the registrar) or "http" (the API and console); the
	// log line's message is "<service> auth failed".
	Service string
	Source  netip.Addr
	// User is the user name tried, as given; empty when none was.
	User string
	// UnknownUser says no such user exists. Failures for one unknown user
	// from one source count once per window: a phone set up before its
	// agent exists retries the same name and is not an attack, while
	// guessing names tries many.
	UnknownUser bool
	// PerUser counts the failure against the user too (logins), so that
	// guessing one account's password from many sources is stopped. An
	// UnknownUser is not counted so: it has no password to guess.
	PerUser bool
	Reason  string
	// ID makes counting idempotent: a failure sent again with the same ID
	// counts once.
	ID string
}

// Ban is a subject refused until a time.
type Ban struct {
	// Subject is a source address ("203.0.113.9"; IPv6 by its /64,
	// "2001:db8:1:2::/64") or a user of a service ("user:http:alice").
	Subject  string    `json:"subject"`
	Service  string    `json:"service"` // the service whose failures made it
	Since    time.Time `json:"since"`
	Until    time.Time `json:"until"`
	Failures int       `json:"failures"`
}
