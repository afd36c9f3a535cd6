package sip

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"math"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/ban"
)

// Credential is what the registrar needs of an agent: never a password.
type Credential struct {
	// AgentID names the agent to Presence.
	AgentID string
	// HA1 is hex MD5(user ":" realm ":" password) (RFC 2617 §3.2.2.2,
	// RFC 3261 §22.4).
	HA1 string
	// HA1SHA256 is hex SHA-256 of the same string (RFC 7616 §3.4.2,
	// RFC 8760); empty when the agent's store has none.
	HA1SHA256 string
}

// ErrUnknownUser is returned by Credentials for a user it does not know.
var ErrUnknownUser = errors.New("sip: unknown user")

// Credentials finds an agent's credential by SIP user name.
type Credentials interface {
	// Credential returns the user's credential, or ErrUnknownUser.
	Credential(ctx context.Context, user string) (Credential, error)
}

// Presence hears when an agent's phone becomes reachable (its first
// binding is added) or stops being so (its last binding is removed, by an
// unregister or by expiry, on whichever node notices). Each change is
// reported once, by the node that made it; the changes of one agent
// alternate, but reports from two nodes may arrive out of order, so an
// implementation that cares asks the Locator for the current state.
type Presence interface {
	Registered(ctx context.Context, agentID string) error
	Unregistered(ctx context.Context, agentID string) error
}

// RegistrarOptions configure NewRegistrar. Zero durations take the
// defaults named on each field.
type RegistrarOptions struct {
	// Realm is the digest realm, "hotline" by default. It is part of every
	// stored HA1, so changing it invalidates them all.
	Realm       string
	Credentials Credentials // required
	Presence    Presence    // may be nil
	Redis       redis.UniversalClient
	// Prefix starts every key, "hotline" by default; the keys share the
	// hash tag {reg} so that Redis Cluster keeps them in one slot.
	Prefix string
	// Secret signs nonces (HMAC-SHA256), so that any node sharing it
	// accepts a nonce another node issued. At least 16 bytes.
	Secret []byte

	// MinExpires (60 s) is the shortest registration taken; a shorter one
	// gets 423 (RFC 3261 §10.3 step 7). MaxExpires (3600 s) caps longer
	// ones; DefaultExpires (3600 s) applies when the phone names none.
	MinExpires, MaxExpires, DefaultExpires time.Duration
	// Algorithms are the digest algorithms challenged with, most
	// preferred first (RFC 8760 §2.4): "SHA-256" and "MD5", both by
	// default. Phones are meant to skip a challenge they can not answer,
	// but some fail on it instead (baresip 1.0 with libre 1.1 gives up on
	// SHA-256): a fleet of those needs ["MD5"]. An agent whose Credential
	// has no SHA-256 hash is challenged with MD5 alone in any case.
	Algorithms []string
	// NonceTTL (5 min) is how long a nonce is good for; a well-signed
	// older one gets a new challenge with stale=true (RFC 7616 §3.3), so
	// the phone retries without asking anyone for the password.
	NonceTTL time.Duration

	// Bans counts failed authentications, as service "sip", and bans
	// sources that fail too often: their REGISTERs get 403 unchecked. It
	// is shared by every node, and with the HTTP API's logins. When nil,
	// one with ban's defaults (5 failures within a minute ban for 10
	// minutes) is made on Redis, Prefix, Logger and Now.
	Bans *ban.Bans

	// SweepInterval (10 s) is how often Run looks for expired bindings.
	SweepInterval time.Duration

	Logger zerolog.Logger
	Now    func() time.Time // time.Now by default
}

// Registrar is the agents' SIP registrar (RFC 3261 §10): digest
// authentication, bindings kept in Redis so that every node reaches every
// agent, and throttling (package ban) of sources that keep failing. It
// implements Locator. Its methods are safe for concurrent use.
type Registrar struct {
	opts    RegistrarOptions
	log     zerolog.Logger
	keys    registrarKeys
	sources agentSources // where agents' phones register from
}

type registrarKeys struct{ base string }

func (k registrarKeys) aor(user string) string     { return k.base + "aor:" + user }
func (k registrarKeys) expiry() string             { return k.base + "expiry" }
func (k registrarKeys) nonceCount(n string) string { return k.base + "nc:" + n }

// registrarTimeout bounds the Redis and Credentials work of one REGISTER
// and each Presence call.
const registrarTimeout = 5 * time.Second

// NewRegistrar checks opts and fills in the defaults.
func NewRegistrar(opts RegistrarOptions) (*Registrar, error) {
	if opts.Credentials == nil || opts.Redis == nil {
		return nil, errors.New("sip registrar: Credentials and Redis are required")
	}
	if len(opts.Secret) < 16 {
		return nil, errors.New("sip registrar: Secret must have at least 16 bytes")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.MinExpires, 60*time.Second)
	def(&opts.MaxExpires, time.Hour)
	def(&opts.DefaultExpires, time.Hour)
	def(&opts.NonceTTL, 5*time.Minute)
	def(&opts.SweepInterval, 10*time.Second)
	if opts.Realm == "" {
		opts.Realm = "hotline"
	}
	if opts.Prefix == "" {
		opts.Prefix = "hotline"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if len(opts.Algorithms) == 0 {
		opts.Algorithms = []string{"SHA-256", "MD5"}
	}
	for _, a := range opts.Algorithms {
		if a != "SHA-256" && a != "MD5" {
			return nil, fmt.Errorf("sip registrar: digest algorithm %q: want SHA-256 or MD5", a)
		}
	}
	if opts.MinExpires > opts.DefaultExpires || opts.DefaultExpires > opts.MaxExpires {
		return nil, fmt.Errorf("sip registrar: want MinExpires %s <= DefaultExpires %s <= MaxExpires %s",
			opts.MinExpires, opts.DefaultExpires, opts.MaxExpires)
	}
	if opts.Bans == nil {
		b, err := ban.New(ban.Options{Redis: opts.Redis, Prefix: opts.Prefix, Logger: opts.Logger, Now: opts.Now})
		if err != nil {
			return nil, fmt.Errorf("sip registrar: %w", err)
		}
		opts.Bans = b
	}
	return &Registrar{
		opts: opts,
		log:  opts.Logger,
		keys: registrarKeys{base: opts.Prefix + ":{reg}:"},
	}, nil
}

// bindingRecord is a Binding as stored, with what RFC 3261 §10.3 step 7
// compares on the next REGISTER.
type bindingRecord struct {
	Binding
	AgentID   string `json:"agent_id"`
	CallID    string `json:"call_id"`
	CSeq      uint32 `json:"cseq"`
	ExpiresMs int64  `json:"expires_ms"` // read by the Lua scripts
	UpdatedMs int64  `json:"updated_ms"`
}

func decodeRecord(s string) (bindingRecord, error) {
	var rec bindingRecord
	if err := json.Unmarshal([]byte(s), &rec); err != nil {
		return rec, fmt.Errorf("sip registrar: stored binding: %w", err)
	}
	rec.Expires = time.UnixMilli(rec.ExpiresMs)
	return rec, nil
}

// Lookup returns the user's live bindings, most recently refreshed first,
// or ErrNotRegistered.
func (r *Registrar) Lookup(ctx context.Context, user string) ([]Binding, error) {
	all, err := r.opts.Redis.HGetAll(ctx, r.keys.aor(user)).Result()
	if err != nil {
		return nil, fmt.Errorf("sip registrar: lookup %s: %w", user, err)
	}
	recs, err := r.live(all)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, ErrNotRegistered
	}
	return bindingsOf(recs), nil
}

// live decodes an AOR's stored bindings and keeps those not yet expired
// (a lapsed one may wait for the sweep), newest first.
func (r *Registrar) live(stored map[string]string) ([]bindingRecord, error) {
	now := r.opts.Now().UnixMilli()
	recs := make([]bindingRecord, 0, len(stored))
	for _, s := range stored {
		rec, err := decodeRecord(s)
		if err != nil {
			return nil, err
		}
		if rec.ExpiresMs > now {
			recs = append(recs, rec)
		}
	}
	sort.Slice(recs, func(i, j int) bool {
		if recs[i].UpdatedMs != recs[j].UpdatedMs {
			return recs[i].UpdatedMs > recs[j].UpdatedMs
		}
		return recs[i].Contact < recs[j].Contact
	})
	return recs, nil
}

func bindingsOf(recs []bindingRecord) []Binding {
	out := make([]Binding, len(recs))
	for i, rec := range recs {
		out[i] = rec.Binding
	}
	return out
}

// Bindings returns every live binding of every user, by user and then
// newest first.
func (r *Registrar) Bindings(ctx context.Context) ([]Binding, error) {
	now := r.opts.Now().UnixMilli()
	members, err := r.opts.Redis.ZRangeByScore(ctx, r.keys.expiry(), &redis.ZRangeBy{
		Min: "(" + strconv.FormatInt(now, 10), Max: "+inf",
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("sip registrar: bindings: %w", err)
	}
	var users []string
	seen := map[string]bool{}
	for _, m := range members {
		user, _, _ := strings.Cut(m, expirySep)
		if !seen[user] {
			seen[user] = true
			users = append(users, user)
		}
	}
	sort.Strings(users)
	cmds := make([]*redis.MapStringStringCmd, len(users))
	if _, err := r.opts.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, u := range users {
			cmds[i] = p.HGetAll(ctx, r.keys.aor(u))
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("sip registrar: bindings: %w", err)
	}
	var out []Binding
	for _, c := range cmds {
		recs, err := r.live(c.Val())
		if err != nil {
			return nil, err
		}
		out = append(out, bindingsOf(recs)...)
	}
	return out, nil
}

// expirySep joins user and contact key in the expiry set; neither holds
// a NUL.
const expirySep = "\x00"

// Run sweeps expired bindings every SweepInterval until ctx ends, then
// returns nil. Every node may run it: each expiry is claimed by one.
func (r *Registrar) Run(ctx context.Context) error {
	tick := time.NewTicker(r.opts.SweepInterval)
	defer tick.Stop()
	for {
		if err := r.sweep(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn().Err(err).Msg("sip registrar: sweep")
		}
		if err := r.refreshSources(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn().Err(err).Msg("sip registrar: agents' addresses")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// sweepBatch is how many lapsed bindings one sweep reads at a time.
const sweepBatch = 256

// sweep removes the bindings that have lapsed and reports the agents left
// with none.
func (r *Registrar) sweep(ctx context.Context) error {
	for {
		now := r.opts.Now().UnixMilli()
		members, err := r.opts.Redis.ZRangeByScore(ctx, r.keys.expiry(), &redis.ZRangeBy{
			Min: "-inf", Max: strconv.FormatInt(now, 10), Count: sweepBatch,
		}).Result()
		if err != nil {
			return fmt.Errorf("sip registrar: sweep: %w", err)
		}
		for _, m := range members {
			user, key, ok := strings.Cut(m, expirySep)
			if !ok {
				// Not ours to read; drop it so the sweep moves on.
				r.opts.Redis.ZRem(ctx, r.keys.expiry(), m)
				continue
			}
			res, err := claimScript.Run(ctx, r.opts.Redis, []string{r.keys.aor(user), r.keys.expiry()}, m, key, now).Slice()
			if err != nil {
				return fmt.Errorf("sip registrar: sweep: %w", err)
			}
			if res[0].(int64) != 1 {
				continue
			}
			rec, err := decodeRecord(res[1].(string))
			if err != nil {
				return err
			}
			r.log.Info().Str("user", user).Str("contact", rec.Contact).Msg("sip registration expired")
			r.notify(false, rec.AgentID)
		}
		if len(members) < sweepBatch {
			return nil
		}
	}
}

// claimScript removes one lapsed binding unless a refresh moved its
// expiry meanwhile. The check and the removal are one step, so of several
// nodes sweeping at once exactly one claims it. It returns {1, record}
// when that left the AOR empty, {0} when it did not, {-1} when the binding
// was not lapsed (or already claimed).
//
// KEYS: aor, expiry. ARGV: expiry member, contact key, now (ms).
var claimScript = redis.NewScript(`
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[3]) then return {-1} end
redis.call('ZREM', KEYS[2], ARGV[1])
local rec = redis.call('HGET', KEYS[1], ARGV[2])
if not rec then return {-1} end
redis.call('HDEL', KEYS[1], ARGV[2])
if redis.call('HLEN', KEYS[1]) == 0 then return {1, rec} end
return {0}
`)

// notify tells Presence; an error is logged, the binding change stands.
func (r *Registrar) notify(registered bool, agentID string) {
	if r.opts.Presence == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), registrarTimeout)
	defer cancel()
	var err error
	if registered {
		err = r.opts.Presence.Registered(ctx, agentID)
	} else {
		err = r.opts.Presence.Unregistered(ctx, agentID)
	}
	if err != nil {
		r.log.Warn().Err(err).Str("agent_id", agentID).Bool("registered", registered).Msg("sip registrar: presence")
	}
}

// handle answers one REGISTER (RFC 3261 §10.3). Server.onRegister calls it
// with the transport ("udp", "tcp", "tls") and source address of the request.
func (r *Registrar) handle(req *sip.Request, tx sip.ServerTransaction, transport string, source netip.AddrPort) {
	ctx, cancel := context.WithTimeout(context.Background(), registrarTimeout)
	defer cancel()
	ip := source.Addr().Unmap()
	_, banned, err := r.opts.Bans.Banned(ctx, ip, banService, "")
	if err != nil {
		r.serverError(tx, req, err)
		return
	}
	if banned {
		respond(tx, req, sip.StatusForbidden, "Forbidden")
		return
	}
	// Step 2: no extension is supported, so any Require is refused.
	if h := req.GetHeaders("Require"); len(h) > 0 {
		unsupported := make([]string, len(h))
		for i, v := range h {
			unsupported[i] = v.Value()
		}
		respond(tx, req, sip.StatusBadExtension, "Bad Extension", sip.NewHeader("Unsupported", strings.Join(unsupported, ", ")))
		return
	}
	cred, ok := r.authenticate(ctx, req, tx, ip)
	if !ok {
		return
	}
	user := req.To().Address.User
	contacts, wildcard, err := r.contacts(req)
	var brief errIntervalTooBrief
	switch {
	case errors.As(err, &brief):
		respond(tx, req, sip.StatusIntervalToBrief, "Interval Too Brief",
			sip.NewHeader("Min-Expires", strconv.Itoa(int(r.opts.MinExpires/time.Second))))
		return
	case err != nil:
		reject(tx, req, err)
		return
	}
	now := r.opts.Now()
	args := []any{user, now.UnixMilli(), req.CallID().Value(), req.CSeq().SeqNo, wildcard}
	userAgent := ""
	if h := req.GetHeader("User-Agent"); h != nil {
		userAgent = h.Value()
	}
	for _, c := range contacts {
		rec := bindingRecord{
			Binding: Binding{User: user, Contact: c.uri, Source: source, Transport: transport,
				Expires: now.Add(c.expires), UserAgent: userAgent},
			AgentID: cred.AgentID, CallID: req.CallID().Value(), CSeq: req.CSeq().SeqNo,
			UpdatedMs: now.UnixMilli(),
		}
		if c.expires > 0 {
			rec.ExpiresMs = now.Add(c.expires).UnixMilli()
		}
		b, err := json.Marshal(rec)
		if err != nil {
			r.serverError(tx, req, err)
			return
		}
		args = append(args, c.key, rec.ExpiresMs, string(b))
	}
	res, err := registerScript.Run(ctx, r.opts.Redis, []string{r.keys.aor(user), r.keys.expiry()}, args...).Slice()
	if err != nil {
		r.serverError(tx, req, err)
		return
	}
	if res[0].(string) == "cseq" {
		// Step 7: a request no newer than the binding's last one in the
		// same Call-ID is out of order; the bindings stay as they are.
		respond(tx, req, sip.StatusBadRequest, "Invalid CSeq number")
		return
	}
	stored := map[string]string{}
	for i, s := range res[2:] {
		stored[strconv.Itoa(i)] = s.(string)
	}
	recs, err := r.live(stored)
	if err != nil {
		r.serverError(tx, req, err)
		return
	}
	// Presence first: once the phone has its 200, the agent's state says
	// so already.
	ev := r.log.Debug() // a refresh, every few minutes per phone: not news
	switch res[1].(string) {
	case "registered":
		r.notify(true, cred.AgentID)
		ev = r.log.Info()
	case "unregistered":
		r.notify(false, cred.AgentID)
		ev = r.log.Info()
	}
	for _, rec := range recs {
		r.sources.note(rec.Source.Addr(), rec.Expires)
	}
	respond(tx, req, sip.StatusOK, "OK", r.okHeaders(recs, now)...)
	ev.Str("user", user).Str("source", source.String()).Int("bindings", len(recs)).Msg("sip register")
}

// okHeaders list the current bindings, each with the seconds it has left
// (step 8), and the registrar's Date, which phones without a clock use.
func (r *Registrar) okHeaders(recs []bindingRecord, now time.Time) []sip.Header {
	hdrs := make([]sip.Header, 0, len(recs)+1)
	for _, rec := range recs {
		left := time.Duration(rec.ExpiresMs-now.UnixMilli()) * time.Millisecond
		secs := int64(math.Ceil(left.Seconds()))
		hdrs = append(hdrs, sip.NewHeader("Contact", "<"+rec.Contact+">;expires="+strconv.FormatInt(secs, 10)))
	}
	// RFC 3261 §20.17: RFC 1123 form, always GMT.
	return append(hdrs, sip.NewHeader("Date", now.UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT")))
}

func (r *Registrar) serverError(tx sip.ServerTransaction, req *sip.Request, err error) {
	r.log.Error().Err(err).Str("sip_call_id", req.CallID().Value()).Msg("sip registrar")
	// Step 7: nothing was committed, the phone may try again.
	respond(tx, req, sip.StatusInternalServerError, "Server Internal Error", sip.NewHeader("Retry-After", "5"))
}

// registerScript applies one REGISTER's contacts to an AOR, all or none
// (RFC 3261 §10.3 step 7). Lapsed bindings not yet swept are dropped
// first. A contact whose binding has the request's Call-ID and a CSeq not
// lower than the request's aborts the lot. It returns {status, event,
// record...}: status "ok" or "cseq"; event "registered" when the AOR went
// from no bindings to some, "unregistered" for the reverse, "" otherwise;
// then the AOR's bindings after the change.
//
// KEYS: aor, expiry. ARGV: user, now (ms), Call-ID, CSeq, wildcard
// ("1"/"0"), then per contact: key, expires_ms (0 removes), record.
var registerScript = redis.NewScript(`
local aor, zs = KEYS[1], KEYS[2]
local user, now, callid, cseq = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local wildcard = ARGV[5] == '1'
local was = redis.call('HLEN', aor) > 0
local stored = redis.call('HGETALL', aor)
local current, lapsed = {}, {}
for i = 1, #stored, 2 do
  local rec = cjson.decode(stored[i+1])
  if rec.expires_ms <= now then lapsed[#lapsed+1] = stored[i] else current[stored[i]] = rec end
end
local function older(rec) return rec.call_id == callid and rec.cseq >= cseq end
if wildcard then
  for _, rec in pairs(current) do if older(rec) then return {'cseq', ''} end end
else
  for i = 6, #ARGV, 3 do
    local rec = current[ARGV[i]]
    if rec and older(rec) then return {'cseq', ''} end
  end
end
for _, key in ipairs(lapsed) do
  redis.call('HDEL', aor, key)
  redis.call('ZREM', zs, user .. '\0' .. key)
end
if wildcard then
  for key, _ in pairs(current) do
    redis.call('HDEL', aor, key)
    redis.call('ZREM', zs, user .. '\0' .. key)
  end
end
for i = 6, #ARGV, 3 do
  local key, exp = ARGV[i], tonumber(ARGV[i+1])
  if exp == 0 then
    redis.call('HDEL', aor, key)
    redis.call('ZREM', zs, user .. '\0' .. key)
  else
    redis.call('HSET', aor, key, ARGV[i+2])
    redis.call('ZADD', zs, exp, user .. '\0' .. key)
  end
end
local is = redis.call('HLEN', aor) > 0
local event = ''
if is and not was then event = 'registered' elseif was and not is then event = 'unregistered' end
local out = {'ok', event}
for _, v in ipairs(redis.call('HVALS', aor)) do out[#out+1] = v end
return out
`)

// contactBinding is one Contact of a REGISTER.
type contactBinding struct {
	uri     string
	key     string
	expires time.Duration // 0 removes the binding
}

type errIntervalTooBrief struct{}

func (errIntervalTooBrief) Error() string { return "interval too brief" }

// contacts reads the Contact header fields of a REGISTER with their
// expiry (RFC 3261 §10.3 steps 6 and 7). Contact: * stands alone with
// Expires: 0 and removes every binding.
func (r *Registrar) contacts(req *sip.Request) ([]contactBinding, bool, error) {
	headerExpires, hasHeader := r.opts.DefaultExpires, false
	if h := req.GetHeader("Expires"); h != nil {
		headerExpires, hasHeader = parseExpires(h.Value(), r.opts.DefaultExpires), true
	}
	var out []contactBinding
	hdrs := req.GetHeaders("Contact")
	for _, h := range hdrs {
		c, ok := h.(*sip.ContactHeader)
		if !ok {
			return nil, false, errors.New("unreadable Contact")
		}
		if c.Address.Wildcard {
			if len(hdrs) != 1 || !hasHeader || headerExpires != 0 {
				return nil, false, errors.New("wildcard Contact needs Expires: 0 and no other Contact")
			}
			return nil, true, nil
		}
		scheme := strings.ToLower(c.Address.Scheme)
		if (scheme != "sip" && scheme != "sips") || c.Address.Host == "" {
			return nil, false, fmt.Errorf("contact %s is not a SIP URI", c.Address.String())
		}
		exp := headerExpires
		if v, ok := c.Params.Get("expires"); ok {
			exp = parseExpires(v, r.opts.DefaultExpires)
		}
		if exp > 0 && exp < r.opts.MinExpires {
			// Step 7 allows 423 only for intervals under an hour.
			if exp < time.Hour {
				return nil, false, errIntervalTooBrief{}
			}
			exp = r.opts.MinExpires
		}
		exp = min(exp, r.opts.MaxExpires)
		addr := c.Address
		out = append(out, contactBinding{uri: addr.String(), key: contactKey(addr), expires: exp})
	}
	return out, false, nil
}

// parseExpires reads delta-seconds; a malformed value counts as the
// default, as RFC 3261 §20.19 and §20.10 ask.
func parseExpires(v string, def time.Duration) time.Duration {
	n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return def
	}
	// Larger values are taken as 2**32-1 (§10.2.1.1) before any capping.
	n = min(n, math.MaxUint32)
	return time.Duration(n) * time.Second
}

// contactKey identifies a binding's contact so that equal URIs (RFC 3261
// §19.1.4) meet: the scheme and host compare without case, the user with
// it, and the parameters that must match when either side has them
// (transport, user, ttl, method, maddr) take part; other parameters do
// not.
func contactKey(u sip.Uri) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(u.Scheme))
	b.WriteByte(':')
	if u.User != "" {
		b.WriteString(u.User)
		if u.Password != "" {
			b.WriteByte(':')
			b.WriteString(u.Password)
		}
		b.WriteByte('@')
	}
	b.WriteString(strings.ToLower(u.Host))
	if u.Port != 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(u.Port))
	}
	for _, p := range []string{"maddr", "method", "transport", "ttl", "user"} {
		for _, kv := range u.UriParams {
			if strings.EqualFold(kv.K, p) {
				b.WriteString(";" + p + "=" + strings.ToLower(kv.V))
			}
		}
	}
	return b.String()
}

// --- digest authentication (RFC 3261 §22.4, RFC 7616, RFC 8760) ---

// authenticate checks the request's credentials. When they do not pass it
// has answered: 401 with a challenge when there are none for our realm or
// the nonce is not usable, 403 when they are wrong.
func (r *Registrar) authenticate(ctx context.Context, req *sip.Request, tx sip.ServerTransaction, ip netip.Addr) (Credential, bool) {
	to := req.To().Address.User
	var creds *digest.Credentials
	for _, h := range req.GetHeaders("Authorization") {
		c, err := digest.ParseCredentials(h.Value())
		if err == nil && c.Realm == r.opts.Realm {
			creds = c
			break
		}
	}
	if creds == nil {
		r.challenge(ctx, req, tx, to, false)
		return Credential{}, false
	}
	issued, ok := r.nonceIssued(creds.Nonce)
	if !ok {
		// Not ours, or from before the Secret changed: a fresh challenge.
		r.challenge(ctx, req, tx, to, false)
		return Credential{}, false
	}
	cred, err := r.opts.Credentials.Credential(ctx, creds.Username)
	known := err == nil
	if err != nil && !errors.Is(err, ErrUnknownUser) {
		r.serverError(tx, req, err)
		return Credential{}, false
	}
	if !known {
		// Same work as for a known user, so the time taken does not tell
		// an unknown user from a wrong password.
		cred = r.dummyCredential(creds.Username)
	}
	if cred.AgentID == "" {
		cred.AgentID = creds.Username
	}
	valid, reason := r.verify(req, creds, cred)
	switch {
	case !known:
		reason = "unknown user"
	case valid && (to != creds.Username || req.From().Address.User != creds.Username):
		// An agent registers its own phone only, not another's.
		valid, reason = false, "To or From is not the authenticated user"
	}
	if !valid {
		r.failed(ctx, req, ip, creds.Username, reason, !known)
		respond(tx, req, sip.StatusForbidden, "Forbidden")
		return Credential{}, false
	}
	if r.opts.Now().Sub(issued) > r.opts.NonceTTL {
		r.challenge(ctx, req, tx, to, true)
		return Credential{}, false
	}
	// A nonce count must grow (RFC 7616 §3.4): a captured REGISTER played
	// again, with a Contact of the attacker's choosing, is not taken.
	// Without qop there is no count, so such a nonce serves once.
	fresh, err := nonceCountScript.Run(ctx, r.opts.Redis, []string{r.keys.nonceCount(creds.Nonce)},
		creds.Nc, (2 * r.opts.NonceTTL).Milliseconds()).Int()
	if err != nil {
		r.serverError(tx, req, err)
		return Credential{}, false
	}
	if fresh != 1 {
		r.log.Info().Str("source_ip", ip.String()).Str("user", creds.Username).Msg("sip register: nonce count reused")
		r.challenge(ctx, req, tx, to, true)
		return Credential{}, false
	}
	return cred, true
}

// nonceCountScript records a nonce's count if it is higher than any seen.
//
// KEYS: the nonce's counter. ARGV: nc, time to keep it (ms).
var nonceCountScript = redis.NewScript(`
local seen = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) <= seen then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`)

// verify compares the digest response with the one the credential gives.
func (r *Registrar) verify(req *sip.Request, c *digest.Credentials, cred Credential) (bool, string) {
	var (
		ha1  string
		hash func() hash.Hash
	)
	alg := strings.ToUpper(c.Algorithm)
	if alg == "" {
		alg = "MD5" // RFC 7616 §3.3: no algorithm means MD5
	}
	switch {
	case !slices.Contains(r.opts.Algorithms, alg):
		return false, "algorithm " + c.Algorithm
	case alg == "MD5":
		ha1, hash = cred.HA1, md5.New
	default:
		ha1, hash = cred.HA1SHA256, sha256.New
	}
	switch {
	case ha1 == "":
		return false, "no " + c.Algorithm + " credential"
	case c.Userhash:
		return false, "userhash"
	case c.QOP != "" && c.QOP != "auth":
		return false, "qop " + c.QOP
	case !sameURI(c.URI, req.Recipient):
		// RFC 7616 §3.4.6: the digest must be for this request.
		return false, "digest uri"
	}
	ha2 := hexHash(hash, string(req.Method)+":"+c.URI)
	var want string
	if c.QOP == "" {
		// RFC 2069 compatibility (RFC 2617 §3.2.2.1).
		want = hexHash(hash, ha1+":"+c.Nonce+":"+ha2)
	} else {
		want = hexHash(hash, fmt.Sprintf("%s:%s:%08x:%s:%s:%s", ha1, c.Nonce, c.Nc, c.Cnonce, c.QOP, ha2))
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(c.Response))) != 1 {
		return false, "wrong response"
	}
	return true, ""
}

func hexHash(h func() hash.Hash, s string) string {
	x := h()
	x.Write([]byte(s))
	return hex.EncodeToString(x.Sum(nil))
}

// sameURI reports whether a digest uri names the Request-URI.
func sameURI(digestURI string, target sip.Uri) bool {
	var u sip.Uri
	if err := sip.ParseUri(digestURI, &u); err != nil {
		return false
	}
	return contactKey(u) == contactKey(target)
}

// dummyCredential stands in for an unknown user: hashes of the right
// shape that no password gives.
func (r *Registrar) dummyCredential(user string) Credential {
	m := hmac.New(sha256.New, r.opts.Secret)
	m.Write([]byte("unknown user\x00" + user))
	sum := m.Sum(nil)
	return Credential{AgentID: user, HA1: hex.EncodeToString(sum[:16]), HA1SHA256: hex.EncodeToString(sum)}
}

// challenge answers 401 with a challenge per algorithm of Algorithms, in
// their order (RFC 8760 §2.4, RFC 7616 §3.7), leaving out SHA-256 when the
// user's credential has no SHA-256 hash. An unknown user is challenged as
// an agent with both hashes, so the challenge does not tell who exists.
func (r *Registrar) challenge(ctx context.Context, req *sip.Request, tx sip.ServerTransaction, user string, stale bool) {
	sha := true
	cred, err := r.opts.Credentials.Credential(ctx, user)
	switch {
	case err == nil:
		sha = cred.HA1SHA256 != ""
	case !errors.Is(err, ErrUnknownUser):
		r.serverError(tx, req, err)
		return
	}
	nonce, err := r.newNonce()
	if err != nil {
		r.serverError(tx, req, err)
		return
	}
	var hdrs []sip.Header
	for _, alg := range r.opts.Algorithms {
		if alg == "SHA-256" && !sha {
			continue
		}
		ch := digest.Challenge{Realm: r.opts.Realm, Nonce: nonce, Algorithm: alg, QOP: []string{"auth"}, Stale: stale}
		hdrs = append(hdrs, sip.NewHeader("WWW-Authenticate", ch.String()))
	}
	respond(tx, req, sip.StatusUnauthorized, "Unauthorized", hdrs...)
}

const (
	nonceRandom = 12
	nonceMAC    = 16
	nonceLen    = 8 + nonceRandom + nonceMAC
)

// newNonce makes a nonce any node sharing the Secret can check: the time
// it was issued, random bytes, and an HMAC of both under the realm.
func (r *Registrar) newNonce() (string, error) {
	b := make([]byte, nonceLen)
	binary.BigEndian.PutUint64(b, uint64(r.opts.Now().UnixMilli()))
	if _, err := rand.Read(b[8 : 8+nonceRandom]); err != nil {
		return "", err
	}
	copy(b[8+nonceRandom:], r.nonceMAC(b[:8+nonceRandom]))
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func (r *Registrar) nonceMAC(body []byte) []byte {
	m := hmac.New(sha256.New, r.opts.Secret)
	m.Write([]byte("sip nonce\x00" + r.opts.Realm + "\x00"))
	m.Write(body)
	return m.Sum(nil)[:nonceMAC]
}

// nonceIssued checks a nonce's signature and returns when it was issued.
func (r *Registrar) nonceIssued(nonce string) (time.Time, bool) {
	b, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(b) != nonceLen {
		return time.Time{}, false
	}
	if !hmac.Equal(b[8+nonceRandom:], r.nonceMAC(b[:8+nonceRandom])) {
		return time.Time{}, false
	}
	return time.UnixMilli(int64(binary.BigEndian.Uint64(b))), true
}

// --- throttling ---

// banService is the registrar's service to package ban: its failures are
// logged as "sip auth failed", the line fail2ban's hotline-sip filter
// matches.
const banService = "sip"

// failed hands a failed authentication to Bans, which logs it, counts it
// against the source and bans the source when it has failed too often.
// unknown says the user does not exist: a phone set up before its agent
// retries the same name, which counts once per window.
func (r *Registrar) failed(ctx context.Context, req *sip.Request, ip netip.Addr, user, reason string, unknown bool) {
	branch, _ := req.Via().Params.Get("branch")
	// The request's identity makes counting it idempotent: a request
	// handled twice counts once.
	id := req.CallID().Value() + "\x00" + strconv.FormatUint(uint64(req.CSeq().SeqNo), 10) + "\x00" + branch
	err := r.opts.Bans.Fail(ctx, ban.Failure{
		Service: banService, Source: ip, User: user, UnknownUser: unknown, Reason: reason, ID: id,
	})
	if err != nil {
		r.log.Error().Err(err).Str("source_ip", ip.String()).Msg("sip registrar: counting a failure")
	}
}
