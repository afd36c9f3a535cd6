// Package acd holds the agents and the automatic call distribution of the
// hotline: who the agents are, what state each is in, the queues of
// callers waiting for one, which caller is offered to which agent, and the
// service-level figures (the 15-second answer rate, abandoned calls, the
// average wait). It knows nothing of SIP or Asterisk: a backend rings the
// agent it is told to and reports what happened.
//
// All state lives in Redis so that several hotline nodes share one set of
// agents and one queue; every change is one Lua script, atomic and safe to
// retry.
package acd

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hotline12345/hotline/appeal"
)

// Errors of the package; test with errors.Is.
var (
	ErrNotFound = errors.New("acd: not found")
	ErrInvalid  = errors.New("acd: invalid")
	ErrConflict = errors.New("acd: conflict") // e.g. a SIP user taken by another agent
	ErrState    = errors.New("acd: not allowed in the agent's state")
)

// State is where an agent is in the day's work.
type State string

// Agent states.
const (
	Offline   State = "offline"   // no phone registered
	Available State = "available" // waiting for a call
	Ringing   State = "ringing"   // a call is offered
	Talking   State = "talking"   // in a conversation
	WrapUp    State = "wrapup"    // finishing the last call's notes
	Paused    State = "paused"    // away, with a reason
)

// States lists every state, for metrics.
var States = []State{Offline, Available, Ringing, Talking, WrapUp, Paused}

// PauseNoAnswer is the reason of an agent paused for missing offers.
const PauseNoAnswer = "no-answer"

// Categories of calls agents take, as appeals name them.
var Categories = []appeal.Category{appeal.Emergency, appeal.Livelihood, appeal.General, appeal.Complex}

// AgentSpec is an agent as provisioned (config file or API). The password
// is used once, to derive the digest hashes, and never stored.
type AgentSpec struct {
	ID         string            `json:"id,omitempty" yaml:"id"` // required, but in the path of a PUT
	Name       string            `json:"name" yaml:"name"`
	SIPUser    string            `json:"sip_user" yaml:"sip_user"`
	Password   string            `json:"password,omitempty" yaml:"password"`
	Categories []appeal.Category `json:"categories" yaml:"categories"`
}

// Agent is an agent with its current state.
type Agent struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	SIPUser    string            `json:"sip_user"`
	Categories []appeal.Category `json:"categories"`

	State  State     `json:"state"`
	Reason string    `json:"reason,omitempty"` // why paused
	Since  time.Time `json:"since"`            // in this state since
	// IdleSince is when the agent last became free; the longest idle
	// available agent is offered the next call.
	IdleSince  *time.Time `json:"idle_since,omitempty"`
	CallID     string     `json:"call_id,omitempty"` // the call ringing or talking
	Missed     int        `json:"missed"`            // offers missed in a row
	Registered bool       `json:"registered"`        // a phone is registered
	// PauseNext is a pause asked for during a call, taken when it ends.
	PauseNext string `json:"pause_next,omitempty"`
	// WrapUpUntil is when wrap-up ends.
	WrapUpUntil *time.Time `json:"wrapup_until,omitempty"`
	// Forced is the last time an operator forced the agent's state.
	Forced *Forced `json:"forced,omitempty"`
}

// Forced is an operator's forcing of an agent's state (Store.Force).
type Forced struct {
	By     string    `json:"by"` // the account, or token, that forced it
	At     time.Time `json:"at"`
	From   State     `json:"from"`
	To     State     `json:"to"`
	Reason string    `json:"reason,omitempty"`
	// CallID is the call the agent was ringing or talking on, let go.
	CallID string `json:"call_id,omitempty"`
}

// Takes reports whether the agent takes calls of category c.
func (a Agent) Takes(c appeal.Category) bool { return slices.Contains(a.Categories, c) }

// Credential is what a registrar needs to check an agent's phone: the
// digest hashes of the password, never the password.
type Credential struct {
	AgentID string
	// HA1 is hex MD5(user ":" realm ":" password) (RFC 2617 §3.2.2.2,
	// RFC 3261 §22.4); HA1SHA256 the same with SHA-256 (RFC 7616, RFC 8760).
	HA1, HA1SHA256 string
}

// identPattern bounds ids and SIP users to what fits a URI user part and a
// Redis key without escaping.
var identPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Validate checks a spec; a password is required when requirePassword.
func (s AgentSpec) Validate(requirePassword bool) error {
	if !identPattern.MatchString(s.ID) {
		return fmt.Errorf("%w: id %q: want 1-64 letters, digits, '.', '_' or '-'", ErrInvalid, s.ID)
	}
	if !identPattern.MatchString(s.SIPUser) {
		return fmt.Errorf("%w: sip_user %q: want 1-64 letters, digits, '.', '_' or '-'", ErrInvalid, s.SIPUser)
	}
	if requirePassword && s.Password == "" {
		return fmt.Errorf("%w: password: required for a new agent", ErrInvalid)
	}
	if err := checkPassword(s.Password, s.SIPUser); err != nil {
		return err
	}
	if len(s.Categories) == 0 {
		return fmt.Errorf("%w: categories: want at least one of emergency, livelihood, general, complex", ErrInvalid)
	}
	for _, c := range s.Categories {
		if !c.Valid() {
			return fmt.Errorf("%w: category %q: want emergency, livelihood, general or complex", ErrInvalid, c)
		}
	}
	if len(s.Name) > 200 {
		return fmt.Errorf("%w: name: longer than 200 characters", ErrInvalid)
	}
	return nil
}

// MinPasswordLength is the shortest phone password taken. A phone's
// password can be tried by anyone who reaches the SIP port; ten
// characters keep guessing out of reach of the registrar's bans.
const MinPasswordLength = 10

// checkPassword refuses a weak phone password; "" (none given) passes.
func checkPassword(pw, sipUser string) error {
	switch {
	case pw == "":
		return nil
	case utf8.RuneCountInString(pw) < MinPasswordLength:
		return fmt.Errorf("%w: password: want at least %d characters", ErrInvalid, MinPasswordLength)
	case len(pw) > 1024:
		return fmt.Errorf("%w: password: longer than 1024 bytes", ErrInvalid)
	case strings.EqualFold(pw, sipUser):
		return fmt.Errorf("%w: password: must not be the sip_user", ErrInvalid)
	}
	return nil
}

// DigestHA1 returns the digest hashes of user's password in realm.
func DigestHA1(user, realm, password string) (md5hex, sha256hex string) {
	a1 := user + ":" + realm + ":" + password
	m := md5.Sum([]byte(a1))
	s := sha256.Sum256([]byte(a1))
	return hex.EncodeToString(m[:]), hex.EncodeToString(s[:])
}
