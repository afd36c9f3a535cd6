package sip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
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

var _ ivr.Connector = (*Server)(nil)

// OfferError is why an offer to an agent's phone did not become a call: the
// phone's final response when it sent one, and the ivr error it means
// (ivr.ErrRejected, ivr.ErrUnreachable, ivr.ErrRangOut), for errors.Is.
type OfferError struct {
	User   string
	Status int // the phone's final SIP status; 0 when it sent none
	Reason string
	Err    error // the ivr error
	Cause  error // what failed underneath (a transport error), or nil
}

func (e *OfferError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v: %s", e.Err, e.User)
	if e.Status != 0 {
		fmt.Fprintf(&b, ": %d %s", e.Status, e.Reason)
	}
	if e.Cause != nil {
		fmt.Fprintf(&b, ": %v", e.Cause)
	}
	return b.String()
}

func (e *OfferError) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.Cause}
}

// offerFailure maps the far end's final response to an INVITE to why the
// call failed (RFC 3261 §21): busy (486, 600), declined (603, 403), no
// answer (487 for an offer withdrawn by our CANCEL or a forking proxy's,
// 408, 480), congestion (500, 502, 503, 504: the network could not take
// it now), and anything else (404, 484, a redirect we do not follow)
// unreachable.
func offerFailure(status int) error {
	switch status {
	case sip.StatusBusyHere, sip.StatusGlobalBusyEverywhere:
		return ivr.ErrBusy
	case sip.StatusGlobalDecline, sip.StatusForbidden:
		return ivr.ErrRejected
	case sip.StatusRequestTerminated, sip.StatusRequestTimeout, sip.StatusTemporarilyUnavailable:
		return ivr.ErrRangOut
	case sip.StatusInternalServerError, sip.StatusBadGateway, sip.StatusServiceUnavailable, sip.StatusGatewayTimeout:
		return ivr.ErrCongestion
	}
	return ivr.ErrUnreachable
}

// errAgentHungUp ends an agent's leg whose phone sent BYE: the far end of
// that leg hung up, which is what ivr.ErrCallerHangup says of any call.
var errAgentHungUp error = agentHangup{}

type agentHangup struct{}

func (agentHangup) Error() string        { return "agent hung up" }
func (agentHangup) Is(target error) bool { return target == ivr.ErrCallerHangup }

// agentLegs are the server's calls to agents' phones; guarded by Server.mu.
type agentLegs struct {
	all      map[*agentLeg]struct{} // from the INVITE until torn down
	byDialog map[string]*agentLeg   // answered ones, by dialog id
}

// agentLeg is a call to an agent's phone, placed for a citizen's call; it
// implements ivr.Call. It never outlives the citizen's call it was placed
// for.
type agentLeg struct {
	id       string
	srv      *Server
	user     string // the agent's SIP user
	citizen  string // the citizen's call id, for the logs
	log      zerolog.Logger
	dlg      *sipgo.DialogClientSession
	conn     *media.Socket // our RTP socket, owned by stream once it starts
	stream   *media.Stream
	digits   chan ivr.Digit
	dialogID string

	ctx    context.Context // ends with the leg; context.Cause says why
	cancel context.CancelCauseFunc

	mu         sync.Mutex // guards stream, answer and sdpVersion (re-INVITEs)
	answer     offer      // the phone's SDP answer, as negotiated
	sessionID  uint64
	sdpVersion uint64

	responded atomic.Bool   // the phone sent some response to the INVITE
	once      sync.Once     // ends the leg: release or teardown
	finished  chan struct{} // closed once the leg has ended
	stopWatch func() bool   // stops watching the citizen's call

	username, password string // answer the far end's digest challenge

	sounds farEnd // what is heard from the far end (ivr.Listener)
}

var _ ivr.Call = (*agentLeg)(nil)

// Dial places a call (ivr.Dialer): to an agent's phone (ivr.Agent) or to
// a number through a carrier's trunk (ivr.Number). It returns once the far
// end answered and the leg's media runs; provisional responses and early
// media are ignored. A call withdrawn before an answer (ring timeout, ctx
// ended, the parent call ended) is cancelled (CANCEL) in the background,
// and a 200 that crosses the CANCEL is acknowledged and hung up (RFC 3261
// §9.1).
func (s *Server) Dial(ctx context.Context, to ivr.Destination, opts ivr.DialOptions) (ivr.Call, error) {
	if ctx.Err() != nil {
		return nil, ctxError(ctx)
	}
	switch to := to.(type) {
	case ivr.Agent:
		return s.dialAgent(ctx, to, opts)
	case ivr.Number:
		return s.dialNumber(ctx, to, opts)
	}
	return nil, fmt.Errorf("%w: the embedded backend does not dial %s", ivr.ErrUnreachable, to)
}

// dialAgent rings the agent's phone, for a citizen's call when opts has
// a parent: the newest of the agent's bindings from Options.Locator gets
// an INVITE with our codecs, the citizen's first so that the bridge
// rarely transcodes, and the citizen's number as the caller the phone
// shows. Ringing every binding at once (parallel forking, RFC 3261 §16.7)
// is left for later.
//
// The INVITE goes to the address the phone registered from rather than to
// its Contact, which may be a private address behind NAT (RFC 5626 §5.3's
// flow reuse).
func (s *Server) dialAgent(ctx context.Context, target ivr.Agent, opts ivr.DialOptions) (ivr.Call, error) {
	if s.opts.Locator == nil {
		return nil, &OfferError{User: target.SIPUser, Err: ivr.ErrUnreachable, Cause: ErrNotRegistered}
	}
	bindings, err := s.opts.Locator.Lookup(ctx, target.SIPUser)
	if err == nil && len(bindings) == 0 {
		err = ErrNotRegistered
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctxError(ctx)
		}
		return nil, &OfferError{User: target.SIPUser, Err: ivr.ErrUnreachable, Cause: err}
	}
	plan, err := s.agentPlan(opts.Parent, target, bindings[0])
	if err != nil {
		return nil, &OfferError{User: target.SIPUser, Err: ivr.ErrUnreachable, Cause: err}
	}
	l, req, err := s.newLeg(opts.Parent, plan)
	if err != nil {
		return nil, &OfferError{User: target.SIPUser, Err: ivr.ErrUnreachable, Cause: err}
	}
	return l.dial(ctx, req, opts.RingTimeout)
}

// legPlan is what an outbound leg's INVITE is made of.
type legPlan struct {
	user      string // the far end: an agent's SIP user, a number
	log       func(zerolog.Context) zerolog.Context
	recipient sip.Uri // the Request-URI
	to        sip.Uri
	dest      string // where the INVITE is sent, host:port
	transport string
	// fromUser and fromName are the caller we present; pai, when set, is
	// the P-Asserted-Identity.
	fromUser, fromName, pai string
	codecs                  []media.Codec
	username, password      string // the far end's digest challenge
}

// agentPlan is the INVITE to an agent's phone at binding b.
func (s *Server) agentPlan(parent ivr.Call, target ivr.Agent, b Binding) (legPlan, error) {
	transport := strings.ToLower(b.Transport)
	if transport == "" {
		transport = "udp"
	}
	var contact sip.Uri
	if err := sip.ParseUri(strings.Trim(strings.TrimSpace(b.Contact), "<>"), &contact); err != nil {
		return legPlan{}, fmt.Errorf("binding contact %q: %w", b.Contact, err)
	}
	dest := b.Source
	if !dest.IsValid() {
		addr, err := netip.ParseAddr(strings.Trim(contact.Host, "[]"))
		if err != nil {
			return legPlan{}, fmt.Errorf("binding contact %q: no source and no address to send to", b.Contact)
		}
		port := contact.Port
		if port == 0 {
			port = sip.DefaultPort(transport)
		}
		dest = netip.AddrPortFrom(addr, uint16(port))
	}
	hotline, citizen := "hotline", "anonymous"
	if parent != nil {
		if isToken(parent.Dialled()) {
			hotline = parent.Dialled()
		}
		if isToken(parent.Caller()) {
			citizen = parent.Caller()
		}
	}
	return legPlan{
		user: target.SIPUser,
		log: func(c zerolog.Context) zerolog.Context {
			return c.Str("agent_user", target.SIPUser).Str("agent_id", target.AgentID)
		},
		recipient: contact,
		to:        sip.Uri{Scheme: "sip", User: target.SIPUser, Host: contact.Host, Port: contact.Port},
		dest:      dest.String(),
		transport: transport,
		// The phone shows the display name: the citizen's number, so the
		// agent knows who calls (RFC 3261 §20.20); trusted phones behind
		// a PBX show the asserted identity (RFC 3325 §9.1).
		fromUser: hotline, fromName: citizen,
		pai:    fmt.Sprintf("%q <sip:%s@%s>", citizen, citizen, s.mediaIP),
		codecs: s.offerCodecs(parent),
	}, nil
}

// dialNumber calls a number through its trunk: an INVITE to
// sip:<number>@<trunk> over the trunk's transport, presenting the trunk's
// caller id, answering the carrier's digest challenge with the trunk's
// credentials.
func (s *Server) dialNumber(ctx context.Context, n ivr.Number, opts ivr.DialOptions) (ivr.Call, error) {
	tr := n.Trunk
	fail := func(err error) (ivr.Call, error) {
		return nil, &OfferError{User: n.Number, Err: ivr.ErrUnreachable, Cause: err}
	}
	if !isToken(n.Number) {
		return fail(fmt.Errorf("%q is not a number", n.Number))
	}
	host, portText, err := net.SplitHostPort(tr.Address)
	if err != nil {
		return fail(fmt.Errorf("trunk %s: address %q: %w", tr.Name, tr.Address, err))
	}
	port, _ := strconv.Atoi(portText)
	transport := strings.ToLower(tr.Transport)
	if transport == "" {
		transport = "udp"
	}
	codecs := s.offerCodecs(opts.Parent)
	if len(tr.Codecs) > 0 {
		codecs = codecs[:0]
		for _, name := range tr.Codecs {
			if c, err := media.CodecByName(name); err == nil {
				codecs = append(codecs, c)
			}
		}
	}
	callerID := tr.CallerID
	if !isToken(callerID) {
		callerID = "hotline"
	}
	uri := sip.Uri{Scheme: "sip", User: n.Number, Host: host, Port: port}
	plan := legPlan{
		user: n.Number,
		log: func(c zerolog.Context) zerolog.Context {
			return c.Str("number", n.Number).Str("trunk", tr.Name)
		},
		recipient: uri, to: uri, dest: tr.Address, transport: transport,
		fromUser: callerID, fromName: callerID,
		pai:      fmt.Sprintf("<sip:%s@%s>", callerID, host),
		codecs:   codecs,
		username: tr.Username, password: tr.Password,
	}
	l, req, err := s.newLeg(opts.Parent, plan)
	if err != nil {
		return fail(err)
	}
	return l.dial(ctx, req, opts.RingTimeout)
}

// newLeg prepares the leg and its INVITE, and counts it as in progress:
// Run waits for it to be torn down.
func (s *Server) newLeg(parent ivr.Call, p legPlan) (*agentLeg, *sip.Request, error) {
	if _, ok := s.contacts[p.transport]; !ok || !s.has(p.transport) {
		return nil, nil, fmt.Errorf("over %q, which this server does not serve", p.transport)
	}
	conn, err := s.opts.RTPPorts.Listen(s.mediaIP)
	if err != nil {
		return nil, nil, err
	}

	ctx, cancel := context.WithCancelCause(s.baseCtx)
	l := &agentLeg{
		id:        uuid.Must(uuid.NewV7()).String(),
		srv:       s,
		user:      p.user,
		conn:      conn,
		digits:    make(chan ivr.Digit, 32),
		ctx:       ctx,
		cancel:    cancel,
		finished:  make(chan struct{}),
		sessionID: uint64(time.Now().UnixNano()),
		stopWatch: func() bool { return false },
		username:  p.username,
		password:  p.password,
	}
	lc := p.log(logging.WithCall(s.log, l.id).With())
	if parent != nil {
		l.citizen = parent.ID()
		lc = lc.Str("citizen_call_id", l.citizen)
	}
	l.log = lc.Logger()
	// The leg ends with the citizen's call, for whatever reason that
	// ended: an agent must not be left on a line with no one.
	if ic, ok := parent.(*call); ok && ic.srv == s {
		l.stopWatch = context.AfterFunc(ic.ctx, func() { l.cancel(context.Cause(ic.ctx)) })
	}

	offer, err := localOffer(p.codecs, conn.LocalAddr(), l.sessionID, l.sdpVersion)
	if err != nil {
		l.stopWatch()
		conn.Close()
		cancel(err)
		return nil, nil, err
	}
	req := sip.NewRequest(sip.INVITE, p.recipient)
	req.SetTransport(strings.ToUpper(p.transport))
	req.SetDestination(p.dest)
	if p.transport == "udp" {
		// Sent from the port phones register to: a phone behind NAT takes
		// requests only on the flow its REGISTER opened (RFC 5626 §5.3).
		// sipgo keeps this for the ACK and CANCEL; bye does for the BYE.
		req.Laddr = s.udpLaddr()
	}
	from := &sip.FromHeader{
		DisplayName: p.fromName,
		Address:     sip.Uri{Scheme: "sip", User: p.fromUser, Host: s.mediaIP.String()},
		Params:      sip.NewParams(),
	}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: p.to, Params: sip.NewParams()})
	if p.pai != "" {
		req.AppendHeader(sip.NewHeader("P-Asserted-Identity", p.pai))
	}
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.AppendHeader(sip.NewHeader("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO"))
	req.SetBody(offer)

	s.mu.Lock()
	if s.agents.all == nil {
		s.agents.all = map[*agentLeg]struct{}{}
		s.agents.byDialog = map[string]*agentLeg{}
	}
	s.agents.all[l] = struct{}{}
	s.mu.Unlock()
	return l, req, nil
}

// isToken reports whether s can stand as a SIP user and display name as
// it is: a number or name of the usual characters, nothing to escape.
func isToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', strings.ContainsRune("+-_.*#", r):
		default:
			return false
		}
	}
	return true
}

// offerCodecs are our codecs, the citizen's first.
func (s *Server) offerCodecs(c ivr.Call) []media.Codec {
	codecs := make([]media.Codec, 0, len(s.opts.Codecs))
	if ic, ok := c.(*call); ok {
		if first, err := media.CodecByName(ic.stream.Codec().Name); err == nil {
			codecs = append(codecs, first)
		}
	}
	for _, codec := range s.opts.Codecs {
		if len(codecs) == 0 || codec.Name != codecs[0].Name {
			codecs = append(codecs, codec)
		}
	}
	return codecs
}

// dial sends the INVITE and waits for the phone's answer, ringTimeout, or
// the end of ctx or of the leg.
func (l *agentLeg) dial(ctx context.Context, req *sip.Request, ringTimeout time.Duration) (ivr.Call, error) {
	s := l.srv
	transport := strings.ToLower(req.Transport())
	ua := &sipgo.DialogUA{
		Client:     s.clientFor(transport),
		ContactHDR: *s.contacts[transport],
		// In-dialog requests go where the phone's responses came from,
		// not to its Contact, for the same reason as the INVITE.
		RewriteContact: true,
	}
	inviteCtx, cancelInvite := context.WithTimeout(mayDial(ctx), ringTimeout)
	dlg, err := ua.WriteInvite(inviteCtx, req)
	cancelInvite()
	if err != nil {
		l.release()
		if ctx.Err() != nil {
			return nil, ctxError(ctx)
		}
		return nil, &OfferError{User: l.user, Err: ivr.ErrUnreachable, Cause: err}
	}
	l.dlg = dlg
	l.log = l.log.With().Str("sip_call_id", req.CallID().Value()).Logger()
	l.log.Info().Str("to", req.Recipient.String()).Str("via", req.Destination()).Msg("offering the call to the agent")

	answer := make(chan error, 1)
	waitCtx, stopWaiting := context.WithCancelCause(context.Background())
	go func() {
		answer <- dlg.WaitAnswer(waitCtx, sipgo.AnswerOptions{Username: l.username, Password: l.password, OnResponse: func(res *sip.Response) error {
			l.responded.Store(true)
			if res.StatusCode == sip.StatusRinging || res.StatusCode == sip.StatusSessionInProgress {
				l.log.Debug().Int("status", res.StatusCode).Msg("agent's phone ringing")
			}
			return nil
		}})
	}()
	timer := time.NewTimer(ringTimeout)
	defer timer.Stop()
	var withdrawn error
	select {
	case err = <-answer:
	case <-timer.C:
		withdrawn = &OfferError{User: l.user, Err: ivr.ErrRangOut}
		if !l.responded.Load() {
			// A phone that said nothing at all, not even 100 Trying, is
			// not there to ring.
			withdrawn = &OfferError{User: l.user, Err: ivr.ErrUnreachable, Cause: errors.New("no response to the INVITE")}
		}
	case <-ctx.Done():
		withdrawn = ctxError(ctx)
	case <-l.ctx.Done():
		withdrawn = fmt.Errorf("offer to %s withdrawn: %w", l.user, context.Cause(l.ctx))
	}
	if withdrawn != nil {
		l.log.Info().Err(withdrawn).Msg("offer withdrawn")
		go l.withdraw(stopWaiting, answer)
		return nil, withdrawn
	}
	stopWaiting(nil)
	if err != nil {
		l.release()
		var res *sipgo.ErrDialogResponse
		if errors.As(err, &res) {
			l.log.Info().Int("status", res.Res.StatusCode).Str("reason", res.Res.Reason).Msg("offer refused")
			return nil, &OfferError{User: l.user, Status: res.Res.StatusCode, Reason: res.Res.Reason, Err: offerFailure(res.Res.StatusCode)}
		}
		return nil, &OfferError{User: l.user, Err: ivr.ErrUnreachable, Cause: err}
	}
	if err := l.start(ctx); err != nil {
		return nil, err
	}
	return l, nil
}

// start takes the phone's 200: the dialog is routed to the leg, the 200 is
// acknowledged, and the leg's media starts in the codec the phone chose.
func (l *agentLeg) start(ctx context.Context) error {
	s := l.srv
	s.mu.Lock()
	l.dialogID = l.dlg.ID
	s.agents.byDialog[l.dialogID] = l
	s.mu.Unlock()
	ackCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), hangupTimeout)
	defer cancel()
	if err := l.dlg.Ack(ackCtx); err != nil {
		l.cancel(err)
		l.teardown()
		return &OfferError{User: l.user, Err: ivr.ErrUnreachable, Cause: fmt.Errorf("ack: %w", err)}
	}
	o, err := parseOffer(l.dlg.InviteResponse.Body(), s.opts.Codecs)
	if err != nil {
		l.log.Warn().Err(err).Msg("the agent's phone answered with no usable audio")
		l.cancel(err)
		l.teardown()
		return &OfferError{User: l.user, Err: ivr.ErrUnreachable, Cause: err}
	}
	stream, err := s.opts.Pacer.Start(media.StreamConfig{
		Conn:            l.conn,
		Remote:          o.remote,
		RemoteRTCPPort:  o.rtcpPort,
		Codec:           o.codec,
		DTMFPayloadType: o.dtmfPT,
		MediaTimeout:    s.opts.MediaTimeout,
		OnDigit:         func(key rune, method string) { l.digit(key, ivr.DTMFMethod(method)) },
		OnTimeout:       func() { l.cancel(fmt.Errorf("%w for %s", ivr.ErrMediaTimeout, s.opts.MediaTimeout)) },
	})
	if err != nil {
		l.cancel(err)
		l.teardown()
		return &OfferError{User: l.user, Err: ivr.ErrUnreachable, Cause: err}
	}
	l.mu.Lock()
	l.answer = o
	l.stream = stream
	l.mu.Unlock()
	stream.SetDirection(o.send, o.recv)
	l.log.Info().Str("codec", o.codec.Name).Bool("telephone_event", o.dtmfPT >= 0).Msg("agent answered")
	// However the leg ends from now on (the agent's BYE, our Hangup, the
	// citizen's call ending, a media timeout, shutdown), teardown follows.
	context.AfterFunc(l.ctx, func() { l.teardown() })
	return nil
}

// withdraw takes back an offer that had no answer yet: WaitAnswer sends
// the CANCEL once the phone has answered provisionally (RFC 3261 §9.1 allows
// none before) and waits for the 487. A 200 that crossed the CANCEL made a
// call all the same: it is acknowledged and ended with BYE.
func (l *agentLeg) withdraw(stopWaiting context.CancelCauseFunc, answer <-chan error) {
	defer l.release()
	stopWaiting(errOfferWithdrawn)
	err := <-answer
	if res := l.dlg.InviteResponse; err == nil || (res != nil && res.IsSuccess()) {
		ctx, cancel := context.WithTimeout(context.Background(), hangupTimeout)
		err := l.dlg.Ack(ctx)
		cancel()
		if err != nil {
			l.log.Warn().Err(err).Msg("ack of a 200 that crossed our CANCEL")
			return
		}
		l.log.Info().Msg("the agent answered as the offer was withdrawn; hanging up")
		l.hangUpPhone()
	}
}

var errOfferWithdrawn = errors.New("offer withdrawn")

// release forgets a leg that never got its media going; Run no longer
// waits for it.
func (l *agentLeg) release() {
	l.once.Do(func() {
		l.stopWatch()
		l.cancel(errOfferWithdrawn)
		l.conn.Close()
		if l.dlg != nil {
			l.dlg.Close()
		}
		l.forget()
		close(l.finished)
	})
}

// teardown ends an answered leg: a BYE unless the phone already ended the
// dialog, then its media, then its place in the server.
func (l *agentLeg) teardown() {
	l.once.Do(func() {
		l.stopWatch()
		if l.dlg.Context().Err() == nil {
			l.hangUpPhone()
		}
		l.mu.Lock()
		stream := l.stream
		l.stream = nil
		l.mu.Unlock()
		if stream != nil {
			stream.Close()
		} else {
			l.conn.Close()
		}
		l.dlg.Close()
		l.forget()
		l.log.Info().AnErr("cause", context.Cause(l.ctx)).Msg("agent leg ended")
		close(l.finished)
	})
}

// hangUpPhone sends the phone its BYE and waits a while for the answer;
// an unanswered BYE carries on without the leg (Server.sendBye).
func (l *agentLeg) hangUpPhone() {
	t := time.NewTimer(hangupTimeout)
	defer t.Stop()
	select {
	case <-l.srv.sendBye(l.log, "agent", l.bye):
	case <-t.C:
	}
}

// bye sends BYE from the socket the INVITE left from, as the ACK and
// CANCEL do; sipgo's own BYE would leave from any socket.
func (l *agentLeg) bye(ctx context.Context) error {
	recipient := l.dlg.InviteRequest.Recipient
	if c := l.dlg.InviteResponse.Contact(); c != nil {
		recipient = c.Address
	}
	bye := sip.NewRequest(sip.BYE, *recipient.Clone())
	bye.Laddr = l.dlg.InviteRequest.Laddr
	return l.dlg.WriteBye(ctx, bye)
}

// forget removes the leg from the server.
func (l *agentLeg) forget() {
	s := l.srv
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.agents.all, l)
	if l.dialogID != "" && s.agents.byDialog[l.dialogID] == l {
		delete(s.agents.byDialog, l.dialogID)
	}
	s.notifyIdleLocked()
}

// findAgentLeg matches an in-dialog request from an agent's phone to its
// leg; the phone is the UAS of the dialog, so its tag is in From.
func (s *Server) findAgentLeg(req *sip.Request) *agentLeg {
	id, err := sip.DialogIDFromRequestUAC(req)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.agents.byDialog[id]
}

func (l *agentLeg) ID() string      { return l.id }
func (l *agentLeg) Caller() string  { return l.user }
func (l *agentLeg) Dialled() string { return l.user }

// Answer does nothing: the leg is answered by the agent.
func (l *agentLeg) Answer(context.Context) error { return nil }

func (l *agentLeg) Digits() <-chan ivr.Digit { return l.digits }
func (l *agentLeg) Done() <-chan struct{}    { return l.ctx.Done() }

func (l *agentLeg) Err() error {
	if l.ctx.Err() == nil {
		return nil
	}
	return context.Cause(l.ctx)
}

// Play plays prompts to the agent (a whisper before the bridge; while
// bridged, a prompt plays before the citizen's voice resumes).
func (l *agentLeg) Play(_ context.Context, lang prompts.Lang, ids ...prompts.ID) (ivr.Playback, error) {
	clips := make([]*media.Clip, 0, len(ids))
	for _, id := range ids {
		clip, err := l.srv.clip(id, lang)
		if err != nil {
			return nil, err
		}
		clips = append(clips, clip)
	}
	if err := l.Err(); err != nil {
		return nil, err
	}
	stream := l.mediaStream()
	if stream == nil {
		return nil, ivr.ErrHangup
	}
	return playback{stream.Play(clips...)}, nil
}

// Hangup ends the leg and waits until it has ended here, its BYE answered
// or given a while (or ctx ends); an unanswered BYE's transaction carries
// on without it (Server.sendBye). Hanging up an ended leg is a no-op.
func (l *agentLeg) Hangup(ctx context.Context) error {
	l.cancel(ivr.ErrHangup)
	select {
	case <-l.finished:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// digit keeps a key the agent pressed for a flow that reads them, never
// blocking the goroutine that received it.
func (l *agentLeg) digit(key rune, method ivr.DTMFMethod) {
	select {
	case l.digits <- ivr.Digit{Key: key, Method: method, At: time.Now()}:
	default:
		l.log.Debug().Str("digit", string(key)).Msg("agent's key dropped: no flow reads them")
	}
}

// mediaStream is the leg's stream, nil once torn down.
func (l *agentLeg) mediaStream() *media.Stream {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stream
}

// onBye ends the leg: the agent hung up.
func (l *agentLeg) onBye(req *sip.Request, tx sip.ServerTransaction) {
	if err := l.dlg.ReadBye(req, tx); err != nil {
		l.log.Debug().Err(err).Msg("answering the agent's BYE")
	}
	l.cancel(errAgentHungUp)
}

// onInfo takes a key the agent pressed, sent by SIP INFO: it goes to the
// citizen as RFC 4733 events while bridged.
func (l *agentLeg) onInfo(req *sip.Request, tx sip.ServerTransaction) {
	key, err := parseInfoDTMF(req)
	switch {
	case errors.Is(err, errInfoType):
		respond(tx, req, sip.StatusUnsupportedMediaType, "Unsupported Media Type",
			sip.NewHeader("Accept", "application/dtmf-relay, application/dtmf"))
		return
	case err != nil:
		respond(tx, req, sip.StatusBadRequest, "Bad Request - "+err.Error())
		return
	}
	respond(tx, req, sip.StatusOK, "OK")
	l.digit(key, ivr.DTMFInfo)
	if stream := l.mediaStream(); stream != nil {
		_ = stream.RelayDigit(key)
	}
}

// onReInvite follows the agent's phone putting the call on hold and back,
// or moving its media; the codec stays. An INVITE without an offer asks for
// one (RFC 3264 §5): ours is the session as it stands.
func (l *agentLeg) onReInvite(req *sip.Request, tx sip.ServerTransaction) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stream == nil {
		respond(tx, req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
		return
	}
	o := l.answer
	if len(req.Body()) > 0 {
		if r := sdpBodyRefusal(req); r != nil {
			refuse(tx, req, r)
			return
		}
		var err error
		o, err = parseOffer(req.Body(), []media.Codec{l.stream.Codec()})
		if err != nil {
			l.log.Info().Err(err).Msg("agent's re-INVITE not acceptable")
			respond(tx, req, sip.StatusNotAcceptableHere, "Not Acceptable Here")
			return
		}
		l.answer = o
		l.stream.SetRemote(o.remote, o.rtcpPort)
		l.stream.SetDirection(o.send, o.recv)
		l.log.Info().Bool("send", o.send).Bool("recv", o.recv).Str("remote", o.remote.String()).Msg("agent's re-INVITE")
	}
	l.sdpVersion++
	body, err := answerSDP(o, l.stream.LocalAddr(), l.sessionID, l.sdpVersion)
	if err != nil {
		respond(tx, req, sip.StatusInternalServerError, "Server Internal Error")
		return
	}
	res := sip.NewSDPResponseFromRequest(req, body)
	res.AppendHeader(l.srv.contactFor(req))
	_ = tx.Respond(res)
}

// ctxError is ctx's error, wrapping its cause too when it has one (the
// citizen hung up), so that errors.Is finds either.
func ctxError(ctx context.Context) error {
	err, cause := ctx.Err(), context.Cause(ctx)
	if cause == nil || cause == err {
		return err
	}
	return fmt.Errorf("%w: %w", err, cause)
}
