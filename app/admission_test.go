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
)

// sip.numbers and sip.limits reach the SIP server: from an untrusted
// address allowed one call, a call to a number not served gets 404, and a
// second INVITE is dropped unanswered and counted on /metrics.
func TestSIPAdmission(t *testing.T) {
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
