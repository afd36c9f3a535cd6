package config

import (
	"testing"
	"time"
)

func TestSIPTCP(t *testing.T) {
	c, err := Load(writeFile(t, "sip:\n  tcp:\n    idle_timeout: 5m\n    first_request_timeout: 2s\n"),
		envMap(map[string]string{"HOTLINE_SIP_TCP_MAX_PER_SOURCE": "100"}))
	if err != nil {
		t.Fatal(err)
	}
	want := SIPTCP{IdleTimeout: Duration(5 * time.Minute), FirstRequestTimeout: Duration(2 * time.Second), MaxPerSource: 100}
	if c.SIP.TCP != want {
		t.Errorf("sip.tcp %+v, want %+v", c.SIP.TCP, want)
	}
	for _, tc := range []struct {
		key    string
		mutate func(*SIPTCP)
	}{
		{"sip.tcp.idle_timeout", func(t *SIPTCP) { t.IdleTimeout = Duration(25 * time.Hour) }},
		{"sip.tcp.first_request_timeout", func(t *SIPTCP) { t.FirstRequestTimeout = Duration(time.Millisecond) }},
		{"sip.tcp.first_request_timeout", func(t *SIPTCP) { t.FirstRequestTimeout = t.IdleTimeout + 1 }},
		{"sip.tcp.max_per_source", func(t *SIPTCP) { t.MaxPerSource = 0 }},
	} {
		c := Default()
		tc.mutate(&c.SIP.TCP)
		if ke := onlyProblem(t, c.Validate()); ke.Key != tc.key {
			t.Errorf("problem for %s, want %s", ke.Key, tc.key)
		}
	}
}
