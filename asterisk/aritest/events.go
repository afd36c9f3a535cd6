package aritest

import (
	"bytes"
	"cmp"
	"slices"
	"strings"
	"time"
)

// field is one key of an event, kept in order: Asterisk writes each event
// type's keys in a fixed order (ChannelVarset starts with variable and
// value, before type), and the double writes them the same way.
type field struct {
	key string
	val any
}

// event is one Stasis message before it is addressed to an application.
// Values are snapshots taken when the event is built.
type event struct {
	typ  string
	at   time.Time
	pre  []field // keys written before "type"
	body []field // keys written after "timestamp"

	chans  []*channel // the channels it concerns, for subscriptions
	bridge *bridge    // the bridge it concerns
	only   string     // StasisStart/StasisEnd go to one application only
}

// encode writes e for one application: asterisk_id and application close
// every event except ApplicationReplaced, which has them the other way
// round.
func (e *event) encode(entityID, app string) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	put := func(k string, v any) {
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		b.Write(marshal(k))
		b.WriteByte(':')
		b.Write(marshal(v))
	}
	for _, f := range e.pre {
		put(f.key, f.val)
	}
	put("type", e.typ)
	put("timestamp", stamp(e.at))
	for _, f := range e.body {
		put(f.key, f.val)
	}
	if e.typ == "ApplicationReplaced" {
		put("application", app)
		put("asterisk_id", entityID)
	} else {
		put("asterisk_id", entityID)
		put("application", app)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// app is a Stasis application: registered while a socket holds it, and
// kept while it is subscribed to a channel or bridge even without one
// (GET /applications lists it; its events are lost).
type app struct {
	name     string
	socket   *socket // nil while no socket holds the application
	all      bool    // subscribeAll: every channel and bridge
	channels map[*channel]bool
	bridges  map[*bridge]bool

	// allowed and disallowed are the event filter of applications.json,
	// kept as the objects the client gave; nil means not set.
	allowed    []map[string]any
	disallowed []map[string]any
}

func (a *app) subscribedTo(e *event) bool {
	if a.all {
		return true
	}
	for _, ch := range e.chans {
		if a.channels[ch] {
			return true
		}
	}
	return e.bridge != nil && a.bridges[e.bridge]
}

// allows applies the event filter: disallowed types never pass, and an
// empty allowed list lets every other type pass.
func (a *app) allows(typ string) bool {
	if filterHas(a.disallowed, typ) {
		return false
	}
	return len(a.allowed) == 0 || filterHas(a.allowed, typ)
}

func filterHas(list []map[string]any, typ string) bool {
	for _, f := range list {
		if t, _ := f["type"].(string); t == typ {
			return true
		}
	}
	return false
}

func (a *app) json() applicationJSON {
	chans := make([]*channel, 0, len(a.channels))
	for ch := range a.channels {
		chans = append(chans, ch)
	}
	slices.SortFunc(chans, func(x, y *channel) int { return cmp.Compare(x.seq, y.seq) })
	bridges := make([]*bridge, 0, len(a.bridges))
	for b := range a.bridges {
		bridges = append(bridges, b)
	}
	slices.SortFunc(bridges, func(x, y *bridge) int { return cmp.Compare(x.seq, y.seq) })
	j := applicationJSON{
		Name:             a.name,
		ChannelIDs:       []string{},
		BridgeIDs:        []string{},
		EndpointIDs:      []string{},
		DeviceNames:      []string{},
		EventsAllowed:    a.allowed,
		EventsDisallowed: a.disallowed,
	}
	for _, ch := range chans {
		j.ChannelIDs = append(j.ChannelIDs, ch.id)
	}
	for _, b := range bridges {
		j.BridgeIDs = append(j.BridgeIDs, b.id)
	}
	if j.EventsAllowed == nil {
		j.EventsAllowed = []map[string]any{}
	}
	if j.EventsDisallowed == nil {
		j.EventsDisallowed = []map[string]any{}
	}
	return j
}

// publishLocked addresses e to every application that should see it and
// queues it on their sockets, so events leave in the order the state
// changed. An application without a socket misses it, as Asterisk's
// "Inactive Stasis app missed message" says. s.mu is held.
func (s *Server) publishLocked(e *event) {
	e.at = time.Now()
	for _, a := range s.appsLocked() {
		if e.only != "" {
			if a.name != e.only {
				continue
			}
		} else if !a.subscribedTo(e) {
			continue
		}
		if a.socket == nil {
			s.logf("inactive Stasis app %q missed %s", a.name, e.typ)
			continue
		}
		if !a.allows(e.typ) {
			continue
		}
		a.socket.enqueue(e.encode(s.entityID, a.name))
	}
}

// appsLocked lists the applications in name order.
func (s *Server) appsLocked() []*app {
	list := make([]*app, 0, len(s.apps))
	for _, a := range s.apps {
		list = append(list, a)
	}
	slices.SortFunc(list, func(x, y *app) int { return strings.Compare(x.name, y.name) })
	return list
}

// subscribeLocked subscribes the named application to ch, if it exists:
// Asterisk's stasis_app_subscribe_channel quietly fails for an unknown
// application.
func (s *Server) subscribeLocked(name string, ch *channel) {
	if a := s.apps[name]; a != nil {
		a.channels[ch] = true
	}
}

// unsubscribeLocked drops ch from every application, and the applications
// that are left with nothing.
func (s *Server) unsubscribeLocked(ch *channel) {
	for _, a := range s.appsLocked() {
		delete(a.channels, ch)
		s.reapLocked(a)
	}
}

// reapLocked forgets an application that has no socket and no
// subscriptions: GET /applications/{app} then gives 404.
func (s *Server) reapLocked(a *app) {
	if a.socket == nil && len(a.channels) == 0 && len(a.bridges) == 0 {
		delete(s.apps, a.name)
		s.notifyLocked()
	}
}

// Constructors for the event shapes the double sends. Each takes the
// snapshot of its channel now.

func (s *Server) emitChannelLocked(typ string, ch *channel, pre []field, body ...field) {
	body = append(body, field{"channel", ch.json()})
	s.publishLocked(&event{typ: typ, pre: pre, body: body, chans: []*channel{ch}})
}

func (s *Server) emitStateLocked(ch *channel) {
	s.emitChannelLocked("ChannelStateChange", ch, nil)
}

// setVarLocked sets a channel variable and publishes ChannelVarset, as
// Asterisk does for every variable it sets (pbx_builtin_setvar).
func (s *Server) setVarLocked(ch *channel, name, value string) {
	ch.vars[name] = value
	s.emitChannelLocked("ChannelVarset", ch, []field{{"variable", name}, {"value", value}})
}

func (s *Server) emitStasisLocked(typ string, ch *channel, args []string) {
	var body []field
	if typ == "StasisStart" {
		body = append(body, field{"args", args})
	}
	body = append(body, field{"channel", ch.json()})
	s.publishLocked(&event{typ: typ, body: body, chans: []*channel{ch}, only: ch.app})
}

func (s *Server) emitDialLocked(ch *channel, status string) {
	s.publishLocked(&event{
		typ: "Dial",
		body: []field{
			{"dialstatus", status}, {"forward", ""}, {"dialstring", ch.dialstring}, {"peer", ch.json()},
		},
		chans: []*channel{ch},
	})
}

func (s *Server) emitDestroyedLocked(ch *channel, cause, techCause int) {
	body := []field{{"cause", cause}, {"cause_txt", causeString(cause)}}
	if techCause != 0 {
		body = append(body, field{"tech_cause", techCause})
	}
	s.emitChannelLocked("ChannelDestroyed", ch, nil, body...)
}

func (s *Server) emitBridgeChannelLocked(typ string, b *bridge, ch *channel) {
	s.publishLocked(&event{
		typ:    typ,
		body:   []field{{"bridge", b.json()}, {"channel", ch.json()}},
		chans:  []*channel{ch},
		bridge: b,
	})
}

func (s *Server) emitPlaybackLocked(typ string, pb *playback) {
	s.publishLocked(&event{typ: typ, body: []field{{"playback", pb.json()}}, chans: []*channel{pb.ch}})
}
