package sip

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/internal/redistest"
	"github.com/hotline12345/hotline/internal/sipptest"
	trunks "github.com/hotline12345/hotline/trunk"
)

// TestTrunkMonitorSippCarrier watches a carrier played by sipp
// (testdata/carrier.xml: 200 to its first four OPTIONS, no answer to the
// next four, 503 to two, 200 after) from two nodes sharing Redis, each
// with its own SIP server. The trunk goes up at the first probe, down at
// the third unanswered one, into maintenance at the first 503 and up at
// the second 200 after it: four events, each once, at the probes the
// hysteresis says.
func TestTrunkMonitorSippCarrier(t *testing.T) {
	// Not parallel: it times the probes to within half an interval.
	carrier := sipptest.StartUAS(t, "testdata/carrier.xml", netip.MustParseAddr("127.0.0.2"), "u1")
	interval := 250 * time.Millisecond
	tr := config.Trunk{Name: "carrier-a", Host: "127.0.0.2", Port: int(carrier.Addr.Port()), Transport: "udp", Channels: 30,
		Probe: config.TrunkProbe{Interval: config.Duration(interval), Timeout: config.Duration(150 * time.Millisecond), DownAfter: 3, UpAfter: 2}}
	node1, node2 := startServer(t, nil), startServer(t, nil)

	// The carrier's first OPTIONS is the test's: it answers once sipp
	// has bound its port. An OPTIONS sent before is lost, and sipp does
	// not count it; a retransmission of the one it answered is absorbed
	// as its call's.
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		r := node1.Probe(ctx, tr)
		cancel()
		if r.Status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the carrier never answered: %+v\n%s", r, carrier.Output())
		}
	}

	rdb := redistest.Start(t).Client(t)
	var mu sync.Mutex
	var got []trunks.Transition
	fourth := make(chan struct{})
	onEvent := func(ev trunks.Transition) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, ev)
		if len(got) == 4 {
			close(fourth)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for i, srv := range []*Server{node1.Server, node2.Server} {
		node := []string{"n1", "n2"}[i]
		ts := trunks.New(rdb, trunks.Options{Trunks: []config.Trunk{tr}})
		m := trunks.NewMonitor(ts, trunks.MonitorOptions{Owner: node + "/1", Node: node, Prober: srv, OnEvent: onEvent,
			Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)})
		wg.Go(func() { m.Run(ctx) })
	}
	select {
	case <-fourth:
	case <-time.After(30 * time.Second):
		mu.Lock()
		t.Errorf("events %+v", got)
		mu.Unlock()
	}
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if t.Failed() {
		return
	}

	type transition struct {
		from, to            trunks.State
		failures, successes int
		probe               int // the monitors' probe it came with, from 1
	}
	want := []transition{
		{trunks.Unknown, trunks.Up, 0, 1, 1},
		{trunks.Up, trunks.Down, 3, 0, 6},          // the third unanswered in a row
		{trunks.Down, trunks.Maintenance, 0, 0, 8}, // the first 503
		{trunks.Maintenance, trunks.Up, 0, 2, 11},  // the second 200 in a row
	}
	if len(got) != len(want) {
		t.Fatalf("%d events %+v, want %d", len(got), got, len(want))
	}
	first := got[0].Probe.At
	for i, w := range want {
		ev := got[i]
		if ev.From != w.from || ev.To != w.to || ev.Failures != w.failures || ev.Successes != w.successes {
			t.Errorf("event %d: %s→%s after %d failures, %d successes; want %+v", i+1, ev.From, ev.To, ev.Failures, ev.Successes, w)
		}
		// The probes go every interval: the probe of an event is where
		// the hysteresis puts it, within half an interval.
		at := first.Add(time.Duration(w.probe-1) * interval)
		if d := ev.Probe.At.Sub(at); d < -interval/2 || d > interval/2 {
			t.Errorf("event %d (%s) came with the probe of %s, %s from probe %d's time", i+1, ev.To, ev.Probe.At.Format("15:04:05.000"), d, w.probe)
		}
		if ev.Node != got[0].Node {
			t.Errorf("event %d raised by %s, the first by %s: one node probes", i+1, ev.Node, got[0].Node)
		}
	}
	if got[1].Probe.Error == "" || got[1].Probe.Status != 0 || got[2].Probe.Status != 503 || got[3].Probe.Status != 200 || got[3].Probe.RTTMillis == nil {
		t.Errorf("the events' probes: %+v %+v %+v", got[1].Probe, got[2].Probe, got[3].Probe)
	}
	n, err := rdb.XLen(context.Background(), "hotline:{trunks}:events").Result()
	if err != nil || n != 4 {
		t.Errorf("%d events in the stream, %v", n, err)
	}
}

// TestTrunkProbeOverTCP: over TCP the probe opens its connection, and a
// carrier that takes no OPTIONS (405) is alive; one not listening fails.
func TestTrunkProbeOverTCP(t *testing.T) {
	carrier := sipptest.StartUAS(t, "testdata/no-options.xml", netip.MustParseAddr("127.0.0.3"), "t1")
	srv := startServer(t, nil)
	tr := config.Trunk{Name: "carrier-b", Host: "127.0.0.3", Port: int(carrier.Addr.Port()), Transport: "tcp",
		Probe: config.TrunkProbe{Timeout: config.Duration(2 * time.Second)}}
	var r trunks.Result
	deadline := time.Now().Add(20 * time.Second)
	for r.Status == 0 && time.Now().Before(deadline) {
		// Refused until sipp listens.
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		r = srv.Probe(ctx, tr)
		cancel()
	}
	if r.Status != 405 || r.RTT <= 0 || r.Verdict() != trunks.Alive {
		t.Fatalf("probe %+v\n%s", r, carrier.Output())
	}
	tr.Port = int(srv.Addr().Port()) + 1000
	tr.Host = "127.0.0.4"
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if r := srv.Probe(ctx, tr); r.Err == nil || r.Verdict() != trunks.Failed {
		t.Errorf("nobody there: %+v", r)
	}
}
