package ban

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// Options configure New. Zero values take the defaults named on each
// field.
type Options struct {
	Redis redis.UniversalClient // required
	// Prefix starts every key, "hotline" by default; the keys share the
	// hash tag {ban}.
	Prefix string
	// MaxFailures (5) failures within Window (1 min) ban their subject for
	// Duration (10 min).
	MaxFailures int
	Window      time.Duration
	Duration    time.Duration
	// Allow lists networks never banned: their failures are logged, but
	// not in the line fail2ban reads, and not counted.
	Allow []netip.Prefix
	// Remember (2 s) is the longest a ban seen is trusted without asking
	// Redis again: a ban lifted on one node is lifted everywhere within
	// it. MaxRemembered (10,000) bounds the bans remembered.
	Remember      time.Duration
	MaxRemembered int

	Logger zerolog.Logger
	Now    func() time.Time // time.Now by default
}

// Bans counts failed authentications and keeps the bans they earn, shared
// by every node through Redis. It is a prometheus.Collector. Its methods
// are safe for concurrent use.
type Bans struct {
	opts   Options
	log    zerolog.Logger
	keys   keys
	memory *memory

	failures *prometheus.CounterVec
	made     *prometheus.CounterVec
	active   *prometheus.Desc
}

// liftedKeep is how long Lift's answer is kept for a retry of its script.
const liftedKeep = time.Minute

// maxMember is the longest failure ID or user name stored as is; a longer
// one, which only a peer making trouble sends, is stored as its hash.
const maxMember = 128

// New checks opts and fills in the defaults.
func New(opts Options) (*Bans, error) {
	if opts.Redis == nil {
		return nil, errors.New("ban: Redis is required")
	}
	if opts.MaxFailures < 0 || opts.Window < 0 || opts.Duration < 0 || opts.Remember < 0 || opts.MaxRemembered < 0 {
		return nil, fmt.Errorf("ban: negative MaxFailures %d, Window %s, Duration %s, Remember %s or MaxRemembered %d",
			opts.MaxFailures, opts.Window, opts.Duration, opts.Remember, opts.MaxRemembered)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&opts.Window, time.Minute)
	def(&opts.Duration, 10*time.Minute)
	def(&opts.Remember, 2*time.Second)
	if opts.MaxFailures == 0 {
		opts.MaxFailures = 5
	}
	if opts.MaxRemembered == 0 {
		opts.MaxRemembered = 10000
	}
	if opts.Prefix == "" {
		opts.Prefix = "hotline"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	allow := make([]netip.Prefix, 0, len(opts.Allow))
	for _, p := range opts.Allow {
		if !p.IsValid() {
			return nil, fmt.Errorf("ban: allow-list entry %s is not a network", p)
		}
		// A source is compared unmapped, so an IPv4 network written as
		// IPv4-mapped IPv6 is turned back into IPv4 to meet it.
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		allow = append(allow, p.Masked())
	}
	opts.Allow = allow
	return &Bans{
		opts:   opts,
		log:    opts.Logger,
		keys:   keys{base: opts.Prefix + ":{ban}:"},
		memory: newMemory(opts.Remember, opts.MaxRemembered),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hotline_auth_failures_total",
			Help: "Failed authentications seen by this node, by service.",
		}, []string{"service"}),
		made: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hotline_bans_total",
			Help: "Bans made by this node, by the service whose failures made them and the kind of subject (source, user).",
		}, []string{"service", "kind"}),
		active: prometheus.NewDesc("hotline_bans_active",
			"Bans in force on every node, by kind of subject (source, user).", []string{"kind"}, nil),
	}, nil
}

// allowed reports whether src (unmapped) is on the allow-list.
func (b *Bans) allowed(src netip.Addr) bool {
	return slices.ContainsFunc(b.opts.Allow, func(p netip.Prefix) bool { return p.Contains(src) })
}

// subjectFailure is one subject a failure counts against.
type subjectFailure struct {
	subject string
	member  string // what the window holds for this failure
}

// Fail logs a failure and counts it against its source and, with PerUser
// and a known user, against the user of the service; a subject that
// reaches MaxFailures within Window is banned for Duration. Failures of
// every service count together against a source.
//
// The failure is logged in the one line fail2ban's filters match
// (deploy/fail2ban), the source first among the fields so that nothing a
// peer chose (the user field) precedes it:
//
//	{"level":"warn","source_ip":"203.0.113.9","user":"1001","reason":"wrong response","time":"…","message":"sip auth failed"}
//
// A failure from an allow-listed source is logged with the message
// "<service> auth failed from an allowed source", which the filters do not
// match, and not counted. A ban is logged once, by the node whose failure
// made it, as "<service> source banned" or "<service> user banned".
//
// Counting is idempotent by ID (a failure with an empty ID counts each
// time). For an UnknownUser the source's window holds the user's name
// instead of the ID, so one unknown name retried from one source counts
// once per window, while guessing names counts every name.
func (b *Bans) Fail(ctx context.Context, f Failure) error {
	src := f.Source.Unmap()
	if !src.IsValid() || !validService(f.Service) {
		return fmt.Errorf("%w: failure from %q of service %q", ErrInvalid, f.Source, f.Service)
	}
	b.failures.WithLabelValues(f.Service).Inc()
	if b.allowed(src) {
		b.log.Warn().Str("source_ip", src.String()).Str("user", f.User).Str("reason", f.Reason).
			Msg(f.Service + " auth failed from an allowed source")
		return nil
	}
	b.log.Warn().Str("source_ip", src.String()).Str("user", f.User).Str("reason", f.Reason).Msg(f.Service + " auth failed")

	token := randomToken()
	id := "id:" + f.ID
	if f.ID == "" {
		id = "id:" + token
	}
	member := id
	if f.UnknownUser {
		member = "name:" + f.Service + ":" + f.User
	}
	subjects := []subjectFailure{{subject: SourceSubject(src), member: shorten(member)}}
	// An unknown user has no account to guess the password of, and
	// counting against it would let a peer make a key per name it
	// invents.
	if f.PerUser && !f.UnknownUser && f.User != "" {
		subjects = append(subjects, subjectFailure{subject: UserSubject(f.Service, f.User), member: shorten(id)})
	}
	now := b.opts.Now()
	ks := make([]string, 0, 3*len(subjects))
	args := []any{now.UnixMilli(), b.opts.Window.Milliseconds(), b.opts.MaxFailures, b.opts.Duration.Milliseconds(), token, f.Service}
	for _, s := range subjects {
		ks = append(ks, b.keys.window(s.subject), b.keys.ban(s.subject), b.keys.index(kindOf(s.subject)))
		args = append(args, s.subject, s.member)
	}
	res, err := failScript.Run(ctx, b.opts.Redis, ks, args...).Int64Slice()
	if err != nil {
		return fmt.Errorf("ban: counting a %s failure of %s: %w", f.Service, src, err)
	}
	for i, s := range subjects {
		if res[2*i] == 0 {
			continue
		}
		until := time.UnixMilli(res[2*i]).UTC()
		kind := kindOf(s.subject)
		b.memory.put(s.subject, until, now)
		b.made.WithLabelValues(f.Service, kind).Inc()
		ev := b.log.Warn().Str("subject", s.subject).Str("service", f.Service)
		if kind == KindUser {
			ev = ev.Str("user", f.User)
		}
		ev.Int64("failures", res[2*i+1]).Time("until", until).Msg(f.Service + " " + kind + " banned")
	}
	return nil
}

// shorten keeps what goes into the window to a bounded size.
func shorten(member string) string {
	if len(member) <= maxMember {
		return member
	}
	sum := sha256.Sum256([]byte(member))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// randomToken names one call of a script, so that the script sent again
// by go-redis is known as the same call.
func randomToken() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail (Go 1.24)
	return hex.EncodeToString(b)
}

// Banned reports whether src is banned (a source's ban holds for every
// service) or, when user is not "", whether that user of service is, and
// until when, in UTC. An allow-listed source is
// never banned.
//
// A ban seen is remembered for up to Remember, never past its end, so a
// banned source's flood does not reach Redis at each request; a ban lifted
// on another node may so be enforced here for up to Remember more.
func (b *Bans) Banned(ctx context.Context, src netip.Addr, service, user string) (until time.Time, banned bool, err error) {
	src = src.Unmap()
	if !src.IsValid() {
		return time.Time{}, false, fmt.Errorf("%w: source %q", ErrInvalid, src)
	}
	if b.allowed(src) {
		return time.Time{}, false, nil
	}
	now := b.opts.Now()
	subjects := []string{SourceSubject(src)}
	if user != "" {
		subjects = append(subjects, UserSubject(service, user))
	}
	for _, s := range subjects {
		if u, ok := b.memory.get(s, now); ok {
			return u, true, nil
		}
	}
	cmds := make([]*redis.StringCmd, len(subjects))
	_, err = b.opts.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, s := range subjects {
			cmds[i] = p.HGet(ctx, b.keys.ban(s), "until")
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return time.Time{}, false, fmt.Errorf("ban: is %s banned: %w", subjects[0], err)
	}
	for i, c := range cmds {
		ms, err := c.Int64()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return time.Time{}, false, fmt.Errorf("ban: is %s banned: %w", subjects[i], err)
		}
		u := time.UnixMilli(ms).UTC()
		if !now.Before(u) {
			continue
		}
		b.memory.put(subjects[i], u, now)
		if u.After(until) {
			until = u
		}
	}
	return until, !until.IsZero(), nil
}

// List returns the bans in force, soonest end first; times are in UTC.
func (b *Bans) List(ctx context.Context) ([]Ban, error) {
	after := "(" + strconv.FormatInt(b.opts.Now().UnixMilli(), 10)
	var idx [2]*redis.StringSliceCmd
	_, err := b.opts.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, kind := range []string{KindSource, KindUser} {
			idx[i] = p.ZRangeByScore(ctx, b.keys.index(kind), &redis.ZRangeBy{Min: after, Max: "+inf"})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ban: list: %w", err)
	}
	subjects := append(idx[0].Val(), idx[1].Val()...)
	recs := make([]*redis.MapStringStringCmd, len(subjects))
	_, err = b.opts.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, s := range subjects {
			recs[i] = p.HGetAll(ctx, b.keys.ban(s))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ban: list: %w", err)
	}
	now := b.opts.Now()
	out := make([]Ban, 0, len(subjects))
	for i, s := range subjects {
		ban, ok := banOf(s, recs[i].Val())
		// Gone meanwhile (ended, or lifted).
		if ok && now.Before(ban.Until) {
			out = append(out, ban)
		}
	}
	slices.SortFunc(out, func(a, b Ban) int {
		if c := a.Until.Compare(b.Until); c != 0 {
			return c
		}
		return strings.Compare(a.Subject, b.Subject)
	})
	return out, nil
}

// banOf reads a ban's stored fields; false when there are none.
func banOf(subject string, rec map[string]string) (Ban, bool) {
	until, err := strconv.ParseInt(rec["until"], 10, 64)
	if err != nil {
		return Ban{}, false
	}
	since, _ := strconv.ParseInt(rec["since"], 10, 64)
	failures, _ := strconv.Atoi(rec["failures"])
	return Ban{
		Subject:  subject,
		Service:  rec["service"],
		Since:    time.UnixMilli(since).UTC(),
		Until:    time.UnixMilli(until).UTC(),
		Failures: failures,
	}, true
}

// Lift ends the ban of subject (as ParseSubject reads it) and clears its
// failure window, and returns the ban lifted; ErrNotFound when none was
// in force (the window is cleared all the same). This node stops
// enforcing it at once, others within Remember.
func (b *Bans) Lift(ctx context.Context, subject string) (Ban, error) {
	s, err := ParseSubject(subject)
	if err != nil {
		return Ban{}, err
	}
	vals, err := liftScript.Run(ctx, b.opts.Redis,
		[]string{b.keys.window(s), b.keys.ban(s), b.keys.index(kindOf(s)), b.keys.lifted(s)},
		s, randomToken(), liftedKeep.Milliseconds()).StringSlice()
	b.memory.drop(s)
	if err != nil {
		return Ban{}, fmt.Errorf("ban: lift %s: %w", s, err)
	}
	rec := make(map[string]string, len(vals)/2)
	for i := 0; i+1 < len(vals); i += 2 {
		rec[vals[i]] = vals[i+1]
	}
	ban, ok := banOf(s, rec)
	if !ok || !b.opts.Now().Before(ban.Until) {
		return Ban{}, fmt.Errorf("ban: lift %s: %w", s, ErrNotFound)
	}
	b.log.Info().Str("subject", s).Str("service", ban.Service).Time("until", ban.Until).Msg("ban lifted")
	return ban, nil
}
