package ivr

import "time"

// SoundKind is what a backend heard from the far end.
type SoundKind string

// The sounds a Listener reports.
const (
	// Voice is a stretch of speech-like sound: energy above the line's
	// noise that is not a steady tone. Pauses shorter than a breath do not
	// end it, so a greeting read out is one Voice.
	Voice SoundKind = "voice"
	// FaxTone is a fax machine's tone: the calling tone (CNG, 1100 Hz,
	// 0.5 s on and 3 s off, ITU-T T.30 §5.2.2) or the answer tone (CED,
	// 2100 Hz, ITU-T T.30 §5.2.1).
	FaxTone SoundKind = "fax_tone"
)

// Sound is one thing heard from the far end.
type Sound struct {
	Kind SoundKind
	// At is when the sound began.
	At time.Time
	// Length is how long it lasted. A voice still going is reported once
	// it has lasted its backend's limit (2.5 s on the embedded backend),
	// with that Length, and not again.
	Length time.Duration
}

// Listener is implemented by calls whose backend hears the far end's
// audio, not only its keys: the embedded SIP backend's placed calls do,
// Asterisk's do not. A flow that cares (the return visit, to tell a
// person from an answering machine or a fax) asks the call for it and
// does with keys alone when the call has none.
type Listener interface {
	// Sounds delivers what is heard from the far end, in order, from the
	// first call of Sounds on; every call returns the same channel. It is
	// never closed: use Call.Done to learn the call ended. Sounds not read
	// in time may be dropped.
	Sounds() <-chan Sound
}
