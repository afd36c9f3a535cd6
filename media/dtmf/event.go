package dtmf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrBadEvent is returned for a telephone-event payload that is too short or
// carries an event other than the sixteen DTMF keys.
var ErrBadEvent = errors.New("dtmf: bad telephone-event payload")

// eventKeys lists the keys by RFC 4733 event code (§3.2, table 7): 0-9, then
// * (10), # (11), A-D (12-15).
const eventKeys = "0123456789*#ABCD"

// eventSize is the size of one event in the payload (RFC 4733 §2.3).
const eventSize = 4

// maxVolume is the largest volume field: 63, for −63 dBm0 (RFC 4733 §2.3.4).
const maxVolume = 0x3f

// Event is one RFC 4733 telephone-event payload (§2.3) carrying a DTMF key.
type Event struct {
	Key rune // '0'-'9', '*', '#', 'A'-'D'
	// End is the E bit: the event has ended, and Duration is its full length.
	End bool
	// Volume is the tone's power level in −dBm0, 0-63.
	Volume uint8
	// Duration is how long the event has lasted so far, in RTP timestamp
	// units, counted from the packet's RTP timestamp (the event's start).
	Duration uint16
}

// DecodeEvent decodes the first event of an RFC 4733 telephone-event payload.
// Payloads shorter than four bytes and event codes above 15 (the non-DTMF
// events of RFC 4734) are errors matching ErrBadEvent. The reserved bit is
// ignored, as §2.3.3 asks of receivers.
func DecodeEvent(payload []byte) (Event, error) {
	if len(payload) < eventSize {
		return Event{}, fmt.Errorf("%w: %d bytes, want %d", ErrBadEvent, len(payload), eventSize)
	}
	code := payload[0]
	if int(code) >= len(eventKeys) {
		return Event{}, fmt.Errorf("%w: event code %d is not a DTMF key", ErrBadEvent, code)
	}
	return Event{
		Key:      rune(eventKeys[code]),
		End:      payload[1]&0x80 != 0,
		Volume:   payload[1] & maxVolume,
		Duration: binary.BigEndian.Uint16(payload[2:4]),
	}, nil
}

// Marshal encodes e as a four-byte telephone-event payload, with a volume
// above 63 sent as 63. It returns nil if e.Key is not a DTMF key.
func (e Event) Marshal() []byte {
	code, ok := KeyCode(e.Key)
	if !ok {
		return nil
	}
	flags := min(e.Volume, maxVolume)
	if e.End {
		flags |= 0x80
	}
	b := []byte{code, flags, 0, 0}
	binary.BigEndian.PutUint16(b[2:], e.Duration)
	return b
}

// KeyCode returns the RFC 4733 event code of a DTMF key.
func KeyCode(key rune) (uint8, bool) {
	i := strings.IndexRune(eventKeys, key)
	if i < 0 {
		return 0, false
	}
	return uint8(i), true
}

// trackedEvents is how many recent events an EventTracker remembers: enough
// for late packets of the last few presses, which a jitter buffer may
// reorder behind the next press's first packets.
const trackedEvents = 8

// longEventSlack is how far short of 0xFFFF the last duration seen may fall
// for a new segment of a long event to be recognised as such (RFC 4733
// §2.5.1.3): the packets just before the segment boundary may be lost. 1600
// units is 200 ms at 8 kHz, ten packets at the usual 20 ms.
const longEventSlack = 1600

// EventTracker turns a stream of telephone-event packets into key presses,
// each reported once. All packets of one event carry the event's start as
// their RTP timestamp (RFC 4733 §2.3.5, §2.5.1.2), so the first packet seen
// with a new timestamp is a new press and every later one (updates, the end
// packet sent three times by §2.5.1.4, retransmissions) is not; pressing the
// same key again starts at a new timestamp and counts again.
//
// The zero value is ready to use. Use one tracker per RTP stream (SSRC); it
// is not safe for concurrent use.
type EventTracker struct {
	// Now is the clock used to tell a reused timestamp from a late packet;
	// nil means time.Now.
	Now func() time.Time

	recent [trackedEvents]trackedEvent
	next   int // slot for the next new event
	last   int // slot of the newest event, valid when recent[last].used
}

type trackedEvent struct {
	used      bool
	timestamp uint32
	key       rune
	ended     bool
	endedAt   time.Time // when the first end packet arrived
	duration  uint16    // the longest duration seen
}

// reuseGap is how long after an event ended a fresh (non-end) packet with the
// same timestamp must arrive to count as a new press: some senders (a
// replayed capture, a few gateways) reuse the timestamp, while a packet
// reordered behind the end packets arrives within milliseconds.
const reuseGap = 250 * time.Millisecond

// Observe takes one telephone-event packet's RTP timestamp and decoded
// payload and returns the key when the packet starts a new press.
//
// A press whose start packets were lost is reported on its first packet that
// arrives, even an end packet. A known timestamp with another key is a new
// press: some senders do not advance the timestamp between events. An event longer than 0xFFFF units continues
// in a new segment with a new timestamp (RFC 4733 §2.5.1.3); that segment is
// the same press and is not reported again.
func (t *EventTracker) Observe(rtpTimestamp uint32, ev Event) (key rune, ok bool) {
	now := time.Now
	if t.Now != nil {
		now = t.Now
	}
	for i := range t.recent {
		e := &t.recent[i]
		if !e.used || e.timestamp != rtpTimestamp || e.key != ev.Key {
			continue
		}
		if e.ended && !ev.End && now().Sub(e.endedAt) >= reuseGap {
			e.used = false // the sender reused the timestamp for a new press
			break
		}
		if ev.End && !e.ended {
			e.ended, e.endedAt = true, now()
		}
		e.duration = max(e.duration, ev.Duration)
		return 0, false
	}
	continued := t.continues(rtpTimestamp, ev)
	t.recent[t.next] = trackedEvent{
		used:      true,
		timestamp: rtpTimestamp,
		key:       ev.Key,
		ended:     ev.End,
		duration:  ev.Duration,
	}
	if ev.End {
		t.recent[t.next].endedAt = now()
	}
	t.last = t.next
	t.next = (t.next + 1) % trackedEvents
	if continued {
		return 0, false
	}
	return ev.Key, true
}

// continues reports whether a packet with a timestamp not seen before is a
// new segment of the newest event: same key, the newest event has not ended
// and has run to (nearly) the longest duration a segment can carry, and the
// new segment starts within it.
func (t *EventTracker) continues(rtpTimestamp uint32, ev Event) bool {
	prev := &t.recent[t.last]
	if !prev.used || prev.ended || prev.key != ev.Key {
		return false
	}
	start := rtpTimestamp - prev.timestamp // modulo 2³², as RTP timestamps wrap
	return prev.duration >= 0xFFFF-longEventSlack && start > 0 && start <= 0xFFFF
}
