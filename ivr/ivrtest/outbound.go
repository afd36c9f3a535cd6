package ivrtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hotline12345/hotline/calllog"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/prompts"
)

// Far is how the far end of an outbound call behaves.
type Far string

// The far ends of the outbound scenarios.
const (
	Answers   Far = "answers"   // answers, and waits for our hang-up
	Busy      Far = "busy"      // 486 Busy Here; Q.850 17
	Declines  Far = "declines"  // 603 Decline; Q.850 21
	Congested Far = "congested" // 503 Service Unavailable; Q.850 34
	NoAnswer  Far = "no answer" // rings until the call is withdrawn
	Nowhere   Far = "nowhere"   // no such trunk or route
)

// OutboundHarness is a backend's side of the outbound scenarios.
type OutboundHarness struct {
	// Dialer is the backend.
	Dialer ivr.Dialer
	// Runner runs flows on the calls placed; its Records must be Records.
	Runner  *ivr.Runner
	Records *RecordWatch
	// Carrier returns a trunk whose far end behaves as far for the next
	// call to number.
	Carrier func(t *testing.T, number string, far Far) ivr.TrunkRoute
}

// visit is the flow of the outbound scenarios: a step of its own, a
// prompt, and the call ends (hotline hangs up).
func visit(ctx context.Context, s *ivr.Session) error {
	s.Stage("visit")
	return s.Play(ctx, prompts.Goodbye)
}

// RunOutbound runs the outbound scenarios: a call of its own (no parent)
// to a number through a trunk, which a flow then runs on, and each way
// such a call fails, told apart.
func RunOutbound(t *testing.T, h OutboundHarness) {
	t.Run("answered, a flow runs on it", func(t *testing.T) {
		t.Parallel()
		number := NewCallerID()
		route := h.Carrier(t, number, Answers)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		leg, err := h.Dialer.Dial(ctx, ivr.Number{Number: number, Trunk: route}, ivr.DialOptions{RingTimeout: 5 * time.Second})
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		h.Runner.Serve(ctx, leg, ivr.Sequence(visit))
		rec := h.Records.Final(t, number)
		if rec.EndCause != calllog.FlowFinished || rec.Stage != "visit" || rec.Dialled != number {
			t.Errorf("record: ended %s (%s) in %q, dialled %q; want finished in visit, dialled %s", rec.EndCause, rec.EndDetail, rec.Stage, rec.Dialled, number)
		}
		var played bool
		for _, ev := range rec.Events {
			played = played || ev.Prompt == string(prompts.Goodbye)
		}
		if !played {
			t.Errorf("the flow's prompt is not in the record's events: %+v", rec.Events)
		}
	})
	for far, want := range map[Far]error{
		Busy: ivr.ErrBusy, Declines: ivr.ErrRejected, Congested: ivr.ErrCongestion, NoAnswer: ivr.ErrRangOut, Nowhere: ivr.ErrUnreachable,
	} {
		t.Run(string(far), func(t *testing.T) {
			t.Parallel()
			number := NewCallerID()
			route := h.Carrier(t, number, far)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			leg, err := h.Dialer.Dial(ctx, ivr.Number{Number: number, Trunk: route}, ivr.DialOptions{RingTimeout: 2 * time.Second})
			if leg != nil || !errors.Is(err, want) {
				t.Fatalf("Dial: %v, %v; want %v", leg, err, want)
			}
			for _, other := range []error{ivr.ErrBusy, ivr.ErrRejected, ivr.ErrCongestion, ivr.ErrRangOut, ivr.ErrUnreachable} {
				if other != want && errors.Is(err, other) {
					t.Errorf("Dial: %v is %v as well", err, other)
				}
			}
		})
	}
}
