package ban

import (
	"sync"
	"time"
)

// memory remembers the bans this process has seen, each for a short while
// and never past its end, so that a banned source's flood is refused
// without a Redis round trip per request, while a ban lifted on another
// node stops being enforced here soon after. It holds at most max
// subjects: the sources of a flood are the attacker's to choose. Its
// methods are safe for concurrent use.
type memory struct {
	keep time.Duration
	max  int

	mu   sync.Mutex
	bans map[string]remembered
}

type remembered struct {
	until  time.Time // the ban's end
	forget time.Time // when to ask Redis again: until, or sooner
}

func newMemory(keep time.Duration, max int) *memory {
	return &memory{keep: keep, max: max, bans: map[string]remembered{}}
}

// get returns the end of subject's ban, if one is remembered at now.
func (m *memory) get(subject string, now time.Time) (time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.bans[subject]
	if !ok {
		return time.Time{}, false
	}
	if !now.Before(r.forget) {
		delete(m.bans, subject)
		return time.Time{}, false
	}
	return r.until, true
}

// put remembers subject's ban until its end or for keep, whichever is
// sooner. When full it first forgets what is due, then, if still full,
// any one ban: the one forgotten is asked of Redis again, nothing worse.
func (m *memory) put(subject string, until, now time.Time) {
	forget := now.Add(m.keep)
	if until.Before(forget) {
		forget = until
	}
	if !now.Before(forget) {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.bans[subject]; !ok && len(m.bans) >= m.max {
		for s, r := range m.bans {
			if !now.Before(r.forget) {
				delete(m.bans, s)
			}
		}
		for s := range m.bans {
			if len(m.bans) < m.max {
				break
			}
			delete(m.bans, s)
		}
	}
	m.bans[subject] = remembered{until: until, forget: forget}
}

// drop forgets subject's ban, lifted here.
func (m *memory) drop(subject string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.bans, subject)
}

// size is how many bans are remembered.
func (m *memory) size() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.bans)
}
