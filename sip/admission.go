package sip

import (
	"container/list"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Rate is how many new calls a source may start: PerMinute on average,
// Burst at once (a token bucket). A zero PerMinute sets no limit.
type Rate struct {
	PerMinute int
	Burst     int
}

// Limits bound the calls sources may start. A source is an address, an
// IPv6 one by its /64 (sourceKey). The zero Limits limit nothing.
type Limits struct {
	// Calls is the rate of a source that is neither trusted nor an
	// agent's: a citizen's softphone, or anyone at all.
	Calls Rate
	// MaxCalls caps the calls in progress from such sources together, so
	// that a flood from many addresses leaves room for trunks and agents;
	// 0: no cap but Options.MaxCalls.
	MaxCalls int
	// Trusted are the networks of the trunks and proxies in front, each of
	// whose addresses has the rate TrustedCalls, as have the sources of
	// Options.Trunks.
	Trusted      []netip.Prefix
	TrustedCalls Rate
	// AgentCalls is the rate of an address an agent's phone is registered
	// from (Registrar).
	AgentCalls Rate
	// Sources bounds how many sources of each kind are counted at once
	// (default DefaultLimitSources). A source whose bucket is full again
	// is forgotten first, which loses nothing; an untrusted source new
	// when every place holds one still counting is refused, so a flood
	// from many addresses cannot grow the table.
	Sources int
}

// DefaultLimitSources is Limits.Sources by default: some megabytes.
const DefaultLimitSources = 65536

// sourceClass is what a source is to admission.
type sourceClass uint8

const (
	untrusted sourceClass = iota
	agentSource
	trustedSource
	sourceClasses
)

func (c sourceClass) String() string {
	return [...]string{"untrusted", "agent", "trusted"}[c]
}

// admission counts the new calls of each source in token buckets. It is
// safe for concurrent use.
type admission struct {
	limits Limits
	trunks *trunkSources // nil: none

	mu      sync.Mutex
	isAgent func(netip.Addr) bool // nil: no agents
	now     func() time.Time
	tables  [sourceClasses]buckets
}

// buckets are one class's token buckets by source, least recently used
// first.
type buckets struct {
	rate  Rate
	byKey map[netip.Prefix]*list.Element // of *bucket
	lru   list.List
}

type bucket struct {
	key netip.Prefix
	lim *rate.Limiter
}

func newAdmission(l Limits, isAgent func(netip.Addr) bool) *admission {
	if l.Sources <= 0 {
		l.Sources = DefaultLimitSources
	}
	a := &admission{limits: l, isAgent: isAgent, now: time.Now}
	for c, r := range [sourceClasses]Rate{untrusted: l.Calls, agentSource: l.AgentCalls, trustedSource: l.TrustedCalls} {
		a.tables[c] = buckets{rate: r, byKey: map[netip.Prefix]*list.Element{}}
	}
	return a
}

// classify says what src is: trusted (a trunk's), an agent's, or
// neither.
func (a *admission) classify(src netip.Addr) sourceClass {
	src = src.Unmap()
	for _, p := range a.limits.Trusted {
		if p.Contains(src) {
			return trustedSource
		}
	}
	if a.trunks != nil {
		if _, ok := a.trunks.at(src); ok {
			return trustedSource
		}
	}
	if a.agentAt(src) {
		return agentSource
	}
	return untrusted
}

// agentAt reports whether an agent's phone is registered from src.
func (a *admission) agentAt(src netip.Addr) bool {
	a.mu.Lock()
	isAgent := a.isAgent
	a.mu.Unlock()
	return isAgent != nil && isAgent(src.Unmap())
}

// setClock and setAgents replace the clock and the agents' addresses, for
// tests.
func (a *admission) setClock(now func() time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.now = now
}

func (a *admission) setAgents(isAgent func(netip.Addr) bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.isAgent = isAgent
}

// allow takes a token for a new call from src, and says what src is.
func (a *admission) allow(src netip.Addr) (sourceClass, bool) {
	class := a.classify(src)
	a.mu.Lock()
	defer a.mu.Unlock()
	t := &a.tables[class]
	if t.rate.PerMinute <= 0 {
		return class, true
	}
	now := a.now()
	key := sourceKey(src)
	if e, ok := t.byKey[key]; ok {
		t.lru.MoveToBack(e)
		return class, e.Value.(*bucket).lim.AllowN(now, 1)
	}
	// Forget sources whose buckets are full again: a new bucket for them
	// would be the same. A few at a time keeps each call cheap.
	for range 8 {
		front := t.lru.Front()
		if front == nil || !full(front.Value.(*bucket).lim, t.rate, now) {
			break
		}
		t.remove(front)
	}
	if t.lru.Len() >= a.limits.Sources {
		if class == untrusted {
			return class, false
		}
		// Trunks and agents are few, and known: make room.
		t.remove(t.lru.Front())
	}
	b := &bucket{key: key, lim: rate.NewLimiter(rate.Limit(float64(t.rate.PerMinute)/60), max(t.rate.Burst, 1))}
	t.byKey[key] = t.lru.PushBack(b)
	return class, b.lim.AllowN(now, 1)
}

func (t *buckets) remove(e *list.Element) {
	delete(t.byKey, e.Value.(*bucket).key)
	t.lru.Remove(e)
}

// full reports whether a bucket has all its tokens back.
func full(lim *rate.Limiter, r Rate, now time.Time) bool {
	return lim.TokensAt(now) >= float64(max(r.Burst, 1))
}

// counted is how many sources of class are counted, for tests.
func (a *admission) counted(class sourceClass) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.tables[class].lru.Len()
}
