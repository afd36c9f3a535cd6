package trunk

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/hotline12345/hotline/config"
)

// Direction is which way a call goes on a trunk.
type Direction string

// The directions.
const (
	In  Direction = "in"  // a citizen calling the hotline
	Out Direction = "out" // hotline calling out (return visits, call-backs)
)

// Outcome is how a call on a trunk went.
type Outcome string

// The outcomes.
const (
	// OutcomeAnswered: the called party answered.
	OutcomeAnswered Outcome = "answered"
	// OutcomeUnanswered: the call ended unanswered for the called party's
	// reason or the caller's: busy, no answer, declined, given up.
	OutcomeUnanswered Outcome = "unanswered"
	// OutcomeFailed: the trunk or the carrier failed the call: no answer
	// to the INVITE, a server error, a transport error.
	OutcomeFailed Outcome = "failed"
	// OutcomeNoChannel: the call was turned away before it began, every
	// channel of the trunk being in use (counted by the metrics only).
	OutcomeNoChannel Outcome = "no_channel"
)

// FullError is a trunk whose channels are all in use.
type FullError struct {
	Trunk   string
	In, Out int
	Limit   int
}

func (e *FullError) Error() string {
	return fmt.Sprintf("trunk %s: every channel in use (%d in, %d out, limit %d)", e.Trunk, e.In, e.Out, e.Limit)
}

// Is makes errors.Is(err, ErrFull) true.
func (e *FullError) Is(target error) bool { return target == ErrFull }

// Channel is one of a trunk's channels, seized by a call: it counts
// against the trunk's limit on every node until it is released, or until
// its lease runs out on a node that stopped renewing it.
type Channel struct {
	Trunk     config.Trunk
	Direction Direction
	// ID names the seizure.
	ID string

	t      *Trunks
	minute int64 // the minute seized, whose figures count the call

	mu       sync.Mutex
	answered bool
	released bool
}

// Acquire seizes a channel of the trunk name for a call going dir: a
// *FullError (errors.Is ErrFull) when its calls in and out are at its
// limit already, on whichever nodes. The caller releases it when the
// call ends.
func (t *Trunks) Acquire(ctx context.Context, name string, dir Direction) (*Channel, error) {
	tr, ok := t.byName[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownTrunk, name)
	}
	if dir != In && dir != Out {
		return nil, fmt.Errorf("%w: direction %q", ErrInvalid, dir)
	}
	now := t.opts.Now()
	c := &Channel{Trunk: tr, Direction: dir, ID: uuid.Must(uuid.NewV7()).String(), t: t, minute: minuteOf(now)}
	res, err := acquireScript.Run(ctx, t.rdb,
		[]string{t.channelsKey(name, In), t.channelsKey(name, Out), t.minuteKey(name, c.minute)},
		now.UnixMilli(), now.Add(t.opts.ChannelLease).UnixMilli(), tr.Channels, string(dir), c.ID, minuteTTL(c.minute, now)).Int64Slice()
	if err != nil {
		return nil, fmt.Errorf("trunk %s: seizing a channel: %w", name, err)
	}
	if len(res) != 3 {
		return nil, fmt.Errorf("trunk %s: seizing a channel: unexpected answer %v", name, res)
	}
	if res[0] != 1 {
		t.calls.WithLabelValues(name, string(dir), string(OutcomeNoChannel)).Inc()
		return nil, &FullError{Trunk: name, In: int(res[1]), Out: int(res[2]), Limit: tr.Channels}
	}
	t.mu.Lock()
	t.live[c] = struct{}{}
	t.mu.Unlock()
	return c, nil
}

// Answered records that the channel's call was answered (once; later
// calls do nothing). The answer counts in the minute the channel was
// seized, so that the answer-seizure ratio of a window compares like
// with like.
func (c *Channel) Answered(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.answered || c.released {
		return nil
	}
	t := c.t
	_, err := answerScript.Run(ctx, t.rdb, []string{t.channelsKey(c.Trunk.Name, c.Direction), t.minuteKey(c.Trunk.Name, c.minute)},
		c.ID, string(c.Direction), minuteTTL(c.minute, t.opts.Now())).Result()
	if err != nil {
		return fmt.Errorf("trunk %s: recording the answer: %w", c.Trunk.Name, err)
	}
	c.answered = true
	t.calls.WithLabelValues(c.Trunk.Name, string(c.Direction), string(OutcomeAnswered)).Inc()
	return nil
}

// Release frees the channel (once; later calls do nothing). An
// unanswered call's outcome, OutcomeUnanswered or OutcomeFailed, is
// counted; an answered call's was counted when it was answered, and o is
// not read. It goes on when ctx is done, for a moment: a call ending
// because its context ended still frees its channel.
func (c *Channel) Release(ctx context.Context, o Outcome) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.released {
		return nil
	}
	c.released = true
	t := c.t
	t.mu.Lock()
	delete(t.live, c)
	t.mu.Unlock()
	if !c.answered {
		if o != OutcomeFailed {
			o = OutcomeUnanswered
		}
		t.calls.WithLabelValues(c.Trunk.Name, string(c.Direction), string(o)).Inc()
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := releaseChannelScript.Run(ctx, t.rdb, []string{t.channelsKey(c.Trunk.Name, c.Direction), t.minuteKey(c.Trunk.Name, c.minute)},
		c.ID, string(c.Direction), string(o), minuteTTL(c.minute, t.opts.Now())).Err()
	if err != nil {
		return fmt.Errorf("trunk %s: releasing a channel (it is freed when its lease runs out): %w", c.Trunk.Name, err)
	}
	return nil
}

// Run renews this node's channels every quarter of their lease until ctx
// ends, so that they count for as long as their calls last, and no longer
// than a lease after this node stopped.
func (t *Trunks) Run(ctx context.Context) {
	tick := time.NewTicker(t.opts.ChannelLease / 4)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		_ = t.renew(ctx)
	}
}

// renew extends the lease of this node's channels. A channel already
// released or expired is not brought back (ZADD XX).
func (t *Trunks) renew(ctx context.Context) error {
	t.mu.Lock()
	live := make([]*Channel, 0, len(t.live))
	for c := range t.live {
		live = append(live, c)
	}
	t.mu.Unlock()
	if len(live) == 0 {
		return nil
	}
	expiry := float64(t.opts.Now().Add(t.opts.ChannelLease).UnixMilli())
	_, err := t.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, c := range live {
			c.mu.Lock()
			member := c.ID
			if c.answered {
				member += ":a"
			}
			c.mu.Unlock()
			p.ZAddXX(ctx, t.channelsKey(c.Trunk.Name, c.Direction), redis.Z{Score: expiry, Member: member})
		}
		return nil
	})
	return err
}

// Refusal is why a trunk cannot take an outbound call.
type Refusal struct {
	Trunk string
	// State is the trunk's state; Since when it came to it.
	State State
	Since time.Time
	// Full is set when its channels are all in use: In and Out of Limit.
	Full           bool
	In, Out, Limit int
	// Failed, when set, is how the trunk failed this call already.
	Failed string
}

// NoTrunkError is an outbound call no trunk can take, with why for each.
type NoTrunkError struct {
	Refusals []Refusal
	loc      *time.Location
	now      time.Time
}

func (e *NoTrunkError) Error() string {
	if len(e.Refusals) == 0 {
		return "no trunk can take the call: no trunk is configured"
	}
	why := make([]string, len(e.Refusals))
	for i, r := range e.Refusals {
		if r.Full {
			why[i] = fmt.Sprintf("%s %d/%d channels", r.Trunk, r.In+r.Out, r.Limit)
			continue
		}
		if r.Failed != "" {
			why[i] = fmt.Sprintf("%s failed the call (%s)", r.Trunk, r.Failed)
			continue
		}
		why[i] = fmt.Sprintf("%s %s", r.Trunk, r.State)
		if !r.Since.IsZero() {
			why[i] += " since " + sinceText(r.Since.In(e.loc), e.now.In(e.loc))
		}
	}
	return "no trunk can take the call: " + strings.Join(why, ", ")
}

// Is makes errors.Is(err, ErrNoTrunk) true.
func (e *NoTrunkError) Is(target error) bool { return target == ErrNoTrunk }

// sinceText tells a time briefly: the time of day when it was today.
func sinceText(at, now time.Time) string {
	if y, m, d := at.Date(); y == now.Year() && m == now.Month() && d == now.Day() {
		return at.Format("15:04:05")
	}
	return at.Format("2006-01-02 15:04:05")
}

// Pick seizes a channel for an outbound call on the first trunk, in the
// configured order, that is usable (up, or not probed yet) and has a
// channel free: a trunk down or in maintenance is passed over, and so is
// a full one, so a call fails over to the next. Picking and seizing are
// one step, so that two nodes never both take a trunk's last channel.
// When no trunk can, the error is a *NoTrunkError (errors.Is ErrNoTrunk)
// saying why of each.
func (t *Trunks) Pick(ctx context.Context) (*Channel, error) {
	return t.pick(ctx, nil)
}

// pick is Pick passing over the trunks in tried, each refused for the
// reason given.
func (t *Trunks) pick(ctx context.Context, tried map[string]string) (*Channel, error) {
	names := make([]string, len(t.opts.Trunks))
	for i, tr := range t.opts.Trunks {
		names[i] = tr.Name
	}
	recs, err := t.records(ctx, names...)
	if err != nil {
		return nil, err
	}
	noTrunk := &NoTrunkError{loc: t.opts.Location, now: t.opts.Now()}
	for _, tr := range t.opts.Trunks {
		r := recs[tr.Name]
		if why, ok := tried[tr.Name]; ok {
			noTrunk.Refusals = append(noTrunk.Refusals, Refusal{Trunk: tr.Name, State: r.State, Since: r.Since, Limit: tr.Channels, Failed: why})
			continue
		}
		if !r.State.Usable() {
			noTrunk.Refusals = append(noTrunk.Refusals, Refusal{Trunk: tr.Name, State: r.State, Since: r.Since, Limit: tr.Channels})
			continue
		}
		c, err := t.Acquire(ctx, tr.Name, Out)
		var full *FullError
		if errors.As(err, &full) {
			noTrunk.Refusals = append(noTrunk.Refusals, Refusal{Trunk: tr.Name, State: r.State, Since: r.Since,
				Full: true, In: full.In, Out: full.Out, Limit: full.Limit})
			continue
		}
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	return nil, noTrunk
}

// The metrics of this node's channels.
var (
	channelsDesc = prometheus.NewDesc("hotline_trunk_channels",
		"Channels of a trunk this node's calls hold now, by direction; the trunk's are the sum over the nodes.", []string{"trunk", "direction"}, nil)
	limitDesc = prometheus.NewDesc("hotline_trunk_channels_limit",
		"Channels a trunk takes at once, in and out together, over every node (trunks[].channels).", []string{"trunk"}, nil)
)

// Describe implements prometheus.Collector.
func (t *Trunks) Describe(ch chan<- *prometheus.Desc) {
	ch <- channelsDesc
	ch <- limitDesc
	t.calls.Describe(ch)
}

// Collect implements prometheus.Collector.
func (t *Trunks) Collect(ch chan<- prometheus.Metric) {
	type key struct {
		name string
		dir  Direction
	}
	held := map[key]int{}
	t.mu.Lock()
	for c := range t.live {
		held[key{c.Trunk.Name, c.Direction}]++
	}
	t.mu.Unlock()
	for _, tr := range t.opts.Trunks {
		ch <- prometheus.MustNewConstMetric(limitDesc, prometheus.GaugeValue, float64(tr.Channels), tr.Name)
		for _, d := range []Direction{In, Out} {
			ch <- prometheus.MustNewConstMetric(channelsDesc, prometheus.GaugeValue, float64(held[key{tr.Name, d}]), tr.Name, string(d))
		}
	}
	t.calls.Collect(ch)
}
