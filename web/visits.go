package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/callback"
)

// VisitStore is what the API does with return visits; a
// *callback.Store is one.
type VisitStore interface {
	Next(ctx context.Context, agent string, lease time.Duration) (callback.Lease, error)
	Renew(ctx context.Context, id, agent string, lease time.Duration) (time.Time, error)
	Attempted(ctx context.Context, id, agent string, a callback.Attempt, caller string) (callback.Visit, error)
	Get(ctx context.Context, id string) (callback.Visit, error)
	List(ctx context.Context, st callback.State, limit int, cursor string) ([]callback.Visit, string, error)
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

func (a *api) nextVisit(w http.ResponseWriter, r *http.Request) {
	agent, ok := visitAgent(w, r)
	if !ok {
		return
	}
	l, err := a.opts.Visits.Next(r.Context(), agent, 0)
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
	got, err := a.opts.Visits.Attempted(r.Context(), v.ID, agent, callback.Attempt{Outcome: b.Outcome, Note: b.Note, Later: b.Later}, caller)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.reply(w, r, http.StatusOK, got)
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
		{Method: "POST", Path: "/api/v1/visits/next", Summary: "take the next visit due (emergencies first) with a 10-minute lease; 404 when none is due",
			Roles: visitors, Reply: VisitWork{}, Errors: []int{404}, handle: a.nextVisit},
		{Method: "POST", Path: "/api/v1/visits/{id}/renew", Summary: "renew the lease on a visit one holds, for 10 minutes from now",
			Roles: visitors, Reply: LeaseReply{}, Errors: []int{409}, handle: a.renewVisit},
		{Method: "POST", Path: "/api/v1/visits/{id}/attempts", Summary: "record an attempt at a visit one holds: completed, no_answer, busy, unreachable, wrong_number, refused (onto the do-not-call list) or call_later",
			Roles: visitors, Body: AttemptRequest{}, Reply: callback.Visit{}, Errors: []int{409}, handle: a.attemptVisit},
	}
}
