package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/callback"
	"github.com/hotline12345/hotline/ivr"
)

// autoVisits makes the return visits of the categories whose mode is ivr:
// each of its callers takes the next such visit due (with a lease, as an
// agent would: a node killed mid-call leaves it to come back when the
// lease runs out), calls the citizen through a trunk, runs the visit flow
// and records the attempt from its result. A citizen who declines is a
// refusal, and the number goes on the do-not-call list.
type autoVisits struct {
	visits  *callback.Store
	appeals *appeal.Store
	dialer  ivr.Dialer
	runner  *ivr.Runner
	flow    *ivr.Visit
	// callers is how many calls at once; name is the node's, the lease
	// holder of each caller being name#i.
	callers int
	name    string
	ring    time.Duration
	// lease is the visits' lease, renewed every third of it during a
	// call.
	lease time.Duration
	// poll is the wait when no visit is due.
	poll time.Duration
	log  zerolog.Logger
}

// run takes visits until ctx ends, then waits for the calls in progress,
// which calls (the telephony's context) ends.
func (av *autoVisits) run(ctx, calls context.Context) {
	var wg sync.WaitGroup
	for i := range av.callers {
		who := fmt.Sprintf("ivr@%s#%d", av.name, i)
		wg.Go(func() {
			for ctx.Err() == nil {
				worked, err := av.once(ctx, calls, who)
				if err != nil {
					av.log.Warn().Err(err).Str("caller", who).Msg("automated return visit")
				}
				if !worked || err != nil {
					select {
					case <-ctx.Done():
					case <-time.After(av.poll):
					}
				}
			}
		})
	}
	wg.Wait()
}

// once makes the next visit due, if any; it reports whether there was
// one.
func (av *autoVisits) once(take, ctx context.Context, who string) (bool, error) {
	l, err := av.visits.NextOf(take, callback.ByIVR, who, 0)
	if errors.Is(err, callback.ErrNone) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	v := l.Visit
	log := av.log.With().Str("visit", v.ID).Str("caller", who).Logger()
	record := func(a callback.Attempt, number string) error {
		got, err := av.visits.Attempted(context.WithoutCancel(ctx), v.ID, who, a, number)
		if err != nil {
			return fmt.Errorf("visit %s: recording %s: %w", v.ID, a.Outcome, err)
		}
		log.Info().Str("outcome", string(a.Outcome)).Str("note", a.Note).Str("state", string(got.State)).Msg("automated return visit")
		return nil
	}
	ap, err := av.appeals.Get(ctx, v.Appeal)
	if err != nil {
		return true, fmt.Errorf("visit %s: its appeal: %w", v.ID, err)
	}
	if dnc, err := av.visits.OnDoNotCall(ctx, ap.Caller); err != nil {
		return true, err
	} else if dnc {
		return true, record(callback.Attempt{Outcome: callback.Refused, Note: "the number is on the do-not-call list"}, "")
	}
	call, err := av.dialer.Dial(ctx, ivr.Number{Number: ap.Caller}, ivr.DialOptions{RingTimeout: av.ring})
	if err != nil {
		if o, ok := outcomeOf(err); ok {
			return true, record(callback.Attempt{Outcome: o, Note: "dialled by hotline: " + err.Error()}, "")
		}
		// Hotline's side failed (no trunk could take the call): the
		// visit goes back as it was, to be tried after a pause.
		if _, rerr := av.visits.Release(context.WithoutCancel(ctx), who, "not dialled: "+err.Error()); rerr != nil {
			log.Warn().Err(rerr).Msg("automated return visit: putting it back")
		}
		return false, fmt.Errorf("visit %s: %w", v.ID, err)
	}
	// The lease is renewed while the call lasts: a node killed mid-call
	// leaves the visit to come back one lease later.
	renewed := make(chan struct{})
	renewCtx, stopRenewing := context.WithCancel(context.WithoutCancel(ctx))
	go func() {
		defer close(renewed)
		tick := time.NewTicker(max(av.lease/3, time.Second))
		defer tick.Stop()
		for {
			select {
			case <-renewCtx.Done():
				return
			case <-tick.C:
			}
			if _, err := av.visits.Renew(renewCtx, v.ID, who, 0); err != nil && renewCtx.Err() == nil {
				log.Warn().Err(err).Msg("automated return visit: renewing its lease")
			}
		}
	}()
	var res ivr.VisitResult
	sub := ivr.VisitSubject{VisitID: v.ID, AppealID: v.Appeal, Category: v.Category, Date: ap.CreatedAt}
	av.runner.Serve(ctx, call, av.flow.Flow(sub, func(r ivr.VisitResult) { res = r }))
	stopRenewing()
	<-renewed
	if res.Outcome == "" {
		// The flow itself failed (a prompt would not play, a shutdown):
		// no attempt to record; the visit comes back.
		if _, rerr := av.visits.Release(context.WithoutCancel(ctx), who, "the visit's call failed on hotline's side"); rerr != nil {
			log.Warn().Err(rerr).Msg("automated return visit: putting it back")
		}
		return true, nil
	}
	return true, record(callback.Attempt{Outcome: res.Outcome, Answers: res.Answers, Note: res.Note}, ap.Caller)
}

// outcomeOf is the attempt a citizen's leg that failed makes; none for a
// failure of hotline's side (no trunk could take the call).
func outcomeOf(err error) (callback.Outcome, bool) {
	switch {
	case errors.Is(err, ivr.ErrBusy):
		return callback.Busy, true
	case errors.Is(err, ivr.ErrRangOut), errors.Is(err, ivr.ErrRejected):
		return callback.NoAnswer, true
	case errors.Is(err, ivr.ErrUnreachable):
		return callback.Unreachable, true
	}
	return "", false
}
