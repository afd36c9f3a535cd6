package trunk

import "context"

// Renew renews this node's channels once, as Run does every quarter
// lease.
func (t *Trunks) Renew(ctx context.Context) error { return t.renew(ctx) }
