package callback

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Span is a calling window within a day, from its start to its end (not
// included), as offsets from midnight.
type Span struct {
	From, To time.Duration
}

// ParseSpan reads "09:00-12:00".
func ParseSpan(s string) (Span, error) {
	from, to, ok := strings.Cut(s, "-")
	if !ok {
		return Span{}, fmt.Errorf("calling window %q: want HH:MM-HH:MM", s)
	}
	f, err1 := clock(from)
	t, err2 := clock(to)
	if err1 != nil || err2 != nil || f >= t {
		return Span{}, fmt.Errorf("calling window %q: want HH:MM-HH:MM, the start before the end", s)
	}
	return Span{From: f, To: t}, nil
}

func clock(s string) (time.Duration, error) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if err != nil {
		if strings.TrimSpace(s) == "24:00" {
			return 24 * time.Hour, nil
		}
		return 0, err
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
}

// Windows are the calling windows of each weekday, in the hotline's zone:
// no attempt is made outside them.
type Windows struct {
	Loc  *time.Location
	Days [7][]Span // by time.Weekday
}

// DefaultWindows are 09:00–12:00 and 14:00–20:00 every day.
func DefaultWindows(loc *time.Location) Windows {
	w := Windows{Loc: loc}
	for d := range w.Days {
		w.Days[d] = []Span{{From: 9 * time.Hour, To: 12 * time.Hour}, {From: 14 * time.Hour, To: 20 * time.Hour}}
	}
	return w
}

// Next is t when it is in a window, else the start of the next window
// (within the week ahead; t itself when no day has a window).
func (w Windows) Next(t time.Time) time.Time {
	loc := w.Loc
	if loc == nil {
		loc = time.UTC
	}
	t = t.In(loc)
	y, m, d := t.Date()
	for day := range 8 {
		midnight := time.Date(y, m, d+day, 0, 0, 0, 0, loc)
		spans := slices.Clone(w.Days[midnight.Weekday()])
		slices.SortFunc(spans, func(a, b Span) int { return int(a.From - b.From) })
		for _, s := range spans {
			// Wall-clock times of the day: across a DST change a window
			// keeps its hours.
			start := wallClock(midnight, s.From)
			end := wallClock(midnight, s.To)
			if !t.Before(end) {
				continue
			}
			if t.Before(start) {
				return start
			}
			return t
		}
	}
	return t
}

// wallClock is the time of day off after midnight, on the wall clock.
func wallClock(midnight time.Time, off time.Duration) time.Time {
	y, m, d := midnight.Date()
	return time.Date(y, m, d, int(off/time.Hour), int(off%time.Hour/time.Minute), 0, 0, midnight.Location())
}
