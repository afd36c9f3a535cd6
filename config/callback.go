package config

import (
	"fmt"
	"strings"
	"time"
)

// CallbackSettings are the return visits (回访): which consented appeals
// are visited once their processing time expires, and when citizens may
// be called.
type CallbackSettings struct {
	// Sample is the percentage of each category's consented appeals that
	// get a visit, 0-100; the same appeal is always in or out (see Seed).
	Sample struct {
		Emergency  int `yaml:"emergency"`
		Livelihood int `yaml:"livelihood"`
		General    int `yaml:"general"`
		Complex    int `yaml:"complex"`
	} `yaml:"sample"`
	// Seed keys the sample: an appeal is in when HMAC-SHA256(seed, its
	// id) says so, which an auditor can compute again. Best set by
	// HOTLINE_CALLBACK_SEED.
	Seed string `yaml:"seed"`
	// Days are the calling windows of each weekday, "HH:MM-HH:MM" in
	// the hotline's zone; a day without any has no calls.
	Days struct {
		Monday    []string `yaml:"monday"`
		Tuesday   []string `yaml:"tuesday"`
		Wednesday []string `yaml:"wednesday"`
		Thursday  []string `yaml:"thursday"`
		Friday    []string `yaml:"friday"`
		Saturday  []string `yaml:"saturday"`
		Sunday    []string `yaml:"sunday"`
	} `yaml:"days"`
	// Mode says how each category's return visits are made: "agent" (a
	// return-visit agent calls, the default) or "ivr" (hotline calls and
	// asks the three questions by key).
	Mode struct {
		Emergency  string `yaml:"emergency"`
		Livelihood string `yaml:"livelihood"`
		General    string `yaml:"general"`
		Complex    string `yaml:"complex"`
	} `yaml:"mode"`
	// OnFeedback also decides an appeal's visit when its feedback
	// arrives, not only when its processing time expires.
	OnFeedback bool `yaml:"on_feedback"`
	// PartlySolvedCounts counts "partly solved" as solved in the
	// solution rate; by default it counts as not solved.
	PartlySolvedCounts bool `yaml:"partly_solved_counts"`
	// Lease is how long a taken visit is the agent's unless renewed.
	Lease Duration `yaml:"lease"`
	// Retention is how long the rates' day counters are kept.
	Retention Duration `yaml:"retention"`
	// IVRCalls is how many automated visits (mode ivr) each node makes at
	// once; 0 makes none on this node.
	IVRCalls int `yaml:"ivr_calls"`
	// RingTimeout is how long a citizen's phone rings for a visit.
	RingTimeout Duration `yaml:"ring_timeout"`
}

// Modes is each category's mode, by the category's name.
func (c CallbackSettings) Modes() map[string]string {
	m := c.Mode
	return map[string]string{"emergency": m.Emergency, "livelihood": m.Livelihood, "general": m.General, "complex": m.Complex}
}

func defaultCallback() CallbackSettings {
	var c CallbackSettings
	c.Sample.Emergency, c.Sample.Livelihood, c.Sample.General, c.Sample.Complex = 100, 100, 100, 100
	c.Mode.Emergency, c.Mode.Livelihood, c.Mode.General, c.Mode.Complex = "agent", "agent", "agent", "agent"
	c.Lease = Duration(10 * time.Minute)
	c.IVRCalls = 2
	c.RingTimeout = Duration(45 * time.Second)
	c.Retention = Duration(400 * 24 * time.Hour)
	d := &c.Days
	for _, day := range []*[]string{&d.Monday, &d.Tuesday, &d.Wednesday, &d.Thursday, &d.Friday, &d.Saturday, &d.Sunday} {
		*day = []string{"09:00-12:00", "14:00-20:00"}
	}
	return c
}

// DayWindows are the windows of each weekday, Sunday first (as
// time.Weekday counts).
func (c CallbackSettings) DayWindows() [7][]string {
	d := c.Days
	return [7][]string{d.Sunday, d.Monday, d.Tuesday, d.Wednesday, d.Thursday, d.Friday, d.Saturday}
}

func (c CallbackSettings) validate(p *problems) {
	for name, v := range map[string]int{"emergency": c.Sample.Emergency, "livelihood": c.Sample.Livelihood, "general": c.Sample.General, "complex": c.Sample.Complex} {
		if v < 0 || v > 100 {
			p.check("callback.sample."+name, fmt.Errorf("%d: want a percentage, 0-100", v))
		}
	}
	for name, v := range c.Modes() {
		if v != "agent" && v != "ivr" {
			p.check("callback.mode."+name, fmt.Errorf("%q: want agent or ivr", v))
		}
	}
	p.check("callback.lease", within(c.Lease, 5*time.Second, 24*time.Hour))
	if c.IVRCalls < 0 || c.IVRCalls > 100 {
		p.check("callback.ivr_calls", fmt.Errorf("%d: want 0-100", c.IVRCalls))
	}
	p.check("callback.ring_timeout", within(c.RingTimeout, 5*time.Second, 3*time.Minute))
	if c.Retention < Duration(24*time.Hour) {
		p.check("callback.retention", fmt.Errorf("%s: want a day or more", time.Duration(c.Retention)))
	}
	check := func(key string, spans []string) {
		for _, s := range spans {
			if err := checkSpan(s); err != nil {
				p.check(key, err)
			}
		}
	}
	days := []string{"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"}
	for i, w := range c.DayWindows() {
		check("callback.days."+days[i], w)
	}
}

// checkSpan checks "HH:MM-HH:MM", the start before the end.
func checkSpan(s string) error {
	from, to, ok := strings.Cut(s, "-")
	var fh, fm, th, tm int
	if !ok {
		return fmt.Errorf("%q: want HH:MM-HH:MM", s)
	}
	if _, err := fmt.Sscanf(from, "%d:%d", &fh, &fm); err != nil {
		return fmt.Errorf("%q: want HH:MM-HH:MM", s)
	}
	if _, err := fmt.Sscanf(to, "%d:%d", &th, &tm); err != nil {
		return fmt.Errorf("%q: want HH:MM-HH:MM", s)
	}
	if fh < 0 || fh > 23 || fm < 0 || fm > 59 || th < 0 || th > 24 || tm < 0 || tm > 59 || th == 24 && tm != 0 || fh*60+fm >= th*60+tm {
		return fmt.Errorf("%q: want HH:MM-HH:MM, the start before the end", s)
	}
	return nil
}
