package dtmf

import (
	"bytes"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
)

func TestDecodeEvent(t *testing.T) {
	tests := []struct {
		name    string
		payload []byte
		want    Event
	}{
		{"start of 1 as sipp sends it", []byte{0x01, 0x0a, 0x00, 0x00}, Event{Key: '1', Volume: 10}},
		{"end of #", []byte{0x0b, 0x8a, 0x08, 0xc0}, Event{Key: '#', End: true, Volume: 10, Duration: 2240}},
		{"star", []byte{0x0a, 0x00, 0x01, 0x40}, Event{Key: '*', Duration: 320}},
		{"D, quietest volume, longest duration", []byte{0x0f, 0xbf, 0xff, 0xff}, Event{Key: 'D', End: true, Volume: 63, Duration: 0xffff}},
		{"reserved bit ignored (§2.3.3)", []byte{0x05, 0x4a, 0x00, 0xa0}, Event{Key: '5', Volume: 10, Duration: 160}},
		{"trailing bytes after the first event", []byte{0x09, 0x0a, 0x00, 0xa0, 0x0c, 0x8a, 0x01, 0x40}, Event{Key: '9', Volume: 10, Duration: 160}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeEvent(tt.payload)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("DecodeEvent(% x) = %+v, want %+v", tt.payload, got, tt.want)
			}
		})
	}
}

func TestDecodeEventRejects(t *testing.T) {
	for _, payload := range [][]byte{
		nil,
		{},
		{0x01},
		{0x01, 0x0a, 0x00},
		{16, 0x0a, 0x00, 0xa0},  // flash, an RFC 4734 line event
		{32, 0x0a, 0x00, 0xa0},  // fax tone (RFC 4734)
		{255, 0x8a, 0x00, 0xa0}, // not assigned
	} {
		ev, err := DecodeEvent(payload)
		if !errors.Is(err, ErrBadEvent) {
			t.Errorf("DecodeEvent(% x) = %+v, %v; want ErrBadEvent", payload, ev, err)
		}
	}
}

func TestEventMarshal(t *testing.T) {
	for code, key := range eventKeys {
		ev := Event{Key: key, End: code%2 == 0, Volume: uint8(code), Duration: uint16(code) * 160}
		b := ev.Marshal()
		want := []byte{byte(code), byte(code), byte(code * 160 >> 8), byte(code * 160)}
		if ev.End {
			want[1] |= 0x80
		}
		if !bytes.Equal(b, want) {
			t.Errorf("%+v.Marshal() = % x, want % x", ev, b, want)
		}
		back, err := DecodeEvent(b)
		if err != nil || back != ev {
			t.Errorf("DecodeEvent(%+v.Marshal()) = %+v, %v", ev, back, err)
		}
	}
	if b := (Event{Key: '3', Volume: 200}).Marshal(); b[1] != maxVolume {
		t.Errorf("volume 200 marshals as %d, want %d", b[1], maxVolume)
	}
	for _, key := range []rune{'E', 'a', ' ', 0, '十'} {
		if b := (Event{Key: key}).Marshal(); b != nil {
			t.Errorf("Event{Key: %q}.Marshal() = % x, want nil", key, b)
		}
	}
}

func TestKeyCode(t *testing.T) {
	want := map[rune]uint8{
		'0': 0, '1': 1, '2': 2, '3': 3, '4': 4, '5': 5, '6': 6, '7': 7, '8': 8, '9': 9,
		'*': 10, '#': 11, 'A': 12, 'B': 13, 'C': 14, 'D': 15,
	}
	for key, code := range want {
		if got, ok := KeyCode(key); !ok || got != code {
			t.Errorf("KeyCode(%q) = %d, %v; want %d", key, got, ok, code)
		}
	}
	for _, key := range []rune{'E', 'a', 'd', 'F', '+', ' ', 0, '一'} {
		if got, ok := KeyCode(key); ok {
			t.Errorf("KeyCode(%q) = %d, true; want false", key, got)
		}
	}
}

// eventPacket is one telephone-event packet as the tracker sees it.
type eventPacket struct {
	timestamp uint32
	event     Event
}

// captureKey names the key of a sipp capture from its file name.
func captureKey(path string) rune {
	name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(path), "dtmf_2833_"), ".pcap")
	switch name {
	case "star":
		return '*'
	case "pound":
		return '#'
	}
	return rune(name[0])
}

// captures returns the telephone-event packets of each RFC 2833 capture that
// sipp ships, by key.
func captures(t *testing.T) map[rune][]eventPacket {
	t.Helper()
	files, err := filepath.Glob("/usr/share/sip-tester/dtmf_2833_*.pcap")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 12 {
		t.Fatalf("found %d sipp DTMF captures in /usr/share/sip-tester, want 12 (package sip-tester)", len(files))
	}
	out := make(map[rune][]eventPacket)
	for _, f := range files {
		key := captureKey(f)
		for _, p := range readRTPCapture(t, f) {
			out[key] = append(out[key], toEventPacket(t, p))
		}
		if len(out[key]) == 0 {
			t.Fatalf("%s holds no packets", f)
		}
	}
	return out
}

func toEventPacket(t *testing.T, p rtp.Packet) eventPacket {
	t.Helper()
	ev, err := DecodeEvent(p.Payload)
	if err != nil {
		t.Fatalf("packet %d: %v", p.SequenceNumber, err)
	}
	return eventPacket{p.Timestamp, ev}
}

// observeAll feeds packets to tracker and returns the keys it reports.
func observeAll(tracker *EventTracker, packets []eventPacket) string {
	var keys []rune
	for _, p := range packets {
		if key, ok := tracker.Observe(p.timestamp, p.event); ok {
			keys = append(keys, key)
		}
	}
	return string(keys)
}

// shifted returns packets moved to start dt timestamp units later, as the
// same press made again.
func shifted(packets []eventPacket, dt uint32) []eventPacket {
	out := slices.Clone(packets)
	for i := range out {
		out[i].timestamp += dt
	}
	return out
}

func endPackets(packets []eventPacket) (ends, others []eventPacket) {
	for _, p := range packets {
		if p.event.End {
			ends = append(ends, p)
		} else {
			others = append(others, p)
		}
	}
	return ends, others
}

func TestEventTrackerCaptures(t *testing.T) {
	for key, packets := range captures(t) {
		ends, updates := endPackets(packets)
		if len(ends) == 0 || len(updates) == 0 {
			t.Fatalf("capture of %q: %d end and %d other packets", key, len(ends), len(updates))
		}
		// The same press made again after a 100 ms pause, in 8 kHz units.
		again := shifted(packets, uint32(ends[0].event.Duration)+800)
		variants := []struct {
			name    string
			packets []eventPacket
			want    string
		}{
			{"as captured", packets, string(key)},
			{"every packet twice", interleave(packets, packets), string(key)},
			{"end packets before the last updates", slices.Concat(updates[:len(updates)-2], ends, updates[len(updates)-2:]), string(key)},
			{"end packets reversed and repeated", slices.Concat(updates, ends, reversed(ends)), string(key)},
			{"start lost: only end packets", ends, string(key)},
			{"start and updates lost: one late update after the ends", slices.Concat(ends, updates[len(updates)-1:]), string(key)},
			{"pressed twice", slices.Concat(packets, again), string(key) + string(key)},
			{"pressed twice, first press's ends late", slices.Concat(updates, again[:2], ends, again[2:]), string(key) + string(key)},
			{"pressed twice, all end packets of the first lost", slices.Concat(updates, again), string(key) + string(key)},
		}
		for _, v := range variants {
			var tracker EventTracker
			if got := observeAll(&tracker, v.packets); got != v.want {
				t.Errorf("capture of %q, %s: reported %q, want %q", key, v.name, got, v.want)
			}
		}
	}
}

func reversed(packets []eventPacket) []eventPacket {
	out := slices.Clone(packets)
	slices.Reverse(out)
	return out
}

// interleave returns a[0], b[0], a[1], b[1], ...
func interleave(a, b []eventPacket) []eventPacket {
	var out []eventPacket
	for i := range a {
		out = append(out, a[i], b[i])
	}
	return out
}

func TestEventTrackerDialledNumber(t *testing.T) {
	// A caller dials an appeal number, 12 digits with repeats, one
	// capture's packets per digit, each press 100 ms after the last ended.
	byKey := captures(t)
	const number = "1234500098#*"
	var stream []eventPacket
	start := uint32(0xffff_0000) // near the top, so the timestamps wrap
	for _, key := range number {
		packets := byKey[key]
		ends, _ := endPackets(packets)
		stream = append(stream, shifted(packets, start-packets[0].timestamp)...)
		start += uint32(ends[0].event.Duration) + 800
	}
	var tracker EventTracker
	if got := observeAll(&tracker, stream); got != number {
		t.Errorf("reported %q, want %q", got, number)
	}
}

func TestEventTrackerLongPress(t *testing.T) {
	// A key held for 20 s at 8 kHz spans three segments (RFC 4733
	// §2.5.1.3): the last packet of a segment reports 0xFFFF, and the next
	// segment's timestamp is where that duration was reached.
	const ts0, segment = 1000, 0xffff
	var packets []eventPacket
	prevSeg := uint32(0)
	for elapsed := uint32(0); elapsed <= 20*SampleRate; elapsed += 160 {
		seg := elapsed / segment
		if seg != prevSeg {
			packets = append(packets, eventPacket{ts0 + prevSeg*segment, Event{Key: '0', Volume: 10, Duration: segment}})
			prevSeg = seg
		}
		packets = append(packets, eventPacket{ts0 + seg*segment, Event{Key: '0', Volume: 10, Duration: uint16(elapsed - seg*segment)}})
	}
	if prevSeg != 2 {
		t.Fatalf("test stream ends in segment %d, want 2", prevSeg)
	}
	last := packets[len(packets)-1]
	last.event.End = true
	packets = append(packets, last, last, last)

	var tracker EventTracker
	if got := observeAll(&tracker, packets); got != "0" {
		t.Errorf("held key reported %q, want %q", got, "0")
	}

	// Losing the last three packets before each segment boundary does not
	// split the press either.
	var lossy []eventPacket
	for _, p := range packets {
		if p.timestamp == ts0+2*segment || p.event.Duration <= segment-3*160 {
			lossy = append(lossy, p)
		}
	}
	if len(lossy) >= len(packets)-4 {
		t.Fatalf("lost only %d packets", len(packets)-len(lossy))
	}
	tracker = EventTracker{}
	if got := observeAll(&tracker, lossy); got != "0" {
		t.Errorf("held key with packets lost at the boundaries reported %q, want %q", got, "0")
	}

	// A short press followed, after its end packets were all lost, by a
	// press of the same key is two presses: only a segment that reached
	// (nearly) 0xFFFF continues.
	tracker = EventTracker{}
	short := []eventPacket{
		{5000, Event{Key: '0', Duration: 0}},
		{5000, Event{Key: '0', Duration: 800}},
		{5000 + 1600, Event{Key: '0', Duration: 0}},
		{5000 + 1600, Event{Key: '0', Duration: 800, End: true}},
	}
	if got := observeAll(&tracker, short); got != "00" {
		t.Errorf("two short presses reported %q, want %q", got, "00")
	}
}

func TestEventTrackerNewTimestampIsNewPress(t *testing.T) {
	var tracker EventTracker
	steps := []struct {
		ts   uint32
		ev   Event
		want rune
	}{
		{100, Event{Key: '7'}, '7'},
		{100, Event{Key: '7', Duration: 400}, 0},
		{100, Event{Key: '7', Duration: 800, End: true}, 0},
		{100, Event{Key: '7', Duration: 800, End: true}, 0},
		// Another key at the same timestamp: a sender that does not
		// advance timestamps between events; still a press.
		{100, Event{Key: '8'}, '8'},
		{100, Event{Key: '8', End: true, Duration: 800}, 0},
		// The same key again, a new timestamp: a second press (diago#21).
		{2000, Event{Key: '7'}, '7'},
		{2000, Event{Key: '7', End: true, Duration: 800}, 0},
		{2000, Event{Key: '7', End: true, Duration: 800}, 0},
		// A late end packet of the first press is not a third.
		{100, Event{Key: '7', End: true, Duration: 800}, 0},
		{3600, Event{Key: '7', End: true, Duration: 800}, '7'},
	}
	for i, s := range steps {
		key, ok := tracker.Observe(s.ts, s.ev)
		if ok != (s.want != 0) || key != s.want {
			t.Errorf("step %d: Observe(%d, %+v) = %q, %v; want %q", i, s.ts, s.ev, key, ok, s.want)
		}
	}
}

// TestEventTrackerReusedTimestamp: a sender that replays one press (sipp
// replaying the same capture) reuses the RTP timestamp; a fresh start well
// after the end is a second press, a late packet right after it is not.
func TestEventTrackerReusedTimestamp(t *testing.T) {
	now := time.Unix(1000, 0)
	tr := EventTracker{Now: func() time.Time { return now }}
	press := func() (n int) {
		for _, ev := range []Event{
			{Key: '1', Duration: 160}, {Key: '1', Duration: 320},
			{Key: '1', End: true, Duration: 480}, {Key: '1', End: true, Duration: 480}, {Key: '1', End: true, Duration: 480},
		} {
			if _, ok := tr.Observe(5000, ev); ok {
				n++
			}
			now = now.Add(20 * time.Millisecond)
		}
		return n
	}
	if n := press(); n != 1 {
		t.Fatalf("first press reported %d times", n)
	}
	// A packet of the same press reordered behind its end packets.
	if _, ok := tr.Observe(5000, Event{Key: '1', Duration: 320}); ok {
		t.Fatal("a late packet of the press counted as a new press")
	}
	now = now.Add(time.Second)
	if n := press(); n != 1 {
		t.Fatalf("replayed press reported %d times, want 1", n)
	}
}
