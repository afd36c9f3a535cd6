package config

import (
	"testing"
	"time"
)

func TestEvaluationSettings(t *testing.T) {
	c, err := Load(writeFile(t, "evaluation:\n  complaint_limit_per_10000: 5\n  retention: 2400h\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Evaluation.ComplaintLimitPer10000 != 5 || time.Duration(c.Evaluation.Retention) != 100*24*time.Hour {
		t.Errorf("evaluation %+v", c.Evaluation)
	}
	c, err = Load(writeFile(t, "evaluation:\n  webhook_url: https://alerts.example.net/hotline\n"), envMap(map[string]string{
		"HOTLINE_EVALUATION_COMPLAINT_LIMIT_PER_10000": "2", "HOTLINE_EVALUATION_WEBHOOK_SECRET": "0123456789abcdef"}))
	if err != nil || c.Evaluation.ComplaintLimitPer10000 != 2 || c.Evaluation.WebhookSecret != "0123456789abcdef" {
		t.Errorf("from the environment: %+v, %v", c.Evaluation, err)
	}
	if d := Default().Evaluation; time.Duration(d.ReviewSLA) != 24*time.Hour || d.WebhookURL != "" {
		t.Errorf("defaults %+v", d)
	}
	for _, tc := range []struct {
		key string
		set func(*Config)
	}{
		{"evaluation.complaint_limit_per_10000", func(c *Config) { c.Evaluation.ComplaintLimitPer10000 = 0 }},
		{"evaluation.complaint_limit_per_10000", func(c *Config) { c.Evaluation.ComplaintLimitPer10000 = 10001 }},
		{"evaluation.retention", func(c *Config) { c.Evaluation.Retention = Duration(61 * 24 * time.Hour) }},
		{"evaluation.retention", func(c *Config) { c.Evaluation.Retention = Duration(11 * 365 * 24 * time.Hour) }},
		{"evaluation.review_sla", func(c *Config) { c.Evaluation.ReviewSLA = 0 }},
		{"evaluation.check_interval", func(c *Config) { c.Evaluation.CheckInterval = Duration(time.Millisecond) }},
		{"evaluation.webhook_url", func(c *Config) {
			c.Evaluation.WebhookURL, c.Evaluation.WebhookSecret = "ftp://example.net/x", "0123456789abcdef"
		}},
		{"evaluation.webhook_secret", func(c *Config) {
			c.Evaluation.WebhookURL, c.Evaluation.WebhookSecret = "https://example.net/x", "short"
		}},
	} {
		c := Default()
		tc.set(&c)
		if ke := onlyProblem(t, c.Validate()); ke.Key != tc.key {
			t.Errorf("problem for %s; want %s", ke.Key, tc.key)
		}
	}
}
