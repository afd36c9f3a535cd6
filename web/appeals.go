package web

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/auth"
)

// AppealRequest takes an appeal by hand: one an agent took outside the
// menu, or one from a text channel.
type AppealRequest struct {
	// RequestID makes the request safe to retry: one appeal per id. A
	// random one is made when absent.
	RequestID string          `json:"request_id,omitempty"`
	Caller    string          `json:"caller"`
	Category  appeal.Category `json:"category"`
	// Channel is where it came from: phone, web, app, wechat, email or
	// letter.
	Channel string         `json:"channel"`
	Summary string         `json:"summary"`
	Consent ConsentRequest `json:"consent"`
	Lang    string         `json:"lang,omitempty"`
}

// ConsentRequest is the citizen's answer to a return visit, with how it
// was recorded: required either way.
type ConsentRequest struct {
	Given    bool   `json:"given"`
	Evidence string `json:"evidence"`
}

// Channels an appeal may be taken from by hand.
var appealChannels = []string{"phone", "web", "app", "wechat", "email", "letter"}

// DispatchRequest sends an appeal to its organizers.
type DispatchRequest struct {
	Lead   string   `json:"lead"`
	Others []string `json:"others,omitempty"`
	// OwnerUnknown sends it to a district government (the lead): no
	// other unit's duty covers it.
	OwnerUnknown bool   `json:"owner_unknown,omitempty"`
	Note         string `json:"note,omitempty"`
}

// OrganizerStepRequest is an organizer's step: sign, return. Organizer
// is the organizer acted for: an organizer's own token acts for its own
// (and may leave it out); staff name it.
type OrganizerStepRequest struct {
	Organizer string `json:"organizer,omitempty"`
	// Reason is a return's, required there.
	Reason string `json:"reason,omitempty"`
	Note   string `json:"note,omitempty"`
}

// FeedbackRequest is the lead organizer's report.
type FeedbackRequest struct {
	Organizer string        `json:"organizer,omitempty"`
	Result    appeal.Result `json:"result"`
	Reason    string        `json:"reason,omitempty"`
	NextSteps string        `json:"next_steps,omitempty"`
	NextAt    *time.Time    `json:"next_at,omitempty"`
	Note      string        `json:"note,omitempty"`
}

// CloseRequest closes a fed-back appeal.
type CloseRequest struct {
	Note string `json:"note,omitempty"`
}

// StepReply is an appeal after a step, with the event that records it.
type StepReply struct {
	Appeal appeal.Appeal `json:"appeal"`
	Event  appeal.Event  `json:"event"`
}

// PeakRequest switches peak mode. The switch is recorded as the token's
// user's; By names who ordered it when that is someone else (the duty
// chief on the telephone), and is recorded beside.
type PeakRequest struct {
	On     bool   `json:"on"`
	By     string `json:"by,omitempty"`
	Reason string `json:"reason"`
}

// OrganizerList is every organizer.
type OrganizerList struct {
	Items []appeal.Organizer `json:"items"`
}

// EventList is an appeal's history, oldest first.
type EventList struct {
	Items []appeal.Event `json:"items"`
}

// organizerOnly reports whether p acts as an organizer and nothing more
// that the route allows: its own organizer's appeals only.
func organizerOnly(p auth.Principal, staff ...auth.Role) bool {
	return p.Has(auth.Organizer) && !p.HasAny(staff...)
}

// appealStaff are the hotline's roles that work appeals.
var appealStaff = []auth.Role{auth.Agent, auth.Supervisor}

// mayRead says whether p may see a: staff any, an organizer those
// dispatched to it.
func mayRead(p auth.Principal, a appeal.Appeal) bool {
	if !organizerOnly(p, auth.Agent, auth.Visitor, auth.Supervisor) {
		return true
	}
	return p.OrganizerID != "" && a.Assignment != nil && slices.Contains(a.Assignment.Organizers(), p.OrganizerID)
}

// readableAppeal reads the path's appeal, answering for it when it is
// not there or the principal may not see it.
func (a *api) readableAppeal(w http.ResponseWriter, r *http.Request) (appeal.Appeal, bool) {
	ap, err := a.opts.Appeals.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return appeal.Appeal{}, false
	}
	if p, _ := PrincipalOf(r.Context()); !mayRead(p, ap) {
		writeError(w, http.StatusForbidden, fmt.Sprintf("appeal %s was not dispatched to organizer %q", ap.ID, p.OrganizerID))
		return appeal.Appeal{}, false
	}
	return ap, true
}

func (a *api) getAppeal(w http.ResponseWriter, r *http.Request) {
	if ap, ok := a.readableAppeal(w, r); ok {
		a.reply(w, r, http.StatusOK, ap)
	}
}

func (a *api) appealEvents(w http.ResponseWriter, r *http.Request) {
	ap, ok := a.readableAppeal(w, r)
	if !ok {
		return
	}
	evs, err := a.opts.Appeals.History(r.Context(), ap.ID)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.reply(w, r, http.StatusOK, EventList{Items: evs})
}

func (a *api) listAppeals(w http.ResponseWriter, r *http.Request) {
	limit, cursor, ok := pageQuery(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	f := appeal.Filter{State: appeal.State(q.Get("state")), Organizer: q.Get("organizer"), Category: appeal.Category(q.Get("category")),
		Limit: limit, Cursor: cursor}
	if s := q.Get("overdue"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("overdue %q: want true or false", s))
			return
		}
		f.Overdue = b
	}
	if f.State != "" && !f.State.Valid() {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("state %q: want received, dispatched, signed, fed_back, closed or returned", f.State))
		return
	}
	if f.Category != "" && !f.Category.Valid() {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("category %q: want emergency, livelihood, general or complex", f.Category))
		return
	}
	if p, _ := PrincipalOf(r.Context()); organizerOnly(p, appealStaff...) {
		if f.Organizer != "" && f.Organizer != p.OrganizerID {
			writeError(w, http.StatusForbidden, fmt.Sprintf("an organizer lists its own appeals only (this token's organizer is %q)", p.OrganizerID))
			return
		}
		if p.OrganizerID == "" {
			writeError(w, http.StatusForbidden, "this token's account acts for no organizer")
			return
		}
		f.Organizer = p.OrganizerID
	}
	items, next, err := a.opts.Appeals.Find(r.Context(), f)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.reply(w, r, http.StatusOK, Page[appeal.Appeal]{Items: items, NextCursor: next})
}

func (a *api) createAppeal(w http.ResponseWriter, r *http.Request) {
	var b AppealRequest
	if !decodeBody(w, r, &b) {
		return
	}
	p, _ := PrincipalOf(r.Context())
	switch {
	case strings.TrimSpace(b.Caller) == "":
		writeError(w, http.StatusBadRequest, "caller: the citizen's number, required")
		return
	case !slices.Contains(appealChannels, b.Channel):
		writeError(w, http.StatusBadRequest, fmt.Sprintf("channel %q: want %s", b.Channel, strings.Join(appealChannels, ", ")))
		return
	case strings.TrimSpace(b.Summary) == "":
		writeError(w, http.StatusBadRequest, "summary: what the citizen asks, required")
		return
	case strings.TrimSpace(b.Consent.Evidence) == "":
		writeError(w, http.StatusBadRequest, "consent.evidence: how the citizen's answer to a return visit was recorded, required")
		return
	case len(b.RequestID) > 64:
		writeError(w, http.StatusBadRequest, "request_id: at most 64 characters")
		return
	}
	if b.RequestID == "" {
		var id [12]byte
		_, _ = rand.Read(id[:])
		b.RequestID = hex.EncodeToString(id[:])
	}
	now := a.now()
	ap, err := a.opts.Appeals.Create(r.Context(), appeal.New{
		CallID: "request:" + b.RequestID, Caller: strings.TrimSpace(b.Caller), Category: b.Category,
		Channel: b.Channel, Summary: b.Summary, Lang: b.Lang, At: now,
		Consent: appeal.Consent{Given: b.Consent.Given, At: &now, Evidence: b.Consent.Evidence, RecordedBy: p.User},
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.reply(w, r, http.StatusCreated, ap)
}

// step makes act on the path's appeal and answers it.
func (a *api) step(w http.ResponseWriter, r *http.Request, act appeal.Action) {
	p, _ := PrincipalOf(r.Context())
	act.By = p.User
	switch act.Step {
	case appeal.Sign, appeal.FeedBack, appeal.Return:
		if organizerOnly(p, appealStaff...) {
			if act.Organizer != "" && act.Organizer != p.OrganizerID {
				writeError(w, http.StatusForbidden, fmt.Sprintf("an organizer acts for itself only (this token's organizer is %q)", p.OrganizerID))
				return
			}
			if p.OrganizerID == "" {
				writeError(w, http.StatusForbidden, "this token's account acts for no organizer")
				return
			}
			act.Organizer = p.OrganizerID
		} else if act.Organizer == "" {
			writeError(w, http.StatusBadRequest, "organizer: the organizer acted for, required")
			return
		}
	}
	ap, ev, err := a.opts.Appeals.Step(r.Context(), r.PathValue("id"), act)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if act.Step == appeal.FeedBack && a.opts.VisitOnFeedback {
		// Decided now; were this to fail, the expiry decides it later.
		if d, err := a.opts.Visits.FedBack(r.Context(), ap.ID, a.opts.Appeals); err != nil {
			a.opts.Logger.Warn().Err(err).Str("appeal", ap.ID).Msg("return visit at the feedback: left to the expiry")
		} else {
			a.opts.Logger.Info().Str("appeal", ap.ID).Str("decision", string(d)).Msg("return visit at the feedback")
		}
	}
	a.reply(w, r, http.StatusOK, StepReply{Appeal: ap, Event: ev})
}

func (a *api) dispatchAppeal(w http.ResponseWriter, r *http.Request) {
	var b DispatchRequest
	if !decodeBody(w, r, &b) {
		return
	}
	a.step(w, r, appeal.Action{Step: appeal.Dispatch, Note: b.Note,
		Assignment: appeal.Assignment{Lead: b.Lead, Others: b.Others, OwnerUnknown: b.OwnerUnknown}})
}

func (a *api) signAppeal(w http.ResponseWriter, r *http.Request) {
	var b OrganizerStepRequest
	if !decodeBody(w, r, &b) {
		return
	}
	a.step(w, r, appeal.Action{Step: appeal.Sign, Organizer: b.Organizer, Note: b.Note})
}

func (a *api) returnAppeal(w http.ResponseWriter, r *http.Request) {
	var b OrganizerStepRequest
	if !decodeBody(w, r, &b) {
		return
	}
	a.step(w, r, appeal.Action{Step: appeal.Return, Organizer: b.Organizer, Reason: b.Reason, Note: b.Note})
}

func (a *api) feedbackAppeal(w http.ResponseWriter, r *http.Request) {
	var b FeedbackRequest
	if !decodeBody(w, r, &b) {
		return
	}
	a.step(w, r, appeal.Action{Step: appeal.FeedBack, Organizer: b.Organizer, Note: b.Note,
		Feedback: appeal.Feedback{Result: b.Result, Reason: b.Reason, NextSteps: b.NextSteps, NextAt: b.NextAt}})
}

func (a *api) closeAppeal(w http.ResponseWriter, r *http.Request) {
	var b CloseRequest
	if !decodeBody(w, r, &b) {
		return
	}
	a.step(w, r, appeal.Action{Step: appeal.Close, Note: b.Note})
}

func (a *api) listOrganizers(w http.ResponseWriter, r *http.Request) {
	os, err := a.opts.Appeals.Organizers(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.reply(w, r, http.StatusOK, OrganizerList{Items: os})
}

func (a *api) putOrganizer(w http.ResponseWriter, r *http.Request) {
	var o appeal.Organizer
	if !decodeBody(w, r, &o) {
		return
	}
	if o.ID == "" {
		o.ID = r.PathValue("id")
	}
	if o.ID != r.PathValue("id") {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("id %q: the path names %q", o.ID, r.PathValue("id")))
		return
	}
	if err := a.opts.Appeals.PutOrganizer(r.Context(), o); err != nil {
		a.fail(w, r, err)
		return
	}
	a.reply(w, r, http.StatusOK, o)
}

func (a *api) deleteOrganizer(w http.ResponseWriter, r *http.Request) {
	if err := a.opts.Appeals.DeleteOrganizer(r.Context(), r.PathValue("id")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *api) peakMode(w http.ResponseWriter, r *http.Request) {
	st, err := a.opts.Appeals.PeakModeStatus(r.Context(), 50)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.reply(w, r, http.StatusOK, st)
}

func (a *api) switchPeakMode(w http.ResponseWriter, r *http.Request) {
	var b PeakRequest
	if !decodeBody(w, r, &b) {
		return
	}
	p, _ := PrincipalOf(r.Context())
	by := p.User
	if b.By != "" && b.By != p.User {
		by = p.User + " for " + b.By
	}
	note(r, "on", strconv.FormatBool(b.On))
	note(r, "reason", b.Reason)
	sw, err := a.opts.Appeals.SwitchPeakMode(r.Context(), b.On, by, b.Reason)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.opts.Logger.Info().Bool("on", sw.On).Str("by", sw.By).Str("reason", sw.Reason).Msg("peak mode switched")
	a.reply(w, r, http.StatusOK, sw)
}

// stateNames are the appeal states, for a parameter's enum.
func stateNames() []string {
	var out []string
	for _, s := range appeal.States() {
		out = append(out, string(s))
	}
	return out
}

// SupervisionList is what to chase, by lead organizer.
type SupervisionList struct {
	State  appeal.Chase        `json:"state"`
	Groups []appeal.ChaseGroup `json:"groups"`
}

func (a *api) supervision(w http.ResponseWriter, r *http.Request) {
	limit, _, ok := pageQuery(w, r)
	if !ok {
		return
	}
	which := appeal.Chase(r.URL.Query().Get("state"))
	if which != appeal.DueSoon && which != appeal.OverdueNow {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("state %q: want due_soon or overdue", which))
		return
	}
	groups, err := a.opts.Appeals.ChaseList(r.Context(), which, limit)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.reply(w, r, http.StatusOK, SupervisionList{State: which, Groups: groups})
}

func (a *api) supervisionEvents(w http.ResponseWriter, r *http.Request) {
	limit, cursor, ok := pageQuery(w, r)
	if !ok {
		return
	}
	evs, next, err := a.opts.Appeals.ClockEvents(r.Context(), limit, cursor)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.reply(w, r, http.StatusOK, Page[appeal.ClockEvent]{Items: evs, NextCursor: next})
}
