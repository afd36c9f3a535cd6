package sip

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/calllog"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/media"
	"github.com/hotline12345/hotline/prompts"
)

// call is one inbound SIP call; it implements ivr.Call.
type call struct {
	id      string
	srv     *Server
	tx      sip.ServerTransaction // the INVITE's
	dlg     *sipgo.DialogServerSession
	caller  string
	dialled string
	trunk   string // the trunk the call came in on, if any
	log     zerolog.Logger

	ctx    context.Context // ends with the call; context.Cause says why
	cancel context.CancelCauseFunc
	digits chan ivr.Digit

	mu         sync.Mutex // guards offer, sdpVersion, localSDP, ackSDP, and stream while it may be nil
	offer      offer      // the caller's side of the session: its offer, or its answer to ours
	localSDP   []byte     // our SDP: the answer to the caller's offer, or our offer in the 200
	ackSDP     []byte     // the ACK's body: the answer to our offer
	sessionID  uint64
	sdpVersion uint64

	// lateOffer says the INVITE had no offer: ours went in the 200 and the
	// answer comes in the ACK (RFC 3261 §13.2.1). Until then conn, our RTP
	// socket, waits for the stream to start, and stream is nil.
	lateOffer bool
	conn      *media.Socket
	stream    *media.Stream
	// closed is the stream once closeMedia stopped it, for the quality
	// figures of the call's record.
	closed   *media.Stream
	answered atomic.Bool
	answerMu sync.Mutex  // serialises Answer
	hungUp   atomic.Bool // our side has ended the dialog, or tried to
	dropped  atomic.Uint64

	// untrusted: the call came from a source neither trusted nor an
	// agent's, and holds one of Limits.MaxCalls.
	untrusted bool
	// synthetic: the INVITE carried a valid probe claim (probe.go).
	synthetic bool

	// stopWatch stops watching the dialog for the caller's hangup.
	stopWatch func() bool
}

var _ ivr.Call = (*call)(nil)

func (c *call) ID() string      { return c.id }
func (c *call) Caller() string  { return c.caller }
func (c *call) Dialled() string { return c.dialled }

func (c *call) Digits() <-chan ivr.Digit { return c.digits }
func (c *call) Done() <-chan struct{}    { return c.ctx.Done() }

func (c *call) Err() error {
	if c.ctx.Err() == nil {
		return nil
	}
	return context.Cause(c.ctx)
}

// Describe fills the SIP details of the call record.
func (c *call) Describe(r *calllog.Record) {
	r.SIPCallID = c.dlg.InviteRequest.CallID().Value()
	r.Trunk = c.trunk
	c.mu.Lock()
	st := c.stream
	if st == nil {
		st = c.closed
	}
	c.mu.Unlock()
	if st != nil {
		r.Codec = st.Codec().Name
		r.Quality = qualityRecord(st.Quality())
	}
}

// qualityRecord is a stream's quality as the call record keeps it; nil
// when no RTP came from the far end.
func qualityRecord(q media.Quality) *calllog.Quality {
	if q.Receive.Expected == 0 {
		return nil
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	rec := &calllog.Quality{
		PacketsReceived: q.Receive.Received,
		PacketsExpected: q.Receive.Expected,
		PacketsLost:     q.Receive.Lost,
		LossRatio:       q.Receive.LossRatio(),
		JitterMS:        ms(q.Receive.Jitter),
		MOS:             q.MOS,
	}
	if q.RTTKnown {
		rtt := ms(q.RTT)
		rec.RTTMS = &rtt
	}
	if q.Remote != nil {
		loss, jitter := q.Remote.LossRatio, ms(q.Remote.Jitter)
		rec.RemoteLossRatio, rec.RemoteJitterMS = &loss, &jitter
	}
	return rec
}

// mediaStream is the call's stream, nil while a late offer's answer has
// not come.
func (c *call) mediaStream() *media.Stream {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stream
}

// startStream starts the call's RTP on conn as the negotiated session o
// says.
func (c *call) startStream(conn *media.Socket, o offer) (*media.Stream, error) {
	s := c.srv
	return s.opts.Pacer.Start(media.StreamConfig{
		Conn:            conn,
		Remote:          o.remote,
		RemoteRTCPPort:  o.rtcpPort,
		Codec:           o.codec,
		DTMFPayloadType: o.dtmfPT,
		MediaTimeout:    s.opts.MediaTimeout,
		OnDigit:         func(key rune, method string) { c.digit(key, ivr.DTMFMethod(method)) },
		OnTimeout:       func() { c.end(fmt.Errorf("%w for %s", ivr.ErrMediaTimeout, s.opts.MediaTimeout)) },
	})
}

// closeMedia stops the call's RTP and frees its port.
func (c *call) closeMedia() {
	c.mu.Lock()
	st, conn := c.stream, c.conn
	c.stream, c.conn = nil, nil
	if st != nil {
		c.closed = st
	}
	c.mu.Unlock()
	if st != nil {
		st.Close()
	} else if conn != nil {
		conn.Close()
	}
}

// ackBody keeps the body of the caller's ACK: the answer to our offer.
func (c *call) ackBody(body []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ackSDP = body
}

var errAckTimeout = errors.New("no ACK")

// noAck ends a call whose 200 was never acknowledged: nobody is there (a
// flood from addresses that do not answer looks just so). Its 200 is no
// longer sent, and its media port is free at once rather than when the
// flow has finished with the call. No BYE follows, though §13.3.1.4 says
// the session should end with one: it would go to a Contact nobody
// vouched for, a request to anywhere for anyone who sends an INVITE.
func (c *call) noAck() {
	c.cancel(ivr.ErrNoAck)
	c.tx.Terminate()
	c.closeMedia()
	c.log.Info().Stringer("waited", c.srv.opts.AckTimeout).Msg("the 200 was never acknowledged")
}

// errNoAnswer says the ACK to our offer carried no usable answer.
var errNoAnswer = errors.New("no usable answer to our offer in the ACK")

// startLateOffer starts the stream the ACK's answer describes. The dialog
// is confirmed by then: a call that cannot go on is ended with a BYE.
func (c *call) startLateOffer() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.ackSDP) == 0 {
		return errNoAnswer
	}
	o, err := parseOffer(c.ackSDP, c.srv.opts.Codecs)
	if err != nil {
		return fmt.Errorf("%w: %w", errNoAnswer, err)
	}
	stream, err := c.startStream(c.conn, o)
	if err != nil {
		return err
	}
	c.offer, c.stream, c.conn = o, stream, nil
	stream.SetDirection(o.send, o.recv)
	c.log.Info().Str("codec", o.codec.Name).Str("remote", o.remote.String()).Msg("late offer answered in the ACK")
	return nil
}

// Answer sends 200 OK with our SDP answer (after the configured ring time,
// with 180 Ringing meanwhile) and waits for the caller's ACK.
func (c *call) Answer(ctx context.Context) error {
	c.answerMu.Lock()
	defer c.answerMu.Unlock()
	if c.answered.Load() {
		return nil
	}
	// A call that has ended (hung up, its caller gone) is not answered:
	// a 200 after our final response would open a dialog nobody has.
	if err := c.Err(); err != nil {
		return err
	}
	if ring := c.srv.opts.RingTime; ring > 0 {
		if err := c.dlg.Respond(sip.StatusRinging, "Ringing", nil); err != nil {
			return fmt.Errorf("180 ringing: %w", err)
		}
		t := time.NewTimer(ring)
		defer t.Stop()
		select {
		case <-t.C:
		case <-c.ctx.Done():
			return context.Cause(c.ctx)
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	c.mu.Lock()
	body := c.localSDP
	o := c.offer
	c.mu.Unlock()
	// sipgo sends the 200, and again until the ACK comes (RFC 3261
	// §13.3.1.4); its own wait for the ACK does not end while it
	// retransmits, so the call keeps its own.
	sent := make(chan error, 1)
	go func() { sent <- c.dlg.RespondSDP(body) }()
	ackWait := time.NewTimer(c.srv.opts.AckTimeout)
	defer ackWait.Stop()
	var err error
	select {
	case err = <-sent:
	case <-ackWait.C:
		err = errAckTimeout
	}
	if err != nil {
		if c.dlg.Context().Err() != nil {
			// The INVITE transaction ended before our 200 could go: the
			// caller cancelled. The dialog's end reaches the call's own
			// watch a moment later; the cause is the same.
			c.cancel(ivr.ErrCallerHangup)
		}
		if c.Err() != nil {
			return c.Err()
		}
		if errors.Is(err, errAckTimeout) || errors.Is(err, sip.ErrTransactionTerminated) {
			c.noAck()
			return c.Err()
		}
		return fmt.Errorf("200 ok: %w", err)
	}
	c.answered.Store(true)
	if c.lateOffer {
		if err := c.startLateOffer(); err != nil {
			c.log.Warn().Err(err).Msg("late offer")
			return err
		}
		return nil
	}
	c.stream.SetDirection(o.send, o.recv)
	return nil
}

// Play queues prompts; each prompt is looked up in the language asked for.
func (c *call) Play(ctx context.Context, lang prompts.Lang, ids ...prompts.ID) (ivr.Playback, error) {
	clips := make([]*media.Clip, 0, len(ids))
	for _, id := range ids {
		clip, err := c.srv.clip(id, lang)
		if err != nil {
			return nil, err
		}
		clips = append(clips, clip)
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	st := c.mediaStream()
	if st == nil {
		return nil, errNoMedia
	}
	return playback{st.Play(clips...)}, nil
}

// Hangup ends the call from our side: 480 before the answer, a BYE after
// it. It waits for the BYE's answer until ctx ends; a BYE still
// unanswered then carries on without it (Server.sendBye).
func (c *call) Hangup(ctx context.Context) error {
	return c.hangup(ctx, sip.StatusTemporarilyUnavailable, "Temporarily Unavailable")
}

// hangup ends the dialog once, with a BYE when answered and with code
// before. A call whose context ended for our own reasons (media timeout,
// EndAll) still has the caller on the line, who must be told; only a caller
// who hung up (BYE, CANCEL: the dialog ended) needs nothing more.
func (c *call) hangup(ctx context.Context, code int, reason string) error {
	if !c.hungUp.CompareAndSwap(false, true) {
		return nil
	}
	c.cancel(ivr.ErrHangup)
	if c.dlg.Context().Err() != nil {
		return nil
	}
	if !c.answered.Load() {
		return c.dlg.Respond(code, reason, nil)
	}
	select {
	case <-c.srv.sendBye(c.log, "caller", c.bye):
	case <-ctx.Done():
	}
	return nil
}

// bye sends the caller's BYE to the Contact of its INVITE, over UDP from
// the port its INVITE came to.
func (c *call) bye(ctx context.Context) error {
	inv := c.dlg.InviteRequest
	bye := sip.NewRequest(sip.BYE, *inv.Contact().Address.Clone())
	bye.SetTransport(inv.Transport())
	if strings.EqualFold(inv.Transport(), "udp") {
		bye.Laddr = c.srv.udpLaddr()
	}
	return c.dlg.WriteBye(ctx, bye)
}

// end ends the call with a cause; used for media timeouts and shutdown. The
// flow sees the cause and the runner hangs up.
func (c *call) end(cause error) { c.cancel(cause) }

// digit delivers a key press to the flow without ever blocking the media or
// SIP goroutine that received it.
func (c *call) digit(key rune, method ivr.DTMFMethod) {
	d := ivr.Digit{Key: key, Method: method, At: time.Now()}
	select {
	case c.digits <- d:
		c.log.Debug().Str("digit", string(key)).Str("method", string(method)).Msg("dtmf")
	default:
		c.dropped.Add(1)
		c.log.Warn().Str("digit", string(key)).Msg("dtmf dropped: the flow is not reading keys")
	}
}

// errNoMedia says a prompt was played before the call had media: before a
// late offer was answered.
var errNoMedia = errors.New("sip: the call has no media yet")

// playback adapts a media playback to the ivr port.
type playback struct{ *media.Playback }

func (p playback) Played() []ivr.PlayedPrompt {
	played := p.Playback.Played()
	out := make([]ivr.PlayedPrompt, 0, len(played))
	for _, x := range played {
		pr := x.Ref.(*prompts.Prompt)
		out = append(out, ivr.PlayedPrompt{ID: pr.ID, Lang: pr.Lang, Version: pr.Version, At: x.At})
	}
	return out
}
