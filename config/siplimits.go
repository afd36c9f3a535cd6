package config

import (
	"fmt"
	"net/netip"
)

// SIPLimits bound the calls each source address of the embedded SIP
// backend may start: a token bucket per address (an IPv6 one by its /64)
// of new calls per minute and at once, by kind of source. An INVITE over
// its source's limit is dropped unanswered, or answered 503 when it comes
// from a trusted network.
type SIPLimits struct {
	// CallsPerMinute and Burst are the limit of a source on none of the
	// lists below: a citizen's own SIP phone, or anyone at all.
	CallsPerMinute int `yaml:"calls_per_minute"`
	Burst          int `yaml:"burst"`
	// MaxCalls caps the calls at once from all such sources together, so
	// that a flood from many addresses leaves room for the trunks' calls;
	// sip.max_calls caps it in turn.
	MaxCalls int `yaml:"max_calls"`
	// Trusted are the networks (CIDRs, or bare addresses) of the trunks
	// and proxies in front; each of their addresses has the limit
	// TrustedCallsPerMinute, TrustedBurst.
	Trusted               []string `yaml:"trusted"`
	TrustedCallsPerMinute int      `yaml:"trusted_calls_per_minute"`
	TrustedBurst          int      `yaml:"trusted_burst"`
	// AgentCallsPerMinute and AgentBurst are the limit of an address an
	// agent's phone is registered from.
	AgentCallsPerMinute int `yaml:"agent_calls_per_minute"`
	AgentBurst          int `yaml:"agent_burst"`
	// Sources is how many sources of each kind are counted at once.
	Sources int `yaml:"sources"`
}

func defaultSIPLimits() SIPLimits {
	return SIPLimits{
		CallsPerMinute: 6, Burst: 3,
		MaxCalls:              500,
		Trusted:               []string{"127.0.0.0/8", "::1"},
		TrustedCallsPerMinute: 30000, TrustedBurst: 1000,
		AgentCallsPerMinute: 60, AgentBurst: 10,
		Sources: 65536,
	}
}

// TrustedNetworks is sip.limits.trusted as networks, a bare address as the
// network of that address alone.
func (l SIPLimits) TrustedNetworks() []netip.Prefix { return networks(l.Trusted) }

func (l SIPLimits) validate(p *problems) {
	for _, v := range []struct {
		key string
		n   int
	}{
		{"sip.limits.calls_per_minute", l.CallsPerMinute},
		{"sip.limits.burst", l.Burst},
		{"sip.limits.trusted_calls_per_minute", l.TrustedCallsPerMinute},
		{"sip.limits.trusted_burst", l.TrustedBurst},
		{"sip.limits.agent_calls_per_minute", l.AgentCallsPerMinute},
		{"sip.limits.agent_burst", l.AgentBurst},
	} {
		if v.n < 1 {
			p.check(v.key, fmt.Errorf("%d: want at least 1", v.n))
		}
	}
	if l.MaxCalls < 1 {
		p.check("sip.limits.max_calls", fmt.Errorf("%d: want at least 1", l.MaxCalls))
	}
	for _, s := range l.Trusted {
		if _, err := parseNetwork(s); err != nil {
			p.check("sip.limits.trusted", err)
		}
	}
	if l.Sources < 100 {
		p.check("sip.limits.sources", fmt.Errorf("%d: want at least 100", l.Sources))
	}
}
