package config

import (
	"fmt"
	"net/url"
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
	// ReviewSLA is how long a bad review may wait for a supervisor's
	// review before it is flagged overdue (API, metrics, alert rule).
	ReviewSLA Duration `yaml:"review_sla"`
	// CheckInterval is how often the watched windows (the hotline's day,
	// month and 30 days, each agent's 30 days) are measured against the
	// line; a review measures them at once.
	CheckInterval Duration `yaml:"check_interval"`
	// WebhookURL, when set, receives each crossing of the line as a
	// signed JSON POST (see README, "The complaint line").
	WebhookURL string `yaml:"webhook_url"`
	// WebhookSecret keys the HMAC-SHA256 signature of the webhook's
	// requests; at least 16 characters. Best set by
	// HOTLINE_EVALUATION_WEBHOOK_SECRET rather than in the file.
	WebhookSecret string `yaml:"webhook_secret"`
}

// minWebhookSecret is the shortest webhook secret taken.
const minWebhookSecret = 16

// minEvaluationRetention keeps the calendar month before the current one
// whole while the current one runs: two months of 31 days.
const minEvaluationRetention = 62 * 24 * time.Hour

func defaultEvaluation() EvaluationSettings {
	return EvaluationSettings{ComplaintLimitPer10000: 3, Retention: Duration(400 * 24 * time.Hour),
		ReviewSLA: Duration(24 * time.Hour), CheckInterval: Duration(15 * time.Second)}
}

func (e EvaluationSettings) validate(p *problems) {
	if e.ComplaintLimitPer10000 < 1 || e.ComplaintLimitPer10000 > 10000 {
		p.check("evaluation.complaint_limit_per_10000", fmt.Errorf("%d: want 1 to 10000 (effective complaints per 10,000 calls served)", e.ComplaintLimitPer10000))
	}
	p.check("evaluation.retention", within(e.Retention, minEvaluationRetention, 10*365*24*time.Hour))
	p.check("evaluation.review_sla", within(e.ReviewSLA, time.Minute, 90*24*time.Hour))
	p.check("evaluation.check_interval", within(e.CheckInterval, time.Second, time.Hour))
	if e.WebhookURL == "" {
		return
	}
	u, err := url.Parse(e.WebhookURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.check("evaluation.webhook_url", fmt.Errorf("%q: want an http or https URL", e.WebhookURL))
	}
	if len(e.WebhookSecret) < minWebhookSecret {
		p.check("evaluation.webhook_secret", fmt.Errorf("want at least %d characters to sign the webhook's requests with", minWebhookSecret))
	}
}
