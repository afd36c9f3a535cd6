package callback

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hotline12345/hotline/appeal"
)

// The three rates of return visits, after the standard:
//
//	response rate     = visits answered "the organizer contacted me"
//	                    ÷ completed visits
//	solution rate     = visits answered "solved" ÷ completed visits
//	                    ("partly" counts as not solved, unless
//	                    PartlySolvedCounts)
//	satisfaction rate = visits answered "satisfied" or "basically
//	                    satisfied" ÷ completed visits
//
// A completed return visit counts once, on the day (in the hotline's
// zone) it was completed, for the whole hotline, its lead organizer, its
// category and the lead organizer's district. A completed call-back asks
// no questions and counts in no rate.

// DefaultRatesRetention is how long a day's counters of the rates are
// kept.
const DefaultRatesRetention = 400 * 24 * time.Hour

const dayLayout = "2006-01-02"

// By is what the rates are grouped by.
type By string

// The groupings of the rates.
const (
	ByAll       By = "all"
	ByOrganizer By = "organizer"
	ByCategory  By = "category"
	ByDistrict  By = "district"
)

// Bys are the groupings, in the order they are documented.
var Bys = []By{ByAll, ByOrganizer, ByCategory, ByDistrict}

// Tally is what completed visits answered: the counts the rates are made
// of.
type Tally struct {
	Completed          int64 `json:"completed"`
	Contacted          int64 `json:"contacted"`
	NotContacted       int64 `json:"not_contacted"`
	Solved             int64 `json:"solved"`
	PartlySolved       int64 `json:"partly_solved"`
	NotSolved          int64 `json:"not_solved"`
	Satisfied          int64 `json:"satisfied"`
	BasicallySatisfied int64 `json:"basically_satisfied"`
	Dissatisfied       int64 `json:"dissatisfied"`
}

// add counts one completed visit's answers.
func (t *Tally) add(a Answers) {
	t.Completed++
	*t.field("response:" + string(a.Response)) += 1
	*t.field("solution:" + string(a.Solution)) += 1
	*t.field("satisfaction:" + string(a.Satisfaction)) += 1
}

// field is the count a counter's name in Redis keeps; nil for a name
// that is none.
func (t *Tally) field(name string) *int64 {
	switch name {
	case "completed":
		return &t.Completed
	case "response:yes":
		return &t.Contacted
	case "response:no":
		return &t.NotContacted
	case "solution:yes":
		return &t.Solved
	case "solution:partly":
		return &t.PartlySolved
	case "solution:no":
		return &t.NotSolved
	case "satisfaction:satisfied":
		return &t.Satisfied
	case "satisfaction:basically_satisfied":
		return &t.BasicallySatisfied
	case "satisfaction:dissatisfied":
		return &t.Dissatisfied
	}
	return nil
}

// Fraction is a rate with what it is made of. Rate is absent when
// nothing was counted: no visit is not 0 %.
type Fraction struct {
	Numerator   int64    `json:"numerator"`
	Denominator int64    `json:"denominator"`
	Rate        *float64 `json:"rate,omitempty"`
}

func fraction(n, d int64) Fraction {
	f := Fraction{Numerator: n, Denominator: d}
	if d > 0 {
		r := float64(n) / float64(d)
		f.Rate = &r
	}
	return f
}

// Rates are the three rates of one group over a span of days.
type Rates struct {
	// Group is the organizer, category or district; "all" for the
	// whole hotline.
	Group        string   `json:"group"`
	Tally        Tally    `json:"tally"`
	Response     Fraction `json:"response_rate"`
	Solution     Fraction `json:"solution_rate"`
	Satisfaction Fraction `json:"satisfaction_rate"`
}

// RatesOf makes the rates of a tally; partly counts as solved when
// partlySolved.
func RatesOf(group string, t Tally, partlySolved bool) Rates {
	solved := t.Solved
	if partlySolved {
		solved += t.PartlySolved
	}
	return Rates{Group: group, Tally: t,
		Response:     fraction(t.Contacted, t.Completed),
		Solution:     fraction(solved, t.Completed),
		Satisfaction: fraction(t.Satisfied+t.BasicallySatisfied, t.Completed)}
}

// groupsOf are the groups a completed visit counts in, as the counters
// name them.
func groupsOf(v Visit) []string {
	g := []string{"all", "category:" + string(v.Category)}
	if len(v.Organizers) > 0 && v.Organizers[0] != "" {
		g = append(g, "organizer:"+v.Organizers[0])
	}
	if v.District != "" {
		g = append(g, "district:"+v.District)
	}
	return g
}

// rateFields are the counters a completed visit adds one to.
func rateFields(v Visit, a Answers) []string {
	var out []string
	for _, g := range groupsOf(v) {
		for _, c := range []string{"completed", "response:" + string(a.Response), "solution:" + string(a.Solution), "satisfaction:" + string(a.Satisfaction)} {
			out = append(out, g+"|"+c)
		}
	}
	return out
}

func (s *Store) ratesKey(day string) string { return s.base + "rates:" + day }
func (s *Store) ratedKey(day string) string { return s.base + "rated:" + day }

// Rates reads the rates of the days given (YYYY-MM-DD, of the hotline's
// zone), one per group of the grouping, the groups sorted by name; ByAll
// gives one, "all", even when nothing was counted.
func (s *Store) Rates(ctx context.Context, by By, days []string) ([]Rates, error) {
	if !slices.Contains(Bys, by) {
		return nil, fmt.Errorf("%w: by %q: want all, organizer, category or district", ErrInvalid, by)
	}
	tallies, err := s.tallies(ctx, days)
	if err != nil {
		return nil, err
	}
	var out []Rates
	for g, t := range tallies {
		kind, name, _ := strings.Cut(g, ":")
		if kind == string(by) || by == ByAll && g == "all" {
			if name == "" {
				name = g
			}
			out = append(out, RatesOf(name, *t, s.opts.PartlySolvedCounts))
		}
	}
	if by == ByAll && len(out) == 0 {
		out = append(out, RatesOf("all", Tally{}, s.opts.PartlySolvedCounts))
	}
	slices.SortFunc(out, func(a, b Rates) int { return strings.Compare(a.Group, b.Group) })
	return out, nil
}

// tallies sums the days' counters, by group as the counters name it.
func (s *Store) tallies(ctx context.Context, days []string) (map[string]*Tally, error) {
	cmds := make([]*redis.MapStringStringCmd, len(days))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, d := range days {
			cmds[i] = p.HGetAll(ctx, s.ratesKey(d))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("callback: rates: %w", err)
	}
	out := map[string]*Tally{}
	for _, c := range cmds {
		for k, v := range c.Val() {
			g, counter, ok := strings.Cut(k, "|")
			n, err := strconv.ParseInt(v, 10, 64)
			if !ok || err != nil {
				continue
			}
			if out[g] == nil {
				out[g] = &Tally{}
			}
			if f := out[g].field(counter); f != nil {
				*f += n
			}
		}
	}
	return out, nil
}

// Counted is one completed return visit as the rates counted it: enough
// to compute any rate again by hand.
type Counted struct {
	Day         string          `json:"day"`
	Visit       string          `json:"visit"`
	Appeal      string          `json:"appeal"`
	CompletedAt time.Time       `json:"completed_at"`
	Agent       string          `json:"agent"`
	Organizer   string          `json:"organizer,omitempty"`
	District    string          `json:"district,omitempty"`
	Category    appeal.Category `json:"category"`
	Answers     Answers         `json:"answers"`
}

// CountedOf is a completed return visit as counted; false when the visit
// is not one.
func CountedOf(v Visit, loc *time.Location) (Counted, bool) {
	if v.Kind != ReturnVisit || v.State != Done || len(v.Attempts) == 0 {
		return Counted{}, false
	}
	last := v.Attempts[len(v.Attempts)-1]
	if last.Outcome != Completed || last.Answers == nil {
		return Counted{}, false
	}
	c := Counted{Day: last.At.In(loc).Format(dayLayout), Visit: v.ID, Appeal: v.Appeal, CompletedAt: last.At.In(loc),
		Agent: last.By, District: v.District, Category: v.Category, Answers: *last.Answers}
	if len(v.Organizers) > 0 {
		c.Organizer = v.Organizers[0]
	}
	return c, true
}

// EachCounted calls f with every visit the rates of the days counted, day
// by day, each day's in the order they were completed; it stops at f's
// first error.
func (s *Store) EachCounted(ctx context.Context, days []string, f func(Counted) error) error {
	for _, d := range days {
		ids, err := s.rdb.ZRange(ctx, s.ratedKey(d), 0, -1).Result()
		if err != nil {
			return fmt.Errorf("callback: visits counted on %s: %w", d, err)
		}
		for chunk := range slices.Chunk(ids, 500) {
			docs, err := s.rdb.HMGet(ctx, s.visits, chunk...).Result()
			if err != nil {
				return fmt.Errorf("callback: visits counted on %s: %w", d, err)
			}
			for i, doc := range docs {
				raw, ok := doc.(string)
				if !ok {
					return fmt.Errorf("%w: visit %s, counted on %s, has no record", ErrNotFound, chunk[i], d)
				}
				v, err := decodeVisit(chunk[i], raw)
				if err != nil {
					return err
				}
				c, ok := CountedOf(v, s.opts.Location)
				if !ok {
					return fmt.Errorf("callback: visit %s, counted on %s, is no completed return visit (%s)", v.ID, d, v.State)
				}
				if err := f(c); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Difference is a counter the audit found differing from what the visit
// records say.
type Difference struct {
	Day     string `json:"day"`
	Group   string `json:"group"`
	Counter string `json:"counter"`
	Kept    int64  `json:"kept"`
	Records int64  `json:"records"`
}

func (d Difference) String() string {
	return fmt.Sprintf("%s %s %s: kept %d, the records say %d", d.Day, d.Group, d.Counter, d.Kept, d.Records)
}

// Audit is what an audit of the rates found.
type Audit struct {
	From, To string `json:"-"`
	// Visits is how many completed return visits the records hold.
	Visits      int64        `json:"visits"`
	Differences []Difference `json:"differences"`
	// Uncounted are completed return visits in no day's count.
	Uncounted []string `json:"uncounted"`
}

// counterNames are the counters of a tally, as Redis names them.
var counterNames = []string{"completed", "response:yes", "response:no", "solution:yes", "solution:partly", "solution:no",
	"satisfaction:satisfied", "satisfaction:basically_satisfied", "satisfaction:dissatisfied"}

// Audit recomputes the rates' counters of the days from the visit
// records — every return visit completed on them, found through the
// completed visits' index, not through the counters — and lists every
// counter that differs and every completed visit that was not counted.
func (s *Store) Audit(ctx context.Context, days []string) (Audit, error) {
	var out Audit
	if len(days) == 0 {
		return out, nil
	}
	first, err1 := time.ParseInLocation(dayLayout, days[0], s.opts.Location)
	last, err2 := time.ParseInLocation(dayLayout, days[len(days)-1], s.opts.Location)
	if err1 != nil || err2 != nil {
		return out, fmt.Errorf("%w: days %s..%s", ErrInvalid, days[0], days[len(days)-1])
	}
	end := last.AddDate(0, 0, 1)
	// A visit ends in the completed index at the instant of its last
	// attempt: the index's range of the days holds every one of them.
	ids, err := s.rdb.ZRangeByScore(ctx, s.ended+string(Done), &redis.ZRangeBy{
		Min: strconv.FormatInt(first.UnixMilli(), 10), Max: "(" + strconv.FormatInt(end.UnixMilli(), 10)}).Result()
	if err != nil {
		return out, fmt.Errorf("callback: audit: %w", err)
	}
	want := map[string]map[string]*Tally{}
	byDay := map[string][]string{}
	for chunk := range slices.Chunk(ids, 500) {
		vs, err := s.visitsOf(ctx, chunk)
		if err != nil {
			return out, err
		}
		for _, v := range vs {
			c, ok := CountedOf(v, s.opts.Location)
			if !ok {
				continue
			}
			out.Visits++
			byDay[c.Day] = append(byDay[c.Day], v.ID)
			if want[c.Day] == nil {
				want[c.Day] = map[string]*Tally{}
			}
			for _, g := range groupsOf(v) {
				if want[c.Day][g] == nil {
					want[c.Day][g] = &Tally{}
				}
				want[c.Day][g].add(c.Answers)
			}
		}
	}
	for _, d := range days {
		kept, err := s.tallies(ctx, []string{d})
		if err != nil {
			return out, err
		}
		groups := map[string]bool{}
		for g := range kept {
			groups[g] = true
		}
		for g := range want[d] {
			groups[g] = true
		}
		for _, g := range slices.Sorted(maps.Keys(groups)) {
			k, w := kept[g], want[d][g]
			if k == nil {
				k = &Tally{}
			}
			if w == nil {
				w = &Tally{}
			}
			for _, name := range counterNames {
				if a, b := *k.field(name), *w.field(name); a != b {
					out.Differences = append(out.Differences, Difference{Day: d, Group: g, Counter: name, Kept: a, Records: b})
				}
			}
		}
		if len(byDay[d]) > 0 {
			scores, err := s.rdb.ZMScore(ctx, s.ratedKey(d), byDay[d]...).Result()
			if err != nil {
				return out, fmt.Errorf("callback: audit: %w", err)
			}
			for i, sc := range scores {
				if sc == 0 {
					out.Uncounted = append(out.Uncounted, byDay[d][i])
				}
			}
		}
	}
	return out, nil
}

// completion is what the attempt script needs to count a completed
// return visit in its day's rates.
type completion struct {
	ratesKey, ratedKey string
	fields             []string
}

func (s *Store) completionOf(v Visit, a Answers, at time.Time) completion {
	day := at.In(s.opts.Location).Format(dayLayout)
	return completion{ratesKey: s.ratesKey(day), ratedKey: s.ratedKey(day), fields: rateFields(v, a)}
}
