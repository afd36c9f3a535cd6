package media

import (
	"errors"
	"runtime"
	"sync"
	"time"

	"github.com/pion/rtp"
	"golang.org/x/sys/unix"
)

// receiver reads the packets of one shard's streams: a goroutine blocked in
// epoll_wait on their sockets, reading every socket that has data until it
// would block. It runs while the shard has streams and exits soon after the
// last one closes.
type receiver struct {
	mu      sync.Mutex
	epfd    int
	streams map[uint64]*Stream // by stream id, carried in each epoll event
	nextID  uint64
	running bool
}

// idlePoll bounds each epoll_wait, so that a receiver with no streams left
// notices and exits.
const idlePoll = 100 * time.Millisecond

// add registers a stream's socket.
func (r *receiver) add(s *Stream) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.epfd == 0 {
		fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			return err
		}
		r.epfd = fd
		r.streams = map[uint64]*Stream{}
	}
	r.nextID++
	s.rxID = r.nextID
	if err := r.watch(s.cfg.Conn.fd, s.rxID); err != nil {
		return err
	}
	if rtcp := s.cfg.Conn.rtcp; rtcp != nil {
		if err := r.watch(rtcp.fd, s.rxID|rtcpEvent); err != nil {
			_ = unix.EpollCtl(r.epfd, unix.EPOLL_CTL_DEL, s.cfg.Conn.fd, nil)
			return err
		}
	}
	r.streams[s.rxID] = s
	if !r.running {
		r.running = true
		go r.run(r.epfd)
	}
	return nil
}

// rtcpEvent marks the epoll events of a stream's RTCP socket.
const rtcpEvent = 1 << 63

// watch adds fd to the epoll set. The event carries the stream's id (in
// the Fd and Pad words), not the descriptor: a descriptor closed and
// reused by another call must not be taken for the old one.
func (r *receiver) watch(fd int, id uint64) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	ev.Fd, ev.Pad = int32(uint32(id)), int32(uint32(id>>32))
	return unix.EpollCtl(r.epfd, unix.EPOLL_CTL_ADD, fd, &ev)
}

// remove unregisters a stream; the caller closes its socket afterwards.
func (r *receiver) remove(s *Stream) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.streams[s.rxID]; !ok {
		return
	}
	delete(r.streams, s.rxID)
	_ = unix.EpollCtl(r.epfd, unix.EPOLL_CTL_DEL, s.cfg.Conn.fd, nil)
	if rtcp := s.cfg.Conn.rtcp; rtcp != nil {
		_ = unix.EpollCtl(r.epfd, unix.EPOLL_CTL_DEL, rtcp.fd, nil)
	}
}

func (r *receiver) run(epfd int) {
	events := make([]unix.EpollEvent, 32)
	rx := newRxBuffers()
	for {
		n, err := unix.EpollWait(epfd, events, int(idlePoll/time.Millisecond))
		if err != nil && !errors.Is(err, unix.EINTR) {
			n = 0
		}
		for _, ev := range events[:max(n, 0)] {
			id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			r.mu.Lock()
			s := r.streams[id&^rtcpEvent]
			r.mu.Unlock()
			switch {
			case s == nil:
			case id&rtcpEvent != 0:
				s.drainRTCP(rx)
			default:
				s.drain(rx)
			}
		}
		// Under load epoll_wait always has more: yield between batches so
		// that a pacer shard whose tick is due gets a P at once instead of
		// waiting for this goroutine's 10 ms preemption.
		runtime.Gosched()
		r.mu.Lock()
		if len(r.streams) == 0 {
			r.running = false
			unix.Close(r.epfd)
			r.epfd = 0
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
	}
}

// rxBuffers are a receiver's scratch space, reused for every packet.
type rxBuffers struct {
	buf []byte
	pcm []int16
	pkt rtp.Packet
}

func newRxBuffers() *rxBuffers {
	return &rxBuffers{buf: make([]byte, 1500), pcm: make([]int16, 1500)}
}
