package asterisk_test

import (
	"testing"

	"github.com/hotline12345/hotline/caller"
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
	ivrtest.Run(t, ivrtest.Harness{
		Dial: func(t *testing.T, callerID string, _ ivr.DTMFMethod, script caller.Script) caller.Transcript {
			return call(t, srv, callerID, script)
		},
		Records: h.Records,
		Calls:   h.Calls,
		Appeals: h.Appeals,
		Methods: []ivr.DTMFMethod{ivr.DTMFRFC4733},
	})
}
