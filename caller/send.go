package caller

import (
	"math/rand/v2"
	"sync"
	"time"

	"github.com/pion/rtp"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/media/dtmf"
)

// How keys are sent.
const (
	// The RFC 4733 event of one press lasts eventTicks packets (100 ms);
	// its end packet is sent endRepeats more times (three in all, RFC 4733
	// §2.5.1.4) and the next press starts eventGapTicks after the event's
	// end (160 ms, counting the repeats).
	eventTicks    = 5
	endRepeats    = 2
	eventGapTicks = 8
	// eventVolume is the power the events report: −10 dBm0, a keypad's
	// nominal level (ITU-T Q.23), in −dBm0 (RFC 4733 §2.3.4).
	eventVolume = 10
	// An in-band press is a 100 ms tone pair at −10 dBm0 per tone followed
	// by 100 ms of silence: well over the 40 ms tone and 40 ms pause a
	// receiver must accept (ITU-T Q.24).
	toneTicks    = 5
	toneGapTicks = 5
	toneLevel    = -10
	// maxBurst is how many late frames are sent at once after a stall (a
	// jitter buffer absorbs them); beyond that they are skipped, so the
	// RTP clock stays with real time.
	maxBurst = 5
)

// keyQueue holds keys waiting to be sent. It is safe for concurrent use.
type keyQueue struct {
	mu   sync.Mutex
	keys []rune
	wake chan struct{} // has a value when keys were queued
}

func newKeyQueue() *keyQueue { return &keyQueue{wake: make(chan struct{}, 1)} }

func (q *keyQueue) push(keys string) {
	q.mu.Lock()
	q.keys = append(q.keys, []rune(keys)...)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *keyQueue) pop() (rune, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.keys) == 0 {
		return 0, false
	}
	k := q.keys[0]
	q.keys = q.keys[1:]
	return k, true
}

// rtpSource makes the caller's RTP stream, one packet per 20 ms tick, like a
// phone: silence, or key presses as RFC 4733 telephone-events or as in-band
// tones. It keeps its own RTP clock, which advances one frame per tick
// whatever is sent (RFC 3550 §5.1), so events carry their own start as
// timestamp and the audio after them goes on where the clock is.
//
// diago's RTPDtmfWriter is not used: it stops the audio clock during an
// event, so the audio after it repeats the event's timestamp, and two
// presses of one key without audio between them share a timestamp and
// count once (diago#21, #31).
//
// next and skip are called from one goroutine; keys may be queued from any.
type rtpSource struct {
	law     law
	eventPT int  // negotiated telephone-event payload type; -1 when none
	inband  bool // keys are tones in the audio
	keys    *keyQueue

	ssrc    uint32
	seq     uint16
	clock   uint32 // RTP timestamp of the next tick
	started bool
	silence []byte

	key     rune
	tick    int // ticks into the current key; -1 when idle
	eventTS uint32
	tone    []byte
}

func newRTPSource(l law, eventPT int, inband bool, keys *keyQueue) *rtpSource {
	return &rtpSource{
		law: l, eventPT: eventPT, inband: inband, keys: keys,
		// Random starting points (RFC 3550 §5.1, §8).
		ssrc: rand.Uint32(), seq: uint16(rand.Uint32()), clock: rand.Uint32(),
		silence: l.silence(), tick: -1,
	}
}

// next returns the packet for the next tick.
func (s *rtpSource) next(pt uint8) rtp.Packet {
	ts := s.advance()
	pkt := rtp.Packet{Header: rtp.Header{
		Version: 2, PayloadType: pt, SequenceNumber: s.seq, Timestamp: ts, SSRC: s.ssrc,
		// The first packet of the call starts a talkspurt (RFC 3551 §4.1).
		Marker: !s.started,
	}, Payload: s.silence}
	s.seq++
	s.started = true
	switch {
	case s.tick < 0:
	case s.inband:
		if s.tick < toneTicks {
			pkt.Payload = s.tone[s.tick*frameSamples : (s.tick+1)*frameSamples]
		}
	case s.tick < eventTicks+endRepeats:
		// Every packet of one event carries the event's start as its
		// timestamp and the time it has lasted so far (RFC 4733 §2.5.1.2);
		// the first has the marker bit (§2.3.5), the last is sent three
		// times with the final duration (§2.5.1.4).
		n := min(s.tick, eventTicks-1) + 1
		ev := dtmf.Event{Key: s.key, End: n == eventTicks, Volume: eventVolume, Duration: uint16(n * frameSamples)}
		pkt.PayloadType = uint8(s.eventPT)
		pkt.Timestamp = s.eventTS
		pkt.Marker = s.tick == 0
		pkt.Payload = ev.Marshal()
	}
	s.step()
	return pkt
}

// skip lets one tick pass without a packet.
func (s *rtpSource) skip() {
	s.advance()
	s.step()
}

// advance moves the clock one tick and starts the next key when idle. It
// returns the timestamp of the tick.
func (s *rtpSource) advance() uint32 {
	ts := s.clock
	s.clock += frameSamples
	if s.tick < 0 {
		if k, ok := s.keys.pop(); ok {
			s.key, s.tick, s.eventTS = k, 0, ts
			if s.inband {
				s.tone = s.toneFrames(k)
			}
		}
	}
	return ts
}

func (s *rtpSource) step() {
	if s.tick < 0 {
		return
	}
	s.tick++
	total := eventTicks + eventGapTicks
	if s.inband {
		total = toneTicks + toneGapTicks
	}
	if s.tick >= total {
		s.tick = -1
	}
}

// toneFrames encodes the tone pair of key for toneTicks frames.
func (s *rtpSource) toneFrames(key rune) []byte {
	pcm, err := dtmf.Tone(key, dtmf.ToneOptions{Duration: toneTicks * frameDuration, LevelDBm0: toneLevel})
	if err != nil {
		// Keys are checked before the call; an unknown one sends silence.
		pcm = make([]int16, toneTicks*frameSamples)
	}
	return s.law.encodeAll(make([]byte, 0, len(pcm)), pcm)
}

// sendRTP sends src's packets every 20 ms on an absolute schedule until stop
// is closed. write sends one packet.
func sendRTP(stop <-chan struct{}, src *rtpSource, pt uint8, write func(*rtp.Packet) error, log zerolog.Logger) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	next := time.Now()
	failing := false
	for {
		select {
		case <-stop:
			return
		case <-timer.C:
		}
		now := time.Now()
		for n := 0; !next.After(now); n++ {
			if n >= maxBurst {
				src.skip()
			} else {
				pkt := src.next(pt)
				if err := write(&pkt); err != nil && !failing {
					failing = true
					log.Debug().Err(err).Msg("rtp send")
				}
			}
			next = next.Add(frameDuration)
		}
		timer.Reset(time.Until(next))
	}
}
