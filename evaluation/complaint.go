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

// reviewScript records a decision on a complaint, with the counters of
// the call's day, in one of two modes. "review" decides a pending
// complaint and does nothing to a decided one: a later run, a go-redis
// retry or a second supervisor, finds the decision and returns it, so a
// complaint counts once. "reverse" changes a decided complaint to the
// other decision and moves the count with it (upheld → dismissed takes an
// effective complaint back); a complaint that has the decision already is
// left as it is, so a retried reversal moves nothing twice.
//
// KEYS: the call's line keys (callPrelude), complaint key, pending index,
// the decision's index, the other decision's index, the complaint's
// decisions. ARGV: the call's line arguments, decision (the status and
// counter field), reviewed document, review time in ms, mode, the
// decision's document, appended to the complaint's decisions.
//
// Returns {1, document} when decided now, {0, stored document} when it
// has the decision (review: any decision) already, {-1, ""} when there is
// no such complaint, {-3, stored document} for a reversal of a pending
// complaint, {-2, day} when the call counts on day.
var reviewScript = callScript(`
local status = redis.call('HGET', KEYS[5], 'status')
if not status then
  return {-1, ''}
end
if ARGV[10] == 'review' then
  if status ~= 'pending' then
    return {0, redis.call('HGET', KEYS[5], 'doc')}
  end
elseif status == 'pending' then
  return {-3, redis.call('HGET', KEYS[5], 'doc')}
elseif status == ARGV[7] then
  return {0, redis.call('HGET', KEYS[5], 'doc')}
end
local st, other = callState(redis.call('GET', KEYS[1]))
if not st then
  return {-2, other}
end
redis.call('HSET', KEYS[5], 'doc', ARGV[8], 'status', ARGV[7])
redis.call('ZREM', KEYS[6], ARGV[1])
redis.call('ZREM', KEYS[8], ARGV[1])
redis.call('ZADD', KEYS[7], ARGV[9], ARGV[1])
redis.call('RPUSH', KEYS[9], ARGV[11])
local verdict = st.verdict
if verdict == nil or verdict == '' then
  -- A complaint is a bad review; its call's record predates the line.
  verdict = 'bad_review'
end
moveCall(st, verdict, ARGV[7])
return {1, ARGV[8]}
`)

// Review records a supervisor's decision on a pending complaint: Upheld
// (an effective complaint, 合理差评) or Dismissed. The decision counts on
// the day the call was served, for the hotline, the agent and the
// category. Reviewing again with the same decision changes nothing and
// returns the complaint as stored; a different decision changes nothing
// and returns it with an error wrapping ErrAlreadyReviewed (a decision is
// changed by Reverse, on purpose). Another status, or no reviewer, is an
// error wrapping ErrInvalid; an unknown id one wrapping ErrNotFound.
func (s *Store) Review(ctx context.Context, id string, status ComplaintStatus, by, note string) (Complaint, error) {
	return s.ReviewAt(ctx, id, status, by, note, s.now())
}

// ReviewAt is Review of a decision taken at a given time: one kept while
// Redis did not answer, applied once it does. A zero at means now.
func (s *Store) ReviewAt(ctx context.Context, id string, status ComplaintStatus, by, note string, at time.Time) (Complaint, error) {
	c, flag, err := s.decide(ctx, "review", id, status, by, note, at)
	if err != nil || flag == 1 {
		return c, err
	}
	return decided(c, status)
}

// Reverse changes the decision on a reviewed complaint to status, the
// other decision, recorded as by's with the note; the counts of the
// call's day move with it. A complaint that has status already is
// returned as stored, so a retried reversal changes nothing. A pending
// complaint is an error wrapping ErrInvalid (it is reviewed, not
// reversed); an unknown id one wrapping ErrNotFound.
func (s *Store) Reverse(ctx context.Context, id string, status ComplaintStatus, by, note string) (Complaint, error) {
	c, flag, err := s.decide(ctx, "reverse", id, status, by, note, s.now())
	if err == nil && flag == -3 {
		return c, fmt.Errorf("%w: complaint %s is pending: review it", ErrInvalid, id)
	}
	return c, err
}

// decide runs reviewScript in mode for a decision taken at at (zero:
// now) and answers its flag with the complaint as stored.
func (s *Store) decide(ctx context.Context, mode, id string, status ComplaintStatus, by, note string, at time.Time) (Complaint, int64, error) {
	if status != Upheld && status != Dismissed {
		return Complaint{}, 0, fmt.Errorf("%w: complaint %s: decision %q (want upheld or dismissed)", ErrInvalid, id, status)
	}
	if by == "" {
		// Who decided is part of the audit trail of the complaint rate.
		return Complaint{}, 0, fmt.Errorf("%w: complaint %s: no reviewer", ErrInvalid, id)
	}
	// The fields that name the counter keys never change after the
	// complaint is opened, so reading them ahead of the script is safe.
	// Only the script decides whether the complaint may take the
	// decision: a status read here may be stale by the time it runs.
	c, err := s.Complaint(ctx, id)
	if err != nil {
		return Complaint{}, 0, err
	}
	c.History = nil // kept apart, in the decisions list
	if at.IsZero() {
		at = s.now()
	}
	at = at.In(s.loc)
	c.Status, c.ReviewedAt, c.ReviewedBy, c.Note = status, &at, by, note
	doc, err := json.Marshal(c)
	if err != nil {
		return Complaint{}, 0, fmt.Errorf("evaluation: encode complaint %s: %w", id, err)
	}
	other := Upheld
	if status == Upheld {
		other = Dismissed
	}
	from := Pending
	if mode == "reverse" {
		from = other
	}
	dec, err := json.Marshal(Decision{Status: status, From: from, By: by, At: at, Note: note})
	if err != nil {
		return Complaint{}, 0, fmt.Errorf("evaluation: encode decision on %s: %w", id, err)
	}
	keys := []string{s.complaintKey + id, s.byStatus + string(Pending), s.byStatus + string(status), s.byStatus + string(other), s.decisions + id}
	f := callFacts{callID: c.CallID, agentID: c.AgentID, category: c.Category, at: c.servedAt()}
	stored, flag, err := s.runShared(ctx, callRun{script: reviewScript, facts: f, keys: keys,
		args: []any{string(status), doc, at.UnixMilli(), mode, dec}})
	if err != nil {
		return Complaint{}, 0, fmt.Errorf("evaluation: %s complaint %s: %w", mode, id, err)
	}
	if flag == -1 {
		return Complaint{}, 0, fmt.Errorf("%w: complaint %s", ErrNotFound, id)
	}
	got, err := decodeComplaint(stored)
	if err != nil {
		return Complaint{}, 0, err
	}
	if flag == 1 {
		s.signalChange()
	}
	if got.History, err = s.history(ctx, id); err != nil {
		return Complaint{}, 0, err
	}
	return got, flag, nil
}

// Decision is one review or reversal of a complaint: the history of a
// complaint's decisions is kept whole, so a rate that moved can be
// explained.
type Decision struct {
	Status ComplaintStatus `json:"status"` // upheld or dismissed
	From   ComplaintStatus `json:"from"`   // pending for a review; the decision reversed for a reversal
	By     string          `json:"by"`
	At     time.Time       `json:"at"`
	Note   string          `json:"note,omitempty"`
}

// history reads the decisions on complaint id, oldest first.
func (s *Store) history(ctx context.Context, id string) ([]Decision, error) {
	docs, err := s.rdb.LRange(ctx, s.decisions+id, 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("evaluation: decisions on complaint %s: %w", id, err)
	}
	var out []Decision
	for _, doc := range docs {
		var d Decision
		if err := json.Unmarshal([]byte(doc), &d); err != nil {
			return nil, fmt.Errorf("evaluation: decode decision on complaint %s: %w", id, err)
		}
		out = append(out, d)
	}
	return out, nil
}

// signalChange tells an Alarm waiting on Changes that the line moved.
func (s *Store) signalChange() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// Changes is signalled when a review or reversal moved the line's
// counts. Bursts are merged: one signal may stand for many changes.
func (s *Store) Changes() <-chan struct{} { return s.changed }

// decided answers a review of a complaint that is decided already.
func decided(c Complaint, status ComplaintStatus) (Complaint, error) {
	if c.Status != status {
		return c, fmt.Errorf("%w: complaint %s is %s, not %s", ErrAlreadyReviewed, c.ID, c.Status, status)
	}
	return c, nil
}

// servedAt is the time the complaint counts at.
func (c Complaint) servedAt() time.Time {
	if c.ServedAt.IsZero() {
		return c.OpenedAt
	}
	return c.ServedAt
}

func decodeComplaint(doc string) (Complaint, error) {
	var c Complaint
	if err := json.Unmarshal([]byte(doc), &c); err != nil {
		return Complaint{}, fmt.Errorf("evaluation: decode complaint: %w", err)
	}
	return c, nil
}

// Complaint returns the complaint with the given id (the id of its call)
// and the history of its decisions, or an error wrapping ErrNotFound.
func (s *Store) Complaint(ctx context.Context, id string) (Complaint, error) {
	doc, err := s.rdb.HGet(ctx, s.complaintKey+id, "doc").Result()
	if errors.Is(err, redis.Nil) {
		return Complaint{}, fmt.Errorf("%w: complaint %s", ErrNotFound, id)
	}
	if err != nil {
		return Complaint{}, fmt.Errorf("evaluation: get complaint %s: %w", id, err)
	}
	c, err := decodeComplaint(doc)
	if err != nil {
		return Complaint{}, err
	}
	if c.History, err = s.history(ctx, id); err != nil {
		return Complaint{}, err
	}
	return c, nil
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
	now := s.now()
	for _, z := range zs {
		c := found[z.Member.(string)]
		if c.Status == Pending {
			age := max(now.Sub(c.OpenedAt), 0)
			secs := age.Seconds()
			c.AgeSeconds, c.Overdue = &secs, age > s.reviewSLA
		}
		out = append(out, c)
	}
	return out, cursorText(next), nil
}
