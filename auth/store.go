package auth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults of StoreOptions.
const (
	DefaultMaxLoginTokens = 20
	DefaultRetention      = 30 * 24 * time.Hour
)

// StoreOptions configures a Store.
type StoreOptions struct {
	// Prefix starts every key. Empty means "hotline".
	Prefix string
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Password sets the argon2id parameters of new password hashes; a
	// zero field takes DefaultPasswordParams' value. Tests pass cheap ones.
	Password PasswordParams
	// MaxLoginTokens is how many live login tokens an account keeps;
	// logging in once more revokes the oldest. Below 1 means
	// DefaultMaxLoginTokens.
	MaxLoginTokens int
	// Retention is how long an ended (expired or revoked) token is kept
	// for audit before it is gone. Below 1 means DefaultRetention.
	Retention time.Duration
}

// Store keeps accounts and tokens in Redis. All keys share the hash tag
// {auth}, so that scripts changing an account and its tokens together run
// on Redis Cluster too.
//
// Keys, under <prefix>:{auth}:
//
//	users            set of account names
//	user:<lower>     hash: an account (see userFields), keyed by its name in
//	                 lower case so that "Admin" cannot stand beside "admin"
//	token:<id>       hash: a token (see tokenFields); expires from Redis
//	                 Retention after the token ends
//	tokens           sorted set of token ids by the ms their key expires,
//	                 pruned by every token write
//	login:<lower>    sorted set of an account's live login tokens by
//	                 creation ms, for MaxLoginTokens
//
// Users are never deleted (disable them): their names stay in the audit
// trail of other packages.
//
// A Store is safe for concurrent use, also by several hotline nodes.
type Store struct {
	rdb       redis.UniversalClient
	prefix    string // <prefix>:{auth}:
	now       func() time.Time
	params    PasswordParams
	maxLogin  int
	retention time.Duration
	dummy     string // see dummyHash
}

// NewStore returns a Store on rdb.
func NewStore(rdb redis.UniversalClient, opts StoreOptions) *Store {
	if opts.Prefix == "" {
		opts.Prefix = "hotline"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	p := opts.Password
	if p.Memory == 0 {
		p.Memory = DefaultPasswordParams.Memory
	}
	if p.Time == 0 {
		p.Time = DefaultPasswordParams.Time
	}
	if p.Threads == 0 {
		p.Threads = DefaultPasswordParams.Threads
	}
	if opts.MaxLoginTokens < 1 {
		opts.MaxLoginTokens = DefaultMaxLoginTokens
	}
	if opts.Retention <= 0 {
		opts.Retention = DefaultRetention
	}
	return &Store{
		rdb:       rdb,
		prefix:    opts.Prefix + ":{auth}:",
		now:       opts.Now,
		params:    p,
		maxLogin:  opts.MaxLoginTokens,
		retention: opts.Retention,
		dummy:     dummyHash(p),
	}
}

func (s *Store) key(k string) string { return s.prefix + k }

// userKey is the key of the account name; names are ASCII (namePattern),
// so lower case is the same here and in the scripts' string.lower.
func (s *Store) userKey(name string) string { return s.key("user:" + strings.ToLower(name)) }

func (s *Store) tokenKey(id string) string { return s.key("token:" + id) }

// run runs a script with the key prefix as ARGV[1]; KEYS[1], the users
// set, names the {auth} slot so that Redis Cluster routes it there.
func (s *Store) run(ctx context.Context, sc *redis.Script, args ...any) ([]any, error) {
	return sc.Run(ctx, s.rdb, []string{s.key("users")}, append([]any{s.prefix}, args...)...).Slice()
}

// status reads the first element of a script's reply, a word saying what
// happened.
func status(res []any) string {
	if len(res) == 0 {
		return ""
	}
	st, _ := res[0].(string)
	return st
}

// fields reads a flat HGETALL reply, as scripts return it, into a map.
func fields(v any) map[string]string {
	flat, _ := v.([]any)
	h := make(map[string]string, len(flat)/2)
	for i := 0; i+1 < len(flat); i += 2 {
		k, _ := flat[i].(string)
		val, _ := flat[i+1].(string)
		h[k] = val
	}
	return h
}

func ms(t time.Time) int64 { return t.UnixMilli() }

// msTime reads a time stored as ms since the epoch; nil when absent.
func msTime(s string) *time.Time {
	if s == "" {
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return nil
	}
	t := time.UnixMilli(n).UTC()
	return &t
}

// msInt reads a whole number of ms, 0 when absent or damaged.
func msInt(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

func msTimeOrZero(s string) time.Time {
	if t := msTime(s); t != nil {
		return *t
	}
	return time.Time{}
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24)
	return hex.EncodeToString(b)
}

// checkBy refuses a change that does not say who makes it: every change
// is on the audit trail.
func checkBy(by string) error {
	if by == "" {
		return fmt.Errorf("%w: by: who makes the change is required", ErrInvalid)
	}
	if len(by) > maxByLen {
		return fmt.Errorf("%w: by: longer than %d bytes", ErrInvalid, maxByLen)
	}
	return nil
}

// maxByLen fits an account name or "token:<id>" with room to spare.
const maxByLen = 128
