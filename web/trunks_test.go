package web_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/acd"
	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/trunk"
	"github.com/hotline12345/hotline/web"
)

// trunksLater is the rig's trunks, made once the rig's Redis is there.
type trunksLater struct{ *trunk.Trunks }

// TestTrunks: ops, admins and supervisors see the trunks in their order,
// with state, since, last probe, channels and figures; ops and admins
// page through their events.
func TestTrunks(t *testing.T) {
	later := &trunksLater{}
	r := startRig(t, func(o *web.Options, _ *acd.Distributor) { o.Trunks = later })
	probe := config.TrunkProbe{Interval: config.Duration(30 * time.Second), Timeout: config.Duration(5 * time.Second), DownAfter: 1, UpAfter: 1}
	a := config.Trunk{Name: "carrier-a", Host: "sip.carrier-a.example", Port: 5060, Transport: "udp", Channels: 2, Probe: probe}
	b := config.Trunk{Name: "carrier-b", Host: "192.0.2.10", Port: 5061, Transport: "tls", Channels: 30, Register: true, Probe: probe}
	later.Trunks = trunk.New(r.rdb, trunk.Options{Trunks: []config.Trunk{a, b}, Now: r.clock.Now, Location: beijing})
	answers := map[string][]trunk.Result{
		"carrier-a": {{Status: 200, RTT: 12 * time.Millisecond}, {Err: context.DeadlineExceeded}, {Status: 200, RTT: 9 * time.Millisecond}},
		"carrier-b": {{Status: 503, RTT: time.Millisecond}},
	}
	m := trunk.NewMonitor(later.Trunks, trunk.MonitorOptions{Owner: "n1/1", Node: "n1", Log: zerolog.Nop(),
		Prober: trunk.ProberFunc(func(_ context.Context, tr config.Trunk) trunk.Result {
			res := answers[tr.Name][0]
			if len(answers[tr.Name]) > 1 {
				answers[tr.Name] = answers[tr.Name][1:]
			}
			return res
		})})
	for _, name := range []string{"carrier-a", "carrier-b", "carrier-a", "carrier-a"} {
		r.clock.Add(30 * time.Second)
		if _, _, err := m.Probe(r.ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	ch, err := later.Acquire(r.ctx, "carrier-a", trunk.Out)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Answered(r.ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := later.Acquire(r.ctx, "carrier-a", trunk.In); err != nil {
		t.Fatal(err)
	}

	ops := r.mint(auth.TokenSpec{Roles: []auth.Role{auth.Ops}, TTL: time.Hour})
	var list web.TrunkList
	body := r.doAs(ops, "GET", "/api/v1/trunks", "", http.StatusOK, &list)
	if len(list.Trunks) != 2 || list.Trunks[0].Name != "carrier-a" || list.Trunks[1].Name != "carrier-b" {
		t.Fatalf("trunks %s", body)
	}
	sa, sb := list.Trunks[0], list.Trunks[1]
	if sa.State != trunk.Up || sa.Since == nil || !sa.Since.Equal(r.clock.Now()) || sa.LastProbe == nil || sa.LastProbe.Status != 200 ||
		sa.LastProbe.RTTMillis == nil || *sa.LastProbe.RTTMillis != 9 || sa.Address != "sip.carrier-a.example:5060" ||
		sa.Channels != (trunk.Channels{In: 1, Out: 1, Limit: 2}) || sa.Registration != trunk.RegistrationOff ||
		sa.Recent.Total.Calls != 2 || sa.Recent.Out.Answered != 1 || sa.Recent.Out.ASR == nil || *sa.Recent.Out.ASR != 1 {
		t.Errorf("carrier-a %s", body)
	}
	if sb.State != trunk.Maintenance || sb.Transport != "tls" || sb.Registration != trunk.NotRegistering || sb.Recent.Total.ASR != nil {
		t.Errorf("carrier-b %s", body)
	}
	if !strings.Contains(body, `"since": "2026-11-27T10:02:00+08:00"`) {
		t.Errorf("since not in the hotline's zone: %s", body)
	}
	for _, role := range []auth.Role{auth.Admin, auth.Supervisor} {
		r.doAs(r.mint(auth.TokenSpec{Roles: []auth.Role{role}, TTL: time.Hour}), "GET", "/api/v1/trunks", "", http.StatusOK, nil)
	}
	visitor := r.mint(auth.TokenSpec{Roles: []auth.Role{auth.Visitor}, TTL: time.Hour})
	r.doAs(visitor, "GET", "/api/v1/trunks", "", http.StatusForbidden, nil)

	var page web.Page[trunk.Transition]
	r.doAs(ops, "GET", "/api/v1/trunks/events?limit=3", "", http.StatusOK, &page)
	if len(page.Items) != 3 || page.NextCursor == "" || page.Items[0].Trunk != "carrier-a" || page.Items[0].To != trunk.Up ||
		page.Items[1].To != trunk.Down || page.Items[2].To != trunk.Maintenance {
		t.Fatalf("events %+v", page)
	}
	var rest web.Page[trunk.Transition]
	r.doAs(ops, "GET", "/api/v1/trunks/events?limit=3&cursor="+page.NextCursor, "", http.StatusOK, &rest)
	if len(rest.Items) != 1 || rest.NextCursor != "" || rest.Items[0].From != trunk.Unknown {
		t.Errorf("second page %+v", rest)
	}
	r.fails("GET", "/api/v1/trunks/events?cursor=nonsense", "", http.StatusBadRequest)
	sup := r.mint(auth.TokenSpec{Roles: []auth.Role{auth.Supervisor}, TTL: time.Hour})
	r.doAs(sup, "GET", "/api/v1/trunks/events", "", http.StatusForbidden, nil)
}

// TestTrunksNone: a hotline without trunks lists none.
func TestTrunksNone(t *testing.T) {
	r := startRig(t, nil)
	var list web.TrunkList
	r.do("GET", "/api/v1/trunks", "", http.StatusOK, &list)
	var page web.Page[trunk.Transition]
	r.do("GET", "/api/v1/trunks/events", "", http.StatusOK, &page)
	if list.Trunks == nil || len(list.Trunks) != 0 || page.Items == nil || len(page.Items) != 0 {
		t.Errorf("%+v %+v", list, page)
	}
}
