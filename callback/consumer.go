package callback

import (
	"context"
	"errors"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/appeal"
)

// Group is the consumer group of the clock events that decides visits.
const Group = "visits"

// Consumer decides the visit of each appeal whose processing time
// expired, reading the clock events' stream in a consumer group: every
// node runs one, each event is read by one of them, and one that a node
// read and did not acknowledge (the node stopped or was killed) is taken
// over by another after ClaimAfter. A decision is made once per appeal
// whatever reads it, so an event read twice changes nothing.
type Consumer struct {
	Store   *Store
	Appeals *appeal.Store
	// Name is this process among the consumers (unique per process).
	Name string
	// ClaimAfter is how long an event may wait unacknowledged before
	// another consumer takes it; 30 s when 0.
	ClaimAfter time.Duration
	// Decided, when set, hears each decision this consumer made.
	Decided func(appeal.ClockEvent, Decision)
	Log     zerolog.Logger
}

// Run decides visits until ctx ends.
func (c *Consumer) Run(ctx context.Context) {
	b := backoff.NewExponentialBackOff()
	b.MaxInterval = time.Minute
	for ctx.Err() == nil {
		err := c.Round(ctx, time.Second)
		if err == nil {
			b.Reset()
			continue
		}
		if ctx.Err() != nil {
			return
		}
		wait := b.NextBackOff()
		c.Log.Warn().Err(err).Stringer("again_in", wait).Msg("return visits: reading the expired appeals")
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// Round takes over what another consumer left, then reads new events for
// up to block, and decides each; it returns after one read.
func (c *Consumer) Round(ctx context.Context, block time.Duration) error {
	stream := c.Appeals.ClockStream()
	rdb := c.Store.rdb
	// From the stream's start: events fired before the group was made
	// expired appeals too.
	if err := rdb.XGroupCreateMkStream(ctx, stream, Group, "0").Err(); err != nil && !redis.HasErrorPrefix(err, "BUSYGROUP") {
		return err
	}
	claimAfter := c.ClaimAfter
	if claimAfter <= 0 {
		claimAfter = 30 * time.Second
	}
	left, _, err := rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream: stream, Group: Group, Consumer: c.Name, MinIdle: claimAfter, Start: "0-0", Count: 100,
	}).Result()
	if err != nil {
		return err
	}
	for _, m := range left {
		c.handle(ctx, stream, m)
	}
	streams, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: Group, Consumer: c.Name, Streams: []string{stream, ">"}, Count: 100, Block: block,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, st := range streams {
		for _, m := range st.Messages {
			c.handle(ctx, stream, m)
		}
	}
	return nil
}

// handle decides one event's visit and acknowledges it; an event left
// unacknowledged (Redis failed) is read again.
func (c *Consumer) handle(ctx context.Context, stream string, m redis.XMessage) {
	ev, err := appeal.DecodeClockEvent(m)
	if err != nil {
		c.Log.Error().Err(err).Msg("return visits: an unreadable clock event, dropped")
		c.ack(ctx, stream, m.ID)
		return
	}
	if ev.Kind != appeal.Expired {
		c.ack(ctx, stream, m.ID)
		return
	}
	d, err := c.Store.Expired(ctx, ev, c.Appeals)
	if errors.Is(err, appeal.ErrNotFound) {
		c.Log.Warn().Str("appeal", ev.Appeal).Msg("return visits: the expired appeal is gone")
		c.ack(ctx, stream, m.ID)
		return
	}
	if err != nil {
		c.Log.Warn().Err(err).Str("appeal", ev.Appeal).Msg("return visits: deciding a visit, to be tried again")
		return
	}
	c.Log.Info().Str("appeal", ev.Appeal).Str("decision", string(d)).Msg("return visit")
	if c.Decided != nil {
		c.Decided(ev, d)
	}
	c.ack(ctx, stream, m.ID)
}

func (c *Consumer) ack(ctx context.Context, stream, id string) {
	if err := c.Store.rdb.XAck(ctx, stream, Group, id).Err(); err != nil {
		c.Log.Warn().Err(err).Str("event", id).Msg("return visits: acknowledging a clock event")
	}
}
