package appeal

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ClockKind is what a clock event says of a deadline.
type ClockKind string

// The clock events.
const (
	// Urge (催办) comes before a deadline whose stage is not done yet.
	Urge ClockKind = "urge"
	// Overdue (督办) comes at a deadline whose stage is not done.
	Overdue ClockKind = "overdue"
	// Expired comes at the feedback deadline, done or not: the
	// processing time limit has run out, which starts a return visit.
	Expired ClockKind = "expired"
)

// The stages a deadline belongs to.
const (
	StageDispatch = "dispatch"
	StageSign     = "sign"
	StageFeedback = "feedback"
)

// UrgeRule says when a stage's urge comes: when Left (a fraction of the
// stage's time) is left before its deadline, but at least MinLead before
// it.
type UrgeRule struct {
	Left    float64
	MinLead time.Duration
}

// DefaultUrgeRule urges when a fifth of the stage's time is left: 12
// minutes into an emergency's 15 minutes to sign, 19 h 12 min into a
// general appeal's 24 h to dispatch.
var DefaultUrgeRule = UrgeRule{Left: 0.2}

// urgeAt is when the urge of a stage from start to due comes: never
// before the stage starts.
func (r UrgeRule) urgeAt(start, due time.Time) time.Time {
	span := due.Sub(start)
	if span <= 0 {
		return due
	}
	lead := max(time.Duration(float64(span)*r.Left), r.MinLead)
	at := due.Add(-lead)
	if at.Before(start) {
		return start
	}
	return at
}

// Timer is one clock event due for an appeal: its member in the timers'
// sorted set is "<appeal id>|<kind>|<stage>".
type Timer struct {
	Kind  ClockKind
	Stage string
	Due   time.Time
}

// suffix is the timer's member without the appeal id.
func (t Timer) suffix() string { return string(t.Kind) + "|" + t.Stage }

// member is the timer's member in the timers' sorted set.
func (t Timer) member(id string) string { return id + "|" + t.suffix() }

// parseMember reads a timer's member.
func parseMember(m string) (id string, kind ClockKind, stage string, err error) {
	parts := strings.Split(m, "|")
	if len(parts) != 3 {
		return "", "", "", fmt.Errorf("appeal: timer %q: want id|kind|stage", m)
	}
	return parts[0], ClockKind(parts[1]), parts[2], nil
}

// timersOf are the clock events an appeal in its state still has coming:
// the urge and overdue of each stage not done yet, and the expiry of its
// feedback deadline whatever its state. The probe's appeals have none.
func timersOf(a Appeal, rules map[string]UrgeRule) []Timer {
	if a.Synthetic {
		return nil
	}
	rule := func(stage string) UrgeRule {
		if r, ok := rules[stage]; ok {
			return r
		}
		return DefaultUrgeRule
	}
	var out []Timer
	stage := func(name string, start, due time.Time) {
		out = append(out,
			Timer{Kind: Urge, Stage: name, Due: rule(name).urgeAt(start, due)},
			Timer{Kind: Overdue, Stage: name, Due: due})
	}
	// The organizers' stages start at the real dispatch, or until then at
	// the latest moment it may happen.
	dispatched := a.DispatchDue
	if a.DispatchedAt != nil {
		dispatched = *a.DispatchedAt
	}
	switch a.State {
	case Received, Returned, "":
		start := a.CreatedAt
		if a.ReturnedAt != nil {
			start = *a.ReturnedAt
		}
		stage(StageDispatch, start, a.DispatchDue)
		stage(StageSign, dispatched, a.SignDue)
		stage(StageFeedback, dispatched, a.FeedbackDue)
	case Dispatched:
		stage(StageSign, dispatched, a.SignDue)
		stage(StageFeedback, dispatched, a.FeedbackDue)
	case Signed:
		stage(StageFeedback, dispatched, a.FeedbackDue)
	}
	out = append(out, Timer{Kind: Expired, Stage: StageFeedback, Due: a.FeedbackDue})
	return out
}

// timerArgs is timers as the create scripts take them: "suffix=ms"
// joined by commas.
func timerArgs(ts []Timer) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = t.suffix() + "=" + strconv.FormatInt(t.Due.UnixMilli(), 10)
	}
	return strings.Join(parts, ",")
}

// timerChanges are what a step does to an appeal's timers: those to set
// (new, or due at another time) and those to remove.
func timerChanges(id string, before, after []Timer) (set []Timer, remove []string) {
	old := map[string]int64{}
	for _, t := range before {
		old[t.suffix()] = t.Due.UnixMilli()
	}
	var keep []string
	for _, t := range after {
		keep = append(keep, t.suffix())
		if ms, ok := old[t.suffix()]; !ok || ms != t.Due.UnixMilli() {
			set = append(set, t)
		}
	}
	for _, t := range before {
		if !slices.Contains(keep, t.suffix()) {
			remove = append(remove, t.member(id))
		}
	}
	return set, remove
}
