package main

import (
	"bytes"
	"fmt"
	"text/template"
	"time"

	"github.com/hotline12345/hotline/internal/sipptest"
)

// scenario is one sipp process's citizen: it types the category and the
// consent key ahead during the greeting, streams silence the whole call,
// and from PressFrom on presses the praise key every PressEvery until
// hotline hangs up. Keys pressed before the rating starts are dropped by
// hotline (they were meant for the agent, not the question), so the first
// press after the agent hangs up rates the call and the rest are ignored:
// one rating per call. Pressing every 2 s lands a key within the
// question's window (the prompt, then 5 s) whatever the wait in the queue.
type scenario struct {
	Caller     string // From user; sipp appends the call number
	Category   rune
	Consent    rune
	PressFrom  time.Duration // after the ACK
	PressEvery time.Duration
	Presses    int           // at most; then wait LastWait for the BYE
	LastWait   time.Duration // for hotline's BYE after the last press
	PraiseKey  rune
	WAV        string
}

// The intake keys: the category key 1 s into the greeting, which it cuts
// short (barge-in) and answers the category menu ahead; the consent key
// half a second later, during the consent question.
const (
	categoryAt = time.Second
	consentGap = 500 * time.Millisecond
)

func (sc scenario) render() (string, error) {
	if sc.PressFrom < categoryAt+consentGap {
		return "", fmt.Errorf("the first rating key (%s) must come after the intake keys (%s)", sc.PressFrom, categoryAt+consentGap)
	}
	presses := make([]int, sc.Presses)
	for i := range presses {
		presses[i] = i
	}
	var b bytes.Buffer
	err := scenarioTmpl.Execute(&b, struct {
		scenario
		CategoryAt, ConsentGap, Wait time.Duration
		PressList                    []int
	}{sc, categoryAt, consentGap, sc.PressFrom - categoryAt - consentGap, presses})
	return b.String(), err
}

var scenarioTmpl = template.Must(template.New("uac").Funcs(template.FuncMap{
	"ms":   func(d time.Duration) int64 { return d.Milliseconds() },
	"pcap": sipptest.PcapFor,
	"next": func(i int) int { return i + 1 },
}).Parse(`<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="hotline-agents-uac">
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
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=citizen 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=ptime:20
      a=sendrecv

    ]]>
  </send>

  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
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
      Content-Length: 0

    ]]>
  </send>

  <nop><action><exec rtp_stream="{{.WAV}},-1,0"/></action></nop>
  <pause milliseconds="{{ms .CategoryAt}}"/>
  <nop><action><exec play_pcap_audio="{{pcap .Category}}"/></action></nop>
  <pause milliseconds="{{ms .ConsentGap}}"/>
  <nop><action><exec play_pcap_audio="{{pcap .Consent}}"/></action></nop>
  <pause milliseconds="{{ms .Wait}}"/>
{{- range .PressList}}
  <label id="press{{.}}"/>
  <nop><action><exec play_pcap_audio="{{pcap $.PraiseKey}}"/></action></nop>
  <recv request="BYE" timeout="{{ms $.PressEvery}}" ontimeout="press{{next .}}" next="bye"/>
{{- end}}
  <label id="press{{len .PressList}}"/>
  <recv request="BYE" timeout="{{ms .LastWait}}" next="bye"/>

  <!-- sipp jumps here on a message the scenario does not expect where it
       stands, and hands the message to the next recv: hotline's BYE
       arriving between a press's timeout and the next press, when a busy
       sipp runs the call late. Whether the call went intake, agent,
       rating is judged from hotline's records. -->
  <label id="_unexp.main"/>
  <recv request="BYE"/>

  <label id="bye"/>
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
</scenario>
`))
