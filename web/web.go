// Package web serves the HTTP side of hotline: the JSON API, health and
// Prometheus metrics.
package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/calllog"
)

// CallStore is what the API reads of call records.
type CallStore interface {
	Get(ctx context.Context, id string) (calllog.Record, error)
	List(ctx context.Context, limit int) ([]calllog.Record, error)
}

// AppealStore is what the API reads of appeals.
type AppealStore interface {
	Get(ctx context.Context, id string) (appeal.Appeal, error)
}

// Check is one health check; a nil error is healthy.
type Check struct {
	Name  string
	Check func(ctx context.Context) error
}

// Options configure the HTTP handler.
type Options struct {
	Calls    CallStore
	Appeals  AppealStore
	Checks   []Check
	Gatherer prometheus.Gatherer
	Logger   zerolog.Logger

	// Agents serves the agents, the queue and their figures; nil leaves
	// those routes out.
	Agents AgentStore
	// Distribution pauses and resumes agents; nil leaves those routes out.
	Distribution Distribution
	// Ratings serves ratings and complaints; nil leaves those routes out.
	// The day's statistics need both Agents and Ratings.
	Ratings RatingStore
	// Location is the hotline's zone, where days begin. Nil means
	// appeal.DefaultLocation (Asia/Shanghai).
	Location *time.Location
	// Now is the clock for "today". Nil means time.Now.
	Now func() time.Time
}

// MaxLimit caps how many records one list request returns.
const MaxLimit = 500

// NewHandler returns the HTTP handler for the API, /healthz and /metrics.
func NewHandler(opts Options) http.Handler {
	a := &api{opts: opts}
	mux := http.NewServeMux()
	for _, rt := range a.routes() {
		mux.HandleFunc(rt.Method+" "+rt.Path, rt.handle)
	}
	mux.HandleFunc("GET /healthz", a.health)
	if opts.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{}))
	}
	return mux
}

type api struct{ opts Options }

func (a *api) listCalls(w http.ResponseWriter, r *http.Request) {
	limit := 50
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLimit {
			writeError(w, http.StatusBadRequest, "limit must be a whole number from 1 to "+strconv.Itoa(MaxLimit))
			return
		}
		limit = n
	}
	calls, err := a.opts.Calls.List(r.Context(), limit)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	if calls == nil {
		calls = []calllog.Record{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"calls": calls})
}

func (a *api) getCall(w http.ResponseWriter, r *http.Request) {
	rec, err := a.opts.Calls.Get(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, calllog.ErrNotFound):
		writeError(w, http.StatusNotFound, "no call "+strconv.Quote(r.PathValue("id")))
	case err != nil:
		a.internal(w, r, err)
	default:
		writeJSON(w, http.StatusOK, rec)
	}
}

func (a *api) getAppeal(w http.ResponseWriter, r *http.Request) {
	ap, err := a.opts.Appeals.Get(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, appeal.ErrNotFound):
		writeError(w, http.StatusNotFound, "no appeal "+strconv.Quote(r.PathValue("id")))
	case err != nil:
		a.internal(w, r, err)
	default:
		writeJSON(w, http.StatusOK, ap)
	}
}

// health runs every check with a short deadline; any failure makes the
// answer 503 so that a load balancer takes the node out.
func (a *api) health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	status, code := "ok", http.StatusOK
	checks := map[string]string{}
	for _, c := range a.opts.Checks {
		if err := c.Check(ctx); err != nil {
			checks[c.Name] = err.Error()
			status, code = "unavailable", http.StatusServiceUnavailable
			continue
		}
		checks[c.Name] = "ok"
	}
	writeJSON(w, code, map[string]any{"status": status, "checks": checks})
}

func (a *api) internal(w http.ResponseWriter, r *http.Request, err error) {
	a.opts.Logger.Error().Err(err).Str("path", r.URL.Path).Msg("http")
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		writeError(w, http.StatusServiceUnavailable, "the store did not answer in time")
		return
	}
	writeError(w, http.StatusInternalServerError, "internal error")
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
