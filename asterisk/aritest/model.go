package aritest

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"
)

// timeFormat is how Asterisk writes every timestamp: milliseconds and an
// offset without a colon (ari.DateFormat in CyCoreSystems/ari).
const timeFormat = "2006-01-02T15:04:05.000-0700"

// stamp formats t as Asterisk does, in UTC as the recorded server ran.
func stamp(t time.Time) string { return t.UTC().Format(timeFormat) }

// callerID is the CallerID model of channels.json.
type callerID struct {
	Name   string `json:"name"`
	Number string `json:"number"`
}

// parseCallerID reads a caller id the way Asterisk's ast_callerid_parse
// does for the callerId parameter: `"Name" <number>`, `Name <number>`,
// `<number>` or a bare number.
func parseCallerID(s string) callerID {
	s = strings.TrimSpace(s)
	open := strings.LastIndexByte(s, '<')
	if open < 0 || !strings.HasSuffix(s, ">") {
		return callerID{Number: s}
	}
	name := strings.TrimSpace(s[:open])
	name = strings.TrimSuffix(strings.TrimPrefix(name, `"`), `"`)
	return callerID{Name: name, Number: strings.TrimSpace(s[open+1 : len(s)-1])}
}

// dialplanCEP is the DialplanCEP model: where the channel is in the
// dialplan.
type dialplanCEP struct {
	Context  string `json:"context"`
	Exten    string `json:"exten"`
	Priority int    `json:"priority"`
	AppName  string `json:"app_name"`
	AppData  string `json:"app_data"`
}

// channelJSON is the Channel model, fields in the order Asterisk writes
// them.
type channelJSON struct {
	ID           string      `json:"id"`
	Name         string      `json:"name"`
	State        string      `json:"state"`
	ProtocolID   string      `json:"protocol_id"`
	Caller       callerID    `json:"caller"`
	Connected    callerID    `json:"connected"`
	Accountcode  string      `json:"accountcode"`
	Dialplan     dialplanCEP `json:"dialplan"`
	Creationtime string      `json:"creationtime"`
	Language     string      `json:"language"`
}

// bridgeJSON is the Bridge model.
type bridgeJSON struct {
	ID           string   `json:"id"`
	Technology   string   `json:"technology"`
	BridgeType   string   `json:"bridge_type"`
	BridgeClass  string   `json:"bridge_class"`
	Creator      string   `json:"creator"`
	Name         string   `json:"name"`
	Channels     []string `json:"channels"`
	Creationtime string   `json:"creationtime"`
	VideoMode    string   `json:"video_mode"`
}

// playbackJSON is the Playback model; next_media_uri is present only while
// a list of media has items left.
type playbackJSON struct {
	ID           string `json:"id"`
	MediaURI     string `json:"media_uri"`
	NextMediaURI string `json:"next_media_uri,omitempty"`
	TargetURI    string `json:"target_uri"`
	Language     string `json:"language"`
	State        string `json:"state"`
}

// applicationJSON is the Application model of applications.json.
type applicationJSON struct {
	Name             string           `json:"name"`
	ChannelIDs       []string         `json:"channel_ids"`
	BridgeIDs        []string         `json:"bridge_ids"`
	EndpointIDs      []string         `json:"endpoint_ids"`
	DeviceNames      []string         `json:"device_names"`
	EventsAllowed    []map[string]any `json:"events_allowed"`
	EventsDisallowed []map[string]any `json:"events_disallowed"`
}

// endpointJSON is the Endpoint model.
type endpointJSON struct {
	Technology string   `json:"technology"`
	Resource   string   `json:"resource"`
	State      string   `json:"state"`
	ChannelIDs []string `json:"channel_ids"`
}

// messageJSON is Asterisk's usual error body.
type messageJSON struct {
	Message string `json:"message"`
}

// allocationJSON is the one error body with another key: an originate
// whose channel cannot be created (recorded for PJSIP/no-such-endpoint and
// Bogus/xyz).
type allocationJSON struct {
	Error string `json:"error"`
}

// marshal encodes v compactly without HTML escaping, as Asterisk's jansson
// output (pretty=no) is.
func marshal(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Every value marshalled here is built from strings, numbers and
		// slices of them; failing is a bug in the double.
		panic("aritest: marshal: " + err.Error())
	}
	return bytes.TrimRight(b.Bytes(), "\n")
}

// causeText is ast_cause2str for the Q.850 causes the double produces.
var causeText = map[int]string{
	1:   "Unallocated (unassigned) number",
	16:  "Normal Clearing",
	17:  "User busy",
	18:  "No user responding",
	19:  "User alerting, no answer",
	21:  "Call Rejected",
	26:  "Answered elsewhere",
	28:  "Invalid number format (addressing incomplete)",
	31:  "Normal, unspecified",
	34:  "Circuit/channel congestion",
	38:  "Network out of order",
	58:  "Bearer capability not available",
	127: "Interworking, unspecified",
}

// causeString names a Q.850 cause (ITU-T Q.850 table 1) as Asterisk does.
func causeString(cause int) string {
	if t, ok := causeText[cause]; ok {
		return t
	}
	return "Unknown"
}

// hangupReasons maps DELETE /channels' reason parameter to the Q.850 cause
// Asterisk's convert_reason_to_hangup_code gives it.
var hangupReasons = map[string]int{
	"normal":             16,
	"busy":               17,
	"congestion":         34,
	"no_answer":          19,
	"timeout":            18,
	"rejected":           21,
	"unallocated":        1,
	"normal_unspecified": 31,
	"number_incomplete":  28,
	"codec_mismatch":     58,
	"interworking":       127,
	"failure":            38,
	"answered_elsewhere": 26,
}

// atoi reads an integer the way C's atoi does: optional blanks and sign,
// leading digits, anything else ignored, 0 when there are none. Asterisk
// parses integer parameters with it, so "between=not-a-number" is 0.
func atoi(s string) int {
	s = strings.TrimLeft(s, " \t\n")
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
		if n > 1<<31 {
			break
		}
	}
	if neg {
		return -n
	}
	return n
}

// astTrue is Asterisk's ast_true: the words it takes for yes.
func astTrue(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "yes", "true", "y", "t", "1", "on":
		return true
	}
	return false
}
