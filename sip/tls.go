package sip

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/rs/zerolog"
)

// listenTLS opens the TLS listener of Options.TLSListen, if any.
func (s *Server) listenTLS() error {
	if s.opts.TLSListen == "" {
		return nil
	}
	if s.opts.TLSCertificate == nil {
		return errors.New("sip: TLSListen needs TLSCertificate")
	}
	ap, err := netip.ParseAddrPort(s.opts.TLSListen)
	if err != nil {
		return fmt.Errorf("sip tls listen %q: %w", s.opts.TLSListen, err)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", ap.String())
	if err != nil {
		return fmt.Errorf("sip listen tls %s: %w", ap, err)
	}
	s.tls = &tlsListener{
		tcpListener: newTCPListener(ln, s.opts, s.log),
		config:      &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: s.opts.TLSCertificate},
		log:         s.log.Sample(&zerolog.BurstSampler{Burst: 5, Period: time.Minute}),
	}
	s.tlsAddr = netip.AddrPortFrom(ap.Addr(), uint16(ln.Addr().(*net.TCPAddr).Port))
	return nil
}

// tlsListener is the TLS listener as sipgo sees it: the TCP listener's
// bounds on what a peer can hold (the first request's deadline covers
// the handshake too), with TLS over each connection. The handshake is
// made on the connection's first read, in the goroutine sipgo reads it
// with, so a slow peer holds up no other.
type tlsListener struct {
	*tcpListener
	config *tls.Config
	log    zerolog.Logger // sampled: a scan of the port is not a flood of lines
}

func (l *tlsListener) Accept() (net.Conn, error) {
	c, err := l.tcpListener.Accept()
	if err != nil {
		return nil, err
	}
	return &tlsConn{Conn: tls.Server(c, l.config), log: l.log}, nil
}

// tlsConn is one TLS connection accepted.
type tlsConn struct {
	*tls.Conn
	log zerolog.Logger
}

// Read reads as tls.Conn does, but a failed handshake or a broken
// record reads as the end of the connection, logged here once: sipgo
// logs any error but the end as its own error, and a peer that does not
// speak TLS, or does not trust the certificate, is the peer's problem.
func (c *tlsConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		c.log.Info().Err(err).Str("source", c.RemoteAddr().String()).Msg("sip: tls connection closed")
		return n, io.EOF
	}
	return n, err
}
