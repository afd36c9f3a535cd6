package evaluation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hotline12345/hotline/internal/zpage"
)

// reviewScript moves a pending complaint to its decision, with the
// counters of the call's day, or does nothing when it is not pending. A
// later run, a go-redis retry or a second supervisor, finds the decision
// and returns it, so a complaint counts once.
//
// KEYS: complaint key, pending index, the decision's index, day counters,
// agent's day counters. ARGV: decision (the status and counter field),
// reviewed document, review time in ms, complaint id.
//
// Returns {1, document} when reviewed now, {0, stored document} when it was
// reviewed already, {-1, ""} when there is no such complaint.
var reviewScript = redis.NewScript(`
local status = redis.call('HGET', KEYS[1], 'status')
if not status then
  return {-1, ''}
end
if status ~= 'pending' then
  return {0, redis.call('HGET', KEYS[1], 'doc')}
end
redis.call('HSET', KEYS[1], 'doc', ARGV[2], 'status', ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
redis.call('HINCRBY', KEYS[4], ARGV[1], 1)
redis.call('HINCRBY', KEYS[5], ARGV[1], 1)
return {1, ARGV[2]}
`)

// Review records a supervisor's decision on a pending complaint: Upheld
// (an effective complaint, 合理差评) or Dismissed. The decision counts on
// the day of the rated call, for the hotline and for the agent. Reviewing
// again with the same decision changes nothing and returns the complaint
// as stored; a different decision changes nothing and returns it with an
// error wrapping ErrAlreadyReviewed. Another status, or no reviewer, is an
// error wrapping ErrInvalid; an unknown id one wrapping ErrNotFound.
func (s *Store) Review(ctx context.Context, id string, status ComplaintStatus, by, note string) (Complaint, error) {
	return s.ReviewAt(ctx, id, status, by, note, s.now())
}

// ReviewAt is Review of a decision taken at a given time: one kept in a
// node's journal while Redis did not answer, applied once it does. A
// zero at means now.
func (s *Store) ReviewAt(ctx context.Context, id string, status ComplaintStatus, by, note string, at time.Time) (Complaint, error) {
	if at.IsZero() {
		at = s.now()
	}
	if status != Upheld && status != Dismissed {
		return Complaint{}, fmt.Errorf("%w: complaint %s: decision %q (want upheld or dismissed)", ErrInvalid, id, status)
	}
	if by == "" {
		// Who decided is part of the audit trail of the complaint rate.
		return Complaint{}, fmt.Errorf("%w: complaint %s: no reviewer", ErrInvalid, id)
	}
	// The fields that name the counter keys never change after the
	// complaint is opened, so reading them ahead of the script is safe.
	// Only the script decides whether the complaint is still pending: a
	// status read here may be stale by the time the script runs.
	c, err := s.Complaint(ctx, id)
	if err != nil {
		return Complaint{}, err
	}
	at = at.In(s.loc)
	c.Status, c.ReviewedAt, c.ReviewedBy, c.Note = status, &at, by, note
	doc, err := json.Marshal(c)
	if err != nil {
		return Complaint{}, fmt.Errorf("evaluation: encode complaint %s: %w", id, err)
	}
	total, agent := s.counts(s.day(c.OpenedAt), c.AgentID)
	keys := []string{s.complaintKey + id, s.byStatus + string(Pending), s.byStatus + string(status), total, agent}
	res, err := reviewScript.Run(ctx, s.rdb, keys, string(status), doc, at.UnixMilli(), id).Slice()
	if err != nil {
		return Complaint{}, fmt.Errorf("evaluation: review complaint %s: %w", id, err)
	}
	stored, flag, err := scriptReply(res)
	if err != nil {
		return Complaint{}, fmt.Errorf("evaluation: review complaint %s: %w", id, err)
	}
	if flag < 0 {
		return Complaint{}, fmt.Errorf("%w: complaint %s", ErrNotFound, id)
	}
	got, err := decodeComplaint(stored)
	if err != nil {
		return Complaint{}, err
	}
	if flag == 0 {
		return decided(got, status)
	}
	return got, nil
}

// decided answers a review of a complaint that is decided already.
func decided(c Complaint, status ComplaintStatus) (Complaint, error) {
	if c.Status != status {
		return c, fmt.Errorf("%w: complaint %s is %s, not %s", ErrAlreadyReviewed, c.ID, c.Status, status)
	}
	return c, nil
}

func decodeComplaint(doc string) (Complaint, error) {
	var c Complaint
	if err := json.Unmarshal([]byte(doc), &c); err != nil {
		return Complaint{}, fmt.Errorf("evaluation: decode complaint: %w", err)
	}
	return c, nil
}

// Complaint returns the complaint with the given id (the id of its call),
// or an error wrapping ErrNotFound.
func (s *Store) Complaint(ctx context.Context, id string) (Complaint, error) {
	doc, err := s.rdb.HGet(ctx, s.complaintKey+id, "doc").Result()
	if errors.Is(err, redis.Nil) {
		return Complaint{}, fmt.Errorf("%w: complaint %s", ErrNotFound, id)
	}
	if err != nil {
		return Complaint{}, fmt.Errorf("evaluation: get complaint %s: %w", id, err)
	}
	return decodeComplaint(doc)
}

// Complaints lists complaints by status: the first page of
// ComplaintsPage.
func (s *Store) Complaints(ctx context.Context, status ComplaintStatus, limit int) ([]Complaint, error) {
	out, _, err := s.ComplaintsPage(ctx, status, limit, "")
	return out, err
}

// ComplaintsPage lists complaints by status, after the cursor of the
// page before ("" for the first), with the next page's cursor, "" on the
// last; an empty status lists all. Pending complaints come oldest first,
// as the supervisors' work queue; reviewed ones newest review first, all
// of them newest opened first. A limit below 1 means DefaultListLimit;
// above MaxListLimit it is cut to MaxListLimit. An unknown status is an
// error wrapping ErrInvalid, a cursor not made here one wrapping
// zpage.ErrCursor.
func (s *Store) ComplaintsPage(ctx context.Context, status ComplaintStatus, limit int, cursor string) ([]Complaint, string, error) {
	after, err := zpage.Parse(cursor)
	if err != nil {
		return nil, "", err
	}
	q := zpage.Query{After: after, Limit: clampLimit(limit)}
	switch status {
	case "":
		q.Key, q.Reverse = s.complaints, true
	case Pending:
		q.Key = s.byStatus + string(Pending)
	case Upheld, Dismissed:
		q.Key, q.Reverse = s.byStatus+string(status), true
	default:
		return nil, "", fmt.Errorf("%w: complaint status %q", ErrInvalid, status)
	}
	found := map[string]Complaint{}
	keep := func(zs []redis.Z) ([]bool, error) {
		// One round trip for the chunk; the keys share the {eval} slot.
		cmds := make([]*redis.StringCmd, len(zs))
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, z := range zs {
				cmds[i] = p.HGet(ctx, s.complaintKey+z.Member.(string), "doc")
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, err
		}
		ok := make([]bool, len(zs))
		for i, cmd := range cmds {
			doc, err := cmd.Result()
			if errors.Is(err, redis.Nil) {
				continue
			}
			if err != nil {
				return nil, err
			}
			c, err := decodeComplaint(doc)
			if err != nil {
				return nil, err
			}
			// A review between the index read and this one may have moved
			// the complaint out of the status asked for.
			if status != "" && c.Status != status {
				continue
			}
			found[zs[i].Member.(string)], ok[i] = c, true
		}
		return ok, nil
	}
	zs, next, err := zpage.Page(ctx, s.rdb, q, keep)
	if err != nil {
		return nil, "", fmt.Errorf("evaluation: list complaints: %w", err)
	}
	out := make([]Complaint, 0, len(zs))
	for _, z := range zs {
		out = append(out, found[z.Member.(string)])
	}
	return out, cursorText(next), nil
}
