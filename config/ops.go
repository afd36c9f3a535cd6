package config

import (
	"fmt"
	"net/url"
)

// OpsSettings are about the alerts for operations: the events of the
// carriers' trunks (up, down, maintenance), which the complaint line's
// supervisors have no use for, and the other way round.
type OpsSettings struct {
	// WebhookURL, when set, receives each operations event (a trunk
	// changing state) as a signed JSON POST, signed as the complaint
	// line's webhook is (see README, "For ops: trunks and monitoring").
	WebhookURL string `yaml:"webhook_url"`
	// WebhookSecret keys the HMAC-SHA256 signature of the webhook's
	// requests; at least 16 characters. Best set by
	// HOTLINE_OPS_WEBHOOK_SECRET rather than in the file.
	WebhookSecret string `yaml:"webhook_secret"`
}

func (o OpsSettings) validate(p *problems) {
	if o.WebhookURL == "" {
		return
	}
	u, err := url.Parse(o.WebhookURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.check("ops.webhook_url", fmt.Errorf("%q: want an http or https URL", o.WebhookURL))
	}
	if len(o.WebhookSecret) < minWebhookSecret {
		p.check("ops.webhook_secret", fmt.Errorf("want at least %d characters to sign the webhook's requests with", minWebhookSecret))
	}
}
