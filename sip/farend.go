package sip

import (
	"sync"

	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/media"
)

var _ ivr.Listener = (*agentLeg)(nil)

// farEnd is what is heard from a call's far end: the sounds its stream's
// classifier reports, from the first call of Sounds on.
type farEnd struct {
	once sync.Once
	ch   chan ivr.Sound
}

// soundsBuffer holds the sounds not yet read; more are dropped, as the
// receive goroutine must never wait on a flow.
const soundsBuffer = 16

// Sounds implements ivr.Listener: the far end's voices and fax tones, as
// the leg's stream hears them from the first call on. A leg whose media is
// gone hears nothing.
func (l *agentLeg) Sounds() <-chan ivr.Sound {
	return l.sounds.listen(l.mediaStream())
}

func (f *farEnd) listen(st *media.Stream) <-chan ivr.Sound {
	f.once.Do(func() {
		f.ch = make(chan ivr.Sound, soundsBuffer)
		if st == nil {
			return
		}
		st.Listen(media.ClassifierOptions{}, func(s media.Sound) {
			select {
			case f.ch <- heardSound(s):
			default:
			}
		})
	})
	return f.ch
}

// heardSound is a classifier's sound as flows know it: both fax tones
// are a fax.
func heardSound(s media.Sound) ivr.Sound {
	kind := ivr.Voice
	if s.Kind == media.SoundFaxCalling || s.Kind == media.SoundFaxAnswer {
		kind = ivr.FaxTone
	}
	return ivr.Sound{Kind: kind, At: s.At, Length: s.Length}
}
