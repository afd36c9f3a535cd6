package ivr

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/prompts"
)

// Stages of the intake flow, as recorded on the call.
const (
	StageAnswer       = "answer"
	StageGreeting     = "greeting"
	StageCategory     = "category"
	StageConsent      = "consent"
	StageAppeal       = "appeal"
	StageAppealNumber = "appeal_number"
	StageGoodbye      = "goodbye"
	// StageOutage: Redis did not answer; the caller was told they will be
	// called back.
	StageOutage = "outage"
)

// Keys of the intake menus.
const (
	keyEnglish        = '9'
	keyConsentAgree   = '1'
	keyConsentDecline = '2'
)

var categoryKeys = map[rune]appeal.Category{
	'1': appeal.Emergency,
	'2': appeal.Livelihood,
	'3': appeal.General,
}

// AppealRecorder records an appeal; recording the same call twice must return
// the first appeal (the intake retries after a failure). An appeal
// recorded without a number yet (NumberUntold: kept while Redis did not
// answer, numbered later) makes intake apologise and promise a call-back
// with the number instead of reading it.
type AppealRecorder interface {
	Create(ctx context.Context, a appeal.New) (appeal.Appeal, error)
}

// IntakeOptions tune the intake flow.
type IntakeOptions struct {
	FirstDigitTimeout time.Duration // wait for a key after a menu prompt ends
	Tries             int           // askings of a menu before its fallback
	// AppealRetry bounds how long recording the appeal is retried while
	// the store is unreachable (a Redis restart); default 10 s.
	AppealRetry time.Duration
}

// Intake is the intake flow: greeting (9 for English), category menu, consent
// to a return visit, the appeal recorded and its number read out. What
// follows (Goodbye, or an agent) is the next step of the flow.
type Intake struct {
	Appeals AppealRecorder
	Options IntakeOptions
}

// IntakeResult is what intake learned.
type IntakeResult struct {
	Category appeal.Category
	Consent  appeal.Consent
	Appeal   appeal.Appeal
}

// Run runs intake on an answered call. It returns the call's end cause when
// the caller hangs up, and leaves hanging up to the caller of Run.
func (in *Intake) Run(ctx context.Context, s *Session) (IntakeResult, error) {
	var res IntakeResult

	s.Stage(StageGreeting)
	d, err := s.ask(ctx, prompts.Greeting, 0)
	switch {
	case errors.Is(err, errTimeout):
	case err != nil:
		return res, err
	case d.Key == keyEnglish:
		s.Lang = prompts.English
	default:
		s.pending = append(s.pending, d)
	}

	s.Stage(StageCategory)
	res.Category = appeal.General
	ans, err := s.Ask(ctx, in.menu(prompts.CategoryMenu, "123"))
	switch {
	case errors.Is(err, ErrNoAnswer):
		if err := s.Play(ctx, prompts.FallbackNote); err != nil {
			return res, err
		}
	case err != nil:
		return res, err
	default:
		res.Category = categoryKeys[ans.Key]
	}

	s.Stage(StageConsent)
	res.Consent = appeal.Consent{
		PromptID:      string(prompts.ConsentMenu),
		PromptVersion: s.Version(prompts.ConsentMenu),
		Lang:          string(s.Lang),
	}
	ans, err = s.Ask(ctx, in.menu(prompts.ConsentMenu, string([]rune{keyConsentAgree, keyConsentDecline})))
	switch {
	case errors.Is(err, ErrNoAnswer):
		// Consent needs an explicit yes: silence is "not given".
		if err := s.Play(ctx, prompts.FallbackNote); err != nil {
			return res, err
		}
	case err != nil:
		return res, err
	default:
		at := ans.At
		res.Consent.Given = ans.Key == keyConsentAgree
		res.Consent.Key = string(ans.Key)
		res.Consent.At = &at
	}

	s.Stage(StageAppeal)
	a, err := in.record(ctx, appeal.New{
		CallID:   s.Call.ID(),
		Caller:   s.Call.Caller(),
		Category: res.Category,
		Consent:  res.Consent,
		Lang:     string(s.Lang),
		At:       s.now(),
		// The probe's appeal is marked so that nobody works it.
		Synthetic: s.Record.Synthetic,
	})
	if err != nil {
		return res, fmt.Errorf("record appeal: %w", err)
	}
	res.Appeal = a

	s.Stage(StageAppealNumber)
	readout := []prompts.ID{prompts.AppealNumber}
	for _, r := range a.ID {
		readout = append(readout, prompts.Digit(r))
	}
	if a.ID == "" {
		readout = []prompts.ID{prompts.AppealNumberLater}
	}
	return res, s.Play(ctx, readout...)
}

// record records the appeal, retrying with backoff: recording is idempotent
// per call, so a retry after a lost reply cannot make a second appeal.
func (in *Intake) record(ctx context.Context, n appeal.New) (appeal.Appeal, error) {
	limit := in.Options.AppealRetry
	if limit <= 0 {
		limit = 10 * time.Second
	}
	return backoff.Retry(ctx, func() (appeal.Appeal, error) {
		a, err := in.Appeals.Create(ctx, n)
		if errors.Is(err, appeal.ErrNoCallID) || errors.Is(err, appeal.ErrUnknownCategory) {
			return a, backoff.Permanent(err)
		}
		return a, err
	}, backoff.WithMaxElapsedTime(limit), backoff.WithBackOff(&backoff.ExponentialBackOff{
		InitialInterval: 50 * time.Millisecond, RandomizationFactor: 0.5, Multiplier: 2, MaxInterval: time.Second,
	}))
}

func (in *Intake) menu(id prompts.ID, keys string) Menu {
	return Menu{Prompt: id, Keys: keys, Timeout: in.Options.FirstDigitTimeout, Tries: in.Options.Tries}
}
