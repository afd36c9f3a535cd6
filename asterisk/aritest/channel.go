package aritest

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"time"
)

// chanKind says how a channel came to be, which decides how it ends.
type chanKind int

const (
	// kindInbound entered Stasis from the dialplan: its application's
	// subscription ends at StasisEnd.
	kindInbound chanKind = iota
	// kindOriginated was created by originate: its application stays
	// subscribed until ChannelDestroyed.
	kindOriginated
	// kindLocalTwo is the ;2 half of a Local channel, running the dialplan
	// and never in Stasis.
	kindLocalTwo
)

// channel is one Asterisk channel.
type channel struct {
	seq        uint64
	id         string
	name       string
	dialstring string // what Dial events call it: the endpoint's resource
	endpoint   string // "PJSIP/citizen": the endpoint it belongs to; "" for Local
	kind       chanKind
	state      string
	protocolID string
	caller     callerID
	connected  callerID
	dialplan   dialplanCEP
	origin     dialplanCEP // where originate put it; ChannelDestroyed reports it again
	created    time.Time
	language   string
	vars       map[string]string

	app      string   // its Stasis application
	args     []string // the application's arguments
	control  bool     // the application may control it (answer, play, ...)
	inStasis bool     // between StasisStart and StasisEnd
	gone     bool

	// rtp marks a PJSIP channel with an RTP socket: its hang-up sets the
	// five RTPAUDIOQOS variables first, as chan_pjsip does.
	rtp        bool
	ssrc       uint32
	themssrc   uint32 // 0 until the far end sends RTP
	answeredAt time.Time
	// What Asterisk counted of the far end's RTP (see Media): packets
	// received and lost, the latest jitter and RTCP report, and whether
	// it streamed audio (SendMedia) rather than only keys.
	rxPackets, rxLost uint32
	rxJitter          time.Duration
	report            *Report
	streamed          bool

	party      *Party
	bridge     *bridge
	absorbDTMF bool // addChannel's absorbDTMF: its keys are not passed to the bridge
	inhibitCL  bool // addChannel's inhibitConnectedLineUpdates
	plays      []*playback

	// While originate dials it: the phone's answer (or 486) and the
	// originate timeout.
	dialing bool
	ring    *task
	timeout *task

	// Local channels: the other half, and the ;2 half's Answer() that
	// holds back its caller-id update.
	other      *channel
	answerStep *task
}

func (ch *channel) json() channelJSON {
	return channelJSON{
		ID:           ch.id,
		Name:         ch.name,
		State:        ch.state,
		ProtocolID:   ch.protocolID,
		Caller:       ch.caller,
		Connected:    ch.connected,
		Accountcode:  "",
		Dialplan:     ch.dialplan,
		Creationtime: stamp(ch.created),
		Language:     ch.language,
	}
}

// newChannelLocked allocates a channel with Asterisk's unique id, "<unix
// seconds>.<counter>", unless the request assigned one.
func (s *Server) newChannelLocked(id string, kind chanKind) *channel {
	now := time.Now()
	seq := s.chanSeq
	s.chanSeq++
	if id == "" {
		id = fmt.Sprintf("%d.%d", now.Unix(), seq)
	}
	ch := &channel{
		seq:      seq,
		id:       id,
		kind:     kind,
		created:  now,
		language: "en",
		vars:     map[string]string{},
	}
	s.channels[id] = ch
	return ch
}

// pjsipNameLocked names a PJSIP channel as chan_pjsip does:
// "PJSIP/<endpoint>-<8 hex digits of a counter>".
func (s *Server) pjsipNameLocked(endpoint string) string {
	name := fmt.Sprintf("PJSIP/%s-%08x", endpoint, s.pjsipSeq)
	s.pjsipSeq++
	return name
}

func (s *Server) channelsLocked() []*channel {
	list := make([]*channel, 0, len(s.channels))
	for _, ch := range s.channels {
		list = append(list, ch)
	}
	slices.SortFunc(list, func(x, y *channel) int { return cmp.Compare(x.seq, y.seq) })
	return list
}

// hangup is how a channel is being hung up.
type hangup struct {
	farEnd bool // the far end hung up (BYE): ChannelHangupRequest carries no cause
	cause  int  // the Q.850 cause it ends with
}

// hangupLocked ends ch with the events its kind and state call for.
func (s *Server) hangupLocked(ch *channel, h hangup) {
	switch {
	case ch.gone:
	case ch.kind == kindLocalTwo:
		// The ;2 half running the dialplan goes away: the ;1 half's far end
		// has hung up, with the ;2 half's cause.
		if !h.farEnd {
			s.emitChannelLocked("ChannelHangupRequest", ch, []field{{"cause", 32}, {"soft", true}})
		}
		s.localFarEndLocked(ch.other, h.cause)
	case ch.dialing:
		s.cancelDialLocked(ch, h)
	case ch.inStasis && ch.other != nil && h.farEnd:
		s.localFarEndLocked(ch, h.cause)
	case ch.inStasis:
		s.leaveStasisLocked(ch, h)
	default:
		// An originated channel whose Stasis() failed: no application
		// hears of it.
		s.removeLocked(ch, Note{})
	}
}

// leaveStasisLocked is the recorded hang-up of a channel in Stasis: the
// RTP statistics, ChannelHangupRequest, the playback and the bridge it
// leaves, StasisEnd; then, for originated channels only, STASISSTATUS and
// ChannelDestroyed (and the ;2 half of a Local channel with it).
func (s *Server) leaveStasisLocked(ch *channel, h hangup) {
	if ch.rtp {
		s.qosVarsLocked(ch)
	}
	if h.farEnd {
		s.emitChannelLocked("ChannelHangupRequest", ch, nil)
	} else {
		// ARI's hangup raises AST_SOFTHANGUP_EXPLICIT (32), which Asterisk
		// reports as the cause of the request.
		s.emitChannelLocked("ChannelHangupRequest", ch, []field{{"cause", 32}, {"soft", true}})
	}
	s.endStasisLocked(ch)
	var final Note
	if !h.farEnd {
		final = Note{Kind: NoteHungUp, Cause: h.cause}
	}
	if ch.kind == kindInbound {
		// The dialplan goes on to Hangup(); the subscription ended with
		// StasisEnd, so no ChannelDestroyed reaches the application.
		s.removeLocked(ch, final)
		return
	}
	s.setVarLocked(ch, "STASISSTATUS", "SUCCESS")
	two := ch.other
	if two != nil {
		s.emitChannelLocked("ChannelHangupRequest", two, []field{{"cause", 16}})
	}
	ch.dialplan = ch.origin
	s.emitDestroyedLocked(ch, h.cause, 0)
	if two != nil {
		s.emitChannelLocked("ChannelHangupRequest", two, []field{{"cause", 16}, {"soft", true}})
		two.dialplan.AppName, two.dialplan.AppData = "", ""
		s.emitDestroyedLocked(two, 16, 0)
		s.removeLocked(two, Note{})
	}
	s.removeLocked(ch, final)
}

// endStasisLocked stops the channel's playbacks, takes it out of its
// bridge and sends StasisEnd.
func (s *Server) endStasisLocked(ch *channel) {
	s.stopPlaybacksLocked(ch)
	if ch.bridge != nil {
		s.leaveBridgeLocked(ch, true)
	}
	s.emitStasisLocked("StasisEnd", ch, nil)
	ch.inStasis = false
	ch.control = false
}

// localFarEndLocked ends a Local channel pair whose dialplan side went
// away with cause, as a real Asterisk 22 does when the ;2 half of a
// Local channel whose ;1 half is in Stasis hangs up: the ;1 half's
// hang-up request carries the ;2 half's cause (16 when the far end hung
// up normally, 34 when it was refused with congestion), then StasisEnd,
// STASISSTATUS, and both halves are destroyed with that cause.
func (s *Server) localFarEndLocked(one *channel, cause int) {
	two := one.other
	if one.inStasis {
		s.emitChannelLocked("ChannelHangupRequest", one, []field{{"cause", cause}})
		s.endStasisLocked(one)
		s.setVarLocked(one, "STASISSTATUS", "SUCCESS")
	}
	two.dialplan.AppName, two.dialplan.AppData = "", ""
	s.emitDestroyedLocked(two, cause, 0)
	s.removeLocked(two, Note{})
	one.dialplan = one.origin
	s.emitDestroyedLocked(one, cause, 0)
	s.removeLocked(one, Note{})
}

// removeLocked forgets a channel; final, if it has a kind, is the last
// thing its far end hears.
func (s *Server) removeLocked(ch *channel, final Note) {
	if ch.gone {
		return
	}
	ch.gone = true
	ch.dialing = false
	s.cancelLocked(ch.ring)
	s.cancelLocked(ch.timeout)
	s.cancelLocked(ch.answerStep)
	for _, pb := range ch.plays {
		s.cancelLocked(pb.task)
		delete(s.playbacks, pb.id)
	}
	ch.plays = nil
	delete(s.channels, ch.id)
	s.unsubscribeLocked(ch)
	if ch.party != nil {
		ch.party.finishLocked(final)
	}
}

// qosVarsLocked sets the RTP statistics chan_pjsip leaves on a channel
// when its media socket ends, in the recorded order and formats
// (ast_rtp_instance_get_quality), each only when it is not set yet. A
// channel in a two-party bridge also leaves each on its peer, suffixed
// BRIDGED, right after its own (ast_rtp_instance_set_stats_vars; seen on
// a real Asterisk 22 when either side of a caller-agent bridge hangs up).
//
// The figures are what the double knows of the far end's RTP (see Media)
// and of its own: one packet per 20 ms since the answer. Asterisk swaps
// the jitters and MES of RTPAUDIOQOS against their names: txjitter and
// txmes are its own view of what it received, rxjitter and rxmes the far
// end's report on what it sent (res_rtp_asterisk.c, ast_rtp_get_stat).
// The other four variables are each RTCP interval's minimum, maximum, mean
// and deviation; the double has one interval, so the first three are the
// figure and the deviation is 0. Asterisk's own figures (lp aside) come
// from its RTCP reports, which the double takes to have covered a far end
// that streamed audio and not one that only pressed keys, as in the
// recordings.
func (s *Server) qosVarsLocked(ch *channel) {
	var peer *channel
	if b := ch.bridge; b != nil && len(b.members) == 2 {
		peer = b.members[0]
		if peer == ch {
			peer = b.members[1]
		}
	}
	set := func(name, value string) {
		if ch.vars[name] == "" {
			s.setVarLocked(ch, name, value)
		}
		if peer != nil && peer.vars[name+"BRIDGED"] == "" {
			s.setVarLocked(peer, name+"BRIDGED", value)
		}
	}
	tx := 0
	if !ch.answeredAt.IsZero() {
		tx = int(time.Since(ch.answeredAt) / (20 * time.Millisecond)) // one packet per 20 ms
	}
	var rtt, rjitter time.Duration
	var rlost uint32
	var rmes float64 // 0: no report
	if r := ch.report; r != nil {
		rtt, rjitter, rlost = r.RTT, r.Jitter, r.Lost
		rmes = mediaExperienceScore(rtt, float64(rlost))
	}
	var ljitter time.Duration
	var llost, lmes float64
	if ch.streamed {
		ljitter, llost = ch.rxJitter, float64(ch.rxLost)
		lmes = mediaExperienceScore(rtt, llost)
	}
	set("RTPAUDIOQOS", fmt.Sprintf(
		"ssrc=%d;themssrc=%d;lp=%d;rxjitter=%f;rxcount=%d;txjitter=%f;txcount=%d;rlp=%d;rtt=%f;rxmes=%f;txmes=%f",
		ch.ssrc, ch.themssrc, ch.rxLost, rjitter.Seconds(), ch.rxPackets, ljitter.Seconds(), tx, rlost, rtt.Seconds(), rmes, lmes))
	j, rj := ljitter.Seconds(), rjitter.Seconds()
	set("RTPAUDIOQOSJITTER", fmt.Sprintf("minrxjitter=%010.6f;maxrxjitter=%010.6f;avgrxjitter=%010.6f;stdevrxjitter=%010.6f;mintxjitter=%010.6f;maxtxjitter=%010.6f;avgtxjitter=%010.6f;stdevtxjitter=%010.6f;",
		j, j, j, 0.0, rj, rj, rj, 0.0))
	rl := float64(rlost)
	set("RTPAUDIOQOSLOSS", fmt.Sprintf("  minrxlost=%010.6f;  maxrxlost=%010.6f;  avgrxlost=%010.6f;  stdevrxlost=%010.6f;  mintxlost=%010.6f;  maxtxlost=%010.6f;  avgtxlost=%010.6f;  stdevtxlost=%010.6f;",
		llost, llost, llost, 0.0, rl, rl, rl, 0.0))
	r := rtt.Seconds()
	set("RTPAUDIOQOSRTT", fmt.Sprintf("     minrtt=%010.6f;     maxrtt=%010.6f;     avgrtt=%010.6f;     stdevrtt=%010.6f;", r, r, r, 0.0))
	set("RTPAUDIOQOSMES", fmt.Sprintf("   minrxmes=%010.6f;   maxrxmes=%010.6f;   avgrxmes=%010.6f;   stdevrxmes=%010.6f;   mintxmes=%010.6f;   maxtxmes=%010.6f;   avgtxmes=%010.6f;   stdevtxmes=%010.6f;",
		lmes, lmes, lmes, 0.0, rmes, rmes, rmes, 0.0))
}

// mediaExperienceScore is res_rtp_asterisk.c's
// calc_media_experience_score for one RTCP interval: an E-model-like
// rating from the round trip and the packets lost in the interval, as a
// pseudo-MOS of 1 to 4.5 scaled to 20–90. Jitter counts there only
// through its deviation between intervals, which one interval lacks.
func mediaExperienceScore(rtt time.Duration, lost float64) float64 {
	latency := rtt.Seconds()*1000 + 10
	var r float64
	if latency < 160 {
		r = 93.2 - latency/40
	} else {
		r = 93.2 - (latency-120)/10
	}
	r -= lost * 2
	var mos float64
	switch {
	case r < 0:
		mos = 1
	case r > 100:
		mos = 4.5
	default:
		mos = 1 + 0.035*r + r*(r-60)*(100-r)*0.000007
	}
	return mos * 100 / 5
}

// keyPackets is how many RTP packets a key is: the recorded RFC 4733
// capture's 10 (eight events, the last sent three times).
const keyPackets = 10

// receiveLocked counts packets of the far end's RTP reaching Asterisk;
// the first gives the far end's SSRC.
func (ch *channel) receiveLocked(packets, lost uint32) {
	if !ch.rtp {
		return
	}
	ch.rxPackets += packets
	ch.rxLost += lost
	for ch.themssrc == 0 && ch.rxPackets > 0 {
		ch.themssrc = newSSRC()
	}
}

func newSSRC() uint32 { return rand.Uint32() }

// answerLocked answers ch for the application (POST /answer): the channel
// goes Up and the far end hears the 200 OK.
func (s *Server) answerLocked(ch *channel) {
	if ch.state == "Up" || ch.dialing {
		return
	}
	ch.state = "Up"
	ch.answeredAt = time.Now()
	s.emitStateLocked(ch)
	ch.party.noteLocked(Note{Kind: NoteAnswered})
}

// pressLocked is the far end pressing a key (RFC 4733): one
// ChannelDtmfReceived when the key ends, with no begin event. In a native
// RTP bridge the key passes end to end and Asterisk never sees it.
func (s *Server) pressLocked(ch *channel, digit rune) {
	b := ch.bridge
	ch.receiveLocked(keyPackets, 0)
	if b == nil || !b.native() {
		s.emitChannelLocked("ChannelDtmfReceived", ch, nil,
			field{"digit", string(digit)}, field{"duration_ms", dtmfDuration})
	}
	if b != nil && !ch.absorbDTMF {
		for _, m := range b.members {
			if m != ch {
				m.party.noteLocked(Note{Kind: NoteDTMF, Digit: digit})
			}
		}
	}
}

// dtmfDuration is how long a key is held, in ms: the recorded sipp
// capture's 280 ms.
const dtmfDuration = 280

// Channel operations.

// lookupLocked finds the channel an operation names, or the reply Asterisk
// gives when there is none.
func (s *Server) lookupLocked(id string) (*channel, *reply) {
	ch := s.channels[id]
	if ch == nil {
		r := fail(http.StatusNotFound, "Channel not found")
		return nil, &r
	}
	return ch, nil
}

// controlLocked finds a channel the application controls: 404 without
// the channel, 409 when it is not in Stasis.
func (s *Server) controlLocked(id string) (*channel, *reply) {
	ch, r := s.lookupLocked(id)
	if r != nil {
		return nil, r
	}
	if !ch.control {
		r := fail(http.StatusConflict, "Channel not in Stasis application")
		return nil, &r
	}
	return ch, nil
}

func (s *Server) listChannels(*request) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := []channelJSON{}
	for _, ch := range s.channelsLocked() {
		list = append(list, ch.json())
	}
	return okJSON(list)
}

func (s *Server) getChannel(rq *request) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, r := s.lookupLocked(rq.path["channelId"])
	if r != nil {
		return *r
	}
	return okJSON(ch.json())
}

// hangup is DELETE /channels/{id}: the channel first, then reason or
// reason_code, as ast_ari_channels_hangup checks them.
func (s *Server) hangup(rq *request) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, r := s.lookupLocked(rq.path["channelId"])
	if r != nil {
		return *r
	}
	reason, code := rq.str("reason"), rq.str("reason_code")
	cause := 16
	switch {
	case reason != "" && code != "":
		return fail(http.StatusBadRequest, "The reason and reason_code can't both be specified")
	case code != "":
		var n int
		if _, err := fmt.Sscanf(code, "%d", &n); err != nil {
			return fail(http.StatusBadRequest, "Invalid reason for hangup reason code provided")
		}
		cause = n
	case reason != "":
		c, ok := hangupReasons[reason]
		if !ok {
			return fail(http.StatusBadRequest, "Invalid reason for hangup reason provided")
		}
		cause = c
	}
	s.hangupLocked(ch, hangup{cause: cause})
	return noContent()
}

func (s *Server) answer(rq *request) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, r := s.controlLocked(rq.path["channelId"])
	if r != nil {
		return *r
	}
	s.answerLocked(ch)
	return noContent()
}

// ring indicates ringing to the far end (POST) or stops it (DELETE); ARI
// sends no event for either.
func (s *Server) ring(rq *request) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, r := s.controlLocked(rq.path["channelId"])
	if r != nil {
		return *r
	}
	kind := NoteRinging
	if rq.method == http.MethodDelete {
		kind = NoteRingStopped
	}
	ch.party.noteLocked(Note{Kind: kind})
	return noContent()
}

// musicOnHold starts (POST) or stops (DELETE) music on hold; ARI sends no
// event for either.
func (s *Server) musicOnHold(rq *request) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, r := s.controlLocked(rq.path["channelId"])
	if r != nil {
		return *r
	}
	if rq.method == http.MethodDelete {
		ch.party.noteLocked(Note{Kind: NoteMusicOnHoldStopped})
		return noContent()
	}
	class := rq.str("mohClass")
	if class == "" {
		class = "default"
	}
	ch.party.noteLocked(Note{Kind: NoteMusicOnHold, Class: class})
	return noContent()
}

func (s *Server) getVariable(rq *request) reply {
	name := rq.str("variable")
	if name == "" {
		return fail(http.StatusBadRequest, "Variable name is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, r := s.lookupLocked(rq.path["channelId"])
	if r != nil {
		return *r
	}
	v, ok := ch.vars[name]
	if !ok {
		return fail(http.StatusNotFound, "Provided variable was not found")
	}
	return okJSON(struct {
		Value string `json:"value"`
	}{v})
}

// setVariable sets a channel variable (ChannelVarset follows) or, without
// a value, unsets it, which publishes nothing.
func (s *Server) setVariable(rq *request) reply {
	name := rq.str("variable")
	if name == "" {
		return fail(http.StatusBadRequest, "Variable name is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, r := s.controlLocked(rq.path["channelId"])
	if r != nil {
		return *r
	}
	if value, ok := rq.value("value"); ok {
		s.setVarLocked(ch, name, value)
	} else {
		delete(ch.vars, name)
	}
	return noContent()
}

// sendDTMF sends keys to the far end, which notes each one.
func (s *Server) sendDTMF(rq *request) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, r := s.controlLocked(rq.path["channelId"])
	if r != nil {
		return *r
	}
	dtmf := rq.str("dtmf")
	if dtmf == "" {
		return fail(http.StatusBadRequest, "DTMF is required")
	}
	for _, d := range dtmf {
		// 'w' and 'W' are pauses and 'f' a flash, not keys.
		if strings.ContainsRune("0123456789*#ABCDabcd", d) {
			ch.party.noteLocked(Note{Kind: NoteDTMF, Digit: d})
		}
	}
	return noContent()
}
