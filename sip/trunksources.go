package sip

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"
)

// Trunk is a carrier's trunk as admission knows it: where its calls come
// from and the numbers it brings in.
type Trunk struct {
	// Name names the trunk in logs and in the records of its calls.
	Name string
	// Sources are the networks its INVITEs come from; empty: the
	// addresses Host resolves to (see Options.Resolver).
	Sources []netip.Prefix
	Host    string
	// Numbers are the numbers (DIDs) it brings in, answered besides
	// Options.Numbers.
	Numbers []string
}

// Resolver finds the addresses of a trunk's host; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Defaults of trunks' host resolution.
const (
	// DefaultTrunkResolveInterval is how often the hosts of trunks without
	// sources are looked up again: a carrier moves its addresses seldom,
	// and within the DNS records' lifetime.
	DefaultTrunkResolveInterval = 5 * time.Minute
	// trunkResolveTimeout bounds one host's look-up.
	trunkResolveTimeout = 5 * time.Second
)

// trunkSources are the networks each trunk's calls come from. A trunk
// without sources has those of its host's addresses, looked up at start
// and again every TrunkResolveInterval; a look-up that fails keeps the
// addresses of the last one that did not, so that a DNS outage does not
// shut a carrier out. It is safe for concurrent use: a look-up replaces
// the whole table.
type trunkSources struct {
	trunks   []Trunk
	resolver Resolver
	table    atomic.Pointer[[]trunkNetworks]
}

// trunkNetworks are one trunk's networks.
type trunkNetworks struct {
	name string
	nets []netip.Prefix
}

func newTrunkSources(trunks []Trunk, r Resolver) *trunkSources {
	if r == nil {
		r = net.DefaultResolver
	}
	t := &trunkSources{trunks: trunks, resolver: r}
	table := make([]trunkNetworks, len(trunks))
	for i, tr := range trunks {
		table[i] = trunkNetworks{name: tr.Name, nets: tr.Sources}
	}
	t.table.Store(&table)
	return t
}

// at names the trunk whose sources hold a, the first one listed.
func (t *trunkSources) at(a netip.Addr) (string, bool) {
	a = a.Unmap()
	for _, tr := range *t.table.Load() {
		for _, p := range tr.nets {
			if p.Contains(a) {
				return tr.name, true
			}
		}
	}
	return "", false
}

// resolving reports whether some trunk is known by its host's addresses.
func (t *trunkSources) resolving() bool {
	for _, tr := range t.trunks {
		if len(tr.Sources) == 0 {
			return true
		}
	}
	return false
}

// trunkResolved is what one look-up of a trunk's host found.
type trunkResolved struct {
	Trunk string
	Host  string
	Addrs []netip.Addr // sorted; nil when the look-up failed
	Err   error
	// Changed says the addresses are not those the trunk had.
	Changed bool
}

var errNoAddresses = errors.New("no addresses")

// resolve looks up the hosts of the trunks without sources and takes
// their addresses, each as a network of one; a trunk whose look-up fails
// (or finds nothing) keeps the addresses it had. It returns what each
// look-up found. One goroutine at a time calls it: New, then Run's.
func (t *trunkSources) resolve(ctx context.Context) []trunkResolved {
	old := *t.table.Load()
	table := make([]trunkNetworks, len(t.trunks))
	var found []trunkResolved
	for i, tr := range t.trunks {
		table[i] = old[i]
		if len(tr.Sources) > 0 {
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, trunkResolveTimeout)
		addrs, err := t.resolver.LookupNetIP(lctx, "ip", tr.Host)
		cancel()
		if err == nil && len(addrs) == 0 {
			err = errNoAddresses
		}
		r := trunkResolved{Trunk: tr.Name, Host: tr.Host, Err: err}
		if err == nil {
			for j, a := range addrs {
				addrs[j] = a.Unmap().WithZone("")
			}
			// DNS may list them in another order each time.
			slices.SortFunc(addrs, netip.Addr.Compare)
			r.Addrs = slices.Compact(addrs)
			nets := make([]netip.Prefix, len(r.Addrs))
			for j, a := range r.Addrs {
				nets[j] = netip.PrefixFrom(a, a.BitLen())
			}
			r.Changed = !slices.Equal(nets, old[i].nets)
			table[i].nets = nets
		}
		found = append(found, r)
	}
	t.table.Store(&table)
	return found
}

// knownSource says whether an INVITE from src may start a call with
// Options.RefuseUnknownSources: src is a trunk's (named), or an
// agent's phone is registered from it.
func (s *Server) knownSource(src netip.Addr) (trunk string, known bool) {
	if name, ok := s.trunks.at(src); ok {
		return name, true
	}
	return "", s.adm.agentAt(src)
}

// resolveTrunks looks up the hosts of the trunks without sources and logs
// what it found: everything at start, changes and failures after.
func (s *Server) resolveTrunks(ctx context.Context, start bool) {
	for _, r := range s.trunks.resolve(ctx) {
		addrs := make([]string, len(r.Addrs))
		for i, a := range r.Addrs {
			addrs[i] = a.String()
		}
		switch {
		case r.Err != nil:
			s.log.Warn().Err(r.Err).Str("trunk", r.Trunk).Str("host", r.Host).
				Msg("sip: trunk's host not resolved: its calls are recognised by the addresses it had, if any (trunks[].sources names them for good)")
		case start || r.Changed:
			s.log.Info().Str("trunk", r.Trunk).Str("host", r.Host).Strs("sources", addrs).
				Msg("sip: trunk's calls are recognised by its host's addresses")
		}
	}
}

// keepResolvingTrunks looks up the trunks' hosts every
// TrunkResolveInterval until ctx is done.
func (s *Server) keepResolvingTrunks(ctx context.Context) {
	tick := time.NewTicker(s.opts.TrunkResolveInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.resolveTrunks(ctx, false)
		}
	}
}
