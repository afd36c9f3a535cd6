package acd

import "github.com/redis/go-redis/v9"

// nodeLib is luaLib's companion for node leases. An instance's hash
// (node:<inst>) holds name, the process (host, boot, pidns, pid, pstart),
// started and renewed (ms), st ("live", "lost", "left"), and once lost:
// lost_at (ms), lost_by (the instance that reconciled it), closed (ms,
// when its call records were ended).
const nodeLib = `
-- reclaim gives back what node instance I held, as I is lost: the calls
-- it held in the queue (waiting or offered) leave it, counted lost; the
-- agents ringing for them are free again, keeping their place; the agents
-- talking on its calls wrap up as after any call. I is marked lost and
-- listed for its call records to be ended. by is the instance that
-- reconciles it. It returns the calls and the agents given back.
local function reclaim(I, by, now, wrap)
  local ik = P .. 'node:' .. I
  redis.call('ZREM', P .. 'nodes', I)
  redis.call('HSET', ik, 'st', 'lost', 'lost_at', now, 'lost_by', by)
  local name = redis.call('HGET', ik, 'name')
  if name and redis.call('HGET', P .. 'names', name) == I then
    redis.call('HDEL', P .. 'names', name)
  end
  local calls, agents = 0, 0
  for _, c in ipairs(redis.call('SMEMBERS', P .. 'held:' .. I)) do
    local ck = ckey(c)
    local st = redis.call('HGET', ck, 'st')
    if st == 'waiting' or st == 'offering' or st == 'connected' then
      calls = calls + 1
      local id = redis.call('HGET', ck, 'agent')
      redis.call('HSET', ck, 'st', 'lost', 'ended', now)
      redis.call('ZREM', P .. 'waiting', c)
      redis.call('ZREM', P .. 'queue', c)
      redis.call('EXPIRE', ck, 86400)
      redis.call('EXPIRE', P .. 'tried:' .. c, 86400)
      if st ~= 'connected' then count(redis.call('HGET', ck, 'day'), 'lost') end
      if id and st ~= 'waiting' and redis.call('HGET', akey(id), 'call') == c then
        local ast = redis.call('HGET', akey(id), 'st')
        if ast == 'ringing' then
          rest(id, now, false)
          agents = agents + 1
        elseif ast == 'talking' then
          wrapup(id, now, wrap)
          agents = agents + 1
        end
      end
    end
  end
  redis.call('DEL', P .. 'held:' .. I)
  redis.call('ZADD', P .. 'unclosed', now, I)
  return {calls, agents}
end
-- take makes instance I the holder of name, live until now + lease.
local function take(name, I, now, lease, info)
  local ik = P .. 'node:' .. I
  redis.call('HSET', P .. 'names', name, I)
  redis.call('HSET', ik, 'name', name, 'st', 'live', 'started', now, 'renewed', now,
    'host', info[1], 'boot', info[2], 'pidns', info[3], 'pid', info[4], 'pstart', info[5])
  redis.call('PERSIST', ik)
  redis.call('ZADD', P .. 'nodes', now + lease, I)
end
`

func nodeScript(body string) *redis.Script { return script(nodeLib + body) }

// joinScript makes instance I the holder of node name. The name is free
// when nobody holds it, or its holder is no longer live; a live holder
// whose lease has run out, or that the caller proved gone (ARGV force),
// is reclaimed first: this is how a node takes over what its previous
// run left. A live holder within its lease is answered with what is
// known of it: {"held", instance, lease end, host, boot, pidns, pid,
// pstart, started}. Otherwise {"joined", the instance reclaimed or "",
// calls, agents}.
//
// ARGV: prefix, name, I, now, lease ms, wrap-up ms, force, host, boot,
// pidns, pid, pstart.
var joinScript = nodeScript(`
local name, I, now, lease, wrap, force = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
local info = {ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[12]}
local cur = redis.call('HGET', P .. 'names', name)
local took, calls, agents = '', 0, 0
if cur and cur ~= I then
  local ends = redis.call('ZSCORE', P .. 'nodes', cur)
  if ends then
    if tonumber(ends) >= now and cur ~= force then
      local ck = P .. 'node:' .. cur
      local h = redis.call('HMGET', ck, 'host', 'boot', 'pidns', 'pid', 'pstart', 'started')
      return {'held', cur, ends, h[1] or '', h[2] or '', h[3] or '', h[4] or '', h[5] or '', h[6] or ''}
    end
    local r = reclaim(cur, I, now, wrap)
    took, calls, agents = cur, r[1], r[2]
  end
end
take(name, I, now, lease, info)
return {'joined', took, tostring(calls), tostring(agents)}
`)

// renewScript renews instance I's lease: "ok", or "lost" when it was
// reclaimed meanwhile (or its name taken), "left" after LeaveNode,
// "missing" when Redis holds nothing of it (its data was lost).
//
// ARGV: prefix, I, now, lease ms.
var renewScript = nodeScript(`
local I, now, lease = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local ik = P .. 'node:' .. I
local st = redis.call('HGET', ik, 'st')
if not st then return 'missing' end
if st ~= 'live' then return st end
if redis.call('HGET', P .. 'names', redis.call('HGET', ik, 'name')) ~= I then return 'lost' end
redis.call('HSET', ik, 'renewed', now)
redis.call('ZADD', P .. 'nodes', now + lease, I)
return 'ok'
`)

// reconcileScript reclaims the instances whose lease ran out before now,
// at most most of them, but never by, the instance asking. Each is taken
// off the live set in the same script that reclaims it, so no two nodes
// reclaim one instance. It returns instance, name, renewed, calls,
// agents for each.
//
// ARGV: prefix, by, now, wrap-up ms, most.
var reconcileScript = nodeScript(`
local by, now, wrap, most = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local out = {}
for _, I in ipairs(redis.call('ZRANGEBYSCORE', P .. 'nodes', '-inf', '(' .. now, 'LIMIT', 0, most + 1)) do
  if I ~= by and #out < most * 5 then
    local r = reclaim(I, by, now, wrap)
    local h = redis.call('HMGET', P .. 'node:' .. I, 'name', 'renewed')
    out[#out+1] = I
    out[#out+1] = h[1] or ''
    out[#out+1] = h[2] or ''
    out[#out+1] = tostring(r[1])
    out[#out+1] = tostring(r[2])
  end
end
return out
`)

// claimUnclosedScript claims lost instances whose call records are still
// to be ended, until now + hold: another node takes the work over only if
// the claimant has not finished by then. It returns instance, name,
// renewed, lost_at, lost_by for each.
//
// ARGV: prefix, now, hold ms, most.
var claimUnclosedScript = nodeScript(`
local now, hold, most = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local out = {}
for _, I in ipairs(redis.call('ZRANGEBYSCORE', P .. 'unclosed', '-inf', now, 'LIMIT', 0, most)) do
  redis.call('ZADD', P .. 'unclosed', now + hold, I)
  local h = redis.call('HMGET', P .. 'node:' .. I, 'name', 'renewed', 'lost_at', 'lost_by')
  out[#out+1] = I
  out[#out+1] = h[1] or ''
  out[#out+1] = h[2] or ''
  out[#out+1] = h[3] or ''
  out[#out+1] = h[4] or ''
end
return out
`)

// closedScript records that a lost instance's call records are ended:
// nothing of it is left to do, and its hash is kept keep ms for audit.
//
// ARGV: prefix, I, now, keep ms.
var closedScript = nodeScript(`
local I = ARGV[2]
redis.call('ZREM', P .. 'unclosed', I)
local ik = P .. 'node:' .. I
if redis.call('EXISTS', ik) == 1 then
  redis.call('HSET', ik, 'closed', ARGV[3])
  redis.call('PEXPIRE', ik, ARGV[4])
end
return 'ok'
`)

// leaveNodeScript ends instance I's lease as the node stops. What it still
// holds in the queue (nothing, after a clean stop) is reclaimed as for a
// lost instance; otherwise the instance is marked left and kept keep ms.
//
// ARGV: prefix, I, now, wrap-up ms, keep ms.
var leaveNodeScript = nodeScript(`
local I, now, wrap = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local ik = P .. 'node:' .. I
if redis.call('HGET', ik, 'st') ~= 'live' then return 'gone' end
if redis.call('SCARD', P .. 'held:' .. I) > 0 then
  reclaim(I, I, now, wrap)
  return 'reclaimed'
end
redis.call('ZREM', P .. 'nodes', I)
local name = redis.call('HGET', ik, 'name')
if name and redis.call('HGET', P .. 'names', name) == I then
  redis.call('HDEL', P .. 'names', name)
end
redis.call('HSET', ik, 'st', 'left', 'lost_at', now)
redis.call('PEXPIRE', ik, ARGV[5])
return 'left'
`)

// nodeFieldScript changes a field of a live instance's hash, never making
// the hash of one gone.
//
// ARGV: prefix, instance, "incr" field delta | "set" field value at.
var nodeFieldScript = script(`
local ik = P .. 'node:' .. ARGV[2]
if redis.call('HGET', ik, 'st') ~= 'live' then return 0 end
if ARGV[3] == 'incr' then
  return redis.call('HINCRBY', ik, ARGV[4], ARGV[5])
end
redis.call('HSET', ik, ARGV[4], ARGV[5], ARGV[4] .. '_at', ARGV[6])
return 1
`)
