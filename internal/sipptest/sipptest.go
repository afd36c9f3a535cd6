// Package sipptest drives sipp (Debian's sip-tester) against a SIP server in
// tests and benchmarks: scenarios built from a template, audio streamed
// for the whole call, RFC 2833 digits from sipp's own captures.
package sipptest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"
)

// PcapDir is where Debian's sip-tester keeps its RFC 2833 DTMF captures.
const PcapDir = "/usr/share/sip-tester"

// Action is one step after the call is answered: a pause, then a key
// (an RFC 2833 capture played into the call), if any.
type Action struct {
	Pause time.Duration
	Key   rune
}

// Scenario is a UAC call built from the template.
type Scenario struct {
	// Caller is the From user; sipp appends the call number, so calls of
	// one run are told apart.
	Caller string
	// Formats are the payload types of the audio m-line, with rtpmap
	// lines; default PCMU and telephone-event.
	Formats []Format
	// Expect is the final response expected to the INVITE (default 200).
	Expect int
	// LateOffer sends the INVITE without SDP, as carriers often do: the
	// offer comes in the 200 and the answer, Formats, goes in the ACK
	// (RFC 3261 section 13.2.1).
	LateOffer bool
	// Audio, when set, is a capture of RTP over UDP/IPv4 played once as
	// the caller's audio after the ACK (play_pcap_audio) instead of the
	// silence streamed for the whole call.
	Audio string
	// Actions run after the ACK, while the audio plays.
	Actions []Action
	// Hangup ends the call from sipp's side after the actions; otherwise
	// sipp waits (up to WaitBye) for the server's BYE.
	Hangup  bool
	WaitBye time.Duration
}

// Format is one payload type offered.
type Format struct {
	PT     int
	RTPMap string // "PCMU/8000"; empty for none
}

// Options run a scenario.
type Options struct {
	Calls      int     // calls in all (default 1)
	Concurrent int     // at most this many at once (default Calls)
	Rate       float64 // new calls per second (default 10)
	Transport  string  // "u1" (UDP, default) or "t1" (TCP)
	Timeout    time.Duration
	// StatFile, when set, receives sipp's per-second counters (CSV).
	StatFile string
	// RTPCheck writes sipp's RTP check lines; with rtp_stream a jitter
	// check is not available, so leave it off.
	Extra []string
}

// Result is what sipp reported.
type Result struct {
	Successful, Failed int
	Output             string // stdout and stderr, for failure messages
	Duration           time.Duration
}

// Binary returns the sipp binary or fails the test naming the package.
func Binary(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("sipp")
	if err != nil {
		t.Fatalf("sipp not found (Debian package sip-tester): %v", err)
	}
	return p
}

// Run runs sc against target and returns sipp's counts.
func Run(t testing.TB, target netip.AddrPort, sc Scenario, opts Options) Result {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	if opts.Calls <= 0 {
		opts.Calls = 1
	}
	if opts.Concurrent <= 0 {
		opts.Concurrent = opts.Calls
	}
	if opts.Rate <= 0 {
		opts.Rate = 10
	}
	if opts.Transport == "" {
		opts.Transport = "u1"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 3 * time.Minute
	}
	xml := filepath.Join(dir, "uac.xml")
	wav := filepath.Join(dir, "silence.wav")
	if err := os.WriteFile(wav, SilenceWAV(2*time.Second), 0o644); err != nil {
		t.Fatal(err)
	}
	text, err := Render(sc, wav)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(xml, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	mp, err := FreeMediaPort()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{
		"-sf", xml, "-s", "12345", target.String(),
		"-i", "127.0.0.1", "-p", "0", "-mp", strconv.Itoa(mp),
		"-t", opts.Transport,
		"-m", strconv.Itoa(opts.Calls), "-l", strconv.Itoa(opts.Concurrent),
		"-r", strconv.FormatFloat(opts.Rate, 'f', -1, 64), "-rp", "1000",
		"-nostdin", "-timeout", strconv.Itoa(int(opts.Timeout.Seconds())) + "s",
		"-timeout_error", "-max_socket", "4096",
		"-trace_err", "-error_file", filepath.Join(dir, "errors.log"),
	}
	if opts.StatFile != "" {
		args = append(args, "-trace_stat", "-stf", opts.StatFile, "-fd", "1")
	}
	args = append(args, opts.Extra...)
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err = cmd.Run()
	res := Result{Duration: time.Since(start)}
	errs, _ := os.ReadFile(filepath.Join(dir, "errors.log"))
	res.Output = out.String() + "\n" + string(errs)
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("sipp: %v\n%s", err, res.Output)
	}
	res.Successful, res.Failed = counts(res.Output)
	return res
}

// counts reads the cumulative "Successful call" and "Failed call" lines of
// sipp's final screen.
func counts(out string) (ok, failed int) {
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Split(line, "|")
		if len(fields) < 3 {
			continue
		}
		name := strings.TrimSpace(fields[0])
		n, err := strconv.Atoi(strings.TrimSpace(fields[2]))
		if err != nil {
			continue
		}
		switch name {
		case "Successful call":
			ok = n
		case "Failed call":
			failed = n
		}
	}
	return ok, failed
}

// FreeMediaPort returns an even UDP port the kernel just handed out, for
// sipp's media (-mp), which also uses the port above it.
func FreeMediaPort() (int, error) {
	for range 50 {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return 0, err
		}
		port := c.LocalAddr().(*net.UDPAddr).Port
		c.Close()
		if port%2 == 0 && port < 65530 {
			return port, nil
		}
	}
	return 0, errors.New("no even UDP port")
}

// SilenceWAV is d of µ-law silence in a WAV file, the format sipp's
// rtp_stream plays.
func SilenceWAV(d time.Duration) []byte {
	n := int(d.Seconds() * 8000)
	var b bytes.Buffer
	b.WriteString("RIFF")
	binary.Write(&b, binary.LittleEndian, uint32(36+n))
	b.WriteString("WAVEfmt ")
	for _, v := range []any{uint32(16), uint16(7), uint16(1), uint32(8000), uint32(8000), uint16(1), uint16(8)} {
		binary.Write(&b, binary.LittleEndian, v)
	}
	b.WriteString("data")
	binary.Write(&b, binary.LittleEndian, uint32(n))
	b.Write(bytes.Repeat([]byte{0xFF}, n))
	return b.Bytes()
}

// PcapFor names sipp's capture of one key.
func PcapFor(key rune) string {
	name := string(key)
	switch key {
	case '*':
		name = "star"
	case '#':
		name = "pound"
	}
	return filepath.Join(PcapDir, "dtmf_2833_"+name+".pcap")
}

var scenarioTmpl = template.Must(template.New("uac").Funcs(template.FuncMap{
	"ms":   func(d time.Duration) int64 { return d.Milliseconds() },
	"pcap": PcapFor,
}).Parse(`<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="hotline-uac">
  <send retrans="500">
    <![CDATA[

      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Citizen" <sip:{{.Caller}}[call_number]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:{{.Caller}}[call_number]@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
{{- if .LateOffer}}
      Content-Length: 0
{{- else}}
      Content-Type: application/sdp
      Content-Length: [len]
{{template "sdp" .}}
{{- end}}

    ]]>
  </send>

  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
{{- if eq .Expect 200}}
  <recv response="200" rtd="true" rrs="true"/>

  <send>
    <![CDATA[

      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Citizen" <sip:{{.Caller}}[call_number]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      [routes]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: <sip:{{.Caller}}[call_number]@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
{{- if .LateOffer}}
      Content-Type: application/sdp
      Content-Length: [len]
{{template "sdp" .}}
{{- else}}
      Content-Length: 0
{{- end}}

    ]]>
  </send>

{{- if .Audio}}
  <nop><action><exec play_pcap_audio="{{.Audio}}"/></action></nop>
{{- else}}
  <nop><action><exec rtp_stream="{{.WAV}},-1,0"/></action></nop>
{{- end}}
{{- range .Actions}}
  <pause milliseconds="{{ms .Pause}}"/>
{{- if .Key}}
  <nop><action><exec play_pcap_audio="{{pcap .Key}}"/></action></nop>
{{- end}}
{{- end}}
{{- if .Hangup}}

  <send retrans="500">
    <![CDATA[

      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Citizen" <sip:{{.Caller}}[call_number]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      [routes]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Contact: <sip:{{.Caller}}[call_number]@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>

  <recv response="200" crlf="true"/>
{{- else}}

  <recv request="BYE" timeout="{{ms .WaitBye}}"/>

  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:{{.Caller}}[call_number]@[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0

    ]]>
  </send>
{{- end}}
{{- else}}
  <recv response="{{.Expect}}"/>

  <send>
    <![CDATA[

      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      [last_Via:]
      From: "Citizen" <sip:{{.Caller}}[call_number]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
{{- end}}
</scenario>
{{- define "sdp"}}
      v=0
      o=citizen 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP{{range .Formats}} {{.PT}}{{end}}
{{- range .Formats}}{{if .RTPMap}}
      a=rtpmap:{{.PT}} {{.RTPMap}}{{end}}{{end}}
      a=ptime:20
      a=sendrecv
{{- end}}
`))

// Render returns the scenario XML, streaming wav as the caller's audio.
func Render(sc Scenario, wav string) (string, error) {
	if sc.Caller == "" {
		sc.Caller = "1380000"
	}
	if len(sc.Formats) == 0 {
		sc.Formats = []Format{{0, "PCMU/8000"}, {101, "telephone-event/8000"}}
	}
	if sc.Expect == 0 {
		sc.Expect = 200
	}
	if sc.WaitBye <= 0 {
		sc.WaitBye = 2 * time.Minute
	}
	var b bytes.Buffer
	err := scenarioTmpl.Execute(&b, struct {
		Scenario
		WAV string
	}{sc, wav})
	if err != nil {
		return "", fmt.Errorf("sipp scenario: %w", err)
	}
	return b.String(), nil
}

// Keys makes actions that press keys, the first after first and the rest
// gap apart.
func Keys(first, gap time.Duration, keys string) []Action {
	var acts []Action
	for i, k := range keys {
		p := gap
		if i == 0 {
			p = first
		}
		acts = append(acts, Action{Pause: p, Key: k})
	}
	return acts
}

// String describes a result for failure messages.
func (r Result) String() string {
	return fmt.Sprintf("%d successful, %d failed in %s\n%s", r.Successful, r.Failed, r.Duration, r.Output)
}
