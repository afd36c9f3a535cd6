package config

import "time"

// AppealsSettings are about the appeals kept in Redis.
type AppealsSettings struct {
	// Retention is how long a closed appeal is kept after it was taken;
	// every node then removes it from every list, count and organizer's
	// set. An appeal still open is kept however old. Every call that
	// reaches intake makes an appeal, so they must not be kept for ever.
	// The default, three years, covers the yearly performance evaluations
	// the appeals' clocks and return visits feed, with a year to spare;
	// export what must be archived longer (hotline appeals list, the API).
	Retention Duration `yaml:"retention"`
}

// minAppealRetention keeps a closed appeal as long as the records made
// of it (the return visits' rates and the complaint line's counters,
// 400 days by default): none outlives the appeal it counts.
const minAppealRetention = 400 * 24 * time.Hour

func defaultAppeals() AppealsSettings {
	return AppealsSettings{Retention: Duration(3 * 365 * 24 * time.Hour)}
}

func (a AppealsSettings) validate(p *problems) {
	p.check("appeals.retention", within(a.Retention, minAppealRetention, 30*365*24*time.Hour))
}
