package evaluation

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/hotline12345/hotline/appeal"
)

// The line: "the effective complaint rate of service quality should not be
// higher than three ten-thousandths".
//
//   - A served call is a call in which the citizen talked to an agent: the
//     agent answered the offer.
//   - An effective complaint (合理差评) is a bad review a supervisor upheld.
//   - The rate is effective complaints ÷ served calls over a window.
//   - A call, its rating and its review count on the day the call was
//     served (the agent answered), in the hotline's zone, whenever the
//     rating or the review came: a review on the 2nd of a call served on
//     the 31st changes the 31st and its month.
//   - "Not higher than" is compared in whole counts: upheld × 10,000 ≤
//     limit × served is within the line; 3 in 10,000 is within, 4 is over.

// Defaults of StoreOptions.
const (
	// DefaultComplaintLimit is the standard's line: 3 effective complaints
	// per 10,000 calls served.
	DefaultComplaintLimit = 3
	// DefaultRetention is how long the line's counters and call records
	// are kept from their day: a year and a month, so that the same month
	// of the year before is still there to compare.
	DefaultRetention = 400 * 24 * time.Hour
)

// Counts are the line's counters of a scope over some days. Pending is
// derived: bad reviews neither upheld nor dismissed.
type Counts struct {
	Served    int64 `json:"served"`
	Praise    int64 `json:"praise"`
	BadReview int64 `json:"bad_review"`
	NoRating  int64 `json:"no_rating"`
	Upheld    int64 `json:"upheld"`    // effective complaints (合理差评)
	Dismissed int64 `json:"dismissed"` // bad reviews dismissed on review
}

// Pending is the bad reviews not yet reviewed.
func (c Counts) Pending() int64 { return c.BadReview - c.Upheld - c.Dismissed }

// Add returns the sum of c and o.
func (c Counts) Add(o Counts) Counts {
	return Counts{
		Served: c.Served + o.Served, Praise: c.Praise + o.Praise, BadReview: c.BadReview + o.BadReview,
		NoRating: c.NoRating + o.NoRating, Upheld: c.Upheld + o.Upheld, Dismissed: c.Dismissed + o.Dismissed,
	}
}

// IsZero reports whether nothing was counted.
func (c Counts) IsZero() bool { return c == Counts{} }

// WindowKind names the windows of the line.
type WindowKind string

// The windows. Days are calendar days of the hotline's zone.
const (
	WindowDay     WindowKind = "day"   // one calendar day
	WindowMonth   WindowKind = "month" // one calendar month
	WindowRolling WindowKind = "30d"   // the 30 days ending with a day (today by default), both included
	WindowRange   WindowKind = "range" // from a day to a day, both included
)

// RollingDays is the length of the rolling window.
const RollingDays = 30

// MaxRangeDays bounds a range window: the counters are kept about that
// long (DefaultRetention), and a longer sum would read days that are gone.
const MaxRangeDays = 400

// Window is a span of whole days of the hotline's zone, From and To
// included, named as YYYY-MM-DD.
type Window struct {
	Kind WindowKind `json:"window"`
	From string     `json:"from"`
	To   string     `json:"to"`
}

// Days lists the window's days, From first.
func (w Window) Days() []string {
	from, err1 := time.Parse(dayLayout, w.From)
	to, err2 := time.Parse(dayLayout, w.To)
	if err1 != nil || err2 != nil {
		return nil
	}
	var out []string
	for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
		out = append(out, d.Format(dayLayout))
	}
	return out
}

// WindowSpec is a window as a request names it; the parameters a kind does
// not use must be empty.
type WindowSpec struct {
	Kind  string // day, month, 30d or range; empty means day
	Day   string // day and 30d: YYYY-MM-DD, today when empty
	Month string // month: YYYY-MM, this month when empty
	From  string // range: YYYY-MM-DD, required
	To    string // range: YYYY-MM-DD, required, not before From
}

// ParamError is a bad window or scope parameter; it wraps ErrInvalid and
// names the parameter, so that an API answers which one was wrong.
type ParamError struct {
	Param  string
	Value  string
	Reason string
}

func (e *ParamError) Error() string {
	return fmt.Sprintf("%s %q: %s", e.Param, e.Value, e.Reason)
}

// Unwrap makes a ParamError an ErrInvalid.
func (e *ParamError) Unwrap() error { return ErrInvalid }

// Resolve turns a WindowSpec into a Window: its days in loc, today being
// the day of now. A bad parameter is a *ParamError.
func (spec WindowSpec) Resolve(now time.Time, loc *time.Location) (Window, error) {
	today := now.In(loc).Format(dayLayout)
	day := func(name, v, def string) (time.Time, error) {
		if v == "" {
			v = def
		}
		t, err := time.Parse(dayLayout, v)
		if err != nil || v == "" {
			return time.Time{}, &ParamError{Param: name, Value: v, Reason: "want a day, YYYY-MM-DD"}
		}
		return t, nil
	}
	unused := func(kind string, params ...[2]string) error {
		for _, p := range params {
			if p[1] != "" {
				return &ParamError{Param: p[0], Value: p[1], Reason: "not a parameter of window " + kind}
			}
		}
		return nil
	}
	kind := WindowKind(spec.Kind)
	if kind == "" {
		kind = WindowDay
	}
	switch kind {
	case WindowDay, WindowRolling:
		if err := unused(string(kind), [2]string{"month", spec.Month}, [2]string{"from", spec.From}, [2]string{"to", spec.To}); err != nil {
			return Window{}, err
		}
		d, err := day("day", spec.Day, today)
		if err != nil {
			return Window{}, err
		}
		from := d
		if kind == WindowRolling {
			from = d.AddDate(0, 0, -(RollingDays - 1))
		}
		return Window{Kind: kind, From: from.Format(dayLayout), To: d.Format(dayLayout)}, nil
	case WindowMonth:
		if err := unused(string(kind), [2]string{"day", spec.Day}, [2]string{"from", spec.From}, [2]string{"to", spec.To}); err != nil {
			return Window{}, err
		}
		m := spec.Month
		if m == "" {
			m = today[:7]
		}
		first, err := time.Parse("2006-01", m)
		if err != nil {
			return Window{}, &ParamError{Param: "month", Value: m, Reason: "want a month, YYYY-MM"}
		}
		last := first.AddDate(0, 1, -1)
		return Window{Kind: kind, From: first.Format(dayLayout), To: last.Format(dayLayout)}, nil
	case WindowRange:
		if err := unused(string(kind), [2]string{"day", spec.Day}, [2]string{"month", spec.Month}); err != nil {
			return Window{}, err
		}
		if spec.From == "" {
			return Window{}, &ParamError{Param: "from", Reason: "window range needs from and to"}
		}
		if spec.To == "" {
			return Window{}, &ParamError{Param: "to", Reason: "window range needs from and to"}
		}
		from, err := day("from", spec.From, "")
		if err != nil {
			return Window{}, err
		}
		to, err := day("to", spec.To, "")
		if err != nil {
			return Window{}, err
		}
		if to.Before(from) {
			return Window{}, &ParamError{Param: "to", Value: spec.To, Reason: "before from " + spec.From}
		}
		if to.Sub(from) >= MaxRangeDays*24*time.Hour {
			return Window{}, &ParamError{Param: "to", Value: spec.To, Reason: fmt.Sprintf("a range of more than %d days", MaxRangeDays)}
		}
		return Window{Kind: kind, From: spec.From, To: spec.To}, nil
	}
	return Window{}, &ParamError{Param: "window", Value: spec.Kind, Reason: "want day, month, 30d or range"}
}

// Scope is whose calls a line counts: the whole hotline (both empty), one
// agent's, or one category's.
type Scope struct {
	AgentID  string          `json:"agent_id,omitempty"`
	Category appeal.Category `json:"category,omitempty"`
}

// Hotline is the scope of every call.
var Hotline = Scope{}

// check refuses a scope of both an agent and a category (the counters are
// kept per agent and per category, not per pair) and an unknown category.
func (s Scope) check() error {
	if s.AgentID != "" && s.Category != "" {
		return &ParamError{Param: "category", Value: string(s.Category), Reason: "one scope at a time: an agent or a category"}
	}
	if s.Category != "" && !s.Category.Valid() {
		return &ParamError{Param: "category", Value: string(s.Category), Reason: "unknown category"}
	}
	return nil
}

// row names the scope in the counters.
func (s Scope) row() string {
	switch {
	case s.AgentID != "":
		return "agent:" + s.AgentID
	case s.Category != "":
		return "category:" + string(s.Category)
	}
	return "hotline"
}

// scopeOfRow is the inverse of Scope.row; ok is false for a name it never
// makes.
func scopeOfRow(name string) (Scope, bool) {
	switch {
	case name == "hotline":
		return Hotline, true
	case strings.HasPrefix(name, "agent:"):
		return Scope{AgentID: strings.TrimPrefix(name, "agent:")}, true
	case strings.HasPrefix(name, "category:"):
		return Scope{Category: appeal.Category(strings.TrimPrefix(name, "category:"))}, true
	}
	return Scope{}, false
}

// State says where a window stands against the line.
type State string

// The states.
const (
	Within State = "within"
	Over   State = "over"
)

// Line is a window's answer for one scope: the counts, the rate against
// the line, and how much room is left.
type Line struct {
	Window
	Scope
	Counts
	Pending int64 `json:"pending"` // bad reviews not yet reviewed
	// LimitPer10000 is the line: effective complaints per 10,000 served.
	LimitPer10000 int `json:"limit_per_10000"`
	// RatePer10000 is upheld per 10,000 served; absent with no call
	// served: no calls, no rate.
	RatePer10000 *float64 `json:"rate_per_10000,omitempty"`
	// WorstCasePer10000 is the rate if every pending review were upheld.
	WorstCasePer10000 *float64 `json:"worst_case_per_10000,omitempty"`
	// UpperBoundPer10000 is the 95 % Wilson upper confidence bound of the
	// rate: with few calls it stays far above the rate, and a rate under
	// the line is not yet evidence that the service is within it.
	UpperBoundPer10000 *float64 `json:"upper_bound_95_per_10000,omitempty"`
	// State is over when upheld × 10,000 > limit × served.
	State State `json:"state"`
	// Budget is how many more effective complaints the window takes
	// without crossing: floor(served × limit / 10,000) − upheld. Negative
	// when over.
	Budget int64 `json:"budget"`
	// NextCrosses is true when the window is within the line and one more
	// effective complaint crosses it: with few calls the first does.
	NextCrosses bool `json:"next_crosses"`
	// Message says the above in a sentence, with the counts.
	Message string `json:"message"`
}

// wilsonZ is the standard normal quantile of a two-sided 95 % interval.
const wilsonZ = 1.959963984540054

// Evaluate measures counts against a limit (effective complaints per
// 10,000 served). It is the line's one rule; every window, scope, alert
// and report uses it.
func Evaluate(w Window, s Scope, c Counts, limit int) Line {
	l := Line{Window: w, Scope: s, Counts: c, Pending: c.Pending(), LimitPer10000: limit}
	lim := int64(limit)
	l.Budget = c.Served*lim/10000 - c.Upheld
	l.State = Within
	if c.Upheld*10000 > lim*c.Served {
		l.State = Over
	}
	l.NextCrosses = l.State == Within && (c.Upheld+1)*10000 > lim*c.Served
	if c.Served > 0 {
		n := float64(c.Served)
		rate := float64(c.Upheld) * 10000 / n
		worst := float64(c.Upheld+max(l.Pending, 0)) * 10000 / n
		upper := wilsonUpper(float64(c.Upheld), n) * 10000
		l.RatePer10000, l.WorstCasePer10000, l.UpperBoundPer10000 = &rate, &worst, &upper
	}
	l.Message = l.message()
	return l
}

// wilsonUpper is the upper end of the Wilson score interval of k
// successes in n trials (n > 0).
func wilsonUpper(k, n float64) float64 {
	p := k / n
	z2 := wilsonZ * wilsonZ
	centre := p + z2/(2*n)
	spread := wilsonZ * math.Sqrt(p*(1-p)/n+z2/(4*n*n))
	return math.Min(1, (centre+spread)/(1+z2/n))
}

func (l Line) message() string {
	c := l.Counts
	counts := fmt.Sprintf("%s in %s served", plural(c.Upheld, "effective complaint"), plural(c.Served, "call"))
	var b strings.Builder
	switch {
	case c.Served == 0 && c.Upheld == 0:
		b.WriteString("no call served: no rate")
	case l.State == Over:
		fmt.Fprintf(&b, "over the line: %s, more than %d per 10,000", counts, l.LimitPer10000)
	case l.NextCrosses:
		fmt.Fprintf(&b, "within the line, but one more effective complaint crosses it: %s (%d per 10,000 allows %d)",
			counts, l.LimitPer10000, c.Served*int64(l.LimitPer10000)/10000)
	default:
		fmt.Fprintf(&b, "within the line: %s, room for %d more", counts, l.Budget)
	}
	if p := l.Pending; p > 0 {
		fmt.Fprintf(&b, "; %s pending", plural(p, "bad review"))
		if l.WorstCasePer10000 != nil {
			fmt.Fprintf(&b, ", %.2f per 10,000 if all were upheld", *l.WorstCasePer10000)
		}
	}
	return b.String()
}

// plural counts things in words: 1 call, 2 calls.
func plural(n int64, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}
