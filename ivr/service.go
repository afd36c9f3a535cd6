package ivr

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/evaluation"
	"github.com/hotline12345/hotline/prompts"
)

// Stages of the service flow, as recorded on the call.
const (
	StageQueue    = "queue"
	StageRinging  = "agent_ringing"
	StageTalking  = "talking"
	StageRating   = "rating"
	StageCallback = "callback"
)

// Queue is what the service flow needs of call distribution;
// *acd.Distributor provides it.
type Queue interface {
	// Staffed reports whether any agent taking the category has a phone
	// registered; with none, the caller is not queued.
	Staffed(ctx context.Context, c appeal.Category) (bool, error)
	// TurnedAway counts a call not queued because Staffed said no: it
	// counts in the day's figures and against the answer rate all the
	// same. Counting it again must change nothing.
	TurnedAway(ctx context.Context, callID string, c appeal.Category) error
	Enqueue(ctx context.Context, callID string, c appeal.Category) error
	Next(ctx context.Context, callID string) (acd.Offer, error)
	Position(ctx context.Context, callID string) (int, error)
	Answered(ctx context.Context, o acd.Offer) error
	Declined(ctx context.Context, o acd.Offer, why acd.DeclineReason, maxMissed int) (acd.State, error)
	Ended(ctx context.Context, o acd.Offer, wrapUp time.Duration) error
	Leave(ctx context.Context, callID string, why acd.LeaveReason) error
}

// ServedCounter counts a call served on the complaint line once its agent
// answered; counting it again must change nothing. *evaluation.Store is
// one.
type ServedCounter interface {
	Served(ctx context.Context, c evaluation.ServedCall) error
}

// ServiceOptions tune the service flow.
type ServiceOptions struct {
	RingTimeout   time.Duration // an offer not answered by then goes on; default 15 s
	WrapUp        time.Duration // the agent's wrap-up after each call
	MaxMissed     int           // offers missed in a row before an agent is paused; default 2
	MaxWait       time.Duration // after this wait a consenting caller may leave for a call-back; default 3 min
	PositionEvery time.Duration // how often the caller hears the queue position; default 30 s
	Rating        RatingOptions
}

// Service takes a caller after intake to an agent and, when the agent hangs
// up, to the rating: queue with hold audio and position, offers to agents
// until one answers, the conversation, the rating.
type Service struct {
	Queue Queue
	// Dialer rings agents (an Agent destination); Bridger joins the
	// caller with the agent who answered.
	Dialer  Dialer
	Bridger Bridger
	Ratings RatingRecorder
	// Served, when set, counts each call an agent answered: the
	// denominator of the effective complaint rate.
	Served  ServedCounter
	Options ServiceOptions
	// Metrics, when set, count offers, ratings, calls turned away and
	// the waits in the queue.
	Metrics *Metrics
	// CallBacks, when set, turns a caller's request for a call-back into
	// work: an item in the return visits' worklist.
	CallBacks CallBackRecorder
}

// CallBackRecorder keeps a caller's request for a call-back as work.
type CallBackRecorder interface {
	QueueCallback(ctx context.Context, req CallBackRequest) error
}

// CallBackFunc is a func as a CallBackRecorder.
type CallBackFunc func(ctx context.Context, req CallBackRequest) error

// QueueCallback implements CallBackRecorder.
func (f CallBackFunc) QueueCallback(ctx context.Context, req CallBackRequest) error {
	return f(ctx, req)
}

// CallBackRequest is a caller who left the queue to be called back.
type CallBackRequest struct {
	CallID   string
	Caller   string
	AppealID string
	Category appeal.Category
}

func (sv *Service) countOffer(outcome string) {
	if sv.Metrics != nil {
		sv.Metrics.Offers.WithLabelValues(outcome).Inc()
	}
}

// observeWait records how long a call waited in the queue once its wait
// ended, by how it ended.
func (sv *Service) observeWait(outcome acd.Outcome, wait time.Duration) {
	if sv.Metrics != nil {
		sv.Metrics.QueueWait.WithLabelValues(string(outcome)).Observe(wait.Seconds())
	}
}

// ServiceResult is what happened to the call after intake.
type ServiceResult struct {
	AgentID    string
	QueuedAt   *time.Time
	OfferedAt  *time.Time // the offer that was answered
	AnsweredAt *time.Time // by the agent
	Callback   bool       // the caller left the queue asking for a call-back
	Rating     *RatingResult
	// ServedErr is why the call could not be counted served; its rating,
	// when one was recorded, counts it.
	ServedErr error
	// TurnedAwayErr is why a call turned away with no agent registered
	// could not be counted in the day's figures.
	TurnedAwayErr error
}

func (o *ServiceOptions) defaults() {
	if o.RingTimeout <= 0 {
		o.RingTimeout = 15 * time.Second
	}
	if o.MaxMissed <= 0 {
		o.MaxMissed = 2
	}
	if o.MaxWait <= 0 {
		o.MaxWait = 3 * time.Minute
	}
	if o.PositionEvery <= 0 {
		o.PositionEvery = 30 * time.Second
	}
}

// keyLeaveQueue leaves the queue for a call-back once it is offered.
const keyLeaveQueue = '1'

// Run runs the service flow for the appeal a's caller. It returns the
// call's end cause when the caller hangs up; hanging up is the caller's.
func (sv *Service) Run(ctx context.Context, s *Session, a appeal.Appeal) (res ServiceResult, err error) {
	opts := sv.Options
	opts.defaults()
	call := s.Call
	if ok, err := sv.Queue.Staffed(ctx, a.Category); err == nil && !ok {
		// Nobody to talk to: the appeal is recorded and its number read
		// out; the call ends as intake alone would end it. The caller
		// asked for an agent and got none: the call counts against the
		// answer rate.
		res.TurnedAwayErr = sv.Queue.TurnedAway(ctx, call.ID(), a.Category)
		if sv.Metrics != nil {
			sv.Metrics.TurnedAway.WithLabelValues(string(a.Category)).Inc()
		}
		s.Stage(StageGoodbye)
		return res, s.Play(ctx, prompts.Goodbye)
	}
	s.Stage(StageQueue)
	if err := sv.Queue.Enqueue(ctx, call.ID(), a.Category); err != nil {
		return res, fmt.Errorf("enqueue: %w", err)
	}
	queued := s.now()
	res.QueuedAt = &queued
	// Whatever ends the flow before an agent answers takes the call out
	// of the queue (an agent ringing for it is freed).
	connected := false
	defer func() {
		if connected || res.Callback {
			return
		}
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = sv.Queue.Leave(lctx, call.ID(), acd.Abandoned)
		sv.observeWait(acd.OutcomeAbandoned, s.now().Sub(queued))
	}()

	w := &waiter{sv: sv, s: s, opts: opts, appeal: a}
	for {
		o, err := w.wait(ctx)
		if err != nil {
			return res, err
		}
		if o.AgentID == "" { // left for a call-back
			res.Callback = true
			sv.observeWait(acd.OutcomeCallback, w.leftAt.Sub(queued))
			return res, nil
		}
		s.Stage(StageRinging)
		offered := s.now()
		leg, err := sv.Dialer.Dial(ctx, Agent{AgentID: o.AgentID, SIPUser: o.SIPUser}, DialOptions{Parent: call, RingTimeout: opts.RingTimeout})
		if err != nil {
			if cerr := s.callErr(); cerr != nil {
				return res, cerr
			}
			if ctx.Err() != nil {
				return res, context.Cause(ctx)
			}
			why := acd.Unreachable
			switch {
			case errors.Is(err, ErrRangOut):
				why = acd.NoAnswer
			case errors.Is(err, ErrRejected), errors.Is(err, ErrBusy):
				why = acd.Rejected
			}
			sv.countOffer(string(why))
			if _, derr := sv.Queue.Declined(ctx, o, why, opts.MaxMissed); derr != nil {
				return res, fmt.Errorf("offer to %s: %w", o.AgentID, derr)
			}
			s.Stage(StageQueue)
			continue
		}
		w.stopHold()
		if err := sv.Queue.Answered(ctx, o); err != nil {
			// The offer was taken back meanwhile (the caller hung up).
			_ = hangupLeg(leg)
			if cerr := s.callErr(); cerr != nil {
				return res, cerr
			}
			return res, fmt.Errorf("answered by %s: %w", o.AgentID, err)
		}
		connected = true
		sv.countOffer("answered")
		answered := s.now()
		sv.observeWait(acd.OutcomeAnswered, answered.Sub(queued))
		res.AgentID, res.OfferedAt, res.AnsweredAt = o.AgentID, &offered, &answered
		served := sv.countServed(ctx, evaluation.ServedCall{CallID: call.ID(), AgentID: o.AgentID, Category: a.Category, At: answered}, opts.Rating.RecordRetry)
		defer func() { res.ServedErr = <-served }()
		s.Stage(StageTalking)
		end, berr := sv.Bridger.Bridge(ctx, call, leg)
		hungUp := time.Now()
		ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = sv.Queue.Ended(ectx, o, opts.WrapUp)
		cancel()
		if berr != nil {
			return res, fmt.Errorf("bridge: %w", berr)
		}
		if end != AgentHungUp {
			// The caller hung up first: no rating.
			return res, s.callErr()
		}
		r := &Rating{Ratings: sv.Ratings, Options: opts.Rating}
		rr, err := r.Run(ctx, s, RatingSubject{CallID: call.ID(), AppealID: a.ID, AgentID: o.AgentID, Category: a.Category, ServedAt: answered})
		res.Rating = &rr
		if sv.Metrics != nil && rr.Verdict != "" {
			sv.Metrics.Ratings.WithLabelValues(string(rr.Verdict)).Inc()
		}
		if at, ok := s.firstPlayed(prompts.Rating, hungUp); ok && sv.Metrics != nil {
			sv.Metrics.RatingDelay.Observe(at.Sub(hungUp).Seconds())
		}
		return res, err
	}
}

// countServed counts the call served beside the conversation, retrying
// for up to retry while the store is away, so that a slow store never
// holds the bridge. The channel gives the outcome.
func (sv *Service) countServed(ctx context.Context, c evaluation.ServedCall, retry time.Duration) <-chan error {
	done := make(chan error, 1)
	if sv.Served == nil {
		done <- nil
		return done
	}
	ctx = context.WithoutCancel(ctx)
	go func() {
		_, err := backoff.Retry(ctx, func() (struct{}, error) {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			err := sv.Served.Served(cctx, c)
			if errors.Is(err, evaluation.ErrInvalid) {
				return struct{}{}, backoff.Permanent(err)
			}
			return struct{}{}, err
		}, backoff.WithMaxElapsedTime(retry))
		done <- err
	}()
	return done
}

func hangupLeg(c Call) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.Hangup(ctx)
}

// waiter plays the queue to a waiting caller: a hold message, then music,
// the position every PositionEvery, and after MaxWait (to a caller who
// consented to be called back) the offer to leave for a call-back,
// repeated with each position. Announcements interrupt only the music,
// never another message.
type waiter struct {
	sv     *Service
	s      *Session
	opts   ServiceOptions
	appeal appeal.Appeal

	started   time.Time
	announced bool      // the hold message was played
	hold      Playback  // what plays now
	music     bool      // hold is music, which announcements may cut
	canLeave  bool      // the call-back offer stands
	offerDue  bool      // the call-back offer waits for the current message
	leftAt    time.Time // when the caller left the queue for a call-back
}

func (w *waiter) stopHold() {
	if w.hold != nil {
		w.hold.Stop()
		<-w.hold.Done()
		w.s.journalPlayed(w.hold)
		w.hold = nil
	}
}

// wait returns the next offer, or an empty offer when the caller left for
// a call-back. Music keeps playing after it returns an offer, while the
// agent's phone rings.
func (w *waiter) wait(ctx context.Context) (acd.Offer, error) {
	s := w.s
	if w.started.IsZero() {
		w.started = s.now()
	}
	nctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type next struct {
		o   acd.Offer
		err error
	}
	offers := make(chan next, 1)
	go func() {
		o, err := w.sv.Queue.Next(nctx, s.Call.ID())
		offers <- next{o, err}
	}()
	position := time.NewTicker(w.opts.PositionEvery)
	defer position.Stop()
	leaveAt := time.NewTimer(max(0, w.opts.MaxWait-s.now().Sub(w.started)))
	defer leaveAt.Stop()
	if !w.appeal.Consent.Given || w.canLeave {
		leaveAt.Stop()
	}
	for {
		if w.hold == nil {
			var err error
			switch {
			case !w.announced:
				w.announced = true
				err = w.play(ctx, false, prompts.QueueWait)
			case w.offerDue:
				w.offerDue = false
				err = w.play(ctx, false, prompts.QueueLeaveOffer)
			default:
				err = w.play(ctx, true, prompts.HoldMusic)
			}
			if err != nil {
				return acd.Offer{}, err
			}
		}
		select {
		case n := <-offers:
			if n.err != nil {
				if cerr := s.callErr(); cerr != nil {
					return acd.Offer{}, cerr
				}
				return acd.Offer{}, fmt.Errorf("wait for an agent: %w", n.err)
			}
			return n.o, nil
		case <-w.hold.Done():
			w.s.journalPlayed(w.hold)
			w.hold = nil
		case <-position.C:
			if w.music {
				if err := w.announcePosition(ctx); err != nil {
					return acd.Offer{}, err
				}
			}
		case <-leaveAt.C:
			w.canLeave, w.offerDue = true, true
			if w.music {
				w.stopHold()
			}
		case d := <-s.Call.Digits():
			s.takeDigit(d)
			if w.canLeave && d.Key == keyLeaveQueue {
				cancel()
				<-offers
				if err := w.leave(ctx); err != nil {
					return acd.Offer{}, err
				}
				return acd.Offer{}, nil
			}
		case <-s.Call.Done():
			w.stopHold()
			return acd.Offer{}, s.Call.Err()
		case <-ctx.Done():
			w.stopHold()
			return acd.Offer{}, context.Cause(ctx)
		}
	}
}

func (w *waiter) play(ctx context.Context, music bool, ids ...prompts.ID) error {
	pb, err := w.s.Call.Play(ctx, w.s.Lang, ids...)
	if err != nil {
		return fmt.Errorf("play %v: %w", ids, err)
	}
	w.hold, w.music = pb, music
	return nil
}

func (w *waiter) announcePosition(ctx context.Context) error {
	n, err := w.sv.Queue.Position(ctx, w.s.Call.ID())
	if err != nil || n < 1 {
		return nil // offered meanwhile, or Redis away: say nothing
	}
	w.stopHold()
	ids := []prompts.ID{prompts.QueuePosition}
	for _, r := range strconv.Itoa(n) {
		ids = append(ids, prompts.Digit(r))
	}
	ids = append(ids, prompts.QueuePositionEnd)
	if w.canLeave {
		ids = append(ids, prompts.QueueLeaveOffer)
		w.offerDue = false
	}
	return w.play(ctx, false, ids...)
}

// leave takes the caller out of the queue with a call-back requested.
func (w *waiter) leave(ctx context.Context) error {
	w.stopHold()
	w.s.Stage(StageCallback)
	if err := w.sv.Queue.Leave(ctx, w.s.Call.ID(), acd.Callback); err != nil {
		return fmt.Errorf("leave for a call-back: %w", err)
	}
	w.leftAt = w.s.now()
	if w.sv.CallBacks != nil {
		req := CallBackRequest{CallID: w.s.Call.ID(), Caller: w.s.Call.Caller(), AppealID: w.appeal.ID, Category: w.appeal.Category}
		if err := w.sv.CallBacks.QueueCallback(ctx, req); err != nil {
			return fmt.Errorf("keep the call-back: %w", err)
		}
	}
	if err := w.s.Play(ctx, prompts.CallbackNoted); err != nil {
		return err
	}
	w.s.Stage(StageGoodbye)
	return w.s.Play(ctx, prompts.Goodbye)
}
