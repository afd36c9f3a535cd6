package trunk_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/internal/redistest"
	"github.com/hotline12345/hotline/internal/testclock"
	"github.com/hotline12345/hotline/trunk"
)

// TestChannels: a trunk's channel limit holds in and out together and
// across nodes; a release frees a channel, once; the calls of the last 15
// minutes and the answer-seizure ratio follow the seizures and how they
// went. On every Redis deployment: the scripts' keys share a slot.
func TestChannels(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := t.Context()
		clock := testclock.New(time.Date(2026, 11, 27, 10, 0, 0, 0, beijing))
		opts := trunk.Options{Trunks: []config.Trunk{carrier("carrier-a", 3)}, Now: clock.Now, Location: beijing}
		node1, node2 := trunk.New(rdb, opts), trunk.New(rdb, opts)
		in, err := node1.Acquire(ctx, "carrier-a", trunk.In)
		if err != nil {
			t.Fatal(err)
		}
		out1, err := node2.Acquire(ctx, "carrier-a", trunk.Out)
		if err != nil {
			t.Fatal(err)
		}
		out2, err := node1.Acquire(ctx, "carrier-a", trunk.Out)
		if err != nil {
			t.Fatal(err)
		}
		_, err = node2.Acquire(ctx, "carrier-a", trunk.In)
		var full *trunk.FullError
		if !errors.As(err, &full) || !errors.Is(err, trunk.ErrFull) || full.In != 1 || full.Out != 2 || full.Limit != 3 ||
			!strings.Contains(err.Error(), "carrier-a") || !strings.Contains(err.Error(), "limit 3") {
			t.Fatalf("a fourth channel of three: %v", err)
		}
		if _, err := node1.Acquire(ctx, "carrier-x", trunk.Out); !errors.Is(err, trunk.ErrUnknownTrunk) {
			t.Errorf("an unknown trunk: %v", err)
		}

		clock.Add(20 * time.Second)
		if err := in.Answered(ctx); err != nil {
			t.Fatal(err)
		}
		if err := in.Answered(ctx); err != nil { // once
			t.Fatal(err)
		}
		if err := out1.Release(ctx, trunk.OutcomeFailed); err != nil {
			t.Fatal(err)
		}
		if err := out1.Release(ctx, trunk.OutcomeFailed); err != nil { // once
			t.Fatal(err)
		}
		st, err := node2.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c := st[0].Channels
		if c.In != 1 || c.Out != 1 || c.Limit != 3 {
			t.Errorf("channels %+v, want 1 in, 1 out of 3", c)
		}
		// The freed channel is taken again, from the other node.
		out3, err := node2.Acquire(ctx, "carrier-a", trunk.Out)
		if err != nil {
			t.Fatal(err)
		}
		if err := out3.Answered(ctx); err != nil {
			t.Fatal(err)
		}
		for _, ch := range []*trunk.Channel{in, out2, out3} {
			if err := ch.Release(ctx, trunk.OutcomeUnanswered); err != nil {
				t.Fatal(err)
			}
		}
		st, err = node1.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		r := st[0].Recent
		if c := st[0].Channels; c.In != 0 || c.Out != 0 {
			t.Errorf("channels after the calls %+v", c)
		}
		// In: 1 call, answered. Out: 3 calls, 1 failed, 1 unanswered, 1
		// answered.
		if r.Minutes != 15 || r.In.Calls != 1 || r.In.Answered != 1 || r.Out.Calls != 3 || r.Out.Answered != 1 ||
			r.Out.Failed != 1 || r.Out.Unanswered != 1 || r.Total.Calls != 4 || r.Total.Answered != 2 {
			t.Errorf("figures %+v", r)
		}
		if r.Total.ASR == nil || *r.Total.ASR != 0.5 || r.Out.ASR == nil || *r.Out.ASR != 1.0/3 || r.In.ASR == nil || *r.In.ASR != 1 {
			t.Errorf("ASR %+v", r)
		}
		// The window moves on: the minute of those calls is out of it.
		clock.Add(14 * time.Minute)
		if st, err = node1.Status(ctx); err != nil || st[0].Recent.Total.Calls != 4 {
			t.Errorf("14 minutes later: %+v %v", st, err)
		}
		clock.Add(time.Minute)
		if st, err = node1.Status(ctx); err != nil || st[0].Recent.Total.Calls != 0 || st[0].Recent.Total.ASR != nil {
			t.Errorf("15 minutes later: %+v %v", st[0].Recent, err)
		}
		// Redis drops them 17 minutes after their minute began at most.
		for _, k := range redistest.Keys(t, rdb, "hotline:{trunks}:minute:*") {
			if ttl := rdb.PTTL(ctx, k).Val(); ttl <= 0 || ttl > 17*time.Minute {
				t.Errorf("%s kept %s", k, ttl)
			}
		}
	})
}

// TestChannelLease: the channels of a node that stopped renewing them
// (crashed) are free once their lease ran out; a node that renews keeps
// them.
func TestChannelLease(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	ctx := t.Context()
	clock := testclock.New(time.Date(2026, 11, 27, 10, 0, 0, 0, beijing))
	opts := trunk.Options{Trunks: []config.Trunk{carrier("carrier-a", 1)}, Now: clock.Now, ChannelLease: time.Minute}
	crashed, alive := trunk.New(rdb, opts), trunk.New(rdb, opts)
	if _, err := crashed.Acquire(ctx, "carrier-a", trunk.Out); err != nil {
		t.Fatal(err)
	}
	clock.Add(59 * time.Second)
	if _, err := alive.Acquire(ctx, "carrier-a", trunk.Out); !errors.Is(err, trunk.ErrFull) {
		t.Fatalf("within the lease: %v", err)
	}
	clock.Add(time.Second)
	held, err := alive.Acquire(ctx, "carrier-a", trunk.Out)
	if err != nil {
		t.Fatalf("after the lease: %v", err)
	}
	if err := held.Answered(ctx); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		clock.Add(45 * time.Second)
		if err := alive.Renew(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := crashed.Acquire(ctx, "carrier-a", trunk.In); !errors.Is(err, trunk.ErrFull) {
			t.Fatalf("a renewed channel taken: %v", err)
		}
	}
	if err := held.Release(ctx, trunk.OutcomeUnanswered); err != nil {
		t.Fatal(err)
	}
	if err := alive.Renew(ctx); err != nil { // does not bring it back
		t.Fatal(err)
	}
	if _, err := crashed.Acquire(ctx, "carrier-a", trunk.In); err != nil {
		t.Fatalf("after the release: %v", err)
	}
}

// TestPick: an outbound call takes the first usable trunk with a free
// channel, in the configured order: it fails over past a trunk down, in
// maintenance or full, and says why of each when none can.
func TestPick(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	ctx := t.Context()
	clock := testclock.New(time.Date(2026, 11, 27, 10, 2, 5, 0, beijing))
	a, b, c := carrier("carrier-a", 5), carrier("carrier-b", 1), carrier("carrier-c", 2)
	a.Probe.DownAfter = 1
	ts := trunk.New(rdb, trunk.Options{Trunks: []config.Trunk{a, b, c}, Now: clock.Now, Location: beijing})
	m := trunk.NewMonitor(ts, trunk.MonitorOptions{Owner: "n1/1", Node: "n1", Prober: trunk.ProberFunc(func(_ context.Context, tr config.Trunk) trunk.Result {
		return map[string]trunk.Result{"carrier-a": silent, "carrier-b": ok, "carrier-c": busy}[tr.Name]
	}), Log: zerolog.Nop()})

	// Before any probe every trunk is usable: the first is taken.
	ch, err := ts.Pick(ctx)
	if err != nil || ch.Trunk.Name != "carrier-a" || ch.Direction != trunk.Out {
		t.Fatalf("before the probes: %+v %v", ch, err)
	}
	if err := ch.Release(ctx, trunk.OutcomeUnanswered); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"carrier-a", "carrier-b", "carrier-c"} {
		if _, _, err := m.Probe(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	// carrier-a is down, carrier-b up, carrier-c in maintenance.
	ch, err = ts.Pick(ctx)
	if err != nil || ch.Trunk.Name != "carrier-b" {
		t.Fatalf("carrier-a down: %+v %v", ch, err)
	}
	clock.Add(time.Minute)
	_, err = ts.Pick(ctx)
	var none *trunk.NoTrunkError
	if !errors.As(err, &none) || !errors.Is(err, trunk.ErrNoTrunk) || len(none.Refusals) != 3 {
		t.Fatalf("none can: %v", err)
	}
	want := "no trunk can take the call: carrier-a down since 10:02:05, carrier-b 1/1 channels, carrier-c maintenance since 10:02:05"
	if err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if err := ch.Release(ctx, trunk.OutcomeUnanswered); err != nil {
		t.Fatal(err)
	}
	if ch, err = ts.Pick(ctx); err != nil || ch.Trunk.Name != "carrier-b" {
		t.Errorf("carrier-b freed: %+v %v", ch, err)
	}
	if _, err := trunk.New(rdb, trunk.Options{}).Pick(ctx); !errors.Is(err, trunk.ErrNoTrunk) || !strings.Contains(err.Error(), "no trunk is configured") {
		t.Errorf("without trunks: %v", err)
	}
}
