package web

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hotline12345/hotline/audit"
	"github.com/hotline12345/hotline/auth"
)

// LoginRequest logs a person in with the account's password.
type LoginRequest struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

// TokenReply is a token just made: its secret is shown this once, and
// only its hash is kept.
type TokenReply struct {
	Secret string `json:"token"`
	auth.Token
}

// Me is who the request acts as.
type Me struct {
	auth.Principal
	// Account is the account acted for; absent for a token that acts for
	// none.
	Account *auth.User `json:"account,omitempty"`
}

// PasswordChange is a person's own new password, with the current one.
type PasswordChange struct {
	Current string `json:"current"`
	New     string `json:"new"`
}

// PasswordSet is an account's new password, set by an admin.
type PasswordSet struct {
	Password string `json:"password"`
}

// UserRequest creates an account.
type UserRequest struct {
	Name    string      `json:"name"`
	Roles   []auth.Role `json:"roles"`
	AgentID string      `json:"agent_id,omitempty"`
	// OrganizerID is the organizer an account of the organizer role acts
	// for.
	OrganizerID string `json:"organizer_id,omitempty"`
	Password    string `json:"password,omitempty"`
}

// UserPatch changes some of an account's fields: those present.
type UserPatch struct {
	Roles       *[]auth.Role `json:"roles,omitempty"`
	AgentID     *string      `json:"agent_id,omitempty"`
	OrganizerID *string      `json:"organizer_id,omitempty"`
	Disabled    *bool        `json:"disabled,omitempty"`
}

// TokenRequest asks for a token.
type TokenRequest struct {
	// User is the account the token acts for; empty for none (a
	// service's token, acting as "token:<id>").
	User  string      `json:"user,omitempty"`
	Name  string      `json:"name,omitempty"`
	Roles []auth.Role `json:"roles"`
	// ExpiresIn is how long the token lasts: "90d", "12h", "30m".
	ExpiresIn string `json:"expires_in"`
}

// login checks an account's password and answers a token with the
// account's roles, for LoginTTL. Failures count against the source and
// the account, with the registrar's ban mechanics.
func (a *api) login(w http.ResponseWriter, r *http.Request) {
	ttl := a.opts.LoginTTL
	if ttl <= 0 {
		ttl = 12 * time.Hour
	}
	_, secret, tok, ok := a.logIn(w, r, auth.TokenSpec{Name: "login", TTL: ttl}, "token")
	if !ok {
		return
	}
	a.reply(w, r, http.StatusCreated, TokenReply{Secret: secret, Token: tok})
}

// logIn reads a login's body, checks its password and makes its token
// from spec (the account's roles, for the account), answering a failure
// itself; the login is audited, the token's id under detail.
func (a *api) logIn(w http.ResponseWriter, r *http.Request, spec auth.TokenSpec, detail string) (auth.User, string, auth.Token, bool) {
	var b LoginRequest
	if !decodeBody(w, r, &b) {
		return auth.User{}, "", auth.Token{}, false
	}
	u, ok := a.checkLogin(w, r, b)
	if !ok {
		return auth.User{}, "", auth.Token{}, false
	}
	spec.User, spec.Roles, spec.Login, spec.By = u.Name, u.Roles, true, u.Name
	secret, tok, err := a.opts.Accounts.CreateToken(r.Context(), spec)
	if err != nil {
		a.fail(w, r, err)
		return auth.User{}, "", auth.Token{}, false
	}
	a.audit(r, audit.Entry{User: u.Name, Roles: roleNames(tok.Roles), Action: "login", Status: http.StatusCreated, Detail: map[string]string{detail: tok.ID}})
	return u, secret, tok, true
}

// checkLogin checks a login's password, answering the failure itself:
// a failure counts against the source and the account, with the
// registrar's ban mechanics, and is audited.
func (a *api) checkLogin(w http.ResponseWriter, r *http.Request, b LoginRequest) (auth.User, bool) {
	ctx, src := r.Context(), a.source(r)
	if !a.allowSource(w, r, src, b.User) {
		a.audit(r, audit.Entry{User: b.User, Action: "login.failed", Status: http.StatusTooManyRequests, Detail: map[string]string{"why": "banned"}})
		return auth.User{}, false
	}
	u, err := a.opts.Accounts.CheckPassword(ctx, b.User, b.Password)
	switch {
	case errors.Is(err, auth.ErrBadCredentials):
		a.failed(ctx, src, b.User, true, "wrong password or unknown user")
		a.audit(r, audit.Entry{User: b.User, Action: "login.failed", Status: http.StatusUnauthorized, Detail: map[string]string{"why": "wrong password or unknown user"}})
		unauthorized(w, "wrong user name or password")
		return auth.User{}, false
	case errors.Is(err, auth.ErrDisabled):
		a.audit(r, audit.Entry{User: b.User, Action: "login.failed", Status: http.StatusUnauthorized, Detail: map[string]string{"why": "disabled"}})
		unauthorized(w, "the account is disabled")
		return auth.User{}, false
	case err != nil:
		a.fail(w, r, err)
		return auth.User{}, false
	}
	return u, true
}

// logout revokes the token the request came with; a console session's
// ends on every tab and node at once.
func (a *api) logout(w http.ResponseWriter, r *http.Request) {
	p, _ := PrincipalOf(r.Context())
	if _, err := a.opts.Accounts.RevokeToken(r.Context(), p.TokenID, p.User); err != nil {
		a.fail(w, r, err)
		return
	}
	if credentialOf(r.Context()).cookie {
		a.clearSession(w, r)
	}
	if a.opts.Live != nil {
		if err := a.opts.Live.EndSession(r.Context(), p.TokenID); err != nil {
			// The other tabs find out at their next look at the session.
			a.opts.Logger.Warn().Err(err).Str("user", p.User).Msg("logout: the other tabs not told at once")
		}
	}
	if p.AgentID != "" && a.opts.Visits != nil {
		// The visits the agent held go back to the worklist now, not when
		// their leases run out.
		if ids, err := a.opts.Visits.Release(r.Context(), p.AgentID, "the agent logged out"); err != nil {
			a.opts.Logger.Warn().Err(err).Str("agent", p.AgentID).Msg("logout: the agent's visits wait for their leases to run out")
		} else if len(ids) > 0 {
			a.opts.Logger.Info().Str("agent", p.AgentID).Strs("visits", ids).Msg("logout: the agent's visits put back")
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *api) me(w http.ResponseWriter, r *http.Request) {
	p, _ := PrincipalOf(r.Context())
	m := Me{Principal: p}
	if !strings.HasPrefix(p.User, "token:") {
		u, err := a.opts.Accounts.User(r.Context(), p.User)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		m.Account = &u
	}
	a.reply(w, r, http.StatusOK, m)
}

// changeOwnPassword sets the caller's password after checking the
// current one, which counts as a login attempt.
func (a *api) changeOwnPassword(w http.ResponseWriter, r *http.Request) {
	var b PasswordChange
	if !decodeBody(w, r, &b) {
		return
	}
	ctx, src := r.Context(), a.source(r)
	p, _ := PrincipalOf(ctx)
	if strings.HasPrefix(p.User, "token:") {
		writeError(w, http.StatusBadRequest, "this token acts for no account, which has no password")
		return
	}
	if !a.allowSource(w, r, src, p.User) {
		return
	}
	if _, err := a.opts.Accounts.CheckPassword(ctx, p.User, b.Current); err != nil {
		if errors.Is(err, auth.ErrBadCredentials) {
			a.failed(ctx, src, p.User, true, "wrong current password")
			writeError(w, http.StatusBadRequest, "current: not the account's password")
			return
		}
		a.fail(w, r, err)
		return
	}
	if err := a.opts.Accounts.SetPassword(ctx, p.User, b.New, p.User); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *api) listUsers(w http.ResponseWriter, r *http.Request) {
	limit, cursor, ok := pageQuery(w, r)
	if !ok {
		return
	}
	users, err := a.opts.Accounts.Users(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	page, err := pageOf(users, limit, cursor, func(u auth.User) string { return u.Name })
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.reply(w, r, http.StatusOK, page)
}

func (a *api) createUser(w http.ResponseWriter, r *http.Request) {
	var b UserRequest
	if !decodeBody(w, r, &b) {
		return
	}
	p, _ := PrincipalOf(r.Context())
	u, err := a.opts.Accounts.AddUser(r.Context(), auth.UserSpec{Name: b.Name, Roles: b.Roles, AgentID: b.AgentID, OrganizerID: b.OrganizerID, Password: b.Password, By: p.User})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/users/"+url.PathEscape(u.Name))
	a.reply(w, r, http.StatusCreated, u)
}

func (a *api) getUser(w http.ResponseWriter, r *http.Request) {
	u, err := a.opts.Accounts.User(r.Context(), r.PathValue("name"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.reply(w, r, http.StatusOK, u)
}

func (a *api) patchUser(w http.ResponseWriter, r *http.Request) {
	var b UserPatch
	if !decodeBody(w, r, &b) {
		return
	}
	p, _ := PrincipalOf(r.Context())
	u, err := a.opts.Accounts.UpdateUser(r.Context(), r.PathValue("name"), auth.UserChange{Roles: b.Roles, AgentID: b.AgentID, OrganizerID: b.OrganizerID, Disabled: b.Disabled, By: p.User})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.reply(w, r, http.StatusOK, u)
}

func (a *api) setUserPassword(w http.ResponseWriter, r *http.Request) {
	var b PasswordSet
	if !decodeBody(w, r, &b) {
		return
	}
	p, _ := PrincipalOf(r.Context())
	if err := a.opts.Accounts.SetPassword(r.Context(), r.PathValue("name"), b.Password, p.User); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *api) listTokens(w http.ResponseWriter, r *http.Request) {
	limit, cursor, ok := pageQuery(w, r)
	if !ok {
		return
	}
	all, err := queryBool(r, "all")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	toks, err := a.opts.Accounts.Tokens(r.Context(), all)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	// Newest first: the key counts down with the creation time.
	page, err := pageOf(toks, limit, cursor, func(t auth.Token) string {
		return fmt.Sprintf("%019d-%s", math.MaxInt64-t.CreatedAt.UnixNano(), t.ID)
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.reply(w, r, http.StatusOK, page)
}

func (a *api) createToken(w http.ResponseWriter, r *http.Request) {
	var b TokenRequest
	if !decodeBody(w, r, &b) {
		return
	}
	ttl, err := ParseTTL(b.ExpiresIn)
	if err != nil {
		writeError(w, http.StatusBadRequest, "expires_in: "+err.Error())
		return
	}
	p, _ := PrincipalOf(r.Context())
	secret, tok, err := a.opts.Accounts.CreateToken(r.Context(), auth.TokenSpec{User: b.User, Name: b.Name, Roles: b.Roles, TTL: ttl, By: p.User})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	note(r, "token", tok.ID)
	note(r, "roles", strings.Join(roleNames(tok.Roles), " "))
	note(r, "for", b.User)
	w.Header().Set("Location", "/api/v1/tokens/"+url.PathEscape(tok.ID))
	a.reply(w, r, http.StatusCreated, TokenReply{Secret: secret, Token: tok})
}

func (a *api) getToken(w http.ResponseWriter, r *http.Request) {
	tok, err := a.opts.Accounts.Token(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.reply(w, r, http.StatusOK, tok)
}

// revokeToken answers the token, revoked; revoking it again changes
// nothing.
func (a *api) revokeToken(w http.ResponseWriter, r *http.Request) {
	p, _ := PrincipalOf(r.Context())
	tok, err := a.opts.Accounts.RevokeToken(r.Context(), r.PathValue("id"), p.User)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.reply(w, r, http.StatusOK, tok)
}

// ParseTTL reads a token's lifetime: a Go duration ("12h", "90m") or a
// number of days ("90d").
func ParseTTL(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 1 || n > 3660 {
			return 0, fmt.Errorf("%q: want a number of days from 1 to 3660, such as 90d", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q: want a duration such as 90d, 12h or 30m", s)
	}
	return d, nil
}

// queryBool reads a boolean query parameter; absent is false.
func queryBool(r *http.Request, name string) (bool, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return false, nil
	}
	v, err := strconv.ParseBool(s)
	if err != nil {
		return false, fmt.Errorf("%s %q: want true or false", name, s)
	}
	return v, nil
}
