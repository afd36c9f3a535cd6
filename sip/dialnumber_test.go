package sip

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/internal/sipptest"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/ivr/ivrtest"
	"github.com/hotline12345/hotline/prompts"
)

// carrierRoute is the trunk to a sipp carrier.
func carrierRoute(u *sipptest.UAS, user, password string) ivr.TrunkRoute {
	return ivr.TrunkRoute{Name: "carrier-a", Address: u.Addr.String(), Transport: "udp", CallerID: "12345", Username: user, Password: password}
}

// TestDialNumberThroughATrunk: a call of its own (no parent) to a number
// through a trunk: the carrier asks for digest credentials, rings, and
// answers; the leg is a call a flow can run on, and hanging it up ends
// the carrier's side.
func TestDialNumberThroughATrunk(t *testing.T) {
	carrier := sipptest.Serve(t, sipptest.CarrierXML(200, true, "02512345", "trunk-secret"), 1, "-trace_msg")
	ts := startServer(t, nil)
	leg, err := ts.Dial(context.Background(), ivr.Number{Number: "13900000031", Trunk: carrierRoute(carrier, "02512345", "trunk-secret")},
		ivr.DialOptions{RingTimeout: 5 * time.Second})
	if err != nil {
		res := carrier.Wait(t, 10*time.Second)
		t.Fatal(err, res.Output)
	}
	if leg.Caller() != "13900000031" || leg.Dialled() != "13900000031" {
		t.Errorf("the leg's caller %q, dialled %q: want the number", leg.Caller(), leg.Dialled())
	}
	select {
	case <-leg.Done():
		t.Fatalf("the leg ended at once: %v", leg.Err())
	default:
	}
	if err := leg.Hangup(context.Background()); err != nil {
		t.Fatal(err)
	}
	if res := carrier.Wait(t, 10*time.Second); res.Successful != 1 {
		t.Errorf("the carrier's call: %d successful, %d failed\n%s", res.Successful, res.Failed, res.Output)
	}
	waitAgentLegs(t, ts, 0)
}

// TestDialNumberFailures: the carrier's refusals are told apart: busy,
// declined, congestion; a number that rings out is withdrawn (CANCEL) as
// no answer; wrong credentials leave it unreachable.
func TestDialNumberFailures(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	for _, tc := range []struct {
		name      string
		final     int
		challenge bool
		password  string
		want      error
	}{
		{"busy", 486, false, "", ivr.ErrBusy},
		{"declined", 603, false, "", ivr.ErrRejected},
		{"congestion", 503, false, "", ivr.ErrCongestion},
		{"no answer", 0, false, "", ivr.ErrRangOut},
	} {
		t.Run(tc.name, func(t *testing.T) {
			carrier := sipptest.Serve(t, sipptest.CarrierXML(tc.final, tc.challenge, "u", tc.password), 1)
			_, err := ts.Dial(context.Background(), ivr.Number{Number: "13900000032", Trunk: carrierRoute(carrier, "", "")},
				ivr.DialOptions{RingTimeout: 2 * time.Second})
			if !errors.Is(err, tc.want) {
				t.Fatalf("Dial: %v, want %v", err, tc.want)
			}
			for _, other := range []error{ivr.ErrBusy, ivr.ErrRejected, ivr.ErrCongestion, ivr.ErrRangOut, ivr.ErrUnreachable} {
				if other != tc.want && errors.Is(err, other) {
					t.Errorf("Dial: %v is also %v", err, other)
				}
			}
			if res := carrier.Wait(t, 10*time.Second); res.Successful != 1 {
				t.Errorf("the carrier's side: %d successful, %d failed\n%s", res.Successful, res.Failed, res.Output)
			}
			waitAgentLegs(t, ts, 0)
		})
	}
}

// TestOutboundConformance runs the outbound scenarios on the embedded
// backend, sipp as the carrier of each call.
func TestOutboundConformance(t *testing.T) {
	ts := startServer(t, nil)
	catalog := defaultCatalog(t)
	watch := &ivrtest.RecordWatch{}
	ivrtest.RunOutbound(t, ivrtest.OutboundHarness{
		Dialer:  ts.Server,
		Runner:  &ivr.Runner{Catalog: catalog, Records: watch, Lang: prompts.Mandarin, Backend: "sip", Log: zerolog.New(zerolog.NewTestWriter(t)), Metrics: ivr.NewMetrics(nil)},
		Records: watch,
		Carrier: func(t *testing.T, _ string, far ivrtest.Far) ivr.TrunkRoute {
			if far == ivrtest.Nowhere {
				// A TCP port nothing listens on: the connection is refused.
				return ivr.TrunkRoute{Name: "nowhere", Address: "127.0.0.1:9", Transport: "tcp", CallerID: "12345"}
			}
			final := map[ivrtest.Far]int{ivrtest.Answers: 200, ivrtest.Busy: 486, ivrtest.Declines: 603, ivrtest.Congested: 503, ivrtest.NoAnswer: 0}[far]
			carrier := sipptest.Serve(t, sipptest.CarrierXML(final, false, "", ""), 1)
			// The carrier ends its side (the CANCEL and its 487, the ACK of
			// a refusal) before it goes away with the test.
			t.Cleanup(func() {
				if res := carrier.Wait(t, 10*time.Second); res.Successful != 1 {
					t.Errorf("the carrier's side: %d successful, %d failed\n%s", res.Successful, res.Failed, res.Output)
				}
			})
			return carrierRoute(carrier, "", "")
		},
	})
}
