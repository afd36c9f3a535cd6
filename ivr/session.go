package ivr

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/calllog"
	"github.com/hotline12345/hotline/prompts"
)

// Session is a call as a flow drives it: the port plus the call's language,
// its journal (prompts played, digits received, stages entered) and digit
// collection. A Session belongs to the call's one flow goroutine and is not
// safe for concurrent use.
type Session struct {
	Call    Call
	Lang    prompts.Lang
	Catalog *prompts.Catalog
	// Record is the call's record; flows write what happened into it.
	Record *calllog.Record
	// Appeal is the appeal the call's intake recorded, for the steps that
	// follow it.
	Appeal appeal.Appeal
	// Log carries the call's id.
	Log zerolog.Logger

	checkpoint func(context.Context)

	now     func() time.Time
	stage   string
	events  []calllog.Event
	pending []Digit // keys pressed ahead of the menu that will read them
	onDigit func(Digit)
}

// NewSession starts a session for call in lang.
func NewSession(call Call, catalog *prompts.Catalog, lang prompts.Lang) *Session {
	return &Session{Call: call, Catalog: catalog, Lang: lang, now: time.Now, Record: &calllog.Record{ID: call.ID()}, Log: zerolog.Nop()}
}

// Stage records that the flow entered a named step; a call that ends is
// recorded as having ended in the last stage entered.
func (s *Session) Stage(name string) {
	s.stage = name
	s.events = append(s.events, calllog.Event{At: s.now(), Kind: "stage", Stage: name})
}

// CurrentStage is the last stage entered.
func (s *Session) CurrentStage() string { return s.stage }

// Events is the journal in time order.
func (s *Session) Events() []calllog.Event {
	ev := slices.Clone(s.events)
	slices.SortStableFunc(ev, func(a, b calllog.Event) int { return a.At.Compare(b.At) })
	return ev
}

// firstPlayed returns when prompt id first started playing at or after
// since.
func (s *Session) firstPlayed(id prompts.ID, since time.Time) (time.Time, bool) {
	var first time.Time
	for _, e := range s.events {
		if e.Kind == "prompt" && e.Prompt == string(id) && !e.At.Before(since) && (first.IsZero() || e.At.Before(first)) {
			first = e.At
		}
	}
	return first, !first.IsZero()
}

// Version is the version of a prompt in the session's language.
func (s *Session) Version(id prompts.ID) string {
	p, err := s.Catalog.Get(id, s.Lang)
	if err != nil {
		return ""
	}
	return p.Version
}

// Play plays prompts to their end, ignoring keys (they stay queued for the next
// menu). It returns the call's end cause if the call ends meanwhile.
func (s *Session) Play(ctx context.Context, ids ...prompts.ID) error {
	pb, err := s.Call.Play(ctx, s.Lang, ids...)
	if err != nil {
		return fmt.Errorf("play %v: %w", ids, err)
	}
	defer s.journalPlayed(pb)
	for {
		select {
		case <-pb.Done():
			return s.callErr()
		case d := <-s.Call.Digits():
			s.takeDigit(d)
			s.pending = append(s.pending, d)
		case <-s.Call.Done():
			pb.Stop()
			<-pb.Done()
			return s.Call.Err()
		case <-ctx.Done():
			pb.Stop()
			<-pb.Done()
			return context.Cause(ctx)
		}
	}
}

// callErr reports the call's end cause once it has ended, nil before.
func (s *Session) callErr() error {
	select {
	case <-s.Call.Done():
		return s.Call.Err()
	default:
		return nil
	}
}

func (s *Session) journalPlayed(pb Playback) {
	for _, p := range pb.Played() {
		s.events = append(s.events, calllog.Event{
			At: p.At, Kind: "prompt", Prompt: string(p.ID), Version: p.Version, Lang: string(p.Lang),
		})
	}
}

func (s *Session) takeDigit(d Digit) {
	s.events = append(s.events, calllog.Event{At: d.At, Kind: "digit", Digit: string(d.Key), Method: string(d.Method)})
	if s.onDigit != nil {
		s.onDigit(d)
	}
}

// OnDigit sets a function told of every key the session receives (metrics).
func (s *Session) OnDigit(f func(Digit)) { s.onDigit = f }

// Menu is one question answered by a single key.
type Menu struct {
	Prompt  prompts.ID
	Keys    string        // the valid keys, e.g. "123"
	Timeout time.Duration // how long to wait for a key once the prompt ended
	Tries   int           // how many times the question is asked at most
	// Hot keys end the prompt and are returned at once even though they are
	// not answers (e.g. 9 for English during the greeting).
	Hot string
}

// Answer is a key that answered a menu.
type Answer struct {
	Digit
	Try int // 1 for the first asking
}

// ErrNoAnswer means every try ended in silence or an invalid key.
var ErrNoAnswer = errors.New("no valid key")

// Ask asks a menu until a valid key is pressed or the tries run out. Keys
// pressed during a prompt end it (barge-in); keys pressed earlier are taken
// as typed ahead. After each silence the no-input message plays, after each
// invalid key the invalid-key message. It returns ErrNoAnswer after the last
// try, or the call's end cause.
func (s *Session) Ask(ctx context.Context, m Menu) (Answer, error) {
	for try := 1; try <= m.Tries; try++ {
		d, err := s.ask(ctx, m.Prompt, m.Timeout)
		switch {
		case errors.Is(err, errTimeout):
			if try < m.Tries {
				if err := s.Play(ctx, prompts.NoInput); err != nil {
					return Answer{}, err
				}
			}
			continue
		case err != nil:
			return Answer{}, err
		}
		if strings.ContainsRune(m.Keys, d.Key) || strings.ContainsRune(m.Hot, d.Key) {
			return Answer{Digit: d, Try: try}, nil
		}
		if try < m.Tries {
			if err := s.playInterruptible(ctx, prompts.InvalidKey); err != nil {
				return Answer{}, err
			}
		}
	}
	return Answer{}, ErrNoAnswer
}

var errTimeout = errors.New("no key before the timeout")

// ask plays a prompt, stopping it on the first key, and waits up to timeout
// after its end for a key.
func (s *Session) ask(ctx context.Context, id prompts.ID, timeout time.Duration) (Digit, error) {
	if d, ok := s.popPending(); ok {
		return d, nil
	}
	d, _, err := s.askOnce(ctx, id, timeout)
	return d, err
}

// askHeard is ask for a question only a key pressed after it began can
// answer: a key that arrives before its first frame went out was meant
// for something else (the conversation that just ended) and the question
// starts again.
func (s *Session) askHeard(ctx context.Context, id prompts.ID, timeout time.Duration) (Digit, error) {
	if d, ok := s.popPending(); ok {
		return d, nil
	}
	for {
		d, pb, err := s.askOnce(ctx, id, timeout)
		if err != nil || startedBy(pb.Played(), d.At) {
			return d, err
		}
	}
}

// startedBy tells whether a prompt had started playing at t.
func startedBy(played []PlayedPrompt, t time.Time) bool {
	for _, p := range played {
		if !p.At.After(t) {
			return true
		}
	}
	return false
}

// askOnce plays the prompt once and returns the first key, pressed during
// it or in the timeout after it, with the playback it stopped.
func (s *Session) askOnce(ctx context.Context, id prompts.ID, timeout time.Duration) (Digit, Playback, error) {
	pb, err := s.Call.Play(ctx, s.Lang, id)
	if err != nil {
		return Digit{}, nil, fmt.Errorf("play %s: %w", id, err)
	}
	defer s.journalPlayed(pb)
	var timer <-chan time.Time
	playing := pb.Done()
	for {
		select {
		case <-playing:
			if err := s.callErr(); err != nil {
				return Digit{}, pb, err
			}
			playing = nil
			t := time.NewTimer(timeout)
			defer t.Stop()
			timer = t.C
		case <-timer:
			return Digit{}, pb, errTimeout
		case d := <-s.Call.Digits():
			s.takeDigit(d)
			pb.Stop()
			<-pb.Done()
			return d, pb, nil
		case <-s.Call.Done():
			pb.Stop()
			<-pb.Done()
			return Digit{}, pb, s.Call.Err()
		case <-ctx.Done():
			pb.Stop()
			<-pb.Done()
			return Digit{}, pb, context.Cause(ctx)
		}
	}
}

// playInterruptible plays a prompt that a key may cut short; the key is kept
// for the next question.
func (s *Session) playInterruptible(ctx context.Context, id prompts.ID) error {
	pb, err := s.Call.Play(ctx, s.Lang, id)
	if err != nil {
		return fmt.Errorf("play %s: %w", id, err)
	}
	defer s.journalPlayed(pb)
	select {
	case <-pb.Done():
		return s.callErr()
	case d := <-s.Call.Digits():
		s.takeDigit(d)
		s.pending = append(s.pending, d)
		pb.Stop()
		<-pb.Done()
		return nil
	case <-s.Call.Done():
		pb.Stop()
		<-pb.Done()
		return s.Call.Err()
	case <-ctx.Done():
		pb.Stop()
		<-pb.Done()
		return context.Cause(ctx)
	}
}

func (s *Session) popPending() (Digit, bool) {
	if len(s.pending) == 0 {
		return Digit{}, false
	}
	d := s.pending[0]
	s.pending = s.pending[1:]
	return d, true
}
