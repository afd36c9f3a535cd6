package ivr

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/callback"
	"github.com/hotline12345/hotline/prompts"
)

// Stages of the return visit, as recorded on the call.
const (
	// StageVisitListen: the call was answered; the flow listens for who
	// (or what) answered before it speaks.
	StageVisitListen       = "visit_listen"
	StageVisitIntro        = "visit_intro"
	StageVisitConsent      = "visit_consent"
	StageVisitResponse     = "visit_response"
	StageVisitSolution     = "visit_solution"
	StageVisitSatisfaction = "visit_satisfaction"
)

// Notes of a visit's result that say why it was not completed.
const (
	NoteFax              = "fax"
	NoteAnsweringMachine = "answering machine"
	// NoteDeclined: 2 at the consent question.
	NoteDeclined = "the citizen declined the return visit"
)

// VisitOptions tune the return visit.
type VisitOptions struct {
	// Timeout is the wait for a key after each question; default 5 s.
	Timeout time.Duration
	// Tries is how many times a question is asked at most; default 3.
	Tries int
	// Zone is the hotline's time zone, in which the appeal's date is
	// said; nil says it in the zone of VisitSubject.Date.
	Zone *time.Location
	// Listen is how long the flow listens before its introduction when
	// the call hears the far end (Listener) and nobody speaks; default
	// 2.5 s, Asterisk's app_amd initial silence. A short voice ("hello")
	// ends it at once.
	Listen time.Duration
	// MachineGreeting is the voice, unbroken, after which what answered
	// is taken for an answering machine, when heard before the
	// introduction ended; default 2.5 s, about app_amd's greeting (1.5 s)
	// plus its between-words silences. A person answers with a short
	// "hello" and waits.
	MachineGreeting time.Duration
}

func (o *VisitOptions) defaults() {
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Tries <= 0 {
		o.Tries = 3
	}
	if o.Listen <= 0 {
		o.Listen = 2500 * time.Millisecond
	}
	if o.MachineGreeting <= 0 {
		o.MachineGreeting = 2500 * time.Millisecond
	}
}

// VisitSubject is what a return visit is about.
type VisitSubject struct {
	VisitID, AppealID string
	Category          appeal.Category
	// Date is when the appeal was made; its month and day are said, in
	// VisitOptions.Zone.
	Date time.Time
}

// VisitResult is how the visit went, for the caller to record as the
// visit's attempt.
type VisitResult struct {
	// Outcome is Completed, Refused or NoAnswer; empty when the flow
	// failed for a reason of its own (a prompt that would not play, the
	// server shutting down), when there is no attempt to record.
	Outcome callback.Outcome
	// Answers are the three answers of a completed visit.
	Answers *callback.Answers
	// Note says why the visit was refused or not answered: NoteFax,
	// NoteAnsweringMachine, NoteDeclined, "hung up at <stage>", "no valid
	// key at <stage>".
	Note string
}

// Visit is the automated return visit (回访) on a call hotline placed to
// a citizen: it listens for who answered, introduces itself neutrally
// (the hotline, the appeal's date and category, never what the appeal
// said), asks consent again (1 to take the survey, 2 to decline, which is
// final), asks the three questions by key, thanks and says goodbye. Keys
// follow intake's rules: a wait after each question, up to Tries askings,
// the invalid-key and no-input messages. It never records anything: the
// caller records the attempt from the result.
type Visit struct {
	Options VisitOptions
}

// Errors the far end's sounds end a visit with, as the flow's context
// causes.
var (
	errHeardFax     = errors.New("a fax tone was heard")
	errHeardMachine = errors.New("an answering machine's greeting was heard")
)

var categoryNames = map[appeal.Category]prompts.ID{
	appeal.Emergency:  prompts.CategoryEmergency,
	appeal.Livelihood: prompts.CategoryLivelihood,
	appeal.General:    prompts.CategoryGeneral,
	appeal.Complex:    prompts.CategoryComplex,
}

// The three questions, their keys and answers.
var (
	responseKeys     = map[rune]callback.Response{'1': callback.Contacted, '2': callback.NotContacted}
	solutionKeys     = map[rune]callback.Solution{'1': callback.Solved, '2': callback.PartlySolved, '3': callback.NotSolved}
	satisfactionKeys = map[rune]callback.Satisfaction{'1': callback.Satisfied, '2': callback.BasicallySatisfied, '3': callback.Dissatisfied}
)

// Run runs the visit on an answered call. A visit that the citizen ends
// by hanging up returns a NoAnswer result saying at which stage, with the
// call's end cause; a fax or an answering machine returns a NoAnswer
// result and no error, leaving hanging up to the caller of Run, as does
// every other ending.
func (v *Visit) Run(ctx context.Context, s *Session, sub VisitSubject) (VisitResult, error) {
	opts := v.Options
	opts.defaults()
	h := newHearing(ctx, s.Call, opts.MachineGreeting)
	defer h.close()
	ctx = h.ctx

	if h.listening {
		s.Stage(StageVisitListen)
		if err := h.listen(s.Call, opts.Listen); err != nil {
			return v.ended(ctx, s, err)
		}
	}

	s.Stage(StageVisitIntro)
	if err := s.Play(ctx, introduction(sub, opts.Zone)...); err != nil {
		return v.ended(ctx, s, err)
	}
	// From here on a long voice is a person speaking over the questions,
	// not a greeting.
	h.greeting.Store(false)
	s.discardKeys()

	s.Stage(StageVisitConsent)
	ans, err := s.Ask(ctx, visitMenu(prompts.VisitConsent, "12", opts))
	if err != nil {
		return v.ended(ctx, s, err)
	}
	if ans.Key == '2' {
		s.Stage(StageGoodbye)
		res := VisitResult{Outcome: callback.Refused, Note: NoteDeclined}
		return res, v.say(ctx, s, prompts.VisitDeclined)
	}

	var a callback.Answers
	if a.Response, err = askVisit(ctx, s, StageVisitResponse, prompts.VisitResponse, responseKeys, opts); err != nil {
		return v.ended(ctx, s, err)
	}
	if a.Solution, err = askVisit(ctx, s, StageVisitSolution, prompts.VisitSolution, solutionKeys, opts); err != nil {
		return v.ended(ctx, s, err)
	}
	if a.Satisfaction, err = askVisit(ctx, s, StageVisitSatisfaction, prompts.VisitSatisfaction, satisfactionKeys, opts); err != nil {
		return v.ended(ctx, s, err)
	}
	// The answers are complete: what is heard from now on changes nothing.
	h.stop()
	s.Stage(StageGoodbye)
	res := VisitResult{Outcome: callback.Completed, Answers: &a}
	return res, v.say(ctx, s, prompts.VisitThanks)
}

// Flow is the visit as a step of a placed call's flow: the record names
// the appeal, and done (if not nil) is given the result to record as the
// visit's attempt.
func (v *Visit) Flow(sub VisitSubject, done func(VisitResult)) Flow {
	return func(ctx context.Context, s *Session) error {
		s.Record.AppealID = sub.AppealID
		res, err := v.Run(ctx, s, sub)
		if done != nil {
			done(res)
		}
		return err
	}
}

// introduction is the visit's first words: the hotline, the appeal's
// month and day, and its category.
func introduction(sub VisitSubject, zone *time.Location) []prompts.ID {
	date := sub.Date
	if zone != nil {
		date = date.In(zone)
	}
	ids := []prompts.ID{prompts.VisitIntro, prompts.Month(date.Month()), prompts.DayOfMonth(date.Day())}
	if name, ok := categoryNames[sub.Category]; ok {
		ids = append(ids, prompts.VisitCategory, name)
	}
	return ids
}

func visitMenu(id prompts.ID, keys string, opts VisitOptions) Menu {
	return Menu{Prompt: id, Keys: keys, Timeout: opts.Timeout, Tries: opts.Tries}
}

// askVisit asks one of the three questions and returns its answer.
func askVisit[A any](ctx context.Context, s *Session, stage string, id prompts.ID, answers map[rune]A, opts VisitOptions) (A, error) {
	s.Stage(stage)
	keys := make([]rune, 0, len(answers))
	for k := range answers {
		keys = append(keys, k)
	}
	ans, err := s.Ask(ctx, visitMenu(id, string(keys), opts))
	if err != nil {
		var zero A
		return zero, err
	}
	return answers[ans.Key], nil
}

// ended makes the result of a visit that stopped short at the current
// stage with err: a fax or an answering machine, the far end gone, or no
// valid key. Those that can still hear are told goodbye.
func (v *Visit) ended(ctx context.Context, s *Session, err error) (VisitResult, error) {
	stage := s.CurrentStage()
	switch {
	case errors.Is(err, errHeardFax):
		return VisitResult{Outcome: callback.NoAnswer, Note: NoteFax}, nil
	case errors.Is(err, errHeardMachine):
		return VisitResult{Outcome: callback.NoAnswer, Note: NoteAnsweringMachine}, nil
	case s.callErr() != nil:
		return VisitResult{Outcome: callback.NoAnswer, Note: "hung up at " + stage}, s.callErr()
	case errors.Is(err, ErrNoAnswer):
		res := VisitResult{Outcome: callback.NoAnswer, Note: "no valid key at " + stage}
		s.Stage(StageGoodbye)
		return res, v.say(ctx, s, prompts.VisitGoodbye)
	}
	return VisitResult{}, err
}

// say plays the last prompt of a visit; the call ending meanwhile is
// returned as its end cause, the visit's result standing.
func (v *Visit) say(ctx context.Context, s *Session, id prompts.ID) error {
	err := s.Play(ctx, id)
	if errors.Is(err, errHeardFax) || errors.Is(err, errHeardMachine) {
		return nil
	}
	return err
}

// hearing watches what the far end sounds like while the visit runs, and
// ends the visit's context when that is a fax or an answering machine.
// Its goroutine only reads the call's sounds and cancels; the Session is
// the flow's alone.
type hearing struct {
	ctx       context.Context
	cancel    context.CancelCauseFunc
	listening bool
	// greeting: a long voice now is an answering machine's greeting.
	greeting atomic.Bool
	// voice delivers the first short voice heard (a person's "hello").
	voice chan Sound
	quit  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
}

func newHearing(parent context.Context, call Call, machine time.Duration) *hearing {
	ctx, cancel := context.WithCancelCause(parent)
	h := &hearing{ctx: ctx, cancel: cancel, voice: make(chan Sound, 1), quit: make(chan struct{})}
	h.greeting.Store(true)
	l, ok := call.(Listener)
	if !ok {
		return h
	}
	h.listening = true
	sounds := l.Sounds()
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		for {
			select {
			case <-h.quit:
				return
			case <-ctx.Done():
				return
			case snd := <-sounds:
				switch {
				case snd.Kind == FaxTone:
					cancel(errHeardFax)
					return
				case snd.Kind == Voice && h.greeting.Load() && snd.Length >= machine:
					cancel(errHeardMachine)
					return
				case snd.Kind == Voice:
					select {
					case h.voice <- snd:
					default:
					}
				}
			}
		}
	}()
	return h
}

// listen waits up to d for the far end to say something short, a fax
// tone or a greeting; it returns the context's cause for the last two, or
// the call's end cause.
func (h *hearing) listen(call Call, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-h.voice:
		return nil
	case <-call.Done():
		return call.Err()
	case <-h.ctx.Done():
		return context.Cause(h.ctx)
	}
}

// stop stops listening, and waits for the watching goroutine to end. A
// cause the far end gave before stays on the context.
func (h *hearing) stop() {
	h.once.Do(func() { close(h.quit) })
	h.wg.Wait()
}

// close stops listening and releases the visit's context.
func (h *hearing) close() {
	h.stop()
	h.cancel(nil)
}
