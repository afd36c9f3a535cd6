package aritest

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// matcher compares what Asterisk sent in the recording with what the
// double sends: the same keys and the same literal values, except ids,
// timestamps and counters, which must have the recorded format. Ids are
// mapped one to one: the first recorded channel id seen pairs with the
// double's, and every later use of either must agree.
type matcher struct {
	fwd  map[string]string // class + recorded → observed
	rev  map[string]string // class + observed → recorded
	ids  map[string]string // recorded id → observed id, any class, for paths
	errs []string
}

func newMatcher() *matcher {
	return &matcher{fwd: map[string]string{}, rev: map[string]string{}, ids: map[string]string{}}
}

func (m *matcher) errorf(format string, args ...any) {
	m.errs = append(m.errs, fmt.Sprintf(format, args...))
}

var (
	timestampRe = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d{4}$`)
	channelIDRe = regexp.MustCompile(`^\d+\.\d+$`)
	uuidRe      = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	sippCallRe  = regexp.MustCompile(`^\d+-\d+@\d+\.\d+\.\d+\.\d+$`)
	nameCountRe = regexp.MustCompile(`-[0-9a-f]{8}(;[12])?$`)
	digitsRe    = regexp.MustCompile(`\d+`)
)

// bind pairs a recorded id of a class with the double's, checking the
// pairing stays one to one.
func (m *matcher) bind(where, class, rec, obs string) {
	if o, ok := m.fwd[class+"\x00"+rec]; ok {
		if o != obs {
			m.errorf("%s: recorded %s %q was paired with %q, now with %q", where, class, rec, o, obs)
		}
		return
	}
	if r, ok := m.rev[class+"\x00"+obs]; ok {
		m.errorf("%s: %s %q was paired with recorded %q, now with %q", where, class, obs, r, rec)
		return
	}
	m.fwd[class+"\x00"+rec] = obs
	m.rev[class+"\x00"+obs] = rec
	if class == "channel" || class == "bridge" || class == "playback" {
		m.ids[rec] = obs
	}
}

// id checks an id's format and pairs it.
func (m *matcher) id(where, class, rec, obs string) {
	var re *regexp.Regexp
	switch class {
	case "channel":
		re = channelIDRe
	case "bridge", "playback":
		re = uuidRe
	case "callid":
		if uuidRe.MatchString(rec) {
			re = uuidRe
		} else {
			re = sippCallRe
		}
	case "channel name":
		// The same technology and endpoint (and Local half), any counter:
		// "PJSIP/citizen-0000001e", "Local/s@local-test-00000004;1".
		count := nameCountRe.FindString(rec)
		if count == "" {
			m.errorf("%s: recorded channel name %q has no counter", where, rec)
			return
		}
		prefix, half := strings.TrimSuffix(rec, count), count[len("-00000000"):]
		re = regexp.MustCompile("^" + regexp.QuoteMeta(prefix) + `-[0-9a-f]{8}` + regexp.QuoteMeta(half) + "$")
	}
	if re != nil && !re.MatchString(obs) {
		m.errorf("%s: %s %q does not look like the recorded %q", where, class, obs, rec)
		return
	}
	m.bind(where, class, rec, obs)
}

// objectKind tells a Channel, Bridge, Playback or Application object by
// its keys.
func objectKind(o map[string]any) string {
	switch {
	case o["dialplan"] != nil:
		return "channel"
	case o["bridge_type"] != nil:
		return "bridge"
	case o["media_uri"] != nil:
		return "playback"
	case o["channel_ids"] != nil && o["bridge_ids"] != nil:
		return "application"
	}
	return ""
}

// compare compares a recorded JSON value with the double's; key is the
// key it sits under and parent the recorded object holding it.
func (m *matcher) compare(where, key string, parent map[string]any, rec, obs any) {
	switch r := rec.(type) {
	case map[string]any:
		o, ok := obs.(map[string]any)
		if !ok {
			m.errorf("%s: got %s, want an object", where, show(obs))
			return
		}
		var missing, extra []string
		for k := range r {
			if _, ok := o[k]; !ok {
				missing = append(missing, k)
			}
		}
		for k := range o {
			if _, ok := r[k]; !ok {
				extra = append(extra, k)
			}
		}
		if len(missing)+len(extra) > 0 {
			slices.Sort(missing)
			slices.Sort(extra)
			m.errorf("%s: keys differ: missing %v, extra %v", where, missing, extra)
		}
		keys := make([]string, 0, len(r))
		for k := range r {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if ov, ok := o[k]; ok {
				m.field(where+"."+k, objectKind(r), k, r, r[k], ov)
			}
		}
	case []any:
		o, ok := obs.([]any)
		if !ok || len(o) != len(r) {
			m.errorf("%s: got %s, want %s", where, show(obs), show(rec))
			return
		}
		for i := range r {
			m.compare(fmt.Sprintf("%s[%d]", where, i), key, parent, r[i], o[i])
		}
	default:
		m.scalar(where, key, parent, rec, obs)
	}
}

// field compares one key of an object of the given kind.
func (m *matcher) field(where, kind, key string, parent map[string]any, rec, obs any) {
	switch {
	case key == "id" && (kind == "channel" || kind == "bridge" || kind == "playback"):
		m.strings(where, rec, obs, func(r, o string) { m.id(where, kind, r, o) })
	case key == "name" && kind == "channel":
		m.strings(where, rec, obs, func(r, o string) { m.id(where, "channel name", r, o) })
	default:
		m.compare(where, key, parent, rec, obs)
	}
}

// scalar compares a string, number or boolean by the rule for its key.
func (m *matcher) scalar(where, key string, parent map[string]any, rec, obs any) {
	variable, _ := parent["variable"].(string)
	switch {
	case key == "timestamp" || key == "creationtime":
		m.strings(where, rec, obs, func(_, o string) {
			if !timestampRe.MatchString(o) {
				m.errorf("%s: %q is not an Asterisk timestamp", where, o)
			}
		})
	case key == "protocol_id" || (key == "value" && variable == "BRIDGEPVTCALLID"):
		m.strings(where, rec, obs, func(r, o string) { m.maybeID(where, "callid", r, o) })
	case key == "value" && variable == "BRIDGEPEER":
		m.strings(where, rec, obs, func(r, o string) { m.maybeID(where, "channel name", r, o) })
	case key == "value" && strings.HasPrefix(variable, "RTPAUDIOQOS"):
		// RTP statistics: the same text with any numbers in it.
		m.strings(where, rec, obs, func(r, o string) {
			parts := digitsRe.Split(r, -1)
			for i := range parts {
				parts[i] = regexp.QuoteMeta(parts[i])
			}
			if !regexp.MustCompile("^" + strings.Join(parts, `\d+`) + "$").MatchString(o) {
				m.errorf("%s: %q is not shaped like %q", where, o, r)
			}
			if variable == "RTPAUDIOQOS" {
				m.rtpStats(where, r, o)
			}
		})
	case key == "channels" || key == "channel_ids":
		m.strings(where, rec, obs, func(r, o string) { m.id(where, "channel", r, o) })
	case key == "bridge_ids":
		m.strings(where, rec, obs, func(r, o string) { m.id(where, "bridge", r, o) })
	case key == "target_uri":
		m.strings(where, rec, obs, func(r, o string) {
			rid, rok := strings.CutPrefix(r, "channel:")
			oid, ook := strings.CutPrefix(o, "channel:")
			if !rok || !ook {
				m.errorf("%s: got %q, want %q", where, o, r)
				return
			}
			m.id(where, "channel", rid, oid)
		})
	case key == "duration_ms":
		// How long a key was held: 100 to 280 ms for RFC 4733 events.
		if d, ok := obs.(float64); !ok || d < 100 || d > 280 {
			m.errorf("%s: duration %s is not within 100..280 ms", where, show(obs))
		}
	default:
		if rec != obs {
			m.errorf("%s: got %s, want %s", where, show(obs), show(rec))
		}
	}
}

// maybeID pairs an id that may be empty: empty must stay empty.
func (m *matcher) maybeID(where, class, rec, obs string) {
	if rec == "" || obs == "" {
		if rec != obs {
			m.errorf("%s: got %q, want %q", where, obs, rec)
		}
		return
	}
	m.id(where, class, rec, obs)
}

func (m *matcher) strings(where string, rec, obs any, check func(r, o string)) {
	r, rok := rec.(string)
	o, ook := obs.(string)
	if !rok || !ook {
		m.errorf("%s: got %s, want %s", where, show(obs), show(rec))
		return
	}
	check(r, o)
}

// compareJSON compares two JSON texts.
func (m *matcher) compareJSON(where string, rec, obs []byte) {
	var r, o any
	if err := json.Unmarshal(rec, &r); err != nil {
		m.errorf("%s: the recording is not JSON: %v", where, err)
		return
	}
	if err := json.Unmarshal(obs, &o); err != nil {
		m.errorf("%s: the double sent no JSON (%v): %q", where, err, obs)
		return
	}
	m.compare(where, "", nil, r, o)
}

func show(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// rtpStats compares the figures of RTPAUDIOQOS that the far end's RTP
// decides: whether it sent any (themssrc), how many packets came
// (rxcount: 10 per key, the RFC 4733 capture's), and the jitters, round
// trip and report of a far end sending no audio and no RTCP (all 0). The
// SSRCs are random, txcount follows the timing, and lp and txmes are
// left: sipp's captures of two keys are numbered 445 apart, which
// Asterisk counts as 440 lost, where the double's far end numbers its
// packets on.
func (m *matcher) rtpStats(where, rec, obs string) {
	fields := func(v string) map[string]string {
		f := map[string]string{}
		for part := range strings.SplitSeq(v, ";") {
			if k, val, ok := strings.Cut(part, "="); ok {
				f[k] = val
			}
		}
		return f
	}
	r, o := fields(rec), fields(obs)
	if (r["themssrc"] == "0") != (o["themssrc"] == "0") {
		m.errorf("%s: themssrc %s, recorded %s: the far end's RTP differs", where, o["themssrc"], r["themssrc"])
	}
	for _, k := range []string{"rxcount", "rxjitter", "txjitter", "rlp", "rtt", "rxmes"} {
		if r[k] != o[k] {
			m.errorf("%s: RTPAUDIOQOS %s=%s, recorded %s", where, k, o[k], r[k])
		}
	}
}
