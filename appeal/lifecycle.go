package appeal

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// State is where an appeal is in its life after the call.
//
//	received ──dispatch──▶ dispatched ──sign (lead)──▶ signed ──feedback──▶ fed_back ──close──▶ closed
//	    ▲                      │                          │
//	    └──dispatch── returned ◀──────────return──────────┘
//
// The hotline dispatches the order to organizers (one the lead); the lead
// signs for it (co-organizers sign too, without moving it); the lead
// reports back, solved or not; the hotline closes it. An organizer that
// is not the owner returns it with a reason, and it waits for dispatch
// again.
type State string

// The states of an appeal.
const (
	Received   State = "received"
	Dispatched State = "dispatched"
	Signed     State = "signed"
	FedBack    State = "fed_back"
	Closed     State = "closed"
	Returned   State = "returned"
)

// States lists the states in the order of an appeal's life.
func States() []State {
	return []State{Received, Dispatched, Signed, FedBack, Closed, Returned}
}

// Valid reports whether s is a state.
func (s State) Valid() bool { return slices.Contains(States(), s) }

// Open reports whether an appeal in state s still waits for a stage of
// the organizers or the hotline: every state but closed.
func (s State) Open() bool { return s.Valid() && s != Closed }

// Result is the organizer's answer in its feedback.
type Result string

// The results of a feedback. Feedback is owed whatever the result.
const (
	Solved       Result = "solved"
	NotSolved    Result = "not_solved"
	CannotSolve  Result = "cannot_be_solved"
	resultsNamed        = "solved, not_solved or cannot_be_solved"
)

// Valid reports whether r is a result.
func (r Result) Valid() bool { return r == Solved || r == NotSolved || r == CannotSolve }

// Assignment is who an appeal was dispatched to: the lead organizer,
// who signs for it and reports back, and the co-organizers. OwnerUnknown
// says nobody's duty covers it, so it went to the district government
// (the lead, an organizer of kind district).
type Assignment struct {
	Lead         string   `json:"lead"`
	Others       []string `json:"others,omitempty"`
	OwnerUnknown bool     `json:"owner_unknown,omitempty"`
}

// Organizers are the assignment's organizer ids, the lead first.
func (a Assignment) Organizers() []string {
	return append([]string{a.Lead}, a.Others...)
}

// Feedback is the lead organizer's report on an appeal. Unless it is
// solved it says why (Reason) and what comes next: NextSteps, and for
// not_solved when they will be taken (NextAt).
type Feedback struct {
	Result    Result     `json:"result"`
	Reason    string     `json:"reason,omitempty"`
	NextSteps string     `json:"next_steps,omitempty"`
	NextAt    *time.Time `json:"next_at,omitempty"`
}

// check says what a feedback lacks.
func (f Feedback) check() error {
	if !f.Result.Valid() {
		return fmt.Errorf("%w: result %q (want %s)", ErrInvalid, f.Result, resultsNamed)
	}
	if f.Result == Solved {
		return nil
	}
	if f.Reason == "" {
		return fmt.Errorf("%w: a %s feedback says why (reason)", ErrInvalid, f.Result)
	}
	if f.NextSteps == "" {
		return fmt.Errorf("%w: a %s feedback says what comes next (next_steps)", ErrInvalid, f.Result)
	}
	if f.Result == NotSolved && f.NextAt == nil {
		return fmt.Errorf("%w: a not_solved feedback says when the next steps will be taken (next_at)", ErrInvalid)
	}
	return nil
}

// Errors of the appeal's life; test with errors.Is.
var (
	// ErrInvalid: the request lacks something or names something that
	// does not exist (an unknown organizer, a result that is none).
	ErrInvalid = errors.New("appeal: invalid")
	// ErrState: the appeal's state does not allow the step (sign before
	// dispatch, feedback twice). The error is a *StateError.
	ErrState = errors.New("appeal: not allowed in the appeal's state")
	// ErrNotTheirs: an organizer acted on an appeal not dispatched to it,
	// or did what only the lead does.
	ErrNotTheirs = errors.New("appeal: not this organizer's")
)

// StateError is a step the appeal's state does not allow: it carries the
// state, for the 409 that answers it.
type StateError struct {
	ID    string
	Step  Step
	State State
}

func (e *StateError) Error() string {
	return fmt.Sprintf("appeal %s is %s: %s is not allowed", e.ID, e.State, e.Step)
}

// Is makes a StateError an ErrState.
func (e *StateError) Is(target error) bool { return target == ErrState }

// Step is a change in an appeal's life: the kind of its history's events.
type Step string

// The steps. Created is the appeal's first event.
const (
	Created    Step = "created"
	Dispatch   Step = "dispatch"
	Sign       Step = "sign"
	FeedBack   Step = "feedback"
	Return     Step = "return"
	Close      Step = "close"
	stepsNamed      = "dispatch, sign, feedback, return or close"
)

// Event is one step in an appeal's history: who did what, when, and the
// deadlines it left.
type Event struct {
	Seq  int       `json:"seq"` // from 1, in the appeal's history
	Step Step      `json:"step"`
	At   time.Time `json:"at"`
	// By is who did it: the account that asked, or "hotline" for what
	// the system did itself.
	By   string `json:"by"`
	From State  `json:"from,omitempty"`
	To   State  `json:"to"`
	// Organizer is the organizer that signed or returned it.
	Organizer  string      `json:"organizer,omitempty"`
	Assignment *Assignment `json:"assignment,omitempty"` // dispatch
	Feedback   *Feedback   `json:"feedback,omitempty"`   // feedback
	Reason     string      `json:"reason,omitempty"`     // return
	Note       string      `json:"note,omitempty"`
	// Late says the step came after its stage's deadline, or a clock
	// event well after it was due.
	Late bool `json:"late,omitempty"`
	// Stage and Due are a clock event's (urge, overdue, expired): the
	// stage whose deadline it is about, and when the event was due.
	Stage string     `json:"stage,omitempty"`
	Due   *time.Time `json:"due,omitempty"`
	// The deadlines after the step.
	DispatchDue time.Time `json:"dispatch_due"`
	SignDue     time.Time `json:"sign_due"`
	FeedbackDue time.Time `json:"feedback_due"`
}

// Action is a step asked of an appeal, with what the step needs.
type Action struct {
	Step Step
	// By is the account that asks.
	By string
	// Organizer acts for an organizer (sign, feedback, return).
	Organizer string
	// Assignment is a dispatch's.
	Assignment Assignment
	// Feedback is a feedback's.
	Feedback Feedback
	// Reason is a return's.
	Reason string
	Note   string
}

// Due is the deadline of the stage an appeal in its state waits for, and
// that stage's name; zero for a closed appeal. A fed-back appeal waits
// for the hotline to close it, on no deadline of the standard.
func (a Appeal) Due() (stage string, due time.Time) {
	switch a.State {
	case Received, Returned, "":
		return "dispatch", a.DispatchDue
	case Dispatched:
		return "sign", a.SignDue
	case Signed:
		return "feedback", a.FeedbackDue
	}
	return "", time.Time{}
}

// Overdue reports whether the stage an appeal waits for is past its
// deadline at now.
func (a Appeal) Overdue(now time.Time) bool {
	_, due := a.Due()
	return !due.IsZero() && now.After(due)
}

// apply makes the step on a (at is now, in the hotline's zone), checking
// that a's state allows it, and returns the event that records it.
// organizer tells whether an organizer id exists, and its kind.
func apply(a *Appeal, act Action, at time.Time, loc *time.Location, organizer func(id string) (Organizer, bool)) (Event, error) {
	from := a.State
	if from == "" {
		from = Received
	}
	refuse := func() (Event, error) {
		return Event{}, &StateError{ID: a.ID, Step: act.Step, State: from}
	}
	ev := Event{Step: act.Step, At: at, By: act.By, From: from, Note: act.Note}
	switch act.Step {
	case Dispatch:
		if from != Received && from != Returned {
			return refuse()
		}
		asg, err := checkAssignment(act.Assignment, organizer)
		if err != nil {
			return Event{}, err
		}
		ev.Late = at.After(a.DispatchDue)
		a.Assignment, a.SignedBy, a.Feedback = &asg, nil, nil
		a.DispatchedAt = &at
		// The organizers' clocks start now, at the real dispatch.
		a.SignDue, a.FeedbackDue = laterClocks(a.Category, at, loc)
		a.State = Dispatched
		ev.Assignment = &asg
	case Sign:
		if from != Dispatched && from != Signed {
			return refuse()
		}
		if err := a.assigned(act.Organizer); err != nil {
			return Event{}, err
		}
		if slices.Contains(a.SignedBy, act.Organizer) {
			return refuse()
		}
		ev.Late = at.After(a.SignDue)
		a.SignedBy = append(a.SignedBy, act.Organizer)
		if act.Organizer == a.Assignment.Lead {
			a.SignedAt = &at
			a.State = Signed
		}
		ev.Organizer = act.Organizer
	case FeedBack:
		if from != Signed {
			return refuse()
		}
		if err := a.lead(act.Organizer); err != nil {
			return Event{}, err
		}
		if err := act.Feedback.check(); err != nil {
			return Event{}, err
		}
		fb := act.Feedback
		if fb.NextAt != nil {
			t := fb.NextAt.In(loc)
			fb.NextAt = &t
		}
		ev.Late = at.After(a.FeedbackDue)
		a.Feedback, a.FedBackAt = &fb, &at
		a.State = FedBack
		ev.Organizer, ev.Feedback = act.Organizer, &fb
	case Return:
		if from != Dispatched && from != Signed {
			return refuse()
		}
		if err := a.assigned(act.Organizer); err != nil {
			return Event{}, err
		}
		if act.Reason == "" {
			return Event{}, fmt.Errorf("%w: a return says why (reason)", ErrInvalid)
		}
		// Back to the hotline, whose dispatch clock starts again: the
		// order goes out within the category's dispatch limit of its
		// return, and the organizers' clocks start at its next dispatch.
		a.Assignment, a.SignedBy, a.DispatchedAt, a.SignedAt = nil, nil, nil, nil
		a.Returns++
		a.ReturnedAt = &at
		a.DispatchDue, a.SignDue, a.FeedbackDue = Clocks(a.Category, at, a.PeakMode, loc)
		a.State = Returned
		ev.Organizer, ev.Reason = act.Organizer, act.Reason
	case Close:
		if from != FedBack {
			return refuse()
		}
		a.ClosedAt = &at
		a.State = Closed
	default:
		return Event{}, fmt.Errorf("%w: step %q (want %s)", ErrInvalid, act.Step, stepsNamed)
	}
	ev.To = a.State
	ev.DispatchDue, ev.SignDue, ev.FeedbackDue = a.DispatchDue, a.SignDue, a.FeedbackDue
	return ev, nil
}

// checkAssignment checks that every organizer of a dispatch exists, none
// twice, and that an order whose owner is unknown goes to a district.
func checkAssignment(asg Assignment, organizer func(string) (Organizer, bool)) (Assignment, error) {
	if asg.Lead == "" {
		return Assignment{}, fmt.Errorf("%w: a dispatch names its lead organizer", ErrInvalid)
	}
	seen := map[string]bool{}
	for _, id := range asg.Organizers() {
		if seen[id] {
			return Assignment{}, fmt.Errorf("%w: organizer %q named twice", ErrInvalid, id)
		}
		seen[id] = true
		if _, ok := organizer(id); !ok {
			return Assignment{}, fmt.Errorf("%w: no organizer %q", ErrInvalid, id)
		}
	}
	if lead, _ := organizer(asg.Lead); asg.OwnerUnknown && lead.Kind != District {
		return Assignment{}, fmt.Errorf("%w: an order whose owner is unknown goes to a district government, not %s %q", ErrInvalid, lead.Kind, asg.Lead)
	}
	asg.Others = slices.Clone(asg.Others)
	return asg, nil
}

// assigned checks that the appeal was dispatched to organizer.
func (a *Appeal) assigned(organizer string) error {
	if organizer == "" {
		return fmt.Errorf("%w: name the organizer", ErrInvalid)
	}
	if a.Assignment == nil || !slices.Contains(a.Assignment.Organizers(), organizer) {
		return fmt.Errorf("%w: appeal %s was not dispatched to %q", ErrNotTheirs, a.ID, organizer)
	}
	return nil
}

// lead checks that organizer is the appeal's lead.
func (a *Appeal) lead(organizer string) error {
	if err := a.assigned(organizer); err != nil {
		return err
	}
	if a.Assignment.Lead != organizer {
		return fmt.Errorf("%w: the lead, %q, reports back on appeal %s, not %q", ErrNotTheirs, a.Assignment.Lead, a.ID, organizer)
	}
	return nil
}
