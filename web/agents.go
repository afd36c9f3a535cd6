package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/ban"
	"github.com/hotline12345/hotline/callback"
	"github.com/hotline12345/hotline/calllog"
	"github.com/hotline12345/hotline/evaluation"
	"github.com/hotline12345/hotline/internal/zpage"
	"github.com/hotline12345/hotline/journal"
)

// AgentStore is what the API uses of the agents, the queue and their
// figures; *acd.Store has it.
type AgentStore interface {
	Agents(ctx context.Context) ([]acd.Agent, error)
	Agent(ctx context.Context, id string) (acd.Agent, error)
	Create(ctx context.Context, spec acd.AgentSpec) (acd.Agent, error)
	Update(ctx context.Context, spec acd.AgentSpec) (acd.Agent, error)
	Delete(ctx context.Context, id string) error
	AgentDay(ctx context.Context, id string, t time.Time) (acd.AgentDay, error)
	Queue(ctx context.Context) ([]acd.QueuedCall, error)
	Call(ctx context.Context, callID string) (acd.CallInfo, error)
	Day(ctx context.Context, t time.Time) (acd.DayFigures, error)
}

// Distribution pauses and resumes agents. It is not the AgentStore because
// a resumed agent must be offered the waiting calls at once, on every
// node, not at the next periodic dispatch; *acd.Distributor has it.
type Distribution interface {
	Pause(ctx context.Context, agentID, reason string) (acd.State, error)
	Resume(ctx context.Context, agentID string) (acd.State, error)
	Force(ctx context.Context, agentID string, to acd.State, reason, by string) (acd.Agent, error)
}

// RatingStore is what the API uses of ratings and complaints;
// *evaluation.Store has it.
type RatingStore interface {
	ListPage(ctx context.Context, q evaluation.Query) ([]evaluation.Rating, string, error)
	AgentDay(ctx context.Context, agentID string, day time.Time) (evaluation.AgentDay, error)
	Totals(ctx context.Context, day time.Time) (evaluation.AgentDay, error)
	ComplaintsPage(ctx context.Context, status evaluation.ComplaintStatus, limit int, cursor string) ([]evaluation.Complaint, string, error)
	Review(ctx context.Context, id string, status evaluation.ComplaintStatus, by, note string) (evaluation.Complaint, error)
	Reverse(ctx context.Context, id string, status evaluation.ComplaintStatus, by, note string) (evaluation.Complaint, error)
	Line(ctx context.Context, w evaluation.Window, s evaluation.Scope) (evaluation.Line, error)
	AgentLines(ctx context.Context, w evaluation.Window) (evaluation.Ranking, error)
	Audit(ctx context.Context, w evaluation.Window) ([]evaluation.Difference, error)
	Report(ctx context.Context, w evaluation.Window, sc evaluation.Scope, each func(evaluation.CountedCall) error) error
	Events(ctx context.Context, limit int, cursor string) ([]evaluation.Event, string, error)
	Complaint(ctx context.Context, id string) (evaluation.Complaint, error)
}

// MaxBody caps a request body: an agent or a review is a few hundred
// bytes, and an unbounded body is an easy way to exhaust memory.
const MaxBody = 64 << 10

// AgentDetail is one agent with its figures of the day so far.
type AgentDetail struct {
	acd.Agent
	Today AgentToday `json:"today"`
	// Call is the call the agent is ringing for or talking on.
	Call *AgentCall `json:"call,omitempty"`
}

// AgentCall is the call an agent is on, as its console shows it.
type AgentCall struct {
	ID       string `json:"id"`
	Caller   string `json:"caller,omitempty" pii:"phone"`
	AppealID string `json:"appeal_id,omitempty"`
	// Category is the appeal's, once intake has taken it.
	Category appeal.Category `json:"category,omitempty"`
	// WaitedSeconds is how long the caller waited in the queue before
	// the agent answered (or until now while it rings).
	WaitedSeconds float64 `json:"waited_seconds"`
	// QueuedAt is when the caller joined the queue; AnsweredAt when the
	// agent answered.
	QueuedAt   *time.Time `json:"queued_at,omitempty"`
	AnsweredAt *time.Time `json:"answered_at,omitempty"`
}

// AgentToday is an agent's work and ratings on one day of the hotline's
// zone. The rating counts stay zero when the handler has no RatingStore.
type AgentToday struct {
	Day       string  `json:"day"`
	Served    int64   `json:"served"`
	TalkSec   float64 `json:"talk_seconds"`
	Praise    int64   `json:"praise"`
	BadReview int64   `json:"bad_review"`
	NoRating  int64   `json:"no_rating"`
	Upheld    int64   `json:"upheld"` // bad reviews upheld as effective complaints (合理差评)
}

// QueueReport is the calls waiting for an agent and the day's figures.
type QueueReport struct {
	Calls []acd.QueuedCall `json:"calls"`
	Today acd.DayFigures   `json:"today"`
}

// Stats are one day's figures of the whole hotline.
type Stats struct {
	Queue   acd.DayFigures      `json:"queue"`
	Ratings evaluation.AgentDay `json:"ratings"`
	// Complaints is the day's effective complaint rate of the whole
	// hotline against its line, as GET /api/v1/complaint-line answers it.
	Complaints evaluation.Line `json:"complaints"`
	// PeakMode is peak mode now, with its latest switches: who, when,
	// why.
	PeakMode appeal.PeakStatus `json:"peak_mode"`
	// InProgress are the calls the live nodes run now, in any stage.
	InProgress *int `json:"calls_in_progress,omitempty"`
}

type pauseBody struct {
	Reason string `json:"reason"`
}

// reviewBody is a supervisor's decision; who decided is the
// authenticated user, never a name in the body.
type reviewBody struct {
	Status evaluation.ComplaintStatus `json:"status"`
	Note   string                     `json:"note,omitempty"`
}

// StateReply is an agent's state after a pause or resume: what was done.
type StateReply struct {
	State acd.State `json:"state"`
	// PauseNext is the pause taken when the agent's call ends, when the
	// pause was asked for during a call (ringing, talking).
	PauseNext string `json:"pause_next,omitempty"`
}

// ForceRequest forces an agent's state. Who forces it is the
// authenticated user, never a name in the body.
type ForceRequest struct {
	// State is available, paused or offline; the others come only from
	// calls.
	State acd.State `json:"state"`
	// Reason is required for paused (it is the pause's reason), and kept
	// with the force in every case.
	Reason string `json:"reason,omitempty"`
}

func (a *api) now() time.Time {
	now := time.Now
	if a.opts.Now != nil {
		now = a.opts.Now
	}
	return now().In(a.location())
}

func (a *api) location() *time.Location {
	if a.opts.Location != nil {
		return a.opts.Location
	}
	return appeal.DefaultLocation()
}

func (a *api) listAgents(w http.ResponseWriter, r *http.Request) {
	limit, cursor, ok := pageQuery(w, r)
	if !ok {
		return
	}
	agents, err := a.opts.Agents.Agents(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	page, err := pageOf(agents, limit, cursor, func(ag acd.Agent) string { return ag.ID })
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.reply(w, r, http.StatusOK, page)
}

func (a *api) createAgent(w http.ResponseWriter, r *http.Request) {
	var spec acd.AgentSpec
	if !decodeBody(w, r, &spec) {
		return
	}
	ag, err := a.opts.Agents.Create(r.Context(), spec)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/agents/"+url.PathEscape(ag.ID))
	a.reply(w, r, http.StatusCreated, ag)
}

func (a *api) getAgent(w http.ResponseWriter, r *http.Request) {
	ctx, id := r.Context(), r.PathValue("id")
	ag, err := a.opts.Agents.Agent(ctx, id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	now := a.now()
	work, err := a.opts.Agents.AgentDay(ctx, id, now)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rt, err := a.opts.Ratings.AgentDay(ctx, id, now)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	d := AgentDetail{Agent: ag, Today: AgentToday{
		Day: now.Format(time.DateOnly), Served: work.Served, TalkSec: work.TalkSec,
		Praise: rt.Praise, BadReview: rt.BadReview, NoRating: rt.NoRating, Upheld: rt.Upheld,
	}}
	if ag.CallID != "" {
		d.Call = a.agentCall(ctx, ag.CallID, now)
	}
	a.reply(w, r, http.StatusOK, d)
}

// agentCall describes the call an agent is on from its record, the
// queue and its appeal, each read once; what cannot be read is left out
// (the call is there whatever its record says).
func (a *api) agentCall(ctx context.Context, id string, now time.Time) *AgentCall {
	c := &AgentCall{ID: id}
	if rec, err := a.opts.Calls.Get(ctx, id); err == nil {
		c.Caller, c.AppealID, c.QueuedAt, c.AnsweredAt = rec.Caller, rec.AppealID, rec.QueuedAt, rec.AgentAnsweredAt
	}
	// The record is written whole at the call's end; the queue and the
	// appeal know the rest while it lasts.
	if q, err := a.opts.Agents.Call(ctx, id); err == nil {
		c.Category = q.Category
		if c.QueuedAt == nil {
			c.QueuedAt = q.QueuedAt
		}
		if c.AnsweredAt == nil {
			c.AnsweredAt = q.AnsweredAt
		}
	}
	if a.opts.Appeals != nil && (c.AppealID == "" || c.Category == "") {
		var ap appeal.Appeal
		var err error
		if c.AppealID == "" {
			ap, err = a.opts.Appeals.ByCall(ctx, id)
		} else {
			ap, err = a.opts.Appeals.Get(ctx, c.AppealID)
		}
		if err == nil {
			c.AppealID = ap.ID
			if c.Category == "" {
				c.Category = ap.Category
			}
		}
	}
	if c.QueuedAt != nil {
		end := now
		if c.AnsweredAt != nil {
			end = *c.AnsweredAt
		}
		c.WaitedSeconds = max(end.Sub(*c.QueuedAt).Seconds(), 0)
	}
	return c
}

// updateAgent replaces an agent's provisioning: every field but the
// password, which is write-only and kept when absent.
func (a *api) updateAgent(w http.ResponseWriter, r *http.Request) {
	var spec acd.AgentSpec
	if !decodeBody(w, r, &spec) {
		return
	}
	id := r.PathValue("id")
	if spec.ID != "" && spec.ID != id {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("id %q in the body is not the agent %q of the path", spec.ID, id))
		return
	}
	spec.ID = id
	// An agent that is not there is 404 however its id is spelled, before
	// the body is judged.
	if _, err := a.opts.Agents.Agent(r.Context(), id); err != nil {
		a.fail(w, r, err)
		return
	}
	a.saveAgent(w, r, spec)
}

// AgentPatch changes some of an agent's fields: those present.
type AgentPatch struct {
	Name       *string            `json:"name,omitempty"`
	SIPUser    *string            `json:"sip_user,omitempty"`
	Password   *string            `json:"password,omitempty"`
	Categories *[]appeal.Category `json:"categories,omitempty"`
}

func (a *api) patchAgent(w http.ResponseWriter, r *http.Request) {
	var p AgentPatch
	if !decodeBody(w, r, &p) {
		return
	}
	cur, err := a.opts.Agents.Agent(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	spec := acd.AgentSpec{ID: cur.ID, Name: cur.Name, SIPUser: cur.SIPUser, Categories: cur.Categories}
	if p.Name != nil {
		spec.Name = *p.Name
	}
	if p.SIPUser != nil {
		spec.SIPUser = *p.SIPUser
	}
	if p.Password != nil {
		spec.Password = *p.Password
	}
	if p.Categories != nil {
		spec.Categories = *p.Categories
	}
	a.saveAgent(w, r, spec)
}

func (a *api) saveAgent(w http.ResponseWriter, r *http.Request, spec acd.AgentSpec) {
	ag, err := a.opts.Agents.Update(r.Context(), spec)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.reply(w, r, http.StatusOK, ag)
}

func (a *api) deleteAgent(w http.ResponseWriter, r *http.Request) {
	if err := a.opts.Agents.Delete(r.Context(), r.PathValue("id")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *api) pause(w http.ResponseWriter, r *http.Request) {
	var b pauseBody
	if !decodeBody(w, r, &b) {
		return
	}
	note(r, "reason", b.Reason)
	st, err := a.opts.Distribution.Pause(r.Context(), r.PathValue("id"), b.Reason)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	reply := StateReply{State: st}
	if st == acd.Ringing || st == acd.Talking {
		// The pause waits for the call's end: the reply says so.
		reply.PauseNext = strings.TrimSpace(b.Reason)
	}
	a.reply(w, r, http.StatusOK, reply)
}

// resume takes no body; one sent anyway is read and ignored, so that
// clients that always send "{}" work.
func (a *api) resume(w http.ResponseWriter, r *http.Request) {
	st, err := a.opts.Distribution.Resume(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.reply(w, r, http.StatusOK, StateReply{State: st})
}

// forceState sets an agent's state on an operator's word, recorded as
// the authenticated user's and logged.
func (a *api) forceState(w http.ResponseWriter, r *http.Request) {
	var b ForceRequest
	if !decodeBody(w, r, &b) {
		return
	}
	p, _ := PrincipalOf(r.Context())
	id := r.PathValue("id")
	note(r, "state", string(b.State))
	note(r, "reason", b.Reason)
	ag, err := a.opts.Distribution.Force(r.Context(), id, b.State, b.Reason, p.User)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	ev := a.opts.Logger.Warn().Str("agent_id", id).Str("by", p.User).Str("state", string(ag.State)).Str("reason", b.Reason)
	if f := ag.Forced; f != nil {
		ev = ev.Str("from", string(f.From)).Str("call_id", f.CallID)
	}
	ev.Msg("agent state forced")
	a.reply(w, r, http.StatusOK, ag)
}

func (a *api) queue(w http.ResponseWriter, r *http.Request) {
	calls, err := a.opts.Agents.Queue(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	day, err := a.opts.Agents.Day(r.Context(), a.now())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if calls == nil {
		calls = []acd.QueuedCall{}
	}
	a.reply(w, r, http.StatusOK, QueueReport{Calls: calls, Today: day})
}

func (a *api) listRatings(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var query evaluation.Query
	var ok bool
	if query.Limit, query.Cursor, ok = pageQuery(w, r); !ok {
		return
	}
	var err error
	if query.From, err = queryTime(q.Get("from")); err != nil {
		writeError(w, http.StatusBadRequest, "from: "+err.Error())
		return
	}
	if query.To, err = queryTime(q.Get("to")); err != nil {
		writeError(w, http.StatusBadRequest, "to: "+err.Error())
		return
	}
	if !query.From.IsZero() && !query.To.IsZero() && !query.To.After(query.From) {
		writeError(w, http.StatusBadRequest, "to must be after from")
		return
	}
	query.AgentID = q.Get("agent")
	ratings, next, err := a.opts.Ratings.ListPage(r.Context(), query)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.reply(w, r, http.StatusOK, Page[evaluation.Rating]{Items: ratings, NextCursor: next})
}

func (a *api) listComplaints(w http.ResponseWriter, r *http.Request) {
	limit, cursor, ok := pageQuery(w, r)
	if !ok {
		return
	}
	status := evaluation.ComplaintStatus(r.URL.Query().Get("status"))
	switch status {
	case "", evaluation.Pending, evaluation.Upheld, evaluation.Dismissed:
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("status %q: want pending, upheld or dismissed", status))
		return
	}
	cs, next, err := a.opts.Ratings.ComplaintsPage(r.Context(), status, limit, cursor)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.reply(w, r, http.StatusOK, Page[evaluation.Complaint]{Items: cs, NextCursor: next})
}

// review answers 200 also for a repeated review with the same decision,
// so that a supervisor's retry after a lost reply does no harm. The
// decision is recorded as the authenticated user's.
func (a *api) review(w http.ResponseWriter, r *http.Request) {
	var b reviewBody
	if !decodeBody(w, r, &b) {
		return
	}
	p, _ := PrincipalOf(r.Context())
	note(r, "decision", string(b.Status))
	note(r, "note", b.Note)
	c, err := a.opts.Ratings.Review(r.Context(), r.PathValue("id"), b.Status, p.User, b.Note)
	if errors.Is(err, journal.ErrJournaled) {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	if errors.Is(err, evaluation.ErrAlreadyReviewed) {
		writeError(w, http.StatusConflict, err.Error()+": a decision is changed by POST /api/v1/complaints/"+r.PathValue("id")+"/reverse")
		return
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.lineChanged(r.Context())
	a.reply(w, r, http.StatusOK, c)
}

// lineChanged tells of a decision that moved the line.
func (a *api) lineChanged(ctx context.Context) {
	if a.opts.LineChanged != nil {
		a.opts.LineChanged(ctx)
	}
}

// reverse changes the decision on a reviewed complaint, recorded as the
// authenticated user's, with the reason, which a reversal must give. A
// retried reversal changes nothing and answers the complaint as stored.
// It is not journaled: while Redis does not answer it fails, and is
// asked again.
func (a *api) reverse(w http.ResponseWriter, r *http.Request) {
	var b reviewBody
	if !decodeBody(w, r, &b) {
		return
	}
	if strings.TrimSpace(b.Note) == "" {
		writeError(w, http.StatusBadRequest, "note: a reversal says why")
		return
	}
	p, _ := PrincipalOf(r.Context())
	note(r, "decision", string(b.Status))
	note(r, "note", b.Note)
	c, err := a.opts.Ratings.Reverse(r.Context(), r.PathValue("id"), b.Status, p.User, b.Note)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.lineChanged(r.Context())
	a.reply(w, r, http.StatusOK, c)
}

func (a *api) stats(w http.ResponseWriter, r *http.Request) {
	day := a.now()
	if s := r.URL.Query().Get("day"); s != "" {
		d, err := time.ParseInLocation(time.DateOnly, s, a.location())
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("day %q: want YYYY-MM-DD", s))
			return
		}
		// Noon, not midnight: the stores name the day in their own zone,
		// and noon stays on the same date under any offset within 12 h
		// of ours.
		day = d.Add(12 * time.Hour)
	}
	queue, err := a.opts.Agents.Day(r.Context(), day)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	ratings, err := a.opts.Ratings.Totals(r.Context(), day)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	d := day.In(a.location()).Format(time.DateOnly)
	line, err := a.opts.Ratings.Line(r.Context(), evaluation.Window{Kind: evaluation.WindowDay, From: d, To: d}, evaluation.Hotline)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	peak, err := a.opts.Appeals.PeakModeStatus(r.Context(), 5)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	st := Stats{Queue: queue, Ratings: ratings, Complaints: line, PeakMode: peak}
	if a.opts.Nodes != nil {
		// Calls in progress are now's, whatever day was asked.
		nodes, err := a.opts.Nodes.LiveNodes(r.Context())
		if err != nil {
			a.fail(w, r, err)
			return
		}
		n := 0
		for _, nd := range nodes {
			n += nd.Calls
		}
		st.InProgress = &n
	}
	a.reply(w, r, http.StatusOK, st)
}

func queryTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time", s)
	}
	return t, nil
}

// decodeBody reads one JSON object of at most MaxBody bytes into v,
// refusing fields v does not have: a misspelt field silently ignored
// would change an agent other than as meant. It answers the error itself
// and reports whether v was read.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		// One object and nothing after it.
		if dec.Decode(&json.RawMessage{}) != io.EOF {
			err = errors.New("more than one JSON value")
		}
	}
	var tooBig *http.MaxBytesError
	switch {
	case err == nil:
		return true
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, "body: larger than "+strconv.Itoa(MaxBody)+" bytes")
	case errors.Is(err, io.EOF):
		writeError(w, http.StatusBadRequest, "body: empty, want a JSON object")
	default:
		writeError(w, http.StatusBadRequest, "body: "+err.Error())
	}
	return false
}

// statusOf maps the stores' errors to HTTP statuses; 0 for an error that
// is the server's fault.
func statusOf(err error) int {
	switch {
	case errors.Is(err, acd.ErrInvalid), errors.Is(err, evaluation.ErrInvalid), errors.Is(err, auth.ErrInvalid),
		errors.Is(err, zpage.ErrCursor), errors.Is(err, errCursor),
		errors.Is(err, appeal.ErrInvalid), errors.Is(err, appeal.ErrUnknownCategory), errors.Is(err, callback.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, appeal.ErrNotTheirs):
		return http.StatusForbidden
	case errors.Is(err, acd.ErrNotFound), errors.Is(err, evaluation.ErrNotFound), errors.Is(err, calllog.ErrNotFound),
		errors.Is(err, appeal.ErrNotFound), errors.Is(err, auth.ErrNotFound), errors.Is(err, ban.ErrNotFound),
		errors.Is(err, appeal.ErrOrganizerNotFound), errors.Is(err, callback.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, acd.ErrConflict), errors.Is(err, acd.ErrState), errors.Is(err, evaluation.ErrAlreadyReviewed),
		errors.Is(err, auth.ErrConflict), errors.Is(err, appeal.ErrHistoryFull), errors.Is(err, callback.ErrNotLeased):
		return http.StatusConflict
	}
	return 0
}

// fail answers a store's error: the client's mistakes with their message,
// anything else as the server's.
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	if se := (*acd.StateError)(nil); errors.As(err, &se) {
		writeJSON(w, http.StatusConflict, Error{Error: err.Error(), State: string(se.State)})
		return
	}
	if se := (*appeal.StateError)(nil); errors.As(err, &se) {
		writeJSON(w, http.StatusConflict, Error{Error: err.Error(), State: string(se.State)})
		return
	}
	if code := statusOf(err); code != 0 {
		writeError(w, code, err.Error())
		return
	}
	a.internal(w, r, err)
}
