package sip

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// decoy is a host a request's Via names but that never sent it: it must
// hear nothing from the server.
type decoy struct {
	addr     netip.AddrPort
	accepted chan net.Conn
	packets  chan []byte
}

// newDecoy listens on 127.0.0.2 over TCP and UDP on one port.
func newDecoy(t *testing.T) *decoy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr).AddrPort()
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	d := &decoy{addr: addr, accepted: make(chan net.Conn, 64), packets: make(chan []byte, 64)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d.accepted <- c
		}
	}()
	go func() {
		buf := make([]byte, 65536)
		for {
			n, err := pc.Read(buf)
			if err != nil {
				return
			}
			d.packets <- bytes.Clone(buf[:n])
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		pc.Close()
		for {
			select {
			case c := <-d.accepted:
				c.Close()
			default:
				return
			}
		}
	})
	return d
}

// heardNothing fails the test if the decoy was reached before quiet
// passed.
func (d *decoy) heardNothing(t *testing.T, quiet time.Duration) {
	t.Helper()
	select {
	case c := <-d.accepted:
		t.Errorf("the server opened a connection to %s, the host in the Via, from %s", d.addr, c.RemoteAddr())
	case p := <-d.packets:
		t.Errorf("the server sent %s, the host in the Via:\n%s", d.addr, p)
	case <-time.After(quiet):
	}
}

// A request whose TCP connection is gone before its response is not
// answered by opening a connection to the Via's host: that host never
// spoke to us, and dialling it on a stranger's word makes the server a
// tool for reaching hosts behind it (SSRF) and for reflection.
func TestResponseNeverDialsTheViaHost(t *testing.T) {
	ts := startServer(t, nil)
	d := newDecoy(t)
	// Many requests at once, then the connection closed: the server reads
	// them all and sees the connection end while it still owes replies.
	// Until it has owed one with the connection gone, again.
	for attempt := 0; ts.refusedDials.Load() == 0; attempt++ {
		if attempt == 20 {
			t.Fatal("every request was answered before its connection closed")
		}
		p := dialTCP(t, ts.Addr())
		var msg []byte
		for range 50 {
			msg = append(msg, newRawRequest("OPTIONS", "TCP", d.addr, ts.Addr()).bytes()...)
		}
		p.send(msg)
		if err := p.conn.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		// Replies written before the server closed its side may arrive.
		for {
			if _, err := p.reply(); err != nil {
				break
			}
		}
	}
	d.heardNothing(t, 500*time.Millisecond)
	// The server still serves.
	if code := newRawPeer(t, ts.Addr()).options(); code != sip.StatusOK {
		t.Errorf("OPTIONS after: %d", code)
	}
}

// Over UDP a response goes to the address the request came from (RFC
// 3261 §18.2.2 with RFC 3581's rport), never to the Via's host.
func TestUDPResponseGoesToTheSource(t *testing.T) {
	ts := startServer(t, nil)
	d := newDecoy(t)
	raw := newRawPeer(t, ts.Addr())
	req := newRawRequest("OPTIONS", "UDP", d.addr, ts.Addr())
	req.lines[1] += ";rport"
	raw.send(req.bytes())
	if res := raw.await(req.branch); res.StatusCode != sip.StatusOK {
		t.Errorf("OPTIONS: %d", res.StatusCode)
	}
	d.heardNothing(t, 500*time.Millisecond)
}

// dialTCPFrom is dialTCP from a given loopback address.
func dialTCPFrom(t *testing.T, from netip.Addr, to netip.AddrPort) *tcpPeer {
	t.Helper()
	d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(from, 0))}
	conn, err := d.Dial("tcp", to.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(waitFor)); err != nil {
		t.Fatal(err)
	}
	return &tcpPeer{t: t, conn: conn, r: bufio.NewReader(conn)}
}

// options sends an OPTIONS over the connection and returns its reply, or
// io.EOF when the server closed the connection instead.
func (p *tcpPeer) options() (*sip.Response, error) {
	p.t.Helper()
	// A write to a connection the server has closed may fail, or may not
	// until later: either way the read says what happened.
	to := p.conn.RemoteAddr().(*net.TCPAddr).AddrPort()
	_, _ = p.conn.Write(newRawRequest("OPTIONS", "TCP", p.addr(), to).bytes())
	return p.reply()
}

// closedByServer fails the test unless the server closes the connection
// within waitFor (the peer's deadline), and returns how long that took.
func (p *tcpPeer) closedByServer(from time.Time) time.Duration {
	p.t.Helper()
	if _, err := p.r.ReadByte(); !errors.Is(err, io.EOF) && !isReset(err) {
		p.t.Fatalf("want the connection closed by the server: %v", err)
	}
	return time.Since(from)
}

// A connection that sends no request is closed after the first-request
// timeout, however many bytes it trickles; one that sent a request is
// closed after the idle timeout, unless it keeps sending (RFC 5626
// keep-alives).
func TestTCPIdleConnectionsAreClosed(t *testing.T) {
	const first, idle = 300 * time.Millisecond, 600 * time.Millisecond
	ts := startServer(t, func(o *Options, _ *callee) {
		o.TCPFirstRequestTimeout, o.TCPIdleTimeout = first, idle
	})
	keepAlive := func(p *tcpPeer, d time.Duration) {
		tick := time.NewTicker(first / 4)
		defer tick.Stop()
		for stop := time.After(d); ; {
			select {
			case <-tick.C:
				if _, err := p.conn.Write([]byte("\r\n")); err != nil {
					return // closed by the server: the caller checks
				}
			case <-stop:
				return
			}
		}
	}
	t.Run("silent", func(t *testing.T) {
		start := time.Now()
		if took := dialTCP(t, ts.Addr()).closedByServer(start); took < first {
			t.Errorf("closed after %s, before the %s timeout", took, first)
		}
	})
	t.Run("keep-alives before any request", func(t *testing.T) {
		start := time.Now()
		p := dialTCP(t, ts.Addr())
		keepAlive(p, 2*first)
		p.closedByServer(start)
	})
	t.Run("after a request", func(t *testing.T) {
		p := dialTCP(t, ts.Addr())
		if res, err := p.options(); err != nil || res.StatusCode != sip.StatusOK {
			t.Fatalf("OPTIONS: %v %v", res, err)
		}
		// Kept alive well past both timeouts, it stays open.
		keepAlive(p, 2*idle)
		// The server's idle time starts when it reads the request, after
		// start: it may not close before start+idle.
		start := time.Now()
		if res, err := p.options(); err != nil || res.StatusCode != sip.StatusOK {
			t.Fatalf("OPTIONS after keep-alives: %v %v", res, err)
		}
		if took := p.closedByServer(start); took < idle {
			t.Errorf("closed after %s idle, before the %s timeout", took, idle)
		}
	})
	if code := newRawPeer(t, ts.Addr()).options(); code != sip.StatusOK {
		t.Errorf("OPTIONS over UDP after: %d", code)
	}
}

// One source holds at most TCPMaxPerSource connections; the next is
// closed at once. Other sources, and exempt ones, are not affected, and a
// closed connection frees its place.
func TestTCPConnectionsPerSource(t *testing.T) {
	const limit = 3
	exempt := netip.MustParseAddr("127.0.0.4")
	ts := startServer(t, func(o *Options, _ *callee) {
		o.TCPMaxPerSource = limit
		o.TCPExempt = func(a netip.Addr) bool { return a == exempt }
	})
	flooder, other := netip.MustParseAddr("127.0.0.5"), netip.MustParseAddr("127.0.0.3")
	var held []*tcpPeer
	for i := range limit {
		p := dialTCPFrom(t, flooder, ts.Addr())
		if res, err := p.options(); err != nil || res.StatusCode != sip.StatusOK {
			t.Fatalf("connection %d: %v %v", i+1, res, err)
		}
		held = append(held, p)
	}
	if res, err := dialTCPFrom(t, flooder, ts.Addr()).options(); !errors.Is(err, io.EOF) {
		t.Errorf("connection %d: %v %v, want it closed", limit+1, res, err)
	}
	if res, err := dialTCPFrom(t, other, ts.Addr()).options(); err != nil || res.StatusCode != sip.StatusOK {
		t.Errorf("another source: %v %v", res, err)
	}
	for i := range limit + 2 {
		if res, err := dialTCPFrom(t, exempt, ts.Addr()).options(); err != nil || res.StatusCode != sip.StatusOK {
			t.Errorf("exempt source, connection %d: %v %v", i+1, res, err)
		}
	}
	held[0].conn.Close()
	deadline := time.Now().Add(waitFor)
	for ts.tcp.openFrom(flooder) != limit-1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections counted from %s after one closed", ts.tcp.openFrom(flooder), flooder)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if res, err := dialTCPFrom(t, flooder, ts.Addr()).options(); err != nil || res.StatusCode != sip.StatusOK {
		t.Errorf("after one closed: %v %v", res, err)
	}
}
