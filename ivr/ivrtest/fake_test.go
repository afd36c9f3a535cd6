package ivrtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/caller"
	"github.com/hotline12345/hotline/calllog"
	"github.com/hotline12345/hotline/internal/redistest"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/ivr/ivrtest"
	"github.com/hotline12345/hotline/prompts"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestFakeConformance runs the conformance suite on the in-memory backend,
// prompts playing 50 times faster than real time.
func TestFakeConformance(t *testing.T) {
	catalog, err := prompts.Default()
	if err != nil {
		t.Fatal(err)
	}
	rdb := redistest.Start(t).Client(t)
	calls := calllog.NewStore(rdb, calllog.StoreOptions{})
	appeals := appeal.NewStore(rdb, appeal.StoreOptions{})
	watch := &ivrtest.RecordWatch{Inner: calls}
	intake := &ivr.Intake{Appeals: appeals, Options: ivr.IntakeOptions{
		FirstDigitTimeout: 100 * time.Millisecond, Tries: 3,
	}}
	runner := &ivr.Runner{
		Catalog: catalog,
		Records: watch,
		Lang:    prompts.Mandarin,
		Backend: "fake",
		Log:     zerolog.New(zerolog.NewTestWriter(t)),
		Metrics: ivr.NewMetrics(nil),
	}
	ivrtest.Run(t, ivrtest.Harness{
		Dial: func(t *testing.T, callerID string, m ivr.DTMFMethod, script caller.Script) caller.Transcript {
			call := ivrtest.NewFakeCall(catalog, callerID, 50)
			done := make(chan struct{})
			go func() {
				defer close(done)
				runner.Serve(context.Background(), call, ivr.TakeAppeal(intake, nil))
			}()
			tr := call.PlayScript(m, script)
			<-done
			return tr
		},
		Records: watch,
		Calls:   calls,
		Appeals: appeals,
		Methods: []ivr.DTMFMethod{ivr.DTMFRFC4733, ivr.DTMFInfo, ivr.DTMFInband},
	})
}

// TestFakeOutboundConformance runs the outbound scenarios on the fake
// dialer.
func TestFakeOutboundConformance(t *testing.T) {
	catalog, err := prompts.Default()
	if err != nil {
		t.Fatal(err)
	}
	watch := &ivrtest.RecordWatch{}
	ivrtest.RunOutbound(t, ivrtest.OutboundHarness{
		Dialer:  ivrtest.FakeDialer{Catalog: catalog, Speed: 50},
		Runner:  &ivr.Runner{Catalog: catalog, Records: watch, Lang: prompts.Mandarin, Backend: "fake", Log: zerolog.New(zerolog.NewTestWriter(t)), Metrics: ivr.NewMetrics(nil)},
		Records: watch,
		Carrier: func(_ *testing.T, _ string, far ivrtest.Far) ivr.TrunkRoute {
			return ivr.TrunkRoute{Name: string(far)}
		},
	})
}

// TestFakeAgentFirstConformance runs the agent-first scenarios on the fake
// dialer and bridge.
func TestFakeAgentFirstConformance(t *testing.T) {
	catalog, err := prompts.Default()
	if err != nil {
		t.Fatal(err)
	}
	phones := &ivrtest.FakePhones{}
	d := ivrtest.FakeDialer{Catalog: catalog, Speed: 50, Phones: phones}
	ivrtest.RunAgentFirst(t, ivrtest.AgentFirstHarness{
		Connector: d,
		Agent: func(_ *testing.T, far ivrtest.Far) (ivr.Agent, ivrtest.FarEnd) {
			user := ivrtest.NewCallerID()
			return ivr.Agent{AgentID: "a-" + user, SIPUser: user}, phones.Add(user, far)
		},
		Citizen: func(_ *testing.T, number string, far ivrtest.Far) (ivr.TrunkRoute, ivrtest.FarEnd) {
			name := "carrier-" + number
			return ivr.TrunkRoute{Name: name, CallerID: "12345"}, phones.Add(name, far)
		},
	})
}
