package evaluation

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hotline12345/hotline/appeal"
)

// The line's counters are kept per day in one string, a table of rows of
// six signed 32-bit big-endian integers (served, praise, bad_review, none,
// upheld, dismissed), one row per scope: the hotline, each agent, each
// category. The row of a scope is the same on every day (the row index).
// A month's ranking of every agent is then 31 reads of a few tens of
// kilobytes, not 31 × agents reads.
const (
	rowFields = 6
	rowBytes  = rowFields * 4
)

// A call's state on the line is kept in its line record, <prefix>:{eval}:
// line:call:<callID>, a string "day|at|agent|category|verdict|decision":
// the facts of the call (its day, its time in ms, agent and category),
// fixed by its first event, and where its rating and review stand. Each event
// moves the record to a new state and the counters of the call's day by the
// difference between the new state's contribution and the old's, in one
// script: a replayed event moves nothing, a reversal moves the count back,
// and the counters equal the sum over the calls' records at every moment.
//
// callPrelude is the Lua shared by the scripts that move a call on the
// line. Their KEYS begin with the line record, the set of the calls
// counted on the call's day, the row index, the call's day's table; their
// ARGV with the
// call id, its day ("" for a call older than the retention, which counts
// no more), its time in ms, agent, category and the retention in ms.
const callPrelude = `
local COL = {served = 1, praise = 2, bad_review = 3, none = 4, upheld = 5, dismissed = 6}

-- rowsOf returns the rows of the scopes, giving a scope never seen the
-- next free row.
local function rowsOf(idx, scopes)
  local rows = redis.call('HMGET', idx, unpack(scopes))
  for i, r in ipairs(rows) do
    if r then
      rows[i] = tonumber(r)
    else
      rows[i] = redis.call('HLEN', idx)
      redis.call('HSET', idx, scopes[i], rows[i])
    end
  end
  return rows
end

-- addRows adds d to each row of the table. BITFIELD does it in one
-- command; the in-process store has none, and gets the same bytes by
-- GETRANGE and SETRANGE.
local function addRows(tbl, rows, d)
  local ops, n = {}, 0
  for _, r in ipairs(rows) do
    for i = 1, 6 do
      if d[i] ~= 0 then
        ops[n + 1], ops[n + 2], ops[n + 3], ops[n + 4] = 'INCRBY', 'i32', '#' .. (r * 6 + i - 1), d[i]
        n = n + 4
      end
    end
  end
  if n == 0 then
    return
  end
  local res = redis.pcall('BITFIELD', tbl, unpack(ops))
  if type(res) ~= 'table' or not res.err then
    return
  end
  for _, r in ipairs(rows) do
    local off = r * 24
    local cur = redis.call('GETRANGE', tbl, off, off + 23)
    local out = {}
    for i = 1, 6 do
      local v = 0
      local b1, b2, b3, b4 = string.byte(cur, i * 4 - 3, i * 4)
      if b4 then
        v = ((b1 * 256 + b2) * 256 + b3) * 256 + b4
        if v >= 2147483648 then
          v = v - 4294967296
        end
      end
      v = v + d[i]
      if v < 0 then
        v = v + 4294967296
      end
      out[i] = string.char(math.floor(v / 16777216) % 256, math.floor(v / 65536) % 256, math.floor(v / 256) % 256, v % 256)
    end
    redis.call('SETRANGE', tbl, off, table.concat(out))
  end
end

-- callState reads the call's line record rec (KEYS[1], false when there
-- is none), or takes the facts in ARGV for a call not seen before
-- (fresh). It returns nil and the record's day when the call counts on
-- another day than ARGV's: the caller asks again with that day's table.
local function callState(rec)
  if ARGV[2] == '' then
    return {skip = true}
  end
  if rec then
    local day, at, agent, category, verdict, decision =
      string.match(rec, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)$')
    if day ~= ARGV[2] then
      return nil, day
    end
    return {day = day, at = at, agent = agent, category = category, verdict = verdict, decision = decision}
  end
  return {fresh = true, day = ARGV[2], at = ARGV[3], agent = ARGV[4], category = ARGV[5], verdict = '', decision = ''}
end

-- moveCall moves the call to verdict and decision, and the counters of
-- its day by the difference. A fresh call's record expires with the
-- retention; the first call counted on a day sets the expiry of the day's
-- table and set, and renews the row index's, so that the index outlives
-- every table whose rows it names.
local function moveCall(st, verdict, decision)
  if st.skip then
    return
  end
  local d = {0, 0, 0, 0, 0, 0}
  if st.fresh then
    d[1] = 1
  end
  if verdict ~= st.verdict then
    if COL[st.verdict] then
      d[COL[st.verdict]] = d[COL[st.verdict]] - 1
    end
    d[COL[verdict]] = d[COL[verdict]] + 1
  end
  if decision ~= st.decision then
    if st.decision == 'upheld' or st.decision == 'dismissed' then
      d[COL[st.decision]] = d[COL[st.decision]] - 1
    end
    if decision == 'upheld' or decision == 'dismissed' then
      d[COL[decision]] = d[COL[decision]] + 1
    end
  end
  if not st.fresh and verdict == st.verdict and decision == st.decision then
    return
  end
  local rec = table.concat({st.day, st.at, st.agent, st.category, verdict, decision}, '|')
  if st.fresh then
    redis.call('SET', KEYS[1], rec, 'PX', ARGV[6])
  else
    redis.call('SET', KEYS[1], rec, 'KEEPTTL')
  end
  addRows(KEYS[4], rowsOf(KEYS[3], {'hotline', 'agent:' .. st.agent, 'category:' .. st.category}), d)
  if st.fresh then
    redis.call('SADD', KEYS[2], ARGV[1])
    if redis.call('SCARD', KEYS[2]) == 1 then
      redis.call('PEXPIRE', KEYS[2], ARGV[6])
      redis.call('PEXPIRE', KEYS[3], ARGV[6])
      redis.call('PEXPIRE', KEYS[4], ARGV[6])
    end
  end
end
`

// callScript is a script that moves a call on the line; body follows
// callPrelude and may use callState and moveCall.
func callScript(body string) *redis.Script { return redis.NewScript(callPrelude + body) }

// servedScript counts a call served, once.
//
// Returns {1, ""} when counted now, {0, ""} when counted already,
// {-2, day} when the call counts on day.
var servedScript = callScript(`
local st, other = callState(redis.call('GET', KEYS[1]))
if not st then
  return {-2, other}
end
moveCall(st, st.verdict or '', st.decision or '')
if st.fresh then
  return {1, ''}
end
return {0, ''}
`)

// otherDay is a script's answer that the call counts on another day.
const otherDay = -2

// ServedCall is the event of a call served: the agent answered the offer.
type ServedCall struct {
	CallID   string
	AgentID  string
	Category appeal.Category
	// At is when the agent answered; the call counts on its day. Zero
	// means now.
	At time.Time
}

// callFacts are what the line needs of a call: the first event of a call
// fixes them in its line record.
type callFacts struct {
	callID, agentID string
	category        appeal.Category
	at              time.Time
}

// lineKeys returns the keys and arguments every call script begins with,
// for the call counted on day.
func (s *Store) lineKeys(f callFacts, day string) (keys []string, args []any) {
	keys = []string{s.lineCall + f.callID, s.lineDay + day + ":calls", s.lineRows, s.lineDay + day}
	if day != "" && f.at.Before(s.now().Add(-s.retention)) {
		// Its counters are gone: a late event of such a call counts no
		// more, rather than in a day that starts over from nothing.
		day = ""
	}
	args = []any{f.callID, day, f.at.UnixMilli(), f.agentID, string(f.category), s.retention.Milliseconds()}
	return keys, args
}

// callRun is one run of a call script: the call's facts and the keys and
// arguments that follow the line's.
type callRun struct {
	script *redis.Script
	facts  callFacts
	keys   []string
	args   []any
}

// callReply is a call script's {flag, document} reply, or its error.
type callReply struct {
	doc  string
	flag int64
	err  error
}

// runCalls runs call scripts in one pipeline, each on the day of its
// call's time, or again on the day the call already counts on when that
// differs (its first event said another time). Each run is one script:
// atomic on its own, whatever the others do.
func (s *Store) runCalls(ctx context.Context, runs []callRun) []callReply {
	out := make([]callReply, len(runs))
	days := make([]string, len(runs))
	todo := make([]int, len(runs))
	for i, r := range runs {
		days[i], todo[i] = s.day(r.facts.at), i
	}
	// A run goes again when its call's day moved (once, the day is then
	// the stored one) or when Redis did not know the script (once, after
	// loading it): three rounds are enough.
	for round := 0; round < 3 && len(todo) > 0; round++ {
		cmds := make([]*redis.Cmd, len(todo))
		_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for j, i := range todo {
				k, a := s.lineKeys(runs[i].facts, days[i])
				cmds[j] = runs[i].script.EvalSha(ctx, p, append(k, runs[i].keys...), append(a, runs[i].args...)...)
			}
			return nil
		})
		var again []int
		missing := map[*redis.Script]bool{}
		for j, i := range todo {
			res, err := cmds[j].Slice()
			if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
				missing[runs[i].script] = true
				again = append(again, i)
				continue
			}
			if err != nil {
				out[i] = callReply{err: err}
				continue
			}
			doc, flag, err := scriptReply(res)
			if err == nil && flag == otherDay {
				if days[i] == doc {
					err = fmt.Errorf("the call's day moved twice")
				} else {
					days[i] = doc
					again = append(again, i)
					continue
				}
			}
			out[i] = callReply{doc: doc, flag: flag, err: err}
		}
		for script := range missing {
			if err := script.Load(ctx, s.rdb).Err(); err != nil {
				for _, i := range again {
					out[i] = callReply{err: err}
				}
				return out
			}
		}
		todo = again
	}
	for _, i := range todo {
		out[i] = callReply{err: fmt.Errorf("the call's day moved twice")}
	}
	return out
}

// Served counts the call as served by the agent, on the day of At, for
// the hotline, the agent and the category. A call counts once however
// often it is reported, by whichever node; a call already counted (its
// rating came first) keeps the day and agent of its first event.
func (s *Store) Served(ctx context.Context, c ServedCall) error {
	run, err := s.servedRun(c)
	if err != nil {
		return err
	}
	if _, _, err := s.runShared(ctx, run); err != nil {
		return fmt.Errorf("evaluation: count call %s served: %w", c.CallID, err)
	}
	return nil
}

// ServedAll counts calls served as Served does, each in a script of its
// own, all in one round trip: for replaying many, as after an outage. It
// answers each call's error in order.
func (s *Store) ServedAll(ctx context.Context, cs []ServedCall) []error {
	errs := make([]error, len(cs))
	var runs []callRun
	var at []int
	for i, c := range cs {
		run, err := s.servedRun(c)
		if err != nil {
			errs[i] = err
			continue
		}
		runs, at = append(runs, run), append(at, i)
	}
	for j, reply := range s.runCalls(ctx, runs) {
		if reply.err != nil {
			errs[at[j]] = fmt.Errorf("evaluation: count call %s served: %w", cs[at[j]].CallID, reply.err)
		}
	}
	return errs
}

// servedRun checks c and makes its run of servedScript.
func (s *Store) servedRun(c ServedCall) (callRun, error) {
	switch {
	case c.CallID == "":
		return callRun{}, fmt.Errorf("%w: served call without call id", ErrInvalid)
	case c.AgentID == "" || strings.Contains(c.AgentID, "|"):
		return callRun{}, fmt.Errorf("%w: served call %s: agent id %q", ErrInvalid, c.CallID, c.AgentID)
	case !c.Category.Valid():
		return callRun{}, fmt.Errorf("%w: served call %s: category %q", ErrInvalid, c.CallID, c.Category)
	}
	if c.At.IsZero() {
		c.At = s.now()
	}
	return callRun{script: servedScript, facts: callFacts{callID: c.CallID, agentID: c.AgentID, category: c.Category, at: c.At}}, nil
}

// decodeRow reads a row of a day's table. The table ends after the last
// field ever counted: the fields past its end count zero.
func decodeRow(tbl string, row int) Counts {
	var v [rowFields]int64
	for i := range v {
		off := row*rowBytes + i*4
		if off+4 > len(tbl) {
			break
		}
		v[i] = int64(int32(binary.BigEndian.Uint32([]byte(tbl[off : off+4]))))
	}
	return Counts{Served: v[0], Praise: v[1], BadReview: v[2], NoRating: v[3], Upheld: v[4], Dismissed: v[5]}
}

// scopeDays returns one scope's counts on each of days, in order.
func (s *Store) scopeDays(ctx context.Context, sc Scope, days []string) ([]Counts, error) {
	out := make([]Counts, len(days))
	r, err := s.rdb.HGet(ctx, s.lineRows, sc.row()).Result()
	if errors.Is(err, redis.Nil) {
		return out, nil // never counted
	}
	if err != nil {
		return nil, err
	}
	row, err := strconv.Atoi(r)
	if err != nil {
		return nil, fmt.Errorf("row index %s: %q", sc.row(), r)
	}
	cmds := make([]*redis.StringCmd, len(days))
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, d := range days {
			cmds[i] = p.GetRange(ctx, s.lineDay+d, int64(row*rowBytes), int64(row*rowBytes+rowBytes-1))
		}
		return nil
	}); err != nil {
		return nil, err
	}
	for i, c := range cmds {
		out[i] = decodeRow(c.Val(), 0) // the row, cut from the table
	}
	return out, nil
}

// Table is the line's counters of some days: day → scope → counts, with
// only the scopes that counted something on the day.
type Table map[string]map[Scope]Counts

// add adds c to the day's scope.
func (t Table) add(day string, sc Scope, c Counts) {
	if c.IsZero() {
		return
	}
	if t[day] == nil {
		t[day] = map[Scope]Counts{}
	}
	t[day][sc] = t[day][sc].Add(c)
}

// Sum returns the counts of every scope over all the table's days.
func (t Table) Sum() map[Scope]Counts {
	out := map[Scope]Counts{}
	for _, scopes := range t {
		for sc, c := range scopes {
			out[sc] = out[sc].Add(c)
		}
	}
	return out
}

// Counters reads the line's counters of every scope on days.
func (s *Store) Counters(ctx context.Context, days []string) (Table, error) {
	rows, tables, err := s.tables(ctx, days)
	if err != nil {
		return nil, fmt.Errorf("evaluation: line counters: %w", err)
	}
	t := Table{}
	for i, tbl := range tables {
		for name, row := range rows {
			if sc, ok := scopeOfRow(name); ok {
				t.add(days[i], sc, decodeRow(tbl, row))
			}
		}
	}
	return t, nil
}

// tables reads the row index and the tables of days, "" for a day
// without one.
func (s *Store) tables(ctx context.Context, days []string) (map[string]int, []string, error) {
	var rowsCmd *redis.MapStringStringCmd
	cmds := make([]*redis.StringCmd, len(days))
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		rowsCmd = p.HGetAll(ctx, s.lineRows)
		for i, d := range days {
			cmds[i] = p.Get(ctx, s.lineDay+d)
		}
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		return nil, nil, err
	}
	rows := make(map[string]int, len(rowsCmd.Val()))
	for name, v := range rowsCmd.Val() {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, nil, fmt.Errorf("row index %s: %q", name, v)
		}
		rows[name] = n
	}
	tables := make([]string, len(days))
	for i, c := range cmds {
		tables[i] = c.Val()
	}
	return rows, tables, nil
}

// sumRows sums every row of the tables, by row.
func sumRows(rows map[string]int, tables []string) []Counts {
	n := 0
	for _, r := range rows {
		n = max(n, r+1)
	}
	sums := make([]Counts, n)
	for _, tbl := range tables {
		for r := range min(n, (len(tbl)+rowBytes-1)/rowBytes) {
			sums[r] = sums[r].Add(decodeRow(tbl, r))
		}
	}
	return sums
}

// Line answers the window for one scope: Hotline, an agent or a category.
// A scope never counted counts zero; a scope of both an agent and a
// category is a *ParamError.
func (s *Store) Line(ctx context.Context, w Window, sc Scope) (Line, error) {
	if err := sc.check(); err != nil {
		return Line{}, err
	}
	days := w.Days()
	if len(days) == 0 {
		return Line{}, fmt.Errorf("%w: window %s to %s", ErrInvalid, w.From, w.To)
	}
	per, err := s.scopeDays(ctx, sc, days)
	if err != nil {
		return Line{}, fmt.Errorf("evaluation: line of %s: %w", sc.row(), err)
	}
	var c Counts
	for _, d := range per {
		c = c.Add(d)
	}
	return Evaluate(w, sc, c, s.limit), nil
}

// Ranking is every agent's line over one window, worst first.
type Ranking struct {
	Window
	LimitPer10000 int `json:"limit_per_10000"`
	// Agents are the agents with a call counted in the window: over the
	// line first, then by rate, effective complaints and calls served,
	// highest first; agents with no call served last.
	Agents []Line `json:"agents"`
}

// AgentLines answers the window for every agent with a call counted in
// it, worst first (see Ranking).
func (s *Store) AgentLines(ctx context.Context, w Window) (Ranking, error) {
	days := w.Days()
	if len(days) == 0 {
		return Ranking{}, fmt.Errorf("%w: window %s to %s", ErrInvalid, w.From, w.To)
	}
	rows, tables, err := s.tables(ctx, days)
	if err != nil {
		return Ranking{}, fmt.Errorf("evaluation: agents' lines: %w", err)
	}
	sums := sumRows(rows, tables)
	out := []Line{}
	for name, r := range rows {
		if sc, ok := scopeOfRow(name); ok && sc.AgentID != "" && !sums[r].IsZero() {
			out = append(out, Evaluate(w, sc, sums[r], s.limit))
		}
	}
	slices.SortFunc(out, worstFirst)
	return Ranking{Window: w, LimitPer10000: s.limit, Agents: out}, nil
}

// worstFirst orders lines for AgentLines.
func worstFirst(a, b Line) int {
	rank := func(l Line) (over bool, served bool) { return l.State == Over, l.Served > 0 }
	ao, as := rank(a)
	bo, bs := rank(b)
	switch {
	case ao != bo:
		if ao {
			return -1
		}
		return 1
	case as != bs:
		if as {
			return -1
		}
		return 1
	}
	// a.Upheld/a.Served against b.Upheld/b.Served, in whole numbers.
	if x, y := a.Upheld*b.Served, b.Upheld*a.Served; x != y {
		if x > y {
			return -1
		}
		return 1
	}
	if a.Upheld != b.Upheld {
		return int(b.Upheld - a.Upheld)
	}
	if a.Served != b.Served {
		if a.Served > b.Served {
			return -1
		}
		return 1
	}
	switch {
	case a.AgentID < b.AgentID:
		return -1
	case a.AgentID > b.AgentID:
		return 1
	}
	return 0
}
