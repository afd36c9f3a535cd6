package asterisk

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/calllog"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/prompts"
)

// channel is one Asterisk channel in the application: a citizen's call
// (an ivr.Call) or an agent's phone leg.
type channel struct {
	b         *Backend
	id        string // Asterisk's channel id
	callID    string // hotline's call id
	agent     bool   // a leg hotline originated: to an agent's phone, or to a number
	caller    string
	dialled   string
	sipCallID string // the channel's protocol_id, when known
	log       zerolog.Logger

	ctx    context.Context // ends with the channel; context.Cause says why
	cancel context.CancelCauseFunc
	digits chan ivr.Digit

	answered    chan struct{} // an originated leg was answered (StasisStart)
	answerOnce  sync.Once
	isUp        atomic.Bool   // Answer succeeded, or the leg was answered
	hungUp      atomic.Bool   // hotline asked for the hangup
	hangupCause atomic.Int32  // the far end's hangup cause (Q.850), when given
	dropped     atomic.Uint64 // keys no flow was reading

	// left is closed once no more events of the channel will come: it
	// left the application (StasisEnd, ChannelDestroyed) or hotline
	// stopped tracking it.
	left     chan struct{}
	leftOnce sync.Once

	statsMu  sync.Mutex
	rtpStats string // the latest RTPAUDIOQOS Asterisk set on the channel
}

var (
	_ ivr.Call      = (*channel)(nil)
	_ ivr.Describer = (*channel)(nil)
)

// Describe fills the Asterisk details of the call record: the SIP
// Call-ID, and once the call has ended its quality, from the RTP
// statistics Asterisk left on the channel (RTPAUDIOQOS, see rtpStatsVar).
// Those come just before the channel leaves the application, which may be
// after Asterisk answered hotline's hang-up: Describe waits for it, up to
// statsWait. Without them (a channel with no RTP, a Local channel, or the
// event socket down as the call ended) the record has no quality.
func (c *channel) Describe(r *calllog.Record) {
	if c.sipCallID != "" {
		r.SIPCallID = c.sipCallID
	}
	if c.ctx.Err() == nil {
		return
	}
	c.awaitLeft()
	c.statsMu.Lock()
	stats := c.rtpStats
	c.statsMu.Unlock()
	if stats != "" {
		c.log.Debug().Str("rtpaudioqos", stats).Msg("rtp statistics")
	}
	if q := parseRTPStats(stats).quality(); q != nil {
		r.Quality = q
	}
}

// statsWait bounds the wait at a call's end for the channel's last
// events: Asterisk sends them within milliseconds of the hang-up, unless
// the event socket is down.
const statsWait = 2 * time.Second

// awaitLeft waits until no more events of the channel will come, for up
// to statsWait.
func (c *channel) awaitLeft() {
	t := time.NewTimer(statsWait)
	defer t.Stop()
	select {
	case <-c.left:
	case <-c.b.baseCtx.Done():
	case <-t.C:
		c.log.Warn().Stringer("waited", statsWait).Msg("the channel did not leave the application: its call quality is unknown")
	}
}

// leftApp says no more events of the channel will come.
func (c *channel) leftApp() { c.leftOnce.Do(func() { close(c.left) }) }

// setRTPStats keeps the channel's RTP statistics, the latest only.
func (c *channel) setRTPStats(v string) {
	c.statsMu.Lock()
	defer c.statsMu.Unlock()
	c.rtpStats = v
}

func (c *channel) ID() string               { return c.callID }
func (c *channel) Caller() string           { return c.caller }
func (c *channel) Dialled() string          { return c.dialled }
func (c *channel) Digits() <-chan ivr.Digit { return c.digits }
func (c *channel) Done() <-chan struct{}    { return c.ctx.Done() }

func (c *channel) Err() error {
	if c.ctx.Err() == nil {
		return nil
	}
	return context.Cause(c.ctx)
}

// originating is a leg to an agent's phone that has not been answered.
func (c *channel) originating() bool {
	if !c.agent {
		return false
	}
	select {
	case <-c.answered:
		return false
	default:
		return true
	}
}

// Answer answers the channel (POST /channels/{id}/answer); answering an
// answered channel is a no-op.
func (c *channel) Answer(ctx context.Context) error {
	if c.isUp.Load() {
		return nil
	}
	if err := c.Err(); err != nil {
		return err
	}
	if err := c.b.rest.answer(ctx, c.id); err != nil {
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) {
			// The caller hung up before the answer: the channel is gone
			// (404) or no longer in the application (409).
			c.farEnd(ivr.ErrCallerHangup)
			return c.Err()
		}
		if cerr := c.Err(); cerr != nil {
			return cerr
		}
		return fmt.Errorf("answer: %w", err)
	}
	c.isUp.Store(true)
	return nil
}

// Hangup ends the channel from hotline's side (DELETE /channels/{id});
// hanging up an ended channel is a no-op.
func (c *channel) Hangup(ctx context.Context) error {
	if !c.hungUp.CompareAndSwap(false, true) {
		return nil
	}
	ended := c.ctx.Err() != nil
	c.cancel(ivr.ErrHangup)
	if ended && !c.agent {
		return nil // the far end is gone; so is the channel
	}
	if err := c.b.rest.hangup(ctx, c.id, "normal"); err != nil {
		return fmt.Errorf("hangup: %w", err)
	}
	return nil
}

// digit delivers a key press without ever blocking the event loop.
func (c *channel) digit(key rune) {
	select {
	case c.digits <- ivr.Digit{Key: key, Method: ivr.DTMFRFC4733, At: time.Now()}:
	default:
		c.dropped.Add(1)
		c.log.Warn().Str("digit", string(key)).Msg("dtmf dropped: the flow is not reading keys")
	}
}

// farEnd ends the channel because it left hotline's hands; a cause set
// earlier (hotline's own hangup) wins.
func (c *channel) farEnd(cause error) { c.cancel(cause) }

// hangupRequested is ChannelHangupRequest: the far end hung up, unless
// hotline asked for it.
func (c *channel) hangupRequested(cause int) {
	if cause != 0 {
		c.hangupCause.Store(int32(cause))
	}
	if !c.hungUp.Load() {
		c.farEnd(ivr.ErrCallerHangup)
	}
}

// destroyed is ChannelDestroyed, the last event of an originated channel:
// its cause says why a ring ended unanswered.
func (c *channel) destroyed(cause int) {
	c.hangupCause.Store(int32(cause))
	c.farEnd(ivr.ErrCallerHangup)
}

// answeredNow marks an originated leg as answered (its StasisStart).
func (c *channel) answeredNow() {
	c.answerOnce.Do(func() {
		c.isUp.Store(true)
		close(c.answered)
	})
}

// Play queues the prompts; each plays as its own ARI playback, one after
// the other, so that each one's start is known.
func (c *channel) Play(ctx context.Context, lang prompts.Lang, ids ...prompts.ID) (ivr.Playback, error) {
	list := make([]*prompts.Prompt, 0, len(ids))
	for _, id := range ids {
		p, err := c.b.opts.Catalog.Get(id, lang)
		if err != nil {
			return nil, err
		}
		list = append(list, p)
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	pb := &playback{ch: c, list: list, stop: make(chan struct{}), done: make(chan struct{})}
	c.b.flows.Go(pb.run)
	return pb, nil
}

// playback plays a list of prompts on a channel.
type playback struct {
	ch       *channel
	list     []*prompts.Prompt
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}

	mu     sync.Mutex
	played []ivr.PlayedPrompt
}

// playItem is one ARI playback: one prompt.
type playItem struct {
	id          string
	pb          *playback
	prompt      *prompts.Prompt
	startOnce   sync.Once
	finishOnce  sync.Once
	finishedCh  chan struct{}
	finishState atomic.Value // Asterisk's final state: "done", "failed"
	evented     atomic.Bool  // an event of it arrived: Asterisk started it
}

// started is PlaybackStarted.
func (it *playItem) started() {
	it.evented.Store(true)
	it.startOnce.Do(func() {
		it.pb.mu.Lock()
		it.pb.played = append(it.pb.played, ivr.PlayedPrompt{
			ID: it.prompt.ID, Lang: it.prompt.Lang, Version: it.prompt.Version, At: time.Now(),
		})
		it.pb.mu.Unlock()
	})
}

// finishedEvent is PlaybackFinished.
func (it *playItem) finishedEvent(state string) {
	it.evented.Store(true)
	it.finished(state)
}

// finished ends the wait for the playback, by its event or because
// Asterisk no longer has it.
func (it *playItem) finished(state string) {
	it.finishOnce.Do(func() {
		it.finishState.Store(state)
		close(it.finishedCh)
	})
}

func (pb *playback) Done() <-chan struct{} { return pb.done }
func (pb *playback) Stop()                 { pb.stopOnce.Do(func() { close(pb.stop) }) }

func (pb *playback) stopped() bool {
	select {
	case <-pb.stop:
		return true
	default:
		return false
	}
}

func (pb *playback) Played() []ivr.PlayedPrompt {
	pb.mu.Lock()
	defer pb.mu.Unlock()
	return append([]ivr.PlayedPrompt(nil), pb.played...)
}

// run plays the prompts in turn until the last ends, Stop is called or
// the channel ends.
func (pb *playback) run() {
	defer close(pb.done)
	c := pb.ch
	b := c.b
	for _, p := range pb.list {
		select {
		case <-pb.stop:
			return
		case <-c.ctx.Done():
			return
		default:
		}
		it, err := pb.start(p)
		if err != nil {
			if c.ctx.Err() == nil && !pb.stopped() {
				c.log.Warn().Err(err).Str("prompt", string(p.ID)).Msg("play")
			}
			return
		}
		forget := func() { b.forgetPlayback(it) }
		select {
		case <-it.finishedCh:
			if st, _ := it.finishState.Load().(string); st == "failed" {
				c.log.Error().Str("prompt", string(p.ID)).Str("lang", string(p.Lang)).
					Msg("asterisk could not play the prompt: are the prompts installed (hotline prompts install --asterisk-sounds)?")
			}
			forget()
		case <-pb.stop:
			sctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), b.opts.RequestTimeout)
			if err := b.rest.stopPlayback(sctx, it.id); err != nil && c.ctx.Err() == nil {
				c.log.Warn().Err(err).Msg("stop playback")
			}
			cancel()
			forget()
			return
		case <-c.ctx.Done():
			forget()
			return
		}
	}
}

// newItem is a playback of p, tracked so that its events find it.
func (pb *playback) newItem(p *prompts.Prompt) *playItem {
	it := &playItem{id: uuid.NewString(), pb: pb, prompt: p, finishedCh: make(chan struct{})}
	b := pb.ch.b
	b.mu.Lock()
	b.playbacks[it.id] = it
	b.mu.Unlock()
	return it
}

func (b *Backend) forgetPlayback(it *playItem) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.playbacks, it.id)
}

// start starts prompt p and returns its ARI playback. A request Asterisk
// did not answer (the network, its HTTP server away, a timeout) may or may
// not have started the prompt: it is asked again, with backoff, while the
// call lasts. Once ARI answers, the playback's events or GET
// /playbacks/{id} say whether it started, and one that did not is started
// under a new id. The flow waits meanwhile: it must not run on past a
// prompt the caller never heard.
func (pb *playback) start(p *prompts.Prompt) (*playItem, error) {
	c := pb.ch
	b := c.b
	post := func(it *playItem) error {
		ctx, cancel := context.WithTimeout(c.ctx, b.opts.RequestTimeout)
		defer cancel()
		return b.rest.play(ctx, c.id, it.id, "sound:"+prompts.AsteriskSoundName(p.ID), string(p.Lang))
	}
	it := pb.newItem(p)
	err := post(it)
	if unanswered(err) && c.ctx.Err() == nil {
		c.log.Warn().Err(err).Str("prompt", string(p.ID)).Msg("play: no answer from asterisk; the flow waits for it")
	}
	wait := b.opts.ReconnectMin
	for unanswered(err) && c.ctx.Err() == nil {
		select {
		case <-time.After(wait):
		case <-c.ctx.Done():
		case <-pb.stop:
		}
		if c.ctx.Err() != nil || pb.stopped() {
			break
		}
		wait = b.nextRetry(wait)
		ctx, cancel := context.WithTimeout(c.ctx, b.opts.RequestTimeout)
		err = b.rest.do(ctx, http.MethodGet, "/playbacks/"+url.PathEscape(it.id), nil, nil, nil)
		cancel()
		switch {
		case it.evented.Load():
			err = nil // its events arrived meanwhile: it started
		case errors.Is(err, ErrNotFound):
			// Never started: start it now.
			b.forgetPlayback(it)
			it = pb.newItem(p)
			err = post(it)
		}
	}
	if err == nil && c.ctx.Err() == nil && !pb.stopped() {
		return it, nil
	}
	b.forgetPlayback(it)
	if err == nil {
		err = context.Cause(c.ctx)
		if err == nil {
			err = errPlaybackStopped
		}
	}
	return nil, err
}

var errPlaybackStopped = errors.New("playback stopped")

// maxRequestRetry bounds the wait between two tries of an unanswered
// request: a caller in silence should hear the prompt soon after Asterisk
// answers again.
const maxRequestRetry = 2 * time.Second

// nextRetry doubles the wait before trying an unanswered request again.
func (b *Backend) nextRetry(wait time.Duration) time.Duration {
	return min(2*wait, b.opts.ReconnectMax, maxRequestRetry)
}

// unanswered reports whether a request failed without an answer from
// Asterisk (the network, its HTTP server gone, a timeout): it may or may not
// have been carried out.
func unanswered(err error) bool {
	var re *RESTError
	return err != nil && !errors.As(err, &re)
}
