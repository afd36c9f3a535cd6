package storage

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"

	"github.com/redis/go-redis/v9"
)

// AcceptedURLs names the forms of Options.URL, for error messages and help
// texts.
const AcceptedURLs = `redis://[user:password@]host[:port][/db][?option=value], ` +
	`rediss://… (the same, over TLS), ` +
	`unix://[user:password@]/path/to/redis.sock[?db=N], ` +
	`redis-sentinel://[user:password@]host[:port][,host[:port]…]/master-name[?db=N] (rediss-sentinel:// over TLS), ` +
	`redis+cluster://[user:password@]host[:port][,host[:port]…] (rediss+cluster:// over TLS)`

// Default ports when a host of a URL has none: Redis and Sentinel's
// registered ports.
const (
	redisPort    = "6379"
	sentinelPort = "26379"
)

// target is what a URL asks for: one server, a Sentinel-watched master, or
// a cluster. Exactly one of the option fields is set.
type target struct {
	single   *redis.Options
	failover *redis.FailoverOptions
	cluster  *redis.ClusterOptions
}

func (t target) client() redis.UniversalClient {
	switch {
	case t.failover != nil:
		return redis.NewFailoverClient(t.failover)
	case t.cluster != nil:
		return redis.NewClusterClient(t.cluster)
	default:
		return redis.NewClient(t.single)
	}
}

// CheckURL reports whether raw is a Redis URL that Open accepts, with the
// same parser Open uses, so a configuration is refused at load exactly
// when Open would refuse it. The error wraps ErrBadURL and never shows a
// password.
func CheckURL(raw string) error {
	_, err := parseURL(raw)
	return err
}

// parseURL reads Options.URL. Single servers use go-redis' own ParseURL.
// go-redis has no URL of its own for Sentinel or Cluster that lists every
// node in the authority, so those forms are rewritten into the URLs that
// its ParseFailoverURL and ParseClusterURL read (first node in the
// authority, the others as addr= options), and every go-redis query option
// (dial_timeout, read_timeout, pool_size, …) works in all forms.
//
// In the Sentinel form the user and password are the master's (Redis
// requirepass/ACL); sentinels that need their own take sentinel_username=
// and sentinel_password= options.
func parseURL(raw string) (target, error) {
	scheme, _, ok := strings.Cut(raw, "://")
	if !ok {
		return target{}, badURL(raw, errors.New("no scheme"))
	}
	switch scheme {
	case "redis", "rediss", "unix":
		o, err := redis.ParseURL(raw)
		if err != nil {
			return target{}, badURL(raw, err)
		}
		return target{single: o}, nil
	case "redis-sentinel", "rediss-sentinel":
		o, err := parseSentinel(raw, strings.TrimSuffix(scheme, "-sentinel"))
		if err != nil {
			return target{}, badURL(raw, err)
		}
		return target{failover: o}, nil
	case "redis+cluster", "rediss+cluster":
		o, err := parseCluster(raw, strings.TrimSuffix(scheme, "+cluster"))
		if err != nil {
			return target{}, badURL(raw, err)
		}
		return target{cluster: o}, nil
	}
	return target{}, badURL(raw, fmt.Errorf("unknown scheme %q", scheme))
}

// multiURL is a URL whose authority lists several nodes, which net/url
// does not parse.
type multiURL struct {
	user  *url.Userinfo
	hosts []string // host:port
	path  string
	query url.Values
}

func splitMulti(raw, defaultPort string) (multiURL, error) {
	_, rest, _ := strings.Cut(raw, "://")
	var m multiURL
	if strings.Contains(rest, "#") {
		return m, errors.New("a fragment (#) is not allowed")
	}
	rest, query, _ := strings.Cut(rest, "?")
	q, err := url.ParseQuery(query)
	if err != nil {
		return m, fmt.Errorf("query: %w", err)
	}
	m.query = q
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		m.path, rest = rest[i:], rest[:i]
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		// Parse the user info as net/url would, percent-decoding included.
		u, err := url.Parse("redis://" + rest[:i+1] + "host")
		if err != nil {
			return m, errors.New("bad user or password (percent-encode reserved characters)")
		}
		m.user, rest = u.User, rest[i+1:]
	}
	if rest == "" {
		return m, errors.New("no host")
	}
	for _, h := range strings.Split(rest, ",") {
		hp, err := hostPort(h, defaultPort)
		if err != nil {
			return m, err
		}
		m.hosts = append(m.hosts, hp)
	}
	return m, nil
}

func hostPort(h, defaultPort string) (string, error) {
	if h == "" {
		return "", errors.New("empty host in the host list")
	}
	host, port, err := net.SplitHostPort(h)
	if err != nil {
		// No port: a bare name, IPv4 address or bracketed IPv6 address.
		host, port = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"), defaultPort
		if strings.ContainsAny(host, "[]") || (strings.Contains(host, ":") && !strings.HasPrefix(h, "[")) {
			return "", fmt.Errorf("bad host %q", h)
		}
	}
	if host == "" || port == "" {
		return "", fmt.Errorf("bad host %q", h)
	}
	return net.JoinHostPort(host, port), nil
}

// goRedisURL is a URL in go-redis' multi-node form: the first host in the
// authority, the rest as addr= options.
func (m multiURL) goRedisURL(scheme string, user *url.Userinfo, q url.Values) string {
	for _, h := range m.hosts[1:] {
		q.Add("addr", h)
	}
	u := url.URL{Scheme: scheme, User: user, Host: m.hosts[0], RawQuery: q.Encode()}
	return u.String()
}

func parseSentinel(raw, scheme string) (*redis.FailoverOptions, error) {
	m, err := splitMulti(raw, sentinelPort)
	if err != nil {
		return nil, err
	}
	master := strings.Trim(m.path, "/")
	if master == "" || strings.Contains(master, "/") {
		return nil, errors.New("the path must be the master name, as in /mymaster")
	}
	if master, err = url.PathUnescape(master); err != nil {
		return nil, fmt.Errorf("master name: %w", err)
	}
	for _, reserved := range []string{"master_name", "addr", "username", "password"} {
		if m.query.Has(reserved) {
			return nil, fmt.Errorf("option %s= is set by the URL itself", reserved)
		}
	}
	q := m.query
	q.Set("master_name", master)
	var sentinelUser *url.Userinfo
	if q.Has("sentinel_username") || q.Has("sentinel_password") {
		sentinelUser = url.UserPassword(q.Get("sentinel_username"), q.Get("sentinel_password"))
		q.Del("sentinel_username")
		q.Del("sentinel_password")
	}
	if m.user != nil {
		q.Set("username", m.user.Username())
		if p, ok := m.user.Password(); ok {
			q.Set("password", p)
		}
	}
	return redis.ParseFailoverURL(m.goRedisURL(scheme, sentinelUser, q))
}

func parseCluster(raw, scheme string) (*redis.ClusterOptions, error) {
	m, err := splitMulti(raw, redisPort)
	if err != nil {
		return nil, err
	}
	if strings.Trim(m.path, "/") != "" {
		return nil, errors.New("a cluster URL has no path: Redis Cluster has only database 0")
	}
	if m.query.Has("addr") {
		return nil, errors.New("list the nodes in the host part, not as addr= options")
	}
	return redis.ParseClusterURL(m.goRedisURL(scheme, m.user, m.query))
}

// badURL wraps err in ErrBadURL with the URL, its password masked, and the
// forms that are accepted.
func badURL(raw string, err error) error {
	// net/url errors quote the whole URL, password included.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("%w %q: %v; accepted forms: %s", ErrBadURL, redact(raw), err, AcceptedURLs)
}

// passwordOption matches the password options of a URL's query.
var passwordOption = regexp.MustCompile(`(password=)[^&#]*`)

// redact masks the passwords of a URL of any accepted form, so it can be
// logged.
func redact(raw string) string {
	return passwordOption.ReplaceAllString(redactUser(raw), "${1}xxxxx")
}

func redactUser(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		if strings.Contains(raw, "@") {
			return "xxxxx"
		}
		return raw
	}
	end := len(rest)
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		end = i
	}
	at := strings.LastIndexByte(rest[:end], '@')
	if at < 0 {
		return raw
	}
	user, _, hasPassword := strings.Cut(rest[:at], ":")
	if !hasPassword {
		return raw
	}
	return scheme + "://" + user + ":xxxxx" + rest[at:]
}
