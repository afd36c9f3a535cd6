package sip

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/internal/redistest"
	"github.com/hotline12345/hotline/internal/sipptest"
	"github.com/hotline12345/hotline/ivr"
	trunks "github.com/hotline12345/hotline/trunk"
)

// TestTrunkFailoverSippCarriers: outbound calls through two carriers
// played by sipp, in the configured order. Carrier A is congested (503 to
// each INVITE), carrier B answers and has one channel. The first call
// fails over from A to B and is answered there; while it lasts B is full,
// so the second fails on A, finds B full and is refused as congestion,
// saying why of each; once the first ends B's channel is free. The
// trunks' figures count what happened on each. The trunks are not probed:
// a trunk whose state is unknown is tried.
func TestTrunkFailoverSippCarriers(t *testing.T) {
	a := sipptest.Serve(t, sipptest.CarrierXML(503, false, "", ""), 2)
	b := sipptest.Serve(t, sipptest.CarrierXML(200, false, "", ""), 1)
	trunk := func(name string, u *sipptest.UAS, channels int) config.Trunk {
		return config.Trunk{Name: name, Host: u.Addr.Addr().String(), Port: int(u.Addr.Port()), Transport: "udp",
			CallerID: "12345", Channels: channels}
	}
	rdb := redistest.Start(t).Client(t)
	ts := trunks.New(rdb, trunks.Options{Trunks: []config.Trunk{trunk("carrier-a", a, 10), trunk("carrier-b", b, 1)}})
	srv := startServer(t, nil)
	d := &trunks.Dialer{Trunks: ts, Backend: srv.Server}
	ctx := t.Context()
	to := ivr.Number{Number: "13900000061"}
	opts := ivr.DialOptions{RingTimeout: 5 * time.Second}

	call, err := d.Dial(ctx, to, opts)
	if err != nil {
		t.Fatalf("the first call: %v\ncarrier A:\n%s\ncarrier B:\n%s", err, a.Output(), b.Output())
	}
	select {
	case <-call.Done():
		t.Fatalf("the first call ended at once: %v", call.Err())
	default:
	}

	_, err = d.Dial(ctx, to, opts)
	if !errors.Is(err, ivr.ErrCongestion) {
		t.Fatalf("the second call, carrier B full: %v, want congestion", err)
	}
	for _, why := range []string{"carrier-a failed the call", "carrier-b 1/1 channels"} {
		if !strings.Contains(err.Error(), why) {
			t.Errorf("the second call's error %q does not say %q", err, why)
		}
	}
	if res := a.Wait(t, 10*time.Second); res.Successful != 2 {
		t.Errorf("carrier A: %d calls refused as scripted, %d failed, want 2\n%s", res.Successful, res.Failed, res.Output)
	}

	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if res := b.Wait(t, 10*time.Second); res.Successful != 1 {
		t.Errorf("carrier B: %d calls, %d failed, want 1 answered and ended\n%s", res.Successful, res.Failed, res.Output)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := ts.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st[1].Channels.Out == 0 {
			if got := st[0].Recent.Out; got.Calls != 2 || got.Failed != 2 || got.Answered != 0 {
				t.Errorf("carrier A's outbound figures %+v, want 2 calls, 2 failed", got)
			}
			if got := st[1].Recent.Out; got.Calls != 1 || got.Answered != 1 || got.ASR == nil || *got.ASR != 1 {
				t.Errorf("carrier B's outbound figures %+v, want 1 call, answered", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("carrier B's channel held after the call ended: %+v", st[1].Channels)
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	waitAgentLegs(t, srv, 0)
}
