package config

import (
	"slices"
	"testing"
)

func TestProbeSettings(t *testing.T) {
	c, err := Load(writeFile(t, "probe:\n  callers: [\"13800000000\"]\n"), envMap(map[string]string{
		"HOTLINE_PROBE_SECRET": "0123456789abcdef"}))
	if err != nil || !slices.Equal(c.Probe.Callers, []string{"13800000000"}) || c.Probe.Secret != "0123456789abcdef" {
		t.Errorf("probe %+v, %v", c.Probe, err)
	}
	if d := Default().Probe; len(d.Callers) != 0 || d.Secret != "" {
		t.Errorf("defaults %+v", d)
	}
	for _, tc := range []struct {
		key string
		set func(*Config)
	}{
		{"probe.secret", func(c *Config) { c.Probe.Secret = "short" }},
		{"probe.callers", func(c *Config) { c.Probe.Callers = []string{" "} }},
	} {
		c := Default()
		tc.set(&c)
		if ke := onlyProblem(t, c.Validate()); ke.Key != tc.key {
			t.Errorf("problem for %s; want %s", ke.Key, tc.key)
		}
	}
}
