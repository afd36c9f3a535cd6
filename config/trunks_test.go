package config

import (
	"strings"
	"testing"
	"time"
)

func TestTrunks(t *testing.T) {
	c, err := Load(writeFile(t, `
trunks:
  - name: carrier-a
    host: 192.0.2.10
    username: "02512345"
    register: true
    numbers: ["02512345"]
    sources: [192.0.2.0/24]
    caller_id: "12345"
  - name: carrier-b
    host: sip.carrier-b.example
    transport: tls
    channels: 8
    codecs: [PCMA]
    probe: {interval: 10s, down_after: 5}
`), envMap(map[string]string{"HOTLINE_TRUNK_CARRIER_A_PASSWORD": "from-the-environment"}))
	if err != nil {
		t.Fatal(err)
	}
	a, b := c.Trunks[0], c.Trunks[1]
	if a.Password != "from-the-environment" || a.Port != 5060 || a.Transport != "udp" || a.Channels != DefaultTrunkChannels ||
		time.Duration(a.RegisterExpiry) != time.Hour || a.Endpoint != "carrier-a" || a.Address() != "192.0.2.10:5060" {
		t.Errorf("carrier-a %+v", a)
	}
	if b.Port != 5061 || b.Channels != 8 || time.Duration(b.Probe.Interval) != 10*time.Second || b.Probe.DownAfter != 5 ||
		b.Probe.UpAfter != DefaultProbeUpAfter || time.Duration(b.Probe.Timeout) != DefaultProbeTimeout {
		t.Errorf("carrier-b %+v", b)
	}
	if !Default().SIP.AllowUnknownSources {
		t.Error("the zero-config default refuses unknown sources: a softphone could not call a fresh install")
	}

	ok := func() Trunk { return Trunk{Name: "t", Host: "192.0.2.1"}.withDefaults() }
	for _, tc := range []struct {
		key string
		set func(*Trunk)
	}{
		{"trunks[0].name", func(t *Trunk) { t.Name = "a b" }},
		{"trunks[0].host", func(t *Trunk) { t.Host = "" }},
		{"trunks[0].port", func(t *Trunk) { t.Port = 70000 }},
		{"trunks[0].transport", func(t *Trunk) { t.Transport = "sctp" }},
		{"trunks[0].password", func(t *Trunk) { t.Username = "u" }},
		{"trunks[0].register", func(t *Trunk) { t.Register = true }},
		{"trunks[0].numbers", func(t *Trunk) { t.Numbers = []string{"12345"} }}, // sip.numbers has it
		{"trunks[0].sources", func(t *Trunk) { t.Sources = []string{"192.0.2.1/24"} }},
		{"trunks[0].caller_id", func(t *Trunk) { t.CallerID = "not a number" }},
		{"trunks[0].channels", func(t *Trunk) { t.Channels = -1 }},
		{"trunks[0].codecs", func(t *Trunk) { t.Codecs = []string{"G729"} }},
		{"trunks[0].probe.interval", func(t *Trunk) {
			t.Probe.Interval, t.Probe.Timeout = Duration(time.Millisecond), Duration(time.Millisecond)
		}},
		{"trunks[0].probe.down_after", func(t *Trunk) { t.Probe.DownAfter = -1 }},
	} {
		c := Default()
		tr := ok()
		tc.set(&tr)
		c.Trunks = []Trunk{tr}
		if ke := onlyProblem(t, c.Validate()); ke.Key != tc.key {
			t.Errorf("problem for %s; want %s", ke.Key, tc.key)
		}
	}
	c = Default()
	c.Trunks = []Trunk{ok(), ok()}
	if ke := onlyProblem(t, c.Validate()); ke.Key != "trunks[1].name" || !strings.Contains(ke.Error(), "twice") {
		t.Errorf("a name twice: %v", ke)
	}
}
