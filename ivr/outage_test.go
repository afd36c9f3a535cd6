package ivr_test

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/hotline12345/hotline/appeal"
	"github.com/hotline12345/hotline/calllog"
	"github.com/hotline12345/hotline/ivr"
	"github.com/hotline12345/hotline/prompts"
)

// redisGoes is Redis answering until the caller is past intake, and away
// for good from then on.
type redisGoes struct{ gone atomic.Bool }

func (r *redisGoes) Outage() bool                 { return false }
func (r *redisGoes) RideOut(context.Context) bool { return !r.gone.Load() }

// queueLost is a queue whose Redis went away as the caller was queued.
type queueLost struct {
	ivr.Queue
	redis *redisGoes
}

func (q queueLost) Enqueue(context.Context, string, appeal.Category) error {
	q.redis.gone.Store(true)
	return errors.New("dial unix redis.sock: connect: connection refused")
}

// A caller queued for an agent as Redis goes away is not hung up on: they
// hear that they will be called back, and the record says so.
func TestServiceRedisLostInQueueCalledBack(t *testing.T) {
	t.Parallel()
	r := newServiceRig(t, map[string]string{})
	redis := &redisGoes{}
	r.runner.Redis = redis
	r.runner.Service.Queue = queueLost{Queue: r.runner.Service.Queue, redis: redis}
	tr, rec := r.call("13900000016", intakeKeys)
	if rec.EndCause != calllog.FlowFinished || !rec.Callback || rec.Stage != ivr.StageOutage || rec.AppealID == "" {
		t.Fatalf("record: cause %s (%s), callback %v, stage %q, appeal %q; want a call-back after the appeal, finished",
			rec.EndCause, rec.EndDetail, rec.Callback, rec.Stage, rec.AppealID)
	}
	ids := tr.HeardIDs()
	if !slices.Contains(ids, prompts.AppealNumber) || ids[len(ids)-1] != prompts.OutageCallback {
		t.Errorf("heard %v, want the number and %s last", ids, prompts.OutageCallback)
	}
}
