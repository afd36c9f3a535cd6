package asterisk_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/asterisk"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/internal/asterisktest"
	"github.com/hotline12345/hotline/internal/redistest"
	"github.com/hotline12345/hotline/internal/sipptest"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/ivr/ivrtest"
	"github.com/hotline12345/hotline/prompts"
	"github.com/hotline12345/hotline/trunk"
)

// TestOutboundConformanceOnAsterisk runs the outbound scenarios on a real
// Asterisk 22: each far end is a sipp carrier behind a PJSIP trunk
// endpoint of its own (as asterisk-conf's example trunk, without its
// OPTIONS qualify, which sipp would take for a call), and hotline
// originates PJSIP/<number>@<trunk> over ARI.
func TestOutboundConformanceOnAsterisk(t *testing.T) {
	t.Parallel()
	finals := map[ivrtest.Far]int{ivrtest.Answers: 200, ivrtest.Busy: 486, ivrtest.Declines: 603, ivrtest.Congested: 503, ivrtest.NoAnswer: 0}
	var conf strings.Builder
	endpoints := map[ivrtest.Far]string{ivrtest.Nowhere: "no-such-trunk"}
	for far, final := range finals {
		carrier := sipptest.Serve(t, sipptest.CarrierXML(final, false, "", ""), 1)
		name := "carrier-" + strings.ReplaceAll(string(far), " ", "-")
		endpoints[far] = name
		fmt.Fprintf(&conf, "\n[%[1]s](trunk-endpoint)\naors = %[1]s\n\n[%[1]s]\ntype = aor\ncontact = sip:%[2]s\n", name, carrier.Addr)
		t.Cleanup(func() {
			if res := carrier.Wait(t, 20*time.Second); res.Successful != 1 {
				t.Errorf("carrier %s: %d successful, %d failed\n%s", name, res.Successful, res.Failed, res.Output)
			}
		})
	}
	a := asterisktest.Start(t, asterisktest.Options{Append: map[string]string{"pjsip.conf": conf.String()}})
	catalog, err := prompts.Default()
	if err != nil {
		t.Fatal(err)
	}
	b := runOn(t, a)
	watch := &ivrtest.RecordWatch{}
	ivrtest.RunOutbound(t, ivrtest.OutboundHarness{
		Dialer:  b,
		Runner:  &ivr.Runner{Catalog: catalog, Records: watch, Lang: prompts.Mandarin, Backend: "asterisk", Log: zerolog.New(zerolog.NewTestWriter(t)), Metrics: ivr.NewMetrics(nil)},
		Records: watch,
		Carrier: func(_ *testing.T, _ string, far ivrtest.Far) ivr.TrunkRoute {
			return ivr.TrunkRoute{Name: endpoints[far], Endpoint: endpoints[far], CallerID: "12345"}
		},
	})
}

// optionsXML answers every OPTIONS with 200, as a carrier's SBC does.
const optionsXML = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="answers OPTIONS">
  <recv request="OPTIONS"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
</scenario>
`

// TestProbeOnAsterisk: on a real Asterisk 22 a trunk's health is what its
// qualify found: a carrier answering OPTIONS is up, one that does not is
// down, and one whose qualify starts failing (its carrier goes away) goes
// up and then down, once each, as the monitor's hysteresis says.
func TestProbeOnAsterisk(t *testing.T) {
	t.Parallel()
	carrier := sipptest.Serve(t, optionsXML, 100000)
	failing := sipptest.Serve(t, optionsXML, 100000)
	conf := fmt.Sprintf(`
[probe-live](trunk-endpoint)
aors = probe-live

[probe-live]
type = aor
contact = sip:%s
qualify_frequency = 1
qualify_timeout = 0.5

[probe-dead](trunk-endpoint)
aors = probe-dead

[probe-dead]
type = aor
contact = sip:127.0.0.1:9
qualify_frequency = 1
qualify_timeout = 0.5

[probe-failing](trunk-endpoint)
aors = probe-failing

[probe-failing]
type = aor
contact = sip:%s
qualify_frequency = 1
qualify_timeout = 0.5
`, carrier.Addr, failing.Addr)
	a := asterisktest.Start(t, asterisktest.Options{Append: map[string]string{"pjsip.conf": conf}})
	b := runOn(t, a)

	// The monitor reads the failing trunk's state from Asterisk every
	// quarter second.
	tr := config.Trunk{Name: "probe-failing", Endpoint: "probe-failing", Channels: 1,
		Probe: config.TrunkProbe{Interval: config.Duration(250 * time.Millisecond), Timeout: config.Duration(time.Second), DownAfter: 3, UpAfter: 2}}
	rdb := redistest.Start(t).Client(t)
	ts := trunk.New(rdb, trunk.Options{Trunks: []config.Trunk{tr}})
	var mu sync.Mutex
	var events []trunk.Transition
	m := trunk.NewMonitor(ts, trunk.MonitorOptions{Owner: "n1/1", Node: "n1", Prober: b,
		OnEvent: func(ev trunk.Transition) {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, ev)
		},
		Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)})
	// Asterisk shows an endpoint offline until its first qualify: the
	// monitor starts once the failing trunk's carrier has answered one,
	// or a busy machine sees it down before it was ever up.
	deadline := time.Now().Add(40 * time.Second)
	for b.Probe(t.Context(), tr).Verdict() != trunk.Alive {
		if time.Now().After(deadline) {
			t.Fatal("Asterisk never qualified the failing trunk's carrier")
		}
		time.Sleep(100 * time.Millisecond)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { m.Run(ctx) })
	defer wg.Wait()
	defer cancel()

	live, dead, stopped := false, false, false
	for {
		if !live || !dead {
			l := b.Probe(t.Context(), config.Trunk{Name: "probe-live", Endpoint: "probe-live"})
			d := b.Probe(t.Context(), config.Trunk{Name: "probe-dead", Endpoint: "probe-dead"})
			live = live || l.Verdict() == trunk.Alive
			dead = dead || (d.Verdict() == trunk.Failed && !errors.Is(d.Err, trunk.ErrNotProbed))
		}
		st, err := ts.Status(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		// Up: its carrier goes away.
		if !stopped && st[0].State == trunk.Up {
			failing.Stop()
			stopped = true
		}
		// Down, and ten failed probes after: no event but the two.
		if live && dead && st[0].State == trunk.Down && st[0].Failures >= 10 {
			break
		}
		if time.Now().After(deadline) {
			mu.Lock()
			t.Fatalf("live %v, dead %v; the failing trunk %+v after events %+v", live, dead, st[0], events)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 2 || events[0].From != trunk.Unknown || events[0].To != trunk.Up ||
		events[1].From != trunk.Up || events[1].To != trunk.Down || events[1].Failures != 3 {
		t.Fatalf("events %+v, want unknown→up, then up→down after 3 failures", events)
	}
}

// runOn runs the ARI backend against a, taking no calls of its own.
func runOn(t *testing.T, a *asterisktest.Asterisk) *asterisk.Backend {
	t.Helper()
	return runBackendAt(t, a.ARI, asterisktest.Username, asterisktest.Password, func(context.Context, ivr.Call) {})
}
