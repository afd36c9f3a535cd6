package trunk

import (
	"context"
	"errors"
	"fmt"

	"github.com/hotline12345/hotline/config"
	"github.com/hotline12345/hotline/ivr"
)

// Dialer places calls to numbers through the trunks (an ivr.Dialer of
// ivr.Number destinations): it seizes a channel on the first trunk, in
// the configured order, that is usable and has one free (Pick), and dials
// through it with the backend. When the trunk itself failed the call
// (congestion, or unreachable: the carrier could not take it) the next
// trunk is tried; busy, declined and no answer are the called party's
// answers and end the attempt. The channel is held until the call ends.
// When no trunk can take the call the error wraps ivr.ErrCongestion and
// says why of each trunk.
type Dialer struct {
	Trunks  *Trunks
	Backend ivr.Dialer
}

// Dial implements ivr.Dialer. A Number that names its trunk already goes
// through that one alone.
func (d *Dialer) Dial(ctx context.Context, to ivr.Destination, opts ivr.DialOptions) (ivr.Call, error) {
	n, ok := to.(ivr.Number)
	if !ok {
		return nil, fmt.Errorf("%w: trunks dial numbers, not %s", ivr.ErrUnreachable, to)
	}
	tried := map[string]string{}
	for {
		var ch *Channel
		var err error
		if n.Trunk.Name != "" {
			ch, err = d.Trunks.Acquire(ctx, n.Trunk.Name, Out)
			if errors.Is(err, ErrFull) {
				err = fmt.Errorf("%w: %w", ivr.ErrCongestion, err)
			}
		} else {
			ch, err = d.Trunks.pick(ctx, tried)
			if errors.Is(err, ErrNoTrunk) {
				err = fmt.Errorf("%w: %w", ivr.ErrCongestion, err)
			}
		}
		if err != nil {
			return nil, err
		}
		via := n
		via.Trunk = Route(ch.Trunk)
		call, err := d.Backend.Dial(ctx, via, opts)
		if err == nil {
			_ = ch.Answered(ctx)
			go func() {
				<-call.Done()
				_ = ch.Release(context.Background(), OutcomeAnswered)
			}()
			return call, nil
		}
		carrier := errors.Is(err, ivr.ErrCongestion) || errors.Is(err, ivr.ErrUnreachable)
		outcome := OutcomeUnanswered
		if carrier {
			outcome = OutcomeFailed
		}
		_ = ch.Release(ctx, outcome)
		if !carrier || n.Trunk.Name != "" || ctx.Err() != nil {
			return nil, err
		}
		tried[ch.Trunk.Name] = err.Error()
	}
}

// Route is what a backend needs of a trunk to place a call through it.
func Route(t config.Trunk) ivr.TrunkRoute {
	return ivr.TrunkRoute{
		Name: t.Name, Address: t.Address(), Transport: t.Transport,
		Username: t.Username, Password: t.Password, CallerID: t.CallerID,
		Codecs: t.Codecs, Endpoint: t.Endpoint,
	}
}
