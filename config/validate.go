package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hotline12345/hotline/logging"
	"github.com/hotline12345/hotline/storage"
)

// Limits that Validate enforces.
const (
	minRTPPort         = 1024 // below are the system ports, not for media
	maxPort            = 65535
	minMediaTimeout    = 5 * time.Second // RTP comes every 20 ms; a few seconds' loss is not a hangup
	minDigitTimeout    = 1 * time.Second
	maxDigitTimeout    = 60 * time.Second
	minTries, maxTries = 1, 10
)

// Validate checks every setting and returns all problems joined
// (errors.Join), each a *KeyError naming the setting's YAML key, such as
// `sip.listen: "abc": missing port`. It returns nil for a configuration the
// service can start with.
func (c Config) Validate() error {
	var p problems
	p.check("backend", oneOf(c.Backend, "sip", "asterisk"))
	if c.Backend == "asterisk" {
		c.validateARI(&p)
	}

	p.check("sip.listen", checkAddress(c.SIP.Listen))
	if slices.Contains(c.SIP.Transports, "tls") {
		p.check("sip.transports", errors.New(`"tls": SIP over TLS listens on an address of its own: set sip.tls_listen (e.g. 0.0.0.0:5061)`))
	} else {
		p.check("sip.transports", subsetOf(c.SIP.Transports, "udp", "tcp"))
	}
	if c.SIP.ExternalIP != "" {
		p.check("sip.external_ip", checkExternalIP(c.SIP.ExternalIP))
	}
	p.check("sip.rtp_ports", checkRTPPorts(c.SIP.RTPPorts))
	p.check("sip.media_timeout", atLeast(c.SIP.MediaTimeout, minMediaTimeout))
	p.check("sip.ring_time", atLeast(c.SIP.RingTime, 0))
	if c.SIP.RTPPriority < 0 || c.SIP.RTPPriority > 99 {
		p.check("sip.rtp_priority", fmt.Errorf("%d: want 0 (ordinary priority) or a SCHED_FIFO priority 1-99", c.SIP.RTPPriority))
	}
	if c.SIP.MaxCalls < 1 {
		p.check("sip.max_calls", fmt.Errorf("%d: want at least 1", c.SIP.MaxCalls))
	}
	p.check("sip.codecs", subsetOf(c.SIP.Codecs, "PCMU", "PCMA"))
	c.SIP.TCP.validate(&p)
	p.check("sip.numbers", checkNumbers(c.SIP.Numbers))
	c.SIP.Limits.validate(&p)

	p.check("http.listen", checkAddress(c.HTTP.Listen))
	if sameTCPAddress(c) {
		p.check("http.listen", fmt.Errorf("%q: sip.listen has the same address, and SIP listens on TCP there too", c.HTTP.Listen))
	}
	c.validateTLS(&p)
	p.check("http.login_ttl", within(c.HTTP.LoginTTL, time.Minute, 30*24*time.Hour))
	p.check("http.session_ttl", within(c.HTTP.SessionTTL, time.Minute, 7*24*time.Hour))
	p.check("http.session_idle", within(c.HTTP.SessionIdle, time.Minute, time.Duration(c.HTTP.SessionTTL)))
	p.check("audit.retention", within(c.Audit.Retention, 24*time.Hour, 10*365*24*time.Hour))
	if c.Audit.MaxEntries < 1000 || c.Audit.MaxEntries > 100_000_000 {
		p.check("audit.max_entries", fmt.Errorf("%d: want 1000 to 100000000", c.Audit.MaxEntries))
	}
	if t := c.HTTP.MetricsToken; t != "" && len(t) < 16 {
		p.check("http.metrics_token", errors.New("shorter than 16 characters: anyone reaching the port could guess it"))
	}
	for _, s := range c.HTTP.TrustedProxies {
		if _, err := parseNetwork(s); err != nil {
			p.check("http.trusted_proxies", err)
		}
	}

	if c.Bans.MaxFailures < 1 {
		p.check("bans.max_failures", fmt.Errorf("%d: want at least 1", c.Bans.MaxFailures))
	}
	p.check("bans.window", atLeast(c.Bans.Window, time.Second))
	p.check("bans.duration", atLeast(c.Bans.Duration, time.Second))
	for _, s := range c.Bans.Allow {
		if _, err := parseNetwork(s); err != nil {
			p.check("bans.allow", err)
		}
	}

	if c.Redis.URL != "" {
		p.check("redis.url", checkRedisURL(c.Redis.URL))
	} else if c.Redis.DataDir != "" && strings.TrimSpace(c.Redis.DataDir) == "" {
		p.check("redis.data_dir", errors.New("blank: empty it to keep the embedded Redis's data under storage.dir, or name a folder"))
	}

	p.check("ivr.language", oneOf(c.IVR.Language, "zh", "en"))
	p.check("ivr.first_digit_timeout", within(c.IVR.FirstDigitTimeout, minDigitTimeout, maxDigitTimeout))
	if c.IVR.Tries < minTries || c.IVR.Tries > maxTries {
		p.check("ivr.tries", fmt.Errorf("%d: want %d to %d", c.IVR.Tries, minTries, maxTries))
	}

	if c.SIP.Realm == "" || strings.ContainsAny(c.SIP.Realm, "\"\\\r\n") {
		p.check("sip.realm", fmt.Errorf("%q: want a non-empty name without quotes, backslashes or line breaks", c.SIP.Realm))
	}
	p.check("sip.digest_algorithms", subsetOf(c.SIP.DigestAlgorithms, "SHA-256", "MD5"))
	p.check("acd.ring_timeout", within(c.ACD.RingTimeout, 5*time.Second, 2*time.Minute))
	p.check("acd.wrap_up", within(c.ACD.WrapUp, 0, 10*time.Minute))
	if c.ACD.MaxMissed < 1 || c.ACD.MaxMissed > 10 {
		p.check("acd.max_missed", fmt.Errorf("%d: want 1 to 10", c.ACD.MaxMissed))
	}
	p.check("acd.max_wait", within(c.ACD.MaxWait, 10*time.Second, time.Hour))
	p.check("acd.reoffer", within(c.ACD.Reoffer, time.Second, 10*time.Minute))
	p.check("acd.position_every", within(c.ACD.PositionEvery, 10*time.Second, 10*time.Minute))
	p.check("rating.praise_key", checkKey(c.Rating.PraiseKey))
	p.check("rating.bad_review_key", checkKey(c.Rating.BadReviewKey))
	if c.Rating.PraiseKey == c.Rating.BadReviewKey {
		p.check("rating.bad_review_key", fmt.Errorf("%q: the same key as rating.praise_key", c.Rating.BadReviewKey))
	}
	if c.Rating.Tries < 1 || c.Rating.Tries > 5 {
		p.check("rating.tries", fmt.Errorf("%d: want 1 to 5", c.Rating.Tries))
	}
	p.check("rating.timeout", within(c.Rating.Timeout, time.Second, time.Minute))
	ids, users := map[string]bool{}, map[string]bool{}
	for i, a := range c.Agents {
		key := fmt.Sprintf("agents[%d]", i)
		if !identPattern.MatchString(a.ID) {
			p.check(key+".id", fmt.Errorf("%q: want 1-64 letters, digits, '.', '_' or '-'", a.ID))
		} else if ids[a.ID] {
			p.check(key+".id", fmt.Errorf("%q: listed twice", a.ID))
		}
		if !identPattern.MatchString(a.SIPUser) {
			p.check(key+".sip_user", fmt.Errorf("%q: want 1-64 letters, digits, '.', '_' or '-'", a.SIPUser))
		} else if users[a.SIPUser] {
			p.check(key+".sip_user", fmt.Errorf("%q: listed twice", a.SIPUser))
		}
		ids[a.ID], users[a.SIPUser] = true, true
		// The rule of acd.AgentSpec: a phone's password is tried by
		// anyone who reaches the SIP port.
		switch {
		case utf8.RuneCountInString(a.Password) < 10:
			p.check(key+".password", errors.New("want at least 10 characters"))
		case strings.EqualFold(a.Password, a.SIPUser):
			p.check(key+".password", errors.New("must not be the sip_user"))
		}
		if len(a.Categories) == 0 {
			p.check(key+".categories", errors.New("empty: want some of emergency, livelihood, general, complex"))
		}
		p.check(key+".categories", subsetOf(a.Categories, "emergency", "livelihood", "general", "complex"))
	}
	c.validateTrunks(&p)
	if c.Node != "" && !identPattern.MatchString(c.Node) {
		p.check("node", fmt.Errorf("%q: want 1-64 letters, digits, '.', '_' or '-'", c.Node))
	}

	// Below a second, a busy machine's pause looks like a lost node;
	// above five minutes, agents wait that long for a crashed node.
	p.check("cluster.lease", within(c.Cluster.Lease, time.Second, 5*time.Minute))

	p.check("time_zone", checkTimeZone(c.TimeZone))
	c.Calls.validate(&p)
	c.Appeals.validate(&p)
	c.Evaluation.validate(&p)
	c.Ops.validate(&p)
	c.Probe.validate(&p)
	validateOrganizers(c.Organizers, &p)
	c.Supervision.validate(&p)
	c.Callback.validate(&p)
	p.check("shutdown.grace", atLeast(c.Shutdown.Grace, 0))
	// Below 100 ms a busy Redis looks down; above 10 s a caller waits in
	// silence that long.
	p.check("journal.deadline", within(c.Journal.Deadline, 100*time.Millisecond, 10*time.Second))
	p.check("journal.outage_after", within(c.Journal.OutageAfter, 0, 10*time.Minute))
	if c.Journal.AppealNumbers < 1 || c.Journal.AppealNumbers > 10000 {
		p.check("journal.appeal_numbers", fmt.Errorf("%d: want 1 to 10000", c.Journal.AppealNumbers))
	}
	if c.Journal.MaxSizeMB < 1 || c.Journal.MaxSizeMB > 1<<20 {
		p.check("journal.max_size_mb", fmt.Errorf("%d: want 1 to %d", c.Journal.MaxSizeMB, 1<<20))
	}

	if _, err := logging.ParseLevel(c.Log.Level); err != nil {
		p.check("log.level", err)
	}
	if _, err := logging.ParseFormat(c.Log.Format); err != nil {
		p.check("log.format", err)
	}
	return errors.Join(p...)
}

// validateARI checks the settings the asterisk backend reads.
func (c Config) validateARI(p *problems) {
	p.check("ari.url", checkARIURL(c.ARI.URL))
	// RFC 7617 section 2: the user-id of basic auth cannot hold a colon,
	// and neither can the user of ARI's api_key=user:password.
	if c.ARI.Username == "" || strings.Contains(c.ARI.Username, ":") {
		p.check("ari.username", fmt.Errorf("%q: want a user of ari.conf, without ':'", c.ARI.Username))
	}
	if c.ARI.Password == "" {
		p.check("ari.password", errors.New("empty: the asterisk backend needs the password of ari.username in ari.conf"))
	}
	// The websocket's app= parameter is a comma-separated list of
	// applications, and the dialplan's Stasis() splits its arguments on
	// commas: a plain name fits both.
	if !identPattern.MatchString(c.ARI.Application) {
		p.check("ari.application", fmt.Errorf("%q: want 1-64 letters, digits, '.', '_' or '-', as in the dialplan's Stasis(hotline)", c.ARI.Application))
	}
	p.check("ari.reconnect_min", atLeast(c.ARI.ReconnectMin, time.Millisecond))
	p.check("ari.reconnect_max", atLeast(c.ARI.ReconnectMax, time.Millisecond))
	if c.ARI.ReconnectMin > c.ARI.ReconnectMax {
		p.check("ari.reconnect_max", fmt.Errorf("%s: below ari.reconnect_min %s", c.ARI.ReconnectMax, c.ARI.ReconnectMin))
	}
	p.check("ari.ping_interval", atLeast(c.ARI.PingInterval, time.Millisecond))
	p.check("ari.ping_timeout", atLeast(c.ARI.PingTimeout, time.Millisecond))
}

// checkARIURL accepts ARI's REST root: http or https, a host, and a path
// (Asterisk serves ARI under /ari, behind a proxy perhaps under a prefix).
// Credentials in the URL are refused, and the URL is then not repeated in
// the message: they belong in ari.username and ari.password, out of logs.
func checkARIURL(s string) error {
	u, err := parseURL(s)
	if err != nil {
		return err
	}
	switch {
	case u.User != nil:
		return errors.New("has credentials: put them in ari.username and ari.password")
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%q: want http:// or https://, as in http://127.0.0.1:8088/ari", s)
	case u.Host == "":
		return fmt.Errorf("%q: no host", s)
	case strings.Trim(u.Path, "/") == "":
		return fmt.Errorf("%q: no path: want ARI's root, as in http://127.0.0.1:8088/ari", s)
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("%q: want no query or fragment", s)
	}
	return nil
}

// identPattern is what agent ids, SIP users and node names may be: fit
// for a SIP URI's user part and a Redis key without escaping.
var identPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// checkKey accepts one DTMF key.
func checkKey(k string) error {
	if len(k) != 1 || !strings.Contains("0123456789*#", k) {
		return fmt.Errorf("%q: want one key of 0-9, * or #", k)
	}
	return nil
}

// problems collects KeyErrors.
type problems []error

// check records err, if any, against key.
func (p *problems) check(key string, err error) {
	if err != nil {
		*p = append(*p, &KeyError{Key: key, Err: err})
	}
}

// checkAddress accepts host:port with a numeric port. The host may be empty
// (every interface) and the port 0 (any free port, as tests use).
func checkAddress(s string) error {
	if !strings.Contains(s, ":") {
		return fmt.Errorf("%q: missing port", s)
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			return fmt.Errorf("%q: %s", s, ae.Err)
		}
		return fmt.Errorf("%q: %w", s, err)
	}
	if port == "" {
		return fmt.Errorf("%q: missing port", s)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n > maxPort {
		return fmt.Errorf("%q: port %q is not a number from 0 to %d", s, port, maxPort)
	}
	if strings.ContainsAny(host, " \t/") {
		return fmt.Errorf("%q: %q is not a host", s, host)
	}
	return nil
}

// checkExternalIP accepts one usable IP address: it goes into SDP's c= line
// (RFC 4566 section 5.7), where the far end sends media.
func checkExternalIP(s string) error {
	ip := net.ParseIP(s)
	switch {
	case ip == nil:
		return fmt.Errorf("%q: not an IP address", s)
	case ip.IsUnspecified():
		return fmt.Errorf("%q: the far end cannot send media to a wildcard address", s)
	}
	return nil
}

// checkRTPPorts accepts "low-high" within 1024-65535 whose span high-low is
// even and at least 2, starting on an even port: each call takes an even
// port for RTP and the odd one above for RTCP (RFC 3550 section 11).
func checkRTPPorts(s string) error {
	low, high, err := parsePortRange(s)
	switch {
	case err != nil:
		return fmt.Errorf("%q: %w", s, err)
	case low < minRTPPort || high > maxPort:
		return fmt.Errorf("%q: want ports within %d-%d", s, minRTPPort, maxPort)
	case low >= high:
		return fmt.Errorf("%q: the first port must be below the last", s)
	case low%2 != 0 || (high-low)%2 != 0:
		return fmt.Errorf("%q: want an even first port and an even span, as RTP takes even ports and RTCP the odd port above (RFC 3550 section 11)", s)
	}
	return nil
}

// parseURL parses a URL setting; its error leaves out the URL itself,
// which may hold a password.
func parseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("not a URL: %w", err)
	}
	return u, nil
}

// checkRedisURL accepts every URL form storage.Open speaks (one node,
// Sentinel, Cluster), read by storage's own parser. Its error never shows
// the password, and wraps storage.ErrBadURL.
func checkRedisURL(s string) error {
	return storage.CheckURL(s)
}

// checkTimeZone accepts an IANA zone name. "Local" is refused: the appeal
// clocks must not change with the host's setting.
func checkTimeZone(s string) error {
	if _, err := loadZone(s); err != nil {
		return fmt.Errorf("%q: %w", s, err)
	}
	return nil
}

// loadZone loads the IANA zone name.
func loadZone(name string) (*time.Location, error) {
	switch name {
	case "":
		return nil, errors.New("want a zone name such as Asia/Shanghai")
	case "Local":
		return nil, errors.New("want a zone name such as Asia/Shanghai, not the host's zone")
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, errors.New("unknown time zone")
	}
	return loc, nil
}

// sameTCPAddress reports whether SIP over TCP and HTTP would listen on the
// same address, which fails at start with "address already in use".
func sameTCPAddress(c Config) bool {
	return c.SIP.Listen == c.HTTP.Listen &&
		!strings.HasSuffix(c.HTTP.Listen, ":0") &&
		slices.Contains(c.SIP.Transports, "tcp")
}

// oneOf accepts a value among allowed.
func oneOf(s string, allowed ...string) error {
	if slices.Contains(allowed, s) {
		return nil
	}
	return fmt.Errorf("%q: want %s", s, strings.Join(allowed, " or "))
}

// subsetOf accepts a non-empty list of allowed values, none twice.
func subsetOf(list []string, allowed ...string) error {
	if len(list) == 0 {
		return fmt.Errorf("empty: want one or more of %s", strings.Join(allowed, ", "))
	}
	for i, s := range list {
		if !slices.Contains(allowed, s) {
			return fmt.Errorf("%q: want one or more of %s", s, strings.Join(allowed, ", "))
		}
		if slices.Contains(list[:i], s) {
			return fmt.Errorf("%q: listed twice", s)
		}
	}
	return nil
}

// atLeast accepts d >= lowest.
func atLeast(d Duration, lowest time.Duration) error {
	if time.Duration(d) < lowest {
		return fmt.Errorf("%s: want at least %s", d, lowest)
	}
	return nil
}

// within accepts lowest <= d <= highest.
func within(d Duration, lowest, highest time.Duration) error {
	if time.Duration(d) < lowest || time.Duration(d) > highest {
		return fmt.Errorf("%s: want %s to %s", d, lowest, highest)
	}
	return nil
}
