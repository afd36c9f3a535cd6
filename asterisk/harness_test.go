package asterisk_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hotline12345/hotline/asterisk/aritest"
	"github.com/hotline12345/hotline/caller"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/internal/hotlinetest"
	"github.com/hotline12345/hotline/prompts"
)

// speed is how much faster than real time the double plays prompts.
const speed = 4

// newDouble starts an ARI double whose sounds are the catalog's prompts,
// with their lengths.
func newDouble(t testing.TB) *aritest.Server {
	t.Helper()
	catalog, err := prompts.Default()
	if err != nil {
		t.Fatal(err)
	}
	return aritest.Start(t, aritest.Options{
		Speed: speed,
		Sound: func(name, lang string) (time.Duration, bool) {
			id, ok := strings.CutPrefix(name, "hotline/")
			if !ok {
				return 0, false
			}
			p, err := catalog.Get(prompts.ID(id), prompts.Lang(lang))
			if err != nil || p.Lang != prompts.Lang(lang) {
				return 0, false
			}
			return p.Duration(), true
		},
	})
}

// startHotline runs hotline with the asterisk backend against the double.
func startHotline(t testing.TB, srv *aritest.Server, tune func(*config.Config)) *hotlinetest.Hotline {
	t.Helper()
	return startHotlineWith(t, srv, hotlinetest.Options{Tune: tune})
}

// startHotlineWith is startHotline with more to change.
func startHotlineWith(t testing.TB, srv *aritest.Server, o hotlinetest.Options) *hotlinetest.Hotline {
	t.Helper()
	tune := o.Tune
	o.Tune = func(c *config.Config) {
		c.Backend = "asterisk"
		c.ARI.URL = srv.URL()
		c.ARI.Password = "hotline"
		c.ARI.ReconnectMin = config.Duration(20 * time.Millisecond)
		c.ARI.ReconnectMax = config.Duration(200 * time.Millisecond)
		if tune != nil {
			tune(c)
		}
	}
	h := hotlinetest.StartWith(t, o)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.AwaitConnected(ctx, "hotline", true); err != nil {
		t.Fatalf("hotline did not connect to ARI: %v", err)
	}
	return h
}

// call places a citizen's call through the double and plays script: it
// hears the prompts Asterisk plays (by their sound names), presses keys
// after a prompt ends (or as it starts, for a barge-in step) and hangs up
// when told; it returns once the channel is gone.
func call(t testing.TB, srv *aritest.Server, callerID string, script caller.Script) caller.Transcript {
	t.Helper()
	_, done := dial(t, srv, callerID, script)
	return <-done
}

// dial is call returning at once: the caller's channel, and the
// transcript once the call is over.
func dial(t testing.TB, srv *aritest.Server, callerID string, script caller.Script) (*aritest.Party, <-chan caller.Transcript) {
	t.Helper()
	done := make(chan caller.Transcript, 1)
	p := inbound(t, srv, callerID)
	go func() { done <- play(t, p, callerID, script) }()
	return p, done
}

// inbound places a citizen's call into the application.
func inbound(t testing.TB, srv *aritest.Server, callerID string) *aritest.Party {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := srv.Inbound(ctx, "hotline", callerID, "12345")
	if err != nil {
		t.Fatalf("inbound call: %v", err)
	}
	return p
}

// farEnd is the citizen's side of a call: a channel of the double, or a
// caller of a real Asterisk (asterisktest.Party), whose notes say alike
// what Asterisk played.
type farEnd interface {
	ID() string
	Notes() <-chan aritest.Note
	Press(key rune)
	Hangup()
}

// callLimit bounds a call the harness plays.
const callLimit = 4 * time.Minute

// play is the citizen's side of a call in progress.
func play(t testing.TB, p farEnd, callerID string, script caller.Script) caller.Transcript {
	var tr caller.Transcript
	step := 0
	heard := map[string]int{} // playback id → index in tr.Heard
	act := func(id prompts.ID, started bool) {
		if step >= len(script) || script[step].On != id || script[step].BargeIn != started {
			return
		}
		st := script[step]
		step++
		if st.Hangup {
			tr.HungUpBy = "caller"
			p.Hangup()
			return
		}
		for _, k := range st.Press {
			p.Press(k)
			tr.Pressed = append(tr.Pressed, string(k))
		}
	}
	// The longest scenario, silence at every menu, runs about two minutes
	// on a real Asterisk, which plays in real time.
	timeout := time.After(callLimit)
	for {
		select {
		case n, ok := <-p.Notes():
			if !ok {
				tr.Ended = time.Now()
				return tr
			}
			switch n.Kind {
			case aritest.NoteAnswered:
				tr.Status, tr.Answered = 200, time.Now()
			case aritest.NotePlaybackStarted:
				id := prompts.ID(strings.TrimPrefix(n.MediaURI, "sound:hotline/"))
				heard[n.PlaybackID] = len(tr.Heard)
				tr.Heard = append(tr.Heard, prompts.Heard{ID: id, Lang: prompts.Lang(n.Language)})
				act(id, true)
			case aritest.NotePlaybackFinished:
				if i, ok := heard[n.PlaybackID]; ok {
					tr.Heard[i].Complete = n.PlaybackState == "done"
					act(tr.Heard[i].ID, false)
				}
			case aritest.NoteHungUp:
				if tr.HungUpBy == "" {
					tr.HungUpBy = "server"
				}
			}
		case <-timeout:
			t.Errorf("call from %s still up after %s", callerID, callLimit)
			p.Hangup()
			return tr
		}
	}
}
