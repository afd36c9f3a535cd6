package main

import (
	"context"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/auth"
	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/internal/hotlinetest"
	"github.com/hotline12345/hotline/internal/sipptest"
	"github.com/hotline12345/hotline/trunk"
	"github.com/hotline12345/hotline/web"
)

// registrarXML is a carrier's registrar that grants a registration for
// an hour, then takes its removal.
const registrarXML = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="registrar">
  <recv request="REGISTER" />
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      [last_Contact:];expires=3600
      Content-Length: 0
    ]]>
  </send>
  <recv request="REGISTER" />
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

// TestTrunksCommand: a hotline with two trunks, one a carrier played by
// sipp that answers its probes, the other a registrar played by sipp that
// nobody probes (it does not answer OPTIONS) and that the hotline
// registers with: "hotline trunks" shows them in their order, the first
// up once its probe came back, the second registered, and "hotline
// trunks events" shows the first coming up and the second registering.
func TestTrunksCommand(t *testing.T) {
	t.Parallel()
	carrier := sipptest.StartUAS(t, "testdata/carrier.xml", netip.MustParseAddr("127.0.0.2"), "u1")
	// The registrar's probes are calls of their own, which its scenario
	// does not take: it serves many, the registration being one.
	registrar := sipptest.Serve(t, registrarXML, 1000)
	probe := config.TrunkProbe{Interval: config.Duration(time.Second), Timeout: config.Duration(500 * time.Millisecond), DownAfter: 3, UpAfter: 2}
	h := hotlinetest.Start(t, func(c *config.Config) {
		c.Trunks = []config.Trunk{
			{Name: "carrier-a", Host: "127.0.0.2", Port: int(carrier.Addr.Port()), Transport: "udp", Channels: 30, Endpoint: "carrier-a", Probe: probe},
			{Name: "carrier-b", Host: "127.0.0.1", Port: int(registrar.Addr.Port()), Transport: "udp", Channels: 10, Endpoint: "carrier-b", Probe: probe,
				Username: "02512345", Password: "secret-secret", Register: true, RegisterExpiry: config.Duration(time.Hour)},
		}
	})
	env := environ{"HOTLINE_API": h.API(), "HOTLINE_TOKEN": h.Token(t, auth.Ops)}
	waitTransition(t, h.Client, "carrier-a", func(ev trunk.Transition) bool { return ev.To == trunk.Up })
	waitTransition(t, h.Client, "carrier-b", func(ev trunk.Transition) bool {
		return ev.Kind == trunk.KindRegistration && ev.Registration.To == trunk.Registered
	})

	code, out, errs := env.hotline("trunks")
	a, b := row(out, "carrier-a"), row(out, "carrier-b")
	if code != 0 || !strings.HasPrefix(out, "TRUNK ") || len(a) < 4 || a[1] != "up" || !strings.Contains(out, "200 in ") ||
		!strings.Contains(out, "udp:127.0.0.2:") || b == nil || !strings.Contains(out, "registered until") ||
		strings.Index(out, "carrier-a") > strings.Index(out, "carrier-b") {
		t.Errorf("trunks: exit %d, %q, %q", code, out, errs)
	}
	code, out, errs = env.hotline("trunks", "list", "--json")
	var list web.TrunkList
	if err := json.Unmarshal([]byte(out), &list); code != 0 || err != nil || len(list.Trunks) != 2 || list.Trunks[0].State != trunk.Up ||
		list.Trunks[0].Channels.Limit != 30 || list.Trunks[1].Registration != trunk.Registered ||
		list.Trunks[1].Register == nil || list.Trunks[1].Register.Until == nil || list.Trunks[1].Register.Status != 200 {
		t.Errorf("trunks --json: exit %d, %q, %q, %v", code, out, errs, err)
	}
	code, out, errs = env.hotline("trunks", "events")
	if ev := row(out, time.Now().In(appeal.DefaultLocation()).Format(time.DateOnly)); code != 0 || !strings.Contains(out, "carrier-a  health        unknown          up") ||
		!strings.Contains(out, "carrier-b  registration  not_registering  registered  200") || ev == nil {
		t.Errorf("events: exit %d, %q, %q", code, out, errs)
	}
	code, out, errs = env.hotline("trunks", "sideways")
	if code != 2 || out != "" || !strings.Contains(errs, `unknown command "sideways"`) {
		t.Errorf("an unknown command: exit %d, %q, %q", code, out, errs)
	}
	env["HOTLINE_TOKEN"] = h.Token(t, auth.Supervisor)
	if code, _, _ := env.hotline("trunks"); code != 0 {
		t.Errorf("a supervisor's trunks: exit %d", code)
	}
	code, out, errs = env.hotline("trunks", "events")
	if code != 1 || out != "" || !strings.Contains(errs, "ops or admin") {
		t.Errorf("a supervisor's events: exit %d, %q, %q", code, out, errs)
	}
}

// waitTransition reads the trunks' events until one of the trunk name is
// what is wants, for up to 30 seconds.
func waitTransition(t *testing.T, rdb redis.UniversalClient, name string, is func(trunk.Transition) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	last := "0"
	for {
		streams, err := rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{"hotline:{trunks}:events", last}, Block: 30 * time.Second}).Result()
		if err != nil {
			t.Fatalf("waiting for an event of %s: %v", name, err)
		}
		for _, m := range streams[0].Messages {
			last = m.ID
			var ev trunk.Transition
			if doc, _ := m.Values["doc"].(string); json.Unmarshal([]byte(doc), &ev) == nil && ev.Trunk == name && is(ev) {
				return
			}
		}
	}
}
