package config

import (
	"fmt"
	"time"
)

// SIPTCP bounds the TCP connections peers hold open to the embedded SIP
// backend: without bounds, connections that say nothing stay open for
// ever, and one address may open as many as the server has file
// descriptors.
type SIPTCP struct {
	// IdleTimeout closes a connection silent this long after its first
	// valid request. RFC 5626 section 4.4.1 has phones send a keep-alive
	// at most 120 s apart on a connection they keep, so the default is
	// above that.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// FirstRequestTimeout closes a connection that sends no valid request
	// this long after it opened, whatever else it sends.
	FirstRequestTimeout Duration `yaml:"first_request_timeout"`
	// MaxPerSource is how many connections one source address (an IPv6
	// one by its /64) may hold open at once; the next is closed at once.
	MaxPerSource int `yaml:"max_per_source"`
}

func defaultSIPTCP() SIPTCP {
	return SIPTCP{
		IdleTimeout:         Duration(3 * time.Minute),
		FirstRequestTimeout: Duration(10 * time.Second),
		MaxPerSource:        32,
	}
}

func (t SIPTCP) validate(p *problems) {
	p.check("sip.tcp.idle_timeout", within(t.IdleTimeout, time.Second, 24*time.Hour))
	p.check("sip.tcp.first_request_timeout", within(t.FirstRequestTimeout, time.Second, time.Hour))
	if t.IdleTimeout > 0 && t.FirstRequestTimeout > t.IdleTimeout {
		p.check("sip.tcp.first_request_timeout", fmt.Errorf("%s: above sip.tcp.idle_timeout %s", t.FirstRequestTimeout, t.IdleTimeout))
	}
	if t.MaxPerSource < 1 {
		p.check("sip.tcp.max_per_source", fmt.Errorf("%d: want at least 1", t.MaxPerSource))
	}
}
