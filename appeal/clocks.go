package appeal

import (
	"errors"
	"fmt"
	"time"
)

// ErrUnknownCategory is returned for a category the standard does not name.
var ErrUnknownCategory = errors.New("appeal: unknown category")

// Categories lists the categories of the standard, most urgent first.
func Categories() []Category {
	return []Category{Emergency, Livelihood, General, Complex}
}

// Valid reports whether c is one of the standard's categories.
func (c Category) Valid() bool {
	switch c {
	case Emergency, Livelihood, General, Complex:
		return true
	}
	return false
}

// ParseCategory turns a configured or stored name into a Category; an
// unknown name is an error wrapping ErrUnknownCategory.
func ParseCategory(s string) (Category, error) {
	c := Category(s)
	if !c.Valid() {
		return "", fmt.Errorf("%w: %q (want emergency, livelihood, general or complex)", ErrUnknownCategory, s)
	}
	return c, nil
}

// DefaultLocation is the hotline's time zone when none is configured:
// China Standard Time, the wall clock of Asia/Shanghai. China has kept
// UTC+8 without daylight saving since 1991, so a fixed zone gives the same
// clocks as the tz database without depending on one being installed.
func DefaultLocation() *time.Location {
	return time.FixedZone("Asia/Shanghai", 8*60*60)
}

// limits are one category's time limits from the standard.
type limits struct {
	dispatch     time.Duration // hotline sends the order to the organizer
	dispatchPeak time.Duration // the same while traffic is concentrated
	sign         time.Duration // organizer signs for the order
	feedback     time.Duration // organizer reports back, in hours ...
	feedbackDays int           // ... or in natural (calendar) days
}

// limitsOf holds the time limits of Beijing's local standard "12345 Service
// and Management Specification for Citizen Service Hotline": dispatch
// ("issued within 1 hour", "2 hours", "24 hours, and when the traffic is
// concentrated, within 48 hours"), signing ("15 minutes", "30 minutes",
// "24 hours") and feedback ("2 hours", "24 hours", "7 natural days", "15
// natural days"). The standard gives complex appeals no dispatch or sign
// limit of their own; they follow the general ones.
func limitsOf(c Category) (limits, bool) {
	switch c {
	case Emergency:
		return limits{dispatch: time.Hour, dispatchPeak: time.Hour, sign: 15 * time.Minute, feedback: 2 * time.Hour}, true
	case Livelihood:
		return limits{dispatch: 2 * time.Hour, dispatchPeak: 2 * time.Hour, sign: 30 * time.Minute, feedback: 24 * time.Hour}, true
	case General:
		return limits{dispatch: 24 * time.Hour, dispatchPeak: 48 * time.Hour, sign: 24 * time.Hour, feedbackDays: 7}, true
	case Complex:
		return limits{dispatch: 24 * time.Hour, dispatchPeak: 48 * time.Hour, sign: 24 * time.Hour, feedbackDays: 15}, true
	}
	return limits{}, false
}

// Clocks returns an appeal's deadlines under the Beijing local standard
// "12345 Service and Management Specification for Citizen Service Hotline":
//
//   - dispatch: emergency 1 h, livelihood 2 h, general and complex 24 h, or
//     48 h when peak mode ("the traffic is concentrated") is on;
//   - the organizer signs within emergency 15 min, livelihood 30 min,
//     general and complex 24 h;
//   - feedback within emergency 2 h, livelihood 24 h, general 7 natural
//     days, complex 15 natural days.
//
// The clocks run on wall-clock time, 7×24, as the standard requires the
// hotline and organizers to serve 7×24 hours a week. When an appeal is
// created its dispatch time is not known yet, so the later clocks start at
// the latest moment dispatch may happen:
//
//	dispatch = created + dispatch limit
//	sign     = dispatch + sign limit
//	feedback = dispatch + feedback limit
//
// When the order is dispatched (Store.Step) sign and feedback start again
// from the real dispatch; when an organizer returns it, the dispatch clock
// starts again from the return, as if the appeal were created then (in
// the peak mode it was created in).
//
// Natural days are calendar days in loc (the hotline's time zone; nil means
// DefaultLocation): the feedback deadline is the same wall-clock time that
// many dates later, whatever daylight-saving change lies between. The
// results are in loc. An unknown category gives zero times; check it with
// Valid or ParseCategory first.
func Clocks(c Category, created time.Time, peak bool, loc *time.Location) (dispatch, sign, feedback time.Time) {
	l, ok := limitsOf(c)
	if !ok {
		return time.Time{}, time.Time{}, time.Time{}
	}
	if loc == nil {
		loc = DefaultLocation()
	}
	limit := l.dispatch
	if peak {
		limit = l.dispatchPeak
	}
	dispatch = created.In(loc).Add(limit)
	sign, feedback = laterClocks(c, dispatch, loc)
	return dispatch, sign, feedback
}

// laterClocks are the organizers' deadlines of an appeal dispatched at
// dispatched: the sign and feedback limits of its category from then,
// feedback in natural days where the category counts them.
func laterClocks(c Category, dispatched time.Time, loc *time.Location) (sign, feedback time.Time) {
	l, ok := limitsOf(c)
	if !ok {
		return time.Time{}, time.Time{}
	}
	if loc == nil {
		loc = DefaultLocation()
	}
	dispatched = dispatched.In(loc)
	sign = dispatched.Add(l.sign)
	if l.feedbackDays > 0 {
		feedback = dispatched.AddDate(0, 0, l.feedbackDays)
	} else {
		feedback = dispatched.Add(l.feedback)
	}
	return sign, feedback
}
