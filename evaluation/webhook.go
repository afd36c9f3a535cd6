package evaluation

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/hotline12345/hotline/internal/webhook"
)

// The webhook takes the line's events from their stream through a
// consumer group and posts each, signed, to the receiver, at least once
// and by one node (see internal/webhook for the delivery and the
// signature). The body is the event as JSON, its "id" the stream entry's.

// Headers of a webhook request.
const (
	HeaderEventID   = webhook.HeaderEventID
	HeaderTimestamp = webhook.HeaderTimestamp
	HeaderSignature = webhook.HeaderSignature
)

// Defaults of WebhookOptions.
const (
	DefaultWebhookTimeout = webhook.DefaultTimeout
	DefaultWebhookGiveUp  = webhook.DefaultGiveUp
	DefaultWebhookClaim   = webhook.DefaultClaim
)

// WebhookOptions configures the delivery of the line's events.
type WebhookOptions = webhook.Options

// The outcomes of an event's delivery (WebhookOptions.Done).
const (
	WebhookDelivered  = webhook.Delivered
	WebhookRefused    = webhook.Refused
	WebhookGivenUp    = webhook.GivenUp
	WebhookUnreadable = webhook.Unreadable
)

// Sign returns the signature header's value for a body sent at ts.
func Sign(secret string, ts int64, body []byte) string { return webhook.Sign(secret, ts, body) }

// VerifySignature checks a webhook request's signature and that its
// timestamp is within skew of now.
func VerifySignature(secret string, h http.Header, body []byte, now time.Time, skew time.Duration) error {
	return webhook.VerifySignature(secret, h, body, now, skew)
}

// newWebhook returns the delivery of the line's events.
func newWebhook(s *Store, opts WebhookOptions, consumer string, log zerolog.Logger) *webhook.Webhook {
	return webhook.New(s.rdb, webhook.Stream{
		Key:  s.lineEvents,
		Name: "complaint line webhook",
		Body: func(m redis.XMessage) ([]byte, error) {
			ev, err := decodeEvent(m)
			if err != nil {
				return nil, err
			}
			return json.Marshal(ev)
		},
	}, opts, consumer, log)
}
