// Package agentua runs many agents' phones inside one process, for load
// tests and benchmarks where a softphone per agent would cost more than
// the server it measures: every agent registers with hotline's registrar
// (digest, RFC 3261 §22), answers the calls offered to it with PCMU and
// telephone-event, talks for a set time, and hangs up with BYE.
//
// All agents share one UDP socket for SIP and one for RTP: hotline tells
// its offers apart by the Request-URI (the Contact each agent registered)
// and its media by the port it sends from, and one pacer sends every
// agent's 20 ms frames, as per-call tickers cost more than the calls.
package agentua

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/logging"
)

// Agent is one agent's phone account: the SIP user and password provisioned
// for the agent in hotline.
type Agent struct {
	User, Password string
}

// Options configure a Fleet. Zero values take the defaults named on each
// field.
type Options struct {
	// Registrar is hotline's SIP address; phones register there over UDP.
	Registrar netip.AddrPort
	Agents    []Agent
	// TalkTime is how long an agent talks once the call is set up (its 200
	// acknowledged) before hanging up; 0 leaves hanging up to the far end.
	TalkTime time.Duration
	// RingTime is how long a phone rings (180 Ringing) before it answers;
	// 0 answers at once.
	RingTime time.Duration
	// Expires is the registration lifetime asked for (1 h); registrations
	// are refreshed when half of it has passed.
	Expires time.Duration
	// IP is the local address of the phones' SIP and RTP sockets
	// (127.0.0.1).
	IP netip.Addr
	// Parallel bounds the REGISTER transactions in flight at once (16), so
	// that a fleet starting up does not flood the registrar.
	Parallel int
	// OnConversation, when set, hears every conversation as it ends. It is
	// called from the call's goroutine and must not block.
	OnConversation func(Conversation)
	Logger         zerolog.Logger
}

// Side is who ended a conversation.
type Side string

// Sides of a conversation.
const (
	AgentSide   Side = "agent"   // the agent hung up (BYE from the phone)
	HotlineSide Side = "hotline" // hotline hung up (its BYE), or the fleet stopped
)

// Conversation is one offer a phone answered, from the INVITE to the end.
type Conversation struct {
	Agent string // the agent's SIP user
	// Citizen is the caller's number as the offer showed it: the display
	// name of From, which hotline sets to the citizen's number.
	Citizen   string
	SIPCallID string
	Offered   time.Time // the INVITE arrived
	Answered  time.Time // the 200 was sent
	Confirmed time.Time // its ACK arrived (RFC 3261 §13.3.1.4)
	// HungUp is when the agent sent BYE; zero when the far end ended the
	// call first.
	HungUp  time.Time
	Ended   time.Time
	EndedBy Side
	// Err says why the conversation failed: no ACK, a BYE not answered
	// with 200. Nil for a conversation that ended normally.
	Err error
	// RTP packets the phone sent and received during the call.
	RTPSent, RTPReceived int64
}

// Stats count what the fleet's phones were offered.
type Stats struct {
	Offers    int64 // INVITEs received
	Answered  int64 // answered with 200
	Busy      int64 // refused with 486: the agent was on another call
	Refused   int64 // refused otherwise: unknown user, no usable audio
	Cancelled int64 // withdrawn (CANCEL) while ringing
	// RTPForeign counts RTP packets from addresses no call expected.
	RTPForeign int64
}

// ErrRefused means the registrar did not accept a REGISTER; a
// *RegisterError says for which agent and with what status.
var ErrRefused = errors.New("agentua: registration refused")

// RegisterError is a failed registration.
type RegisterError struct {
	User   string
	Status int   // the registrar's final status; 0 when it sent none
	Err    error // ErrRefused, or the transport's error
}

func (e *RegisterError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("agentua: register %s: %d: %v", e.User, e.Status, e.Err)
	}
	return fmt.Sprintf("agentua: register %s: %v", e.User, e.Err)
}

func (e *RegisterError) Unwrap() error { return e.Err }

// registerTimeout bounds one registration, challenge included; hangupTimeout
// one BYE transaction (64×T1, RFC 3261 §17.1.2.2, is 32 s; a phone on
// loopback is answered in milliseconds or not at all).
const (
	registerTimeout = 10 * time.Second
	hangupTimeout   = 10 * time.Second
)

// Fleet is a running set of agents' phones. Its methods are safe for
// concurrent use.
type Fleet struct {
	opts Options
	log  zerolog.Logger

	ua      *sipgo.UserAgent
	client  *sipgo.Client
	srv     *sipgo.Server
	sipConn net.PacketConn
	sipAddr netip.AddrPort
	media   *media
	agents  map[string]*agent // by SIP user; fixed after Start

	ctx       context.Context // ends when Stop begins
	cancel    context.CancelFunc
	calls     sync.WaitGroup // INVITE handlers
	refresher sync.WaitGroup
	bg        sync.WaitGroup // serving and media

	mu            sync.Mutex
	stopping      bool             // no new calls; calls.Add is not called after it is set
	dialogs       map[string]*call // answered calls by dialog id, for ACK and BYE
	conversations []Conversation

	offers, answered, busy, refused, cancelled atomic.Int64

	stopOnce sync.Once
	stopErr  error
}

// agent is one phone's registration state. cseq and the binding are only
// touched by one registration at a time: Start, then the refresher, then
// Stop.
type agent struct {
	Agent
	contact sip.ContactHeader
	dialog  *sipgo.DialogUA
	// The Call-ID and From tag stay the same for every REGISTER of this
	// phone, and CSeq grows (RFC 3261 §10.2).
	callID string
	tag    string
	cseq   uint32
	busy   atomic.Bool // on a call: one call per phone
}

// Start opens the phones' sockets and registers every agent. It returns
// once all are registered, or the first registration error after the
// others finished; ctx bounds the registrations only. Stop ends the fleet.
func Start(ctx context.Context, opts Options) (*Fleet, error) {
	if !opts.IP.IsValid() {
		opts.IP = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	if opts.Expires <= 0 {
		opts.Expires = time.Hour
	}
	if opts.Parallel <= 0 {
		opts.Parallel = 16
	}
	if len(opts.Agents) > 0 && !opts.Registrar.IsValid() {
		return nil, errors.New("agentua: no registrar address")
	}
	f := &Fleet{opts: opts, log: opts.Logger, agents: map[string]*agent{}, dialogs: map[string]*call{}}
	for _, a := range opts.Agents {
		if a.User == "" {
			return nil, errors.New("agentua: an agent has no SIP user")
		}
		if _, dup := f.agents[a.User]; dup {
			return nil, fmt.Errorf("agentua: agent %s listed twice", a.User)
		}
		f.agents[a.User] = &agent{Agent: a, callID: uuid.NewString(), tag: sip.GenerateTagN(16)}
	}
	if err := f.open(); err != nil {
		return nil, err
	}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	if err := f.serve(); err != nil {
		f.close()
		return nil, err
	}
	if err := f.registerAll(ctx, opts.Expires); err != nil {
		f.cancel()
		f.close()
		return nil, err
	}
	f.refresher.Go(f.refresh)
	return f, nil
}

// open makes the sockets and the SIP stack.
func (f *Fleet) open() error {
	slog := logging.Slog(f.log)
	ua, err := sipgo.NewUA(
		sipgo.WithUserAgent("hotline-agentua"),
		sipgo.WithUserAgentHostname(f.opts.IP.String()),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(slog),
			// A late retransmission matches no transaction; sipgo's default
			// would log it through the global slog logger.
			sip.WithTransactionLayerUnhandledResponseHandler(func(res *sip.Response) {
				f.log.Debug().Str("response", res.Short()).Msg("agentua: response for no transaction dropped")
			})),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(slog)),
	)
	if err != nil {
		return fmt.Errorf("agentua: %w", err)
	}
	f.ua = ua
	f.sipConn, err = net.ListenPacket("udp", netip.AddrPortFrom(f.opts.IP, 0).String())
	if err != nil {
		ua.Close()
		return fmt.Errorf("agentua: %w", err)
	}
	f.sipAddr = f.sipConn.LocalAddr().(*net.UDPAddr).AddrPort()
	// Every request leaves from the socket the phones registered from:
	// hotline sends its INVITEs to that source address (RFC 5626 §5.3's
	// flow reuse), and so may a NAT in a real deployment.
	f.client, err = sipgo.NewClient(ua, sipgo.WithClientLogger(slog),
		sipgo.WithClientHostname(f.opts.IP.String()), sipgo.WithClientConnectionAddr(f.sipAddr.String()))
	if err == nil {
		f.srv, err = sipgo.NewServer(ua, sipgo.WithServerLogger(slog))
	}
	if err == nil {
		f.media, err = newMedia(f.opts.IP)
	}
	if err != nil {
		f.sipConn.Close()
		ua.Close()
		return fmt.Errorf("agentua: %w", err)
	}
	for _, a := range f.agents {
		a.contact = sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: a.User, Host: f.opts.IP.String(), Port: int(f.sipAddr.Port())}}
		a.dialog = &sipgo.DialogUA{Client: f.client, ContactHDR: a.contact}
	}
	return nil
}

// serve starts answering SIP and running media; it returns once the SIP
// socket is in sipgo's pool, so that requests can leave from it.
func (f *Fleet) serve() error {
	f.srv.OnInvite(f.onInvite)
	f.srv.OnAck(f.onAck)
	f.srv.OnBye(f.onBye)
	f.srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
	})
	// Keys the agent's side would hear as SIP INFO are taken and dropped.
	f.srv.OnInfo(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
	})
	rc := &readyConn{PacketConn: f.sipConn, ready: make(chan struct{})}
	served := make(chan error, 1)
	f.bg.Go(func() { served <- f.srv.ServeUDP(rc) })
	select {
	case <-rc.ready:
	case err := <-served:
		return fmt.Errorf("agentua: serve SIP: %w", err)
	}
	f.bg.Go(func() { f.media.receive() })
	f.bg.Go(func() { f.media.pace(f.ctx) })
	return nil
}

// readyConn tells when sipgo first reads the socket, which it does after
// putting it in its connection pool.
type readyConn struct {
	net.PacketConn
	once  sync.Once
	ready chan struct{}
}

func (c *readyConn) ReadFrom(b []byte) (int, net.Addr, error) {
	c.once.Do(func() { close(c.ready) })
	return c.PacketConn.ReadFrom(b)
}

// SIPAddr is where the phones receive SIP.
func (f *Fleet) SIPAddr() netip.AddrPort { return f.sipAddr }

// Conversations returns the conversations that have ended, in the order
// they ended.
func (f *Fleet) Conversations() []Conversation {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Conversation(nil), f.conversations...)
}

// Talking is how many calls are answered and not yet ended.
func (f *Fleet) Talking() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.dialogs)
}

// Stats returns the offer counters.
func (f *Fleet) Stats() Stats {
	return Stats{
		Offers: f.offers.Load(), Answered: f.answered.Load(), Busy: f.busy.Load(),
		Refused: f.refused.Load(), Cancelled: f.cancelled.Load(), RTPForeign: f.media.foreign.Load(),
	}
}

// Stop hangs up the calls still up, unregisters every agent (ctx bounds
// that) and closes the sockets. Stopping twice returns the first result.
func (f *Fleet) Stop(ctx context.Context) error {
	f.stopOnce.Do(func() {
		f.mu.Lock()
		f.stopping = true
		f.mu.Unlock()
		f.cancel()
		f.refresher.Wait()
		f.calls.Wait()
		f.stopErr = f.registerAll(ctx, 0)
		f.close()
	})
	return f.stopErr
}

// close ends serving and media and waits for their goroutines.
func (f *Fleet) close() {
	f.ua.Close()
	f.sipConn.Close()
	f.media.close()
	f.bg.Wait()
}
