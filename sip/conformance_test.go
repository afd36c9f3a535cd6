package sip_test

import (
	"context"
	"errors"
	"testing"

	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/caller"
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
	ivrtest.Run(t, ivrtest.Harness{
		Dial: func(t *testing.T, callerID string, m ivr.DTMFMethod, script caller.Script) caller.Transcript {
			tr, err := caller.Call(context.Background(), caller.Options{
				Target:  h.URI(),
				From:    callerID,
				DTMF:    string(m),
				Script:  script,
				Catalog: catalog,
				Logger:  zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
			})
			if err != nil && !errors.Is(err, caller.ErrCallEnded) {
				t.Errorf("call: %v", err)
			}
			return tr
		},
		Records: h.Records,
		Calls:   h.Calls,
		Appeals: h.Appeals,
		Methods: []ivr.DTMFMethod{ivr.DTMFRFC4733, ivr.DTMFInfo, ivr.DTMFInband},
	})
}
