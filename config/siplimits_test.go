package config

import (
	"net/netip"
	"reflect"
	"testing"
)

func TestSIPLimits(t *testing.T) {
	c, err := Load(writeFile(t, "sip:\n  limits:\n    calls_per_minute: 2\n    trusted: [10.0.0.0/8, 192.0.2.7]\n"),
		envMap(map[string]string{"HOTLINE_SIP_LIMITS_MAX_CALLS": "100"}))
	if err != nil {
		t.Fatal(err)
	}
	l := c.SIP.Limits
	if l.CallsPerMinute != 2 || l.MaxCalls != 100 || l.Burst != Default().SIP.Limits.Burst {
		t.Errorf("sip.limits %+v", l)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32")}
	if got := l.TrustedNetworks(); !reflect.DeepEqual(got, want) {
		t.Errorf("trusted %v, want %v", got, want)
	}
	for _, tc := range []struct {
		key    string
		mutate func(*Config)
	}{
		{"sip.limits.calls_per_minute", func(c *Config) { c.SIP.Limits.CallsPerMinute = 0 }},
		{"sip.limits.burst", func(c *Config) { c.SIP.Limits.Burst = -1 }},
		{"sip.limits.trusted_burst", func(c *Config) { c.SIP.Limits.TrustedBurst = 0 }},
		{"sip.limits.agent_calls_per_minute", func(c *Config) { c.SIP.Limits.AgentCallsPerMinute = 0 }},
		{"sip.limits.max_calls", func(c *Config) { c.SIP.Limits.MaxCalls = 0 }},
		{"sip.limits.trusted", func(c *Config) { c.SIP.Limits.Trusted = []string{"10.0.0.1/8"} }},
		{"sip.limits.sources", func(c *Config) { c.SIP.Limits.Sources = 10 }},
	} {
		c := Default()
		tc.mutate(&c)
		if ke := onlyProblem(t, c.Validate()); ke.Key != tc.key {
			t.Errorf("problem for %s, want %s", ke.Key, tc.key)
		}
	}
}
