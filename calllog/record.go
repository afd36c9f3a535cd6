// Package calllog keeps the record of every call: who called, when it was
// answered and ended, why it ended, and what was played and pressed. It owns
// the call-record keys in Redis.
package calllog

import "time"

// EndCause says why a call ended.
type EndCause string

// End causes.
const (
	CallerHangup EndCause = "caller_hangup" // the far end hung up or cancelled
	FlowFinished EndCause = "flow_finished" // the flow ran to its end and hung up
	MediaTimeout EndCause = "media_timeout" // no RTP for the media timeout
	Error        EndCause = "error"         // a failure inside hotline
	Shutdown     EndCause = "shutdown"      // the server stopped before the call ended
	// NoAck: our answer was never acknowledged (RFC 3261 §13.3.1.4): no
	// caller was there to talk to, as with a flood of INVITEs from
	// addresses that do not answer.
	NoAck EndCause = "no_ack"
	// NodeLost: the hotline node holding the call stopped renewing its
	// liveness lease (it crashed, or lost Redis for longer than the
	// lease); another node, or its successor, ended the record.
	NodeLost EndCause = "node_lost"
)

// EndCauses lists every end cause, for metrics and the API's document.
var EndCauses = []EndCause{CallerHangup, FlowFinished, MediaTimeout, Error, Shutdown, NoAck, NodeLost}

// Event is one step of a call, in order: a prompt played, a digit received,
// or the flow entering a stage.
type Event struct {
	At      time.Time `json:"at"`
	Kind    string    `json:"kind"`              // "prompt", "digit", "stage"
	Prompt  string    `json:"prompt,omitempty"`  // prompt id
	Version string    `json:"version,omitempty"` // prompt version
	Lang    string    `json:"lang,omitempty"`
	Digit   string    `json:"digit,omitempty"`
	Method  string    `json:"method,omitempty"` // rfc4733, info, inband
	Stage   string    `json:"stage,omitempty"`
}

// Quality is one leg's call quality: what hotline received of the far
// end's RTP (RFC 3550 appendix A), what the far end reported of ours in
// RTCP, and an estimated MOS (ITU-T G.107's E-model). The embedded SIP
// backend measures it on its own media. The Asterisk backend fills it
// from the RTP statistics Asterisk leaves on the channel as it hangs up
// (the RTPAUDIOQOS variable, sent as a ChannelVarset event): there
// "received" is Asterisk's, and the loss is as Asterisk last counted it
// for an RTCP report of its own, every 5 s by default, so losses in a
// call's last seconds may be missing.
type Quality struct {
	PacketsReceived uint64  `json:"packets_received"`
	PacketsExpected uint64  `json:"packets_expected"`
	PacketsLost     int64   `json:"packets_lost"` // negative when duplicates outnumber losses
	LossRatio       float64 `json:"loss_ratio"`   // lost of expected, 0–1
	JitterMS        float64 `json:"jitter_ms"`    // interarrival jitter at the call's end
	// RTTMS is the round trip from the far end's RTCP, when it sent any
	// answering ours.
	RTTMS *float64 `json:"rtt_ms,omitempty"`
	// RemoteLossRatio and RemoteJitterMS are the far end's view of our
	// RTP, from its last report, when it sent one.
	RemoteLossRatio *float64 `json:"remote_loss_ratio,omitempty"`
	RemoteJitterMS  *float64 `json:"remote_jitter_ms,omitempty"`
	MOS             float64  `json:"mos"` // estimated, 1–4.5
}

// Record is one call.
type Record struct {
	ID         string     `json:"id"`
	SIPCallID  string     `json:"sip_call_id,omitempty"`
	Backend    string     `json:"backend"`
	Caller     string     `json:"caller" pii:"phone"` // masked for roles that do not need it (web)
	Dialled    string     `json:"dialled"`
	Codec      string     `json:"codec,omitempty"`
	Trunk      string     `json:"trunk,omitempty"` // the carrier's trunk the call came in on, if it did
	StartedAt  time.Time  `json:"started_at"`
	AnsweredAt *time.Time `json:"answered_at,omitempty"`
	EndedAt    *time.Time `json:"ended_at,omitempty"`
	EndCause   EndCause   `json:"end_cause,omitempty"`
	EndDetail  string     `json:"end_detail,omitempty"` // the error text, when there is one
	Stage      string     `json:"stage,omitempty"`      // where in the flow it ended
	Lang       string     `json:"lang,omitempty"`
	AppealID   string     `json:"appeal_id,omitempty"`
	// The way to an agent: when the call joined the queue, when the
	// answered offer was made, when the agent answered, who.
	QueuedAt        *time.Time `json:"queued_at,omitempty"`
	OfferedAt       *time.Time `json:"offered_at,omitempty"`
	AgentAnsweredAt *time.Time `json:"agent_answered_at,omitempty"`
	AgentID         string     `json:"agent_id,omitempty"`
	// Callback says the caller left the queue asking to be called back.
	Callback bool `json:"callback,omitempty"`
	// Rating is the verdict asked for after the conversation: praise,
	// bad_review, or none; empty when the caller was never asked.
	Rating string  `json:"rating,omitempty"`
	Events []Event `json:"events"`
	// Synthetic says the call was the synthetic probe's (hotline probe):
	// it ran intake and never reached the queue, and counts in no figure.
	Synthetic bool `json:"synthetic,omitempty"`
	// Quality is the citizen's leg's call quality, filled by the backend
	// when the call ends; nil when it had no media or the backend does not
	// measure it.
	Quality *Quality `json:"quality,omitempty"`

	// Node is the hotline node that held the call, Instance that node's
	// run (each start of a node is a new instance). While the call is in
	// progress its record is listed as the instance's, so that when the
	// instance is lost another node ends it (node_lost).
	Node     string `json:"node,omitempty"`
	Instance string `json:"node_instance,omitempty"`
}
