package app_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/callback"
	"github.com/hotline12345/hotline/internal/sipptest"
)

// TestVisitSurvivesKill9: a node killed with SIGKILL while it holds an
// automated visit's lease (its call to the citizen under way) leaves the
// visit to come back when the lease runs out; another node makes it, and
// it is worked once: one attempt, completed.
func TestVisitSurvivesKill9(t *testing.T) {
	t.Parallel()
	r := newCrashRig(t)
	citizen := sipptest.Serve(t, sipptest.PressingXML('1', 20, 1500*time.Millisecond), 10)
	extra := fmt.Sprintf(`callback:
  mode: {livelihood: ivr}
  ivr_calls: 1
  lease: 6s
  days: {monday: ["00:00-24:00"], tuesday: ["00:00-24:00"], wednesday: ["00:00-24:00"], thursday: ["00:00-24:00"], friday: ["00:00-24:00"], saturday: ["00:00-24:00"], sunday: ["00:00-24:00"]}
trunks:
  - {name: carrier, host: %s, port: %d, transport: udp, caller_id: "12345", channels: 4, endpoint: carrier,
     probe: {interval: 1h, timeout: 1s, down_after: 3, up_after: 1}}
`, citizen.Addr.Addr(), citizen.Addr.Port())
	ctx := t.Context()
	appeals := appeal.NewStore(r.rdb, appeal.StoreOptions{})
	visits := callback.NewStore(r.rdb, callback.StoreOptions{})
	// An appeal taken a month ago: its processing time has expired.
	a, err := appeals.Create(ctx, appeal.New{CallID: "kill-visit", Caller: "13900000091", Category: appeal.Livelihood,
		Consent: appeal.Consent{Given: true}, At: time.Now().Add(-30 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	first := r.startWith("n1", 15*time.Second, extra)
	// The visit is taken by n1's caller, under way.
	deadline := time.Now().Add(30 * time.Second)
	for {
		vs, _, err := visits.List(ctx, callback.Leased, 10, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(vs) == 1 && vs[0].ID == a.ID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the visit was not taken by n1: %+v", vs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	first.kill(t)
	r.startWith("n2", 15*time.Second, extra)
	deadline = time.Now().Add(60 * time.Second)
	var v callback.Visit
	for {
		if v, err = visits.Get(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
		if v.State != callback.Waiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the visit did not end: %+v\ncitizen:\n%s", v, citizen.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if v.State != callback.Done || len(v.Attempts) != 1 || !strings.HasPrefix(v.Attempts[0].By, "ivr@") || strings.Contains(v.Attempts[0].By, first.instance) {
		t.Errorf("visit %+v: want completed once, by n2 (n1 is %s)", v, first.instance)
	}
	changes, err := visits.Changes(ctx, 20)
	if err != nil {
		t.Fatal(err)
	}
	var back bool
	for _, c := range changes {
		back = back || c.Visit == a.ID && strings.Contains(c.What, "lease ran out")
	}
	if !back {
		t.Errorf("no lease ran out in the audit: %+v", changes)
	}
}
