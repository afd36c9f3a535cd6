package aritest

import (
	"context"
	"fmt"
	"time"
)

// trunkEndpoint is the PJSIP endpoint inbound calls arrive on, as in the
// recording's pjsip.conf: endpoint "citizen", context from-trunk.
const trunkEndpoint = "citizen"

// NoteKind says what a far end experienced.
type NoteKind int

const (
	// NoteAnswered: Asterisk answered the call (200 OK).
	NoteAnswered NoteKind = iota + 1
	// NoteRinging: ringback was indicated (POST /ring).
	NoteRinging
	// NoteRingStopped: ringback stopped (DELETE /ring).
	NoteRingStopped
	// NoteMusicOnHold: hold music started, of Class (POST /moh).
	NoteMusicOnHold
	// NoteMusicOnHoldStopped: hold music stopped (DELETE /moh).
	NoteMusicOnHoldStopped
	// NotePlaybackStarted: a prompt began: MediaURI, Language, PlaybackID.
	NotePlaybackStarted
	// NotePlaybackFinished: the playback ended; PlaybackState is "done"
	// or "failed".
	NotePlaybackFinished
	// NoteDTMF: a key reached the far end (POST /dtmf, or passed through
	// a bridge from another member): Digit.
	NoteDTMF
	// NoteBridged: the channel is in Bridge with the channels With; sent
	// again whenever the other members change.
	NoteBridged
	// NoteUnbridged: the channel left Bridge.
	NoteUnbridged
	// NoteHungUp: Asterisk hung up the call with the Q.850 Cause.
	NoteHungUp
	// NoteDropped: the call vanished without a hang-up: Asterisk restarted
	// or the double was closed.
	NoteDropped
)

var noteNames = map[NoteKind]string{
	NoteAnswered:           "answered",
	NoteRinging:            "ringing",
	NoteRingStopped:        "ring stopped",
	NoteMusicOnHold:        "music on hold",
	NoteMusicOnHoldStopped: "music on hold stopped",
	NotePlaybackStarted:    "playback started",
	NotePlaybackFinished:   "playback finished",
	NoteDTMF:               "DTMF",
	NoteBridged:            "bridged",
	NoteUnbridged:          "unbridged",
	NoteHungUp:             "hung up",
	NoteDropped:            "dropped",
}

func (k NoteKind) String() string {
	if n, ok := noteNames[k]; ok {
		return n
	}
	return fmt.Sprintf("NoteKind(%d)", int(k))
}

// Note is one thing a far end experienced; which fields are set depends
// on Kind.
type Note struct {
	Kind          NoteKind
	MediaURI      string   // playback notes
	Language      string   // playback notes
	PlaybackID    string   // playback notes
	PlaybackState string   // NotePlaybackFinished: "done" or "failed"
	Digit         rune     // NoteDTMF
	Bridge        string   // NoteBridged, NoteUnbridged: the bridge id
	With          []string // NoteBridged: the other members' channel ids
	Class         string   // NoteMusicOnHold: the music class
	Cause         int      // NoteHungUp: the Q.850 cause
}

// noteBuffer bounds the notes a far end keeps unread; a test reads them
// long before. Past it notes are dropped, and logged.
const noteBuffer = 1024

// Party is one channel seen from its far end: the caller of an inbound
// call, or the phone an originate reached. Its methods are safe for
// concurrent use and do nothing once the channel is gone.
type Party struct {
	s     *Server
	id    string
	notes chan Note
	done  chan struct{}
	ended bool // guarded by s.mu
}

func newParty(s *Server, id string) *Party {
	return &Party{s: s, id: id, notes: make(chan Note, noteBuffer), done: make(chan struct{})}
}

// ID is the channel's id, as ARI knows it.
func (p *Party) ID() string { return p.id }

// Notes reports what the far end experiences, in order. It is closed
// after the last note, when the channel is gone.
func (p *Party) Notes() <-chan Note { return p.notes }

// Done is closed when the channel is gone.
func (p *Party) Done() <-chan struct{} { return p.done }

// Press sends one key as RFC 4733 telephone events. The end of an event
// is sent three times (RFC 4733 section 2.5.1.4); Asterisk reports the key
// once, when it ends.
func (p *Party) Press(digit rune) {
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch := s.channels[p.id]; ch != nil && ch.party == p {
		s.pressLocked(ch, digit)
	}
}

// Shows is the name and number the far end's phone shows for the party
// it is connected to: the caller id presented when the call was placed,
// and whatever connected line updates Asterisk sent since (a PJSIP
// channel sends each one as a re-INVITE or UPDATE). Empty once the
// channel is gone.
func (p *Party) Shows() (name, number string) {
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch := s.channels[p.id]; ch != nil && ch.party == p {
		return ch.connected.Name, ch.connected.Number
	}
	return "", ""
}

// Hangup is the far end hanging up (a BYE).
func (p *Party) Hangup() {
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch := s.channels[p.id]; ch != nil && ch.party == p {
		s.hangupLocked(ch, hangup{farEnd: true, cause: 16})
	}
}

// Media is a far end's RTP as Asterisk's RTP engine counts it, which
// Asterisk reports in the channel's RTPAUDIOQOS variables when it hangs
// up. The double carries no audio: a test says what Asterisk counted.
type Media struct {
	// Received is how many of the far end's packets reached Asterisk, and
	// Lost how many went missing on the way (gaps in their sequence
	// numbers).
	Received, Lost uint32
	// Jitter is Asterisk's interarrival jitter of them (RFC 3550 A.8).
	Jitter time.Duration
	// Report, when set, is the far end's last RTCP receiver report on
	// Asterisk's RTP.
	Report *Report
}

// Report is what a far end's RTCP receiver report said of Asterisk's RTP.
type Report struct {
	Lost   uint32        // Asterisk's packets it lost, all told
	Jitter time.Duration // its interarrival jitter of them
	// RTT is the round trip Asterisk worked out from the report, which
	// it does when the report answers a sender report of its own; 0
	// otherwise.
	RTT time.Duration
}

// SendMedia is the far end streaming audio that Asterisk counts as m says:
// its packets add to those counted so far (each key the far end presses
// is 10 more, the recorded RFC 4733 capture's), and its jitter and report
// are the latest. A PJSIP channel reports them when it hangs up; a Local
// channel has no RTP and ignores them.
func (p *Party) SendMedia(m Media) {
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channels[p.id]
	if ch == nil || ch.party != p || !ch.rtp {
		return
	}
	ch.receiveLocked(m.Received, m.Lost)
	ch.rxJitter, ch.streamed = m.Jitter, true
	if m.Report != nil {
		r := *m.Report
		ch.report = &r
	}
}

// noteLocked tells the far end something; p may be nil (a channel with
// no far end, such as a Local channel's ;2 half).
func (p *Party) noteLocked(n Note) {
	if p == nil || p.ended {
		return
	}
	select {
	case p.notes <- n:
	default:
		p.s.logf("far end of %s did not read its notes; dropped %v", p.id, n.Kind)
	}
}

// finishLocked ends the far end's view of the call, with a last note when
// final has a kind.
func (p *Party) finishLocked(final Note) {
	if p == nil || p.ended {
		return
	}
	if final.Kind != 0 {
		p.noteLocked(final)
	}
	p.ended = true
	close(p.notes)
	close(p.done)
}

// Phone is how an endpoint that originate reaches behaves.
type Phone struct {
	// AnswerAfter is how long it rings before it answers (or rejects the
	// call, when Busy).
	AnswerAfter time.Duration
	// Busy rejects the call with 486 Busy Here after AnswerAfter, without
	// ringing first (a phone already on a call).
	Busy bool
	// Declines rings (180) and after AnswerAfter rejects the call with 486
	// Busy Here: an agent declining the offer, as a real Asterisk 22
	// reports it for baresip's hang-up of a ringing call.
	Declines bool
	// NoAnswer rings until the originate's timeout.
	NoAnswer bool
	// Offline shows the endpoint offline (GET /endpoints): no contact
	// registered, or its qualify failing.
	Offline bool
	// Refuses, when set, is the final SIP status the far end answers
	// after ringing for AnswerAfter (603 Decline, 503 Service
	// Unavailable...): a carrier's refusal, mapped to a Q.850 cause as
	// chan_pjsip maps it.
	Refuses int
	// Context is the endpoint's dialplan context; it defaults to
	// "from-trunk", the recorded endpoint's.
	Context string
	// Rung, when set, receives the far end of each call that reaches the
	// endpoint, as the call is placed (before it rings, answers or is
	// refused). The double never waits for the reader: give it room for
	// every call the test places.
	Rung chan<- *Party
	// CallerID is the endpoint's callerid (pjsip.conf), such as
	// `"Agent 1001" <1001>`: the originated channel's caller id where
	// originate's callerId gives no name or number.
	CallerID string
}

// Inbound places a call from the trunk (endpoint PJSIP/citizen) to exten;
// the dialplan (context from-trunk, priority 2) runs Stasis(app). callerID
// is a number or `"Name" <number>`. The application receives StasisStart
// with state Ring and no arguments. With no socket holding app, Stasis()
// fails, the call goes on to Hangup, no channel stays and ErrStasisFailed
// is returned.
func (s *Server) Inbound(ctx context.Context, app, callerID, exten string) (*Party, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if a := s.apps[app]; a == nil || a.socket == nil {
		return nil, ErrStasisFailed
	}
	ch := s.newChannelLocked("", kindInbound)
	ch.name = s.pjsipNameLocked(trunkEndpoint)
	ch.dialstring = trunkEndpoint
	ch.endpoint = "PJSIP/" + trunkEndpoint
	ch.state = "Ring"
	// The SIP Call-ID as sipp writes it: call number, process id, address.
	ch.protocolID = fmt.Sprintf("1-%d@127.0.0.1", 30000+ch.seq)
	ch.caller = parseCallerID(callerID)
	ch.dialplan = dialplanCEP{Context: "from-trunk", Exten: exten, Priority: 2, AppName: "Stasis", AppData: app}
	ch.app = app
	ch.args = []string{}
	ch.control = true
	ch.inStasis = true
	ch.rtp = true
	ch.ssrc = newSSRC()
	ch.party = newParty(s, ch.id)
	s.emitStasisLocked("StasisStart", ch, ch.args)
	s.subscribeLocked(app, ch)
	return ch.party, nil
}
