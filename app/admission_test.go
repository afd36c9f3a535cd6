package app_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/internal/hotlinetest"
	"github.com/hotline12345/hotline/internal/sipptest"
)

// sip.numbers and sip.limits reach the SIP server: from an untrusted
// address allowed one call, a call to a number not served gets 404, and a
// second INVITE is dropped unanswered and counted on /metrics.
func TestSIPAdmission(t *testing.T) {
	t.Parallel()
	h := hotlinetest.Start(t, func(c *config.Config) {
		c.SIP.Limits.Trusted = []string{"127.0.0.1"}
		c.SIP.Limits.CallsPerMinute, c.SIP.Limits.Burst = 1, 1
	})
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 9)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	from := conn.LocalAddr().String()
	invite := func(n int) []byte {
		return fmt.Appendf(nil, "INVITE sip:99999@%s SIP/2.0\r\n"+
			"Via: SIP/2.0/UDP %s;branch=z9hG4bK-adm-%d\r\nMax-Forwards: 70\r\n"+
			"From: <sip:1@127.0.0.9>;tag=adm%d\r\nTo: <sip:99999@%s>\r\nCall-ID: adm-%d@test\r\n"+
			"CSeq: 1 INVITE\r\nContact: <sip:1@%s>\r\nContent-Length: 0\r\n\r\n",
			h.SIP, from, n, n, h.SIP, n, from)
	}
	for n := range 2 {
		if _, err := conn.WriteToUDPAddrPort(invite(n), h.SIP); err != nil {
			t.Fatal(err)
		}
	}
	if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65536)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	msg, err := sip.ParseMessage(buf[:n])
	if err != nil {
		t.Fatal(err)
	}
	if res, ok := msg.(*sip.Response); !ok || res.StatusCode != sip.StatusNotFound {
		t.Fatalf("answer %s, want 404", buf[:n])
	}
	want := `hotline_sip_invites_dropped_total{reason="over_rate",source="untrusted"} 1`
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(h.API() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(body), want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics has no %s", want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// trunks and sip.allow_unknown_sources reach the SIP server: with it off,
// sipp as a carrier on a trunk's address (its host, no sources listed)
// calls the trunk's number and the call's record names the trunk; sipp on
// another address is refused with 403, counted on /metrics. The trunk's
// call quality series are on /metrics before its first call.
func TestSIPTrunkSources(t *testing.T) {
	t.Parallel()
	h := hotlinetest.Start(t, func(c *config.Config) {
		c.SIP.AllowUnknownSources = false
		c.Trunks = []config.Trunk{{
			Name: "carrier-a", Host: "127.0.0.7", Port: 5060, Transport: "udp",
			Numbers: []string{"02512345"}, Channels: 30, Endpoint: "carrier-a",
			Probe: config.TrunkProbe{
				Interval: config.Duration(30 * time.Second), Timeout: config.Duration(5 * time.Second),
				DownAfter: 3, UpAfter: 2,
			},
		}}
	})
	// The trunk's call quality histograms have their series before a call
	// on it has ended.
	if body := metricsText(t, h); !strings.Contains(body, `hotline_call_mos_count{trunk="carrier-a"} 0`) {
		t.Errorf("/metrics before a call has no hotline_call_mos_count{trunk=\"carrier-a\"} 0")
	}
	carrier := sipptest.Scenario{Caller: "1370010", Actions: []sipptest.Action{{Pause: time.Second}}, Hangup: true}
	res := sipptest.Run(t, h.SIP, carrier, sipptest.Options{Extra: []string{"-i", "127.0.0.7", "-s", "02512345"}})
	if res.Successful != 1 {
		t.Fatalf("the trunk's call: %s", res)
	}
	if rec := h.Records.Final(t, "13700101"); rec.Trunk != "carrier-a" || rec.Dialled != "02512345" {
		t.Errorf("record: trunk %q dialled %q, want carrier-a 02512345", rec.Trunk, rec.Dialled)
	}
	res = sipptest.Run(t, h.SIP, sipptest.Scenario{Caller: "1370011", Expect: 403}, sipptest.Options{})
	if res.Successful != 1 {
		t.Fatalf("a call from no trunk's address was not refused with 403: %s", res)
	}
	// Counted before the 403 was sent.
	if want := `hotline_sip_invites_refused_total{reason="unknown_source"} 1`; !strings.Contains(metricsText(t, h), want) {
		t.Errorf("/metrics has no %s", want)
	}
}

// metricsText is h's /metrics.
func metricsText(t *testing.T, h *hotlinetest.Hotline) string {
	t.Helper()
	resp, err := http.Get(h.API() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}
