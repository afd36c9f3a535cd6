package ban

import (
	"fmt"
	"net/netip"
	"strings"
)

// userPrefix starts the subject of a user; no address starts so.
const userPrefix = "user:"

// Kinds of subject, as hotline_bans_active's kind label says them.
const (
	KindSource = "source"
	KindUser   = "user"
)

// SourceSubject names the source addr as its failures are counted and its
// bans kept: an IPv4 address as itself, an IPv6 address by its /64
// ("2001:db8:1:2::/64"), since one host is commonly given a whole /64 and
// picks addresses in it at will (RFC 4291 §2.5.1, RFC 8981); an
// IPv4-mapped IPv6 address is its IPv4 address. It is "" for the zero
// Addr.
func SourceSubject(addr netip.Addr) string {
	if !addr.IsValid() {
		return ""
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is4() {
		return addr.String()
	}
	return netip.PrefixFrom(addr, 64).Masked().String()
}

// UserSubject names a user of a service: "user:<service>:<name>".
func UserSubject(service, name string) string {
	return userPrefix + service + ":" + name
}

// kindOf says whether subject is a source's or a user's.
func kindOf(subject string) string {
	if strings.HasPrefix(subject, userPrefix) {
		return KindUser
	}
	return KindSource
}

// ParseSubject reads a subject as an operator writes it (for Lift) and
// returns it as SourceSubject and UserSubject write it: an IPv4 address,
// an IPv6 /64 or any address in it, or user:<service>:<name>. Anything
// else is an error wrapping ErrInvalid.
func ParseSubject(s string) (string, error) {
	if rest, ok := strings.CutPrefix(s, userPrefix); ok {
		service, name, ok := strings.Cut(rest, ":")
		if !ok || !validService(service) || name == "" {
			return "", fmt.Errorf("%w: subject %q: want user:<service>:<name>, as in user:http:alice", ErrInvalid, s)
		}
		return s, nil
	}
	bad := fmt.Errorf("%w: subject %q: want an IPv4 address, an IPv6 /64 (2001:db8:1:2::/64) or user:<service>:<name>", ErrInvalid, s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return "", bad
		}
		a, bits := p.Addr(), p.Bits()
		if a.Is4In6() && bits >= 96 {
			a, bits = a.Unmap(), bits-96
		}
		if (a.Is4() && bits == 32) || (a.Is6() && !a.Is4In6() && bits == 64) {
			return SourceSubject(a), nil
		}
		return "", bad
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return "", bad
	}
	return SourceSubject(a), nil
}

// validService accepts a service's name: what metrics labels, log
// messages and user subjects can carry without quoting, and without the
// ':' that ends the service in a user subject.
func validService(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}
