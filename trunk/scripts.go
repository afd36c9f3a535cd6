package trunk

import "github.com/redis/go-redis/v9"

// recordScript records a probe of a trunk and its new health, and appends
// the event of a change of state, in one step: only the node holding the
// trunk's lease writes, and only over the health it read (seq), so a
// state changes once however many nodes watch, and a retried script
// (go-redis after a read timeout) changes nothing twice.
//
// KEYS: health hash, events stream, lease. ARGV: owner, seq read, state,
// failures, successes, now (ms, the since of a new state), probe's start
// (ms), status, RTT (µs, "" for none), error, node, probe id, events kept,
// event document.
//
// Returns the event's id on a change of state, 0 without one, -1 when the
// lease is another's, -2 when the health changed since it was read.
var recordScript = redis.NewScript(`
if redis.call('GET', KEYS[3]) ~= ARGV[1] then
  return -1
end
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
if seq ~= tonumber(ARGV[2]) then
  return -2
end
local cur = redis.call('HGET', KEYS[1], 'state') or 'unknown'
redis.call('HSET', KEYS[1], 'seq', seq + 1, 'state', ARGV[3], 'failures', ARGV[4], 'successes', ARGV[5],
  'probe_at', ARGV[7], 'probe_status', ARGV[8], 'probe_rtt_us', ARGV[9], 'probe_error', ARGV[10],
  'probe_node', ARGV[11], 'probe_id', ARGV[12])
if ARGV[9] ~= '' then
  redis.call('HSET', KEYS[1], 'rtt_us', ARGV[9])
end
if cur == ARGV[3] then
  return 0
end
redis.call('HSET', KEYS[1], 'since', ARGV[6])
return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[13], '*', 'doc', ARGV[14])
`)

// leaseScript takes or renews a trunk's probe lease for ARGV[1], for
// ARGV[2] ms.
//
// Returns 1 when ARGV[1] holds it, 0 when another does.
var leaseScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if not cur or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
`)

// releaseScript gives up ARGV[1]'s lease, so that another node probes at
// once.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// acquireScript seizes a channel of a trunk when the channels in use, in
// and out together, are below its limit; channels whose expiry passed (a
// node that crashed with them) are dropped first. A retry of the same
// seizure (its id) takes nothing more.
//
// KEYS: the trunk's inbound channels, its outbound channels, the minute's
// figures. ARGV: now (ms), the channel's expiry (ms), limit, direction (in
// or out), channel id, the figures' time to live (ms).
//
// Returns {seized (1 or 0), channels in, channels out}.
var acquireScript = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
local key = KEYS[1]
if ARGV[4] == 'out' then
  key = KEYS[2]
end
local nin = redis.call('ZCARD', KEYS[1])
local nout = redis.call('ZCARD', KEYS[2])
if redis.call('ZSCORE', key, ARGV[5]) then
  return {1, nin, nout}
end
if nin + nout >= tonumber(ARGV[3]) then
  return {0, nin, nout}
end
redis.call('ZADD', key, ARGV[2], ARGV[5])
redis.call('HINCRBY', KEYS[3], ARGV[4] .. ':seized', 1)
redis.call('PEXPIRE', KEYS[3], ARGV[6])
if ARGV[4] == 'out' then
  nout = nout + 1
else
  nin = nin + 1
end
return {1, nin, nout}
`)

// answerScript marks a channel's call answered (its member gains ":a")
// and counts the answer in the minute the channel was seized, once.
//
// KEYS: the channels, the seizure minute's figures. ARGV: channel id,
// direction, the figures' time to live (ms).
var answerScript = redis.NewScript(`
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score then
  return 0
end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], score, ARGV[1] .. ':a')
redis.call('HINCRBY', KEYS[2], ARGV[2] .. ':answered', 1)
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
`)

// releaseChannelScript frees a channel; an unanswered call's outcome
// (unanswered or failed) is counted in the minute it was seized, once.
//
// KEYS: the channels, the seizure minute's figures. ARGV: channel id,
// direction, outcome, the figures' time to live (ms).
var releaseChannelScript = redis.NewScript(`
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('HINCRBY', KEYS[2], ARGV[2] .. ':' .. ARGV[3], 1)
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
  return 1
end
return redis.call('ZREM', KEYS[1], ARGV[1] .. ':a')
`)

// registrationScript records a registration of a trunk, and appends the
// event of a change of its state, in one step: only the node holding the
// trunk's registration lease writes, and only over the registration it
// read (seq), as recordScript does for the health.
//
// KEYS: registration hash, events stream, registration lease. ARGV:
// owner, seq read, state, since (ms), until (ms, 0 for none), attempt
// (ms), status, reason, attempts, node, events kept, event document (""
// without a change of state).
//
// Returns the event's id on a change of state, 0 without one, -1 when the
// lease is another's, -2 when the registration changed since it was read.
var registrationScript = redis.NewScript(`
if redis.call('GET', KEYS[3]) ~= ARGV[1] then
  return -1
end
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
if seq ~= tonumber(ARGV[2]) then
  return -2
end
redis.call('HSET', KEYS[1], 'seq', seq + 1, 'state', ARGV[3], 'since', ARGV[4], 'until', ARGV[5], 'at', ARGV[6],
  'status', ARGV[7], 'reason', ARGV[8], 'attempts', ARGV[9], 'node', ARGV[10])
if ARGV[12] == '' then
  return 0
end
return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[11], '*', 'doc', ARGV[12])
`)
