package web

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/hotline12345/hotline/audit"
	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/internal/eventstream"
	"github.com/hotline12345/hotline/live"
)

// SessionCookie holds a console session's secret: a login token's, sent
// by the browser instead of an Authorization header.
const SessionCookie = "hotline_session"

// BackgroundHeader marks a request a page makes by itself (a refresh
// after a live change): it does not keep the session from its idle
// timeout.
const BackgroundHeader = "X-Hotline-Background"

// AuditLog keeps what people did; *audit.Log has it.
type AuditLog interface {
	Record(ctx context.Context, e audit.Entry) error
	Find(ctx context.Context, f audit.Filter, limit int, cursor string) ([]audit.Entry, string, error)
	Each(ctx context.Context, from, to time.Time, f func(audit.Entry) error) error
}

// LiveFeed tells consoles on every node what changed; *live.Feed has it.
type LiveFeed interface {
	Publish(topic string)
	EndSession(ctx context.Context, tokenID string) error
	Subscribe() (<-chan live.Change, func())
	Subscribers() int
}

// MaxStreams bounds the live streams one node serves.
const MaxStreams = 2000

type credentialKey struct{}

// credential is how the request authenticated.
type credential struct {
	secret string
	cookie bool
}

func credentialOf(ctx context.Context) credential {
	c, _ := ctx.Value(credentialKey{}).(credential)
	return c
}

// requestCredential reads the bearer token, or else the session cookie.
func requestCredential(r *http.Request) (credential, bool) {
	if s, ok := bearer(r); ok {
		return credential{secret: s}, true
	}
	if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
		return credential{secret: c.Value, cookie: true}, true
	}
	return credential{}, false
}

// secure reports whether the browser reached hotline over TLS: directly,
// or through a trusted proxy that says so.
func (a *api) secure(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil && a.trusted(ap.Addr().Unmap()) {
		return strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
	}
	return false
}

func (a *api) setSession(w http.ResponseWriter, r *http.Request, secret string, ttl time.Duration) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: secret, Path: "/", MaxAge: int(ttl / time.Second),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: a.secure(r)})
}

func (a *api) clearSession(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: a.secure(r)})
}

func (a *api) sessionTimes() (ttl, idle time.Duration) {
	ttl, idle = a.opts.SessionTTL, a.opts.SessionIdle
	if ttl <= 0 {
		ttl = 12 * time.Hour
	}
	if idle <= 0 || idle > ttl {
		idle = min(time.Hour, ttl)
	}
	return ttl, idle
}

// session logs a person in for the console: a login token with the
// session's idle timeout, in a cookie the page's scripts cannot read.
func (a *api) session(w http.ResponseWriter, r *http.Request) {
	ttl, idle := a.sessionTimes()
	u, secret, tok, ok := a.logIn(w, r, auth.TokenSpec{Name: "console", TTL: ttl, Idle: idle}, "session")
	if !ok {
		return
	}
	a.setSession(w, r, secret, ttl)
	p := auth.Principal{User: u.Name, Roles: tok.Roles, AgentID: u.AgentID, OrganizerID: u.OrganizerID, TokenID: tok.ID, ExpiresAt: tok.ExpiresAt}
	a.reply(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)), http.StatusCreated, Me{Principal: p, Account: &u})
}

// audit records e with the request's source and route; a failure is
// logged: the action itself is done.
func (a *api) audit(r *http.Request, e audit.Entry) {
	if a.opts.Audit == nil {
		return
	}
	if e.Source == "" {
		if src := a.source(r); src.IsValid() {
			e.Source = src.String()
		}
	}
	if e.Method == "" {
		e.Method, e.Path = r.Method, r.URL.Path
	}
	if err := a.opts.Audit.Record(context.WithoutCancel(r.Context()), e); err != nil {
		a.opts.Logger.Error().Err(err).Str("action", e.Action).Str("user", e.User).Msg("audit: an action not recorded")
	}
	if a.opts.Live != nil {
		a.opts.Live.Publish(live.Audit)
	}
}

func roleNames(rs []auth.Role) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r)
	}
	return out
}

// auditNote collects what a handler says of its action for the audit
// log: a pause's reason, a review's decision.
type auditNote struct {
	subject string
	detail  map[string]string
}

type auditNoteKey struct{}

// note adds key=value to the audit event of the request's action.
func note(r *http.Request, key, value string) {
	n, ok := r.Context().Value(auditNoteKey{}).(*auditNote)
	if !ok || value == "" {
		return
	}
	if n.detail == nil {
		n.detail = map[string]string{}
	}
	n.detail[key] = value
}

// statusRecorder remembers the status a handler answered.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// serveAudited runs a state-changing route's handler and records what it
// did in the audit log, refused or not, and tells consoles its topics
// changed when it succeeded.
func (a *api) serveAudited(rt Route, w http.ResponseWriter, r *http.Request, p auth.Principal) {
	n := &auditNote{subject: firstPathValue(rt, r)}
	rec := &statusRecorder{ResponseWriter: w}
	rt.handle(rec, r.WithContext(context.WithValue(r.Context(), auditNoteKey{}, n)))
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	a.audit(r, audit.Entry{User: p.User, Roles: roleNames(p.Roles), Action: rt.action(), Status: rec.status, Subject: n.subject, Detail: n.detail})
	if rec.status < 300 && a.opts.Live != nil {
		for _, t := range rt.topics() {
			a.opts.Live.Publish(t)
		}
	}
}

func firstPathValue(rt Route, r *http.Request) string {
	for _, name := range rt.PathParams() {
		if v := r.PathValue(name); v != "" {
			return v
		}
	}
	return ""
}

// action names a route's action in the audit log: its Audit name, or
// its path's collection and last word (agents.pause, complaints.review),
// or the collection and what the method does to it (tokens.create,
// organizers.put, tokens.delete).
func (rt Route) action() string {
	if rt.Audit != "" {
		return rt.Audit
	}
	var words []string
	endsInWord := false
	for _, seg := range strings.Split(strings.TrimPrefix(rt.Path, "/api/v1/"), "/") {
		endsInWord = !strings.HasPrefix(seg, "{")
		if endsInWord {
			words = append(words, seg)
		}
	}
	if len(words) > 1 && endsInWord {
		return words[0] + "." + words[len(words)-1]
	}
	verb := map[string]string{"POST": "create", "PUT": "put", "PATCH": "change", "DELETE": "delete"}[rt.Method]
	return words[0] + "." + verb
}

// topics are what a route's success changes, for the consoles.
func (rt Route) topics() []string {
	coll, _, _ := strings.Cut(strings.TrimPrefix(rt.Path, "/api/v1/"), "/")
	switch coll {
	case "agents":
		return []string{live.Agents}
	case "complaints":
		return []string{live.Complaints, live.Line}
	case "visits":
		return []string{live.Visits}
	case "peak-mode":
		return []string{live.Peak}
	case "appeals":
		return []string{live.Appeals}
	case "trunks":
		return []string{live.Trunks}
	}
	return nil
}

// liveStream sends the changes of every node as server-sent events until
// the client goes, the node stops, or the session ends (logged out in
// another tab, expired, revoked): then it says so and ends.
func (a *api) liveStream(w http.ResponseWriter, r *http.Request) {
	if a.opts.Live == nil {
		writeError(w, http.StatusNotFound, "this node has no live feed")
		return
	}
	if a.opts.Live.Subscribers() >= MaxStreams {
		w.Header().Set("Retry-After", "10")
		writeError(w, http.StatusServiceUnavailable, "this node serves as many live streams as it can; try another node or later")
		return
	}
	ctx := r.Context()
	p, _ := PrincipalOf(ctx)
	cred := credentialOf(ctx)
	ch, stop := a.opts.Live.Subscribe()
	defer stop()
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(event string, v any) bool {
		doc, _ := json.Marshal(v)
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, doc); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	ended := func(why string) {
		send("session", map[string]any{"ended": true, "why": why})
	}
	if _, err := fmt.Fprint(w, "retry: 2000\n: hotline live changes\n\n"); err != nil || rc.Flush() != nil {
		return
	}
	ping := time.NewTicker(15 * time.Second)
	defer ping.Stop()
	recheck := time.NewTicker(10 * time.Second)
	defer recheck.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.opts.Closing:
			return
		case c := <-ch:
			if c.Topic == live.Session {
				if c.ID == p.TokenID {
					ended("logged out")
					return
				}
				continue
			}
			if !send("change", c) {
				return
			}
		case <-ping.C:
			if _, err := fmt.Fprint(w, ": ping\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case <-recheck.C:
			_, err := a.opts.Accounts.Authenticate(auth.Passive(ctx), cred.secret)
			switch {
			case err == nil:
			case errors.Is(err, auth.ErrExpired), errors.Is(err, auth.ErrRevoked), errors.Is(err, auth.ErrDisabled), errors.Is(err, auth.ErrBadToken):
				ended(strings.TrimPrefix(err.Error(), "auth: "))
				return
			default:
				// The store does not answer: the session may be fine;
				// look again at the next tick.
			}
		}
	}
}

// auditColumns are the CSV export's columns.
var auditColumns = []string{"id", "at", "user", "roles", "source", "action", "method", "path", "status", "subject", "detail"}

// listAudit lists the audit log newest first, or, with format=csv, every
// event of a range of days (the last 30 by default) oldest first; both
// searched by user and action.
func (a *api) listAudit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	filter := audit.Filter{User: q.Get("user"), Action: q.Get("action")}
	switch q.Get("format") {
	case "", "json":
	case "csv":
		a.exportAudit(w, r, filter)
		return
	default:
		writeError(w, http.StatusBadRequest, "format "+strconv.Quote(q.Get("format"))+": want json or csv")
		return
	}
	limit, cursor, ok := pageQuery(w, r)
	if !ok {
		return
	}
	evs, next, err := a.opts.Audit.Find(r.Context(), filter, limit, cursor)
	if errors.Is(err, eventstream.ErrCursor) {
		writeError(w, http.StatusBadRequest, "cursor: not one this API gave")
		return
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if evs == nil {
		evs = []audit.Entry{}
	}
	a.reply(w, r, http.StatusOK, Page[audit.Entry]{Items: evs, NextCursor: next})
}

func (a *api) exportAudit(w http.ResponseWriter, r *http.Request, filter audit.Filter) {
	q := r.URL.Query()
	loc := a.location()
	today := a.now().In(loc)
	to := time.Date(today.Year(), today.Month(), today.Day(), 0, 0, 0, 0, loc).AddDate(0, 0, 1)
	from := to.AddDate(0, 0, -30)
	for _, f := range []struct {
		name string
		t    *time.Time
		add  int
	}{{"from", &from, 0}, {"to", &to, 1}} {
		if s := q.Get(f.name); s != "" {
			d, err := time.ParseInLocation(time.DateOnly, s, loc)
			if err != nil {
				writeError(w, http.StatusBadRequest, f.name+" "+strconv.Quote(s)+": want a day, YYYY-MM-DD")
				return
			}
			*f.t = d.AddDate(0, 0, f.add)
		}
	}
	if !from.Before(to) {
		writeError(w, http.StatusBadRequest, "to: before from")
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="audit-`+from.Format(time.DateOnly)+`-`+to.AddDate(0, 0, -1).Format(time.DateOnly)+`.csv"`)
	cw := csv.NewWriter(w)
	_ = cw.Write(auditColumns)
	err := a.opts.Audit.Each(r.Context(), from, to, func(e audit.Entry) error {
		if !filter.Match(e) {
			return nil
		}
		detail, _ := json.Marshal(e.Detail)
		if len(e.Detail) == 0 {
			detail = nil
		}
		_ = cw.Write([]string{e.ID, e.At.In(loc).Format(time.RFC3339Nano), e.User, strings.Join(e.Roles, " "), e.Source, e.Action,
			e.Method, e.Path, strconv.Itoa(e.Status), e.Subject, string(detail)})
		return cw.Error()
	})
	cw.Flush()
	if err != nil {
		// Cut short: the status is sent; end the body so the cut shows.
		a.opts.Logger.Error().Err(err).Msg("audit export cut short")
		panic(http.ErrAbortHandler)
	}
}
