package web

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/callback"
	"github.com/hotline12345/hotline/evaluation"
)

// VisitStore is what the API does with return visits; a
// *callback.Store is one.
type VisitStore interface {
	Next(ctx context.Context, agent string, lease time.Duration) (callback.Lease, error)
	Renew(ctx context.Context, id, agent string, lease time.Duration) (time.Time, error)
	Attempted(ctx context.Context, id, agent string, a callback.Attempt, caller string) (callback.Visit, error)
	Get(ctx context.Context, id string) (callback.Visit, error)
	List(ctx context.Context, st callback.State, limit int, cursor string) ([]callback.Visit, string, error)
	Release(ctx context.Context, agent, why string) ([]string, error)
	FedBack(ctx context.Context, appealID string, appeals callback.AppealReader) (callback.Decision, error)
	Rates(ctx context.Context, by callback.By, days []string) ([]callback.Rates, error)
	EachCounted(ctx context.Context, days []string, f func(callback.Counted) error) error
	Audit(ctx context.Context, days []string) (callback.Audit, error)
	OnDoNotCall(ctx context.Context, number string) (bool, error)
	Held(ctx context.Context, agent string) ([]callback.Lease, error)
	AttemptsBy(ctx context.Context, agent string, since time.Time) ([]callback.AgentAttempt, error)
}

// MyVisits is a return-visit agent's work: the visits it holds and the
// attempts it recorded today.
type MyVisits struct {
	Held          []callback.Lease        `json:"held"`
	AttemptsToday []callback.AgentAttempt `json:"attempts_today"`
}

// VisitCaller places a visit's call: the agent's phone rings first; when
// the agent answers, the citizen's number is dialled through a trunk and
// the two are bridged. It returns once they are, or why not; a citizen
// not reached is an attempt it records.
type VisitCaller interface {
	CallVisit(ctx context.Context, agentID string, v callback.Visit, number string) (VisitCallReply, error)
}

// The states of a visit's call.
const (
	VisitCallConnected = "connected"
	VisitCallFailed    = "not_connected"
)

// VisitCallReply is how a visit's call went.
type VisitCallReply struct {
	// State is connected (the agent and the citizen talk) or
	// not_connected.
	State string `json:"state"`
	// CallID and AgentCallID are the citizen's and the agent's legs.
	CallID      string `json:"call_id,omitempty"`
	AgentCallID string `json:"agent_call_id,omitempty"`
	// Leg is the leg that failed: agent (the agent's phone did not
	// answer: nothing is recorded) or citizen.
	Leg    string `json:"leg,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Outcome is the attempt recorded when the citizen was not reached
	// (busy, no_answer, unreachable), and Visit the visit after it.
	Outcome callback.Outcome `json:"outcome,omitempty"`
	Visit   *callback.Visit  `json:"visit,omitempty"`
}

// VisitWork is a visit given to a return-visit agent: the visit, its
// lease, and what the appeal says that the visit needs — its category,
// date, organizers and the feedback given, never what the citizen said.
type VisitWork struct {
	Visit      callback.Visit   `json:"visit"`
	LeaseUntil time.Time        `json:"lease_until"`
	Category   appeal.Category  `json:"category"`
	Created    time.Time        `json:"appeal_created_at"`
	Organizers []string         `json:"organizers,omitempty"`
	Feedback   *appeal.Feedback `json:"feedback,omitempty"`
	Caller     string           `json:"caller,omitempty" pii:"phone"`
}

// AttemptRequest records how an attempt at a visit went.
type AttemptRequest struct {
	Outcome callback.Outcome `json:"outcome"`
	Note    string           `json:"note,omitempty"`
	// Later is when the citizen asked to be called (call_later).
	Later *time.Time `json:"later,omitempty"`
	// Answers are a completed return visit's three answers.
	Answers *callback.Answers `json:"answers,omitempty"`
}

// LeaseReply is a renewed lease.
type LeaseReply struct {
	Until time.Time `json:"until"`
}

// visitAgent is the agent a return-visit request acts for: the token's
// own.
func visitAgent(w http.ResponseWriter, r *http.Request) (string, bool) {
	p, _ := PrincipalOf(r.Context())
	if p.AgentID == "" {
		writeError(w, http.StatusForbidden, "this token's account is no agent: return visits are an agent's work")
		return "", false
	}
	return p.AgentID, true
}

func (a *api) myVisits(w http.ResponseWriter, r *http.Request) {
	agent, ok := visitAgent(w, r)
	if !ok {
		return
	}
	held, err := a.opts.Visits.Held(r.Context(), agent)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	now := a.now().In(a.location())
	midnight := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, a.location())
	attempts, err := a.opts.Visits.AttemptsBy(r.Context(), agent, midnight)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if held == nil {
		held = []callback.Lease{}
	}
	if attempts == nil {
		attempts = []callback.AgentAttempt{}
	}
	a.reply(w, r, http.StatusOK, MyVisits{Held: held, AttemptsToday: attempts})
}

func (a *api) nextVisit(w http.ResponseWriter, r *http.Request) {
	agent, ok := visitAgent(w, r)
	if !ok {
		return
	}
	l, err := a.opts.Visits.Next(r.Context(), agent, 0)
	if closed := (*callback.ErrClosed)(nil); errors.As(err, &closed) {
		writeError(w, http.StatusNotFound, "no visit is due: outside the calling windows; the next opens "+closed.Opens.In(a.location()).Format(time.RFC3339))
		return
	}
	if errors.Is(err, callback.ErrNone) {
		writeError(w, http.StatusNotFound, "no visit is due")
		return
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	work := VisitWork{Visit: l.Visit, LeaseUntil: l.Until, Category: l.Visit.Category, Organizers: l.Visit.Organizers}
	if ap, err := a.opts.Appeals.Get(r.Context(), l.Visit.Appeal); err == nil {
		work.Created, work.Feedback, work.Caller = ap.CreatedAt, ap.Feedback, ap.Caller
	}
	a.reply(w, r, http.StatusOK, work)
}

func (a *api) renewVisit(w http.ResponseWriter, r *http.Request) {
	agent, ok := visitAgent(w, r)
	if !ok {
		return
	}
	until, err := a.opts.Visits.Renew(r.Context(), r.PathValue("id"), agent, 0)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.reply(w, r, http.StatusOK, LeaseReply{Until: until})
}

func (a *api) attemptVisit(w http.ResponseWriter, r *http.Request) {
	agent, ok := visitAgent(w, r)
	if !ok {
		return
	}
	var b AttemptRequest
	if !decodeBody(w, r, &b) {
		return
	}
	v, err := a.opts.Visits.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	caller := ""
	if b.Outcome == callback.Refused && v.Appeal != "" {
		ap, err := a.opts.Appeals.Get(r.Context(), v.Appeal)
		if err != nil {
			a.fail(w, r, fmt.Errorf("the visit's appeal: %w", err))
			return
		}
		caller = ap.Caller
	}
	note(r, "outcome", string(b.Outcome))
	if b.Answers != nil {
		note(r, "response", string(b.Answers.Response))
		note(r, "solution", string(b.Answers.Solution))
		note(r, "satisfaction", string(b.Answers.Satisfaction))
	}
	got, err := a.opts.Visits.Attempted(r.Context(), v.ID, agent, callback.Attempt{Outcome: b.Outcome, Note: b.Note, Later: b.Later, Answers: b.Answers}, caller)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.reply(w, r, http.StatusOK, got)
}

func (a *api) callVisit(w http.ResponseWriter, r *http.Request) {
	agent, ok := visitAgent(w, r)
	if !ok {
		return
	}
	if a.opts.VisitCalls == nil {
		writeError(w, http.StatusServiceUnavailable, "this hotline places no calls")
		return
	}
	id := r.PathValue("id")
	// The call is made on a visit the agent holds, whose lease it
	// extends.
	if _, err := a.opts.Visits.Renew(r.Context(), id, agent, 0); err != nil {
		a.fail(w, r, err)
		return
	}
	v, err := a.opts.Visits.Get(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if v.Appeal == "" {
		writeError(w, http.StatusConflict, "the visit has no appeal, so no number to call")
		return
	}
	ap, err := a.opts.Appeals.Get(r.Context(), v.Appeal)
	if err != nil {
		a.fail(w, r, fmt.Errorf("the visit's appeal: %w", err))
		return
	}
	dnc, err := a.opts.Visits.OnDoNotCall(r.Context(), ap.Caller)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if dnc {
		writeError(w, http.StatusConflict, "the citizen's number is on the do-not-call list")
		return
	}
	reply, err := a.opts.VisitCalls.CallVisit(r.Context(), agent, v, ap.Caller)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.reply(w, r, http.StatusOK, reply)
}

func (a *api) listVisits(w http.ResponseWriter, r *http.Request) {
	limit, cursor, ok := pageQuery(w, r)
	if !ok {
		return
	}
	st := callback.State(r.URL.Query().Get("state"))
	if st == "" {
		st = callback.Waiting
	}
	vs, next, err := a.opts.Visits.List(r.Context(), st, limit, cursor)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.reply(w, r, http.StatusOK, Page[callback.Visit]{Items: vs, NextCursor: next})
}

// visitRoutes are the return visits' routes.
func (a *api) visitRoutes() []Route {
	visitors := []auth.Role{auth.Visitor}
	var states []string
	for _, s := range callback.ListStates {
		states = append(states, string(s))
	}
	return []Route{
		{Method: "GET", Path: "/api/v1/visits", Summary: "return visits and call-backs in a state: waiting (the worklist's order), leased, or ended (newest first)",
			Roles: []auth.Role{auth.Supervisor, auth.Admin}, Query: []Param{{Name: "state", Type: "string", Enum: states, Description: "waiting when absent"}, limitParam, cursorParam},
			Reply: Page[callback.Visit]{}, handle: a.listVisits},
		{Method: "GET", Path: "/api/v1/visits/mine", Summary: "one's own work: the visits one holds a lease on, and the attempts one recorded today",
			Roles: visitors, Reply: MyVisits{}, handle: a.myVisits},
		{Method: "POST", Path: "/api/v1/visits/next", Summary: "take the next visit due (emergencies first) with a 10-minute lease; 404 when none is due",
			Roles: visitors, Reply: VisitWork{}, Errors: []int{404}, handle: a.nextVisit},
		{Method: "POST", Path: "/api/v1/visits/{id}/renew", Summary: "renew the lease on a visit one holds, for 10 minutes from now",
			Roles: visitors, Reply: LeaseReply{}, Errors: []int{409}, handle: a.renewVisit},
		{Method: "POST", Path: "/api/v1/visits/{id}/call", Summary: "call the citizen of a visit one holds: the agent's phone rings first, then the citizen's through a trunk, showing the hotline's number, and the two are bridged; a citizen not reached (busy, no answer, unreachable) is an attempt recorded",
			Roles: visitors, Reply: VisitCallReply{}, Errors: []int{409, 503}, handle: a.callVisit},
		{Method: "POST", Path: "/api/v1/visits/{id}/attempts", Summary: "record an attempt at a visit one holds: completed (a return visit with its three answers), no_answer, busy, unreachable, wrong_number, refused (onto the do-not-call list) or call_later",
			Roles: visitors, Body: AttemptRequest{}, Reply: callback.Visit{}, Errors: []int{409}, handle: a.attemptVisit},
		{Method: "GET", Path: "/api/v1/rates", Summary: "the three rates of completed return visits (response, solution, satisfaction), each with numerator and denominator, by organizer, category, district or for all; format=csv lists every visit counted",
			Roles: []auth.Role{auth.Supervisor, auth.Admin}, Query: append([]Param{byParam, {Name: "format", Type: "string", Enum: []string{"json", "csv"}, Description: "json (default): the rates; csv: every visit counted"}}, windowParams...),
			Reply: RatesReply{}, CSV: strings.Join(ratesColumns, ","), handle: a.rates},
		{Method: "GET", Path: "/api/v1/rates/audit", Summary: "recompute the rates' counters of a window from the visit records; differences and visits not counted are listed",
			Roles: []auth.Role{auth.Supervisor, auth.Admin}, Query: windowParams, Reply: AuditReply{}, handle: a.ratesAudit},
	}
}

var byParam = Param{Name: "by", Type: "string", Enum: []string{"all", "organizer", "category", "district"}, Description: "all when absent"}

// RatesReply are the three rates of a window, by a grouping.
type RatesReply struct {
	Window evaluation.Window `json:"window"`
	By     callback.By       `json:"by"`
	// PartlySolvedCounts says whether "partly solved" counts as solved.
	PartlySolvedCounts bool             `json:"partly_solved_counts"`
	Items              []callback.Rates `json:"items"`
}

// AuditReply is what an audit of the rates found.
type AuditReply struct {
	Window evaluation.Window `json:"window"`
	callback.Audit
	// OK: no difference, no visit left out.
	OK bool `json:"ok"`
}

// ratesColumns are the CSV of the visits counted.
var ratesColumns = []string{"day", "visit", "appeal", "completed_at", "agent", "organizer", "district", "category", "response", "solution", "satisfaction"}

func (a *api) rates(w http.ResponseWriter, r *http.Request) {
	win, ok := a.window(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	by := callback.By(q.Get("by"))
	if by == "" {
		by = callback.ByAll
	}
	if !slices.Contains(callback.Bys, by) {
		writeError(w, http.StatusBadRequest, "by "+strconv.Quote(string(by))+": want all, organizer, category or district")
		return
	}
	switch q.Get("format") {
	case "", "json":
	case "csv":
		a.ratesCSV(w, r, win)
		return
	default:
		writeError(w, http.StatusBadRequest, "format "+strconv.Quote(q.Get("format"))+": want json or csv")
		return
	}
	items, err := a.opts.Visits.Rates(r.Context(), by, win.Days())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.reply(w, r, http.StatusOK, RatesReply{Window: win, By: by, PartlySolvedCounts: a.opts.PartlySolvedCounts, Items: items})
}

// ratesCSV streams every visit the window's rates counted; a store error
// after the first row aborts the answer, so that a cut list never looks
// whole.
func (a *api) ratesCSV(w http.ResponseWriter, r *http.Request, win evaluation.Window) {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="rates-`+win.From+`-`+win.To+`.csv"`)
	cw := csv.NewWriter(w)
	_ = cw.Write(ratesColumns)
	err := a.opts.Visits.EachCounted(r.Context(), win.Days(), func(c callback.Counted) error {
		cw.Write([]string{c.Day, c.Visit, c.Appeal, c.CompletedAt.In(a.location()).Format(time.RFC3339), c.Agent, c.Organizer, c.District,
			string(c.Category), string(c.Answers.Response), string(c.Answers.Solution), string(c.Answers.Satisfaction)})
		return cw.Error()
	})
	if err != nil {
		a.opts.Logger.Warn().Err(err).Str("path", r.URL.Path).Msg("rates list cut short")
		panic(http.ErrAbortHandler)
	}
	cw.Flush()
}

func (a *api) ratesAudit(w http.ResponseWriter, r *http.Request) {
	win, ok := a.window(w, r)
	if !ok {
		return
	}
	au, err := a.opts.Visits.Audit(r.Context(), win.Days())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if au.Differences == nil {
		au.Differences = []callback.Difference{}
	}
	if au.Uncounted == nil {
		au.Uncounted = []string{}
	}
	a.reply(w, r, http.StatusOK, AuditReply{Window: win, Audit: au, OK: len(au.Differences) == 0 && len(au.Uncounted) == 0})
}
