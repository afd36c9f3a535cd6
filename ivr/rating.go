package ivr

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/evaluation"
	"github.com/hotline12345/hotline/prompts"
)

// RatingRecorder keeps the one rating of a call; *evaluation.Store is one.
type RatingRecorder interface {
	Record(ctx context.Context, r evaluation.Rating) (evaluation.Rating, error)
}

// RatingOptions tune the rating question.
type RatingOptions struct {
	PraiseKey    rune          // default '1'
	BadReviewKey rune          // default '2'
	Tries        int           // askings at most (the question and 2 repeats); default 3
	Timeout      time.Duration // wait for a key after the question; default 5 s
	// RecordRetry bounds how long recording is retried while the store is
	// unreachable; default 10 s.
	RecordRetry time.Duration
}

func (o *RatingOptions) defaults() {
	if o.PraiseKey == 0 {
		o.PraiseKey = '1'
	}
	if o.BadReviewKey == 0 {
		o.BadReviewKey = '2'
	}
	if o.Tries <= 0 {
		o.Tries = 3
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.RecordRetry <= 0 {
		o.RecordRetry = 10 * time.Second
	}
}

// RatingSubject is what a rating is about.
type RatingSubject struct {
	CallID, AppealID, AgentID string
	Category                  appeal.Category
	// ServedAt is when the agent answered: the rating counts on its day.
	ServedAt time.Time
}

// RatingResult is the rating as recorded.
type RatingResult = evaluation.Rating

// Rating asks a caller whose agent hung up for one rating: praise or bad
// review, by key.
type Rating struct {
	Ratings RatingRecorder
	Options RatingOptions
}

// Run asks the question, records the answer (or that none came), thanks
// the caller and says goodbye. Keys pressed before the question could be
// heard (during the conversation, or as it ended) do not count. A caller who hangs up before answering
// is recorded as not rating, with that reason.
func (r *Rating) Run(ctx context.Context, s *Session, sub RatingSubject) (RatingResult, error) {
	opts := r.Options
	opts.defaults()
	s.Stage(StageRating)
	s.discardKeys()
	rt := evaluation.Rating{
		CallID: sub.CallID, AppealID: sub.AppealID, AgentID: sub.AgentID, Category: sub.Category, ServedAt: sub.ServedAt,
		Verdict: evaluation.NoRating, PromptID: string(prompts.Rating), PromptVersion: s.Version(prompts.Rating),
	}
	flowErr := r.ask(ctx, s, opts, &rt)
	rt.At = s.now()
	stored, err := r.record(ctx, opts, rt)
	if err != nil {
		return rt, errors.Join(flowErr, fmt.Errorf("record rating: %w", err))
	}
	if flowErr != nil {
		return stored, flowErr
	}
	s.Stage(StageGoodbye)
	if stored.Verdict == evaluation.NoRating {
		return stored, s.Play(ctx, prompts.RatingNone)
	}
	return stored, s.Play(ctx, prompts.RatingThanks)
}

// ask fills rt's verdict, key or reason; it returns the call's end cause
// when the caller hangs up.
func (r *Rating) ask(ctx context.Context, s *Session, opts RatingOptions, rt *evaluation.Rating) error {
	reason := evaluation.ReasonNoInput
	for try := 1; try <= opts.Tries; try++ {
		d, err := s.askHeard(ctx, prompts.Rating, opts.Timeout)
		switch {
		case errors.Is(err, errTimeout):
			reason = evaluation.ReasonNoInput
			if try < opts.Tries {
				if err := s.Play(ctx, prompts.NoInput); err != nil {
					rt.Reason = evaluation.ReasonCallerHangup
					return err
				}
			}
			continue
		case err != nil:
			rt.Reason = evaluation.ReasonCallerHangup
			return err
		}
		switch d.Key {
		case opts.PraiseKey:
			rt.Verdict, rt.Key, rt.Reason = evaluation.Praise, string(d.Key), ""
			return nil
		case opts.BadReviewKey:
			rt.Verdict, rt.Key, rt.Reason = evaluation.BadReview, string(d.Key), ""
			return nil
		}
		reason = evaluation.ReasonInvalidKey
		if try < opts.Tries {
			if err := s.playInterruptible(ctx, prompts.InvalidKey); err != nil {
				rt.Reason = evaluation.ReasonCallerHangup
				return err
			}
		}
	}
	rt.Reason = reason
	return nil
}

// record stores the rating, retrying while the store is away; the store
// keeps the first rating of a call, so a retry cannot make a second.
func (r *Rating) record(ctx context.Context, opts RatingOptions, rt evaluation.Rating) (evaluation.Rating, error) {
	ctx = context.WithoutCancel(ctx)
	return backoff.Retry(ctx, func() (evaluation.Rating, error) {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		stored, err := r.Ratings.Record(cctx, rt)
		if errors.Is(err, evaluation.ErrAlreadyRated) {
			return stored, nil
		}
		if errors.Is(err, evaluation.ErrInvalid) {
			return stored, backoff.Permanent(err)
		}
		return stored, err
	}, backoff.WithMaxElapsedTime(opts.RecordRetry))
}

// discardKeys drops keys pressed before now: typed ahead or pressed during
// the conversation, they answer no question of this flow.
func (s *Session) discardKeys() {
	s.pending = nil
	for {
		select {
		case d := <-s.Call.Digits():
			s.takeDigit(d)
		default:
			return
		}
	}
}
