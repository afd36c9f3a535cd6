package sip

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// Defaults of the TCP settings in Options.
const (
	// DefaultTCPIdleTimeout is above RFC 5626 §4.4.1's keep-alive interval
	// for connection-oriented flows (at most 120 s), so a phone that
	// keeps its flow alive keeps its connection.
	DefaultTCPIdleTimeout = 3 * time.Minute
	// DefaultTCPFirstRequestTimeout gives a new connection this long to
	// send its first request, whatever it sends meanwhile.
	DefaultTCPFirstRequestTimeout = 10 * time.Second
	// DefaultTCPMaxPerSource is far more connections than one phone or
	// trunk holds, and few enough that one address cannot use up the
	// server's file descriptors.
	DefaultTCPMaxPerSource = 32
)

// tcpWriteTimeout bounds one write to a TCP peer: a peer that stops
// reading must not hold the goroutine answering it.
const tcpWriteTimeout = 10 * time.Second

// sourceKey is what per-source limits count by: an IPv4 address as itself,
// an IPv6 address by its /64, since one host is commonly given a whole
// /64 (as package ban counts).
func sourceKey(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64)
	return p
}

// tcpListener is the server's TCP listener as sipgo sees it. It bounds
// what a peer can hold: at most maxPerSource connections open from one
// source (sources exempt aside); a new connection closed unless it sends
// a request that passes validation within firstRequest; and once it has,
// closed after idle without a byte. Without these, connections that send
// nothing stay open for ever (sipgo sets no deadline) and one address can
// open as many as the server has file descriptors.
type tcpListener struct {
	net.Listener
	idle, firstRequest time.Duration
	maxPerSource       int
	// exempt says a source is not held to maxPerSource (trunks, agents'
	// offices behind one address); nil exempts none.
	exempt func(netip.Addr) bool
	log    zerolog.Logger // sampled: a flood of refusals is not a flood of lines

	mu       sync.Mutex
	open     map[netip.Prefix]int // connections open, by source
	byRemote map[string]*tcpConn  // by the remote address sipgo names them by
}

func newTCPListener(ln net.Listener, opts Options, log zerolog.Logger) *tcpListener {
	return &tcpListener{
		Listener:     ln,
		idle:         opts.TCPIdleTimeout,
		firstRequest: opts.TCPFirstRequestTimeout,
		maxPerSource: opts.TCPMaxPerSource,
		exempt:       opts.TCPExempt,
		log:          log.Sample(&zerolog.BurstSampler{Burst: 5, Period: time.Minute}),
		open:         map[netip.Prefix]int{},
		byRemote:     map[string]*tcpConn{},
	}
}

// Accept returns the next connection within the limits; one over its
// source's limit is closed at once. An error the listener recovers from
// (out of file descriptors) is waited out rather than returned: sipgo
// stops serving TCP on any error Accept returns.
func (l *tcpListener) Accept() (net.Conn, error) {
	var backoff time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if !temporaryAcceptError(err) {
				return nil, err
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			l.log.Warn().Err(err).Stringer("retry_in", backoff).Msg("sip: tcp accept")
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if tc := l.admit(c); tc != nil {
			return tc, nil
		}
	}
}

// temporaryAcceptError reports an Accept error the listener survives.
func temporaryAcceptError(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) ||
		errors.Is(err, syscall.ECONNABORTED)
}

// admit counts c against its source, or closes it when the source has its
// fill.
func (l *tcpListener) admit(c net.Conn) *tcpConn {
	ta, ok := c.RemoteAddr().(*net.TCPAddr)
	if !ok {
		c.Close()
		return nil
	}
	src := ta.AddrPort().Addr().Unmap()
	key := sourceKey(src)
	l.mu.Lock()
	if l.maxPerSource > 0 && l.open[key] >= l.maxPerSource && (l.exempt == nil || !l.exempt(src)) {
		l.mu.Unlock()
		c.Close()
		l.log.Warn().Str("source", key.String()).Int("max", l.maxPerSource).Msg("sip: tcp connection refused: too many from this source")
		return nil
	}
	l.open[key]++
	tc := &tcpConn{Conn: c, l: l, key: key, remote: c.RemoteAddr().String()}
	l.byRemote[tc.remote] = tc
	l.mu.Unlock()
	// The first request's deadline does not move with the bytes that
	// come before it: a byte now and then keeps nothing open.
	_ = c.SetReadDeadline(time.Now().Add(l.firstRequest))
	return tc
}

// release uncounts a closed connection.
func (l *tcpListener) release(c *tcpConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[c.key]--; l.open[c.key] <= 0 {
		delete(l.open, c.key)
	}
	if l.byRemote[c.remote] == c {
		delete(l.byRemote, c.remote)
	}
}

// requestSeen notes that the connection from remote carried a valid
// request: from now on it is held to the idle timeout.
func (l *tcpListener) requestSeen(remote string) {
	l.mu.Lock()
	c := l.byRemote[remote]
	l.mu.Unlock()
	if c != nil && !c.active.Swap(true) {
		_ = c.Conn.SetReadDeadline(time.Now().Add(l.idle))
	}
}

// openFrom counts the connections open from a's source, for tests.
func (l *tcpListener) openFrom(a netip.Addr) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open[sourceKey(a)]
}

// tcpConn is one accepted connection.
type tcpConn struct {
	net.Conn
	l      *tcpListener
	key    netip.Prefix
	remote string
	active atomic.Bool // a valid request came over it
	once   sync.Once
}

// Read reads with the connection's deadline: after a valid request, the
// idle timeout from now. A deadline passed, or a connection the peer
// reset, reads as the end of the connection: sipgo then closes it
// quietly, as it does when the peer closes.
func (c *tcpConn) Read(b []byte) (int, error) {
	if c.active.Load() {
		_ = c.Conn.SetReadDeadline(time.Now().Add(c.l.idle))
	}
	n, err := c.Conn.Read(b)
	var ne net.Error
	if err != nil && ((errors.As(err, &ne) && ne.Timeout()) || errors.Is(err, syscall.ECONNRESET)) {
		return n, io.EOF
	}
	return n, err
}

func (c *tcpConn) Write(b []byte) (int, error) {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(tcpWriteTimeout))
	return c.Conn.Write(b)
}

func (c *tcpConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c) })
	return err
}

// dialKey marks a context whose SIP requests may open connections.
type dialKey struct{}

// mayDial marks ctx: a request sent with it may open a TCP connection to
// its destination (an agent's phone, a caller's Contact for our BYE).
func mayDial(ctx context.Context) context.Context {
	return context.WithValue(ctx, dialKey{}, true)
}

// errNoDial is why a connection was not opened.
var errNoDial = errors.New("sip: no connection is opened but for requests of our own")

// dialControl lets TCP connections be opened only for the requests this
// server sends on purpose. sipgo opens one for a response too when the
// request's connection has gone: to the host the request's Via names
// (RFC 3261 §18.2.2), which nobody checked. That is how a stranger gets
// the server to connect wherever they like; the response is dropped
// instead, as its connection is gone (a peer that wants its answer keeps
// its connection open).
func (s *Server) dialControl(ctx context.Context, network, address string, _ syscall.RawConn) error {
	if v, _ := ctx.Value(dialKey{}).(bool); v {
		return nil
	}
	s.refusedDials.Add(1)
	s.sampledLog.Warn().Str("address", address).Msg("sip: response dropped: its connection is gone, and none is opened to the address its Via names")
	return errNoDial
}
