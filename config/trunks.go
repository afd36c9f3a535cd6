package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Trunk is a carrier's SIP trunk: the calls it brings in (to its numbers,
// from its addresses) and the calls hotline places out through it.
type Trunk struct {
	// Name names the trunk in logs, metrics, the API and, on Asterisk,
	// is the PJSIP endpoint the dialer originates through
	// (PJSIP/<number>@<name>) unless Endpoint says otherwise.
	Name string `yaml:"name"`
	// Host and Port are the carrier's SIP address; Transport is udp, tcp
	// or tls.
	Host      string `yaml:"host"`
	Port      int    `yaml:"port"`
	Transport string `yaml:"transport"`
	// Username and Password are the digest credentials the carrier
	// challenges for, on outbound calls and registration; empty for a
	// trunk recognised by address alone. The password is better given
	// in the environment: HOTLINE_TRUNK_<NAME>_PASSWORD (the name
	// upper-cased, "-" and "." as "_").
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// Register makes hotline register with the carrier (outbound
	// registration), for RegisterExpiry, renewed before it runs out.
	Register       bool     `yaml:"register"`
	RegisterExpiry Duration `yaml:"register_expiry"`
	// Numbers are the numbers (DIDs) the trunk brings in; they are
	// answered besides sip.numbers.
	Numbers []string `yaml:"numbers"`
	// Sources are the addresses or networks inbound calls of the trunk
	// come from; empty means the addresses Host resolves to.
	Sources []string `yaml:"sources"`
	// CallerID is the number presented on outbound calls: the hotline's.
	CallerID string `yaml:"caller_id"`
	// Channels bounds the trunk's calls at once, in and out together.
	Channels int `yaml:"channels"`
	// Codecs are offered on outbound calls, in order (PCMA, PCMU); empty
	// means sip.codecs.
	Codecs []string `yaml:"codecs"`
	// Probe is how the trunk's health is watched (SIP OPTIONS).
	Probe TrunkProbe `yaml:"probe"`
	// Endpoint is the PJSIP endpoint of the trunk on Asterisk; empty
	// means Name.
	Endpoint string `yaml:"endpoint"`
}

// TrunkProbe is how a trunk's health is watched: an OPTIONS request
// every Interval; DownAfter failures in a row (a timeout, a 5xx other
// than 503) take it down, UpAfter successes in a row bring it back; a 503
// puts it in maintenance.
type TrunkProbe struct {
	Interval  Duration `yaml:"interval"`
	Timeout   Duration `yaml:"timeout"`
	DownAfter int      `yaml:"down_after"`
	UpAfter   int      `yaml:"up_after"`
}

// Defaults of a trunk's settings left out.
const (
	DefaultTrunkPort           = 5060
	DefaultTrunkTLSPort        = 5061
	DefaultTrunkRegisterExpiry = time.Hour
	DefaultTrunkChannels       = 30
	DefaultProbeInterval       = 30 * time.Second
	DefaultProbeTimeout        = 5 * time.Second
	DefaultProbeDownAfter      = 3
	DefaultProbeUpAfter        = 2
)

// withDefaults fills what the file left out.
func (t Trunk) withDefaults() Trunk {
	if t.Transport == "" {
		t.Transport = "udp"
	}
	if t.Port == 0 {
		t.Port = DefaultTrunkPort
		if t.Transport == "tls" {
			t.Port = DefaultTrunkTLSPort
		}
	}
	if t.RegisterExpiry == 0 {
		t.RegisterExpiry = Duration(DefaultTrunkRegisterExpiry)
	}
	if t.Channels == 0 {
		t.Channels = DefaultTrunkChannels
	}
	if t.Probe.Interval == 0 {
		t.Probe.Interval = Duration(DefaultProbeInterval)
	}
	if t.Probe.Timeout == 0 {
		t.Probe.Timeout = Duration(DefaultProbeTimeout)
	}
	if t.Probe.DownAfter == 0 {
		t.Probe.DownAfter = DefaultProbeDownAfter
	}
	if t.Probe.UpAfter == 0 {
		t.Probe.UpAfter = DefaultProbeUpAfter
	}
	if t.Endpoint == "" {
		t.Endpoint = t.Name
	}
	return t
}

// TrunkPasswordEnv is the variable that gives a trunk's password.
func TrunkPasswordEnv(name string) string {
	return EnvPrefix + "TRUNK_" + strings.NewReplacer("-", "_", ".", "_").Replace(strings.ToUpper(name)) + "_PASSWORD"
}

// Address is the carrier's host:port.
func (t Trunk) Address() string { return net.JoinHostPort(t.Host, strconv.Itoa(t.Port)) }

// SourceNetworks is Sources as networks, a bare address as the network of
// that address alone.
func (t Trunk) SourceNetworks() []netip.Prefix { return networks(t.Sources) }

// validateTrunks checks the trunks, each under trunks[i].
func (c Config) validateTrunks(p *problems) {
	names := map[string]bool{}
	numbers := map[string]string{}
	for _, n := range c.SIP.Numbers {
		numbers[n] = "sip.numbers"
	}
	for i, t := range c.Trunks {
		key := fmt.Sprintf("trunks[%d]", i)
		if !identPattern.MatchString(t.Name) {
			p.check(key+".name", fmt.Errorf("%q: want 1-64 letters, digits, '.', '_' or '-'", t.Name))
		} else if names[t.Name] {
			p.check(key+".name", fmt.Errorf("%q: listed twice", t.Name))
		}
		names[t.Name] = true
		if t.Host == "" || strings.ContainsAny(t.Host, " /:@") && net.ParseIP(t.Host) == nil {
			p.check(key+".host", fmt.Errorf("%q: want the carrier's host name or address", t.Host))
		}
		if t.Port < 1 || t.Port > 65535 {
			p.check(key+".port", fmt.Errorf("%d: want 1-65535", t.Port))
		}
		p.check(key+".transport", oneOf(t.Transport, "udp", "tcp", "tls"))
		if (t.Username == "") != (t.Password == "") {
			p.check(key+".password", errors.New("username and password go together: both or neither"))
		}
		if t.Register && t.Username == "" {
			p.check(key+".register", errors.New("registration needs the username and password"))
		}
		if t.Register {
			p.check(key+".register_expiry", within(t.RegisterExpiry, time.Minute, 24*time.Hour))
		}
		for _, n := range t.Numbers {
			if !numberPattern.MatchString(n) {
				p.check(key+".numbers", fmt.Errorf("%q: want a number, such as 12345 or +8610012345", n))
			} else if where, ok := numbers[n]; ok {
				p.check(key+".numbers", fmt.Errorf("%q: also in %s", n, where))
			}
			numbers[n] = key + ".numbers"
		}
		for _, s := range t.Sources {
			if _, err := parseNetwork(s); err != nil {
				p.check(key+".sources", err)
			}
		}
		if t.CallerID != "" && !numberPattern.MatchString(t.CallerID) {
			p.check(key+".caller_id", fmt.Errorf("%q: want a number", t.CallerID))
		}
		if t.Channels < 1 || t.Channels > 10000 {
			p.check(key+".channels", fmt.Errorf("%d: want 1-10000", t.Channels))
		}
		if len(t.Codecs) > 0 {
			p.check(key+".codecs", subsetOf(t.Codecs, "PCMU", "PCMA"))
		}
		p.check(key+".probe.interval", within(t.Probe.Interval, time.Second, time.Hour))
		p.check(key+".probe.timeout", within(t.Probe.Timeout, time.Millisecond, max(time.Duration(t.Probe.Interval), time.Millisecond)))
		if t.Probe.DownAfter < 1 || t.Probe.DownAfter > 100 {
			p.check(key+".probe.down_after", fmt.Errorf("%d: want 1-100", t.Probe.DownAfter))
		}
		if t.Probe.UpAfter < 1 || t.Probe.UpAfter > 100 {
			p.check(key+".probe.up_after", fmt.Errorf("%d: want 1-100", t.Probe.UpAfter))
		}
		if !identPattern.MatchString(t.Endpoint) {
			p.check(key+".endpoint", fmt.Errorf("%q: want the PJSIP endpoint's name", t.Endpoint))
		}
	}
}
