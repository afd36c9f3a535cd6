package caller

import (
	"testing"

	"github.com/pion/rtp"

	"github.com/hotline12345/hotline/media/dtmf"
)

const (
	audioPT = 0
	eventPT = 101
)

// ticks runs a source for n ticks.
func ticks(src *rtpSource, n int) []rtp.Packet {
	pkts := make([]rtp.Packet, n)
	for i := range pkts {
		pkts[i] = src.next(audioPT)
	}
	return pkts
}

// The stream is one packet per tick with consecutive sequence numbers and
// one SSRC; the audio's timestamps follow the 20 ms clock through events.
func TestSourceClock(t *testing.T) {
	keys := newKeyQueue()
	src := newRTPSource(pcmu, eventPT, false, keys)
	pkts := ticks(src, 10)
	keys.push("5")
	pkts = append(pkts, ticks(src, 30)...)
	first := pkts[0]
	if !first.Marker {
		t.Error("first packet without the marker bit (RFC 3551 §4.1: it starts a talkspurt)")
	}
	for i, p := range pkts {
		if p.SSRC != first.SSRC || p.SequenceNumber != first.SequenceNumber+uint16(i) {
			t.Fatalf("packet %d: ssrc %x seq %d, want %x %d", i, p.SSRC, p.SequenceNumber, first.SSRC, first.SequenceNumber+uint16(i))
		}
		if p.PayloadType == audioPT {
			if want := first.Timestamp + uint32(i*frameSamples); p.Timestamp != want {
				t.Errorf("audio packet %d at timestamp %d, want %d: the clock must run on through events", i, p.Timestamp, want)
			}
			if len(p.Payload) != frameSamples {
				t.Errorf("audio packet %d carries %d bytes", i, len(p.Payload))
			}
		}
	}
	src.skip()
	if p := src.next(audioPT); p.Timestamp != first.Timestamp+uint32((len(pkts)+1)*frameSamples) || p.SequenceNumber != first.SequenceNumber+uint16(len(pkts)) {
		t.Errorf("after a skipped tick: timestamp %d seq %d; the clock moves, the sequence does not", p.Timestamp, p.SequenceNumber)
	}
}

// Each press is one RFC 4733 event: its packets share the event's start as
// timestamp, the first has the marker, durations grow, the end packet goes
// three times; a second press of the same key is a new event. The hotline's
// own tracker must count exactly the keys pressed (diago#21, #31).
func TestSourceEvents(t *testing.T) {
	keys := newKeyQueue()
	src := newRTPSource(pcma, eventPT, false, keys)
	keys.push("1")
	keys.push("1#")
	pkts := ticks(src, 3*(eventTicks+eventGapTicks)+5)

	type event struct {
		ts        uint32
		packets   int
		ends      int
		durations []uint16
		marker    int
	}
	var events []*event
	var tracker dtmf.EventTracker
	var got []rune
	for i, p := range pkts {
		if p.PayloadType != eventPT {
			continue
		}
		ev, err := dtmf.DecodeEvent(p.Payload)
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if len(events) == 0 || events[len(events)-1].ts != p.Timestamp {
			events = append(events, &event{ts: p.Timestamp})
		}
		e := events[len(events)-1]
		e.packets++
		e.durations = append(e.durations, ev.Duration)
		if ev.End {
			e.ends++
		}
		if p.Marker {
			e.marker++
			if e.packets != 1 {
				t.Errorf("event at %d: marker on packet %d, want the first only", e.ts, e.packets)
			}
		}
		if ev.Volume != eventVolume {
			t.Errorf("volume %d, want %d", ev.Volume, eventVolume)
		}
		if k, ok := tracker.Observe(p.Timestamp, ev); ok {
			got = append(got, k)
		}
	}
	if string(got) != "11#" {
		t.Errorf("the hotline's tracker counts %q, want %q", string(got), "11#")
	}
	if len(events) != 3 {
		t.Fatalf("%d events, want 3", len(events))
	}
	for _, e := range events {
		if e.packets != eventTicks+endRepeats || e.ends != 1+endRepeats || e.marker != 1 {
			t.Errorf("event at %d: %d packets, %d end packets, %d marked; want %d, %d, 1", e.ts, e.packets, e.ends, e.marker, eventTicks+endRepeats, 1+endRepeats)
		}
		for i := 1; i < len(e.durations); i++ {
			if e.durations[i] < e.durations[i-1] {
				t.Errorf("event at %d: durations %v shrink", e.ts, e.durations)
			}
		}
		if last := e.durations[len(e.durations)-1]; last != eventTicks*frameSamples {
			t.Errorf("event at %d lasts %d units, want %d (100 ms)", e.ts, last, eventTicks*frameSamples)
		}
	}
	if events[0].ts == events[1].ts {
		t.Error("two presses of 1 share a timestamp: they would count once")
	}
}

// In-band keys are real tones that the hotline's detector hears, with no
// telephone-event packets, and the pauses between them let a key pressed
// twice count twice.
func TestSourceInband(t *testing.T) {
	for _, l := range laws {
		t.Run(l.name, func(t *testing.T) {
			keys := newKeyQueue()
			src := newRTPSource(l, -1, true, keys)
			keys.push("1")
			keys.push("1*9")
			pkts := ticks(src, 5*(toneTicks+toneGapTicks)+10)
			det := dtmf.NewDetector()
			var got []rune
			pcm := make([]int16, frameSamples)
			for _, p := range pkts {
				if p.PayloadType != audioPT {
					t.Fatalf("payload type %d in an in-band stream", p.PayloadType)
				}
				for i, b := range p.Payload {
					pcm[i] = l.decode(b)
				}
				det.Process(pcm, func(k rune) { got = append(got, k) })
			}
			if string(got) != "11*9" {
				t.Errorf("the hotline's detector hears %q, want %q", string(got), "11*9")
			}
		})
	}
}

// With keys sent by INFO the stream is silence throughout.
func TestSourceSilence(t *testing.T) {
	src := newRTPSource(pcmu, eventPT, false, newKeyQueue())
	silence := string(pcmu.silence())
	for i, p := range ticks(src, 100) {
		if p.PayloadType != audioPT || string(p.Payload) != silence {
			t.Fatalf("packet %d is not silence", i)
		}
	}
}
