package trunk_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/internal/redistest"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/ivr/ivrtest"
	"github.com/hotline12345/hotline/prompts"
	"github.com/hotline12345/hotline/trunk"
)

// carriers is a backend whose trunks answer as told: an error of the
// carrier's, or an answer.
type carriers struct {
	catalog *prompts.Catalog
	mu      sync.Mutex
	fail    map[string]error
	tried   []string
}

func (c *carriers) Dial(_ context.Context, to ivr.Destination, _ ivr.DialOptions) (ivr.Call, error) {
	n := to.(ivr.Number)
	c.mu.Lock()
	c.tried = append(c.tried, n.Trunk.Name)
	err := c.fail[n.Trunk.Name]
	c.mu.Unlock()
	if n.Trunk.Address == "" || n.Trunk.CallerID != "12345" {
		return nil, errors.New("the route lacks the trunk's address or caller id")
	}
	if err != nil {
		return nil, err
	}
	return ivrtest.NewFakeCall(c.catalog, n.Number, 100), nil
}

// TestDialerFailsOver: an outbound call fails over to the next trunk when
// a trunk fails it (congestion, unreachable), not when the called party
// is busy; a full trunk is passed over; the channel is held until the
// call ends; when no trunk can, the error is congestion and says why of
// each.
func TestDialerFailsOver(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	ctx := t.Context()
	catalog, err := prompts.Default()
	if err != nil {
		t.Fatal(err)
	}
	a, b := carrier("carrier-a", 5), carrier("carrier-b", 1)
	a.CallerID, b.CallerID = "12345", "12345"
	ts := trunk.New(rdb, trunk.Options{Trunks: []config.Trunk{a, b}})
	backend := &carriers{catalog: catalog, fail: map[string]error{"carrier-a": ivr.ErrCongestion}}
	d := &trunk.Dialer{Trunks: ts, Backend: backend}
	to := ivr.Number{Number: "13900000051"}

	call, err := d.Dial(ctx, to, ivr.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(backend.tried, ",") != "carrier-a,carrier-b" {
		t.Errorf("tried %v, want carrier-a then carrier-b", backend.tried)
	}
	// carrier-b's one channel is held by the call: the next fails on
	// carrier-a and finds carrier-b full.
	_, err = d.Dial(ctx, to, ivr.DialOptions{})
	if !errors.Is(err, ivr.ErrCongestion) || !strings.Contains(err.Error(), "carrier-a failed the call") || !strings.Contains(err.Error(), "carrier-b 1/1 channels") {
		t.Errorf("with carrier-b full: %v", err)
	}
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	// The channel is freed once the call ended.
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := ts.Status(ctx)
		if err == nil && st[1].Channels.Out == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("carrier-b's channel held after the call ended: %+v %v", st, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	got, err := d.Dial(ctx, to, ivr.DialOptions{})
	if err != nil {
		t.Fatalf("carrier-b freed: %v", err)
	}
	_ = got.Hangup(ctx)

	// Busy is the called party's answer: no failover.
	backend.mu.Lock()
	backend.fail["carrier-a"], backend.tried = ivr.ErrBusy, nil
	backend.mu.Unlock()
	if _, err := d.Dial(ctx, to, ivr.DialOptions{}); !errors.Is(err, ivr.ErrBusy) || len(backend.tried) != 1 {
		t.Errorf("busy: %v after %v", err, backend.tried)
	}
}
