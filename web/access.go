package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/ban"
)

// Accounts is what the API uses of accounts and tokens; *auth.Store has
// it.
type Accounts interface {
	Authenticate(ctx context.Context, secret string) (auth.Principal, error)
	CheckPassword(ctx context.Context, name, password string) (auth.User, error)
	SetPassword(ctx context.Context, name, password, by string) error
	AddUser(ctx context.Context, spec auth.UserSpec) (auth.User, error)
	User(ctx context.Context, name string) (auth.User, error)
	Users(ctx context.Context) ([]auth.User, error)
	UpdateUser(ctx context.Context, name string, c auth.UserChange) (auth.User, error)
	CreateToken(ctx context.Context, spec auth.TokenSpec) (string, auth.Token, error)
	Token(ctx context.Context, id string) (auth.Token, error)
	Tokens(ctx context.Context, includeEnded bool) ([]auth.Token, error)
	RevokeToken(ctx context.Context, id, by string) (auth.Token, error)
}

// Bans throttles failed logins and tokens, with the registrar's
// mechanics; *ban.Bans has it.
type Bans interface {
	Fail(ctx context.Context, f ban.Failure) error
	Banned(ctx context.Context, src netip.Addr, service, user string) (time.Time, bool, error)
	List(ctx context.Context) ([]ban.Ban, error)
	Lift(ctx context.Context, subject string) (ban.Ban, error)
}

// service names the API's failures in the bans and their log line.
const service = "http"

// NumberRoles see callers' numbers whole: they talk to citizens, or act
// on their appeals. Every other role sees them masked (138****8000) — a
// return-visit agent too: hotline dials the citizen for it, so it needs
// the number only when its account is an agent's as well.
var NumberRoles = []auth.Role{auth.Agent, auth.Supervisor, auth.Organizer}

type principalKey struct{}

// PrincipalOf returns who the request acts as, once the route's check
// let it through; ok is false on a public route.
func PrincipalOf(ctx context.Context) (auth.Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(auth.Principal)
	return p, ok
}

// guard wraps a route's handler in its checks: the source is not banned,
// the bearer token is good, and its roles are among the route's. Failed
// tokens count against the source as failed passwords do.
func (a *api) guard(rt Route) http.HandlerFunc {
	if !rt.Public && len(rt.Roles) == 0 {
		// The route table's test finds this first; a route that slipped
		// through must not be served open.
		panic(fmt.Sprintf("web: route %s %s names no roles", rt.Method, rt.Path))
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if rt.Public {
			rt.handle(w, r)
			return
		}
		ctx := r.Context()
		src := a.source(r)
		if !a.allowSource(w, r, src, "") {
			return
		}
		cred, ok := requestCredential(r)
		if !ok {
			unauthorized(w, "this needs a token: Authorization: Bearer <token> (hotline tokens create, or POST /api/v1/login)")
			return
		}
		if cred.cookie && r.Header.Get(BackgroundHeader) == "1" {
			ctx = auth.Passive(ctx)
		}
		p, err := a.opts.Accounts.Authenticate(ctx, cred.secret)
		switch {
		case errors.Is(err, auth.ErrBadToken):
			a.failed(ctx, src, p.User, !strings.HasPrefix(p.User, "token:"), "unknown token")
			if cred.cookie {
				a.clearSession(w, r)
			}
			unauthorized(w, "the token is not known (mistyped, or from another hotline)")
			return
		case errors.Is(err, auth.ErrExpired), errors.Is(err, auth.ErrRevoked), errors.Is(err, auth.ErrDisabled):
			// The holder had this token once: not a guess, not counted.
			if cred.cookie {
				a.clearSession(w, r)
				unauthorized(w, "the session has ended: "+strings.TrimPrefix(err.Error(), "auth: ")+"; log in again")
				return
			}
			unauthorized(w, "the token can no longer be used: "+strings.TrimPrefix(err.Error(), "auth: "))
			return
		case err != nil:
			a.internal(w, r, err)
			return
		}
		if msg := forbidden(rt, p, r); msg != "" {
			writeError(w, http.StatusForbidden, msg)
			return
		}
		ctx = context.WithValue(context.WithValue(ctx, principalKey{}, p), credentialKey{}, cred)
		r = r.WithContext(ctx)
		if rt.Method == http.MethodGet {
			rt.handle(w, r)
			return
		}
		a.serveAudited(rt, w, r, p)
	}
}

// allowSource answers 429 and reports false when the source, or the user
// when one is named, is banned.
func (a *api) allowSource(w http.ResponseWriter, r *http.Request, src netip.Addr, user string) bool {
	if a.opts.Bans == nil || !src.IsValid() {
		return true
	}
	until, banned, err := a.opts.Bans.Banned(r.Context(), src, service, user)
	if err != nil {
		a.internal(w, r, err)
		return false
	}
	if !banned {
		return true
	}
	secs := max(int(time.Until(until).Seconds()+0.999), 1)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	msg := "too many failed attempts from " + src.String()
	if user != "" {
		msg = "too many failed attempts"
	}
	writeError(w, http.StatusTooManyRequests, fmt.Sprintf("%s: refused until %s", msg, until.In(a.location()).Format(time.RFC3339)))
	return false
}

// failed counts a failed password or token against the source (and the
// user, for passwords).
func (a *api) failed(ctx context.Context, src netip.Addr, user string, perUser bool, reason string) {
	if a.opts.Bans == nil || !src.IsValid() {
		return
	}
	var id [12]byte
	_, _ = rand.Read(id[:])
	f := ban.Failure{Service: service, Source: src, User: user, PerUser: perUser && user != "", Reason: reason, ID: hex.EncodeToString(id[:])}
	if perUser && user != "" {
		if _, err := a.opts.Accounts.User(ctx, user); errors.Is(err, auth.ErrNotFound) {
			f.UnknownUser, f.PerUser = true, false
		}
	}
	if err := a.opts.Bans.Fail(ctx, f); err != nil {
		a.opts.Logger.Error().Err(err).Str("source_ip", src.String()).Msg("http: counting a failure")
	}
}

// forbidden says why p may not call rt, or "" when it may.
func forbidden(rt Route, p auth.Principal, r *http.Request) string {
	var held []auth.Role
	for _, role := range rt.Roles {
		if p.Has(role) {
			held = append(held, role)
		}
	}
	if len(held) == 0 {
		return fmt.Sprintf("%s %s needs the role %s; this token has %s", rt.Method, rt.Path, orList(rt.Roles), andList(p.Roles))
	}
	if rt.Own && !slices.ContainsFunc(held, func(role auth.Role) bool { return !ownOnly(role) }) {
		if id := r.PathValue("id"); p.AgentID == "" || id != p.AgentID {
			return fmt.Sprintf("%s %s: an agent may do this for its own agent only (this token's is %q)", rt.Method, rt.Path, p.AgentID)
		}
	}
	return ""
}

// ownOnly roles reach an Own route only for their own agent.
func ownOnly(r auth.Role) bool { return r == auth.Agent || r == auth.Visitor }

func orList(rs []auth.Role) string  { return joinRoles(rs, " or ") }
func andList(rs []auth.Role) string { return joinRoles(rs, " and ") }

func joinRoles(rs []auth.Role, last string) string {
	if len(rs) == 0 {
		return "no role"
	}
	ss := roleNames(rs)
	if len(ss) == 1 {
		return ss[0]
	}
	return strings.Join(ss[:len(ss)-1], ", ") + last + ss[len(ss)-1]
}

// bearer reads "Authorization: Bearer <token>" (RFC 6750 §2.1).
func bearer(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

func unauthorized(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="hotline"`)
	writeError(w, http.StatusUnauthorized, msg)
}

// source is the address the request came from: the peer, or, when the
// peer is a trusted proxy, the last address in X-Forwarded-For that is
// not one.
func (a *api) source(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	addr := ap.Addr().Unmap()
	if !a.trusted(addr) {
		return addr
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return addr
		}
		if hop = hop.Unmap(); !a.trusted(hop) {
			return hop
		}
	}
	return addr
}

func (a *api) trusted(addr netip.Addr) bool {
	return slices.ContainsFunc(a.opts.TrustedProxies, func(p netip.Prefix) bool { return p.Contains(addr) })
}

// openOrToken serves h to anyone when no token is set, and otherwise only
// with that token: /metrics and /healthz for scrapers and load balancers.
func openOrToken(token string, h http.Handler) http.Handler {
	if token == "" {
		return h
	}
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ := bearer(r)
		sum := sha256.Sum256([]byte(got))
		if subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			unauthorized(w, "this needs the metrics token (http.metrics_token)")
			return
		}
		h.ServeHTTP(w, r)
	})
}
