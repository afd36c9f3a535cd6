package config

import "time"

// CallsSettings are about the call records.
type CallsSettings struct {
	// Retention is how long a call record is kept after its call started;
	// Redis expires it then. Anyone who reaches the SIP port makes records,
	// so they must not be kept for ever. The default, 180 days (two
	// quarters), covers a half-year's review of the organizers' three rates
	// and of the complaints behind the 3/10,000 line, whose windows reach
	// 30 days and whose reviews come after them. The synthetic probe's
	// appeals, which nobody works, are kept as long.
	Retention Duration `yaml:"retention"`
}

// minRetention is the complaint rate's longest window (rolling 30 days):
// records are not dropped while a rate over them is still open.
const minRetention = 30 * 24 * time.Hour

func defaultCalls() CallsSettings {
	return CallsSettings{Retention: Duration(180 * 24 * time.Hour)}
}

func (c CallsSettings) validate(p *problems) {
	p.check("calls.retention", within(c.Retention, minRetention, 10*365*24*time.Hour))
}
