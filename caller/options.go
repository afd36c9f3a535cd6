package caller

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/prompts"
)

// DTMF methods: how the caller sends its keys.
const (
	DTMFRFC4733 = "rfc4733" // RTP telephone-events (RFC 4733)
	DTMFInfo    = "info"    // SIP INFO, application/dtmf-relay
	DTMFInband  = "inband"  // tones in the audio, as an analogue line
)

// Defaults of Options.
const (
	DefaultFrom        = "probe"
	DefaultTimeout     = 3 * time.Minute
	DefaultStepTimeout = 60 * time.Second
)

// Why a call did not go as scripted. Call's errors wrap one of these.
var (
	// ErrBadOptions: the options cannot make a call.
	ErrBadOptions = errors.New("bad call options")
	// ErrNotAnswered: the INVITE got no 2xx answer.
	ErrNotAnswered = errors.New("call not answered")
	// ErrStepTimeout: a step's prompt was not heard within StepTimeout.
	ErrStepTimeout = errors.New("prompt not heard in time")
	// ErrCallEnded: the call ended before every step's prompt was heard.
	ErrCallEnded = errors.New("call ended before the script did")
	// ErrTimeout: the call went on past Options.Timeout and was hung up.
	ErrTimeout = errors.New("call timed out")
	// ErrNoTelephoneEvent: keys are to be sent as RFC 4733 events but the
	// far end did not accept telephone-event in its SDP answer.
	ErrNoTelephoneEvent = errors.New("far end does not take RFC 4733 telephone-events")
	// ErrKeyRejected: the far end refused a key sent by SIP INFO.
	ErrKeyRejected = errors.New("key press refused")
)

// Options place one call.
type Options struct {
	// Target is the SIP URI called, e.g. "sip:12345@127.0.0.1:5060";
	// a ;transport=tcp parameter selects TCP.
	Target string
	// From is the caller's user (number) in From; DefaultFrom when empty.
	From string
	// DTMF is how keys are sent: DTMFRFC4733 (the default), DTMFInfo or
	// DTMFInband. Inband offers no telephone-event, as an analogue gateway.
	DTMF string
	// Codec is the preferred codec, "PCMU" (the default) or "PCMA"; both
	// are offered, this one first.
	Codec   string
	Script  Script
	Catalog *prompts.Catalog
	// LocalIP is the address the caller binds and advertises; when empty,
	// the address the system routes to Target from (127.0.0.1 for a
	// target on loopback).
	LocalIP string
	// Timeout bounds the whole call; DefaultTimeout when zero.
	Timeout time.Duration
	// StepTimeout bounds the wait for each step's prompt; DefaultStepTimeout
	// when zero.
	StepTimeout time.Duration
	// Headers, when set, gives extra headers for the INVITE, which has
	// the Call-ID given: a signed X-Hotline-Probe claim (synthetic.Sign)
	// binds to it.
	Headers func(callID string) []sip.Header
	Logger  zerolog.Logger
}

// callPlan is validated options.
type callPlan struct {
	Options
	target    sip.Uri
	transport string // "udp" or "tcp"
	localIP   netip.Addr
	codecs    []law // offered, preferred first
}

// plan checks opts and fills in the defaults.
func plan(opts Options) (callPlan, error) {
	p := callPlan{Options: opts}
	bad := func(format string, a ...any) (callPlan, error) {
		return callPlan{}, fmt.Errorf("%w: "+format, append([]any{ErrBadOptions}, a...)...)
	}
	if p.Catalog == nil {
		return bad("no prompt catalog")
	}
	if p.From == "" {
		p.From = DefaultFrom
	}
	if p.DTMF == "" {
		p.DTMF = DTMFRFC4733
	}
	switch p.DTMF {
	case DTMFRFC4733, DTMFInfo, DTMFInband:
	default:
		return bad("dtmf %q: want %s, %s or %s", p.DTMF, DTMFRFC4733, DTMFInfo, DTMFInband)
	}
	if p.Codec == "" {
		p.Codec = pcmu.name
	}
	first, ok := lawByName(p.Codec)
	if !ok {
		return bad("codec %q: want PCMU or PCMA", p.Codec)
	}
	p.Codec = first.name
	p.codecs = []law{first, pcma}
	if first.name == pcma.name {
		p.codecs[1] = pcmu
	}
	if p.Timeout == 0 {
		p.Timeout = DefaultTimeout
	}
	if p.StepTimeout == 0 {
		p.StepTimeout = DefaultStepTimeout
	}
	if p.Timeout < 0 || p.StepTimeout < 0 {
		return bad("negative timeout")
	}
	for i, st := range p.Script {
		if err := st.check(p.Catalog); err != nil {
			return bad("step %d: %v", i+1, err)
		}
	}

	if err := sip.ParseUri(strings.TrimSpace(p.Target), &p.target); err != nil {
		return bad("target %q: %v", p.Target, err)
	}
	if p.target.Scheme != "sip" || p.target.Host == "" {
		return bad("target %q: want sip:user@host[:port]", p.Target)
	}
	p.transport = "udp"
	if p.target.UriParams != nil {
		if t, ok := p.target.UriParams.Get("transport"); ok {
			p.transport = strings.ToLower(t)
		}
	}
	if p.transport != "udp" && p.transport != "tcp" {
		return bad("target %q: transport %q: want udp or tcp", p.Target, p.transport)
	}

	if p.LocalIP != "" {
		ip, err := netip.ParseAddr(p.LocalIP)
		if err != nil || ip.IsUnspecified() {
			return bad("local IP %q: want the address to bind and advertise", p.LocalIP)
		}
		p.localIP = ip.Unmap()
	} else {
		p.localIP = routeFrom(p.target)
	}
	p.LocalIP = p.localIP.String()
	return p, nil
}

// routeFrom is the local address the system sends to target from; connecting
// a UDP socket sends nothing. Loopback when it cannot tell.
func routeFrom(target sip.Uri) netip.Addr {
	port := target.Port
	if port == 0 {
		port = 5060
	}
	conn, err := net.Dial("udp", net.JoinHostPort(target.Host, strconv.Itoa(port)))
	if err != nil {
		return netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	defer conn.Close()
	return conn.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
}

// check says whether a step can be played.
func (st Step) check(c *prompts.Catalog) error {
	if _, err := c.Get(st.On, c.DefaultLang()); err != nil {
		return err
	}
	if st.Hangup && st.Press != "" {
		return fmt.Errorf("on %s: both press %q and hang up", st.On, st.Press)
	}
	if !validKeys(st.Press) {
		return fmt.Errorf("on %s: %q is not DTMF keys", st.On, st.Press)
	}
	return nil
}

// dtmfKeys are the sixteen DTMF keys (ITU-T Q.23).
const dtmfKeys = "0123456789*#ABCD"

func validKeys(keys string) bool {
	return strings.Trim(keys, dtmfKeys) == ""
}
