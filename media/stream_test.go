package media

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"

	"golang.org/x/sys/unix"

	"github.com/hotline12345/hotline/media/dtmf"
)

const waitFor = 5 * time.Second

// streamRig is a stream whose pacer does not run: the test ticks it, so
// what is sent on each 20 ms boundary is exact. peer is the far end.
type streamRig struct {
	t        *testing.T
	s        *Stream
	peer     *net.UDPConn
	now      time.Time
	digits   chan string // "key/method"
	timeouts atomic.Int32
}

func newRig(t *testing.T, tune func(*StreamConfig)) *streamRig {
	t.Helper()
	conn := listenSocket(t)
	peer := listenLoopback(t)
	r := &streamRig{t: t, peer: peer, now: time.Now(), digits: make(chan string, 16)}
	cfg := StreamConfig{
		Conn:            conn,
		Remote:          peer.LocalAddr().(*net.UDPAddr).AddrPort(),
		Codec:           PCMU,
		DTMFPayloadType: 101,
		OnDigit:         func(key rune, method string) { r.digits <- string(key) + "/" + method },
		OnTimeout:       func() { r.timeouts.Add(1) },
	}
	if tune != nil {
		tune(&cfg)
	}
	s, err := NewPacer(1, nil).Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.s = s
	t.Cleanup(func() { r.s.Close() })
	return r
}

// listenSocket binds a stream's own socket on loopback.
func listenSocket(t *testing.T) *Socket {
	t.Helper()
	conn, err := ListenUDP(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

func listenLoopback(t *testing.T) *net.UDPConn {
	t.Helper()
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// tick runs one pacer tick on the stream.
func (r *streamRig) tick() {
	r.now = r.now.Add(FrameDuration)
	r.s.tick(r.now.UnixNano(), nil, nil)
}

// packet reads the next RTP packet at the peer.
func (r *streamRig) packet() rtp.Packet {
	r.t.Helper()
	if err := r.peer.SetReadDeadline(time.Now().Add(waitFor)); err != nil {
		r.t.Fatal(err)
	}
	buf := make([]byte, 1500)
	n, err := r.peer.Read(buf)
	if err != nil {
		r.t.Fatalf("no RTP: %v", err)
	}
	var p rtp.Packet
	if err := p.Unmarshal(buf[:n]); err != nil {
		r.t.Fatal(err)
	}
	return p
}

// nothingSent checks that no packet is waiting at the peer. The stream
// sends from the tick itself, so after a tick a packet is either in the
// peer's socket buffer already or was never sent.
func (r *streamRig) nothingSent() {
	r.t.Helper()
	if err := r.peer.SetReadDeadline(time.Now()); err != nil {
		r.t.Fatal(err)
	}
	buf := make([]byte, 1500)
	if n, err := r.peer.Read(buf); err == nil {
		r.t.Fatalf("a packet of %d bytes was sent", n)
	}
}

// clip is n frames, each frame filled with its number, so a frame's
// payload says which it was.
func clip(n int, ref string) *Clip {
	pcm := make([]int16, n*FrameSamples)
	for i := range pcm {
		pcm[i] = int16(1000 * (i/FrameSamples + 1))
	}
	return NewClip(pcm, ref)
}

func frameOf(c *Clip, codec Codec, i int) []byte {
	return c.payload(codec)[i*FrameSamples : (i+1)*FrameSamples]
}

func isDone(pb *Playback) bool {
	select {
	case <-pb.Done():
		return true
	default:
		return false
	}
}

func TestPlaybackSendsFramesInOrder(t *testing.T) {
	r := newRig(t, nil)
	a, b := clip(3, "a"), clip(2, "b")
	pb := r.s.Play(a, b)
	var first rtp.Packet
	for i := range 5 {
		r.tick()
		p := r.packet()
		if i == 0 {
			first = p
		}
		var want []byte
		if i < 3 {
			want = frameOf(a, PCMU, i)
		} else {
			want = frameOf(b, PCMU, i-3)
		}
		if !bytes.Equal(p.Payload, want) {
			t.Errorf("frame %d: wrong payload", i)
		}
		if p.PayloadType != PCMU.PayloadType || p.SSRC != first.SSRC || p.Version != 2 {
			t.Errorf("frame %d: header %+v", i, p.Header)
		}
		if p.SequenceNumber != first.SequenceNumber+uint16(i) || p.Timestamp != first.Timestamp+uint32(i*FrameSamples) {
			t.Errorf("frame %d: seq %d ts %d, want %d %d", i, p.SequenceNumber, p.Timestamp,
				first.SequenceNumber+uint16(i), first.Timestamp+uint32(i*FrameSamples))
		}
		// RFC 3551 §4.1: the marker starts a talkspurt, here the first frame.
		if p.Marker != (i == 0) {
			t.Errorf("frame %d: marker %v", i, p.Marker)
		}
		if isDone(pb) {
			t.Fatalf("playback done after frame %d of 5", i)
		}
	}
	r.tick()
	if !isDone(pb) {
		t.Fatalf("playback not done a tick after its last frame")
	}
	r.nothingSent()
	played := pb.Played()
	if len(played) != 2 || played[0].Ref != "a" || played[1].Ref != "b" || !played[1].At.After(played[0].At) {
		t.Errorf("played %+v, want a then b", played)
	}
}

// A playback queued while the pacer is late (its tick's deadline long
// past) starts when its first frame goes out, never before it was queued.
func TestPlayedAtIsWhenTheFirstFrameLeft(t *testing.T) {
	r := newRig(t, nil)
	queued := time.Now()
	pb := r.s.Play(clip(1, "a"))
	r.s.tick(queued.Add(-10*time.Millisecond).UnixNano(), nil, nil)
	sent := time.Now()
	r.packet()
	played := pb.Played()
	if len(played) != 1 || played[0].At.Before(queued) || played[0].At.After(sent) {
		t.Errorf("played %+v, want one clip started between %v and %v", played, queued, sent)
	}
}

func TestPlaybacksQueueBehindEachOther(t *testing.T) {
	r := newRig(t, nil)
	a, b := clip(2, "a"), clip(1, "b")
	pa, pb := r.s.Play(a), r.s.Play(b)
	for i := range 3 {
		r.tick()
		p := r.packet()
		var want []byte
		if i < 2 {
			want = frameOf(a, PCMU, i)
		} else {
			want = frameOf(b, PCMU, 0)
		}
		if !bytes.Equal(p.Payload, want) {
			t.Errorf("frame %d: wrong payload", i)
		}
		if p.Marker != (i == 0) {
			t.Errorf("frame %d: marker %v; one talkspurt runs across the playbacks", i, p.Marker)
		}
		if i == 0 {
			if len(pb.Played()) != 0 {
				t.Errorf("b played before a ended")
			}
		}
	}
	if !isDone(pa) || isDone(pb) {
		t.Errorf("done: a %v b %v, want a only", isDone(pa), isDone(pb))
	}
}

// The RTP clock follows real time through silences (RFC 3550 §5.1: the
// timestamp reflects the sampling instant), the sequence number does not
// skip (it counts packets), and the first frame after a silence carries the
// marker (RFC 3551 §4.1).
func TestTimestampsAdvanceAcrossSilence(t *testing.T) {
	r := newRig(t, nil)
	r.s.Play(clip(2, "a"))
	r.tick()
	first := r.packet()
	r.tick()
	second := r.packet()
	const silent = 6 // the tick that ends the playback, then five more
	for range silent {
		r.tick()
	}
	r.nothingSent()
	r.s.Play(clip(1, "b"))
	r.tick()
	after := r.packet()
	if second.Marker || !first.Marker {
		t.Errorf("markers %v %v, want the first frame only", first.Marker, second.Marker)
	}
	if !after.Marker {
		t.Errorf("first frame after a silence without the marker")
	}
	if want := second.Timestamp + uint32((silent+1)*FrameSamples); after.Timestamp != want {
		t.Errorf("timestamp %d after %d silent ticks, want %d", after.Timestamp, silent, want)
	}
	if after.SequenceNumber != second.SequenceNumber+1 {
		t.Errorf("sequence %d after %d, want no gap", after.SequenceNumber, second.SequenceNumber)
	}
}

// While the peer holds the call we send nothing; the playback runs on (the
// flow's timing does not depend on the hold) and the first frame after the
// hold starts a new talkspurt.
func TestSetDirectionHoldsSending(t *testing.T) {
	r := newRig(t, nil)
	c := clip(4, "a")
	pb := r.s.Play(c)
	r.tick()
	first := r.packet()
	r.s.SetDirection(false, true)
	r.tick()
	r.tick()
	r.nothingSent()
	r.s.SetDirection(true, true)
	r.tick()
	p := r.packet()
	if !bytes.Equal(p.Payload, frameOf(c, PCMU, 3)) {
		t.Errorf("after the hold: not the fourth frame")
	}
	if !p.Marker || p.Timestamp != first.Timestamp+3*FrameSamples || p.SequenceNumber != first.SequenceNumber+1 {
		t.Errorf("after the hold: marker %v ts +%d seq +%d, want true +%d +1", p.Marker,
			p.Timestamp-first.Timestamp, p.SequenceNumber-first.SequenceNumber, 3*FrameSamples)
	}
	r.tick()
	if !isDone(pb) {
		t.Errorf("playback not done")
	}
}

func TestPlaybackStop(t *testing.T) {
	t.Run("playing", func(t *testing.T) {
		r := newRig(t, nil)
		a, b := clip(10, "a"), clip(1, "b")
		pa, pb := r.s.Play(a), r.s.Play(b)
		r.tick()
		r.packet()
		pa.Stop()
		pa.Stop() // twice is harmless
		if isDone(pa) {
			t.Errorf("done before the frame boundary")
		}
		r.tick()
		if !isDone(pa) {
			t.Errorf("stopped playback not done at the next frame boundary")
		}
		if p := r.packet(); !bytes.Equal(p.Payload, frameOf(b, PCMU, 0)) {
			t.Errorf("the next playback did not follow at once")
		}
		if played := pa.Played(); len(played) != 1 || played[0].Ref != "a" {
			t.Errorf("played %+v", played)
		}
		if played := pb.Played(); len(played) != 1 || played[0].Ref != "b" {
			t.Errorf("next played %+v", played)
		}
	})
	// Stopping a playback still waiting in the queue ends it at the next
	// frame boundary too, not when the one ahead of it ends (a flow stops
	// a prompt it queued on barge-in, whatever plays before it).
	t.Run("queued", func(t *testing.T) {
		r := newRig(t, nil)
		a, b, c := clip(10, "a"), clip(1, "b"), clip(1, "c")
		pa, pb, pc := r.s.Play(a), r.s.Play(b), r.s.Play(c)
		r.tick()
		r.packet()
		pb.Stop()
		r.tick()
		if !isDone(pb) {
			t.Errorf("stopped queued playback not done at the next frame boundary")
		}
		if len(pb.Played()) != 0 {
			t.Errorf("stopped before it started, yet played %+v", pb.Played())
		}
		if p := r.packet(); !bytes.Equal(p.Payload, frameOf(a, PCMU, 1)) {
			t.Errorf("the playing one was disturbed")
		}
		pa.Stop()
		r.tick()
		if p := r.packet(); !bytes.Equal(p.Payload, frameOf(c, PCMU, 0)) || isDone(pc) {
			t.Errorf("c did not follow a")
		}
	})
}

func TestCloseEndsPlaybacks(t *testing.T) {
	r := newRig(t, nil)
	pa, pb := r.s.Play(clip(5, "a")), r.s.Play(clip(5, "b"))
	r.tick()
	if err := r.s.Close(); err != nil {
		t.Fatal(err)
	}
	if !isDone(pa) || !isDone(pb) {
		t.Errorf("playbacks not done after Close")
	}
	if pc := r.s.Play(clip(1, "c")); !isDone(pc) {
		t.Errorf("playback on a closed stream not done at once")
	}
	if err := r.s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestMediaTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	r := newRig(t, func(c *StreamConfig) { c.MediaTimeout = timeout })
	start := r.s.lastRx.Load()
	r.s.checkTimeout(start + int64(timeout/2))
	if n := r.timeouts.Load(); n != 0 {
		t.Fatalf("timed out early")
	}
	r.s.checkTimeout(start + int64(timeout))
	r.s.checkTimeout(start + int64(2*timeout))
	if n := r.timeouts.Load(); n != 1 {
		t.Fatalf("OnTimeout called %d times, want once", n)
	}

	t.Run("suspended while the peer does not send", func(t *testing.T) {
		r := newRig(t, func(c *StreamConfig) { c.MediaTimeout = timeout })
		r.s.SetDirection(true, false)
		r.s.checkTimeout(time.Now().Add(time.Hour).UnixNano())
		if n := r.timeouts.Load(); n != 0 {
			t.Fatalf("timed out while the peer was not sending")
		}
		// Sending again restarts the clock from now.
		before := time.Now().UnixNano()
		r.s.SetDirection(true, true)
		r.s.checkTimeout(before + int64(timeout/2))
		if n := r.timeouts.Load(); n != 0 {
			t.Fatalf("timed out right after the peer resumed")
		}
		r.s.checkTimeout(time.Now().Add(timeout).UnixNano())
		if n := r.timeouts.Load(); n != 1 {
			t.Fatalf("OnTimeout called %d times after resuming, want once", n)
		}
	})

	t.Run("packets from the peer hold it off", func(t *testing.T) {
		r := newRig(t, func(c *StreamConfig) { c.MediaTimeout = timeout })
		start := r.s.lastRx.Load()
		sendRTP(t, r.peer, r.s.LocalAddr(), 0, 1, 160, make([]byte, 160))
		// The packet is seen when the digit after it is.
		sendEvent(t, r.peer, r.s.LocalAddr(), 2, 320, '1')
		if d := recvString(t, r.digits); d != "1/rfc4733" {
			t.Fatalf("digit %s", d)
		}
		if got := r.s.lastRx.Load(); got <= start {
			t.Fatalf("last receive time did not move")
		}
		r.s.checkTimeout(start + int64(timeout))
		if n := r.timeouts.Load(); n != 0 {
			t.Fatalf("timed out though a packet came")
		}
	})
}

func TestReceive(t *testing.T) {
	r := newRig(t, nil)
	to := r.s.LocalAddr()
	foreign := listenLoopback(t)
	sendEvent(t, foreign, to, 1, 160, '9')
	sendRTP(t, r.peer, to, 0, 2, 320, nil) // no payload: still RTP
	if _, err := r.peer.WriteToUDPAddrPort([]byte("not RTP"), to); err != nil {
		t.Fatal(err)
	}
	sendEvent(t, r.peer, to, 3, 480, '1')
	if d := recvString(t, r.digits); d != "1/rfc4733" {
		t.Fatalf("digit %s, want 1/rfc4733 (and not 9 from elsewhere)", d)
	}
	sendEvent(t, r.peer, to, 9, 1280, '1') // pressed again: counts again
	if d := recvString(t, r.digits); d != "1/rfc4733" {
		t.Fatalf("digit %s, want 1 again", d)
	}
	st := r.s.Stats()
	if st.Foreign != 6 || st.Malformed != 1 || st.Received < 1+6+1 {
		t.Errorf("stats %+v, want 6 foreign, 1 malformed, at least 8 received", st)
	}

	// SetRemote moves the peer: the old address is foreign from now on.
	moved := listenLoopback(t)
	r.s.SetRemote(moved.LocalAddr().(*net.UDPAddr).AddrPort(), 0)
	sendEvent(t, r.peer, to, 20, 8000, '2')
	sendEvent(t, moved, to, 30, 9600, '3')
	if d := recvString(t, r.digits); d != "3/rfc4733" {
		t.Fatalf("digit %s, want 3 from the new address only", d)
	}
	r.s.Play(clip(1, "a"))
	r.tick()
	if err := moved.SetReadDeadline(time.Now().Add(waitFor)); err != nil {
		t.Fatal(err)
	}
	if _, err := moved.Read(make([]byte, 1500)); err != nil {
		t.Errorf("no audio at the new address: %v", err)
	}
}

func TestInbandUntilTheFirstEvent(t *testing.T) {
	r := newRig(t, func(c *StreamConfig) { c.Codec = PCMA; c.Codec.PayloadType = 96 })
	to := r.s.LocalAddr()
	ts, seq := uint32(0), uint16(0)
	tone := func(key rune) {
		pcm, err := dtmf.Tone(key, dtmf.ToneOptions{Duration: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		pcm = append(pcm, dtmf.Silence(100*time.Millisecond)...)
		for i := 0; i < len(pcm); i += FrameSamples {
			seq++
			sendRTP(t, r.peer, to, 96, seq, ts, PCMA.Encode(nil, pcm[i:i+FrameSamples]))
			ts += FrameSamples
		}
	}
	tone('7')
	if d := recvString(t, r.digits); d != "7/inband" {
		t.Fatalf("digit %s, want 7/inband", d)
	}
	seq += 10
	sendEvent(t, r.peer, to, seq, ts, '4')
	if d := recvString(t, r.digits); d != "4/rfc4733" {
		t.Fatalf("digit %s", d)
	}
	seq += 10
	ts += 800
	tone('8')
	seq += 10
	sendEvent(t, r.peer, to, seq, ts, '5')
	if d := recvString(t, r.digits); d != "5/rfc4733" {
		t.Fatalf("digit %s, want 5: in-band detection stops once events come", d)
	}
}

// policyObserver records the scheduling policy of the thread observing.
type policyObserver struct{ policy atomic.Int64 }

func (o *policyObserver) Observe(float64) {
	attr, err := unix.SchedGetAttr(0, 0)
	if err != nil {
		o.policy.Store(-1)
		return
	}
	o.policy.Store(int64(attr.Policy))
}

// TestPacerRuns drives a stream from a running pacer, at ordinary and at
// real-time priority: the frames go out on its clock, and a closed stream
// leaves it.
func TestPacerRuns(t *testing.T) {
	t.Run("ordinary", func(t *testing.T) { testPacerRuns(t, 0, unix.SCHED_NORMAL) })
	t.Run("realtime", func(t *testing.T) {
		if err := CheckRealtime(10); err != nil {
			// Without the right to it, the pacer runs at ordinary
			// priority rather than not at all.
			if !errors.Is(err, unix.EPERM) {
				t.Fatalf("CheckRealtime: %v, want success or EPERM", err)
			}
			testPacerRuns(t, 10, unix.SCHED_NORMAL)
			return
		}
		testPacerRuns(t, 10, unix.SCHED_FIFO)
	})
	if err := CheckRealtime(100); err == nil {
		t.Error("CheckRealtime(100) succeeded; SCHED_FIFO priorities end at 99")
	}
}

func testPacerRuns(t *testing.T, prio int, policy int64) {
	var wake policyObserver
	st := &PacerStats{Wake: &wake}
	p := NewPacer(2, st)
	p.Realtime = prio
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	peer := listenLoopback(t)
	s, err := p.Start(StreamConfig{Conn: listenSocket(t), Remote: peer.LocalAddr().(*net.UDPAddr).AddrPort(), Codec: PCMU, DTMFPayloadType: -1})
	if err != nil {
		t.Fatal(err)
	}
	if n := p.Streams(); n != 1 {
		t.Errorf("%d streams paced, want 1", n)
	}
	const frames = 10
	start := time.Now()
	pb := s.Play(clip(frames, "a"))
	var prev rtp.Packet
	buf := make([]byte, 1500)
	for i := range frames {
		if err := peer.SetReadDeadline(time.Now().Add(waitFor)); err != nil {
			t.Fatal(err)
		}
		n, err := peer.Read(buf)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		var pkt rtp.Packet
		if err := pkt.Unmarshal(buf[:n]); err != nil {
			t.Fatal(err)
		}
		if i > 0 && (pkt.SequenceNumber != prev.SequenceNumber+1 || pkt.Timestamp != prev.Timestamp+FrameSamples) {
			t.Errorf("frame %d: seq %d ts %d after %d %d", i, pkt.SequenceNumber, pkt.Timestamp, prev.SequenceNumber, prev.Timestamp)
		}
		prev = pkt
	}
	select {
	case <-pb.Done():
	case <-time.After(waitFor):
		t.Fatal("playback not done")
	}
	// Ten frames take at least nine frame intervals on the pacer's clock.
	if elapsed := time.Since(start); elapsed < (frames-1)*FrameDuration {
		t.Errorf("%d frames in %s: not paced", frames, elapsed)
	}
	if n := st.Frames.Load(); n != frames {
		t.Errorf("stats count %d frames, want %d", n, frames)
	}
	if got := wake.policy.Load(); got != policy {
		t.Errorf("shards ran under scheduling policy %d, want %d", got, policy)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := p.Streams(); n != 0 {
		t.Errorf("%d streams paced after Close", n)
	}
}

// A codec keeps its encoding whatever payload type the peer gave it
// (RFC 3551 §3: dynamic types may name static encodings).
func TestClipPayloadFollowsTheEncoding(t *testing.T) {
	c := clip(1, "a")
	pcma, pcmu := PCMA, PCMU
	pcma.PayloadType, pcmu.PayloadType = 96, 8
	if !bytes.Equal(c.payload(pcma), c.payload(PCMA)) {
		t.Errorf("PCMA on payload type 96 is not A-law")
	}
	if !bytes.Equal(c.payload(pcmu), c.payload(PCMU)) {
		t.Errorf("PCMU on payload type 8 is not µ-law")
	}
	if bytes.Equal(c.payload(PCMA), c.payload(PCMU)) {
		t.Fatalf("the test clip encodes alike in both laws")
	}
}

func TestPortRange(t *testing.T) {
	// The zero range lets the system choose.
	conn, err := PortRange{}.Listen(netip.MustParseAddr("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	if conn.LocalAddr().Port() == 0 || conn.LocalAddr().Port()%2 != 0 {
		t.Errorf("RTP port %d, want an even one", conn.LocalAddr().Port())
	}
	// RTCP on the port above (RFC 3550 §11), closed with the RTP socket.
	if r := conn.RTCP(); r == nil || r.LocalAddr().Port() != conn.LocalAddr().Port()+1 {
		t.Errorf("RTCP socket %v for RTP on %s", r, conn.LocalAddr())
	}
	conn.Close()
	if err := conn.RTCP().WriteTo([]byte{0}, conn.LocalAddr()); !errors.Is(err, ErrSocketClosed) {
		t.Errorf("RTCP socket after Close: %v", err)
	}
	// In a range both ports come from it.
	conn, err = PortRange{Low: 40000, High: 40100}.Listen(netip.MustParseAddr("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	if p := conn.LocalAddr().Port(); p%2 != 0 || p+1 > 40100 || conn.RTCP().LocalAddr().Port() != p+1 {
		t.Errorf("ports %s and %s", conn.LocalAddr(), conn.RTCP().LocalAddr())
	}
	conn.Close()
	// A range with no even port has nothing to offer.
	if _, err := (PortRange{Low: 3001, High: 3001}).Listen(netip.MustParseAddr("127.0.0.1")); !errors.Is(err, ErrNoPort) {
		t.Errorf("empty range: %v", err)
	}
	for _, bad := range []string{"10000", "a-b", "1000-2000", "20000-10000", "60000-65536"} {
		if _, err := ParsePortRange(bad); err == nil {
			t.Errorf("ParsePortRange(%q) accepted", bad)
		}
	}
	if r, err := ParsePortRange("10000-20000"); err != nil || r != (PortRange{Low: 10000, High: 20000}) {
		t.Errorf("ParsePortRange: %v %v", r, err)
	}
}

func sendRTP(t *testing.T, from *net.UDPConn, to netip.AddrPort, pt uint8, seq uint16, ts uint32, payload []byte) {
	t.Helper()
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: seq, Timestamp: ts, SSRC: 7}, Payload: payload}
	b, err := pkt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := from.WriteToUDPAddrPort(b, to); err != nil {
		t.Fatal(err)
	}
}

// sendEvent sends a key press as RFC 4733 packets from seq on: three
// updates and the end packet three times, at one timestamp.
func sendEvent(t *testing.T, from *net.UDPConn, to netip.AddrPort, seq uint16, ts uint32, key rune) {
	t.Helper()
	for i, d := range []uint16{160, 320, 480, 800, 800, 800} {
		ev := dtmf.Event{Key: key, End: i >= 3, Volume: 10, Duration: d}
		sendRTP(t, from, to, 101, seq+uint16(i), ts, ev.Marshal())
	}
}

func recvString(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(waitFor):
		t.Fatal("nothing received")
		return ""
	}
}
