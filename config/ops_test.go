package config

import "testing"

func TestOpsSettings(t *testing.T) {
	c, err := Load(writeFile(t, "ops:\n  webhook_url: https://noc.example.net/hotline\n"), envMap(map[string]string{
		"HOTLINE_OPS_WEBHOOK_SECRET": "0123456789abcdef"}))
	if err != nil || c.Ops.WebhookURL != "https://noc.example.net/hotline" || c.Ops.WebhookSecret != "0123456789abcdef" {
		t.Errorf("ops %+v, %v", c.Ops, err)
	}
	if d := Default().Ops; d.WebhookURL != "" || d.WebhookSecret != "" {
		t.Errorf("defaults %+v", d)
	}
	for _, tc := range []struct {
		key string
		set func(*Config)
	}{
		{"ops.webhook_url", func(c *Config) { c.Ops.WebhookURL, c.Ops.WebhookSecret = "ftp://example.net/x", "0123456789abcdef" }},
		{"ops.webhook_url", func(c *Config) { c.Ops.WebhookURL, c.Ops.WebhookSecret = "https:///x", "0123456789abcdef" }},
		{"ops.webhook_secret", func(c *Config) { c.Ops.WebhookURL, c.Ops.WebhookSecret = "https://example.net/x", "short" }},
	} {
		c := Default()
		tc.set(&c)
		if ke := onlyProblem(t, c.Validate()); ke.Key != tc.key {
			t.Errorf("problem for %s; want %s", ke.Key, tc.key)
		}
	}
}
