package ivrtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hotline12345/hotline/ivr"
)

// FakePhones are the far ends a FakeDialer reaches by name: agents' phones
// by SIP user, carriers by trunk name. Safe for concurrent use; a nil
// FakePhones has none.
type FakePhones struct {
	mu     sync.Mutex
	phones map[string]*FakePhone
}

// Add makes the phone name (an agent's SIP user or a trunk's name), which
// behaves as far: Answers, Busy, Declines, Congested or NoAnswer.
func (ps *FakePhones) Add(name string, far Far) *FakePhone {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.phones == nil {
		ps.phones = map[string]*FakePhone{}
	}
	p := &FakePhone{far: far, rings: make(chan *fakeRing, 8)}
	ps.phones[name] = p
	return p
}

func (ps *FakePhones) lookup(to ivr.Destination) *FakePhone {
	if ps == nil {
		return nil
	}
	var name string
	switch to := to.(type) {
	case ivr.Agent:
		name = to.SIPUser
	case ivr.Number:
		name = to.Trunk.Name
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.phones[name]
}

// FakePhone is a far end of fake calls; it implements FarEnd for the call
// that reached it last.
type FakePhone struct {
	far   Far
	rings chan *fakeRing
	last  *fakeRing // the test's goroutine's only
}

// fakeRing is one call that reached a phone.
type fakeRing struct {
	presented string
	call      *FakeCall     // once answered
	withdrawn chan struct{} // closed when a call that was not answered is over
}

var _ FarEnd = (*FakePhone)(nil)

// dial is a call reaching the phone: it rings, then answers, refuses, or
// rings until withdrawn. An answered call ends with its parent.
func (p *FakePhone) dial(ctx context.Context, d FakeDialer, to ivr.Destination, opts ivr.DialOptions) (ivr.Call, error) {
	r := &fakeRing{withdrawn: make(chan struct{})}
	who := ""
	switch to := to.(type) {
	case ivr.Agent:
		who, r.presented = to.SIPUser, "hotline"
		if opts.Parent != nil {
			r.presented = opts.Parent.Caller()
		}
	case ivr.Number:
		who, r.presented = to.Number, to.Trunk.CallerID
	}
	if p.far == Answers {
		c := NewFakeCall(d.Catalog, who, d.Speed)
		c.dialled = who
		if parent := opts.Parent; parent != nil {
			go func() {
				select {
				case <-parent.Done():
					c.cancel(parent.Err())
				case <-c.Done():
				}
			}()
		}
		r.call = c
		p.rings <- r
		return c, nil
	}
	p.rings <- r
	defer close(r.withdrawn)
	switch p.far {
	case Busy:
		return nil, fmt.Errorf("%w: %s", ivr.ErrBusy, to)
	case Declines:
		return nil, fmt.Errorf("%w: %s", ivr.ErrRejected, to)
	case Congested:
		return nil, fmt.Errorf("%w: %s", ivr.ErrCongestion, to)
	case NoAnswer:
		t := time.NewTimer(opts.RingTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			return nil, fmt.Errorf("%w: %s", ivr.ErrRangOut, to)
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
	return nil, fmt.Errorf("%w: %s", ivr.ErrUnreachable, to)
}

// Rung implements FarEnd.
func (p *FakePhone) Rung(t *testing.T) string {
	t.Helper()
	select {
	case r := <-p.rings:
		p.last = r
		return r.presented
	case <-time.After(waitLong):
		t.Fatal("no call reached the phone")
		return ""
	}
}

// HangUp implements FarEnd.
func (p *FakePhone) HangUp(t *testing.T) {
	t.Helper()
	if p.last == nil || p.last.call == nil {
		t.Fatal("hang up: no answered call")
	}
	p.last.call.cancel(ivr.ErrCallerHangup)
}

// Ended implements FarEnd: an answered call must have been hung up by
// hotline, not by the far end.
func (p *FakePhone) Ended(t *testing.T) {
	t.Helper()
	if p.last == nil {
		t.Fatal("no call reached the phone")
	}
	if c := p.last.call; c != nil {
		awaitClosed(t, c.Done(), "hang-up")
		if err := c.Err(); !errors.Is(err, ivr.ErrHangup) {
			t.Errorf("the call ended with %v, not hotline's hang-up", err)
		}
		return
	}
	awaitClosed(t, p.last.withdrawn, "withdrawal")
}

// Bridge joins two fake calls (ivr.Bridger) until one ends; the agent's
// leg is hung up as it returns.
func (d FakeDialer) Bridge(ctx context.Context, call, agent ivr.Call) (ivr.BridgeEnd, error) {
	defer func() { _ = agent.Hangup(context.WithoutCancel(ctx)) }()
	select {
	case <-call.Done():
		return ivr.CallerHungUp, nil
	case <-agent.Done():
		if call.Err() != nil {
			return ivr.CallerHungUp, nil
		}
		return ivr.AgentHungUp, nil
	case <-ctx.Done():
		return "", context.Cause(ctx)
	}
}
