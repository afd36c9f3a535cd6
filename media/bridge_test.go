package media

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/hotline12345/hotline/media/dtmf"
)

// bridged is two rigs joined by a bridge; the test ticks each stream and
// reads what its peer gets.
type bridged struct {
	a, b *streamRig
	br   *Bridge
}

func newBridged(t *testing.T, codecA, codecB Codec, opts BridgeOptions) *bridged {
	t.Helper()
	a := newRig(t, func(c *StreamConfig) { c.Codec = codecA })
	b := newRig(t, func(c *StreamConfig) { c.Codec = codecB })
	br, err := Join(a.s, b.s, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(br.Close)
	return &bridged{a: a, b: b, br: br}
}

// frame is a frame of one repeated byte, so a payload says which frame it
// was; fill avoids the codecs' silence bytes.
func frame(fill byte) []byte { return bytes.Repeat([]byte{fill}, FrameSamples) }

// waitHeld waits until the jitter buffer feeding s holds n bytes: the
// receiver goroutine has taken the packets sent to the other stream.
func waitHeld(t *testing.T, s *Stream, n int) {
	t.Helper()
	waitBuffer(t, s, func(jb *jitterBuffer) bool { return jb.held == n })
}

// waitBuffer waits, bounded, until ok holds for the jitter buffer feeding s.
func waitBuffer(t *testing.T, s *Stream, ok func(*jitterBuffer) bool) {
	t.Helper()
	jb := s.source.Load().src.(*jitterBuffer)
	deadline := time.Now().Add(waitFor)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		jb.mu.Lock()
		done, held := ok(jb), jb.held
		jb.mu.Unlock()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("jitter buffer holds %d bytes, not what the test waits for", held)
		}
		<-tick.C
	}
}

func transcoded(from, to Codec, payload []byte) []byte {
	return to.Encode(nil, from.Decode(make([]int16, len(payload)), payload))
}

func TestBridgeCarriesAudioBothWays(t *testing.T) {
	for _, tc := range []struct{ a, b Codec }{{PCMU, PCMU}, {PCMU, PCMA}, {PCMA, PCMU}} {
		t.Run(tc.a.Name+" to "+tc.b.Name, func(t *testing.T) {
			x := newBridged(t, tc.a, tc.b, BridgeOptions{})
			to := x.a.s.LocalAddr()
			for i := range 3 {
				sendRTP(t, x.a.peer, to, tc.a.PayloadType, uint16(100+i), uint32(8000+i*FrameSamples), frame(byte(0x21+i)))
			}
			waitHeld(t, x.b.s, 3*FrameSamples)
			var first rtp.Packet
			for i := range 3 {
				x.b.tick()
				p := x.b.packet()
				if i == 0 {
					first = p
				}
				if p.PayloadType != tc.b.PayloadType {
					t.Fatalf("frame %d: payload type %d, want %d", i, p.PayloadType, tc.b.PayloadType)
				}
				if want := transcoded(tc.a, tc.b, frame(byte(0x21+i))); !bytes.Equal(p.Payload, want) {
					t.Errorf("frame %d: %x..., want %x...", i, p.Payload[:4], want[:4])
				}
				if p.Marker != (i == 0) {
					t.Errorf("frame %d: marker %v", i, p.Marker)
				}
			}
			// Dry: silence goes out in the stream's law, and the
			// timestamps and sequence numbers run on.
			x.b.tick()
			p := x.b.packet()
			if !bytes.Equal(p.Payload, bytes.Repeat([]byte{tc.b.Silence()}, FrameSamples)) {
				t.Errorf("underrun: not silence")
			}
			if p.Marker || p.SequenceNumber != first.SequenceNumber+3 || p.Timestamp != first.Timestamp+3*FrameSamples {
				t.Errorf("underrun: marker %v seq +%d ts +%d", p.Marker, p.SequenceNumber-first.SequenceNumber, p.Timestamp-first.Timestamp)
			}
			if _, back := x.br.Stats(); back.Underruns != 0 {
				t.Errorf("the other direction counted underruns")
			}
			if fwd, _ := x.br.Stats(); fwd.Underruns != 1 {
				t.Errorf("underruns %d, want 1", fwd.Underruns)
			}

			// The other way round.
			sendRTP(t, x.b.peer, x.b.s.LocalAddr(), tc.b.PayloadType, 7, 160, frame(0x55))
			sendRTP(t, x.b.peer, x.b.s.LocalAddr(), tc.b.PayloadType, 8, 320, frame(0x56))
			waitHeld(t, x.a.s, 2*FrameSamples)
			x.a.tick()
			if p := x.a.packet(); !bytes.Equal(p.Payload, transcoded(tc.b, tc.a, frame(0x55))) || p.PayloadType != tc.a.PayloadType {
				t.Errorf("b to a: wrong frame")
			}
		})
	}
}

// Until the buffer holds its delay it plays silence, and after running dry
// it gathers the delay again before playing on.
func TestBridgeJitterDelay(t *testing.T) {
	x := newBridged(t, PCMU, PCMU, BridgeOptions{JitterDelay: 3 * FrameDuration})
	to := x.a.s.LocalAddr()
	silence := frame(PCMU.Silence())
	sendRTP(t, x.a.peer, to, 0, 1, 0, frame(0x31))
	sendRTP(t, x.a.peer, to, 0, 2, 160, frame(0x32))
	waitHeld(t, x.b.s, 2*FrameSamples)
	x.b.tick()
	if p := x.b.packet(); !bytes.Equal(p.Payload, silence) {
		t.Fatalf("played before the delay was gathered")
	}
	sendRTP(t, x.a.peer, to, 0, 3, 320, frame(0x33))
	waitHeld(t, x.b.s, 3*FrameSamples)
	for i := range 3 {
		x.b.tick()
		if p := x.b.packet(); !bytes.Equal(p.Payload, frame(byte(0x31+i))) {
			t.Fatalf("frame %d not played in order", i)
		}
	}
	x.b.tick()
	x.b.packet() // dry
	sendRTP(t, x.a.peer, to, 0, 4, 480, frame(0x34))
	waitHeld(t, x.b.s, FrameSamples)
	x.b.tick()
	if p := x.b.packet(); !bytes.Equal(p.Payload, silence) {
		t.Errorf("played on right after running dry")
	}
}

// Packets are played in sequence order; one that comes after its place was
// played is dropped, as is a duplicate.
func TestBridgeReorders(t *testing.T) {
	x := newBridged(t, PCMU, PCMU, BridgeOptions{})
	to := x.a.s.LocalAddr()
	for _, seq := range []uint16{65535, 1, 0, 1} { // across the wrap, one duplicate
		sendRTP(t, x.a.peer, to, 0, seq, uint32(seq)*FrameSamples, frame(byte(0x40+seq+1)))
	}
	waitHeld(t, x.b.s, 3*FrameSamples)
	for i, want := range []byte{0x40, 0x41, 0x42} {
		x.b.tick()
		if p := x.b.packet(); !bytes.Equal(p.Payload, frame(want)) {
			t.Errorf("frame %d: %x, want %x", i, p.Payload[0], want)
		}
	}
	sendRTP(t, x.a.peer, to, 0, 0, 0, frame(0x77)) // late
	sendRTP(t, x.a.peer, to, 0, 2, 2*FrameSamples, frame(0x43))
	waitHeld(t, x.b.s, FrameSamples)
	if fwd, _ := x.br.Stats(); fwd.Late != 1 {
		t.Errorf("late %d, want 1", fwd.Late)
	}
}

// A sender running ahead cannot build delay up: past MaxDelay the oldest
// audio goes.
func TestBridgeBoundsTheDelay(t *testing.T) {
	x := newBridged(t, PCMU, PCMU, BridgeOptions{MaxDelay: 4 * FrameDuration})
	to := x.a.s.LocalAddr()
	for i := range 7 {
		sendRTP(t, x.a.peer, to, 0, uint16(i), uint32(i*FrameSamples), frame(byte(0x50+i)))
	}
	waitBuffer(t, x.b.s, func(jb *jitterBuffer) bool { return jb.dropped == 3 && jb.held == 4*FrameSamples })
	x.b.tick()
	if p := x.b.packet(); !bytes.Equal(p.Payload, frame(0x53)) {
		t.Errorf("played %x first, want the oldest of the last four (53)", p.Payload[0])
	}
	if fwd, _ := x.br.Stats(); fwd.Dropped != 3 {
		t.Errorf("dropped %d, want 3", fwd.Dropped)
	}
	// A new sender (another SSRC, sequence numbers far behind) restarts
	// the buffer rather than being taken for late packets.
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: 40000, Timestamp: 1, SSRC: 99}, Payload: frame(0x60)}
	b, err := pkt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x.a.peer.WriteToUDPAddrPort(b, to); err != nil {
		t.Fatal(err)
	}
	waitHeld(t, x.b.s, FrameSamples)
}

// A prompt queued on a bridged stream plays before the bridged audio,
// which resumes after it; closing the bridge leaves the prompts only.
func TestBridgePromptsAndClose(t *testing.T) {
	x := newBridged(t, PCMU, PCMA, BridgeOptions{})
	whisper := clip(2, "whisper")
	pb := x.b.s.Play(whisper)
	for i := range 3 {
		sendRTP(t, x.a.peer, x.a.s.LocalAddr(), 0, uint16(i), uint32(i*FrameSamples), frame(byte(0x21+i)))
	}
	waitHeld(t, x.b.s, 3*FrameSamples)
	for i := range 2 {
		x.b.tick()
		if p := x.b.packet(); !bytes.Equal(p.Payload, frameOf(whisper, PCMA, i)) {
			t.Fatalf("whisper frame %d not sent", i)
		}
	}
	x.b.tick()
	// The bridged audio was read meanwhile: it does not lag behind the
	// prompt, so what plays now is its third frame.
	if p := x.b.packet(); !bytes.Equal(p.Payload, transcoded(PCMU, PCMA, frame(0x23))) {
		t.Errorf("after the whisper: not the bridged audio in real time")
	}
	if !isDone(pb) {
		t.Errorf("whisper not done")
	}

	x.br.Close()
	x.br.Close()
	x.b.tick()
	x.b.nothingSent()
	x.a.tick()
	x.a.nothingSent()
	sendRTP(t, x.a.peer, x.a.s.LocalAddr(), 0, 3, 3*FrameSamples, frame(0x24))
	after := clip(1, "rating")
	x.b.s.Play(after)
	x.b.tick()
	if p := x.b.packet(); !bytes.Equal(p.Payload, frameOf(after, PCMA, 0)) || !p.Marker {
		t.Errorf("after Close: not the prompt, or no marker")
	}
	// Bridged again after Close, with the other stream.
	br, err := Join(x.b.s, x.a.s, BridgeOptions{})
	if err != nil {
		t.Fatalf("join after close: %v", err)
	}
	br.Close()
}

func TestJoinRefusesABridgedStream(t *testing.T) {
	x := newBridged(t, PCMU, PCMU, BridgeOptions{})
	c := newRig(t, nil)
	if _, err := Join(x.a.s, c.s, BridgeOptions{}); !errors.Is(err, ErrBridged) {
		t.Errorf("join a bridged stream: %v", err)
	}
	if _, err := Join(c.s, x.b.s, BridgeOptions{}); !errors.Is(err, ErrBridged) {
		t.Errorf("join with a bridged stream: %v", err)
	}
	// c was left as it was: it can still be bridged.
	d := newRig(t, nil)
	br, err := Join(c.s, d.s, BridgeOptions{})
	if err != nil {
		t.Fatalf("c left bridged by a refused join: %v", err)
	}
	br.Close()
	if _, err := Join(c.s, c.s, BridgeOptions{}); err == nil {
		t.Errorf("a stream bridged with itself")
	}
}

// eventPacket reads the next packet and decodes it as a telephone-event.
func eventPacket(t *testing.T, r *streamRig) (rtp.Packet, dtmf.Event) {
	t.Helper()
	p := r.packet()
	if p.PayloadType != 101 {
		t.Fatalf("payload type %d, want the telephone-event 101", p.PayloadType)
	}
	ev, err := dtmf.DecodeEvent(p.Payload)
	if err != nil {
		t.Fatal(err)
	}
	return p, ev
}

// A key goes out as RFC 4733 events in place of the audio: growing
// durations at one timestamp, the marker on the first, the end three
// times; queued prompts wait, and the audio after starts a talkspurt.
func TestSendDigit(t *testing.T) {
	r := newRig(t, nil)
	c := clip(3, "a")
	r.s.Play(c)
	r.tick()
	audio := r.packet()
	if err := r.s.SendDigit('5'); err != nil {
		t.Fatal(err)
	}
	if err := r.s.SendDigit('5'); err != nil {
		t.Fatal(err)
	}
	var tracker dtmf.EventTracker
	var keys []rune
	var start uint32
	for press := range 2 {
		for i := range eventPackets + endPackets {
			r.tick()
			p, ev := eventPacket(t, r)
			if i == 0 {
				start = p.Timestamp
				if want := audio.Timestamp + uint32(1+press*(eventPackets+endPackets))*FrameSamples; start != want {
					t.Errorf("press %d starts at %d, want %d: the clock runs on", press, start, want)
				}
			}
			if p.Timestamp != start || p.Marker != (i == 0) || p.SSRC != audio.SSRC {
				t.Errorf("press %d packet %d: ts %d marker %v ssrc %x", press, i, p.Timestamp, p.Marker, p.SSRC)
			}
			wantDur := uint16(min(i+1, eventPackets) * FrameSamples)
			if ev.Key != '5' || ev.End != (i >= eventPackets) || ev.Duration != wantDur {
				t.Errorf("press %d packet %d: %+v, want duration %d end %v", press, i, ev, wantDur, i >= eventPackets)
			}
			if k, ok := tracker.Observe(p.Timestamp, ev); ok {
				keys = append(keys, k)
			}
		}
	}
	if string(keys) != "55" {
		t.Errorf("a receiver counts %q, want 55: each press once, and both", string(keys))
	}
	r.tick()
	p := r.packet()
	if p.PayloadType != 0 || !p.Marker || !bytes.Equal(p.Payload, frameOf(c, PCMU, 1)) {
		t.Errorf("after the events: pt %d marker %v; want the prompt's second frame starting a talkspurt", p.PayloadType, p.Marker)
	}
	if want := audio.SequenceNumber + 2*(eventPackets+endPackets) + 1; p.SequenceNumber != want {
		t.Errorf("sequence %d, want %d", p.SequenceNumber, want)
	}

	if err := r.s.SendDigit('x'); !errors.Is(err, dtmf.ErrUnknownKey) {
		t.Errorf("SendDigit('x'): %v", err)
	}
	none := newRig(t, func(c *StreamConfig) { c.DTMFPayloadType = -1 })
	if err := none.s.SendDigit('1'); !errors.Is(err, ErrNoTelephoneEvent) {
		t.Errorf("SendDigit without telephone-event: %v", err)
	}
}

// Keys received as events on one side are sent as events on the other, and
// still reported on their own side; keys heard in the audio are not: their
// tones pass in the bridged audio.
func TestBridgeRelaysKeys(t *testing.T) {
	x := newBridged(t, PCMU, PCMU, BridgeOptions{})
	tone, err := dtmf.Tone('3', dtmf.ToneOptions{Duration: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	seq := uint16(0)
	send := func(pcm []int16) {
		for i := 0; i < len(pcm); i += FrameSamples {
			sendRTP(t, x.a.peer, x.a.s.LocalAddr(), 0, seq, uint32(seq)*FrameSamples, PCMU.Encode(nil, pcm[i:i+FrameSamples]))
			seq++
		}
	}
	send(tone)
	waitHeld(t, x.b.s, len(tone))
	var level float64
	for range len(tone) / FrameSamples {
		x.b.tick()
		p := x.b.packet()
		for _, v := range PCMU.Decode(make([]int16, len(p.Payload)), p.Payload) {
			level = max(level, float64(v))
		}
	}
	if level < 1000 {
		t.Errorf("b's peer got no tone in the audio (peak %v)", level)
	}
	send(dtmf.Silence(100 * time.Millisecond))
	if d := recvString(t, x.a.digits); d != "3/inband" {
		t.Fatalf("digit %s, want 3/inband", d)
	}
	sendEvent(t, x.a.peer, x.a.s.LocalAddr(), seq, uint32(seq)*FrameSamples, '#')
	if d := recvString(t, x.a.digits); d != "#/rfc4733" {
		t.Fatalf("digit %s, want #/rfc4733", d)
	}
	if err := x.b.s.RelayDigit('7'); err != nil { // an INFO key on b's call
		t.Fatal(err)
	}
	// b's peer gets # as events (and not 3: its tone passed as audio);
	// a's peer gets 7 as events.
	var tracker dtmf.EventTracker
	var keys []rune
	for range 2 * (eventPackets + endPackets) {
		x.b.tick()
		p := x.b.packet()
		if p.PayloadType != 101 {
			continue
		}
		ev, err := dtmf.DecodeEvent(p.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if k, ok := tracker.Observe(p.Timestamp, ev); ok {
			keys = append(keys, k)
		}
	}
	if string(keys) != "#" {
		t.Errorf("b's peer got keys %q as events, want # only", string(keys))
	}
	for range eventPackets + endPackets {
		x.a.tick()
		if _, ev := eventPacket(t, x.a); ev.Key != '7' {
			t.Fatalf("a's peer got %q, want 7", ev.Key)
		}
	}
	x.br.Close()
	if err := x.b.s.RelayDigit('8'); err != nil {
		t.Errorf("RelayDigit unbridged: %v", err)
	}
	x.a.tick()
	x.a.nothingSent() // 8 was not relayed
}

func TestStopPlayback(t *testing.T) {
	r := newRig(t, nil)
	pa, pb := r.s.Play(clip(5, "a")), r.s.Play(clip(5, "b"))
	r.tick()
	r.packet()
	r.s.StopPlayback()
	if !isDone(pb) || isDone(pa) {
		t.Errorf("done: a %v b %v; want the waiting one at once, the playing one at the frame boundary", isDone(pa), isDone(pb))
	}
	r.tick()
	if !isDone(pa) {
		t.Errorf("playing one not done at the next frame boundary")
	}
	r.nothingSent()
	r.s.StopPlayback() // nothing queued: harmless
}
