// Package live tells every node's consoles that something changed: a
// Redis stream of changes, each naming a topic (agents, queue, visits…),
// read by one loop per node and handed to the node's subscribers. A
// change carries no data: a console refetches what it shows of the topic
// through the API, which checks who asks.
package live

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// Topics a change may name.
const (
	Agents     = "agents"     // an agent's state
	Queue      = "queue"      // a call joined or left the queue
	Calls      = "calls"      // a call began or ended
	Complaints = "complaints" // a bad review stored or decided
	Line       = "line"       // the complaint line's figures
	Visits     = "visits"     // the return visits' worklist
	Trunks     = "trunks"     // a trunk's state
	Peak       = "peak"       // peak mode
	Appeals    = "appeals"    // an appeal's step
	Audit      = "audit"      // an audited action
	// Session ends a console session (ID is the session's token id):
	// every tab holding it goes to the login page.
	Session = "session"
	// Resync tells a subscriber it missed changes (it was too slow, or
	// the feed could not read Redis): refetch everything.
	Resync = "resync"
)

// Change is one change of a topic.
type Change struct {
	Topic string    `json:"topic"`
	ID    string    `json:"id,omitempty"`
	At    time.Time `json:"at"`
}

// Options configure a Feed.
type Options struct {
	// Prefix starts the stream's key. Empty means "hotline".
	Prefix string
	// MaxLen bounds the stream (approximately); 0 means 1000. Changes are
	// read as they come: the stream holds only enough for a slow read.
	MaxLen int64
	// Coalesce is how often one node publishes a topic at most: changes
	// of a topic within it go out as one, at its end. 0 means 100 ms.
	Coalesce time.Duration
	// Buffer is each subscriber's backlog; a subscriber further behind
	// gets a Resync instead. 0 means 64.
	Buffer int
	Logger zerolog.Logger
}

// Feed publishes changes and hands the changes of every node to this
// node's subscribers.
type Feed struct {
	rdb  redis.UniversalClient
	key  string
	opts Options

	mu      sync.Mutex
	subs    map[*sub]struct{}
	pending map[string]*time.Timer // topics held back by Coalesce
	last    map[string]time.Time   // when each topic last went out
}

type sub struct {
	ch     chan Change
	missed bool // the backlog overflowed: a Resync is owed
}

// New returns a Feed on rdb; Run reads it.
func New(rdb redis.UniversalClient, opts Options) *Feed {
	if opts.Prefix == "" {
		opts.Prefix = "hotline"
	}
	if opts.MaxLen <= 0 {
		opts.MaxLen = 1000
	}
	if opts.Coalesce <= 0 {
		opts.Coalesce = 100 * time.Millisecond
	}
	if opts.Buffer <= 0 {
		opts.Buffer = 64
	}
	return &Feed{rdb: rdb, key: opts.Prefix + ":{live}:changes", opts: opts,
		subs: map[*sub]struct{}{}, pending: map[string]*time.Timer{}, last: map[string]time.Time{}}
}

// Publish tells every node's consoles that topic changed. A topic
// published again within Coalesce goes out once, at its end, so a burst
// of calls is one refetch, not hundreds. It does not wait for Redis;
// a failure is logged (consoles then catch up at their next change).
func (f *Feed) Publish(topic string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, held := f.pending[topic]; held {
		return
	}
	wait := f.opts.Coalesce - time.Since(f.last[topic])
	if wait <= 0 {
		f.last[topic] = time.Now()
		go f.add(Change{Topic: topic})
		return
	}
	f.pending[topic] = time.AfterFunc(wait, func() {
		f.mu.Lock()
		delete(f.pending, topic)
		f.last[topic] = time.Now()
		f.mu.Unlock()
		f.add(Change{Topic: topic})
	})
}

// EndSession tells every tab holding the session tokenID that it ended.
func (f *Feed) EndSession(ctx context.Context, tokenID string) error {
	return f.write(ctx, Change{Topic: Session, ID: tokenID})
}

func (f *Feed) add(c Change) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := f.write(ctx, c); err != nil {
		f.opts.Logger.Warn().Err(err).Str("topic", c.Topic).Msg("live: a change not published; consoles catch up at the next")
	}
}

func (f *Feed) write(ctx context.Context, c Change) error {
	return f.rdb.XAdd(ctx, &redis.XAddArgs{Stream: f.key, MaxLen: f.opts.MaxLen, Approx: true,
		Values: []any{"topic", c.Topic, "id", c.ID}}).Err()
}

// Subscribe returns a channel of every node's changes from now on, and
// the function that ends the subscription. A subscriber that falls
// Buffer changes behind gets one Resync when it catches up, not the
// changes it missed.
func (f *Feed) Subscribe() (<-chan Change, func()) {
	s := &sub{ch: make(chan Change, f.opts.Buffer)}
	f.mu.Lock()
	f.subs[s] = struct{}{}
	f.mu.Unlock()
	return s.ch, func() {
		f.mu.Lock()
		delete(f.subs, s)
		f.mu.Unlock()
	}
}

// Subscribers is how many subscriptions this node holds.
func (f *Feed) Subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

func (f *Feed) deliver(c Change) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.subs {
		if s.missed {
			select {
			case s.ch <- Change{Topic: Resync, At: c.At}:
				s.missed = false
			default:
				continue
			}
		}
		select {
		case s.ch <- c:
		default:
			s.missed = true
		}
	}
}

// readBlock bounds each blocking read: go-redis does not end a read when
// its context does, so a node's shutdown waits for the read in progress.
const readBlock = time.Second

// Run reads the stream until ctx ends, from the changes written after it
// starts. While Redis does not answer it retries with a growing pause,
// and tells subscribers to resync once it reads again.
func (f *Feed) Run(ctx context.Context) error {
	last := "$"
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval = 100*time.Millisecond, 5*time.Second
	for {
		res, err := f.rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{f.key, last}, Block: readBlock, Count: 256}).Result()
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, redis.Nil):
			continue
		case err != nil:
			pause := bo.NextBackOff()
			f.opts.Logger.Warn().Err(err).Stringer("retry_in", pause).Msg("live: reading the changes")
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(pause):
			}
			if last != "$" {
				f.deliver(Change{Topic: Resync, At: time.Now()})
			}
			continue
		}
		bo.Reset()
		for _, st := range res {
			for _, m := range st.Messages {
				last = m.ID
				c := Change{At: idTime(m.ID)}
				c.Topic, _ = m.Values["topic"].(string)
				c.ID, _ = m.Values["id"].(string)
				f.deliver(c)
			}
		}
	}
}

// idTime is when an entry was added, from its id (ms-seq).
func idTime(id string) time.Time {
	ms, _, _ := strings.Cut(id, "-")
	n, _ := strconv.ParseInt(ms, 10, 64)
	return time.UnixMilli(n)
}
