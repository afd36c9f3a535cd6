package sipptest

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// UAS is sipp running a server scenario, as a peer (a carrier's trunk)
// that answers the requests sent to Addr.
type UAS struct {
	Addr netip.AddrPort

	cmd  *exec.Cmd
	dir  string
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

// StartUAS runs the scenario file xml on host (a loopback address such as
// 127.0.0.2, a "machine" of its own) and a free port, over UDP ("u1") or
// TCP ("t1", one connection per peer) as transport says, until the test
// ends. sipp answers as soon as it has bound the port; a test that must
// know when waits for a first answer.
func StartUAS(t testing.TB, xml string, host netip.Addr, transport string) *UAS {
	t.Helper()
	xml, err := filepath.Abs(xml)
	if err != nil {
		t.Fatal(err)
	}
	return startUAS(t, xml, host, transport)
}

// Serve runs the scenario document xml as StartUAS does, on UDP on
// 127.0.0.1, for calls calls (sipp exits once it has served them), with
// more sipp arguments in extra; it returns once sipp has bound its port.
func Serve(t testing.TB, xml string, calls int, extra ...string) *UAS {
	t.Helper()
	path := filepath.Join(t.TempDir(), "uas.xml")
	if err := os.WriteFile(path, []byte(xml), 0o644); err != nil {
		t.Fatal(err)
	}
	if calls <= 0 {
		calls = 1
	}
	// The free port found may be taken by another test's peer before
	// sipp binds it: then sipp says so and exits, and another is tried.
	for try := 1; ; try++ {
		u := startUAS(t, path, netip.MustParseAddr("127.0.0.1"), "u1", append([]string{"-m", strconv.Itoa(calls)}, extra...)...)
		deadline := time.Now().Add(10 * time.Second)
		bound := true
		for bound && !udpBound(u.Addr) {
			if time.Now().After(deadline) {
				t.Fatalf("sipp did not bind %s", u.Addr)
			}
			select {
			case <-u.done:
				if try < 5 && strings.Contains(u.Output(), "Address already in use") {
					bound = false
					continue
				}
				t.Fatalf("sipp exited at start:\n%s", u.Output())
			case <-time.After(10 * time.Millisecond):
			}
		}
		if bound {
			return u
		}
	}
}

func startUAS(t testing.TB, xml string, host netip.Addr, transport string, extra ...string) *UAS {
	t.Helper()
	bin := Binary(t)
	if transport == "" {
		transport = "u1"
	}
	network := "udp"
	if transport != "u1" {
		network = "tcp"
	}
	port, err := freePort(network, host)
	if err != nil {
		t.Fatal(err)
	}
	mp, err := FreeMediaPort()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	u := &UAS{Addr: netip.AddrPortFrom(host, uint16(port)), dir: dir, done: make(chan struct{})}
	args := append([]string{"-sf", xml, "-i", host.String(), "-p", strconv.Itoa(port), "-mp", strconv.Itoa(mp),
		"-t", transport, "-nostdin", "-trace_err", "-error_file", filepath.Join(dir, "errors.log")}, extra...)
	u.cmd = exec.Command(bin, args...)
	u.cmd.Dir = dir
	u.cmd.Stdout, u.cmd.Stderr = (*lockedWriter)(u), (*lockedWriter)(u)
	if err := u.cmd.Start(); err != nil {
		t.Fatalf("sipp: %v", err)
	}
	go func() {
		defer close(u.done)
		_ = u.cmd.Wait()
	}()
	t.Cleanup(func() {
		u.Stop()
		if t.Failed() {
			t.Logf("sipp %s:\n%s", xml, u.report())
		}
	})
	return u
}

// Stop ends sipp now, as a carrier that goes away: its port is closed
// once Stop returns.
func (u *UAS) Stop() {
	_ = u.cmd.Process.Signal(os.Interrupt)
	select {
	case <-u.done:
	case <-time.After(5 * time.Second):
		_ = u.cmd.Process.Kill()
		<-u.done
	}
}

// Output is what sipp wrote so far.
func (u *UAS) Output() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.out.String()
}

// report is sipp's output, its errors and, when it traced them
// (-trace_msg), the messages.
func (u *UAS) report() string {
	out := u.Output()
	errs, _ := os.ReadFile(filepath.Join(u.dir, "errors.log"))
	out += "\n" + string(errs)
	if logs, _ := filepath.Glob(filepath.Join(u.dir, "*_messages.log")); len(logs) > 0 {
		msgs, _ := os.ReadFile(logs[0])
		out += "\n" + string(msgs)
	}
	return out
}

// Wait waits, up to d, for sipp to have served its calls (Serve), and
// returns its counts.
func (u *UAS) Wait(t testing.TB, d time.Duration) Result {
	t.Helper()
	select {
	case <-u.done:
	case <-time.After(d):
		_ = u.cmd.Process.Kill()
		<-u.done
		t.Fatalf("sipp did not finish within %s:\n%s", d, u.report())
	}
	res := Result{Output: u.report()}
	res.Successful, res.Failed = counts(res.Output)
	return res
}

type lockedWriter UAS

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.out.Write(p)
}

// freePort returns a port of host the kernel just handed out, on network
// (udp or tcp).
func freePort(network string, host netip.Addr) (int, error) {
	addr := netip.AddrPortFrom(host, 0).String()
	if network == "tcp" {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return 0, err
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port, nil
	}
	c, err := net.ListenPacket("udp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

// udpBound reports whether something holds the UDP address.
func udpBound(a netip.AddrPort) bool {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(a))
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

// AnsweringXML is a phone behind a carrier: it rings, answers with PCMU
// and telephone-events, runs actions (sipp XML, such as pauses and
// play_pcap_audio) once its answer is acknowledged, then waits for the
// BYE. A BYE that comes while the actions still run is answered as well
// (sipp answers an unexpected BYE; the call counts as failed in sipp's
// figures).
func AnsweringXML(actions string) string {
	return `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="answering phone">
  <recv request="INVITE"/>
  <send>
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
  <send retrans="500">
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag02[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:phone@[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=phone 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15
    ]]>
  </send>
  <recv request="ACK" crlf="true"/>
` + actions + `  <recv request="BYE"/>
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
</scenario>
`
}

// PlayingXML answers (AnsweringXML) and plays the capture, a pcap of RTP,
// as the far end's audio.
func PlayingXML(capture string) string {
	return AnsweringXML(fmt.Sprintf("  <nop><action><exec play_pcap_audio=%q/></action></nop>\n", capture))
}

// PressingXML answers (AnsweringXML) and presses key (RFC 4733 events,
// sipp's capture) presses times, gap apart, the first after gap.
func PressingXML(key rune, presses int, gap time.Duration) string {
	var b strings.Builder
	for range presses {
		fmt.Fprintf(&b, "  <pause milliseconds=\"%d\"/>\n  <nop><action><exec play_pcap_audio=%q/></action></nop>\n", gap.Milliseconds(), PcapFor(key))
	}
	return AnsweringXML(b.String())
}
