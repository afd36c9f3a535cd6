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
	// Jitter observes, per frame, how far the interval since the stream's
	// previous frame was from 20 ms, in seconds.
	Jitter prometheus.Observer

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

func (st *PacerStats) observeInterval(d time.Duration) {
	if st == nil || st.Jitter == nil {
		return
	}
	j := d - FrameDuration
	if j < 0 {
		j = -j
	}
	st.Jitter.Observe(j.Seconds())
}

// Pacer sends every stream's frames from one clock: a few goroutines (one
// per shard) wake every 20 ms on an absolute schedule and send one frame for
// each of their streams. Per-call tickers degrade past about a thousand calls
// per core; one shared clock keeps send jitter in microseconds.
type Pacer struct {
	stats  *PacerStats
	shards []*shard
	next   atomic.Uint32
	wg     sync.WaitGroup
}

type shard struct {
	mu      sync.Mutex // serialises add/remove; readers use the snapshot
	streams atomic.Pointer[[]*Stream]
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
func (p *Pacer) Run(ctx context.Context) {
	for _, sh := range p.shards {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			sh.run(ctx, p.stats)
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

func (p *Pacer) add(s *Stream) {
	sh := p.shards[int(p.next.Add(1))%len(p.shards)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	old := *sh.streams.Load()
	streams := make([]*Stream, len(old), len(old)+1)
	copy(streams, old)
	streams = append(streams, s)
	sh.streams.Store(&streams)
}

func (p *Pacer) remove(s *Stream) {
	for _, sh := range p.shards {
		sh.mu.Lock()
		old := *sh.streams.Load()
		for i, x := range old {
			if x == s {
				streams := make([]*Stream, 0, len(old)-1)
				streams = append(streams, old[:i]...)
				streams = append(streams, old[i+1:]...)
				sh.streams.Store(&streams)
				break
			}
		}
		sh.mu.Unlock()
	}
}

// run ticks on an absolute schedule so that lateness on one tick does not
// accumulate; a tick that finds itself more than a frame behind sends the
// missed frames at once (the receiver's jitter buffer absorbs them) rather
// than letting the audio fall behind real time.
func (sh *shard) run(ctx context.Context, st *PacerStats) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	next := time.Now()
	ticks := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		now := time.Now()
		for !next.After(now) {
			streams := *sh.streams.Load()
			deadline := next.UnixNano()
			for _, s := range streams {
				s.tick(now, deadline, st)
			}
			ticks++
			if ticks%50 == 0 {
				ns := time.Now().UnixNano()
				for _, s := range streams {
					s.checkTimeout(ns)
				}
			}
			next = next.Add(FrameDuration)
			now = time.Now()
		}
		timer.Reset(time.Until(next))
	}
}
