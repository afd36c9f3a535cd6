package trunk

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
)

// Renew renews this node's channels once, as Run does every quarter
// lease.
func (t *Trunks) Renew(ctx context.Context) error { return t.renew(ctx) }

// Calls is the counter of calls of a direction and outcome.
func (t *Trunks) Calls(name, dir, outcome string) prometheus.Counter {
	return t.calls.WithLabelValues(name, dir, outcome)
}

// RefreshIn, NewRetry and RetryIn are the registrations' schedule.
var (
	RefreshIn = refreshIn
	NewRetry  = newRetry
	RetryIn   = retryIn
)
