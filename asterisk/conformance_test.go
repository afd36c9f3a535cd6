package asterisk_test

import (
	"sync"
	"testing"
	"time"

	"github.com/hotline12345/hotline/asterisk/aritest"
	"github.com/hotline12345/hotline/caller"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/internal/hotlinetest"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/ivr/ivrtest"
)

// TestConformance runs the conformance suite, unchanged, on the ARI
// backend: hotline connected to the ARI double, the citizen's side played
// through the double's channels.
func TestConformance(t *testing.T) {
	t.Parallel()
	srv := newDouble(t)
	h := startHotline(t, srv, nil)
	ivrtest.Run(t, harness(srv, h))
}

// TestServiceConformance runs the service scenarios on the ARI backend:
// four agents' PJSIP endpoints answer every offer, and each agent hangs up
// a second after being bridged with the caller.
func TestServiceConformance(t *testing.T) {
	t.Parallel()
	srv := newDouble(t)
	h := startHotline(t, srv, func(c *config.Config) {
		for _, id := range []string{"a1", "a2", "a3", "a4"} {
			user := "10" + id[1:] + "0"
			srv.SetEndpoint("PJSIP/"+user, aritest.Phone{AnswerAfter: 100 * time.Millisecond})
			c.Agents = append(c.Agents, config.Agent{ID: id, SIPUser: user, Password: "password-" + id, Categories: allCategories})
		}
		c.ACD.WrapUp = 0
	})
	stop := make(chan struct{})
	var agents sync.WaitGroup
	agents.Go(func() {
		for {
			select {
			case p := <-srv.Originated():
				agents.Go(func() { talkThenHangUp(p, time.Second, stop) })
			case <-stop:
				return
			}
		}
	})
	t.Cleanup(func() {
		close(stop)
		agents.Wait()
	})
	ivrtest.RunService(t, harness(srv, h))
}

// talkThenHangUp is an agent: once bridged with the caller it talks for
// talk, then hangs up; it gives up when the call ends first or stop closes.
func talkThenHangUp(p *aritest.Party, talk time.Duration, stop <-chan struct{}) {
	var timer <-chan time.Time
	for {
		select {
		case n, ok := <-p.Notes():
			if !ok {
				return
			}
			if n.Kind == aritest.NoteBridged && timer == nil {
				timer = time.After(talk)
			}
		case <-timer:
			p.Hangup()
			timer = nil
		case <-stop:
			p.Hangup()
			return
		}
	}
}

// harness is the conformance suite's view of hotline on the double.
func harness(srv *aritest.Server, h *hotlinetest.Hotline) ivrtest.Harness {
	return ivrtest.Harness{
		Dial: func(t *testing.T, callerID string, _ ivr.DTMFMethod, script caller.Script) caller.Transcript {
			return call(t, srv, callerID, script)
		},
		Records: h.Records,
		Calls:   h.Calls,
		Appeals: h.Appeals,
		Methods: []ivr.DTMFMethod{ivr.DTMFRFC4733},
	}
}
