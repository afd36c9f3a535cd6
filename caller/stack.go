package caller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/diago"
	dmedia "github.com/emiago/diago/media"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"
)

// userAgent names the caller in User-Agent and Contact.
const userAgent = "hotline-caller"

// handleTimeout bounds the wait for the far end's requests being handled
// when the call closes.
const handleTimeout = 5 * time.Second

// sipStack is one call's own SIP user agent: a sipgo UA on a socket of its
// own, served so that the far end's in-dialog requests (its BYE) reach the
// call, with diago on top for the dialog and the media.
type sipStack struct {
	ua     *sipgo.UserAgent
	dg     *diago.Diago
	closer interface{ Close() error } // the listening socket
	served chan struct{}              // closed when serving stops

	// handling counts the far end's requests being handled: its BYE must
	// be answered before the user agent closes under it.
	handling inFlight
}

// inFlight counts work in progress and tells when there is none. It is
// safe for concurrent use.
type inFlight struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n drops to 0; nil while nobody waits
}

func (f *inFlight) begin() {
	f.mu.Lock()
	f.n++
	f.mu.Unlock()
}

func (f *inFlight) end() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n--
	if f.n == 0 && f.idle != nil {
		close(f.idle)
		f.idle = nil
	}
}

// done is closed once nothing is in progress.
func (f *inFlight) done() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.idle == nil {
		f.idle = make(chan struct{})
		if f.n == 0 {
			close(f.idle)
			ch := f.idle
			f.idle = nil
			return ch
		}
	}
	return f.idle
}

// newStack binds a SIP socket on the plan's local IP (any free port) for
// its transport and serves it.
func newStack(p callPlan, log *slog.Logger) (*sipStack, error) {
	ip := p.localIP.String()
	ua, err := sipgo.NewUA(
		sipgo.WithUserAgent(userAgent),
		sipgo.WithUserAgentHostname(ip),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(log)),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(log)),
	)
	if err != nil {
		return nil, fmt.Errorf("sip user agent: %w", err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(log))
	if err != nil {
		ua.Close()
		return nil, fmt.Errorf("sip server: %w", err)
	}
	s := &sipStack{ua: ua, served: make(chan struct{})}
	var serve func() error
	var port int
	bind := net.JoinHostPort(ip, "0")
	switch p.transport {
	case "tcp":
		ln, err := net.Listen("tcp", bind)
		if err != nil {
			ua.Close()
			return nil, fmt.Errorf("sip listen: %w", err)
		}
		s.closer, port = ln, ln.Addr().(*net.TCPAddr).Port
		serve = func() error { return srv.ServeTCP(ln) }
	default:
		conn, err := net.ListenPacket("udp", bind)
		if err != nil {
			ua.Close()
			return nil, fmt.Errorf("sip listen: %w", err)
		}
		s.closer, port = conn, conn.LocalAddr().(*net.UDPAddr).Port
		serve = func() error { return srv.ServeUDP(conn) }
	}

	codecs := make([]dmedia.Codec, 0, 3)
	for _, l := range p.codecs {
		codecs = append(codecs, mediaCodec(l))
	}
	if p.DTMF != DTMFInband {
		// An analogue gateway sends keys as tones and offers no events.
		codecs = append(codecs, dmedia.CodecTelephoneEvent8000)
	}
	s.dg = diago.NewDiago(ua,
		diago.WithLogger(log),
		diago.WithServer(srv),
		diago.WithServerRequestMiddleware(func(next sipgo.RequestHandler) sipgo.RequestHandler {
			return func(req *sip.Request, tx sip.ServerTransaction) {
				s.handling.begin()
				defer s.handling.end()
				next(req, tx)
			}
		}),
		diago.WithTransport(diago.Transport{Transport: p.transport, BindHost: ip, BindPort: port}),
		diago.WithMediaConfig(diago.MediaConfig{Codecs: codecs}),
	)
	// The caller takes no calls: diago answers any INVITE to it with 480
	// once this returns.
	s.dg.HandleFunc(func(*diago.DialogServerSession) {})

	go func() {
		defer close(s.served)
		if err := serve(); err != nil && !errors.Is(err, net.ErrClosed) {
			log.Debug("sip serve", "error", err)
		}
	}()
	if p.transport == "udp" {
		// Requests leave from the served socket (diago binds its client to
		// it), which sipgo finds only once the serving goroutine has
		// registered it; before, it would try to bind the port again.
		addr := netip.AddrPortFrom(p.localIP, uint16(port)).String()
		if err := s.waitListening(addr); err != nil {
			s.close()
			return nil, err
		}
	}
	return s, nil
}

func (s *sipStack) waitListening(addr string) error {
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := s.ua.TransportLayer().GetConnection("udp", addr); err == nil {
			return nil
		}
		select {
		case <-s.served:
			return fmt.Errorf("sip: serving %s stopped at once", addr)
		case <-deadline.C:
			return fmt.Errorf("sip: %s not serving after 5 s", addr)
		case <-tick.C:
		}
	}
}

// close waits for requests being handled (up to handleTimeout), stops the
// user agent and waits for the serving goroutine.
func (s *sipStack) close() {
	t := time.NewTimer(handleTimeout)
	select {
	case <-s.handling.done():
	case <-t.C:
	}
	t.Stop()
	s.ua.Close()
	s.closer.Close()
	<-s.served
}

// mediaCodec is diago's description of a law.
func mediaCodec(l law) dmedia.Codec {
	if l.name == pcma.name {
		return dmedia.CodecAudioAlaw
	}
	return dmedia.CodecAudioUlaw
}

// fromHeader is the caller's From: user@local-ip.
func fromHeader(user string, ip netip.Addr) *sip.FromHeader {
	return &sip.FromHeader{
		Address: sip.Uri{Scheme: "sip", User: user, Host: ip.String()},
		Params:  sip.NewParams(),
	}
}

// inviteStatus follows the responses to the INVITE.
type inviteStatus struct {
	code     int
	reason   string
	answered time.Time
}

// invite places the call and waits for the answer (and sends the ACK).
func (s *sipStack) invite(ctx context.Context, p callPlan, st *inviteStatus) (*diago.DialogClientSession, *diago.DialogMedia, error) {
	target := p.target
	headers := []sip.Header{fromHeader(p.From, p.localIP)}
	if p.Headers != nil {
		// The Call-ID is ours, so that the extra headers can name it;
		// the stack keeps a Call-ID it is given.
		id := sip.CallIDHeader(uuid.NewString())
		headers = append(headers, &id)
		headers = append(headers, p.Headers(string(id))...)
	}
	// When ctx ends the INVITE is cancelled (RFC 3261 §9.1: once a
	// provisional response came). A far end that said nothing at all has
	// nothing to cancel: the INVITE is abandoned at once rather than
	// after Timer B (32 s), so that the caller's timeout bounds the call.
	var heard atomic.Bool
	inviteCtx, stop := context.WithCancelCause(context.WithoutCancel(ctx))
	defer stop(nil)
	unwatch := context.AfterFunc(ctx, func() {
		if heard.Load() {
			stop(context.Cause(ctx))
			return
		}
		stop(sipgo.WaitAnswerForceCancelErr)
	})
	defer unwatch()
	return s.dg.Invite(inviteCtx, target, diago.InviteOptions{
		Transport: p.transport,
		Headers:   headers,
		OnResponse: func(res *sip.Response) error {
			heard.Store(true)
			st.code, st.reason = res.StatusCode, res.Reason
			if res.IsSuccess() {
				st.answered = time.Now()
			}
			return nil
		},
	})
}
