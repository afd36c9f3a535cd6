package aritest

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
)

// localTest is the recording's local channel destination: local-test,s
// runs Answer() and Wait(60).
const localTest = "s@local-test"

// localAnswerDelay is how long Answer() holds the Local channel's ;2 half
// before its dialplan goes on: Asterisk waits up to 500 ms for media after
// answering, and the recording shows the next step 500 ms later.
const localAnswerDelay = 500 * time.Millisecond

// originate is POST /channels and POST /channels/{channelId}, checked in
// the order of ari_channels_handle_originate_with_id.
func (s *Server) originate(rq *request) reply {
	endpoint := rq.str("endpoint")
	if endpoint == "" {
		return fail(http.StatusBadRequest, "Endpoint must be specified")
	}
	tech, resource, _ := strings.Cut(endpoint, "/")
	if tech == "" || resource == "" {
		return fail(http.StatusBadRequest, "Invalid endpoint specified")
	}
	// The originate timeout in seconds: positive, or -1 for none; anything
	// else leaves Asterisk's 30.
	timeout := 30 * time.Second
	if t := rq.integer("timeout", 30); t > 0 {
		timeout = time.Duration(t) * time.Second
	} else if t == -1 {
		timeout = 0
	}
	appName := rq.str("app")
	if appName == "" {
		if rq.str("extension") == "" {
			return fail(http.StatusBadRequest, "Application or extension must be specified")
		}
		return fail(http.StatusNotImplemented, "aritest does not model dialplan origination; use app")
	}
	o := origination{
		endpoint: endpoint,
		tech:     tech,
		resource: resource,
		app:      appName,
		args:     []string{},
		callerID: parseCallerID(rq.str("callerId")),
		timeout:  timeout,
		id:       rq.path["channelId"],
		otherID:  rq.str("otherChannelId"),
	}
	if o.id == "" {
		o.id = rq.str("channelId")
	}
	if a := rq.str("appArgs"); a != "" {
		o.args = strings.Split(a, ",")
	}
	if vars, ok := rq.body["variables"].(map[string]any); ok {
		o.vars = map[string]string{}
		for k, v := range vars {
			if str, ok := scalar(v); ok {
				o.vars[k] = str
			}
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range []string{o.id, o.otherID} {
		if id != "" && s.channels[id] != nil {
			return fail(http.StatusConflict, "Channel with given unique ID already exists")
		}
	}
	if tech == "Local" {
		if resource != localTest {
			return allocationFailed()
		}
		return s.originateLocalLocked(o)
	}
	ph, known := s.endpoints[endpoint]
	if !known {
		// PJSIP/<user>@<endpoint> dials user through the endpoint (a
		// trunk): the endpoint answers for any user.
		if _, through, ok := strings.Cut(resource, "@"); ok {
			ph, known = s.endpoints[tech+"/"+through]
		}
	}
	if !known {
		return allocationFailed()
	}
	return s.originatePhoneLocked(o, ph)
}

// allocationFailed is ast_ari_response_alloc_failed: the channel could
// not be created.
func allocationFailed() reply {
	return reply{status: http.StatusInternalServerError, body: allocationJSON{Error: "Allocation failed"}}
}

// origination is what an originate request asked for.
type origination struct {
	endpoint, tech, resource string
	app                      string
	args                     []string
	callerID                 callerID
	timeout                  time.Duration // 0: none
	id, otherID              string
	vars                     map[string]string
}

// originatePhoneLocked dials a phone set with SetEndpoint. The reply
// carries the channel as created (Down); the events follow the phone:
// Dial "", then Ringing and Dial RINGING, then the answer, a 486 or the
// timeout.
func (s *Server) originatePhoneLocked(o origination, ph Phone) reply {
	ch := s.newChannelLocked(o.id, kindOriginated)
	// Asterisk names the channel after the endpoint: PJSIP/1001 makes
	// PJSIP/1001-00000001, and PJSIP/<number>@carrier-a, dialled through
	// the trunk's endpoint, PJSIP/carrier-a-00000002.
	endpoint := o.resource
	if _, through, ok := strings.Cut(o.resource, "@"); ok {
		endpoint = through
	}
	name := fmt.Sprintf("%s/%s-%08x", o.tech, endpoint, s.pjsipSeq)
	s.pjsipSeq++
	ch.name = name
	ch.dialstring = o.resource
	ch.endpoint = o.endpoint
	ch.state = "Down"
	ch.protocolID = uuid.NewString() // the Call-ID pjsip generates for its INVITE
	// The endpoint's own caller id, with what originate's callerId gives
	// in its place; the connected line is callerId as given (seen on a
	// real Asterisk 22: callerId=13800000000 to an endpoint with callerid
	// "Agent 5001" <5001> gives caller "Agent 5001" <13800000000> and
	// connected "" <13800000000>).
	ch.caller = parseCallerID(ph.CallerID)
	if o.callerID.Name != "" {
		ch.caller.Name = o.callerID.Name
	}
	if o.callerID.Number != "" {
		ch.caller.Number = o.callerID.Number
	}
	ch.connected = o.callerID
	context := ph.Context
	if context == "" {
		context = "from-trunk"
	}
	ch.origin = dialplanCEP{Context: context, Exten: "s", Priority: 1, AppName: "AppDial2", AppData: "(Outgoing Line)"}
	ch.dialplan = ch.origin
	ch.app, ch.args = o.app, o.args
	ch.control = true
	ch.dialing = true
	ch.rtp = o.tech == "PJSIP"
	ch.ssrc = newSSRC()
	for k, v := range o.vars {
		ch.vars[k] = v
	}
	ch.party = newParty(s, ch.id)
	s.subscribeLocked(o.app, ch)
	rep := okJSON(ch.json())
	if ph.Rung != nil {
		select {
		case ph.Rung <- ch.party:
		default:
			s.logf("the test did not read the calls of %s; dropped %s", o.endpoint, ch.id)
		}
	}

	s.emitDialLocked(ch, "")
	if ph.Busy {
		ch.ring = s.afterLocked(ph.AnswerAfter, func() { s.busyLocked(ch) })
	} else {
		// 180 Ringing.
		ch.state = "Ringing"
		s.emitStateLocked(ch)
		s.emitDialLocked(ch, "RINGING")
		switch {
		case ph.Refuses != 0:
			ch.ring = s.afterLocked(ph.AnswerAfter, func() { s.refusedLocked(ch, ph.Refuses) })
		case ph.Declines:
			ch.ring = s.afterLocked(ph.AnswerAfter, func() { s.busyLocked(ch) })
		case !ph.NoAnswer:
			ch.ring = s.afterLocked(ph.AnswerAfter, func() { s.phoneAnsweredLocked(ch) })
		}
	}
	if o.timeout > 0 {
		ch.timeout = s.afterLocked(o.timeout, func() { s.noAnswerLocked(ch) })
	}
	return rep
}

// phoneAnsweredLocked is the phone's 200 OK: Up, Dial ANSWER, and the
// channel enters Stasis.
func (s *Server) phoneAnsweredLocked(ch *channel) {
	if ch.gone || !ch.dialing {
		return
	}
	ch.dialing = false
	ch.ring = nil
	s.cancelLocked(ch.timeout)
	ch.state = "Up"
	ch.answeredAt = time.Now()
	s.emitStateLocked(ch)
	s.emitDialLocked(ch, "ANSWER")
	s.enterStasisLocked(ch)
}

// busyLocked is the phone's 486 Busy Here: Asterisk maps it to Q.850
// cause 17 (RFC 3398 section 8.2.6.1).
func (s *Server) busyLocked(ch *channel) { s.refusedLocked(ch, 486) }

// refusedLocked is the far end's final status, a refusal: the hang-up
// request and ChannelDestroyed with the Q.850 cause chan_pjsip maps the
// status to (ast_sip_hangup_sip2cause), and Dial with the status the
// cause gives.
func (s *Server) refusedLocked(ch *channel, status int) {
	if ch.gone || !ch.dialing {
		return
	}
	cause, ok := sip2cause[status]
	if !ok {
		cause = 127 // interworking, unspecified
	}
	ch.dialing = false
	ch.ring = nil
	s.cancelLocked(ch.timeout)
	s.emitChannelLocked("ChannelHangupRequest", ch, []field{{"cause", cause}, {"tech_cause", status}})
	s.releaseLocked(ch)
	s.emitDialLocked(ch, dialStatus(cause))
	s.emitDestroyedLocked(ch, cause, status)
	s.removeLocked(ch, Note{})
}

// sip2cause is chan_pjsip's map of a final SIP status to a Q.850 cause
// (ast_sip_hangup_sip2cause), for the statuses the tests use.
var sip2cause = map[int]int{
	403: 21, 603: 21, // rejected
	404: 1,           // unallocated
	408: 18, 480: 19, // no response, no answer
	486: 17, 600: 17, // busy
	500: 38, 503: 34, // failure, congestion
}

// noAnswerLocked is the originate timeout: Asterisk cancels the INVITE
// and only ChannelDestroyed with cause 19 is published; no Dial NOANSWER
// and no ChannelHangupRequest.
func (s *Server) noAnswerLocked(ch *channel) {
	if ch.gone || !ch.dialing {
		return
	}
	ch.dialing = false
	ch.timeout = nil
	s.cancelLocked(ch.ring)
	s.releaseLocked(ch)
	s.emitDestroyedLocked(ch, 19, 480)
	s.removeLocked(ch, Note{})
}

// cancelDialLocked hangs up a channel that is still being dialled (DELETE
// before the phone answered), as a real Asterisk 22 does: the hang-up
// request, Dial with the status the cause maps to (16, normal, is
// NOANSWER), then ChannelDestroyed with the cause and, for PJSIP, the SIP
// status chan_pjsip cancels the INVITE with (486 for busy; none for
// normal clearing).
func (s *Server) cancelDialLocked(ch *channel, h hangup) {
	ch.dialing = false
	s.emitChannelLocked("ChannelHangupRequest", ch, []field{{"cause", 32}, {"soft", true}})
	s.releaseLocked(ch)
	s.emitDialLocked(ch, dialStatus(h.cause))
	tech := 0
	if strings.HasPrefix(ch.name, "PJSIP/") {
		tech = sipStatusOf(h.cause)
	}
	s.emitDestroyedLocked(ch, h.cause, tech)
	s.removeLocked(ch, Note{})
}

// dialStatus is the Dial status a dialled channel's hang-up cause gives
// (ast_hangup_cause_to_dial_status).
func dialStatus(cause int) string {
	switch cause {
	case 17:
		return "BUSY"
	case 34:
		return "CONGESTION"
	case 3, 20:
		return "CHANUNAVAIL"
	}
	return "NOANSWER"
}

// sipStatus is the SIP status chan_pjsip ends a call with for a Q.850
// cause (its hangup_cause2sip); causes it has none for, normal clearing
// among them, are not there.
var sipStatus = map[int]int{
	1: 404, 2: 404, 3: 404, // unallocated, no route
	17: 486, // user busy
	18: 408, // no user responding
	19: 480, 20: 480, 31: 480,
	21: 403, 22: 410, 27: 502, 28: 484, 29: 501,
	34: 503, 42: 503, 66: 503, // congestion, channel not implemented
	38: 500, 127: 500, // failure, interworking
	58: 488, // bearer capability not available: no common codec
}

func sipStatusOf(cause int) int { return sipStatus[cause] }

// releaseLocked ends what the application started on a channel that is
// still being dialled (its control exists from the originate): its
// playback and its place in a bridge.
func (s *Server) releaseLocked(ch *channel) {
	s.stopPlaybacksLocked(ch)
	if ch.bridge != nil {
		s.leaveBridgeLocked(ch, true)
	}
}

// enterStasisLocked runs Stasis(app,args) on an answered originated
// channel: STASISSTATUS is cleared, StasisStart goes out and the far end is
// handed to the test. With no socket holding the application, Stasis()
// fails and the channel hangs up unseen.
func (s *Server) enterStasisLocked(ch *channel) {
	appData := ch.app
	if len(ch.args) > 0 {
		appData += "," + strings.Join(ch.args, ",")
	}
	ch.dialplan = dialplanCEP{Context: ch.origin.Context, Exten: ch.origin.Exten, Priority: 1, AppName: "Stasis", AppData: appData}
	s.setVarLocked(ch, "STASISSTATUS", "")
	if a := s.apps[ch.app]; a == nil || a.socket == nil {
		s.logf("Stasis app %q not registered: %s hangs up", ch.app, ch.name)
		if ch.other != nil {
			s.removeLocked(ch.other, Note{})
		}
		s.removeLocked(ch, Note{})
		return
	}
	ch.inStasis = true
	s.emitStasisLocked("StasisStart", ch, ch.args)
	s.subscribeLocked(ch.app, ch)
	s.deliverOriginatedLocked(ch.party)
}

// originateLocalLocked originates Local/s@local-test: the ;2 half runs
// Answer() at once, so the ;1 half is answered and enters Stasis in the
// same moment; 500 ms later the ;2 half moves on to Wait(60).
func (s *Server) originateLocalLocked(o origination) reply {
	one := s.newChannelLocked(o.id, kindOriginated)
	two := s.newChannelLocked(o.otherID, kindLocalTwo)
	base := fmt.Sprintf("Local/%s-%08x", localTest, s.localSeq)
	s.localSeq++
	one.name, two.name = base+";1", base+";2"
	one.dialstring, two.dialstring = localTest, localTest
	one.state, two.state = "Down", "Ring"
	one.caller, one.connected = o.callerID, o.callerID
	two.caller, two.connected = one.connected, one.caller
	one.origin = dialplanCEP{Context: "local-test", Exten: "s", Priority: 1, AppName: "AppDial2", AppData: "(Outgoing Line)"}
	one.dialplan = one.origin
	two.dialplan = dialplanCEP{Context: "local-test", Exten: "s", Priority: 1, AppName: "Answer"}
	two.origin = two.dialplan
	one.other, two.other = two, one
	one.app, one.args = o.app, o.args
	one.control = true
	for k, v := range o.vars {
		one.vars[k] = v
	}
	one.party = newParty(s, one.id)
	s.subscribeLocked(o.app, one)
	s.subscribeLocked(o.app, two)
	rep := okJSON(one.json())

	s.emitChannelLocked("ChannelDialplan", two, nil, field{"dialplan_app", "Answer"}, field{"dialplan_app_data", ""})
	s.emitDialLocked(one, "")
	two.state = "Up"
	s.emitStateLocked(two)
	one.state = "Up"
	one.answeredAt = time.Now()
	s.emitStateLocked(one)
	s.emitDialLocked(one, "ANSWER")
	s.enterStasisLocked(one)
	if !two.gone {
		two.answerStep = s.afterLocked(localAnswerDelay, func() { s.localWaitLocked(two) })
	}
	return rep
}

// localWaitLocked moves the ;2 half from Answer() to Wait(60) and applies
// the caller id the ;1 half's connected line gave it meanwhile.
func (s *Server) localWaitLocked(two *channel) {
	if two.gone {
		return
	}
	two.answerStep = nil
	caller := two.other.connected
	changed := caller != two.caller
	two.caller = caller
	two.dialplan = dialplanCEP{Context: "local-test", Exten: "s", Priority: 2, AppName: "Wait", AppData: "60"}
	s.emitChannelLocked("ChannelDialplan", two, nil, field{"dialplan_app", "Wait"}, field{"dialplan_app_data", "60"})
	if changed {
		s.emitCallerIDLocked(two)
	}
}

// connectedLineLocked sets ch's connected line and publishes
// ChannelConnectedLine; a Local ;1 half passes it on to its ;2 half as the
// caller id, once that half is past Answer().
func (s *Server) connectedLineLocked(ch *channel, c callerID) {
	if ch.connected == c {
		return
	}
	ch.connected = c
	s.emitChannelLocked("ChannelConnectedLine", ch, nil)
	two := ch.other
	if ch.kind != kindOriginated || two == nil || two.gone || two.answerStep != nil || two.caller == c {
		return
	}
	two.caller = c
	s.emitCallerIDLocked(two)
}

func (s *Server) emitCallerIDLocked(ch *channel) {
	s.emitChannelLocked("ChannelCallerId", ch, nil,
		field{"caller_presentation", 0}, field{"caller_presentation_txt", "Presentation Allowed, Not Screened"})
}
