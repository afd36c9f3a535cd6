package config

import (
	"fmt"
	"net/url"
	"time"
)

// SupervisionSettings are the appeals' clocks after the call: when each
// stage is urged (催办) before its deadline, when a clock event counts as
// fired late, and where the events go besides the API's stream.
type SupervisionSettings struct {
	// Urge says, per stage, when the urge comes before its deadline.
	Urge struct {
		Dispatch UrgeSetting `yaml:"dispatch"`
		Sign     UrgeSetting `yaml:"sign"`
		Feedback UrgeSetting `yaml:"feedback"`
	} `yaml:"urge"`
	// LateAfter is how long after its due time an event is marked late
	// (every node was stopped, or Redis did not answer).
	LateAfter Duration `yaml:"late_after"`
	// WebhookURL, when set, receives each clock event (urge, overdue,
	// expired) as a signed JSON POST, signed as the other webhooks are.
	WebhookURL string `yaml:"webhook_url"`
	// WebhookSecret keys the signature; at least 16 characters. Best set
	// by HOTLINE_SUPERVISION_WEBHOOK_SECRET rather than in the file.
	WebhookSecret string `yaml:"webhook_secret"`
}

// UrgeSetting is when a stage is urged: when LeftPercent of its time is
// left before its deadline, but at least MinLead before it.
type UrgeSetting struct {
	LeftPercent int      `yaml:"left_percent"`
	MinLead     Duration `yaml:"min_lead"`
}

func defaultSupervision() SupervisionSettings {
	var s SupervisionSettings
	s.Urge.Dispatch = UrgeSetting{LeftPercent: 20}
	s.Urge.Sign = UrgeSetting{LeftPercent: 20}
	s.Urge.Feedback = UrgeSetting{LeftPercent: 20}
	s.LateAfter = Duration(time.Minute)
	return s
}

func (s SupervisionSettings) validate(p *problems) {
	for stage, u := range map[string]UrgeSetting{"dispatch": s.Urge.Dispatch, "sign": s.Urge.Sign, "feedback": s.Urge.Feedback} {
		if u.LeftPercent < 1 || u.LeftPercent > 99 {
			p.check("supervision.urge."+stage+".left_percent", fmt.Errorf("%d: want the percentage of the stage's time left, 1-99", u.LeftPercent))
		}
		if u.MinLead < 0 {
			p.check("supervision.urge."+stage+".min_lead", fmt.Errorf("%s: want 0 or more", time.Duration(u.MinLead)))
		}
	}
	p.check("supervision.late_after", atLeast(s.LateAfter, time.Second))
	if s.WebhookURL == "" {
		return
	}
	u, err := url.Parse(s.WebhookURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.check("supervision.webhook_url", fmt.Errorf("%q: want an http or https URL", s.WebhookURL))
	}
	if len(s.WebhookSecret) < minWebhookSecret {
		p.check("supervision.webhook_secret", fmt.Errorf("want at least %d characters to sign the webhook's requests with", minWebhookSecret))
	}
}
