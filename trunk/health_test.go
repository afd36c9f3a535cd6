package trunk_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/trunk"
)

// TestVerdict: any final response but a server error means the peer is
// there; 503 is maintenance; no response and other 5xx are failures.
func TestVerdict(t *testing.T) {
	for _, tc := range []struct {
		r    trunk.Result
		want trunk.Verdict
	}{
		{trunk.Result{Status: 200, RTT: time.Millisecond}, trunk.Alive},
		{trunk.Result{Status: 404}, trunk.Alive},
		{trunk.Result{Status: 405}, trunk.Alive},
		{trunk.Result{Status: 403}, trunk.Alive},
		{trunk.Result{Status: 481}, trunk.Alive},
		{trunk.Result{Status: 603}, trunk.Alive},
		{trunk.Result{Status: 503}, trunk.Unavailable},
		{trunk.Result{Status: 500}, trunk.Failed},
		{trunk.Result{Status: 501}, trunk.Failed},
		{trunk.Result{Status: 502}, trunk.Failed},
		{trunk.Result{Status: 504}, trunk.Failed},
		{trunk.Result{Err: context.DeadlineExceeded}, trunk.Failed},
		{trunk.Result{Err: errors.New("connection refused")}, trunk.Failed},
		{trunk.Result{}, trunk.Failed},
		{trunk.Result{Status: 180}, trunk.Failed},
	} {
		if got := tc.r.Verdict(); got != tc.want {
			t.Errorf("%+v: verdict %d, want %d", tc.r, got, tc.want)
		}
	}
}

// TestNext walks the state machine through sequences of probes: each step
// names the verdict and the state after it.
func TestNext(t *testing.T) {
	p := config.TrunkProbe{DownAfter: 3, UpAfter: 2}
	const (
		ok   = trunk.Alive
		fail = trunk.Failed
		busy = trunk.Unavailable
	)
	type step struct {
		v    trunk.Verdict
		want trunk.State
	}
	for _, tc := range []struct {
		name  string
		from  trunk.State
		steps []step
	}{
		{"unknown is up at the first live probe", trunk.Unknown, []step{{ok, trunk.Up}, {ok, trunk.Up}}},
		{"unknown is down at the third failure", trunk.Unknown, []step{{fail, trunk.Unknown}, {fail, trunk.Unknown}, {fail, trunk.Down}}},
		{"down exactly at the third failure in a row", trunk.Up, []step{
			{fail, trunk.Up}, {fail, trunk.Up}, {fail, trunk.Down}, {fail, trunk.Down}}},
		{"a live probe between failures starts them again", trunk.Up, []step{
			{fail, trunk.Up}, {fail, trunk.Up}, {ok, trunk.Up}, {fail, trunk.Up}, {fail, trunk.Up}, {fail, trunk.Down}}},
		{"up after two live probes in a row", trunk.Down, []step{{ok, trunk.Down}, {ok, trunk.Up}}},
		{"a failure between live probes starts them again", trunk.Down, []step{
			{ok, trunk.Down}, {fail, trunk.Down}, {ok, trunk.Down}, {ok, trunk.Up}}},
		{"503 is maintenance at once", trunk.Up, []step{{busy, trunk.Maintenance}, {busy, trunk.Maintenance}}},
		{"503 from down", trunk.Down, []step{{busy, trunk.Maintenance}}},
		{"503 from unknown", trunk.Unknown, []step{{busy, trunk.Maintenance}}},
		{"maintenance needs two live probes too", trunk.Maintenance, []step{{ok, trunk.Maintenance}, {ok, trunk.Up}}},
		{"503 between live probes keeps maintenance", trunk.Maintenance, []step{
			{ok, trunk.Maintenance}, {busy, trunk.Maintenance}, {ok, trunk.Maintenance}, {ok, trunk.Up}}},
		{"maintenance that stops answering is down", trunk.Maintenance, []step{
			{fail, trunk.Maintenance}, {fail, trunk.Maintenance}, {fail, trunk.Down}}},
		{"503 starts the failures again", trunk.Up, []step{
			{fail, trunk.Up}, {fail, trunk.Up}, {busy, trunk.Maintenance}, {fail, trunk.Maintenance}, {fail, trunk.Maintenance}, {fail, trunk.Down}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := trunk.Health{State: tc.from}
			for i, s := range tc.steps {
				h = trunk.Next(p, h, s.v)
				if h.State != s.want {
					t.Fatalf("step %d (verdict %d): %s, want %s", i+1, s.v, h.State, s.want)
				}
			}
		})
	}
}

// TestNextCounts: the counters say how many probes in a row led to a
// state, so that an event can tell it.
func TestNextCounts(t *testing.T) {
	p := config.TrunkProbe{DownAfter: 1, UpAfter: 5}
	h := trunk.Next(p, trunk.Health{State: trunk.Up}, trunk.Failed)
	if h != (trunk.Health{State: trunk.Down, Failures: 1}) {
		t.Errorf("one failure with down_after 1: %+v", h)
	}
	for range 4 {
		h = trunk.Next(p, h, trunk.Alive)
	}
	if h != (trunk.Health{State: trunk.Down, Successes: 4}) {
		t.Errorf("four live probes: %+v", h)
	}
	if h = trunk.Next(p, h, trunk.Alive); h != (trunk.Health{State: trunk.Up, Successes: 5}) {
		t.Errorf("five live probes: %+v", h)
	}
}
