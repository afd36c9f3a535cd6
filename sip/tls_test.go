package sip

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/textproto"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/internal/tlstest"
	"github.com/hotline12345/hotline/ivr"
)

// tlsCarrier is a carrier's SIP over TLS, as far as a test needs one: it
// answers every INVITE with final and passes it on.
type tlsCarrier struct {
	addr    string
	invites chan *sip.Request
}

func startTLSCarrier(t *testing.T, cert tls.Certificate, final int) *tlsCarrier {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	c := &tlsCarrier{addr: ln.Addr().String(), invites: make(chan *sip.Request, 4)}
	done := make(chan struct{})
	conns := make(chan net.Conn, 4)
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conns <- conn
			go c.serve(conn, final)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		close(conns)
		for conn := range conns {
			conn.Close()
		}
	})
	return c
}

func (c *tlsCarrier) serve(conn net.Conn, final int) {
	r := bufio.NewReader(conn)
	parser := sip.NewParser()
	for {
		raw, err := readSIPMessage(r)
		if err != nil {
			return
		}
		msg, err := parser.ParseSIP(raw)
		if err != nil {
			return
		}
		req, ok := msg.(*sip.Request)
		if !ok || req.Method != sip.INVITE {
			continue
		}
		c.invites <- req
		res := sip.NewResponseFromRequest(req, final, "Busy Here", nil)
		res.To().Params.Add("tag", "carrier")
		if _, err := io.WriteString(conn, res.String()); err != nil {
			return
		}
	}
}

// readSIPMessage reads one message off a stream: its head to the empty
// line, then Content-Length bytes of body (RFC 3261 §18.3).
func readSIPMessage(r *bufio.Reader) ([]byte, error) {
	tp := textproto.NewReader(r)
	var head []byte
	length := 0
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return nil, err
		}
		if line == "" && len(head) == 0 {
			continue // a keep-alive
		}
		head = append(head, line+"\r\n"...)
		if line == "" {
			break
		}
		if name, value, ok := cut(line); ok && (name == "content-length" || name == "l") {
			if length, err = strconv.Atoi(value); err != nil {
				return nil, err
			}
		}
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	return append(head, body...), nil
}

func cut(line string) (name, value string, ok bool) {
	for i := 0; i < len(line); i++ {
		if line[i] == ':' {
			return textproto.TrimString(lower(line[:i])), textproto.TrimString(line[i+1:]), true
		}
	}
	return "", "", false
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// A trunk with transport tls is called over TLS, its certificate checked
// against the roots of Options.TLSClient; the INVITE's Via and Contact
// name TLS and the port SIP over TLS is received on, where the carrier's
// requests in the dialog must come. A carrier whose certificate is not
// trusted is not reached.
func TestDialTrunkOverTLS(t *testing.T) {
	ca := tlstest.NewCA(t)
	own := ca.Issue("127.0.0.1").TLS(t)
	ts := startServer(t, func(o *Options, _ *callee) {
		o.TLSListen = "127.0.0.1:0"
		o.TLSCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &own, nil }
		o.TLSClient = ca.ClientConfig()
	})
	if !ts.TLSAddr().IsValid() || ts.TLSAddr().Port() == 0 || ts.TLSAddr().Port() == ts.Addr().Port() {
		t.Fatalf("SIP over TLS at %s beside %s: want a port of its own", ts.TLSAddr(), ts.Addr())
	}
	dial := func(carrier *tlsCarrier) error {
		_, err := ts.Dial(context.Background(), ivr.Number{Number: "13900000041", Trunk: ivr.TrunkRoute{
			Name: "carrier-tls", Address: carrier.addr, Transport: "tls", CallerID: "12345",
		}}, ivr.DialOptions{RingTimeout: 5 * time.Second})
		return err
	}

	carrier := startTLSCarrier(t, ca.Issue("127.0.0.1").TLS(t), sip.StatusBusyHere)
	if err := dial(carrier); !errors.Is(err, ivr.ErrBusy) {
		t.Fatalf("Dial over TLS: %v, want the carrier's busy", err)
	}
	req := <-carrier.invites
	tlsPort := int(ts.TLSAddr().Port())
	if via := req.Via(); via == nil || via.Transport != "TLS" || via.Port != tlsPort {
		t.Errorf("Via %v: want SIP/2.0/TLS and port %d", via, tlsPort)
	}
	contact := req.Contact()
	if contact == nil {
		t.Fatal("no Contact")
	}
	if tr, _ := contact.Address.UriParams.Get("transport"); tr != "tls" || contact.Address.Port != tlsPort {
		t.Errorf("Contact %s: want transport=tls and port %d", contact.Value(), tlsPort)
	}
	waitAgentLegs(t, ts, 0)

	stranger := startTLSCarrier(t, tlstest.NewCA(t).Issue("127.0.0.1").TLS(t), sip.StatusBusyHere)
	if err := dial(stranger); !errors.Is(err, ivr.ErrUnreachable) {
		t.Fatalf("Dial a carrier whose certificate no root vouches for: %v, want it unreachable", err)
	}
	select {
	case req := <-stranger.invites:
		t.Fatalf("an INVITE went to a carrier whose certificate is not trusted: %s", req.StartLine())
	default:
	}
	waitAgentLegs(t, ts, 0)
}

// keptLog keeps every log line.
type keptLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *keptLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, string(p))
	return len(p), nil
}

func (l *keptLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines)
}

// A peer that does not speak TLS to the TLS port, or does not trust the
// certificate, has its connection closed, with a line at info level:
// it is the peer's problem, not an error of the server's. (sipgo's
// transports log an error for any failed read but the connection's end,
// through the process's slog default, which this test does not see: the
// line of ours is what says the failure was read as the end.)
func TestFailedTLSHandshakeIsNoError(t *testing.T) {
	ca := tlstest.NewCA(t)
	own := ca.Issue("127.0.0.1").TLS(t)
	log := &keptLog{}
	ts := startServer(t, func(o *Options, _ *callee) {
		o.TLSListen = "127.0.0.1:0"
		o.TLSCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &own, nil }
		o.Logger = zerolog.New(log)
	})
	// Each peer waits for the server to close the connection: by then
	// the server has said what it had to.
	waitClosed := func(conn net.Conn) {
		t.Helper()
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, err := io.Copy(io.Discard, conn); err != nil {
			t.Fatalf("the connection was not closed: %v", err)
		}
	}
	plain, err := net.Dial("tcp", ts.TLSAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, err := io.WriteString(plain, "OPTIONS sip:127.0.0.1 SIP/2.0\r\nContent-Length: 0\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	waitClosed(plain)

	raw, err := net.Dial("tcp", ts.TLSAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	stranger := tlstest.NewCA(t).ClientConfig()
	stranger.ServerName = "127.0.0.1"
	var unknown x509.UnknownAuthorityError
	if err := tls.Client(raw, stranger).Handshake(); !errors.As(err, &unknown) {
		t.Fatalf("handshake of a client that trusts another CA: %v, want an unknown authority", err)
	}
	waitClosed(raw)

	closed := 0
	for _, line := range log.all() {
		var entry struct{ Level, Message string }
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if entry.Level == "error" {
			t.Errorf("an error logged for a peer's failed handshake: %s", line)
		}
		if entry.Message == "sip: tls connection closed" {
			closed++
		}
	}
	if closed != 2 {
		t.Errorf("%d lines say a TLS connection was closed, want 2: %q", closed, log.all())
	}
}
