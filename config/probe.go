package config

import (
	"fmt"
	"strings"
)

// ProbeSettings recognise the synthetic probe's calls (hotline probe):
// they run the whole intake and leave a synthetic appeal, but are never
// queued for an agent, never asked for a rating and are left out of
// every figure (README, "The synthetic probe").
type ProbeSettings struct {
	// Callers are caller numbers whose calls are probes: for a probe
	// that comes in through a trunk, whose carrier sets the number.
	Callers []string `yaml:"callers"`
	// Secret keys the HMAC-SHA256 signature of the X-Hotline-Probe
	// header; at least 16 characters, empty to recognise no header.
	// Best set by HOTLINE_PROBE_SECRET rather than in the file.
	Secret string `yaml:"secret"`
}

// minProbeSecret is the shortest probe secret: as the webhooks'.
const minProbeSecret = minWebhookSecret

func defaultProbe() ProbeSettings { return ProbeSettings{Callers: []string{}} }

func (s ProbeSettings) validate(p *problems) {
	if s.Secret != "" && len(s.Secret) < minProbeSecret {
		p.check("probe.secret", fmt.Errorf("want at least %d characters to sign probe calls with", minProbeSecret))
	}
	for _, c := range s.Callers {
		if strings.TrimSpace(c) == "" {
			p.check("probe.callers", fmt.Errorf("an empty caller number would make anonymous calls probes"))
			return
		}
	}
}
