package sip

import (
	"context"
	"errors"
	"net/netip"
	"time"
)

// ErrNotRegistered is returned by a Locator for a user with no live
// registration.
var ErrNotRegistered = errors.New("sip: user not registered")

// Binding is one registered contact of a user (RFC 3261 §10): where the
// user's phone takes requests.
type Binding struct {
	// User is the user part of the address of record, the agent's SIP
	// user.
	User string `json:"user"`
	// Contact is the Contact URI the phone registered.
	Contact string `json:"contact"`
	// Source is where the REGISTER came from. Requests to a phone behind
	// NAT go there rather than to a private Contact address (RFC 5626's
	// flow reuse, as registrars do for phones without outbound support).
	Source netip.AddrPort `json:"source"`
	// Transport is the transport the REGISTER came over: "udp", "tcp", "tls".
	Transport string `json:"transport"`
	// Expires is when the binding lapses unless refreshed.
	Expires time.Time `json:"expires"`
	// UserAgent is the phone's User-Agent header, for operators.
	UserAgent string `json:"user_agent,omitempty"`
}

// Locator finds where a user's phone can be reached, across every node
// sharing the registrations.
type Locator interface {
	// Lookup returns the user's live bindings, newest first, or
	// ErrNotRegistered.
	Lookup(ctx context.Context, user string) ([]Binding, error)
}
