// Package webhook delivers the events a domain package appends to a Redis
// stream to an HTTP receiver, signed, at least once, by one node at a time.
//
// The events are taken from their stream through a consumer group, so
// that each event is delivered by one node: a node acknowledges an event
// once the receiver took it (a 2xx answer) or refused it for good (a 4xx
// other than 408 and 429); otherwise it tries again with a growing
// backoff. An event left unacknowledged by a node that stopped is claimed
// by another after ClaimAfter. Delivery is at least once: each event
// carries its id (the X-Hotline-Event-Id header, and the body's "id" as
// the stream's owner writes it) for the receiver to drop one it has seen.
//
// X-Hotline-Timestamp is the Unix time of the attempt, and
// X-Hotline-Signature is "sha256=" and the hex HMAC-SHA256, keyed with the
// shared secret, of the timestamp, a ".", and the body: a receiver
// recomputes it, compares in constant time, and refuses an old timestamp
// (replay). See VerifySignature.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// Headers of a webhook request.
const (
	HeaderEventID   = "X-Hotline-Event-Id"
	HeaderTimestamp = "X-Hotline-Timestamp"
	HeaderSignature = "X-Hotline-Signature"
)

// Defaults of Options.
const (
	DefaultTimeout         = 10 * time.Second
	DefaultGiveUp          = 24 * time.Hour
	DefaultClaim           = time.Minute
	DefaultGroup           = "webhook"
	maxInterval            = 5 * time.Minute
	defaultInitialInterval = time.Second
)

// Options configures the delivery of a stream's events.
type Options struct {
	// URL receives a POST per event; empty means no webhook.
	URL string
	// Secret keys the signature.
	Secret string
	// Timeout bounds one attempt. Zero means DefaultTimeout.
	Timeout time.Duration
	// GiveUp is how long an event is tried before it is dropped (it stays
	// in the stream and the API). Zero means DefaultGiveUp.
	GiveUp time.Duration
	// ClaimAfter is how long an event may wait unacknowledged by a node
	// before another takes it over. Zero means DefaultClaim.
	ClaimAfter time.Duration
	// InitialInterval is the first wait before a retry; it doubles up to
	// five minutes. Zero means a second.
	InitialInterval time.Duration
	// Client sends the requests. Nil means a client of its own.
	Client *http.Client
	// Done, when set, is told of each event that is through: delivered,
	// refused, given up or unreadable (the outcome), once acknowledged.
	Done func(id, outcome string)
}

// The outcomes of an event's delivery (Options.Done).
const (
	Delivered  = "delivered"
	Refused    = "refused"
	GivenUp    = "given_up"
	Unreadable = "unreadable"
)

// Sign returns the signature header's value for a body sent at ts.
func Sign(secret string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature checks a webhook request's signature and that its
// timestamp is within skew of now.
func VerifySignature(secret string, h http.Header, body []byte, now time.Time, skew time.Duration) error {
	ts, err := strconv.ParseInt(h.Get(HeaderTimestamp), 10, 64)
	if err != nil {
		return fmt.Errorf("%s: %q", HeaderTimestamp, h.Get(HeaderTimestamp))
	}
	if d := now.Sub(time.Unix(ts, 0)); d > skew || d < -skew {
		return fmt.Errorf("%s: %d is %s from now", HeaderTimestamp, ts, d)
	}
	if !hmac.Equal([]byte(h.Get(HeaderSignature)), []byte(Sign(secret, ts, body))) {
		return errors.New("signature does not match")
	}
	return nil
}

// Stream is where the events are and how one becomes a request's body.
type Stream struct {
	// Key is the stream's key; Group the consumer group that delivers it
	// (DefaultGroup when empty).
	Key   string
	Group string
	// Body makes a stream entry into the body of its request (JSON).
	Body func(m redis.XMessage) ([]byte, error)
	// Header is added to every request (besides the event id, the
	// timestamp and the signature).
	Header http.Header
	// Name begins the log lines: "complaint line webhook".
	Name string
}

// Webhook delivers one stream's events.
type Webhook struct {
	rdb      redis.UniversalClient
	st       Stream
	opts     Options
	consumer string
	log      zerolog.Logger
}

// New returns the webhook of st, delivering as consumer (unique per
// process).
func New(rdb redis.UniversalClient, st Stream, opts Options, consumer string, log zerolog.Logger) *Webhook {
	if st.Group == "" {
		st.Group = DefaultGroup
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.GiveUp <= 0 {
		opts.GiveUp = DefaultGiveUp
	}
	if opts.ClaimAfter <= 0 {
		opts.ClaimAfter = DefaultClaim
	}
	if opts.InitialInterval <= 0 {
		opts.InitialInterval = defaultInitialInterval
	}
	if opts.Client == nil {
		opts.Client = &http.Client{}
	}
	return &Webhook{rdb: rdb, st: st, opts: opts, consumer: consumer, log: log.With().Str("webhook", opts.URL).Logger()}
}

// Run delivers events until ctx ends.
func (h *Webhook) Run(ctx context.Context) {
	b := backoff.NewExponentialBackOff()
	b.MaxInterval = time.Minute
	for ctx.Err() == nil {
		err := h.round(ctx)
		if err == nil {
			b.Reset()
			continue
		}
		if ctx.Err() != nil {
			return
		}
		wait := b.NextBackOff()
		h.log.Warn().Err(err).Stringer("again_in", wait).Msg(h.st.Name + ": reading the events")
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// readBlock bounds each blocking read: go-redis does not end a read when
// its context does, so a node's shutdown waits for the read in progress.
const readBlock = time.Second

// round delivers what another node left, then waits for new events up to
// half ClaimAfter, a second at most, and delivers them.
func (h *Webhook) round(ctx context.Context) error {
	err := h.rdb.XGroupCreateMkStream(ctx, h.st.Key, h.st.Group, "$").Err()
	if err != nil && !redis.HasErrorPrefix(err, "BUSYGROUP") {
		return err
	}
	left, _, err := h.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream: h.st.Key, Group: h.st.Group, Consumer: h.consumer,
		MinIdle: h.opts.ClaimAfter, Start: "0-0", Count: 16,
	}).Result()
	if err != nil {
		return err
	}
	for _, m := range left {
		h.deliver(ctx, m)
	}
	streams, err := h.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: h.st.Group, Consumer: h.consumer, Streams: []string{h.st.Key, ">"},
		Count: 16, Block: min(h.opts.ClaimAfter/2, readBlock),
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, st := range streams {
		for _, m := range st.Messages {
			h.deliver(ctx, m)
		}
	}
	return nil
}

// deliver posts one event until the receiver takes or refuses it, or
// GiveUp passes; it acknowledges it then.
func (h *Webhook) deliver(ctx context.Context, m redis.XMessage) {
	body, err := h.st.Body(m)
	if err != nil {
		h.log.Error().Err(err).Str("event", m.ID).Msg(h.st.Name + ": dropped an event that cannot be read")
		h.ack(ctx, m.ID, Unreadable)
		return
	}
	attempts := 0
	_, err = backoff.Retry(ctx, func() (struct{}, error) {
		attempts++
		// Say that the event is still being worked, or learn that another
		// node has taken it over.
		if mine, err := h.keep(ctx, m.ID); err == nil && !mine {
			return struct{}{}, backoff.Permanent(errTakenOver)
		}
		return struct{}{}, h.post(ctx, m.ID, body)
	}, backoff.WithBackOff(&backoff.ExponentialBackOff{
		InitialInterval: h.opts.InitialInterval, RandomizationFactor: 0.2, Multiplier: 2, MaxInterval: maxInterval,
	}), backoff.WithMaxElapsedTime(h.opts.GiveUp), backoff.WithNotify(func(err error, wait time.Duration) {
		h.log.Warn().Err(err).Str("event", m.ID).Stringer("again_in", wait).Msg(h.st.Name + ": not delivered")
	}))
	var refused *refusedError
	outcome := Delivered
	switch {
	case err == nil:
		h.log.Info().Str("event", m.ID).Int("attempts", attempts).Msg(h.st.Name + ": delivered")
	case errors.Is(err, errTakenOver):
		return
	case ctx.Err() != nil:
		return // left pending: this node or another delivers it
	case errors.As(err, &refused):
		outcome = Refused
		h.log.Error().Err(err).Str("event", m.ID).Msg(h.st.Name + ": the receiver refused the event; not sent again")
	default:
		outcome = GivenUp
		h.log.Error().Err(err).Str("event", m.ID).Int("attempts", attempts).Msg(h.st.Name + ": given up")
	}
	h.ack(ctx, m.ID, outcome)
}

var errTakenOver = errors.New("taken over by another node")

// keep tells the group that this node still works on event id (its idle
// time starts again, so no other node claims it), or reports that
// another node has, or that it was acknowledged.
func (h *Webhook) keep(ctx context.Context, id string) (bool, error) {
	p, err := h.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: h.st.Key, Group: h.st.Group, Start: id, End: id, Count: 1,
	}).Result()
	if err != nil {
		return false, err
	}
	if len(p) == 0 || p[0].Consumer != h.consumer {
		return false, nil
	}
	return true, h.rdb.XClaimJustID(ctx, &redis.XClaimArgs{
		Stream: h.st.Key, Group: h.st.Group, Consumer: h.consumer, Messages: []string{id},
	}).Err()
}

// refusedError is a 4xx answer that a retry will not change.
type refusedError struct{ status int }

func (e *refusedError) Error() string {
	return "refused: " + http.StatusText(e.status) + " " + strconv.Itoa(e.status)
}

// post sends the event once.
func (h *Webhook) post(ctx context.Context, id string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, h.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.opts.URL, bytes.NewReader(body))
	if err != nil {
		return backoff.Permanent(err)
	}
	for k, vs := range h.st.Header {
		req.Header[k] = vs
	}
	ts := time.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderEventID, id)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(h.opts.Secret, ts, body))
	resp, err := h.opts.Client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests:
		return backoff.Permanent(&refusedError{status: resp.StatusCode})
	}
	return fmt.Errorf("answered %d", resp.StatusCode)
}

// ack acknowledges an event, through with outcome: no node sends it
// again.
func (h *Webhook) ack(ctx context.Context, id, outcome string) {
	if err := h.rdb.XAck(context.WithoutCancel(ctx), h.st.Key, h.st.Group, id).Err(); err != nil {
		h.log.Warn().Err(err).Str("event", id).Msg(h.st.Name + ": acknowledging; it may be sent again")
	}
	if h.opts.Done != nil {
		h.opts.Done(id, outcome)
	}
}
