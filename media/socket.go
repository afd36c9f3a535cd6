package media

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Socket is a non-blocking UDP socket that Go's network poller never sees:
// its packets are read by a shard's receiver through its own epoll set, so
// that a thousand calls cost a few goroutines rather than a thousand
// goroutines woken fifty times a second each (their wake-ups crowd the
// scheduler, and the pacer's ticks start late behind them). Reads and
// writes allocate nothing.
type Socket struct {
	fd    int
	local netip.AddrPort
	v6    bool // an AF_INET6 socket (IPv4 peers are addressed as v4-mapped)

	mu     sync.RWMutex // held for reading by I/O, for writing by Close
	closed bool

	// rtcp is the socket on the port above, for the RTCP of the RTP this
	// one carries (RFC 3550 §11), when PortRange.Listen bound the pair.
	rtcp *Socket
}

// RTCP is the socket bound for RTCP on the port above this RTP socket's,
// nil for a socket bound alone.
func (s *Socket) RTCP() *Socket { return s.rtcp }

// ListenUDP binds a socket on ap (port 0 picks one).
func ListenUDP(ap netip.AddrPort) (*Socket, error) {
	family := unix.AF_INET
	if ap.Addr().Is6() && !ap.Addr().Is4In6() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, fmt.Errorf("udp socket: %w", err)
	}
	s := &Socket{fd: fd, v6: family == unix.AF_INET6}
	if err := unix.Bind(fd, s.sockaddr(ap)); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("udp bind %s: %w", ap, err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("udp getsockname: %w", err)
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		s.local = netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		s.local = netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(sa.Port))
	}
	return s, nil
}

// LocalAddr is the address the socket is bound to.
func (s *Socket) LocalAddr() netip.AddrPort { return s.local }

// Close closes the socket, and its RTCP socket; later reads and writes
// fail with ErrSocketClosed.
func (s *Socket) Close() error {
	if s.rtcp != nil {
		s.rtcp.Close()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return unix.Close(s.fd)
}

// ErrSocketClosed is returned by I/O on a closed Socket.
var ErrSocketClosed = errors.New("socket closed")

func (s *Socket) sockaddr(ap netip.AddrPort) unix.Sockaddr {
	if s.v6 {
		return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
	}
	return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().Unmap().As4()}
}

// WriteTo sends one datagram.
func (s *Socket) WriteTo(b []byte, to netip.AddrPort) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrSocketClosed
	}
	var (
		rsa4 unix.RawSockaddrInet4
		rsa6 unix.RawSockaddrInet6
		ptr  unsafe.Pointer
		size uintptr
	)
	port := to.Port()
	if s.v6 {
		rsa6.Family = unix.AF_INET6
		putPort(&rsa6.Port, port)
		rsa6.Addr = to.Addr().As16()
		ptr, size = unsafe.Pointer(&rsa6), unsafe.Sizeof(rsa6)
	} else {
		rsa4.Family = unix.AF_INET
		putPort(&rsa4.Port, port)
		rsa4.Addr = to.Addr().Unmap().As4()
		ptr, size = unsafe.Pointer(&rsa4), unsafe.Sizeof(rsa4)
	}
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	_, _, errno := unix.Syscall6(unix.SYS_SENDTO, uintptr(s.fd), uintptr(p), uintptr(len(b)), 0, uintptr(ptr), size)
	if errno != 0 {
		return errno
	}
	return nil
}

// ReadFrom reads one datagram without blocking; it returns unix.EAGAIN
// when none is waiting.
func (s *Socket) ReadFrom(b []byte) (int, netip.AddrPort, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, netip.AddrPort{}, ErrSocketClosed
	}
	var rsa unix.RawSockaddrAny
	size := uint32(unsafe.Sizeof(rsa))
	n, _, errno := unix.Syscall6(unix.SYS_RECVFROM, uintptr(s.fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), 0,
		uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&size)))
	if errno != 0 {
		return 0, netip.AddrPort{}, errno
	}
	return int(n), fromRaw(&rsa), nil
}

func fromRaw(rsa *unix.RawSockaddrAny) netip.AddrPort {
	switch rsa.Addr.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), getPort(&sa.Port))
	case unix.AF_INET6:
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), getPort(&sa.Port))
	}
	return netip.AddrPort{}
}

// putPort and getPort store a port in network byte order, as sockaddr
// structures keep it, whatever the machine's byte order.
func putPort(p *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(p))
	b[0], b[1] = byte(port>>8), byte(port)
}

func getPort(p *uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(p))
	return uint16(b[0])<<8 | uint16(b[1])
}
