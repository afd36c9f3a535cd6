package asterisk_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/asterisk/aritest"
	"github.com/hotline12345/hotline/caller"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/internal/hotlinetest"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/ivr/ivrtest"
	"github.com/hotline12345/hotline/prompts"
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

// TestOutboundConformance runs the outbound scenarios on the ARI backend:
// each call goes to PJSIP/<number>@<a trunk's endpoint> of the double,
// whose far end behaves as the scenario says.
func TestOutboundConformance(t *testing.T) {
	t.Parallel()
	srv := newDouble(t)
	b := runBackend(t, srv, func(context.Context, ivr.Call) {})
	catalog, err := prompts.Default()
	if err != nil {
		t.Fatal(err)
	}
	watch := &ivrtest.RecordWatch{}
	var n atomic.Int64
	ivrtest.RunOutbound(t, ivrtest.OutboundHarness{
		Dialer:  b,
		Runner:  &ivr.Runner{Catalog: catalog, Records: watch, Lang: prompts.Mandarin, Backend: "asterisk", Log: zerolog.New(zerolog.NewTestWriter(t)), Metrics: ivr.NewMetrics(nil)},
		Records: watch,
		Carrier: func(t *testing.T, _ string, far ivrtest.Far) ivr.TrunkRoute {
			endpoint := fmt.Sprintf("carrier-%d", n.Add(1))
			ph := aritest.Phone{AnswerAfter: 50 * time.Millisecond}
			switch far {
			case ivrtest.Busy:
				ph.Busy = true
			case ivrtest.Declines:
				ph.Refuses = 603
			case ivrtest.Congested:
				ph.Refuses = 503
			case ivrtest.NoAnswer:
				ph.NoAnswer = true
			}
			if far != ivrtest.Nowhere {
				srv.SetEndpoint("PJSIP/"+endpoint, ph)
			}
			return ivr.TrunkRoute{Name: endpoint, Endpoint: endpoint, CallerID: "12345"}
		},
	})
}
