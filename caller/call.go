package caller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/emiago/diago"
	dmedia "github.com/emiago/diago/media"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/logging"
	"github.com/hotline12345/hotline/prompts"
)

// Who ended a call, in Transcript.HungUpBy.
const (
	HungUpByServer = "server"
	HungUpByCaller = "caller"
)

const (
	// keyGap is the pause between two keys sent by SIP INFO.
	keyGap = 150 * time.Millisecond
	// infoDuration is the Duration field of an INFO key, in milliseconds:
	// 160 ms, as phones commonly send.
	infoDuration = 160
	// byeTimeout bounds our BYE; sipgo gives up on a lost one after 32 s
	// (64*T1, RFC 3261 §17.1.2.2) otherwise.
	byeTimeout = 5 * time.Second
	// drainTime is how long, after the dialog ended, the receiver still
	// reads what has arrived: the far end's last RTP packets are sent just
	// before its BYE and may still wait in the socket when diago closes it.
	drainTime = 100 * time.Millisecond
)

// Call places one call to opts.Target, follows opts.Script and returns what
// the caller heard and did.
//
// Each step waits for the next occurrence of its prompt and then acts: when
// the prompt has played to its end, or as soon as it is recognised with
// BargeIn. After the last step the caller stays on the line until the far
// end hangs up, or until opts.Timeout, when it hangs up itself and returns
// an error wrapping ErrTimeout. The call sends RTP every 20 ms throughout,
// silence when it has no key to send.
//
// The transcript is returned with every error once the call has started: a
// call not answered (Status says how) wraps ErrNotAnswered, a step whose
// prompt is not heard within opts.StepTimeout wraps ErrStepTimeout (the
// caller hangs up), and a call that ends before the script does wraps
// ErrCallEnded. Call returns only when the dialog is over and every
// goroutine it started has exited.
func Call(ctx context.Context, opts Options) (Transcript, error) {
	p, err := plan(opts)
	if err != nil {
		return Transcript{}, err
	}
	log := p.Logger.With().Str("target", p.Target).Str("from", p.From).Logger()
	ctx, cancel := context.WithTimeoutCause(ctx, p.Timeout, fmt.Errorf("%w after %s", ErrTimeout, p.Timeout))
	defer cancel()

	// Built before the INVITE for the codec preferred, which the far end
	// usually takes, so no audio waits for it.
	index := newFrameIndex(p.Catalog, p.codecs[0])

	stack, err := newStack(p, logging.Slog(log))
	if err != nil {
		return Transcript{}, err
	}
	defer stack.close()

	var st inviteStatus
	d, med, err := stack.invite(ctx, p, &st)
	tr := Transcript{Status: st.code}
	if err != nil {
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		switch {
		case st.code >= 300:
			return tr, fmt.Errorf("%w: %d %s", ErrNotAnswered, st.code, st.reason)
		case st.code >= 200:
			return tr, fmt.Errorf("answered, but the call could not be set up: %w", err)
		}
		return tr, fmt.Errorf("%w: %w", ErrNotAnswered, err)
	}
	tr.Answered = st.answered
	if tr.Answered.IsZero() {
		tr.Answered = time.Now()
	}
	c := &call{p: p, d: d, med: med, tr: &tr, hearings: newHearingQueue(), keys: newKeyQueue()}
	c.log = log.With().Str("sip_call_id", d.InviteRequest.CallID().Value()).Logger()
	return c.run(ctx, index)
}

// call is one answered call. Its fields belong to the goroutine of run,
// except where said.
type call struct {
	p        callPlan
	log      zerolog.Logger
	d        *diago.DialogClientSession
	med      *diago.DialogMedia
	ms       *dmedia.MediaSession
	tr       *Transcript
	hearings *hearingQueue // from the receiver
	keys     *keyQueue     // to the sender or the INFO keypad

	sipMu sync.Mutex // serialises our in-dialog requests (INFO, BYE)

	step    int
	timer   *time.Timer
	stepDue <-chan time.Time
	byeSent bool
	ended   bool // the dialog is over
	failure error
}

func (c *call) run(ctx context.Context, index *frameIndex) (Transcript, error) {
	ms := c.med.MediaSession()
	c.ms = ms
	audio := dmedia.CodecAudioFromSession(ms)
	l, ok := lawByName(audio.Name)
	if !ok {
		l = index.law // only G.711 is offered
	}
	if l.name != index.law.name {
		index = newFrameIndex(c.p.Catalog, l)
	}
	eventPT := -1
	for _, cd := range ms.CommonCodecs() {
		if cd.Matches(dmedia.CodecTelephoneEvent8000) {
			eventPT = int(cd.PayloadType)
			break
		}
	}
	c.log.Info().Str("codec", l.name).Int("telephone_event", eventPT).Msg("answered")

	// Receive: the recogniser runs on every packet as it arrives.
	catalog := c.p.Catalog
	rec := newRecogniser(index, func() *prompts.Matcher { return prompts.NewMatcher(catalog) },
		c.tr.Answered, c.hearings.push, c.log)
	readDone := make(chan struct{}) // reading stopped
	recvDone := make(chan struct{}) // and the recogniser finished
	var heard []prompts.Heard
	go func() {
		defer close(recvDone)
		receive(c.med.RTPPacketReader, audio.PayloadTypeRecv(), rec, c.log)
		close(readDone)
		heard = rec.finish()
	}()
	var drain sync.Once
	c.d.OnState(func(s sip.DialogState) {
		if s != sip.DialogStateEnded {
			return
		}
		// Runs before diago closes the media (the newest callback runs
		// first): let the receiver read what has already arrived.
		drain.Do(func() {
			_ = ms.StopRTP(1, drainTime)
			t := time.NewTimer(drainTime + time.Second)
			defer t.Stop()
			select {
			case <-readDone:
			case <-t.C:
			}
		})
	})

	// Send: RTP every 20 ms, with the keys unless they go by INFO.
	sendKeys := c.keys
	if c.p.DTMF == DTMFInfo {
		sendKeys = newKeyQueue()
	}
	src := newRTPSource(l, eventPT, c.p.DTMF == DTMFInband, sendKeys)
	stopSend := make(chan struct{})
	sendDone := make(chan struct{})
	go func() {
		defer close(sendDone)
		sendRTP(stopSend, src, audio.PayloadType, func(pkt *rtp.Packet) error {
			return c.med.RTPPacketWriter.Writer().WriteRTP(pkt)
		}, c.log)
	}()
	keyErrs := make(chan error, 1)
	keypadCtx, stopKeypad := context.WithCancel(ctx)
	keypadDone := make(chan struct{})
	if c.p.DTMF == DTMFInfo {
		go func() {
			defer close(keypadDone)
			c.infoKeypad(keypadCtx, keyErrs)
		}()
	} else {
		close(keypadDone)
	}

	c.timer = time.NewTimer(c.p.StepTimeout)
	c.armStep()
	if c.p.DTMF == DTMFRFC4733 && eventPT < 0 && c.p.Script.presses() {
		c.fail(fmt.Errorf("%w: its answer has no telephone-event/8000 (try --dtmf info or inband)", ErrNoTelephoneEvent))
	}

	dialogDone := c.d.Context().Done()
	ctxDone := ctx.Done()
	for !c.ended || recvDone != nil {
		select {
		case <-c.hearings.wake:
			for _, h := range c.hearings.take() {
				c.hear(h)
			}
		case <-recvDone:
			recvDone = nil
			for _, h := range c.hearings.take() {
				c.hear(h)
			}
		case <-dialogDone:
			dialogDone = nil
			if !c.byeSent {
				c.tr.HungUpBy = HungUpByServer
			}
			c.end()
		case <-c.stepDue:
			st := c.p.Script[c.step]
			c.fail(fmt.Errorf("%w: step %d waited %s for %s", ErrStepTimeout, c.step+1, c.p.StepTimeout, st.On))
		case err := <-keyErrs:
			c.fail(err)
		case <-ctxDone:
			ctxDone = nil
			c.fail(context.Cause(ctx))
		}
	}
	c.timer.Stop()
	close(stopSend)
	stopKeypad()
	<-sendDone
	<-keypadDone
	// Closes the media if diago has not yet (a BYE that got no answer).
	if err := c.d.Close(); err != nil {
		c.log.Debug().Err(err).Msg("dialog close")
	}
	<-readDone
	if ch := recvDone; ch != nil {
		<-ch
	}
	c.tr.Heard = heard
	if c.failure == nil && c.step < len(c.p.Script) {
		st := c.p.Script[c.step]
		c.failure = fmt.Errorf("%w: hung up by %s while step %d waited for %s", ErrCallEnded, c.tr.HungUpBy, c.step+1, st.On)
	}
	c.log.Info().Str("hung_up_by", c.tr.HungUpBy).Int("prompts", len(heard)).Err(c.failure).Msg("call ended")
	return *c.tr, c.failure
}

// hear takes news from the recogniser: it keeps the transcript and plays
// the script.
func (c *call) hear(h hearing) {
	switch {
	case h.index == len(c.tr.Heard):
		c.tr.Heard = append(c.tr.Heard, h.heard)
	case h.index < len(c.tr.Heard):
		c.tr.Heard[h.index] = h.heard
	}
	if c.byeSent || c.ended || c.step >= len(c.p.Script) {
		return
	}
	st := c.p.Script[c.step]
	if st.On != h.heard.ID {
		return
	}
	if st.BargeIn == h.ended || !st.BargeIn && !h.heard.Complete {
		return
	}
	c.step++
	c.armStep()
	c.log.Debug().Str("prompt", string(st.On)).Str("press", st.Press).Bool("hangup", st.Hangup).Msg("step")
	switch {
	case st.Hangup:
		c.hangup()
	case st.Press != "":
		for _, k := range st.Press {
			c.tr.Pressed = append(c.tr.Pressed, string(k))
		}
		c.keys.push(st.Press)
	}
}

// armStep starts the wait for the current step's prompt.
func (c *call) armStep() {
	c.timer.Stop()
	c.stepDue = nil
	if c.step < len(c.p.Script) && !c.ended {
		c.timer.Reset(c.p.StepTimeout)
		c.stepDue = c.timer.C
	}
}

// fail ends the call with an error, the first one kept.
func (c *call) fail(err error) {
	if c.failure == nil {
		c.failure = err
	}
	c.hangup()
}

// hangup sends BYE, unless the call is already over.
func (c *call) hangup() {
	if c.byeSent || c.ended {
		c.end()
		return
	}
	c.byeSent = true
	c.tr.HungUpBy = HungUpByCaller
	ctx, cancel := context.WithTimeout(context.Background(), byeTimeout)
	defer cancel()
	c.sipMu.Lock()
	err := c.d.Hangup(ctx)
	c.sipMu.Unlock()
	if err != nil {
		c.log.Warn().Err(err).Msg("bye")
	}
	c.end()
}

// end notes that the dialog is over. The receiver reads what has arrived
// and stops, even when diago keeps the media open (a BYE that got no
// answer leaves the dialog confirmed).
func (c *call) end() {
	if !c.ended {
		c.ended = true
		c.tr.Ended = time.Now()
		_ = c.ms.StopRTP(1, drainTime)
	}
	c.armStep()
}

// infoKeypad sends queued keys as SIP INFO requests, one at a time, until
// ctx is done; a key the far end refuses is reported on errs.
func (c *call) infoKeypad(ctx context.Context, errs chan<- error) {
	gap := time.NewTimer(keyGap)
	gap.Stop()
	defer gap.Stop()
	for {
		k, ok := c.keys.pop()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-c.keys.wake:
				continue
			}
		}
		if err := c.sendInfo(ctx, k); err != nil {
			if ctx.Err() == nil {
				errs <- err
			}
			return
		}
		gap.Reset(keyGap)
		select {
		case <-ctx.Done():
			return
		case <-gap.C:
		}
	}
}

// sendInfo sends one key in an INFO request of the dialog, the way most
// phones and gateways do (application/dtmf-relay; there is no RFC for it).
func (c *call) sendInfo(ctx context.Context, key rune) error {
	target := c.d.InviteRequest.Recipient
	if contact := c.d.RemoteContact(); contact != nil {
		target = contact.Address
	}
	req := sip.NewRequest(sip.INFO, target)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/dtmf-relay"))
	req.SetBody(fmt.Appendf(nil, "Signal=%c\r\nDuration=%d\r\n", key, infoDuration))
	ctx, cancel := context.WithTimeout(ctx, byeTimeout)
	defer cancel()
	c.sipMu.Lock()
	res, err := c.d.Do(ctx, req)
	c.sipMu.Unlock()
	switch {
	case err != nil:
		return fmt.Errorf("%w: INFO for key %c: %w", ErrKeyRejected, key, err)
	case !res.IsSuccess():
		return fmt.Errorf("%w: INFO for key %c answered %d %s", ErrKeyRejected, key, res.StatusCode, res.Reason)
	}
	return nil
}

// receive reads the far end's RTP until the media closes (or the read
// deadline of the drain passes) and hands the audio to the recogniser;
// other payload types (comfort noise, its own events) are left out.
func receive(r *dmedia.RTPPacketReader, audioPT uint8, rec *recogniser, log zerolog.Logger) {
	buf := make([]byte, dmedia.RTPBufSize)
	for {
		n, err := r.Read(buf)
		if err != nil {
			var ne net.Error
			if !errors.Is(err, io.EOF) && !(errors.As(err, &ne) && ne.Timeout()) {
				log.Debug().Err(err).Msg("rtp receive")
			}
			return
		}
		if n == 0 || r.PacketHeader.PayloadType != audioPT {
			continue
		}
		rec.packet(r.PacketHeader.SSRC, r.PacketHeader.Timestamp, buf[:n], time.Now())
	}
}

// hearingQueue passes the recogniser's news to the call without ever
// blocking the receiver. It is safe for concurrent use.
type hearingQueue struct {
	mu    sync.Mutex
	queue []hearing
	wake  chan struct{}
}

func newHearingQueue() *hearingQueue { return &hearingQueue{wake: make(chan struct{}, 1)} }

func (q *hearingQueue) push(h hearing) {
	q.mu.Lock()
	q.queue = append(q.queue, h)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *hearingQueue) take() []hearing {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.queue
	q.queue = nil
	return out
}

// presses says whether any step presses keys.
func (s Script) presses() bool {
	for _, st := range s {
		if st.Press != "" {
			return true
		}
	}
	return false
}
