package sipptest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// UAS is sipp serving one scenario, as a carrier or a phone does: it
// answers the requests sent to Addr, and its counts are read once it
// stops.
type UAS struct {
	Addr netip.AddrPort

	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan struct{}
	res  Result
}

// Serve starts sipp as a UAS running the scenario xml (a whole sipp
// scenario document) on a free UDP port of 127.0.0.1; it runs until it
// has served calls calls, or until the test ends. extra are more sipp
// arguments.
func Serve(t testing.TB, xml string, calls int, extra ...string) *UAS {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "uas.xml")
	if err := os.WriteFile(path, []byte(xml), 0o644); err != nil {
		t.Fatal(err)
	}
	port, err := freeUDPPort()
	if err != nil {
		t.Fatal(err)
	}
	mp, err := FreeMediaPort()
	if err != nil {
		t.Fatal(err)
	}
	if calls <= 0 {
		calls = 1
	}
	args := append([]string{
		"-sf", path, "-i", "127.0.0.1", "-p", strconv.Itoa(port), "-mp", strconv.Itoa(mp),
		"-t", "u1", "-m", strconv.Itoa(calls), "-nostdin",
		"-trace_err", "-error_file", filepath.Join(dir, "errors.log"),
	}, extra...)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	u := &UAS{Addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)), cmd: cmd, out: &bytes.Buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = u.out, u.out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("sipp: %v", err)
	}
	go func() {
		defer close(u.done)
		_ = cmd.Wait()
		errs, _ := os.ReadFile(filepath.Join(dir, "errors.log"))
		u.res.Output = u.out.String() + "\n" + string(errs)
		if logs, _ := filepath.Glob(filepath.Join(dir, "*_messages.log")); len(logs) > 0 {
			msgs, _ := os.ReadFile(logs[0])
			u.res.Output += "\n" + string(msgs)
		}
		u.res.Successful, u.res.Failed = counts(u.res.Output)
	}()
	t.Cleanup(func() {
		cancel()
		<-u.done
	})
	// sipp takes a moment to bind its port; wait until it does.
	deadline := time.Now().Add(10 * time.Second)
	for !udpBound(port) {
		if time.Now().After(deadline) {
			t.Fatalf("sipp did not bind 127.0.0.1:%d", port)
		}
		select {
		case <-u.done:
			t.Fatalf("sipp exited at start:\n%s", u.res.Output)
		case <-time.After(10 * time.Millisecond):
		}
	}
	return u
}

// Wait waits, up to d, for sipp to have served its calls, and returns its
// counts.
func (u *UAS) Wait(t testing.TB, d time.Duration) Result {
	t.Helper()
	select {
	case <-u.done:
	case <-time.After(d):
		_ = u.cmd.Process.Kill()
		<-u.done
		t.Fatalf("sipp did not finish within %s:\n%s", d, u.res.Output)
	}
	return u.res
}

// freeUDPPort returns a UDP port of 127.0.0.1 the kernel just handed out.
func freeUDPPort() (int, error) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

// udpBound reports whether something holds the UDP port of 127.0.0.1.
func udpBound(port int) bool {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		return true
	}
	c.Close()
	return false
}

// CarrierXML is a carrier's side of one outbound call: it takes the
// INVITE, rings, and then answers with final (200: it answers with audio
// and waits for the caller's BYE; 486, 603, 503...: it refuses), or with
// final 0 rings until the call is cancelled (487). challenge makes it ask
// for digest credentials first (401; sipp checks only Authorization,
// not the Proxy-Authorization a 407 asks for), which sipp checks against user and
// password: a wrong answer stops sipp, failing the call.
func CarrierXML(final int, challenge bool, user, password string) string {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="carrier">
`)
	if challenge {
		b.WriteString(`  <recv request="INVITE"/>
  <send>
    <![CDATA[
      SIP/2.0 401 Unauthorized
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      WWW-Authenticate: Digest realm="carrier.example", nonce="6a1b2c3d4e5f", algorithm=MD5
      Content-Length: 0
    ]]>
  </send>
  <recv request="ACK"/>
`)
		fmt.Fprintf(&b, `  <recv request="INVITE">
    <action>
      <verifyauth assign_to="authvalid" username="%s" password="%s"/>
    </action>
  </recv>
  <nop condexec="authvalid" condexec_inverse="true">
    <action><exec int_cmd="stop_now"/></action>
  </nop>
`, user, password)
	} else {
		b.WriteString(`  <recv request="INVITE"/>
`)
	}
	b.WriteString(`  <send>
    <![CDATA[
      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag02[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
`)
	switch {
	case final == 0:
		b.WriteString(`  <recv request="CANCEL"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
  <send>
    <![CDATA[
      SIP/2.0 487 Request Terminated
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag02[call_number]
      [last_Call-ID:]
      CSeq: [cseq] INVITE
      Content-Length: 0
    ]]>
  </send>
  <recv request="ACK"/>
`)
	case final == 200:
		b.WriteString(`  <send retrans="500">
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag02[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:carrier@[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=carrier 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8 0 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15
    ]]>
  </send>
  <recv request="ACK" crlf="true"/>
  <recv request="BYE"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
`)
	default:
		fmt.Fprintf(&b, `  <send>
    <![CDATA[
      SIP/2.0 %d Refused
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag02[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
  <recv request="ACK"/>
`, final)
	}
	b.WriteString(`</scenario>
`)
	return b.String()
}
