package ivr

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/hotline12345/hotline/prompts"
)

// Flow is what a call does, run by Runner.Serve on any call, in or out:
// it drives the call through its Session and writes what happened into
// the Session's Record. A flow never imports a backend. Flows compose:
// Sequence runs steps in turn, so that a citizen's call is
//
//	Sequence(AnswerCall, CallBackIfDown(redis), intake.Flow, Goodbye)
//
// when it only records an appeal, and
//
//	Sequence(AnswerCall, CallBackIfDown(redis), intake.Flow, CallBackUnlessUp(redis), CallBackIfLost(redis, service.Flow))
//
// when an agent takes the call on. Each step is a value; nothing but the
// composition ties one to the next.
type Flow func(ctx context.Context, s *Session) error

// ErrFlowDone ends a flow early, and well: a step that has finished the
// call (told the caller they will be called back) returns it, and the
// steps after it do not run. Runner.Serve takes it as success.
var ErrFlowDone = errors.New("ivr: the flow is done")

// Sequence runs steps in order until one returns an error (ErrFlowDone
// included, which the Sequence returns so that an enclosing Sequence
// stops too).
func Sequence(steps ...Flow) Flow {
	return func(ctx context.Context, s *Session) error {
		for _, step := range steps {
			if err := step(ctx, s); err != nil {
				return err
			}
		}
		return nil
	}
}

// AnswerCall answers an incoming call and saves its record as answered.
func AnswerCall(ctx context.Context, s *Session) error {
	s.Stage(StageAnswer)
	if err := s.Call.Answer(ctx); err != nil {
		return fmt.Errorf("answer: %w", err)
	}
	at := s.now()
	s.Record.AnsweredAt = &at
	s.Checkpoint(ctx)
	return nil
}

// Goodbye says goodbye: the end of a call that an agent does not take on.
func Goodbye(ctx context.Context, s *Session) error {
	s.Stage(StageGoodbye)
	return s.Play(ctx, prompts.Goodbye)
}

// Flow runs intake on an answered call: the appeal it records is the
// Session's Appeal for the steps after it, and the record's.
func (in *Intake) Flow(ctx context.Context, s *Session) error {
	res, err := in.Run(ctx, s)
	s.Appeal = res.Appeal
	s.Record.AppealID = res.Appeal.ID
	return err
}

// Flow takes the caller of the Session's Appeal on to an agent and the
// rating (Service.Run), writing the queue, the agent and the rating into
// the record.
func (sv *Service) Flow(ctx context.Context, s *Session) error {
	sr, err := sv.Run(ctx, s, s.Appeal)
	rec := s.Record
	rec.QueuedAt, rec.OfferedAt, rec.AgentAnsweredAt = sr.QueuedAt, sr.OfferedAt, sr.AnsweredAt
	rec.AgentID = sr.AgentID
	rec.Callback = rec.Callback || sr.Callback
	if sr.Rating != nil {
		rec.Rating = string(sr.Rating.Verdict)
	}
	if sr.ServedErr != nil {
		s.Log.Warn().Err(sr.ServedErr).Msg("count call served")
	}
	if sr.TurnedAwayErr != nil {
		s.Log.Warn().Err(sr.TurnedAwayErr).Msg("count call turned away")
	}
	return err
}

// CallBackIfDown is a step that, while o says Redis is known not to
// answer, tells the caller they will be called back and ends the flow: a
// caller is never kept waiting on a store that is away. A nil o never
// stops the flow.
func CallBackIfDown(o Outage) Flow {
	return func(ctx context.Context, s *Session) error {
		if o == nil || !o.Outage() {
			return nil
		}
		s.Log.Warn().Msg("redis does not answer: the caller is told they will be called back")
		return callBack(ctx, s)
	}
}

// CallBackUnlessUp is a step that waits briefly for Redis (o.RideOut) and,
// when it does not answer, tells the caller they will be called back and
// ends the flow: the queue and the agents' states live in Redis.
func CallBackUnlessUp(o Outage) Flow {
	return func(ctx context.Context, s *Session) error {
		if o == nil || o.RideOut(ctx) {
			return nil
		}
		s.Log.Warn().Str("appeal_id", s.Appeal.ID).Msg("redis does not answer: the caller is told they will be called back")
		return callBack(ctx, s)
	}
}

// CallBackIfLost runs f, the steps that wait for an agent; when they fail
// before an agent answered, with the caller still there and Redis gone,
// the caller is told they will be called back instead of hung up on.
func CallBackIfLost(o Outage, f Flow) Flow {
	return func(ctx context.Context, s *Session) error {
		err := f(ctx, s)
		if err == nil || errors.Is(err, ErrFlowDone) || o == nil || s.Record.AgentAnsweredAt != nil || s.callErr() != nil || o.RideOut(ctx) {
			return err
		}
		s.Log.Warn().Err(err).Str("appeal_id", s.Appeal.ID).Msg("redis does not answer while the caller waits: the caller is told they will be called back")
		return callBack(ctx, s)
	}
}

// callBack tells the caller that nobody can take the call now and that
// they will be called back, marks the record for the call-back, and ends
// the flow.
func callBack(ctx context.Context, s *Session) error {
	s.Record.Callback = true
	s.Stage(StageOutage)
	if err := s.Play(ctx, prompts.OutageCallback); err != nil {
		return err
	}
	return ErrFlowDone
}

// Checkpoint saves the call's record as it stands, best effort: the final
// record carries everything.
func (s *Session) Checkpoint(ctx context.Context) {
	if s.checkpoint != nil {
		s.checkpoint(ctx)
	}
}

// TakeAppeal is a citizen's call that records an appeal and ends: answered,
// told they will be called back while Redis is away, intake, goodbye.
func TakeAppeal(in *Intake, redis Outage) Flow {
	return Sequence(AnswerCall, CallBackIfDown(redis), in.Flow, Goodbye)
}

// TakeToAgent is a citizen's call that an agent takes on after intake:
// answered, told they will be called back while Redis is away, intake,
// then (Redis answering) the queue, an agent and the rating; a caller
// whose wait Redis cuts short is told they will be called back.
func TakeToAgent(in *Intake, sv *Service, redis Outage) Flow {
	return Sequence(AnswerCall, CallBackIfDown(redis), in.Flow, CallBackUnlessUp(redis), CallBackIfLost(redis, sv.Flow))
}

// Synthetic is implemented by calls that can say they are the synthetic
// probe's (hotline probe): a SIP call whose INVITE carried a validly
// signed X-Hotline-Probe header.
type Synthetic interface {
	Synthetic() bool
}

// Probes recognise the synthetic probe's calls.
type Probes struct {
	// Callers are the caller numbers whose calls are probes.
	Callers []string
}

// Is reports whether call is a probe's: it says so itself (Synthetic), or
// its caller number is one of Callers.
func (p Probes) Is(call Call) bool {
	if sc, ok := call.(Synthetic); ok && sc.Synthetic() {
		return true
	}
	return slices.Contains(p.Callers, call.Caller())
}

// MarkSynthetic is a step that marks the call as the synthetic probe's:
// its record says Synthetic, and so does the appeal intake records.
func MarkSynthetic(ctx context.Context, s *Session) error {
	s.Record.Synthetic = true
	return nil
}

// TakeProbe is the synthetic probe's call: answered, intake as a
// citizen's (the appeal marked synthetic, its number read out), goodbye.
// It never joins the queue nor reaches an agent, is never asked for a
// rating, and so counts in none of the day's figures.
func TakeProbe(in *Intake, redis Outage) Flow {
	return Sequence(MarkSynthetic, TakeAppeal(in, redis))
}
