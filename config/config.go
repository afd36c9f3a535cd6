// Package config holds the hotline's settings: one YAML file, overridden by
// environment variables, every setting with a default (Default), checked as a
// whole before the service starts (Validate).
//
// The package never reads the environment or the disk on its own: Load is
// given the file's path and a lookup function (os.LookupEnv in main, a map in
// tests); Validate reads the certificate files the settings name, to refuse
// a bad one before the service starts.
package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Config is every setting of the service. The yaml tags are the keys of the
// file and, upper-cased behind HOTLINE_, the names of the environment
// overrides (see Load).
type Config struct {
	// Backend is the telephony backend: "sip", the embedded SIP/RTP stack,
	// or "asterisk", a Stasis application on Asterisk reached over ARI
	// (settings under ARI), where Asterisk owns trunks, codecs and phones.
	Backend string `yaml:"backend"`

	SIP struct {
		// Listen is where SIP is received, on every transport.
		Listen string `yaml:"listen"`
		// Transports are the SIP transports listened on: udp, tcp.
		Transports []string `yaml:"transports"`
		// TLSListen is where SIP over TLS is received (RFC 3261 section
		// 26.2), host:port, 5061 by custom; empty receives none. The
		// embedded backend only: Asterisk has its own transport-tls.
		TLSListen string `yaml:"tls_listen"`
		// TLSCert and TLSKey are the PEM files of SIP's certificate (its
		// chain after it) and private key, read again on SIGHUP. Empty,
		// SIP serves HTTP's (http.tls_cert, http.tls_key): one
		// certificate for the host's name covers both (see SIPTLSFiles).
		TLSCert string `yaml:"tls_cert"`
		TLSKey  string `yaml:"tls_key"`
		// ExternalIP is the address written into SDP and Contact; empty
		// means the IP of Listen (see AdvertisedIP).
		ExternalIP string `yaml:"external_ip"`
		// RTPPorts is the UDP port range for media, "low-high" (see
		// RTPPortRange).
		RTPPorts string `yaml:"rtp_ports"`
		// MediaTimeout ends a call when no RTP arrived for this long: the
		// far end vanished without a BYE.
		MediaTimeout Duration `yaml:"media_timeout"`
		// RTPPriority is the SCHED_FIFO priority (1-99) of the threads
		// that send every call's RTP on the 20 ms clock, so they wake on
		// time however busy the machine; 0 leaves them at ordinary
		// priority. Without the right to raise it (root or CAP_SYS_NICE,
		// or an RLIMIT_RTPRIO) the server warns and carries on.
		RTPPriority int `yaml:"rtp_priority"`
		// RingTime is how long an incoming call rings before it is
		// answered; 0 answers at once.
		RingTime Duration `yaml:"ring_time"`
		// MaxCalls is the number of calls handled at once; one more is
		// refused with 503 Service Unavailable (RFC 3261 section 21.5.4).
		MaxCalls int `yaml:"max_calls"`
		// Realm is the digest realm agents' phones authenticate in. The
		// stored password hashes are made for it: after a change,
		// agents' passwords must be set again.
		Realm string `yaml:"realm"`
		// DigestAlgorithms are offered in REGISTER challenges, in order
		// of preference: SHA-256 (RFC 8760), MD5. Many softphones fail on a
		// SHA-256 challenge instead of skipping it, so MD5 alone is the
		// default.
		DigestAlgorithms []string `yaml:"digest_algorithms"`
		// Codecs are the audio codecs accepted in an offer, by their RTP
		// encoding names: PCMU, PCMA (G.711, RFC 3551 section 4.5.14).
		Codecs []string `yaml:"codecs"`
		// TCP bounds the connections peers hold open (see SIPTCP).
		TCP SIPTCP `yaml:"tcp"`
		// Numbers are the numbers the hotline answers: a call's
		// Request-URI user, or its tel: number (visual separators such as
		// "-" aside). A call to any other number is refused with 404 Not
		// Found before anything is made of it.
		Numbers []string `yaml:"numbers"`
		// Limits bound the calls each source address may start (see
		// SIPLimits).
		Limits SIPLimits `yaml:"limits"`
		// AllowUnknownSources takes INVITEs from any address. Off, an
		// INVITE from an address that is no trunk's (trunks[].sources)
		// and no registered phone's is refused with 403 Forbidden. On by
		// default, so that a softphone can call the hotline on a fresh
		// install; turn it off once the trunks are configured.
		AllowUnknownSources bool `yaml:"allow_unknown_sources"`
	} `yaml:"sip"`

	// ARI is how the asterisk backend reaches Asterisk: the REST Interface
	// on Asterisk's HTTP server (http.conf, ari.conf). Read only when
	// Backend is "asterisk".
	ARI struct {
		// URL is ARI's REST root, "http://127.0.0.1:8088/ari". The events
		// websocket is derived from it (see ARIEventsURL).
		URL string `yaml:"url"`
		// Username and Password are a user of ari.conf, sent as HTTP basic
		// auth on REST calls and as api_key on the websocket.
		Username string `yaml:"username"`
		Password string `yaml:"password"`
		// Application is the Stasis application's name: the dialplan's
		// Stasis(<application>) hands calls to it.
		Application string `yaml:"application"`
		// ReconnectMin and ReconnectMax bound the wait between websocket
		// reconnects, which grows from the one to the other: Asterisk
		// replays no event missed while the socket is down, so the first
		// retry comes quickly, and a restarting Asterisk is not hammered.
		ReconnectMin Duration `yaml:"reconnect_min"`
		ReconnectMax Duration `yaml:"reconnect_max"`
		// PingInterval is how often the websocket is pinged, and
		// PingTimeout how long a pong may take before the socket counts
		// as dead and is replaced: a half-open TCP connection (a dropped
		// NAT entry, a cable pulled) otherwise looks alive while every
		// event is lost.
		PingInterval Duration `yaml:"ping_interval"`
		PingTimeout  Duration `yaml:"ping_timeout"`
	} `yaml:"ari"`

	HTTP struct {
		// Listen is where the web console, the API and /metrics are served.
		Listen string `yaml:"listen"`
		// TLSCert and TLSKey are the PEM files of the certificate (its
		// chain after it) and its private key. Set, HTTP is served over
		// TLS alone (HTTPS), and the files are read again on SIGHUP; both
		// or neither.
		TLSCert string `yaml:"tls_cert"`
		TLSKey  string `yaml:"tls_key"`
		// MetricsToken, when set, is the bearer token /metrics and
		// /healthz ask for; empty leaves them open, as fits the loopback
		// default. Better given as HOTLINE_HTTP_METRICS_TOKEN.
		MetricsToken string `yaml:"metrics_token"`
		// LoginTTL is how long a token made by logging in with a password
		// lasts.
		LoginTTL Duration `yaml:"login_ttl"`
		// SessionTTL is how long a console session lasts at most, and
		// SessionIdle how long it may go unused (the page refreshing
		// itself is no use) before it ends.
		SessionTTL  Duration `yaml:"session_ttl"`
		SessionIdle Duration `yaml:"session_idle"`
		// TrustedProxies are the reverse proxies (addresses or networks)
		// whose X-Forwarded-For names the client; bans and logs then see
		// the client, not the proxy.
		TrustedProxies []string `yaml:"trusted_proxies"`
	} `yaml:"http"`

	// Bans throttle authentication, for agents' phones (SIP REGISTER) and
	// the HTTP API alike: a source address (an IPv6 one by its /64) that
	// fails MaxFailures times within Window is refused for Duration, on
	// every node and for every service.
	Bans struct {
		// MaxFailures failed authentications within Window ban a source.
		MaxFailures int      `yaml:"max_failures"`
		Window      Duration `yaml:"window"`
		// Duration is how long a ban lasts.
		Duration Duration `yaml:"duration"`
		// Allow lists networks (CIDRs, or bare addresses) never banned:
		// their failures are logged but not counted, and not in the line
		// fail2ban reads. An office of many phones behind one NAT address
		// belongs here (see BanAllow).
		Allow []string `yaml:"allow"`
	} `yaml:"bans"`

	// Audit is the log of what people did through the API and the
	// console: every state-changing action, failed logins included.
	Audit struct {
		// Retention is how long an entry is kept.
		Retention Duration `yaml:"retention"`
		// MaxEntries bounds the log whatever the entries' age, so that a
		// flood of failed logins cannot fill Redis.
		MaxEntries int `yaml:"max_entries"`
	} `yaml:"audit"`

	Storage struct {
		// Dir is the node's state directory: the embedded Redis's data
		// (unless redis.data_dir says otherwise). Empty means the
		// directory StateDir finds: systemd's $STATE_DIRECTORY for a
		// service (StateDirectory=hotline: /var/lib/hotline), else
		// $XDG_STATE_HOME/hotline, else ~/.local/state/hotline — one
		// place whatever folder the server is started from.
		Dir string `yaml:"dir"`
	} `yaml:"storage"`

	Redis struct {
		// URL of the shared Redis: one server (redis://, rediss://,
		// unix://), Sentinel (redis-sentinel://) or Cluster
		// (redis+cluster://), in the forms storage.AcceptedURLs lists;
		// empty runs an embedded one for this node alone.
		URL string `yaml:"url"`
		// DataDir is where the embedded Redis keeps its data; empty means
		// redis under storage.dir.
		DataDir string `yaml:"data_dir"`
		// ServerPath is the redis-server binary the embedded Redis runs; a
		// bare name is looked up on PATH.
		ServerPath string `yaml:"server_path"`
	} `yaml:"redis"`

	IVR struct {
		// Language of the prompts: zh or en.
		Language string `yaml:"language"`
		// FirstDigitTimeout is how long a menu waits for the caller's
		// first key after the prompt ends.
		FirstDigitTimeout Duration `yaml:"first_digit_timeout"`
		// Tries is how many times a question is asked before the call
		// moves on (or ends politely) on silence or an invalid key.
		Tries int `yaml:"tries"`
	} `yaml:"ivr"`

	ACD struct {
		// RingTimeout is how long an agent's phone rings before the call
		// is offered to the next agent.
		RingTimeout Duration `yaml:"ring_timeout"`
		// WrapUp is the agent's time after each call before the next.
		WrapUp Duration `yaml:"wrap_up"`
		// MaxMissed offers missed in a row pause an agent (no-answer).
		MaxMissed int `yaml:"max_missed"`
		// Reoffer is how long after an offer that came to nothing (rang
		// out, declined) the same call may ring the same agent again,
		// when no other agent is free to take it.
		Reoffer Duration `yaml:"reoffer"`
		// MaxWait is the wait after which a caller who consented to a
		// return visit may press 1 to leave the queue and be called back.
		MaxWait Duration `yaml:"max_wait"`
		// PositionEvery is how often a waiting caller hears the position.
		PositionEvery Duration `yaml:"position_every"`
	} `yaml:"acd"`

	Rating struct {
		// PraiseKey and BadReviewKey answer the rating question.
		PraiseKey    string `yaml:"praise_key"`
		BadReviewKey string `yaml:"bad_review_key"`
		// Tries is how many times the question is asked at most.
		Tries int `yaml:"tries"`
		// Timeout is how long the question waits for a key.
		Timeout Duration `yaml:"timeout"`
	} `yaml:"rating"`

	// Agents are provisioned at start (created, or updated to match);
	// agents added through the API live on beside them.
	Agents []Agent `yaml:"agents"`

	// Trunks are the carriers' SIP trunks (see Trunk).
	Trunks []Trunk `yaml:"trunks"`

	// Organizers are the units appeals are dispatched to (see
	// Organizer): they seed the list, which the API manages.
	Organizers []Organizer `yaml:"organizers"`

	// Node names this hotline node among those sharing Redis; empty means
	// the host name. Each node needs its own: a process started under the
	// name of a running node refuses to start, and the next run of a node
	// takes over what the last one left (see Cluster).
	Node string `yaml:"node"`

	// Cluster is how the hotline nodes sharing Redis watch each other.
	Cluster struct {
		// Lease is how long a node's liveness lease lasts unrenewed. A
		// node renews it every fifth of it; a node silent for a lease is
		// lost, and what it held (its calls, the agents ringing or
		// talking on them, its queue entries) is reconciled by another
		// node within a fifth more, or at once by the node's next run on
		// the same host.
		Lease Duration `yaml:"lease"`
	} `yaml:"cluster"`

	// TimeZone is the hotline's zone, an IANA name: appeal clocks count
	// natural days in it.
	TimeZone string `yaml:"time_zone"`

	// Journal keeps, under <storage.dir>/journal, what callers say and
	// are told while Redis does not answer — appeals with their consent
	// evidence, call records, ratings, reviews — appended and fsynced,
	// and replays it into Redis once it answers again.
	Journal struct {
		// Deadline is how long a write waits for Redis before the journal
		// takes it; a caller at the appeal step waits that long at most.
		Deadline Duration `yaml:"deadline"`
		// AppealNumbers is how many appeal numbers of each day (today's
		// and tomorrow's) the node holds in reserve, to read to callers
		// while Redis does not answer. Beyond them a caller is told the
		// number will be called back.
		AppealNumbers int `yaml:"appeal_numbers"`
		// OutageAfter is how long Redis must have been away before new
		// callers are answered with an apology and the promise of a
		// call-back; a shorter break (a Sentinel failover) is ridden
		// through, the caller's appeal journaled if need be.
		OutageAfter Duration `yaml:"outage_after"`
		// MaxSizeMB bounds the journal file, in MiB: past it the journal
		// refuses entries (and /healthz says so) rather than fill the disk.
		MaxSizeMB int `yaml:"max_size_mb"`
	} `yaml:"journal"`

	// Calls are the call records (see CallsSettings).
	Calls CallsSettings `yaml:"calls"`

	// Appeals are the appeals kept (see AppealsSettings).
	Appeals AppealsSettings `yaml:"appeals"`

	// Evaluation is the effective complaint rate's line (see
	// EvaluationSettings).
	Evaluation EvaluationSettings `yaml:"evaluation"`

	// Ops are the alerts for operations (see OpsSettings).
	Ops OpsSettings `yaml:"ops"`

	// Supervision are the appeals' clocks after the call (see
	// SupervisionSettings).
	Supervision SupervisionSettings `yaml:"supervision"`

	// Callback are the return visits (see CallbackSettings).
	Callback CallbackSettings `yaml:"callback"`

	// Probe recognises the synthetic probe's calls (see ProbeSettings).
	Probe ProbeSettings `yaml:"probe"`

	Shutdown struct {
		// Grace is how long calls in progress may go on after a stop is
		// asked for, before they are hung up.
		Grace Duration `yaml:"grace"`
	} `yaml:"shutdown"`

	Log struct {
		// Level: debug, info, warn or error.
		Level string `yaml:"level"`
		// Format: auto (console at a terminal, JSON otherwise), json or
		// console.
		Format string `yaml:"format"`
	} `yaml:"log"`
}

// Default returns the settings used where neither the file nor the
// environment says otherwise: the embedded SIP backend and web console on
// loopback, an embedded Redis, Chinese prompts, Beijing time.
func Default() Config {
	var c Config
	c.Backend = "sip"
	c.SIP.Listen = "127.0.0.1:5060"
	c.SIP.Transports = []string{"udp", "tcp"}
	c.SIP.RTPPorts = "10000-20000"
	c.SIP.MediaTimeout = Duration(30 * time.Second)
	c.SIP.RTPPriority = 10
	c.SIP.MaxCalls = 2000
	c.SIP.Codecs = []string{"PCMU", "PCMA"}
	c.SIP.Realm = "hotline"
	c.SIP.DigestAlgorithms = []string{"MD5"}
	c.SIP.TCP = defaultSIPTCP()
	c.SIP.Numbers = []string{"12345"}
	c.SIP.AllowUnknownSources = true
	c.SIP.Limits = defaultSIPLimits()
	c.ARI.URL = "http://127.0.0.1:8088/ari"
	c.ARI.Username = "hotline"
	c.ARI.Application = "hotline"
	c.ARI.ReconnectMin = Duration(500 * time.Millisecond)
	c.ARI.ReconnectMax = Duration(30 * time.Second)
	c.ARI.PingInterval = Duration(10 * time.Second)
	c.ARI.PingTimeout = Duration(5 * time.Second)
	c.HTTP.Listen = "127.0.0.1:8080"
	c.Bans.MaxFailures = 5
	c.Bans.Window = Duration(time.Minute)
	c.Bans.Duration = Duration(10 * time.Minute)
	c.Bans.Allow = []string{}
	c.HTTP.LoginTTL = Duration(12 * time.Hour)
	c.HTTP.SessionTTL = Duration(12 * time.Hour)
	c.HTTP.SessionIdle = Duration(time.Hour)
	c.Audit.Retention = Duration(400 * 24 * time.Hour)
	c.Audit.MaxEntries = 500_000
	c.HTTP.TrustedProxies = []string{}
	c.ACD.RingTimeout = Duration(15 * time.Second)
	c.ACD.WrapUp = Duration(10 * time.Second)
	c.ACD.MaxMissed = 2
	c.ACD.MaxWait = Duration(3 * time.Minute)
	c.ACD.Reoffer = Duration(10 * time.Second)
	c.ACD.PositionEvery = Duration(30 * time.Second)
	c.Rating.PraiseKey = "1"
	c.Rating.BadReviewKey = "2"
	c.Rating.Tries = 3
	c.Rating.Timeout = Duration(5 * time.Second)
	c.Agents = []Agent{}
	c.Trunks = []Trunk{}
	c.Organizers = []Organizer{}
	c.Supervision = defaultSupervision()
	c.Callback = defaultCallback()
	c.Redis.ServerPath = "redis-server"
	c.IVR.Language = "zh"
	c.IVR.FirstDigitTimeout = Duration(5 * time.Second)
	c.IVR.Tries = 3
	c.Cluster.Lease = Duration(15 * time.Second)
	c.TimeZone = "Asia/Shanghai"
	c.Calls = defaultCalls()
	c.Appeals = defaultAppeals()
	c.Evaluation = defaultEvaluation()
	c.Probe = defaultProbe()
	c.Shutdown.Grace = Duration(60 * time.Second)
	c.Journal.Deadline = Duration(time.Second)
	c.Journal.AppealNumbers = 100
	c.Journal.OutageAfter = Duration(10 * time.Second)
	c.Journal.MaxSizeMB = 256
	c.Log.Level = "info"
	c.Log.Format = "auto"
	return c
}

// Agent is an agent provisioned in the file.
type Agent struct {
	ID         string   `yaml:"id"`
	Name       string   `yaml:"name"`
	SIPUser    string   `yaml:"sip_user"`
	Password   string   `yaml:"password"`
	Categories []string `yaml:"categories"`
}

// Location is the hotline's time zone. For a configuration that passed
// Validate it is TimeZone; otherwise, when the zone cannot be loaded, it is
// UTC.
func (c Config) Location() *time.Location {
	loc, err := loadZone(c.TimeZone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// AdvertisedIP is the address the SIP backend writes into SDP and Contact:
// sip.external_ip when set, else the IP that sip.listen names. It is "" when
// sip.listen names no single IP (a wildcard such as 0.0.0.0, or a host name),
// leaving the choice to the SIP stack.
func (c Config) AdvertisedIP() string {
	if c.SIP.ExternalIP != "" {
		return c.SIP.ExternalIP
	}
	host, _, err := net.SplitHostPort(c.SIP.Listen)
	if err != nil {
		return ""
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.IsUnspecified() {
		return ""
	}
	return host
}

// ARIEventsURL is the ARI events websocket of ari.url: the same host and
// path with "/events" added, ws:// for http:// and wss:// for https://, as
// Asterisk serves it (res_ari, GET /ari/events). The client adds the app
// and credentials as query parameters. It is "" when ari.url is malformed,
// which Validate reports.
func (c Config) ARIEventsURL() string {
	u, err := url.Parse(c.ARI.URL)
	if err != nil {
		return ""
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return ""
	}
	u.Path = strings.TrimRight(u.Path, "/") + "/events"
	u.RawPath = ""
	u.RawQuery, u.Fragment = "", ""
	return u.String()
}

// BanAllow is bans.allow as networks, a bare address as the network of
// that address alone. An entry that can not be read is left out, which
// Validate reports.
func (c Config) BanAllow() []netip.Prefix { return networks(c.Bans.Allow) }

// TrustedProxies is http.trusted_proxies as networks, as BanAllow reads
// bans.allow.
func (c Config) TrustedProxies() []netip.Prefix { return networks(c.HTTP.TrustedProxies) }

// networks reads a list of networks, leaving out what parseNetwork
// refuses, which Validate reports.
func networks(list []string) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		if p, err := parseNetwork(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// parseNetwork reads a CIDR ("10.0.0.0/8", "2001:db8::/32") or a bare
// address ("192.168.1.7").
func parseNetwork(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q: want a network such as 10.0.0.0/8 or an address such as 192.168.1.7", s)
		}
		if p.Masked() != p {
			return netip.Prefix{}, fmt.Errorf("%q: has bits set past the prefix length: want %s", s, p.Masked())
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q: want a network such as 10.0.0.0/8 or an address such as 192.168.1.7", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// RTPPortRange is sip.rtp_ports as numbers. A call's RTP takes an even port
// from low up to high-2 and its RTCP the odd port above (RFC 3550 section
// 11), so the range holds (high-low)/2 calls' media. Both are 0 when
// rtp_ports is malformed, which Validate reports.
func (c Config) RTPPortRange() (low, high int) {
	low, high, err := parsePortRange(c.SIP.RTPPorts)
	if err != nil {
		return 0, 0
	}
	return low, high
}

// parsePortRange reads "low-high".
func parsePortRange(s string) (low, high int, err error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, errPortRangeSyntax
	}
	low, errLow := strconv.Atoi(strings.TrimSpace(a))
	high, errHigh := strconv.Atoi(strings.TrimSpace(b))
	if errLow != nil || errHigh != nil {
		return 0, 0, errPortRangeSyntax
	}
	return low, high, nil
}

// StateDir is the node's state directory: storage.dir when set, else
// systemd's $STATE_DIRECTORY (its first entry), else
// $XDG_STATE_HOME/hotline, else $HOME/.local/state/hotline, as the XDG
// base directory specification places state. env is os.LookupEnv in main.
// It is "" when none of them is set.
func (c Config) StateDir(env func(string) (string, bool)) string {
	if c.Storage.Dir != "" {
		return c.Storage.Dir
	}
	get := func(name string) string {
		if env == nil {
			return ""
		}
		v, _ := env(name)
		return v
	}
	if dirs := get("STATE_DIRECTORY"); dirs != "" {
		first, _, _ := strings.Cut(dirs, ":")
		return first
	}
	if x := get("XDG_STATE_HOME"); filepath.IsAbs(x) {
		return filepath.Join(x, "hotline")
	}
	if home := get("HOME"); home != "" {
		return filepath.Join(home, ".local", "state", "hotline")
	}
	return ""
}

// JournalDir is where the journal lives: journal under the state
// directory (see StateDir); "" when there is none.
func (c Config) JournalDir(env func(string) (string, bool)) string {
	if dir := c.StateDir(env); dir != "" {
		return filepath.Join(dir, "journal")
	}
	return ""
}

// RedisDataDir is where the embedded Redis keeps its data: redis.data_dir,
// or redis under the state directory (see StateDir).
func (c Config) RedisDataDir(env func(string) (string, bool)) string {
	if c.Redis.DataDir != "" {
		return c.Redis.DataDir
	}
	if dir := c.StateDir(env); dir != "" {
		return filepath.Join(dir, "redis")
	}
	return ""
}
