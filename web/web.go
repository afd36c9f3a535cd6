// Package web serves the HTTP side of hotline: the JSON API, health and
// Prometheus metrics.
package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/calllog"
	"github.com/hotline12345/hotline/storage"
	"github.com/hotline12345/hotline/web/console"
)

// CallStore is what the API reads of call records.
type CallStore interface {
	Get(ctx context.Context, id string) (calllog.Record, error)
	Page(ctx context.Context, limit int, cursor string) ([]calllog.Record, string, error)
}

// AppealStore is what the API reads and changes of appeals; an
// *appeal.Store is one.
type AppealStore interface {
	Get(ctx context.Context, id string) (appeal.Appeal, error)
	ByCall(ctx context.Context, callID string) (appeal.Appeal, error)
	Create(ctx context.Context, n appeal.New) (appeal.Appeal, error)
	Find(ctx context.Context, f appeal.Filter) ([]appeal.Appeal, string, error)
	Step(ctx context.Context, id string, act appeal.Action) (appeal.Appeal, appeal.Event, error)
	History(ctx context.Context, id string) ([]appeal.Event, error)
	Organizers(ctx context.Context) ([]appeal.Organizer, error)
	PutOrganizer(ctx context.Context, o appeal.Organizer) error
	DeleteOrganizer(ctx context.Context, id string) error
	SwitchPeakMode(ctx context.Context, on bool, by, reason string) (appeal.PeakSwitch, error)
	PeakModeStatus(ctx context.Context, limit int) (appeal.PeakStatus, error)
	ChaseList(ctx context.Context, which appeal.Chase, limit int) ([]appeal.ChaseGroup, error)
	ClockEvents(ctx context.Context, limit int, cursor string) ([]appeal.ClockEvent, string, error)
}

// NodeStore lists the live nodes; *acd.Store has it.
type NodeStore interface {
	LiveNodes(ctx context.Context) ([]acd.LiveNode, error)
}

// NodeList is the live nodes.
type NodeList struct {
	Nodes []acd.LiveNode `json:"nodes"`
}

func (a *api) listNodes(w http.ResponseWriter, r *http.Request) {
	nodes := []acd.LiveNode{}
	if a.opts.Nodes != nil {
		var err error
		if nodes, err = a.opts.Nodes.LiveNodes(r.Context()); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	a.reply(w, r, http.StatusOK, NodeList{Nodes: nodes})
}

// ProbeReport is the synthetic probe's latest calls.
type ProbeReport struct {
	// Calls are the probe's calls among the latest Scanned calls, newest
	// first: each ran the menu and checked what it heard (EndCause,
	// Stage, the prompts played).
	Calls   []calllog.Record `json:"calls"`
	Scanned int              `json:"scanned"`
}

// probeScan is how many of the latest calls GET /api/v1/probe looks
// through; a probe calling every minute is among them unless the
// hotline takes more than that many calls between two probes.
const probeScan = 500

func (a *api) probeCalls(w http.ResponseWriter, r *http.Request) {
	recs, _, err := a.opts.Calls.Page(r.Context(), probeScan, "")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rep := ProbeReport{Calls: []calllog.Record{}, Scanned: len(recs)}
	for _, rec := range recs {
		if rec.Synthetic && len(rep.Calls) < 20 {
			rep.Calls = append(rep.Calls, rec)
		}
	}
	a.reply(w, r, http.StatusOK, rep)
}

// Check is one health check; a nil error is healthy.
type Check struct {
	Name  string
	Check func(ctx context.Context) error
	// Degraded, when set, names how the node still serves while this
	// check fails ("journal": Redis is down and the journal keeps what
	// callers say): the answer is then 200, status degraded, with this
	// mode, so that balancers keep sending calls. Without it a failure
	// makes the node unavailable (503).
	Degraded string
}

// Options configure the HTTP handler.
type Options struct {
	Calls        CallStore
	Appeals      AppealStore
	Agents       AgentStore
	Distribution Distribution
	Ratings      RatingStore
	Accounts     Accounts
	// Bans throttles failed logins and tokens; nil throttles nothing.
	Bans Bans
	// Trunks are the carriers' trunks; nil lists none.
	Trunks TrunkStore
	// Visits are the return visits.
	Visits VisitStore
	// VisitCalls places return visits' calls; nil places none.
	VisitCalls VisitCaller
	// VisitOnFeedback decides an appeal's return visit when its feedback
	// arrives.
	VisitOnFeedback bool
	// PartlySolvedCounts: "partly solved" counts as solved in the
	// solution rate (said in the rates' answers).
	PartlySolvedCounts bool

	Checks []Check
	// Draining, when set and true, makes /healthz answer 503 draining:
	// the node is stopping and takes no new calls.
	Draining func() bool
	Gatherer prometheus.Gatherer
	Logger   zerolog.Logger

	// MetricsToken, when set, is the bearer token /metrics and /healthz
	// ask for; empty leaves them open.
	MetricsToken string
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client: bans and logs need the client's address, not theirs.
	TrustedProxies []netip.Prefix
	// LoginTTL is how long a token made by logging in lasts; 12 h when 0.
	LoginTTL time.Duration
	// SessionTTL is how long a console session lasts at most (12 h when
	// 0), and SessionIdle how long it may go unused (1 h when 0).
	SessionTTL, SessionIdle time.Duration
	// Nodes lists the nodes with their calls and health; nil lists none.
	Nodes NodeStore
	// Audit is the audit log of state-changing actions; nil keeps none.
	Audit AuditLog
	// Live tells consoles what changed; nil serves no live stream.
	Live LiveFeed
	// Closing, closed when the server shuts down, ends the live streams.
	Closing <-chan struct{}

	// Location is the hotline's zone: days begin in it, and every time
	// in every answer is given in it. Nil means appeal.DefaultLocation
	// (Asia/Shanghai).
	Location *time.Location
	// Now is the clock for "today". Nil means time.Now.
	Now func() time.Time
	// LineChanged, when set, is called after a review or reversal moved
	// the complaint line, before the API answers.
	LineChanged func(ctx context.Context)
}

// MaxLimit caps how many records one list request returns.
const MaxLimit = 500

// NewHandler returns the HTTP handler for the API, /healthz and /metrics.
// Every store of Options is required. State-changing requests from
// another origin (a web page on another site, in a browser of this host)
// are refused whatever they carry.
func NewHandler(opts Options) http.Handler {
	a := &api{opts: opts, document: openAPIDocument()}
	mux := http.NewServeMux()
	methods := map[string][]string{}
	for _, rt := range a.routes() {
		mux.HandleFunc(rt.Method+" "+rt.Path, a.guard(rt))
		methods[rt.Path] = append(methods[rt.Path], rt.Method)
	}
	for path, ms := range methods {
		allow := strings.Join(ms, ", ")
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeJSON(w, http.StatusMethodNotAllowed, Error{Error: r.Method + " is not served here; " + allow + " are", Path: r.URL.Path})
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, Error{Error: "no such route", Path: r.URL.Path})
	})
	mux.Handle("GET /console/", console.Handler())
	mux.Handle("GET /{$}", http.RedirectHandler("/console/", http.StatusFound))
	mux.Handle("GET /healthz", openOrToken(opts.MetricsToken, http.HandlerFunc(a.health)))
	if opts.Gatherer != nil {
		mux.Handle("GET /metrics", openOrToken(opts.MetricsToken, promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{})))
	}
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusForbidden, "cross-origin request refused: a state-changing request must come from the hotline's own origin or a client that is not a browser")
	}))
	return cop.Handler(mux)
}

type api struct {
	opts Options
	// document is the OpenAPI document, made once.
	document func() ([]byte, error)
}

func (a *api) listCalls(w http.ResponseWriter, r *http.Request) {
	limit, cursor, ok := pageQuery(w, r)
	if !ok {
		return
	}
	calls, next, err := a.opts.Calls.Page(r.Context(), limit, cursor)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.reply(w, r, http.StatusOK, Page[calllog.Record]{Items: calls, NextCursor: next})
}

func (a *api) getCall(w http.ResponseWriter, r *http.Request) {
	rec, err := a.opts.Calls.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.reply(w, r, http.StatusOK, rec)
}

// Health is the answer of /healthz.
type Health struct {
	// Status is ok, degraded (serving in Mode), unavailable (a check
	// failed) or draining (stopping).
	Status string `json:"status"`
	// Mode names how a degraded node serves ("journal").
	Mode   string            `json:"mode,omitempty"`
	Checks map[string]string `json:"checks"`
}

// health runs every check with a short deadline. A failure makes the
// answer 503 unavailable so that a load balancer takes the node out,
// unless the check names a mode the node serves in without it: then 200
// degraded with that mode. A draining node answers 503 draining.
func (a *api) health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	h := Health{Status: "ok", Checks: map[string]string{}}
	code := http.StatusOK
	for _, c := range a.opts.Checks {
		err := c.Check(ctx)
		switch {
		case err == nil:
			h.Checks[c.Name] = "ok"
			continue
		case c.Degraded != "" && code == http.StatusOK:
			h.Status, h.Mode = "degraded", c.Degraded
		default:
			h.Status, h.Mode, code = "unavailable", "", http.StatusServiceUnavailable
		}
		h.Checks[c.Name] = err.Error()
	}
	if a.opts.Draining != nil && a.opts.Draining() {
		h.Status, h.Mode, code = "draining", "", http.StatusServiceUnavailable
	}
	writeJSON(w, code, h)
}

func (a *api) internal(w http.ResponseWriter, r *http.Request, err error) {
	a.opts.Logger.Error().Err(err).Str("path", r.URL.Path).Msg("http")
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		writeError(w, http.StatusServiceUnavailable, "the store did not answer in time")
		return
	}
	if storage.Unreachable(err) {
		// Redis is down or failing over: nothing was done, and asking again
		// shortly may work.
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "the store (Redis) does not answer; nothing was done: try again shortly")
		return
	}
	writeError(w, http.StatusInternalServerError, "internal error")
}

// reply answers v as JSON, shaped for who asked: times in the hotline's
// zone, callers' numbers masked for roles that do not need them.
func (a *api) reply(w http.ResponseWriter, r *http.Request, code int, v any) {
	p, ok := PrincipalOf(r.Context())
	writeJSON(w, code, presenter{loc: a.location(), mask: !ok || !p.HasAny(NumberRoles...)}.present(v))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
