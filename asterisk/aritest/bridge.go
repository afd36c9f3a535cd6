package aritest

import (
	"cmp"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// bridge is a Stasis bridge created over ARI. Asterisk never dissolves
// one by itself: it lives until DELETE, with or without members.
type bridge struct {
	seq        uint64
	id         string
	name       string
	holding    bool
	dtmfEvents bool
	proxyMedia bool
	videoMode  string
	created    time.Time
	members    []*channel
}

// technology is what Asterisk's smart bridging picks: simple_bridge for up
// to two channels, softmix beyond, holding_bridge for holding bridges.
func (b *bridge) technology() string {
	switch {
	case b.holding:
		return "holding_bridge"
	case len(b.members) > 2:
		return "softmix"
	}
	return "simple_bridge"
}

func (b *bridge) json() bridgeJSON {
	typ := "mixing"
	if b.holding {
		typ = "holding"
	}
	j := bridgeJSON{
		ID:           b.id,
		Technology:   b.technology(),
		BridgeType:   typ,
		BridgeClass:  "stasis",
		Creator:      "Stasis",
		Name:         b.name,
		Channels:     []string{},
		Creationtime: stamp(b.created),
		VideoMode:    b.videoMode,
	}
	for _, m := range b.members {
		j.Channels = append(j.Channels, m.id)
	}
	return j
}

// native reports whether Asterisk would bridge the media natively (RTP
// flows between the phones): a mixing bridge without dtmf_events or
// proxy_media holding two PJSIP channels. DTMF then bypasses Asterisk's
// core, so no ChannelDtmfReceived is raised; dtmf_events exists to prevent
// exactly that.
func (b *bridge) native() bool {
	if b.holding || b.dtmfEvents || b.proxyMedia || len(b.members) != 2 {
		return false
	}
	return b.members[0].rtp && b.members[1].rtp
}

// parseBridgeType reads the type parameter: a comma separated list of
// bridge attributes; empty means mixing.
func parseBridgeType(typ string) (*bridge, bool) {
	b := &bridge{videoMode: "talker"}
	mixing := false
	for _, t := range strings.Split(typ, ",") {
		switch strings.TrimSpace(t) {
		case "":
		case "mixing":
			mixing = true
		case "holding":
			b.holding = true
		case "dtmf_events":
			b.dtmfEvents = true
		case "proxy_media":
			b.proxyMedia = true
		case "video_sfu":
			b.videoMode = "sfu"
		case "video_single":
			b.videoMode = "single"
		case "sdp_label":
		default:
			return nil, false
		}
	}
	if mixing && b.holding {
		return nil, false
	}
	if b.holding {
		b.videoMode = "none"
	}
	return b, true
}

func (s *Server) bridgesLocked() []*bridge {
	list := make([]*bridge, 0, len(s.bridges))
	for _, b := range s.bridges {
		list = append(list, b)
	}
	slices.SortFunc(list, func(x, y *bridge) int { return cmp.Compare(x.seq, y.seq) })
	return list
}

// joinBridgeLocked puts ch in b: ChannelEnteredBridge, and the
// applications subscribed to ch become subscribed to b. A channel already
// in a bridge leaves it first, even when it is the same bridge.
func (s *Server) joinBridgeLocked(ch *channel, b *bridge) {
	if ch.bridge != nil {
		s.leaveBridgeLocked(ch, ch.bridge != b)
	}
	b.members = append(b.members, ch)
	ch.bridge = b
	for _, a := range s.apps {
		if a.channels[ch] {
			a.bridges[b] = true
		}
	}
	s.emitBridgeChannelLocked("ChannelEnteredBridge", b, ch)
	s.bridgeChangedLocked(b)
}

// leaveBridgeLocked takes ch out of its bridge: its BRIDGEPEER and
// BRIDGEPVTCALLID are cleared, then ChannelLeftBridge. The members that
// stay keep their variables unless two or more remain (Asterisk updates
// them only then); reconfigure is false while the bridge is destroyed.
func (s *Server) leaveBridgeLocked(ch *channel, reconfigure bool) {
	b := ch.bridge
	for _, v := range []string{"BRIDGEPEER", "BRIDGEPVTCALLID"} {
		if ch.vars[v] != "" {
			s.setVarLocked(ch, v, "")
		}
	}
	b.members = slices.DeleteFunc(slices.Clone(b.members), func(m *channel) bool { return m == ch })
	ch.bridge = nil
	s.emitBridgeChannelLocked("ChannelLeftBridge", b, ch)
	ch.party.noteLocked(Note{Kind: NoteUnbridged, Bridge: b.id})
	if reconfigure {
		s.bridgeChangedLocked(b)
	}
}

// bridgeChangedLocked is Asterisk's bridge reconfiguration after a join
// or leave: peer variables (set_bridge_peer_vars), the connected line of
// a two-party bridge, and what each member's far end hears.
func (s *Server) bridgeChangedLocked(b *bridge) {
	switch n := len(b.members); {
	case b.holding:
	case n == 2:
		c0, c1 := b.members[0], b.members[1]
		s.peerVarsLocked(c0, c1.name, c1.protocolID)
		s.peerVarsLocked(c1, c0.name, c0.protocolID)
		if !c0.inhibitCL {
			s.connectedLineLocked(c0, c1.caller)
		}
		if !c1.inhibitCL {
			s.connectedLineLocked(c1, c0.caller)
		}
	case n > 2:
		for _, m := range b.members {
			var names []string
			for _, o := range b.members {
				if o != m {
					names = append(names, o.name)
				}
			}
			s.changeVarLocked(m, "BRIDGEPEER", strings.Join(names, ","))
		}
	}
	for _, m := range b.members {
		with := []string{}
		for _, o := range b.members {
			if o != m {
				with = append(with, o.id)
			}
		}
		m.party.noteLocked(Note{Kind: NoteBridged, Bridge: b.id, With: with})
	}
}

// peerVarsLocked sets BRIDGEPEER to the peer's name and BRIDGEPVTCALLID to
// its SIP Call-ID; a peer without one (a Local channel) unsets the
// variable, which publishes nothing.
func (s *Server) peerVarsLocked(ch *channel, peerName, peerCallID string) {
	s.changeVarLocked(ch, "BRIDGEPEER", peerName)
	if peerCallID == "" {
		delete(ch.vars, "BRIDGEPVTCALLID")
		return
	}
	s.changeVarLocked(ch, "BRIDGEPVTCALLID", peerCallID)
}

func (s *Server) changeVarLocked(ch *channel, name, value string) {
	if cur, ok := ch.vars[name]; ok && cur == value {
		return
	}
	s.setVarLocked(ch, name, value)
}

// forgetBridgeLocked removes b and every subscription to it.
func (s *Server) forgetBridgeLocked(b *bridge) {
	delete(s.bridges, b.id)
	for _, a := range s.appsLocked() {
		delete(a.bridges, b)
		s.reapLocked(a)
	}
}

// Bridge operations.

func (s *Server) listBridges(*request) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := []bridgeJSON{}
	for _, b := range s.bridgesLocked() {
		list = append(list, b.json())
	}
	return okJSON(list)
}

func (s *Server) getBridge(rq *request) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bridges[rq.path["bridgeId"]]
	if b == nil {
		return fail(http.StatusNotFound, "Bridge not found")
	}
	return okJSON(b.json())
}

// createBridge is POST /bridges and POST /bridges/{bridgeId}; the latter
// on an existing bridge returns it unchanged, as Asterisk's create-or-
// update does.
func (s *Server) createBridge(rq *request) reply {
	typ, name := rq.str("type"), rq.str("name")
	pathID := rq.path["bridgeId"]
	id := pathID
	if id == "" {
		id = rq.str("bridgeId")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.bridges[id]; id != "" && old != nil {
		switch {
		case pathID == "":
			return fail(http.StatusConflict, "Bridge with id '"+id+"' already exists")
		case name != "" && name != old.name:
			return fail(http.StatusInternalServerError, "Changing bridge name is not implemented")
		case typ != "":
			return fail(http.StatusInternalServerError, "Supplying a bridge type when updating a bridge is not allowed.")
		}
		return okJSON(old.json())
	}
	b, valid := parseBridgeType(typ)
	if !valid {
		shown := id
		if shown == "" {
			shown = "(null)" // the C string printed with %s when no id was given
		}
		return fail(http.StatusInternalServerError, "Unable to create bridge. Possible duplicate bridge id '"+shown+"'")
	}
	if id == "" {
		id = uuid.NewString()
	}
	s.objSeq++
	b.seq = s.objSeq
	b.id = id
	b.name = name
	b.created = time.Now()
	s.bridges[id] = b
	return okJSON(b.json())
}

// destroyBridge is DELETE /bridges/{id}. An empty bridge sends
// BridgeDestroyed to the applications subscribed to it. Members are
// removed with ChannelLeftBridge, and their leaving ends the applications'
// subscriptions before the bridge goes, so then no BridgeDestroyed
// arrives (recorded in errors.jsonl).
func (s *Server) destroyBridge(rq *request) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bridges[rq.path["bridgeId"]]
	if b == nil {
		return fail(http.StatusNotFound, "Bridge not found")
	}
	if len(b.members) == 0 {
		s.publishLocked(&event{typ: "BridgeDestroyed", body: []field{{"bridge", b.json()}}, bridge: b})
	}
	for _, m := range slices.Clone(b.members) {
		s.leaveBridgeLocked(m, false)
	}
	s.forgetBridgeLocked(b)
	return noContent()
}

// membersLocked resolves addChannel's and removeChannel's channel list:
// 400 for a channel that does not exist (the parameter is not part of the
// URI), 422 for one not in Stasis.
func (s *Server) membersLocked(rq *request) ([]*channel, *reply) {
	ids := rq.list("channel")
	if len(ids) == 0 {
		r := fail(http.StatusBadRequest, "Missing parameter channel")
		return nil, &r
	}
	var chans []*channel
	for _, id := range ids {
		ch := s.channels[id]
		if ch == nil {
			r := fail(http.StatusBadRequest, "Channel not found")
			return nil, &r
		}
		if !ch.control {
			r := fail(http.StatusUnprocessableEntity, "Channel not in Stasis application")
			return nil, &r
		}
		chans = append(chans, ch)
	}
	return chans, nil
}

func (s *Server) addChannel(rq *request) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bridges[rq.path["bridgeId"]]
	if b == nil {
		return fail(http.StatusNotFound, "Bridge not found")
	}
	chans, r := s.membersLocked(rq)
	if r != nil {
		return *r
	}
	absorb := astTrue(rq.str("absorbDTMF"))
	inhibit := astTrue(rq.str("inhibitConnectedLineUpdates"))
	for _, ch := range chans {
		ch.absorbDTMF = absorb
		ch.inhibitCL = inhibit
		s.joinBridgeLocked(ch, b)
	}
	return noContent()
}

func (s *Server) removeChannel(rq *request) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bridges[rq.path["bridgeId"]]
	if b == nil {
		return fail(http.StatusNotFound, "Bridge not found")
	}
	chans, r := s.membersLocked(rq)
	if r != nil {
		return *r
	}
	for _, ch := range chans {
		if ch.bridge != b {
			return fail(http.StatusUnprocessableEntity, "Channel not in this bridge")
		}
	}
	for _, ch := range chans {
		s.leaveBridgeLocked(ch, true)
	}
	return noContent()
}
