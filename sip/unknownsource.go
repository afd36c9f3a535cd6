package sip

import (
	"container/list"
	"net/netip"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// unknownSourceWarning says why a call is refused 403 (RFC 3261 §20.43:
// warn-code 399, miscellaneous).
var unknownSourceWarning = sip.NewHeader("Warning", `399 hotline "the source address is no known trunk's and no registered phone's"`)

// unknownSourceLogged is the message of a refusal logged.
const unknownSourceLogged = "sip: call refused: its source is no trunk's and no registered phone's (sip.allow_unknown_sources is off)"

// refuseUnknownSource answers an INVITE from a source that is no trunk's
// and no agent's phone's 403 Forbidden, counts it, and logs it once per
// source per minute at most.
func (s *Server) refuseUnknownSource(req *sip.Request, tx sip.ServerTransaction, src netip.Addr) {
	s.refused.unknownSource.Add(1)
	if ok, unlogged := s.unknownLog.allow(sourceKey(src), time.Now()); ok {
		s.log.Warn().Str("source", req.Source()).Str("dialled", number(req.Recipient)).
			Uint64("unlogged_since_last", unlogged).
			Msg(unknownSourceLogged)
	}
	respond(tx, req, sip.StatusForbidden, "Forbidden", unknownSourceWarning)
}

// Bounds of sourceLog as the server uses it.
const (
	unknownLogPeriod  = time.Minute
	unknownLogSources = 256
)

// sourceLog lets something be logged once per source per period, for at
// most sources sources within a period: what an unauthenticated peer sends
// must not grow it. A source new when every place holds one logged
// within the period is not logged; the next line logged says how many
// were not. It is safe for concurrent use.
type sourceLog struct {
	period  time.Duration
	sources int

	mu       sync.Mutex
	bySource map[netip.Prefix]*list.Element // of sourceLogged
	order    list.List                      // oldest first
	unlogged uint64
}

type sourceLogged struct {
	source netip.Prefix
	at     time.Time
}

func newSourceLog(period time.Duration, sources int) *sourceLog {
	return &sourceLog{period: period, sources: sources, bySource: map[netip.Prefix]*list.Element{}}
}

// allow reports whether source may be logged at now and, when it may, how
// many times others were not since the last that was.
func (l *sourceLog) allow(source netip.Prefix, now time.Time) (bool, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// Sources are added in the order they are logged: the oldest first.
	for e := l.order.Front(); e != nil; e = l.order.Front() {
		if now.Sub(e.Value.(sourceLogged).at) < l.period {
			break
		}
		delete(l.bySource, e.Value.(sourceLogged).source)
		l.order.Remove(e)
	}
	if _, ok := l.bySource[source]; ok || l.order.Len() >= l.sources {
		l.unlogged++
		return false, 0
	}
	l.bySource[source] = l.order.PushBack(sourceLogged{source: source, at: now})
	unlogged := l.unlogged
	l.unlogged = 0
	return true, unlogged
}
