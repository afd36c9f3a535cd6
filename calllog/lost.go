package calllog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// closeScript ends a record a node instance left open, unless the record
// changed since it was read: then the caller reads it again, so that a
// save made meanwhile is never overwritten by the older version.
//
// KEYS: record key, the instance's open set. ARGV: the progress read, the
// ended document, its progress, the record id.
var closeScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'progress') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'doc', ARGV[2], 'progress', ARGV[3])
redis.call('SREM', KEYS[2], ARGV[4])
return 1
`)

// closeTries bounds how often a record that changes while it is being
// ended is read again: a record that keeps changing is being saved by a
// live node, and is left to it.
const closeTries = 5

// ErrStillSaved is CloseOpen's error when a record of the instance keeps
// being saved while it ends it: the instance is not gone.
var ErrStillSaved = errors.New("calllog: record still being saved by its node")

// CloseOpen ends the records that node instance left open: those saved
// with Record.Instance set to instance and never saved with an end. Each
// gets the end cause and detail and ends at at (or at its start or
// answer, when at is earlier). The instance's own saves, should it come
// back, win over this end when they carry as many events or more (see
// Save). It returns how many records it ended; calling it again ends
// nothing twice.
func (s *Store) CloseOpen(ctx context.Context, instance string, at time.Time, cause EndCause, detail string) (int, error) {
	if instance == "" {
		return 0, fmt.Errorf("%w: no instance", ErrInvalidRecord)
	}
	open := s.openKey + instance
	ids, err := s.rdb.SMembers(ctx, open).Result()
	if err != nil {
		return 0, fmt.Errorf("calllog: open records of %s: %w", instance, err)
	}
	closed := 0
	for _, id := range ids {
		done, err := s.closeOne(ctx, open, id, at, cause, detail)
		if err != nil {
			return closed, err
		}
		if done {
			closed++
		}
	}
	return closed, nil
}

// closeOne ends one record of an open set; false when it needed no end.
func (s *Store) closeOne(ctx context.Context, open, id string, at time.Time, cause EndCause, detail string) (bool, error) {
	key := s.recordKey + id
	for range closeTries {
		v, err := s.rdb.HMGet(ctx, key, "doc", "progress").Result()
		if err != nil {
			return false, fmt.Errorf("calllog: read %s: %w", id, err)
		}
		doc, _ := v[0].(string)
		read, _ := v[1].(string)
		if p, _ := strconv.ParseInt(read, 10, 64); doc == "" || p >= 2*progressStage {
			// Expired, or ended by its node after all.
			if err := s.rdb.SRem(ctx, open, id).Err(); err != nil {
				return false, fmt.Errorf("calllog: unlist %s: %w", id, err)
			}
			return false, nil
		}
		r, err := decode(doc)
		if err != nil {
			return false, err
		}
		end := at
		for _, t := range []*time.Time{&r.StartedAt, r.AnsweredAt} {
			if t != nil && end.Before(*t) {
				end = *t
			}
		}
		r.EndedAt, r.EndCause, r.EndDetail = &end, cause, detail
		if r.Stage == "" {
			for _, e := range r.Events {
				if e.Kind == "stage" {
					r.Stage = e.Stage
				}
			}
		}
		ended, err := json.Marshal(r)
		if err != nil {
			return false, fmt.Errorf("calllog: encode %s: %w", id, err)
		}
		n, err := closeScript.Run(ctx, s.rdb, []string{key, open}, read, ended, progress(r), id).Int()
		if err != nil {
			return false, fmt.Errorf("calllog: close %s: %w", id, err)
		}
		if n == 1 {
			return true, nil
		}
	}
	return false, fmt.Errorf("%w: %s", ErrStillSaved, id)
}

// OpenCount is how many records node instance has open.
func (s *Store) OpenCount(ctx context.Context, instance string) (int64, error) {
	n, err := s.rdb.SCard(ctx, s.openKey+instance).Result()
	if err != nil {
		return 0, fmt.Errorf("calllog: open records of %s: %w", instance, err)
	}
	return n, nil
}
