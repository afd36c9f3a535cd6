// Package ivr holds the port every telephony backend implements (Call), digit
// collection with timeouts, retries and barge-in, and the call flows. It never
// imports a backend: the same flow runs on the embedded SIP stack, on Asterisk
// through ARI, and on the fake used by the conformance suite.
package ivr

import (
	"context"
	"errors"
	"time"

	"github.com/hotline12345/hotline/prompts"
)

// DTMFMethod names how a key press reached us.
type DTMFMethod string

// The three ways a key press arrives.
const (
	DTMFRFC4733 DTMFMethod = "rfc4733" // RTP telephone-event
	DTMFInfo    DTMFMethod = "info"    // SIP INFO
	DTMFInband  DTMFMethod = "inband"  // tones in the audio
)

// Digit is one key press, from whichever source carried it.
type Digit struct {
	Key    rune
	Method DTMFMethod
	At     time.Time
}

// Why a call ends, as context causes. Backends cancel a call's context with one
// of these so the record can say why the call ended.
var (
	ErrCallerHangup = errors.New("caller hung up")
	ErrMediaTimeout = errors.New("no media received")
	ErrShutdown     = errors.New("server shutting down")
	ErrHangup       = errors.New("hung up by the flow")
	// ErrNoAck: the call was answered, and the answer never acknowledged
	// (RFC 3261 §13.3.1.4).
	ErrNoAck = errors.New("the answer was never acknowledged")
)

// Call is one citizen's call as the flows see it. Implementations must be safe
// for use by the call's flow goroutine while the backend delivers digits and
// hang-ups from its own goroutines.
type Call interface {
	// ID is hotline's id of the call, unique across nodes.
	ID() string
	// Caller is the calling party's number or user.
	Caller() string
	// Dialled is the number the caller dialled.
	Dialled() string
	// Answer answers the call. Answering an answered call is a no-op.
	Answer(ctx context.Context) error
	// Play queues the prompts in order and returns at once; the Playback
	// ends when the last prompt finished or Stop is called.
	Play(ctx context.Context, lang prompts.Lang, ids ...prompts.ID) (Playback, error)
	// Digits delivers key presses in the order they were received. The
	// channel is never closed; use Done to learn the call ended.
	Digits() <-chan Digit
	// Hangup ends the call from our side. Hanging up an ended call is a no-op.
	Hangup(ctx context.Context) error
	// Done is closed when the call has ended, by either side.
	Done() <-chan struct{}
	// Err says why the call ended once Done is closed (one of the Err*
	// causes above, possibly wrapped), and nil before.
	Err() error
}

// Playback is a queue of prompts being played to a call.
type Playback interface {
	// Done is closed when the playback finished, was stopped, or the call ended.
	Done() <-chan struct{}
	// Stop ends the playback early (barge-in). Safe to call more than once.
	Stop()
	// Played reports the prompts that started playing, in order, by the time
	// Done is closed.
	Played() []PlayedPrompt
}

// PlayedPrompt is one prompt that started playing.
type PlayedPrompt struct {
	ID      prompts.ID
	Lang    prompts.Lang
	Version string
	At      time.Time
}
