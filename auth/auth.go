// Package auth says who may use hotline's API and console: accounts with
// roles and argon2id-hashed passwords, bearer tokens stored hashed with a
// role set and an expiry, and the Principal a request acts as. It owns the
// auth keys in Redis.
package auth

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Role is what an account or a token may do. Routes name the roles they
// need (web's route table); a principal holds one or more.
type Role string

// The roles of a hotline's users.
const (
	Agent      Role = "agent"      // takes citizens' calls: its own state and day
	Visitor    Role = "visitor"    // works the return-visit queue (回访)
	Supervisor Role = "supervisor" // watches the rates, reviews complaints, manages agents' states
	Ops        Role = "ops"        // watches trunks, the telephony backend, bans
	Admin      Role = "admin"      // manages accounts, tokens, agents' provisioning, bans
	Organizer  Role = "organizer"  // an organizer's desk or system: signs for, reports on and returns its own orders
)

// Roles lists every role, in the order the documentation shows them.
var Roles = []Role{Agent, Visitor, Supervisor, Ops, Admin, Organizer}

// ParseRole reads a role's name; an unknown one is an error wrapping
// ErrInvalid.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if !slices.Contains(Roles, r) {
		return "", fmt.Errorf("%w: role %q: want one of agent, visitor, supervisor, ops, admin, organizer", ErrInvalid, s)
	}
	return r, nil
}

// Errors of the package; test with errors.Is.
var (
	ErrNotFound = errors.New("auth: not found")
	ErrInvalid  = errors.New("auth: invalid")
	ErrConflict = errors.New("auth: conflict")
	// ErrBadCredentials is a wrong password or an unknown user: the two
	// are not told apart.
	ErrBadCredentials = errors.New("auth: wrong user name or password")
	// ErrBadToken is a token that is malformed, unknown or has the wrong
	// secret.
	ErrBadToken = errors.New("auth: unknown token")
	ErrExpired  = errors.New("auth: token expired")
	ErrRevoked  = errors.New("auth: token revoked")
	ErrDisabled = errors.New("auth: account disabled")
)

// Principal is who a request acts as: an account through one of its
// tokens, or a token that acts for no account.
type Principal struct {
	// User is the account's name, or "token:<id>" for a token that acts
	// for no account. Decisions (a complaint upheld, a token revoked)
	// record it.
	User string `json:"user"`
	// Roles are the token's roles that the account still holds.
	Roles []Role `json:"roles"`
	// AgentID is the agent the account is, for the agent and visitor
	// roles; empty otherwise.
	AgentID string `json:"agent_id,omitempty"`
	// OrganizerID is the organizer the account acts for, for the
	// organizer role; empty otherwise.
	OrganizerID string    `json:"organizer_id,omitempty"`
	TokenID     string    `json:"token_id"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// Has reports whether p holds role r.
func (p Principal) Has(r Role) bool { return slices.Contains(p.Roles, r) }

// HasAny reports whether p holds one of rs.
func (p Principal) HasAny(rs ...Role) bool {
	return slices.ContainsFunc(rs, p.Has)
}
