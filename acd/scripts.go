package acd

import "github.com/redis/go-redis/v9"

// The scripts share the functions below. Every script gets the key prefix
// (<prefix>:{acd}:) as ARGV[1] and builds its keys from it, all in the
// {acd} hash slot, which KEYS[1] names so that Redis Cluster routes the
// script there.
//
// An agent's hash holds its provisioning (id, name, user, cats, ha1, ha1s)
// and its state: st (State), why (pause reason), since (ms), idle (ms, when
// it last became free), call, missed, seq (bumped each time the agent
// becomes free anew: an offer declined at one seq is not repeated until the
// next), reg ("1" while a phone is registered), pnext (a pause asked for
// during a call), until (end of wrap-up, ms).
const luaLib = `
local P = ARGV[1]
local function split(s)
  local t = {}
  if s then for x in string.gmatch(s, '[^,]+') do t[#t+1] = x end end
  return t
end
local function akey(id) return P .. 'a:' .. id end
local function ckey(id) return P .. 'c:' .. id end
local function unlist(id)
  for _, c in ipairs(split(redis.call('HGET', akey(id), 'cats'))) do
    redis.call('ZREM', P .. 'avail:' .. c, id)
  end
  redis.call('ZREM', P .. 'wrapup', id)
  redis.call('ZREM', P .. 'ringing', id)
end
local function list(id, idle)
  for _, c in ipairs(split(redis.call('HGET', akey(id), 'cats'))) do
    redis.call('ZADD', P .. 'avail:' .. c, idle, id)
  end
end
local function setst(id, st, now, why)
  redis.call('HSET', akey(id), 'st', st, 'since', now, 'why', why or '')
end
-- rest puts an agent who is free of calls where it belongs: offline
-- without a phone, paused when a pause waits, else available. fresh says
-- the agent starts a new idle period (after a call, a pause, a
-- registration); otherwise it keeps its place (after a declined offer).
local function rest(id, now, fresh)
  local k = akey(id)
  unlist(id)
  redis.call('HDEL', k, 'call', 'until')
  if redis.call('HGET', k, 'reg') ~= '1' then
    setst(id, 'offline', now)
    return
  end
  local pnext = redis.call('HGET', k, 'pnext')
  if pnext and pnext ~= '' then
    redis.call('HDEL', k, 'pnext')
    setst(id, 'paused', now, pnext)
    return
  end
  local idle = tonumber(redis.call('HGET', k, 'idle') or now)
  if fresh then
    idle = tonumber(now)
    redis.call('HSET', k, 'idle', idle)
    redis.call('HINCRBY', k, 'seq', 1)
  end
  setst(id, 'available', now)
  list(id, idle)
end
local function count(day, field, n)
  redis.call('HINCRBY', P .. 'day:' .. day, field, n or 1)
end
-- wrapup puts an agent whose conversation ended into wrap-up for wrap
-- ms, or straight on with none (or without a phone).
local function wrapup(id, now, wrap)
  local k = akey(id)
  if wrap > 0 and redis.call('HGET', k, 'reg') == '1' then
    redis.call('HSET', k, 'until', now + wrap)
    redis.call('HDEL', k, 'call')
    setst(id, 'wrapup', now)
    redis.call('ZADD', P .. 'wrapup', now + wrap, id)
    return
  end
  rest(id, now, true)
end
-- unhold takes a call off the list of the node instance holding it.
local function unhold(c)
  local i = redis.call('HGET', ckey(c), 'inst')
  if i then redis.call('SREM', P .. 'held:' .. i, c) end
end
`

func script(body string) *redis.Script { return redis.NewScript(luaLib + body) }

// upsertScript creates or updates an agent's provisioning. An agent keeps
// its state across updates; one taking new categories while available is
// listed under them at once.
//
// ARGV: prefix, id, name, user, cats, ha1, ha1s (both "" to keep), now,
// mode ("create", "update", "put").
var upsertScript = script(`
local id, user, now, mode = ARGV[2], ARGV[4], ARGV[8], ARGV[9]
local k = akey(id)
local exists = redis.call('EXISTS', k) == 1
if mode == 'create' and exists then return 'exists' end
if mode == 'update' and not exists then return 'notfound' end
local owner = redis.call('GET', P .. 'user:' .. user)
if owner and owner ~= id then return 'user' end
if not exists and ARGV[6] == '' then return 'password' end
local st = redis.call('HGET', k, 'st')
if st == 'available' then unlist(id) end
local old = redis.call('HGET', k, 'user')
if old and old ~= user then redis.call('DEL', P .. 'user:' .. old) end
redis.call('HSET', k, 'id', id, 'name', ARGV[3], 'user', user, 'cats', ARGV[5])
if ARGV[6] ~= '' then redis.call('HSET', k, 'ha1', ARGV[6], 'ha1s', ARGV[7]) end
redis.call('SET', P .. 'user:' .. user, id)
redis.call('SADD', P .. 'agents', id)
if not exists then
  redis.call('HSET', k, 'st', 'offline', 'since', now, 'missed', 0, 'seq', 0, 'reg', '0')
elseif st == 'available' then
  list(id, redis.call('HGET', k, 'idle') or now)
end
return exists and 'updated' or 'created'
`)

// deleteScript removes an agent not in a call; for one ringing or
// talking it returns "busy:" and the state.
//
// ARGV: prefix, id.
var deleteScript = script(`
local id = ARGV[2]
local k = akey(id)
local st = redis.call('HGET', k, 'st')
if not st then return 'notfound' end
if st == 'ringing' or st == 'talking' then return 'busy:' .. st end
unlist(id)
redis.call('DEL', P .. 'user:' .. redis.call('HGET', k, 'user'))
redis.call('DEL', k)
redis.call('SREM', P .. 'agents', id)
return 'ok'
`)

// presenceScript records a phone registering ("1") or going away ("0").
// A registration brings an offline agent in as available; losing it takes
// a free agent offline at once and one in a call when the call ends.
//
// ARGV: prefix, id, "1"|"0", now.
var presenceScript = script(`
local id, reg, now = ARGV[2], ARGV[3], ARGV[4]
local k = akey(id)
local st = redis.call('HGET', k, 'st')
if not st then return 'notfound' end
redis.call('HSET', k, 'reg', reg)
if reg == '1' then
  if st == 'offline' then rest(id, now, true) end
elseif st == 'available' or st == 'wrapup' or st == 'paused' then
  redis.call('HDEL', k, 'pnext')
  rest(id, now, false)
end
return redis.call('HGET', k, 'st')
`)

// pauseScript pauses an agent (reason) or resumes one (reason ""). It
// returns {"ok", state} when it did what was asked, {"refused", state}
// when the state does not allow it, {"notfound", ""}.
//
// Pausing during a call (ringing, talking) is a pause taken when the call
// ends: the state stays and pnext holds the reason. An offline agent
// cannot be paused: it takes no calls anyway, and its phone registering
// would bring it back as available.
//
// Resuming ends a pause, or cancels one waiting for a call's end (or for
// the wrap-up after it). An available agent is left as it is: it takes
// calls already, so a retried resume does no harm. Any other state is
// refused: there is nothing to resume.
//
// ARGV: prefix, id, reason, now.
var pauseScript = script(`
local id, why, now = ARGV[2], ARGV[3], ARGV[4]
local k = akey(id)
local st = redis.call('HGET', k, 'st')
if not st then return {'notfound', ''} end
if why ~= '' then
  if st == 'offline' then return {'refused', st} end
  if st == 'ringing' or st == 'talking' then
    redis.call('HSET', k, 'pnext', why)
    return {'ok', st}
  end
  unlist(id)
  redis.call('HDEL', k, 'until', 'pnext')
  setst(id, 'paused', now, why)
  return {'ok', 'paused'}
end
if st == 'paused' then
  redis.call('HSET', k, 'missed', 0)
  rest(id, now, true)
  return {'ok', redis.call('HGET', k, 'st')}
end
local pnext = redis.call('HGET', k, 'pnext')
if pnext and pnext ~= '' then
  redis.call('HDEL', k, 'pnext')
  return {'ok', st}
end
if st == 'available' then return {'ok', st} end
return {'refused', st}
`)

// forceScript sets an agent's state on an operator's word: available or
// paused (with a phone registered), offline (without one). Whatever call
// the agent was ringing or talking on no longer holds it: the call's own
// end, or its node's reconciliation, leaves the agent alone once the
// agent's call is another. Who forced what is kept on the agent.
//
// ARGV: prefix, id, state, reason, now, by.
var forceScript = script(`
local id, want, why, now, by = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local k = akey(id)
local st = redis.call('HGET', k, 'st')
if not st then return 'notfound' end
local reg = redis.call('HGET', k, 'reg') == '1'
if (want == 'available' or want == 'paused') and not reg then return 'nophone' end
if want == 'offline' and reg then return 'phone' end
local call = redis.call('HGET', k, 'call') or ''
unlist(id)
redis.call('HDEL', k, 'call', 'until', 'pnext')
redis.call('HSET', k, 'missed', 0, 'fby', by, 'fat', now, 'ffrom', st, 'fto', want, 'fwhy', why, 'fcall', call)
if want == 'available' then
  rest(id, now, st ~= 'available')
elseif want == 'paused' then
  setst(id, 'paused', now, why)
else
  setst(id, 'offline', now)
end
return redis.call('HGET', k, 'st')
`)

// enqueueScript puts a call in the queue, once. A call held by a node
// instance is listed as the instance's until it leaves the queue or its
// conversation ends, so that what a lost instance held can be found.
//
// ARGV: prefix, call, category, score, enqueued ms, node, day, node
// instance ("" for none).
var enqueueScript = script(`
local c = ARGV[2]
local k = ckey(c)
if redis.call('EXISTS', k) == 1 then return 0 end
redis.call('HSET', k, 'cat', ARGV[3], 'score', ARGV[4], 'enq', ARGV[5], 'st', 'waiting', 'node', ARGV[6], 'day', ARGV[7])
if ARGV[8] ~= '' then
  redis.call('HSET', k, 'inst', ARGV[8])
  redis.call('SADD', P .. 'held:' .. ARGV[8], c)
end
redis.call('ZADD', P .. 'waiting', ARGV[4], c)
redis.call('ZADD', P .. 'queue', ARGV[4], c)
count(ARGV[7], 'queued')
return 1
`)

// turnedAwayScript counts a call turned away with no agent of its
// category registered, once: the call's hash, kept a day like those of
// the calls that left the queue, says it was counted, as enqueueScript's
// says a call was queued.
//
// ARGV: prefix, call, category, now ms, day.
var turnedAwayScript = script(`
local c = ARGV[2]
local k = ckey(c)
if redis.call('EXISTS', k) == 1 then return 0 end
redis.call('HSET', k, 'cat', ARGV[3], 'st', 'turned_away', 'ended', ARGV[4], 'day', ARGV[5])
redis.call('EXPIRE', k, 86400)
count(ARGV[5], 'turned_away')
return 1
`)

// dispatchScript ends expired wrap-ups, takes back offers left ringing by
// a node that died, then offers waiting calls, best first (emergency, then
// longest waiting), each to the longest idle available agent who takes its
// category and has not declined it since last becoming free, or, when all
// have, to the one who had it longest ago, re-offer ms after. It returns
// call, agent, agent's user, call's node, for each offer made.
//
// ARGV: prefix, now, most offers, stale ringing before this ms, re-offer
// wait ms.
var dispatchScript = script(`
local now, most, stale = ARGV[2], tonumber(ARGV[3]), ARGV[4]
for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'wrapup', '-inf', now)) do
  if redis.call('HGET', akey(id), 'st') == 'wrapup' then
    rest(id, redis.call('HGET', akey(id), 'until') or now, true)
  else
    redis.call('ZREM', P .. 'wrapup', id)
  end
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'ringing', '-inf', stale)) do
  local c = redis.call('HGET', akey(id), 'call')
  if c and redis.call('HGET', ckey(c), 'agent') == id and redis.call('HGET', ckey(c), 'st') == 'offering' then
    redis.call('HSET', ckey(c), 'st', 'lost', 'ended', now)
    redis.call('ZREM', P .. 'queue', c)
    redis.call('EXPIRE', ckey(c), 86400)
    unhold(c)
    count(redis.call('HGET', ckey(c), 'day'), 'lost')
  end
  if redis.call('HGET', akey(id), 'st') == 'ringing' then
    rest(id, now, false)
  else
    redis.call('ZREM', P .. 'ringing', id)
  end
end
local out = {}
local any = false
for _, cat in ipairs({'emergency', 'livelihood', 'general', 'complex'}) do
  if redis.call('ZCARD', P .. 'avail:' .. cat) > 0 then any = true end
end
if not any then return out end
local again = tonumber(ARGV[5])
-- offer rings agent id for call c; tried remembers the agent's seq and
-- when.
local function offer(c, id, seq)
  unlist(id)
  redis.call('HSET', akey(id), 'call', c)
  setst(id, 'ringing', now)
  redis.call('ZADD', P .. 'ringing', now, id)
  redis.call('HSET', ckey(c), 'st', 'offering', 'agent', id, 'offered', now)
  redis.call('HSET', P .. 'tried:' .. c, id, seq .. ':' .. now)
  redis.call('ZREM', P .. 'waiting', c)
  count(redis.call('HGET', ckey(c), 'day'), 'offers')
  out[#out+1] = c
  out[#out+1] = id
  out[#out+1] = redis.call('HGET', akey(id), 'user')
  out[#out+1] = redis.call('HGET', ckey(c), 'node')
end
local empty = {}
for _, c in ipairs(redis.call('ZRANGE', P .. 'waiting', 0, -1)) do
  if #out >= most * 4 then break end
  local cat = redis.call('HGET', ckey(c), 'cat')
  if cat and not empty[cat] then
    local found = false
    local cands = redis.call('ZRANGE', P .. 'avail:' .. cat, 0, -1)
    -- The longest idle agent who has not had this call since last
    -- becoming free; failing that, the one who had it longest ago, once
    -- the re-offer wait has passed: a lone agent who let it ring out is
    -- rung again rather than the caller left waiting for nobody.
    local oldest, oldestAt = nil, nil
    for _, id in ipairs(cands) do
      local seq = redis.call('HGET', akey(id), 'seq')
      local tried = redis.call('HGET', P .. 'tried:' .. c, id)
      local tseq, tat = nil, 0
      if tried then
        tseq, tat = string.match(tried, '^([^:]*):?(%d*)$')
        tat = tonumber(tat) or 0
      end
      if tseq ~= seq then
        offer(c, id, seq)
        found = true
        break
      end
      if tonumber(now) - tat >= again and (oldestAt == nil or tat < oldestAt) then
        oldest, oldestAt = id, tat
      end
    end
    if not found and oldest then
      offer(c, oldest, redis.call('HGET', akey(oldest), 'seq'))
      found = true
    end
    if not found and #cands == 0 then empty[cat] = true end
  end
end
return out
`)

// answeredScript records that the agent offered the call answered.
//
// ARGV: prefix, call, agent, now, answered-in-time limit ms, agent day key
// suffix (day:agent).
var answeredScript = script(`
local c, id, now = ARGV[2], ARGV[3], tonumber(ARGV[4])
local ck, ak = ckey(c), akey(id)
if redis.call('HGET', ck, 'agent') ~= id or redis.call('HGET', ck, 'st') ~= 'offering' then
  if redis.call('HGET', ck, 'st') == 'connected' and redis.call('HGET', ck, 'agent') == id then return 'ok' end
  return 'stale'
end
local wait = now - tonumber(redis.call('HGET', ck, 'enq'))
local day = redis.call('HGET', ck, 'day')
redis.call('HSET', ck, 'st', 'connected', 'answered', now)
redis.call('ZREM', P .. 'queue', c)
redis.call('HSET', ak, 'missed', 0)
setst(id, 'talking', now)
redis.call('ZREM', P .. 'ringing', id)
count(day, 'answered')
count(day, 'wait_ms', wait)
if wait <= tonumber(ARGV[5]) then count(day, 'answered_in_time') end
redis.call('HINCRBY', P .. 'aday:' .. ARGV[6], 'served', 1)
return 'ok'
`)

// declinedScript records an offer that came to nothing: "no_answer"
// (counts as a miss; N in a row pause the agent), "rejected",
// "unreachable" (the agent's phone is gone: offline). The call waits
// again in its old place.
//
// ARGV: prefix, call, agent, reason, now, most misses.
var declinedScript = script(`
local c, id, why, now = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local ck, ak = ckey(c), akey(id)
if redis.call('HGET', ck, 'agent') ~= id or redis.call('HGET', ck, 'st') ~= 'offering' then return 'stale' end
local day = redis.call('HGET', ck, 'day')
redis.call('HSET', ck, 'st', 'waiting')
redis.call('HDEL', ck, 'agent')
redis.call('ZADD', P .. 'waiting', redis.call('HGET', ck, 'score'), c)
if redis.call('HGET', ak, 'call') == c and redis.call('HGET', ak, 'st') == 'ringing' then
  if why == 'no_answer' then
    count(day, 'unanswered')
    if redis.call('HINCRBY', ak, 'missed', 1) >= tonumber(ARGV[6]) then
      redis.call('HSET', ak, 'pnext', 'no-answer')
    end
  elseif why == 'unreachable' then
    redis.call('HSET', ak, 'reg', '0')
  else
    count(day, 'rejected')
  end
  rest(id, now, false)
end
return redis.call('HGET', ak, 'st') or 'gone'
`)

// endedScript records the end of a conversation: the agent goes to
// wrap-up (or straight on when it lasts 0), the call leaves for good.
//
// ARGV: prefix, call, agent, now, wrap-up ms, agent day key suffix.
var endedScript = script(`
local c, id, now, wrap = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local ck, ak = ckey(c), akey(id)
if redis.call('HGET', ck, 'st') ~= 'connected' or redis.call('HGET', ck, 'agent') ~= id then return 'stale' end
unhold(c)
redis.call('HSET', ck, 'st', 'ended', 'ended', now)
redis.call('EXPIRE', ck, 86400)
redis.call('EXPIRE', P .. 'tried:' .. c, 86400)
local talk = now - tonumber(redis.call('HGET', ck, 'answered'))
redis.call('HINCRBY', P .. 'aday:' .. ARGV[6], 'talk_ms', talk)
if redis.call('HGET', ak, 'call') ~= c or redis.call('HGET', ak, 'st') ~= 'talking' then return 'ok' end
wrapup(id, now, wrap)
return 'ok'
`)

// leaveScript takes a call out of the queue before it reached an agent:
// the caller hung up ("abandoned") or asked to be called back
// ("callback"). An agent whose phone was ringing for it is free again.
//
// ARGV: prefix, call, reason, now.
var leaveScript = script(`
local c, why, now = ARGV[2], ARGV[3], ARGV[4]
local ck = ckey(c)
local st = redis.call('HGET', ck, 'st')
if st ~= 'waiting' and st ~= 'offering' then return st or 'notfound' end
unhold(c)
local id = redis.call('HGET', ck, 'agent')
redis.call('HSET', ck, 'st', why, 'ended', now)
redis.call('ZREM', P .. 'waiting', c)
redis.call('ZREM', P .. 'queue', c)
redis.call('EXPIRE', ck, 86400)
redis.call('EXPIRE', P .. 'tried:' .. c, 86400)
count(redis.call('HGET', ck, 'day'), why)
if id and redis.call('HGET', akey(id), 'call') == c and redis.call('HGET', akey(id), 'st') == 'ringing' then
  rest(id, now, false)
end
return why
`)

// positionScript counts the callers ahead of a waiting call who compete
// for the same agents: those of its category and emergency callers.
//
// ARGV: prefix, call.
var positionScript = script(`
local c = ARGV[2]
local cat = redis.call('HGET', ckey(c), 'cat')
local rank = redis.call('ZRANK', P .. 'queue', c)
if not cat or not rank then return -1 end
local n = 0
if rank > 0 then
  for _, o in ipairs(redis.call('ZRANGE', P .. 'queue', 0, rank - 1)) do
    local oc = redis.call('HGET', ckey(o), 'cat')
    if oc == cat or oc == 'emergency' then n = n + 1 end
  end
end
return n + 1
`)
