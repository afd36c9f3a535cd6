// Package ivrtest holds the conformance suite every telephony backend runs,
// and a fake backend that runs the flows in memory, faster than real time.
package ivrtest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/hotline12345/hotline/caller"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/prompts"
)

// FakeCall is an in-memory ivr.Call. Prompts "play" for their real length
// divided by Speed; the script engine in Dial plays the citizen.
type FakeCall struct {
	id, caller, dialled string
	catalog             *prompts.Catalog
	speed               float64

	ctx    context.Context
	cancel context.CancelCauseFunc
	digits chan ivr.Digit
	events chan fakeEvent
	sounds chan ivr.Sound

	mu       sync.Mutex
	answered bool
	hungUp   bool
	hearOn   map[prompts.ID][]ivr.Sound // made heard as the prompt starts
}

type fakeEvent struct {
	started bool // or ended
	id      prompts.ID
	lang    prompts.Lang
	at      time.Time
}

var (
	_ ivr.Call     = (*FakeCall)(nil)
	_ ivr.Listener = (*FakeCall)(nil)
)

// NewFakeCall makes a call from callerID; prompts play speed times faster
// than real time.
func NewFakeCall(catalog *prompts.Catalog, callerID string, speed float64) *FakeCall {
	ctx, cancel := context.WithCancelCause(context.Background())
	return &FakeCall{
		id: uuid.Must(uuid.NewV7()).String(), caller: callerID, dialled: "12345",
		catalog: catalog, speed: speed, ctx: ctx, cancel: cancel,
		digits: make(chan ivr.Digit, 32), events: make(chan fakeEvent, 64), sounds: make(chan ivr.Sound, 32),
	}
}

func (c *FakeCall) ID() string               { return c.id }
func (c *FakeCall) Caller() string           { return c.caller }
func (c *FakeCall) Dialled() string          { return c.dialled }
func (c *FakeCall) Digits() <-chan ivr.Digit { return c.digits }
func (c *FakeCall) Done() <-chan struct{}    { return c.ctx.Done() }

func (c *FakeCall) Err() error {
	if c.ctx.Err() == nil {
		return nil
	}
	return context.Cause(c.ctx)
}

func (c *FakeCall) Answer(ctx context.Context) error {
	if err := c.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	c.answered = true
	c.mu.Unlock()
	return nil
}

func (c *FakeCall) Hangup(ctx context.Context) error {
	c.mu.Lock()
	c.hungUp = c.ctx.Err() == nil
	c.mu.Unlock()
	c.cancel(ivr.ErrHangup)
	return nil
}

// Play plays the prompts one after the other in a goroutine that ends with
// the playback.
func (c *FakeCall) Play(ctx context.Context, lang prompts.Lang, ids ...prompts.ID) (ivr.Playback, error) {
	list := make([]*prompts.Prompt, 0, len(ids))
	for _, id := range ids {
		p, err := c.catalog.Get(id, lang)
		if err != nil {
			return nil, err
		}
		list = append(list, p)
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	pb := &fakePlayback{done: make(chan struct{}), stop: make(chan struct{})}
	go pb.run(c, list)
	return pb, nil
}

func (c *FakeCall) notify(ev fakeEvent) {
	select {
	case c.events <- ev:
	case <-c.ctx.Done():
	}
}

type fakePlayback struct {
	done     chan struct{}
	stop     chan struct{}
	stopOnce sync.Once
	mu       sync.Mutex
	played   []ivr.PlayedPrompt
}

func (pb *fakePlayback) run(c *FakeCall, list []*prompts.Prompt) {
	defer close(pb.done)
	for _, p := range list {
		select {
		case <-pb.stop:
			return
		default:
		}
		now := time.Now()
		pb.mu.Lock()
		pb.played = append(pb.played, ivr.PlayedPrompt{ID: p.ID, Lang: p.Lang, Version: p.Version, At: now})
		pb.mu.Unlock()
		c.notify(fakeEvent{started: true, id: p.ID, lang: p.Lang, at: now})
		t := time.NewTimer(time.Duration(float64(p.Duration()) / c.speed))
		select {
		case <-t.C:
		case <-pb.stop:
			t.Stop()
			return
		case <-c.ctx.Done():
			t.Stop()
			return
		}
		c.notify(fakeEvent{id: p.ID, lang: p.Lang, at: time.Now()})
	}
}

func (pb *fakePlayback) Done() <-chan struct{} { return pb.done }
func (pb *fakePlayback) Stop()                 { pb.stopOnce.Do(func() { close(pb.stop) }) }
func (pb *fakePlayback) Played() []ivr.PlayedPrompt {
	pb.mu.Lock()
	defer pb.mu.Unlock()
	return append([]ivr.PlayedPrompt(nil), pb.played...)
}

// Sounds implements ivr.Listener: the sounds given to Hear.
func (c *FakeCall) Sounds() <-chan ivr.Sound { return c.sounds }

// Hear delivers a sound as if the far end made it now; its At is now
// when zero.
func (c *FakeCall) Hear(s ivr.Sound) {
	if s.At.IsZero() {
		s.At = time.Now()
	}
	c.sounds <- s
}

// HearOn makes s heard when prompt id next starts playing, while
// PlayScript plays the far end: a far end that speaks over a question.
func (c *FakeCall) HearOn(id prompts.ID, s ivr.Sound) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hearOn == nil {
		c.hearOn = make(map[prompts.ID][]ivr.Sound)
	}
	c.hearOn[id] = append(c.hearOn[id], s)
}

// heardOn takes the sounds to make heard as prompt id starts.
func (c *FakeCall) heardOn(id prompts.ID) []ivr.Sound {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.hearOn[id]
	delete(c.hearOn, id)
	return s
}

// Press delivers a key as if the caller pressed it now.
func (c *FakeCall) Press(key rune, method ivr.DTMFMethod) {
	c.digits <- ivr.Digit{Key: key, Method: method, At: time.Now()}
}

// Play runs the citizen's side of a fake call: it follows the script as
// prompts start and end, and returns when the call is over.
func (c *FakeCall) PlayScript(method ivr.DTMFMethod, script caller.Script) caller.Transcript {
	var tr caller.Transcript
	tr.Status = 200
	tr.Answered = time.Now()
	step := 0
	for {
		select {
		case <-c.ctx.Done():
			tr.Ended = time.Now()
			c.mu.Lock()
			if c.hungUp {
				tr.HungUpBy = "server"
			}
			c.mu.Unlock()
			return tr
		case ev := <-c.events:
			if ev.started {
				tr.Heard = append(tr.Heard, prompts.Heard{ID: ev.id, Lang: ev.lang})
				for _, s := range c.heardOn(ev.id) {
					c.Hear(s)
				}
			} else if n := len(tr.Heard); n > 0 {
				tr.Heard[n-1].Complete = true
			}
			if step >= len(script) || script[step].On != ev.id || ev.started != script[step].BargeIn {
				continue
			}
			st := script[step]
			step++
			if st.Hangup {
				c.cancel(ivr.ErrCallerHangup)
				tr.HungUpBy = "caller"
				continue
			}
			for _, k := range st.Press {
				c.Press(k, method)
				tr.Pressed = append(tr.Pressed, string(k))
			}
		}
	}
}

// FakeDialer places fake calls: to the phones of Phones (agents by SIP
// user, trunks by name), which behave as their Far says and tell the test
// of each call; otherwise a Number through a trunk named after a Far
// behaves as that far end does. An answered call's prompts play speed
// times faster than real time.
type FakeDialer struct {
	Catalog *prompts.Catalog
	Speed   float64
	Phones  *FakePhones
}

// Dial implements ivr.Dialer.
func (d FakeDialer) Dial(ctx context.Context, to ivr.Destination, opts ivr.DialOptions) (ivr.Call, error) {
	if p := d.Phones.lookup(to); p != nil {
		return p.dial(ctx, d, to, opts)
	}
	n, ok := to.(ivr.Number)
	if !ok {
		return nil, fmt.Errorf("%w: the fake dialer dials numbers, not %s", ivr.ErrUnreachable, to)
	}
	switch Far(n.Trunk.Name) {
	case Answers:
		c := NewFakeCall(d.Catalog, n.Number, d.Speed)
		c.dialled = n.Number
		return c, nil
	case Busy:
		return nil, fmt.Errorf("%w: %s", ivr.ErrBusy, n)
	case Declines:
		return nil, fmt.Errorf("%w: %s", ivr.ErrRejected, n)
	case Congested:
		return nil, fmt.Errorf("%w: %s", ivr.ErrCongestion, n)
	case NoAnswer:
		select {
		case <-time.After(opts.RingTimeout):
			return nil, fmt.Errorf("%w: %s", ivr.ErrRangOut, n)
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
	return nil, fmt.Errorf("%w: %s", ivr.ErrUnreachable, n)
}
