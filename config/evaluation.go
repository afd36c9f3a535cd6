package config

import (
	"fmt"
	"time"
)

// EvaluationSettings are about the callers' ratings and the effective
// complaint rate.
type EvaluationSettings struct {
	// ComplaintLimitPer10000 is the line: effective complaints (bad
	// reviews a supervisor upheld) per 10,000 calls served. The standard
	// says the rate "should not be higher than three ten-thousandths": 3
	// in 10,000 is within the line, 4 is over.
	ComplaintLimitPer10000 int `yaml:"complaint_limit_per_10000"`
	// Retention is how long the line's daily counters and the calls they
	// count are kept from their day (the first call counted on it); Redis
	// expires them then. The default, 400 days, keeps the same month of
	// the year before to compare with. Ratings and reviews themselves are
	// kept for ever.
	Retention Duration `yaml:"retention"`
}

// minEvaluationRetention keeps the calendar month before the current one
// whole while the current one runs: two months of 31 days.
const minEvaluationRetention = 62 * 24 * time.Hour

func defaultEvaluation() EvaluationSettings {
	return EvaluationSettings{ComplaintLimitPer10000: 3, Retention: Duration(400 * 24 * time.Hour)}
}

func (e EvaluationSettings) validate(p *problems) {
	if e.ComplaintLimitPer10000 < 1 || e.ComplaintLimitPer10000 > 10000 {
		p.check("evaluation.complaint_limit_per_10000", fmt.Errorf("%d: want 1 to 10000 (effective complaints per 10,000 calls served)", e.ComplaintLimitPer10000))
	}
	p.check("evaluation.retention", within(e.Retention, minEvaluationRetention, 10*365*24*time.Hour))
}
