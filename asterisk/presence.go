package asterisk

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"time"
)

// Presence is told when an agent's phone comes and goes, as the embedded
// registrar tells distribution.
type Presence interface {
	Registered(ctx context.Context, agentID string) error
	Unregistered(ctx context.Context, agentID string) error
}

// Agents maps the SIP users of the agents' phones (their endpoints'
// resource names) to agent ids.
type Agents func(ctx context.Context) (map[string]string, error)

// endpoint is the part of an ARI Endpoint hotline reads.
type endpoint struct {
	Technology string `json:"technology"`
	Resource   string `json:"resource"`
	State      string `json:"state"` // "online", "offline", "unknown"
}

// WatchEndpoints keeps distribution's idea of which agents can be rung in
// step with Asterisk: it reads the endpoints of technology tech (GET
// /endpoints) every interval and reports each change; an endpoint
// is reachable when Asterisk says "online" (a registered contact, or a
// qualified static one). It returns when ctx ends.
func (b *Backend) WatchEndpoints(ctx context.Context, tech string, agents Agents, p Presence, every time.Duration) {
	known := map[string]bool{} // agent id → online, as last reported
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := b.syncEndpoints(ctx, tech, agents, p, known); err != nil && ctx.Err() == nil {
			b.log.Warn().Err(err).Msg("agents' endpoints")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (b *Backend) syncEndpoints(ctx context.Context, tech string, agents Agents, p Presence, known map[string]bool) error {
	byUser, err := agents(ctx)
	if err != nil {
		return err
	}
	var list []endpoint
	if err := b.rest.do(ctx, http.MethodGet, "/endpoints", nil, nil, &list); err != nil {
		return err
	}
	online := map[string]bool{}
	for _, e := range list {
		if id, ok := byUser[e.Resource]; ok && e.Technology == tech && e.State == "online" {
			online[id] = true
		}
	}
	// In a steady order: agents whose phones come up together become idle
	// in the order of their ids.
	ids := slices.Sorted(maps.Values(byUser))
	for _, id := range ids {
		up := online[id]
		if was, seen := known[id]; seen && was == up {
			continue
		}
		var err error
		if up {
			err = p.Registered(ctx, id)
		} else {
			err = p.Unregistered(ctx, id)
		}
		if err != nil {
			return err
		}
		known[id] = up
	}
	return nil
}
