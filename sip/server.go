// Package sip is the embedded telephony backend: it answers SIP itself
// (sipgo for signalling, the media package for RTP) and hands every call to
// the flows through the ivr.Call port.
package sip

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/logging"
	"github.com/hotline12345/hotline/media"
	"github.com/hotline12345/hotline/prompts"
)

// Handler runs one call; the call ends when it returns. ctx ends with the
// call, and context.Cause(ctx) says why.
type Handler func(ctx context.Context, call ivr.Call)

// Options configure the embedded SIP server.
type Options struct {
	Listen     string   // host:port for UDP and TCP; port 0 picks one
	Transports []string // "udp", "tcp"
	// TLSListen is where SIP over TLS is received (RFC 3261 §26.2),
	// host:port (port 0 picks one); empty, nowhere. Its connections are
	// bounded as TCP's are (TCPIdleTimeout and the others).
	TLSListen string
	// TLSCertificate gives the certificate of each TLS handshake
	// (tls.Config's GetCertificate); required with TLSListen.
	TLSCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// TLSClient configures the TLS connections this server opens (to a
	// trunk with transport tls); nil checks the peer's certificate
	// against the system's roots.
	TLSClient    *tls.Config
	ExternalIP   netip.Addr
	RTPPorts     media.PortRange
	MediaTimeout time.Duration
	RingTime     time.Duration
	MaxCalls     int
	Codecs       []media.Codec // what we accept, in our order
	Catalog      *prompts.Catalog
	Pacer        *media.Pacer
	Handler      Handler
	Logger       zerolog.Logger
	UserAgent    string
	// Locator finds agents' phones for Dial; without one no agent can be
	// reached.
	Locator Locator
	// Registrar takes the agents' REGISTERs; without one this node is no
	// registrar and answers REGISTER with 405.
	Registrar *Registrar
	// ByeTimeout bounds a BYE that gets no answer; default Timer F (64*T1,
	// 32 s), the life of its transaction (RFC 3261 §17.1.2.2).
	ByeTimeout time.Duration
	// Limits bound the calls each source may start; an INVITE over its
	// source's limit is dropped unanswered, or answered 503 when it comes
	// from a trusted network. Zero limits nothing.
	Limits Limits
	// Numbers are the numbers calls are taken for: a Request-URI's user,
	// or its tel number, visual separators aside, with those the Trunks
	// bring in. A call to another gets 404 before anything is made of it.
	// Empty takes every number.
	Numbers []string
	// Trunks are the carriers' trunks: an INVITE from one's sources is
	// that trunk's call (its record names it), and has the rate of
	// Limits.TrustedCalls.
	Trunks []Trunk
	// RefuseUnknownSources refuses an INVITE from an address that is no
	// trunk's source and that no agent's phone is registered from
	// (Registrar) with 403 Forbidden. Off (the zero Options), a call is
	// taken from any address.
	RefuseUnknownSources bool
	// ProbeSecret checks the X-Hotline-Probe header that marks a call
	// as the synthetic probe's (see probe.go); empty, no call is.
	ProbeSecret string
	// Resolver looks up the hosts of trunks without sources, at New and
	// every TrunkResolveInterval (default DefaultTrunkResolveInterval)
	// while Run runs; default net.DefaultResolver.
	Resolver             Resolver
	TrunkResolveInterval time.Duration
	// AckTimeout is how long our 200 waits for its ACK before the call
	// ends with ivr.ErrNoAck; default Timer H (64*T1, 32 s), the wait RFC
	// 3261 §13.3.1.4 gives it.
	AckTimeout time.Duration

	// TCPIdleTimeout closes a TCP connection silent this long after its
	// first valid request (default DefaultTCPIdleTimeout);
	// TCPFirstRequestTimeout closes one that sends no valid request this
	// long after it opened (default DefaultTCPFirstRequestTimeout).
	TCPIdleTimeout         time.Duration
	TCPFirstRequestTimeout time.Duration
	// TCPMaxPerSource caps the TCP connections open at once from one
	// source address, an IPv6 one by its /64 (default
	// DefaultTCPMaxPerSource; negative: no cap). Sources TCPExempt
	// reports are not held to it; without it, trusted networks and
	// agents' addresses (Limits) are not.
	TCPMaxPerSource int
	TCPExempt       func(netip.Addr) bool
}

// Server is the embedded SIP server.
type Server struct {
	opts   Options
	log    zerolog.Logger
	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	client *sipgo.Client
	// tlsClient sends the requests over TLS; nil without
	// Options.TLSListen.
	tlsClient *sipgo.Client

	dialogs  map[string]*sipgo.DialogServerCache // by transport
	contacts map[string]*sip.ContactHeader       // by transport
	clips    map[clipKey]*media.Clip

	udp      net.PacketConn
	tcp      *tcpListener
	tls      *tlsListener // nil without Options.TLSListen
	addr     netip.AddrPort
	tlsAddr  netip.AddrPort
	mediaIP  netip.Addr
	draining atomic.Bool

	baseCtx    context.Context // parent of every call; cancelled with ErrShutdown
	baseCancel context.CancelCauseFunc

	mu        sync.Mutex
	calls     map[string]*call // by dialog id
	admitting int              // INVITEs admitted and not yet calls
	idle      chan struct{}    // closed when the last call ends, made by waitIdle
	agents    agentLegs        // calls to agents' phones

	refusedDials atomic.Uint64  // connections not opened for a response (dialControl)
	sampledLog   zerolog.Logger // for what a flood repeats

	adm        *admission
	trunks     *trunkSources
	seize      atomic.Pointer[SeizeFunc]
	numbers    map[string]bool // Options.Numbers and the trunks', without separators; nil: every number
	untrusted  int             // calls admitted from untrusted sources, in progress; guarded by mu
	refused    refusalCounts   // INVITEs dropped or refused by admission
	unknownLog *sourceLog      // refusals of unknown sources logged

	byes      sync.WaitGroup // BYE transactions still running
	byeCtx    context.Context
	byeCancel context.CancelFunc // gives up on BYEs still unanswered at shutdown
}

type clipKey struct {
	id   prompts.ID
	lang prompts.Lang
}

// sipgo sends no UDP message over UDPMTUSize-200 bytes (1300): it follows
// RFC 3261 §18.1.1, which has a request that large go over TCP, but it
// refuses responses too, which §18.2.2 sends over the transport their
// request came on whatever their size. A request through a few proxies
// (its Vias copied into the response) or with long headers then goes
// unanswered (RFC 4475 §3.1.1.6). The limit is a package variable of
// sipgo, so it is set once, before any server or client of this process
// runs; the largest UDP payload is the limit now.
func init() {
	sip.UDPMTUSize = 65507 + 200
}

// New prepares a server: the prompts encoded for every codec, the SIP stack,
// and the listening sockets, so Addr is known before Run.
func New(opts Options) (*Server, error) {
	if opts.Handler == nil || opts.Catalog == nil || opts.Pacer == nil {
		return nil, errors.New("sip: Handler, Catalog and Pacer are required")
	}
	if len(opts.Codecs) == 0 {
		opts.Codecs = []media.Codec{media.PCMU, media.PCMA}
	}
	if len(opts.Transports) == 0 {
		opts.Transports = []string{"udp", "tcp"}
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "hotline"
	}
	if opts.MaxCalls <= 0 {
		opts.MaxCalls = 2000
	}
	if opts.ByeTimeout <= 0 {
		opts.ByeTimeout = sip.Timer_F
	}
	if opts.AckTimeout <= 0 {
		opts.AckTimeout = sip.Timer_H
	}
	if opts.TCPIdleTimeout <= 0 {
		opts.TCPIdleTimeout = DefaultTCPIdleTimeout
	}
	if opts.TCPFirstRequestTimeout <= 0 {
		opts.TCPFirstRequestTimeout = DefaultTCPFirstRequestTimeout
	}
	if opts.TCPMaxPerSource == 0 {
		opts.TCPMaxPerSource = DefaultTCPMaxPerSource
	}
	if opts.TrunkResolveInterval <= 0 {
		opts.TrunkResolveInterval = DefaultTrunkResolveInterval
	}
	s := &Server{
		opts:       opts,
		log:        opts.Logger,
		sampledLog: opts.Logger.Sample(&zerolog.BurstSampler{Burst: 10, Period: time.Minute}),
		clips:      map[clipKey]*media.Clip{},
		calls:      map[string]*call{},
		dialogs:    map[string]*sipgo.DialogServerCache{},
		contacts:   map[string]*sip.ContactHeader{},
		numbers:    servedNumbers(opts.Numbers, opts.Trunks),
		trunks:     newTrunkSources(opts.Trunks, opts.Resolver),
		unknownLog: newSourceLog(unknownLogPeriod, unknownLogSources),
	}
	s.resolveTrunks(context.Background(), true)
	var isAgent func(netip.Addr) bool
	if opts.Registrar != nil {
		isAgent = opts.Registrar.AgentAt
	}
	s.adm = newAdmission(opts.Limits, isAgent)
	s.adm.trunks = s.trunks
	if s.opts.TCPExempt == nil {
		s.opts.TCPExempt = func(a netip.Addr) bool { return s.adm.classify(a) != untrusted }
	}
	s.baseCtx, s.baseCancel = context.WithCancelCause(context.Background())
	// Our BYEs may open a connection to the peer they end a call with.
	s.byeCtx, s.byeCancel = context.WithCancel(mayDial(context.Background()))
	for _, id := range opts.Catalog.IDs() {
		for _, lang := range opts.Catalog.Langs() {
			p, err := opts.Catalog.Get(id, lang)
			if err != nil {
				return nil, err
			}
			s.clips[clipKey{id, lang}] = media.NewClip(p.PCM, p)
		}
	}
	if err := s.listen(); err != nil {
		return nil, err
	}
	if err := s.listenTLS(); err != nil {
		s.closeListeners()
		return nil, err
	}
	if err := s.initStack(); err != nil {
		s.closeListeners()
		return nil, err
	}
	return s, nil
}

func (s *Server) listen() error {
	ap, err := netip.ParseAddrPort(s.opts.Listen)
	if err != nil {
		return fmt.Errorf("sip listen %q: %w", s.opts.Listen, err)
	}
	// UDP and TCP share one port number; with port 0 the UDP socket picks
	// it and TCP follows.
	for attempt := 0; ; attempt++ {
		err := s.listenOn(ap)
		if err == nil || ap.Port() != 0 || attempt >= 10 {
			return err
		}
	}
}

func (s *Server) listenOn(ap netip.AddrPort) error {
	var lc net.ListenConfig
	port := ap.Port()
	if s.has("udp") {
		udp, err := lc.ListenPacket(context.Background(), "udp", ap.String())
		if err != nil {
			return fmt.Errorf("sip listen udp %s: %w", ap, err)
		}
		s.udp = udp
		port = uint16(udp.LocalAddr().(*net.UDPAddr).Port)
	}
	if s.has("tcp") {
		tcp, err := lc.Listen(context.Background(), "tcp", netip.AddrPortFrom(ap.Addr(), port).String())
		if err != nil {
			s.closeListeners()
			return fmt.Errorf("sip listen tcp %s: %w", ap, err)
		}
		s.tcp = newTCPListener(tcp, s.opts, s.log)
		port = uint16(tcp.Addr().(*net.TCPAddr).Port)
	}
	s.addr = netip.AddrPortFrom(ap.Addr(), port)
	s.mediaIP = ap.Addr()
	if s.opts.ExternalIP.IsValid() {
		s.mediaIP = s.opts.ExternalIP
	}
	if s.mediaIP.IsUnspecified() {
		return fmt.Errorf("sip: listening on %s needs external_ip for SDP and Contact", ap.Addr())
	}
	return nil
}

func (s *Server) has(transport string) bool {
	if strings.EqualFold(transport, "tls") {
		return s.tls != nil
	}
	for _, t := range s.opts.Transports {
		if strings.EqualFold(t, transport) {
			return true
		}
	}
	return false
}

func (s *Server) closeListeners() {
	if s.udp != nil {
		s.udp.Close()
	}
	if s.tcp != nil {
		s.tcp.Close()
	}
	if s.tls != nil {
		s.tls.Close()
	}
}

func (s *Server) initStack() error {
	slog := logging.Slog(s.log)
	dialer := func(laddr net.Addr) net.Dialer {
		return net.Dialer{Timeout: dialTimeout, LocalAddr: laddr, ControlContext: s.dialControl}
	}
	clientTLS := s.opts.TLSClient
	if clientTLS == nil {
		clientTLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	ua, err := sipgo.NewUA(
		sipgo.WithUserAgenTLSConfig(clientTLS),
		sipgo.WithUserAgent(s.opts.UserAgent),
		sipgo.WithUserAgentHostname(s.mediaIP.String()),
		sipgo.WithUserAgentParser(newParser()),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(slog),
			// A response that matches no transaction goes to the core (RFC
			// 3261 §17.1.1.2), which has no use for it: a late
			// retransmission or a stray. sipgo's default logs it through
			// the global slog logger.
			sip.WithTransactionLayerUnhandledResponseHandler(func(res *sip.Response) {
				s.log.Debug().Str("response", res.Short()).Msg("sip: response for no transaction dropped")
			})),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(slog),
			sip.WithTransportLayerTransports(sip.TransportsConfig{
				TCP: &sip.TransportTCP{DialerCreate: dialer},
				TLS: &sip.TransportTLS{TransportTCP: &sip.TransportTCP{DialerCreate: dialer}},
			})),
	)
	if err != nil {
		return fmt.Errorf("sip: %w", err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(slog))
	if err != nil {
		return fmt.Errorf("sip: %w", err)
	}
	client, err := sipgo.NewClient(ua, sipgo.WithClientLogger(slog), sipgo.WithClientHostname(s.mediaIP.String()))
	if err != nil {
		return fmt.Errorf("sip: %w", err)
	}
	s.ua, s.srv, s.client = ua, srv, client
	transports := []string{"udp", "tcp"}
	if s.tls != nil {
		transports = append(transports, "tls")
		// Over TLS the Via's sent-by is the port SIP over TLS is
		// received on, where a response goes when the request's
		// connection is gone (RFC 3261 §18.2.2); sipgo's client has one
		// Via port for every transport.
		if s.tlsClient, err = sipgo.NewClient(ua, sipgo.WithClientLogger(slog), sipgo.WithClientHostname(s.mediaIP.String()),
			sipgo.WithClientPort(int(s.tlsAddr.Port()))); err != nil {
			return fmt.Errorf("sip: %w", err)
		}
	}
	for _, t := range transports {
		contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: s.mediaIP.String(), Port: int(s.addr.Port())}}
		if t == "tls" {
			// sip: with transport=tls rather than sips: (RFC 5630 §3.1.3):
			// the hop to us is over TLS, which is all this Contact says.
			contact.Address.Port = int(s.tlsAddr.Port())
		}
		if t != "udp" {
			contact.Address.UriParams = sip.NewParams()
			contact.Address.UriParams.Add("transport", t)
		}
		s.dialogs[t] = sipgo.NewDialogServerCache(s.clientFor(t), contact)
		s.contacts[t] = &contact
	}
	srv.OnInvite(s.guard(s.onInvite))
	srv.OnAck(s.guard(s.onAck))
	srv.OnBye(s.guard(s.onBye))
	srv.OnCancel(s.guard(s.onCancel))
	srv.OnOptions(s.guard(s.onOptions))
	srv.OnInfo(s.guard(s.onInfo))
	srv.OnRegister(s.guard(s.onRegister))
	for _, m := range methods {
		if !slices.Contains(handled, m) {
			srv.OnRequest(m, s.guard(s.notAllowed))
		}
	}
	// guard answers a method it does not recognise with 501.
	srv.OnNoRoute(s.guard(s.notAllowed))
	return nil
}

// dialTimeout bounds opening a TCP connection for a request of ours.
const dialTimeout = 10 * time.Second

// clientFor is the client that sends requests over transport.
func (s *Server) clientFor(transport string) *sipgo.Client {
	if strings.EqualFold(transport, "tls") && s.tlsClient != nil {
		return s.tlsClient
	}
	return s.client
}

// Addr is the address SIP listens on.
func (s *Server) Addr() netip.AddrPort { return s.addr }

// udpLaddr is the local address of every request sent over UDP: the port
// SIP listens on. A peer behind NAT takes requests only on the flow its
// own request opened (RFC 5626 §5.3), and a request sent from a port of
// its own would leave sipgo a connection that nothing closes once the
// peer writes to the listening port.
func (s *Server) udpLaddr() sip.Addr {
	return sip.Addr{IP: net.IP(s.addr.Addr().AsSlice()), Port: int(s.addr.Port())}
}

// TLSAddr is the address SIP over TLS listens on; zero without
// Options.TLSListen.
func (s *Server) TLSAddr() netip.AddrPort { return s.tlsAddr }

// Run serves SIP until ctx is done, then ends every call still up with
// ErrShutdown and waits for their handlers.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 3)
	serving := 0
	if s.udp != nil {
		serving++
		go func() { errc <- s.srv.ServeUDP(s.udp) }()
	}
	if s.tcp != nil {
		serving++
		go func() { errc <- s.srv.ServeTCP(s.tcp) }()
	}
	if s.tls != nil {
		serving++
		go func() { errc <- s.srv.ServeTLS(s.tls) }()
	}
	s.log.Info().Str("addr", s.addr.String()).Strs("transports", s.opts.Transports).Msg("sip listening")
	if s.tls != nil {
		s.log.Info().Str("addr", s.tlsAddr.String()).Msg("sip listening over tls")
	}
	if s.trunks.resolving() {
		resolveCtx, stopResolving := context.WithCancel(ctx)
		resolved := make(chan struct{})
		go func() {
			defer close(resolved)
			s.keepResolvingTrunks(resolveCtx)
		}()
		defer func() {
			stopResolving()
			<-resolved
		}()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		serving--
	}
	s.EndAll(ivr.ErrShutdown)
	_ = s.waitIdle(context.Background())
	s.waitByes(hangupTimeout)
	s.closeListeners()
	s.srv.Close()
	s.client.Close()
	s.ua.Close()
	for ; serving > 0; serving-- {
		<-errc
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("sip serve: %w", err)
	}
	return nil
}

// sendBye sends a BYE and lets its transaction run its course apart from
// the call it ends: over UDP it is retransmitted until answered or until
// Timer F. The returned channel is closed when the transaction is over;
// the call's end waits for it only as long as the caller of Hangup
// allows. A BYE that gets no final answer, or one other than 200 or 481
// (the peer had already forgotten the dialog), is logged.
func (s *Server) sendBye(log zerolog.Logger, to string, send func(context.Context) error) <-chan struct{} {
	done := make(chan struct{})
	s.byes.Go(func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(s.byeCtx, s.opts.ByeTimeout)
		defer cancel()
		err := send(ctx)
		var resp sipgo.ErrDialogResponse
		if errors.As(err, &resp) && resp.Res.StatusCode == sip.StatusCallTransactionDoesNotExists {
			return
		}
		if err != nil {
			log.Warn().Err(err).Str("to", to).Msg("bye unanswered")
		}
	})
	return done
}

// waitByes waits for the BYEs still running, giving up on them after d.
func (s *Server) waitByes(d time.Duration) {
	done := make(chan struct{})
	go func() {
		s.byes.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
		s.byeCancel()
		<-done
	}
}

// Drain stops taking new calls (INVITE and OPTIONS get 503) and waits for
// the calls in progress to end, or for ctx to be done.
func (s *Server) Drain(ctx context.Context) error {
	s.draining.Store(true)
	return s.waitIdle(ctx)
}

// waitIdle waits until no call is in progress.
func (s *Server) waitIdle(ctx context.Context) error {
	s.mu.Lock()
	if len(s.calls)+s.admitting+len(s.agents.all) == 0 {
		s.mu.Unlock()
		return nil
	}
	if s.idle == nil {
		s.idle = make(chan struct{})
	}
	idle := s.idle
	s.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// EndAll ends every call in progress with cause; the flows then hang up.
func (s *Server) EndAll(cause error) {
	s.draining.Store(true)
	s.baseCancel(cause)
}

// ActiveCalls counts the calls in progress.
func (s *Server) ActiveCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

// guard validates every request before its handler sees it, and recovers a
// panic in the handler: sipgo's dispatch has none, and one bad message must
// not take the server down.
func (s *Server) guard(h sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		defer func() {
			if p := recover(); p != nil {
				s.log.Error().Str("panic", fmt.Sprint(p)).Bytes("stack", debug.Stack()).
					Str("method", string(req.Method)).Msg("sip handler panicked")
				if tx != nil && !req.IsAck() {
					respond(tx, req, sip.StatusInternalServerError, "Server Internal Error")
				}
			}
		}()
		if req.Method == sip.INVITE && !namesDialog(req) && !s.admitted(req, tx) {
			return
		}
		if r := s.check(req); r != nil {
			s.log.Warn().Int("status", r.code).Str("reason", r.reason).Str("method", string(req.Method)).
				Str("source", req.Source()).Msg("sip: request refused")
			// An ACK has no response of its own; a bad one is dropped.
			if tx != nil && !req.IsAck() {
				refuse(tx, req, r)
			}
			return
		}
		switch {
		case s.tcp != nil && strings.EqualFold(req.Transport(), "tcp"):
			s.tcp.requestSeen(req.Source())
		case s.tls != nil && strings.EqualFold(req.Transport(), "tls"):
			s.tls.requestSeen(req.Source())
		}
		h(req, tx)
	}
}

func respond(tx sip.ServerTransaction, req *sip.Request, code int, reason string, headers ...sip.Header) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	for _, h := range headers {
		res.AppendHeader(h)
	}
	_ = tx.Respond(res)
}

func (s *Server) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if _, ok := tag(req.To().Params); ok {
		s.onReInvite(req, tx)
		return
	}
	if s.draining.Load() {
		respond(tx, req, sip.StatusServiceUnavailable, "Service Unavailable", sip.NewHeader("Retry-After", "30"))
		return
	}
	if req.Contact() == nil {
		reject(tx, req, errors.New("missing Contact"))
		return
	}
	if !s.serves(number(req.Recipient)) {
		s.sampledLog.Info().Str("dialled", number(req.Recipient)).Str("source", req.Source()).Msg("sip: call to a number not served")
		respond(tx, req, sip.StatusNotFound, "Not Found")
		return
	}
	// The source is looked at after its rate (admitted, in guard): a
	// 403 is an answer, kept and sent again for 32 s like any (RFC 3261
	// §17.2.1), and an unknown source gets no more of them than its
	// rate allows.
	src := sourceAddr(req)
	trunk, known := s.knownSource(src)
	if !known && s.opts.RefuseUnknownSources {
		s.refuseUnknownSource(req, tx, src)
		return
	}
	release := func(bool) {}
	if seize := s.seize.Load(); trunk != "" && seize != nil {
		r, err := (*seize)(context.Background(), trunk)
		if err != nil {
			// Every channel of the trunk is in use (on whichever node):
			// the carrier is told to try elsewhere, or later.
			s.sampledLog.Warn().Err(err).Str("trunk", trunk).Msg("sip: call refused: the trunk's channels are all in use")
			respond(tx, req, sip.StatusServiceUnavailable, "Service Unavailable", sip.NewHeader("Retry-After", "5"))
			return
		}
		release = r
	}
	var answeredCall *call
	defer func() { release(answeredCall != nil && answeredCall.answered.Load()) }()
	if r := sdpBodyRefusal(req); r != nil {
		refuse(tx, req, r)
		return
	}
	fromUntrusted := s.adm.classify(src) == untrusted
	switch s.admit(fromUntrusted) {
	case errCallLimit:
		s.log.Warn().Int("max_calls", s.opts.MaxCalls).Msg("sip: call limit reached")
		respond(tx, req, sip.StatusServiceUnavailable, "Service Unavailable", sip.NewHeader("Retry-After", "5"))
		return
	case errUntrustedLimit:
		// As a flood over its rate: unanswered.
		s.refused.untrustedCalls.Add(1)
		s.sampledLog.Warn().Int("max_calls", s.opts.Limits.MaxCalls).Str("source", req.Source()).
			Msg("sip: call dropped: calls from untrusted sources at their limit")
		return
	}
	admitted := true // until newCall counts the call
	defer func() {
		if admitted {
			s.unadmit(fromUntrusted)
		}
	}()
	respond(tx, req, sip.StatusTrying, "Trying")

	// An INVITE without a body is a late offer (RFC 3261 §13.2.1): ours
	// goes in the 200 and the answer comes in the ACK.
	var o *offer
	if len(req.Body()) > 0 {
		x, err := parseOffer(req.Body(), s.opts.Codecs)
		if err != nil {
			s.log.Info().Err(err).Str("sip_call_id", req.CallID().Value()).Msg("sip: offer not acceptable")
			respond(tx, req, sip.StatusNotAcceptableHere, "Not Acceptable Here",
				sip.NewHeader("Warning", `304 hotline "`+err.Error()+`"`))
			return
		}
		o = &x
	}
	conn, err := s.opts.RTPPorts.Listen(s.mediaIP)
	if err != nil {
		s.log.Error().Err(err).Msg("sip: rtp port")
		respond(tx, req, sip.StatusServiceUnavailable, "Service Unavailable")
		return
	}
	dlg, err := s.dialogFor(req).ReadInvite(req, tx)
	if err != nil {
		conn.Close()
		reject(tx, req, err)
		return
	}
	c, err := s.newCall(req, tx, dlg, o, conn, trunk)
	if err != nil {
		conn.Close()
		s.log.Error().Err(err).Msg("sip: rtp stream")
		_ = dlg.Respond(sip.StatusServiceUnavailable, "Service Unavailable", nil)
		return
	}
	admitted = false
	c.untrusted = fromUntrusted
	answeredCall = c
	s.endCall(c, s.runHandler(c))
}

// SeizeFunc takes one of a trunk's channels for a call coming in on it,
// or fails when every channel is in use; release gives it back when the
// call ends, saying whether it was answered.
type SeizeFunc func(ctx context.Context, trunk string) (release func(answered bool), err error)

// SetSeize makes every call that comes in on a trunk take one of its
// channels first (SeizeFunc): a trunk whose channels are all in use is
// told 503 with Retry-After. Set it before Run.
func (s *Server) SetSeize(f SeizeFunc) { s.seize.Store(&f) }

var (
	errCallLimit      = errors.New("call limit reached")
	errUntrustedLimit = errors.New("calls from untrusted sources at their limit")
)

// admit takes a call slot for an INVITE, and one of the untrusted sources'
// when it comes from one. Checking the limits and taking the slots are
// one step: INVITEs arriving together each run on their own goroutine,
// and would all pass a check made apart from the counting.
func (s *Server) admit(fromUntrusted bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.calls)+s.admitting >= s.opts.MaxCalls {
		return errCallLimit
	}
	if fromUntrusted && s.opts.Limits.MaxCalls > 0 && s.untrusted >= s.opts.Limits.MaxCalls {
		return errUntrustedLimit
	}
	s.admitting++
	if fromUntrusted {
		s.untrusted++
	}
	return nil
}

// unadmit gives back the slots of an INVITE that did not become a call.
func (s *Server) unadmit(fromUntrusted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.admitting--
	if fromUntrusted {
		s.untrusted--
	}
	s.notifyIdleLocked()
}

// admitted takes a token of the INVITE's source for a new call. Without
// one, a trunk is told 503 with Retry-After (RFC 3261 §21.5.4), so that it
// sends its calls elsewhere meanwhile; any other source gets no answer: an
// answer would keep a transaction for 32 s and be sent again up to ten
// times (§17.2.1), to an address a flood may have made up.
func (s *Server) admitted(req *sip.Request, tx sip.ServerTransaction) bool {
	class, ok := s.adm.allow(sourceAddr(req))
	if ok {
		return true
	}
	s.refused.rate[class].Add(1)
	s.sampledLog.Warn().Str("source", req.Source()).Str("class", class.String()).
		Msg("sip: new call refused: its source is over its rate")
	if class == trustedSource && tx != nil {
		respond(tx, req, sip.StatusServiceUnavailable, "Service Unavailable", sip.NewHeader("Retry-After", "1"))
	}
	return false
}

// namesDialog reports whether a request names a dialog: its To has a tag.
func namesDialog(req *sip.Request) bool {
	if to := req.To(); to != nil {
		_, ok := tag(to.Params)
		return ok
	}
	return false
}

// sourceAddr is the address a request came from.
func sourceAddr(req *sip.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// refusalCounts are the INVITEs admission turned away.
type refusalCounts struct {
	rate           [sourceClasses]atomic.Uint64 // over their source's rate, by class
	untrustedCalls atomic.Uint64                // over Limits.MaxCalls
	unknownSource  atomic.Uint64                // refused 403: no trunk's, no phone's
}

// AdmissionStats count the INVITEs admission turned away.
type AdmissionStats struct {
	// OverRate are the INVITEs dropped because their source was over its
	// rate, by kind of source: "untrusted", "agent", "trusted".
	OverRate map[string]uint64
	// UntrustedCalls are those dropped because the calls from untrusted
	// sources were at Limits.MaxCalls.
	UntrustedCalls uint64
	// UnknownSource are those refused with 403 because their source was
	// no trunk's and no registered phone's (Options.RefuseUnknownSources).
	UnknownSource uint64
}

// Admission returns the counts of INVITEs admission turned away.
func (s *Server) Admission() AdmissionStats {
	st := AdmissionStats{
		OverRate:       map[string]uint64{},
		UntrustedCalls: s.refused.untrustedCalls.Load(),
		UnknownSource:  s.refused.unknownSource.Load(),
	}
	for c := range sourceClasses {
		st.OverRate[c.String()] = s.refused.rate[c].Load()
	}
	return st
}

// notifyIdleLocked wakes waitIdle when nothing is in progress.
func (s *Server) notifyIdleLocked() {
	if len(s.calls)+s.admitting+len(s.agents.all) == 0 && s.idle != nil {
		close(s.idle)
		s.idle = nil
	}
}

var errHandlerPanicked = errors.New("call handler panicked")

// runHandler runs the flow of one call and reports whether it panicked: a
// bug in one flow ends that call, not the server (sipgo's dispatch has no
// recover).
func (s *Server) runHandler(c *call) (panicked bool) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error().Str("panic", fmt.Sprint(p)).Bytes("stack", debug.Stack()).Msg("call handler panicked")
			c.end(fmt.Errorf("%w: %v", errHandlerPanicked, p))
			panicked = true
		}
	}()
	s.opts.Handler(c.ctx, c)
	return false
}

// serves reports whether calls to n are taken.
func (s *Server) serves(n string) bool {
	if s.numbers == nil {
		return true
	}
	return s.numbers[withoutSeparators(n)]
}

// servedNumbers are the numbers calls are taken for, without separators:
// numbers and those the trunks bring in; nil, every number, when numbers
// is empty.
func servedNumbers(numbers []string, trunks []Trunk) map[string]bool {
	if len(numbers) == 0 {
		return nil
	}
	served := map[string]bool{}
	for _, n := range numbers {
		served[withoutSeparators(n)] = true
	}
	for _, t := range trunks {
		for _, n := range t.Numbers {
			served[withoutSeparators(n)] = true
		}
	}
	delete(served, "")
	return served
}

// withoutSeparators drops the visual separators of a phone number (RFC
// 3966 §5.1.1).
func withoutSeparators(n string) string {
	return strings.Map(func(r rune) rune {
		if strings.ContainsRune("-.()", r) {
			return -1
		}
		return r
	}, n)
}

// number is the user a URI names: a SIP URI's user part, or a tel URI's
// number (RFC 3966) without its parameters and visual separators, as a
// trunk sends the number dialled.
func number(u sip.Uri) string {
	if !strings.EqualFold(u.Scheme, "tel") {
		return u.User
	}
	n, _, _ := strings.Cut(u.Raw(), ";")
	return withoutSeparators(n)
}

// sdpBodyRefusal refuses an INVITE whose body this server cannot read
// (415, with what it reads, RFC 3261 §21.4.13) or whose Accept leaves out
// the SDP every 200 of ours carries (406, §21.4.7; RFC 4475 §3.3.6 and
// §3.3.15).
func sdpBodyRefusal(req *sip.Request) *refusal {
	if len(req.Body()) > 0 {
		ct := req.ContentType()
		if ct == nil {
			return badRequest("a body without Content-Type")
		}
		if mediaType(ct.Value()) != "application/sdp" {
			return &refusal{code: sip.StatusUnsupportedMediaType, reason: "Unsupported Media Type",
				headers: []sip.Header{sip.NewHeader("Accept", "application/sdp")}}
		}
	}
	accepts := req.GetHeaders("Accept")
	if len(accepts) == 0 {
		return nil
	}
	for _, h := range accepts {
		for v := range strings.SplitSeq(h.Value(), ",") {
			switch mediaType(v) {
			case "application/sdp", "application/*", "*/*":
				return nil
			}
		}
	}
	return &refusal{code: sip.StatusNotAcceptable, reason: "Not Acceptable"}
}

// mediaType is the type/subtype of a Content-Type or Accept value, lower
// case, without parameters.
func mediaType(v string) string {
	t, _, _ := strings.Cut(v, ";")
	return strings.ToLower(strings.TrimSpace(t))
}

// newCall makes the call of an INVITE. With an offer (o) its stream starts
// now; without one (a late offer) the stream starts with the answer in the
// ACK, and conn waits for it.
func (s *Server) newCall(req *sip.Request, tx sip.ServerTransaction, dlg *sipgo.DialogServerSession, o *offer, conn *media.Socket, trunk string) (*call, error) {
	ctx, cancel := context.WithCancelCause(s.baseCtx)
	c := &call{
		id:      uuid.Must(uuid.NewV7()).String(),
		srv:     s,
		tx:      tx,
		dlg:     dlg,
		caller:  number(req.From().Address),
		dialled: number(req.Recipient),
		trunk:   trunk,
		ctx:     ctx,
		cancel:  cancel,
		digits:  make(chan ivr.Digit, 32),
	}
	lc := logging.WithCall(s.log, c.id).With().Str("sip_call_id", req.CallID().Value())
	if trunk != "" {
		lc = lc.Str("trunk", trunk)
	}
	c.log = lc.Logger()
	c.synthetic = s.probeClaim(req, c.log)
	c.sessionID = uint64(time.Now().UnixNano())
	if o == nil {
		c.lateOffer, c.conn = true, conn
		body, err := localOffer(s.opts.Codecs, conn.LocalAddr(), c.sessionID, c.sdpVersion)
		if err != nil {
			cancel(err)
			return nil, err
		}
		c.localSDP = body
	} else {
		stream, err := c.startStream(conn, *o)
		if err != nil {
			cancel(err)
			return nil, err
		}
		// No RTP is expected before the answer: the media timeout starts then.
		stream.SetDirection(true, false)
		c.offer, c.stream = *o, stream
		c.localSDP, _ = answerSDP(*o, stream.LocalAddr(), c.sessionID, c.sdpVersion)
	}
	// When the dialog ends (BYE, CANCEL, a dead transaction) the caller is
	// gone; a cause set earlier (our own hangup, a timeout) wins.
	c.stopWatch = context.AfterFunc(dlg.Context(), func() { cancel(ivr.ErrCallerHangup) })
	s.mu.Lock()
	s.calls[dlg.ID] = c
	s.admitting--
	s.mu.Unlock()
	return c, nil
}

// hangupTimeout bounds the wait for an answer to our ACK, CANCEL or a
// phone's teardown, and how long shutdown waits for BYEs still unanswered.
const hangupTimeout = 5 * time.Second

// endCall ends a call whose handler returned. The call ends with its
// handler, so a handler that did not hang up (or panicked) leaves the
// caller owed a BYE, or a final response if it never answered.
func (s *Server) endCall(c *call, panicked bool) {
	code, reason := sip.StatusTemporarilyUnavailable, "Temporarily Unavailable"
	if panicked {
		code, reason = sip.StatusInternalServerError, "Server Internal Error"
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangupTimeout)
	if err := c.hangup(ctx, code, reason); err != nil {
		c.log.Warn().Err(err).Msg("hangup after the handler returned")
	}
	cancel()
	// A BYE still unanswered runs on its own; the call is over here.
	c.stopWatch()
	c.closeMedia()
	c.dlg.Close()
	s.mu.Lock()
	delete(s.calls, c.dlg.ID)
	if c.untrusted {
		s.untrusted--
	}
	s.notifyIdleLocked()
	s.mu.Unlock()
}

func (s *Server) dialogFor(req *sip.Request) *sipgo.DialogServerCache {
	if d, ok := s.dialogs[strings.ToLower(req.Transport())]; ok {
		return d
	}
	return s.dialogs["udp"]
}

func (s *Server) contactFor(req *sip.Request) *sip.ContactHeader {
	if c, ok := s.contacts[strings.ToLower(req.Transport())]; ok {
		return c
	}
	return s.contacts["udp"]
}

// findCall matches an in-dialog request to its call. A call whose dialog
// has ended (a BYE either way) is no match, though its handler may still be
// finishing: requests in an ended dialog get 481 (RFC 3261 §15.1.2).
func (s *Server) findCall(req *sip.Request) *call {
	id, err := sip.DialogIDFromRequestUAS(req)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	c := s.calls[id]
	s.mu.Unlock()
	if c == nil || c.dlg.Context().Err() != nil {
		return nil
	}
	return c
}

// onReInvite follows a mid-call offer: hold and resume, a moved media
// address. The flow carries on; only the codec in use may be kept.
func (s *Server) onReInvite(req *sip.Request, tx sip.ServerTransaction) {
	c := s.findCall(req)
	if c == nil {
		if l := s.findAgentLeg(req); l != nil {
			l.onReInvite(req, tx)
			return
		}
		respond(tx, req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
		return
	}
	if err := c.dlg.ReadRequest(req, tx); err != nil {
		respond(tx, req, sip.StatusInternalServerError, "Server Internal Error", sip.NewHeader("Retry-After", "1"))
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stream == nil {
		// Our offer in the 200 is still unanswered (RFC 3261 §14.2).
		respond(tx, req, sip.StatusRequestPending, "Request Pending")
		return
	}
	if len(req.Body()) > 0 {
		if r := sdpBodyRefusal(req); r != nil {
			refuse(tx, req, r)
			return
		}
		current := c.stream.Codec()
		o, err := parseOffer(req.Body(), []media.Codec{current})
		if err != nil {
			c.log.Info().Err(err).Msg("re-INVITE not acceptable")
			respond(tx, req, sip.StatusNotAcceptableHere, "Not Acceptable Here")
			return
		}
		c.offer = o
		c.sdpVersion++
		c.localSDP, _ = answerSDP(o, c.stream.LocalAddr(), c.sessionID, c.sdpVersion)
		c.stream.SetRemote(o.remote, o.rtcpPort)
		if c.answered.Load() {
			c.stream.SetDirection(o.send, o.recv)
		}
		c.log.Info().Bool("send", o.send).Bool("recv", o.recv).Str("remote", o.remote.String()).Msg("re-INVITE")
	}
	res := sip.NewSDPResponseFromRequest(req, c.localSDP)
	res.AppendHeader(s.contactFor(req))
	_ = tx.Respond(res)
}

func (s *Server) onAck(req *sip.Request, tx sip.ServerTransaction) {
	// The answer to a late offer comes in the ACK: it is the call's
	// before the ACK confirms the dialog, so Answer finds it.
	if len(req.Body()) > 0 {
		if c := s.findCall(req); c != nil {
			c.ackBody(req.Body())
		}
	}
	if d := s.dialogFor(req); d != nil {
		_ = d.ReadAck(req, tx)
	}
}

func (s *Server) onBye(req *sip.Request, tx sip.ServerTransaction) {
	if l := s.findAgentLeg(req); l != nil {
		l.onBye(req, tx)
		return
	}
	if err := s.dialogFor(req).ReadBye(req, tx); err != nil {
		respond(tx, req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
	}
}

// onCancel sees only a CANCEL that matched no INVITE transaction; a
// matching one is answered by the transaction layer (200, then 487).
func (s *Server) onCancel(req *sip.Request, tx sip.ServerTransaction) {
	respond(tx, req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
}

// handled are the methods with handlers of their own.
var handled = []sip.RequestMethod{sip.INVITE, sip.ACK, sip.BYE, sip.CANCEL, sip.OPTIONS, sip.INFO, sip.REGISTER}

// notAllowed answers a method this server recognises but does not take
// (RFC 3261 §8.2.1).
func (s *Server) notAllowed(req *sip.Request, tx sip.ServerTransaction) {
	respond(tx, req, sip.StatusMethodNotAllowed, "Method Not Allowed", s.allow())
}

var (
	allowHeader          = sip.NewHeader("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO")
	allowRegistrarHeader = sip.NewHeader("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REGISTER")
)

// allow is the Allow header of this server: REGISTER only with a registrar.
func (s *Server) allow() sip.Header {
	if s.opts.Registrar != nil {
		return allowRegistrarHeader
	}
	return allowHeader
}

// onOptions answers keep-alives and capability queries; a draining node says
// 503 so that a dispatcher in front stops sending it calls.
func (s *Server) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	if s.draining.Load() {
		respond(tx, req, sip.StatusServiceUnavailable, "Service Unavailable")
		return
	}
	respond(tx, req, sip.StatusOK, "OK", s.allow(), sip.NewHeader("Accept", "application/sdp, application/dtmf-relay, application/dtmf"))
}

// onRegister hands a REGISTER to the agent registrar. A node without one
// does not take the method and says so with the methods it does take
// (RFC 3261 §8.2.1).
func (s *Server) onRegister(req *sip.Request, tx sip.ServerTransaction) {
	if s.opts.Registrar == nil {
		respond(tx, req, sip.StatusMethodNotAllowed, "Method Not Allowed", allowHeader)
		return
	}
	source, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		reject(tx, req, fmt.Errorf("source address %q: %w", req.Source(), err))
		return
	}
	s.opts.Registrar.handle(req, tx, strings.ToLower(req.Transport()), source)
}

func (s *Server) onInfo(req *sip.Request, tx sip.ServerTransaction) {
	c := s.findCall(req)
	if c == nil {
		if l := s.findAgentLeg(req); l != nil {
			l.onInfo(req, tx)
			return
		}
		respond(tx, req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
		return
	}
	key, err := parseInfoDTMF(req)
	switch {
	case errors.Is(err, errInfoType):
		respond(tx, req, sip.StatusUnsupportedMediaType, "Unsupported Media Type",
			sip.NewHeader("Accept", "application/dtmf-relay, application/dtmf"))
		return
	case err != nil:
		c.log.Info().Err(err).Msg("bad INFO DTMF")
		respond(tx, req, sip.StatusBadRequest, "Bad Request - "+err.Error())
		return
	}
	respond(tx, req, sip.StatusOK, "OK")
	c.digit(key, ivr.DTMFInfo)
	// While bridged, the agent hears the key as RFC 4733 events.
	if st := c.mediaStream(); st != nil {
		_ = st.RelayDigit(key)
	}
}

// clip returns the encoded prompt; a language the catalog lacks for this
// prompt falls back as the catalog does.
func (s *Server) clip(id prompts.ID, lang prompts.Lang) (*media.Clip, error) {
	if c, ok := s.clips[clipKey{id, lang}]; ok {
		return c, nil
	}
	return nil, fmt.Errorf("%w: %s/%s", prompts.ErrUnknownPrompt, lang, id)
}

// infoKeys maps SIP INFO signal values to keys; some phones send the
// RFC 4733 event code (10 for *, 11 for #) instead of the character.
var infoKeys = map[string]rune{"10": '*', "11": '#', "12": 'A', "13": 'B', "14": 'C', "15": 'D'}

var errInfoType = errors.New("INFO body is not DTMF")

// parseInfoDTMF reads a key from an INFO body: application/dtmf-relay
// ("Signal=5\r\nDuration=160") or application/dtmf ("5").
func parseInfoDTMF(req *sip.Request) (rune, error) {
	ct := req.ContentType()
	if ct == nil {
		return 0, errInfoType
	}
	body := strings.TrimSpace(string(req.Body()))
	var signal string
	switch strings.ToLower(strings.TrimSpace(strings.Split(ct.Value(), ";")[0])) {
	case "application/dtmf-relay":
		for _, line := range strings.Split(body, "\n") {
			k, v, ok := strings.Cut(line, "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "signal") {
				signal = strings.TrimSpace(v)
			}
		}
		if signal == "" {
			return 0, errors.New("dtmf-relay without Signal")
		}
	case "application/dtmf":
		signal = body
	default:
		return 0, errInfoType
	}
	if k, ok := infoKeys[signal]; ok {
		return k, nil
	}
	if len(signal) == 1 && strings.ContainsRune("0123456789*#ABCDabcd", rune(signal[0])) {
		return []rune(strings.ToUpper(signal))[0], nil
	}
	if n, err := strconv.Atoi(signal); err == nil && n >= 0 && n <= 9 {
		return rune('0' + n), nil
	}
	return 0, fmt.Errorf("unknown DTMF signal %q", signal)
}
