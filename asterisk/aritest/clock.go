package aritest

import (
	"container/heap"
	"time"
)

// task is something the double does later: a playback ending, a phone
// answering, an originate timing out. Tasks run one at a time on the
// clock's goroutine with Server.mu held, so they change state and publish
// events exactly like a request handler does.
type task struct {
	at    time.Time
	seq   uint64
	fn    func()
	index int // in the heap; -1 once run or cancelled
}

type taskHeap []*task

func (h taskHeap) Len() int { return len(h) }
func (h taskHeap) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].seq < h[j].seq
	}
	return h[i].at.Before(h[j].at)
}
func (h taskHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *taskHeap) Push(x any) {
	t := x.(*task)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *taskHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.index = -1
	return t
}

// afterLocked runs fn after d of the double's time: d divided by
// Options.Speed. Tasks due at the same moment run in the order they were
// scheduled. s.mu is held.
func (s *Server) afterLocked(d time.Duration, fn func()) *task {
	s.taskSeq++
	t := &task{at: time.Now().Add(time.Duration(float64(d) / s.opts.Speed)), seq: s.taskSeq, fn: fn}
	heap.Push(&s.tasks, t)
	if s.tasks[0] == t {
		select {
		case s.clockWake <- struct{}{}:
		default:
		}
	}
	return t
}

// cancelLocked forgets t; a nil or finished task is fine. s.mu is held.
func (s *Server) cancelLocked(t *task) {
	if t != nil && t.index >= 0 {
		heap.Remove(&s.tasks, t.index)
		t.index = -1
	}
}

// runClock is the clock's goroutine: it runs due tasks and sleeps until the
// next one, a new earlier one, or Close.
func (s *Server) runClock() {
	defer close(s.clockDone)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		s.mu.Lock()
		ran := false
		for len(s.tasks) > 0 && !s.tasks[0].at.After(time.Now()) {
			t := heap.Pop(&s.tasks).(*task)
			t.fn()
			ran = true
		}
		wait := time.Hour
		if len(s.tasks) > 0 {
			wait = time.Until(s.tasks[0].at)
		}
		if ran {
			s.notifyLocked()
		}
		s.mu.Unlock()
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-s.clockWake:
		case <-s.clockQuit:
			return
		}
	}
}
