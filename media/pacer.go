package media

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// OnTimeLimit is how late a frame may leave and still count as on time: half
// a frame, beyond which a receiver's jitter buffer starts to run dry.
const OnTimeLimit = FrameDuration / 2

// PacerStats measure how well the pacer keeps time. Nil observers are skipped.
type PacerStats struct {
	// Lateness observes, per frame, how long after its scheduled tick it
	// was sent, in seconds.
	Lateness prometheus.Observer
	// Deviation observes, per frame, how far the interval since the
	// stream's previous frame was from what its RTP timestamps say, in
	// seconds.
	Deviation prometheus.Observer
	// Jitter observes, per frame, the stream's send jitter as RFC 3550
	// §6.4.1 defines it (the running estimate a receiver reports in RTCP),
	// computed on send times, in seconds.
	Jitter prometheus.Observer
	// Wake observes, per shard tick, how late the shard woke up, and Busy
	// how long it took to send its frames, in seconds.
	Wake, Busy prometheus.Observer

	Frames atomic.Uint64 // frames sent
	Late   atomic.Uint64 // frames sent later than OnTimeLimit
}

func (st *PacerStats) observeLateness(d time.Duration) {
	if st == nil {
		return
	}
	st.Frames.Add(1)
	if d > OnTimeLimit {
		st.Late.Add(1)
	}
	if st.Lateness != nil {
		st.Lateness.Observe(d.Seconds())
	}
}

func (st *PacerStats) observeSpacing(deviation, jitter float64) {
	if st == nil {
		return
	}
	if st.Deviation != nil {
		st.Deviation.Observe(deviation)
	}
	if st.Jitter != nil {
		st.Jitter.Observe(jitter)
	}
}

// Pacer sends every stream's frames from one clock: a few goroutines (one
// per shard) wake every 20 ms on an absolute schedule and send one frame for
// each of their streams. Per-call tickers degrade past about a thousand calls
// per core; one shared clock keeps send jitter in microseconds.
type Pacer struct {
	// Realtime, when above zero, runs each shard on its own OS thread at
	// this SCHED_FIFO priority (1–99), sleeping with clock_nanosleep to an
	// absolute deadline, as media servers' timing threads do: the kernel
	// then wakes the shard on time even while other processes (a trunk's
	// softirqs, a load generator, a backup) keep the CPUs busy. Set it
	// before Run. Where the process may not raise its priority the shard
	// runs on an ordinary timer (CheckRealtime tells beforehand).
	Realtime int

	stats  *PacerStats
	shards []*shard
	next   atomic.Uint32
	wg     sync.WaitGroup
}

type shard struct {
	mu       sync.Mutex // serialises add/remove; readers use the snapshot
	streams  atomic.Pointer[[]*Stream]
	receiver receiver
}

// NewPacer makes a pacer with n shards (GOMAXPROCS when n < 1).
func NewPacer(n int, stats *PacerStats) *Pacer {
	if n < 1 {
		n = runtime.GOMAXPROCS(0)
	}
	p := &Pacer{stats: stats}
	for range n {
		sh := &shard{}
		sh.streams.Store(&[]*Stream{})
		p.shards = append(p.shards, sh)
	}
	return p
}

// Run drives the shards until ctx is done.
//
// The shards tick at staggered offsets within the 20 ms frame: shards that
// woke together would wait for each other's sends (and for the same P).
func (p *Pacer) Run(ctx context.Context) {
	start := time.Now()
	for i, sh := range p.shards {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			next := start.Add(FrameDuration * time.Duration(i) / time.Duration(len(p.shards)))
			if p.Realtime > 0 {
				runtime.LockOSThread()
				if setRealtime(p.Realtime) == nil {
					// Returning still locked ends the thread, so its
					// priority never passes to other goroutines.
					sh.runRealtime(ctx, p.stats, next)
					return
				}
				runtime.UnlockOSThread()
			}
			sh.run(ctx, p.stats, next)
		}()
	}
	p.wg.Wait()
}

// Streams counts the streams being paced.
func (p *Pacer) Streams() int {
	n := 0
	for _, sh := range p.shards {
		n += len(*sh.streams.Load())
	}
	return n
}

func (p *Pacer) add(s *Stream) error {
	sh := p.shards[int(p.next.Add(1))%len(p.shards)]
	s.shard = sh
	if err := sh.receiver.add(s); err != nil {
		return err
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	old := *sh.streams.Load()
	streams := make([]*Stream, len(old), len(old)+1)
	copy(streams, old)
	streams = append(streams, s)
	sh.streams.Store(&streams)
	return nil
}

func (p *Pacer) remove(s *Stream) {
	sh := s.shard
	sh.receiver.remove(s)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	old := *sh.streams.Load()
	for i, x := range old {
		if x == s {
			streams := make([]*Stream, 0, len(old)-1)
			streams = append(streams, old[:i]...)
			streams = append(streams, old[i+1:]...)
			sh.streams.Store(&streams)
			return
		}
	}
}

// run ticks on an absolute schedule so that lateness on one tick does not
// accumulate; a tick that finds itself more than a frame behind sends the
// missed frames at once (the receiver's jitter buffer absorbs them) rather
// than letting the audio fall behind real time.
func (sh *shard) run(ctx context.Context, st *PacerStats, next time.Time) {
	timer := time.NewTimer(time.Until(next))
	defer timer.Stop()
	var t ticker
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		next = t.tick(sh, st, next)
		timer.Reset(time.Until(next))
	}
}

// runRealtime is run on a locked, real-time OS thread: it sleeps in
// clock_nanosleep rather than on a Go timer, whose wake-up goes through the
// scheduler of an ordinary thread.
func (sh *shard) runRealtime(ctx context.Context, st *PacerStats, next time.Time) {
	var t ticker
	for ctx.Err() == nil {
		sleepUntil(next)
		next = t.tick(sh, st, next)
	}
}

// ticker is one shard's tick loop state.
type ticker struct {
	done  []*Playback // ended during a tick, finished after its sends
	ticks int
}

// tick sends the frames due at next (and any missed since) and returns when
// the following tick is due.
func (t *ticker) tick(sh *shard, st *PacerStats, next time.Time) time.Time {
	now := time.Now()
	if st != nil && st.Wake != nil {
		st.Wake.Observe(now.Sub(next).Seconds())
	}
	for !next.After(now) {
		streams := *sh.streams.Load()
		deadline := next.UnixNano()
		for _, s := range streams {
			s.tick(deadline, st, &t.done)
		}
		t.ticks++
		if t.ticks%5 == 0 {
			// RTCP reports, due every few seconds, are looked for every
			// 100 ms, after the frames of the tick are out.
			ns := time.Now().UnixNano()
			for _, s := range streams {
				s.maybeReport(ns)
			}
		}
		if t.ticks%50 == 0 {
			ns := time.Now().UnixNano()
			for _, s := range streams {
				s.checkTimeout(ns)
			}
		}
		next = next.Add(FrameDuration)
		prev := now
		now = time.Now()
		if st != nil && st.Busy != nil {
			st.Busy.Observe(now.Sub(prev).Seconds())
		}
		for i, pb := range t.done {
			pb.finish()
			t.done[i] = nil
		}
		t.done = t.done[:0]
	}
	return next
}
