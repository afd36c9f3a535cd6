package sip

import (
	"context"
	"net/netip"
	"sync"
	"time"
)

// agentSources are the addresses agents' phones are registered from, with
// when the last binding from each lapses: admission gives them the agents'
// rate. Only an authenticated REGISTER adds one, so they are as many as the
// agents' bindings.
type agentSources struct {
	mu    sync.Mutex
	until map[netip.Addr]time.Time
}

func (s *agentSources) note(a netip.Addr, until time.Time) {
	a = a.Unmap()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.until == nil {
		s.until = map[netip.Addr]time.Time{}
	}
	if until.After(s.until[a]) {
		s.until[a] = until
	}
}

func (s *agentSources) has(a netip.Addr, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.until[a.Unmap()].After(now)
}

// replace sets the sources to those of bindings.
func (s *agentSources) replace(bindings []Binding) {
	m := make(map[netip.Addr]time.Time, len(bindings))
	for _, b := range bindings {
		if a := b.Source.Addr().Unmap(); a.IsValid() && b.Expires.After(m[a]) {
			m[a] = b.Expires
		}
	}
	s.mu.Lock()
	s.until = m
	s.mu.Unlock()
}

// AgentAt reports whether an agent's phone is registered from a, on this
// node or, as of the last sweep, on any.
func (r *Registrar) AgentAt(a netip.Addr) bool {
	return r.sources.has(a, r.opts.Now())
}

// refreshSources reads the sources of every live binding, registered on
// any node.
func (r *Registrar) refreshSources(ctx context.Context) error {
	bindings, err := r.Bindings(ctx)
	if err != nil {
		return err
	}
	r.sources.replace(bindings)
	return nil
}
