package media

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
)

// PortRange is the UDP range RTP ports are taken from. RTP uses even ports,
// leaving the odd one above for RTCP (RFC 3550 §11).
type PortRange struct {
	Low, High int
}

// ParsePortRange parses "10000-20000".
func ParsePortRange(s string) (PortRange, error) {
	lo, hi, ok := strings.Cut(s, "-")
	if !ok {
		return PortRange{}, fmt.Errorf("port range %q: want LOW-HIGH", s)
	}
	l, err1 := strconv.Atoi(strings.TrimSpace(lo))
	h, err2 := strconv.Atoi(strings.TrimSpace(hi))
	if err1 != nil || err2 != nil || l < 1024 || h > 65535 || l >= h {
		return PortRange{}, fmt.Errorf("port range %q: want LOW-HIGH within 1024-65535, LOW < HIGH", s)
	}
	return PortRange{Low: l, High: h}, nil
}

// ErrNoPort means every port tried in the range was taken.
var ErrNoPort = errors.New("no free RTP port")

// Listen binds a UDP socket for RTP on ip at a random free even port of
// the range, and one for RTCP on the odd port above it (RFC 3550 §11),
// which the returned socket holds (Socket.RTCP) and closes with itself.
// Random choice keeps a port just released from being reused at once, so
// late packets of an ended call do not reach the next one. The zero
// PortRange lets the system pick any free even port with a free one
// above, for hosts with no firewall to open (and tests, which must not
// assume a range is free).
func (r PortRange) Listen(ip netip.Addr) (*Socket, error) {
	if r == (PortRange{}) {
		for range 64 {
			conn, err := ListenUDP(netip.AddrPortFrom(ip, 0))
			if err != nil {
				return nil, fmt.Errorf("rtp listen: %w", err)
			}
			if conn.LocalAddr().Port()%2 == 0 && pairRTCP(conn) == nil {
				return conn, nil
			}
			conn.Close()
		}
		return nil, ErrNoPort
	}
	evens := (r.High - r.Low + 1) / 2
	if evens < 1 {
		return nil, ErrNoPort
	}
	first := (r.Low + 1) &^ 1
	for range 64 {
		port := first + 2*rand.IntN(evens)
		if port+1 > r.High {
			continue
		}
		conn, err := ListenUDP(netip.AddrPortFrom(ip, uint16(port)))
		if err == nil {
			if err = pairRTCP(conn); err == nil {
				return conn, nil
			}
			conn.Close()
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("rtp listen: %w", err)
		}
	}
	return nil, ErrNoPort
}

// pairRTCP binds the RTCP socket of conn on the port above it.
func pairRTCP(conn *Socket) error {
	ap := conn.LocalAddr()
	rtcp, err := ListenUDP(netip.AddrPortFrom(ap.Addr(), ap.Port()+1))
	if err != nil {
		return err
	}
	conn.rtcp = rtcp
	return nil
}
