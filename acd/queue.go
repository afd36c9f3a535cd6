package acd

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hotline12345/hotline/appeal"
)

// AnswerTarget is the service-level threshold: a call answered by an agent
// within 15 s of joining the queue counts towards the 15-second answer
// rate.
const AnswerTarget = 15 * time.Second

// DeclineReason says why an offer came to nothing.
type DeclineReason string

// Decline reasons.
const (
	NoAnswer    DeclineReason = "no_answer"   // rang out; counts as a miss
	Rejected    DeclineReason = "rejected"    // the agent declined (busy, 486/603)
	Unreachable DeclineReason = "unreachable" // the agent's phone is gone
)

// LeaveReason says why a call left the queue without an agent.
type LeaveReason string

// Leave reasons.
const (
	Abandoned LeaveReason = "abandoned" // the caller hung up
	Callback  LeaveReason = "callback"  // the caller asked to be called back
)

// rank orders the queue: emergency calls before all others, then by when
// they joined.
func rank(c appeal.Category, joined time.Time) float64 {
	var band int64 = 1
	if c == appeal.Emergency {
		band = 0
	}
	// Milliseconds since 2000 stay below 2^43; a band of 2^44 keeps the
	// score an exact float64 integer.
	return float64(band<<44 + joined.UnixMilli() - 946684800000)
}

// Enqueue puts a call in the queue of its category. node names the hotline
// node holding the call, so that another node's dispatch can tell it.
// Enqueueing a call twice changes nothing.
func (s *Store) Enqueue(ctx context.Context, callID string, c appeal.Category, node string) error {
	return s.enqueue(ctx, callID, c, node, "")
}

// enqueue is Enqueue for a call held by a node instance ("" for none):
// the call is listed as the instance's until it leaves the queue or its
// conversation ends, so that if the instance is lost the call is dropped
// and its agent freed (Node).
func (s *Store) enqueue(ctx context.Context, callID string, c appeal.Category, node, instance string) error {
	if callID == "" || !c.Valid() {
		return fmt.Errorf("%w: call %q category %q", ErrInvalid, callID, c)
	}
	now := s.now()
	if err := s.run(ctx, enqueueScript, callID, string(c), rank(c, now), ms(now), node, s.day(now), instance).Err(); err != nil {
		return fmt.Errorf("acd: enqueue %s: %w", callID, err)
	}
	return nil
}

// TurnedAway counts a call of category c that asked for an agent when no
// agent taking c had a phone registered (Staffed said so): it is not
// queued, yet the service was offered it and answered it with no agent,
// so it counts in the day's figures (DayFigures.TurnedAway) and against
// the 15-second answer rate. Counting a call twice changes nothing, and a
// call that was queued is not counted.
func (s *Store) TurnedAway(ctx context.Context, callID string, c appeal.Category) error {
	if callID == "" || !c.Valid() {
		return fmt.Errorf("%w: call %q category %q", ErrInvalid, callID, c)
	}
	now := s.now()
	if err := s.run(ctx, turnedAwayScript, callID, string(c), ms(now), s.day(now)).Err(); err != nil {
		return fmt.Errorf("acd: turned away %s: %w", callID, err)
	}
	return nil
}

// Offer is a call offered to an agent by Dispatch.
type Offer struct {
	CallID  string
	AgentID string
	SIPUser string
	Node    string // the node holding the call
}

// staleRinging is how long an agent may ring before Dispatch takes the
// offer back: far past any ring timeout, so only an offer whose node died
// is taken.
const staleRinging = 5 * time.Minute

// Dispatch makes the offers possible now, at most most of them: each to
// the longest idle available agent taking the call's category who has not
// declined it since last becoming free, emergency calls first, then the
// longest waiting. It also ends expired wrap-ups. The node holding each
// offered call must ring the agent and report Answered or Declined.
func (s *Store) Dispatch(ctx context.Context, most int) ([]Offer, error) {
	now := s.now()
	vals, err := s.run(ctx, dispatchScript, ms(now), most, ms(now.Add(-staleRinging)), s.reoffer.Milliseconds()).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("acd: dispatch: %w", err)
	}
	offers := make([]Offer, 0, len(vals)/4)
	for i := 0; i+3 < len(vals); i += 4 {
		offers = append(offers, Offer{CallID: vals[i], AgentID: vals[i+1], SIPUser: vals[i+2], Node: vals[i+3]})
	}
	return offers, nil
}

func (s *Store) agentDay(id string, t time.Time) string { return s.day(t) + ":" + id }

// Answered records that the agent answered the call offered to it.
// Reporting it again changes nothing; a report for an offer that was taken
// back (the caller left) returns ErrState.
func (s *Store) Answered(ctx context.Context, callID, agentID string) error {
	now := s.now()
	res, err := s.run(ctx, answeredScript, callID, agentID, ms(now), AnswerTarget.Milliseconds(), s.agentDay(agentID, now)).Text()
	if err != nil {
		return fmt.Errorf("acd: answered %s by %s: %w", callID, agentID, err)
	}
	if res == "stale" {
		return fmt.Errorf("%w: call %s is not offered to %s", ErrState, callID, agentID)
	}
	return nil
}

// Declined records an offer that came to nothing; the call waits again in
// its place and is not offered to this agent again until the agent has
// been busy or away in between. It returns the agent's new state: an agent
// missing maxMissed offers in a row is paused with PauseNoAnswer.
func (s *Store) Declined(ctx context.Context, callID, agentID string, why DeclineReason, maxMissed int) (State, error) {
	res, err := s.run(ctx, declinedScript, callID, agentID, string(why), ms(s.now()), max(maxMissed, 1)).Text()
	if err != nil {
		return "", fmt.Errorf("acd: declined %s by %s: %w", callID, agentID, err)
	}
	if res == "stale" {
		return "", fmt.Errorf("%w: call %s is not offered to %s", ErrState, callID, agentID)
	}
	return State(res), nil
}

// Ended records the end of the conversation of call and agent: the agent
// wraps up for wrapUp (0: is free at once).
func (s *Store) Ended(ctx context.Context, callID, agentID string, wrapUp time.Duration) error {
	now := s.now()
	if err := s.run(ctx, endedScript, callID, agentID, ms(now), wrapUp.Milliseconds(), s.agentDay(agentID, now)).Err(); err != nil {
		return fmt.Errorf("acd: ended %s with %s: %w", callID, agentID, err)
	}
	return nil
}

// Leave takes a call out of the queue before an agent answered; an agent
// ringing for it is free again. Leaving twice changes nothing.
func (s *Store) Leave(ctx context.Context, callID string, why LeaveReason) error {
	if err := s.run(ctx, leaveScript, callID, string(why), ms(s.now())).Err(); err != nil {
		return fmt.Errorf("acd: leave %s: %w", callID, err)
	}
	return nil
}

// Position is the call's place in the queue, counting the callers ahead
// of it who wait for the same agents (its category's and emergency
// callers); 1 is next. ErrNotFound once the call left the queue.
func (s *Store) Position(ctx context.Context, callID string) (int, error) {
	n, err := s.run(ctx, positionScript, callID).Int()
	if err != nil {
		return 0, fmt.Errorf("acd: position of %s: %w", callID, err)
	}
	if n < 0 {
		return 0, fmt.Errorf("%w: call %s is not queued", ErrNotFound, callID)
	}
	return n, nil
}

// QueuedCall is a call in the queue.
type QueuedCall struct {
	CallID   string          `json:"call_id"`
	Category appeal.Category `json:"category"`
	Since    time.Time       `json:"since"`
	Position int             `json:"position"` // in the whole queue, 1 first
	State    string          `json:"state"`    // waiting, offering
	AgentID  string          `json:"agent_id,omitempty"`
	Node     string          `json:"node"`
}

// Queue lists the calls in the queue, first first.
func (s *Store) Queue(ctx context.Context) ([]QueuedCall, error) {
	ids, err := s.rdb.ZRange(ctx, s.key("queue"), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("acd: queue: %w", err)
	}
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGetAll(ctx, s.key("c:"+id))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("acd: queue: %w", err)
	}
	out := make([]QueuedCall, 0, len(ids))
	for i, c := range cmds {
		h := c.Val()
		q := QueuedCall{CallID: ids[i], Category: appeal.Category(h["cat"]), Position: i + 1, State: h["st"], AgentID: h["agent"], Node: h["node"]}
		if t := msTime(h["enq"]); t != nil {
			q.Since = *t
		}
		out = append(out, q)
	}
	return out, nil
}

// CallInfo is what the queue knows of a call an agent took.
type CallInfo struct {
	Category   appeal.Category
	QueuedAt   *time.Time
	AnsweredAt *time.Time
}

// Call reads what the queue knows of a call: queued, offered or taken by
// an agent. ErrNotFound when it knows nothing of it.
func (s *Store) Call(ctx context.Context, callID string) (CallInfo, error) {
	h, err := s.rdb.HGetAll(ctx, s.key("c:"+callID)).Result()
	if err != nil {
		return CallInfo{}, fmt.Errorf("acd: call %s: %w", callID, err)
	}
	if len(h) == 0 {
		return CallInfo{}, fmt.Errorf("%w: call %s", ErrNotFound, callID)
	}
	return CallInfo{Category: appeal.Category(h["cat"]), QueuedAt: msTime(h["enq"]), AnsweredAt: msTime(h["answered"])}, nil
}

// Lengths counts the calls in the queue by category.
func (s *Store) Lengths(ctx context.Context) (map[appeal.Category]int, error) {
	q, err := s.Queue(ctx)
	if err != nil {
		return nil, err
	}
	n := map[appeal.Category]int{}
	for _, c := range Categories {
		n[c] = 0
	}
	for _, c := range q {
		n[c.Category]++
	}
	return n, nil
}

// DayFigures are a day's service-level figures for the whole hotline.
//
// Every call that asked for an agent counts once, on the day it asked, by
// how its wait ended: answered, abandoned, left for a call-back, lost with
// its node, or turned away because no agent taking its category had a
// phone registered. A call still waiting counts in Queued alone until
// then.
type DayFigures struct {
	Day        string `json:"day"`
	Queued     int64  `json:"queued"`   // calls that joined the queue
	Answered   int64  `json:"answered"` // answered by an agent
	InTime     int64  `json:"answered_in_15s"`
	Abandoned  int64  `json:"abandoned"`   // the caller hung up waiting
	Callback   int64  `json:"callback"`    // left asking for a call-back
	Offers     int64  `json:"offers"`      // offers made to agents
	Unanswered int64  `json:"unanswered"`  // offers that rang out
	Rejected   int64  `json:"rejected"`    // offers the agent declined
	WaitMillis int64  `json:"wait_ms_sum"` // total wait of answered calls
	// Lost counts the calls dropped from the queue, waiting or offered,
	// because the node holding them was lost (crashed, or cut off from
	// Redis for longer than its lease). The caller did not abandon them,
	// so they are not abandoned calls; they were not answered either,
	// so they count against the answer rate.
	Lost int64 `json:"lost"`
	// TurnedAway counts the calls that asked for an agent when no agent
	// taking their category had a phone registered: they were never
	// queued, and they count against the answer rate.
	TurnedAway int64 `json:"turned_away"`
	// AnswerRate15s is the 15-second answer rate with the counts it is
	// made of.
	AnswerRate15s AnswerRate `json:"answer_rate_15s"`
	// AverageWait is the average wait of the answered calls.
	AverageWait AverageWait `json:"average_wait"`
}

// AnswerRate is the 15-second answer rate of a day: the calls an agent
// answered within AnswerTarget of their joining the queue, over every
// call offered to the service whose wait is over — answered, abandoned,
// left for a call-back, lost with its node, or turned away with no agent
// of its category registered. A call centre's service level counts every
// call offered: a citizen turned away asked for an agent and got none,
// and leaving those calls out would make a day without agents look well
// served.
type AnswerRate struct {
	// AnsweredIn15s is the numerator.
	AnsweredIn15s int64 `json:"answered_in_15s"`
	// Calls is the denominator: the sum of the day's counts named in
	// Over.
	Calls int64 `json:"calls"`
	// Over names the day's counts (fields of DayFigures) Calls adds up.
	Over []Outcome `json:"over"`
	// Rate is AnsweredIn15s / Calls, from 0 to 1; absent with no calls:
	// no calls, no rate.
	Rate *float64 `json:"rate,omitempty"`
}

// AverageWait is the average time the answered calls of a day waited in
// the queue, from joining it to the agent answering. Calls that left
// unanswered are not in it: their wait ended without an agent.
type AverageWait struct {
	// TotalSeconds is the numerator: the answered calls' waits, summed.
	TotalSeconds float64 `json:"total_seconds"`
	// Calls is the denominator: the sum of the day's counts named in
	// Over.
	Calls int64 `json:"calls"`
	// Over names the day's counts (fields of DayFigures) Calls adds up.
	Over []Outcome `json:"over"`
	// Seconds is TotalSeconds / Calls; absent with no call answered.
	Seconds *float64 `json:"seconds,omitempty"`
}

// Outcome is how a call's wait for an agent ended, as the day's figures
// count it; each is the name of a count of DayFigures.
type Outcome string

// Outcomes of a call's wait.
const (
	OutcomeAnswered   Outcome = "answered"    // an agent answered
	OutcomeAbandoned  Outcome = "abandoned"   // the caller hung up waiting
	OutcomeCallback   Outcome = "callback"    // the caller left asking for a call-back
	OutcomeLost       Outcome = "lost"        // dropped with its node
	OutcomeTurnedAway Outcome = "turned_away" // never queued: no agent of its category registered
)

// Outcomes are every outcome, in the order the figures list them.
var Outcomes = []Outcome{OutcomeAnswered, OutcomeAbandoned, OutcomeCallback, OutcomeLost, OutcomeTurnedAway}

// outcomeCount is a count of the day's calls that ended their wait one
// way.
type outcomeCount struct {
	outcome Outcome
	n       int64
}

// ended are the day's calls whose wait is over, by how it ended: the
// 15-second answer rate's denominator, part by part, in Outcomes' order.
func (f *DayFigures) ended() []outcomeCount {
	return []outcomeCount{{OutcomeAnswered, f.Answered}, {OutcomeAbandoned, f.Abandoned}, {OutcomeCallback, f.Callback},
		{OutcomeLost, f.Lost}, {OutcomeTurnedAway, f.TurnedAway}}
}

// figures computes the rate and the average from the counts.
func (f *DayFigures) figures() {
	r := AnswerRate{AnsweredIn15s: f.InTime, Over: []Outcome{}}
	for _, o := range f.ended() {
		r.Calls += o.n
		r.Over = append(r.Over, o.outcome)
	}
	if r.Calls > 0 {
		v := float64(f.InTime) / float64(r.Calls)
		r.Rate = &v
	}
	w := AverageWait{TotalSeconds: float64(f.WaitMillis) / 1000, Calls: f.Answered, Over: []Outcome{OutcomeAnswered}}
	if f.Answered > 0 {
		v := w.TotalSeconds / float64(f.Answered)
		w.Seconds = &v
	}
	f.AnswerRate15s, f.AverageWait = r, w
}

// Day returns the figures of the day holding t.
func (s *Store) Day(ctx context.Context, t time.Time) (DayFigures, error) {
	d := s.day(t)
	h, err := s.rdb.HGetAll(ctx, s.key("day:"+d)).Result()
	if err != nil {
		return DayFigures{}, fmt.Errorf("acd: day %s: %w", d, err)
	}
	n := func(k string) int64 { v, _ := strconv.ParseInt(h[k], 10, 64); return v }
	f := DayFigures{Day: d, Queued: n("queued"), Answered: n("answered"), InTime: n("answered_in_time"),
		Abandoned: n("abandoned"), Callback: n("callback"), Offers: n("offers"), Unanswered: n("unanswered"),
		Rejected: n("rejected"), WaitMillis: n("wait_ms"), Lost: n("lost"), TurnedAway: n("turned_away")}
	f.figures()
	return f, nil
}

// AgentDay is an agent's work on one day.
type AgentDay struct {
	AgentID string  `json:"agent_id"`
	Day     string  `json:"day"`
	Served  int64   `json:"served"`
	TalkSec float64 `json:"talk_seconds"`
}

// AgentDay returns the agent's figures on the day holding t.
func (s *Store) AgentDay(ctx context.Context, id string, t time.Time) (AgentDay, error) {
	h, err := s.rdb.HGetAll(ctx, s.key("aday:"+s.agentDay(id, t))).Result()
	if err != nil {
		return AgentDay{}, fmt.Errorf("acd: agent day %s: %w", id, err)
	}
	served, _ := strconv.ParseInt(h["served"], 10, 64)
	talk, _ := strconv.ParseInt(h["talk_ms"], 10, 64)
	return AgentDay{AgentID: id, Day: s.day(t), Served: served, TalkSec: float64(talk) / 1000}, nil
}

// Staffed reports whether any agent taking category c has a phone
// registered, busy or not: a call is worth queueing only then.
func (s *Store) Staffed(ctx context.Context, c appeal.Category) (bool, error) {
	agents, err := s.Agents(ctx)
	if err != nil {
		return false, err
	}
	for _, a := range agents {
		if a.Registered && a.Takes(c) {
			return true, nil
		}
	}
	return false, nil
}
