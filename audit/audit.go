// Package audit keeps the log of what people did: every state-changing
// action (a login, a failed one, a logout, a pause, a review, a visit's
// outcome, a token made, peak mode switched…), who did it, in which role,
// when, from where. It is one Redis stream, bounded in length and age,
// written by nothing else.
package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hotline12345/hotline/internal/eventstream"
)

// Entry is one audited action.
type Entry struct {
	// ID is the stream entry's id: events sort by it.
	ID string    `json:"id"`
	At time.Time `json:"at"`
	// User is the account that acted ("token:<id>" for a token of no
	// account); for a failed login, the name that was tried.
	User  string   `json:"user"`
	Roles []string `json:"roles,omitempty"`
	// Source is the client's address (behind a trusted proxy, the one it
	// names).
	Source string `json:"source"`
	// Action names what was done: login, login.failed, logout,
	// agents.pause, complaints.review, visits.attempts, tokens.create,
	// peak-mode.switch…
	Action string `json:"action"`
	Method string `json:"method,omitempty"`
	Path   string `json:"path,omitempty"`
	// Status is the HTTP status answered: a refused action is audited
	// too.
	Status int `json:"status"`
	// Subject is what the action was on (an agent's id, a complaint's…).
	Subject string `json:"subject,omitempty"`
	// Detail says more: a pause's reason, a review's decision, a visit's
	// outcome. Never a secret.
	Detail map[string]string `json:"detail,omitempty"`
}

// Options configure a Log.
type Options struct {
	// Prefix starts the stream's key. Empty means "hotline".
	Prefix string
	// Retention is how long events are kept; 0 means 400 days.
	Retention time.Duration
	// MaxEntries bounds the stream whatever the entries' age (failed
	// logins from a flood must not fill Redis); 0 means 500,000.
	MaxEntries int64
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// Log is the audit log.
type Log struct {
	rdb  redis.UniversalClient
	key  string
	opts Options
}

// New returns the Log on rdb.
func New(rdb redis.UniversalClient, opts Options) *Log {
	if opts.Prefix == "" {
		opts.Prefix = "hotline"
	}
	if opts.Retention <= 0 {
		opts.Retention = 400 * 24 * time.Hour
	}
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = 500_000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Log{rdb: rdb, key: opts.Prefix + ":{audit}:log", opts: opts}
}

// Record adds e, At set to now, and drops the events past the retention
// or the bound.
func (l *Log) Record(ctx context.Context, e Entry) error {
	now := l.opts.Now()
	e.ID, e.At = "", now
	doc, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	err = recordScript.Run(ctx, l.rdb, []string{l.key}, l.opts.MaxEntries, doc, l.opts.Retention.Milliseconds(), now.UnixMilli()).Err()
	if err != nil {
		return fmt.Errorf("audit: record %s by %s: %w", e.Action, e.User, err)
	}
	return nil
}

// Page lists up to limit events, newest first, before the cursor of the
// page before ("" for the first), and the next page's cursor ("" on the
// last). A cursor that is no event id wraps eventstream.ErrCursor.
func (l *Log) Page(ctx context.Context, limit int, cursor string) ([]Entry, string, error) {
	evs, next, err := eventstream.Page(ctx, l.rdb, l.key, limit, cursor, setID)
	if err != nil {
		return nil, "", fmt.Errorf("audit: %w", err)
	}
	return evs, next, nil
}

// Filter picks entries: by the account that acted (case does not
// matter), and by action — exactly, or every action under it ("login"
// is login and login.failed, "agents" every agents.…). Empty fields pick
// all.
type Filter struct {
	User, Action string
}

// Match says whether f picks e.
func (f Filter) Match(e Entry) bool {
	if f.User != "" && !strings.EqualFold(f.User, e.User) {
		return false
	}
	if f.Action != "" && e.Action != f.Action && !strings.HasPrefix(e.Action, f.Action+".") {
		return false
	}
	return true
}

// MaxScan is how many entries one Find reads at most: a rare user's
// entries come in several pages, each ending where the reading stopped.
const MaxScan = 20_000

// Find lists up to limit entries that f picks, newest first, before the
// cursor of the page before, reading at most MaxScan entries; the next
// page's cursor is where it stopped ("" when the log's oldest entry was
// read), so a page may hold fewer than limit entries and still have a
// next one.
func (l *Log) Find(ctx context.Context, f Filter, limit int, cursor string) ([]Entry, string, error) {
	if f == (Filter{}) {
		return l.Page(ctx, limit, cursor)
	}
	var out []Entry
	for scanned := 0; scanned < MaxScan; scanned += 500 {
		evs, next, err := l.Page(ctx, 500, cursor)
		if err != nil {
			return nil, "", err
		}
		for i, e := range evs {
			if !f.Match(e) {
				continue
			}
			out = append(out, e)
			if len(out) == limit {
				if i == len(evs)-1 && next == "" {
					return out, "", nil
				}
				return out, e.ID, nil
			}
		}
		if next == "" {
			return out, "", nil
		}
		cursor = next
	}
	return out, cursor, nil
}

// Each calls f with every event from from (inclusive) to to (exclusive),
// oldest first, reading the stream in chunks; f's error stops it.
func (l *Log) Each(ctx context.Context, from, to time.Time, f func(Entry) error) error {
	start := strconv.FormatInt(from.UnixMilli(), 10)
	end := "(" + strconv.FormatInt(to.UnixMilli(), 10)
	for {
		msgs, err := l.rdb.XRangeN(ctx, l.key, start, end, 500).Result()
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		for _, m := range msgs {
			e, err := eventstream.Decode(m, setID)
			if err != nil {
				return fmt.Errorf("audit: %w", err)
			}
			if err := f(e); err != nil {
				return err
			}
		}
		if len(msgs) < 500 {
			return nil
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
}

// recordScript adds an entry and trims those older than the retention.
// An entry's id is its time on the Log's clock, so that Each's days are
// the hotline's; when that clock is behind the newest entry (another
// node's a little ahead), Redis gives the next id after it.
//
// KEYS: the stream. ARGV: most entries, the entry's JSON, retention ms,
// now ms.
var recordScript = redis.NewScript(`
local ok, id = pcall(redis.call, 'XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], ARGV[4] .. '-*', 'doc', ARGV[2])
if not ok then
  id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'doc', ARGV[2])
end
local ms = tonumber(string.match(id, '^(%d+)'))
redis.call('XTRIM', KEYS[1], 'MINID', '~', ms - tonumber(ARGV[3]))
return id
`)

func setID(e *Entry, id string) { e.ID = id }
