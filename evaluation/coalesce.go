package evaluation

import (
	"context"
	"sync"
	"time"
)

// batchTimeout bounds a shared pipeline: no caller's context governs it,
// since it carries the runs of many.
const batchTimeout = 30 * time.Second

// coalescer lets concurrent callers share round trips to Redis. A caller
// that finds fewer than maxFlushers pipelines in flight sends its run at
// once, with whatever others queued; otherwise runs queue and go together
// in the next pipeline. Two pipelines in flight keep Redis busy while the
// answers of the one before are read and the next is written. Each run is
// still its own script, atomic on its own: runs of different callers may
// be applied in any order, as those of two nodes are. Under light load
// every run goes alone; when many calls end at once, they share
// pipelines, and Redis rather than round trips sets the pace.
type coalescer struct {
	mu       sync.Mutex
	flushers int // pipelines in flight, or about to be
	queue    []*queuedRun
}

// maxFlushers is how many shared pipelines may be in flight at once.
const maxFlushers = 2

type queuedRun struct {
	run   callRun
	reply callReply
	done  chan struct{} // closed once reply is set
}

// runShared runs one call script through the coalescer. A caller whose
// context ends first gets its error; its script may still run, as a
// command sent before a timeout may: every call script is idempotent.
func (s *Store) runShared(ctx context.Context, run callRun) (string, int64, error) {
	q := &queuedRun{run: run, done: make(chan struct{})}
	c := &s.batch
	c.mu.Lock()
	c.queue = append(c.queue, q)
	lead := c.flushers < maxFlushers
	if lead {
		c.flushers++
	}
	c.mu.Unlock()
	if lead {
		// This caller's own run is in the batch it sends; the runs that
		// queue meanwhile go on in a flusher of their own.
		if s.flushOnce() {
			go s.flush()
		}
	}
	select {
	case <-q.done:
		return q.reply.doc, q.reply.flag, q.reply.err
	case <-ctx.Done():
		return "", 0, context.Cause(ctx)
	}
}

// flush sends queued runs until none is left.
func (s *Store) flush() {
	for s.flushOnce() {
	}
}

// flushOnce sends the queued runs in one pipeline and answers them. It
// reports whether more runs queued meanwhile; when none did, this
// flusher stops.
func (s *Store) flushOnce() (more bool) {
	c := &s.batch
	c.mu.Lock()
	batch := c.queue
	c.queue = nil
	c.mu.Unlock()
	if len(batch) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
		runs := make([]callRun, len(batch))
		for i, q := range batch {
			runs[i] = q.run
		}
		for i, r := range s.runCalls(ctx, runs) {
			batch[i].reply = r
			close(batch[i].done)
		}
		cancel()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) == 0 {
		c.flushers--
		return false
	}
	return true
}
