package sip_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/caller"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/internal/agentua"
	"github.com/hotline12345/hotline/internal/hotlinetest"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/ivr/ivrtest"
	"github.com/hotline12345/hotline/prompts"
)

// TestConformance runs the conformance suite on the embedded SIP backend,
// with the test caller as the citizen over real SIP and RTP, in real time.
func TestConformance(t *testing.T) {
	t.Parallel()
	h := hotlinetest.Start(t, nil)
	catalog, err := prompts.Default()
	if err != nil {
		t.Fatal(err)
	}
	ivrtest.Run(t, harness(h, catalog, ivr.DTMFRFC4733, ivr.DTMFInfo, ivr.DTMFInband))
}

// TestServiceConformance runs the service scenarios on the embedded SIP
// backend: four agents' phones (in-process UAs registering with digest)
// answer every offer and hang up after a second of talk.
func TestServiceConformance(t *testing.T) {
	t.Parallel()
	var phones []agentua.Agent
	h := hotlinetest.Start(t, func(c *config.Config) {
		for _, id := range []string{"a1", "a2", "a3", "a4"} {
			c.Agents = append(c.Agents, config.Agent{ID: id, SIPUser: "user-" + id, Password: "password-" + id,
				Categories: []string{"emergency", "livelihood", "general", "complex"}})
			phones = append(phones, agentua.Agent{User: "user-" + id, Password: "password-" + id})
		}
		c.ACD.WrapUp = 0
	})
	fleet, err := agentua.Start(context.Background(), agentua.Options{
		Registrar: h.SIP,
		Agents:    phones,
		TalkTime:  time.Second,
		Logger:    zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := fleet.Stop(ctx); err != nil {
			t.Errorf("agents' phones: %v", err)
		}
	})
	catalog, err := prompts.Default()
	if err != nil {
		t.Fatal(err)
	}
	ivrtest.RunService(t, harness(h, catalog, ivr.DTMFRFC4733))
}

// harness is the conformance suite's view of hotline over SIP: the test
// caller as the citizen, sending keys by the given methods.
func harness(h *hotlinetest.Hotline, catalog *prompts.Catalog, methods ...ivr.DTMFMethod) ivrtest.Harness {
	return ivrtest.Harness{
		Dial: func(t *testing.T, callerID string, m ivr.DTMFMethod, script caller.Script) caller.Transcript {
			tr, err := caller.Call(context.Background(), caller.Options{
				Target: h.URI(), From: callerID, DTMF: string(m), Script: script, Catalog: catalog,
				Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
			})
			if err != nil && !errors.Is(err, caller.ErrCallEnded) {
				t.Errorf("call: %v", err)
			}
			return tr
		},
		Records: h.Records,
		Calls:   h.Calls,
		Appeals: h.Appeals,
		Methods: methods,
	}
}
