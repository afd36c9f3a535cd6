package ban

import "github.com/redis/go-redis/v9"

// The ban keys, all under <prefix>:{ban}: so that Redis Cluster keeps them
// in one slot and a script may touch several:
//
//	fail:<subject>   sorted set: the failures in the window, by time (ms);
//	                 a member is a failure's ID, or an unknown user's
//	                 name. Expires Window after the last failure.
//	ban:<subject>    hash: service, since, until (ms), failures, and the
//	                 token of the Fail call that made it. Expires at until.
//	index:source     sorted sets: subject by until (ms), the bans that List
//	index:user       and hotline_bans_active read without a SCAN; entries
//	                 past their end are pruned whenever a ban is added, and
//	                 the set expires with its last ban.
//	lifted:<subject> hash: what Lift removed and its token, for a minute,
//	                 so that Lift sent again by go-redis answers the same.
type keys struct{ base string }

func (k keys) window(subject string) string { return k.base + "fail:" + subject }
func (k keys) ban(subject string) string    { return k.base + "ban:" + subject }
func (k keys) index(kind string) string     { return k.base + "index:" + kind }
func (k keys) lifted(subject string) string { return k.base + "lifted:" + subject }

// failScript counts one failure against each subject given and bans those
// that reach the maximum within the window. A subject banned already is
// not counted. It returns, per subject, the ban's end (ms) and its
// failures when this call made the ban, else 0 and 0: so exactly one
// caller, on whichever node, logs each ban.
//
// Sent twice by go-redis (after a read timeout) it counts once, since the
// failure's member is already in the window, and answers the same, since
// the ban carries this call's token; a second Fail call with the same ID
// counts nothing and makes no ban.
//
// KEYS: per subject: window, ban, index. ARGV: now (ms), window (ms), max
// failures, ban duration (ms), token, service; then per subject: subject,
// member.
var failScript = redis.NewScript(`
local now, window, max, dur = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local token, service = ARGV[5], ARGV[6]
local out = {}
for i = 0, #KEYS / 3 - 1 do
  local wkey, bkey, ikey = KEYS[3*i+1], KEYS[3*i+2], KEYS[3*i+3]
  local subject, member = ARGV[7+2*i], ARGV[8+2*i]
  local made, failures = 0, 0
  local cur = redis.call('HMGET', bkey, 'until', 'token', 'failures')
  if tonumber(cur[1] or '0') > now then
    if cur[2] == token then made, failures = tonumber(cur[1]), tonumber(cur[3]) end
  else
    redis.call('ZREMRANGEBYSCORE', wkey, '-inf', now - window)
    redis.call('ZADD', wkey, 'NX', now, member)
    redis.call('PEXPIRE', wkey, window)
    local n = redis.call('ZCARD', wkey)
    if n >= max then
      made, failures = now + dur, n
      redis.call('DEL', wkey, bkey)
      redis.call('HSET', bkey, 'service', service, 'since', now, 'until', made, 'failures', n, 'token', token)
      redis.call('PEXPIRE', bkey, dur)
      redis.call('ZREMRANGEBYSCORE', ikey, '-inf', now)
      redis.call('ZADD', ikey, made, subject)
      if redis.call('PTTL', ikey) < dur then redis.call('PEXPIRE', ikey, dur) end
    end
  end
  out[#out+1] = made
  out[#out+1] = failures
end
return out
`)

// liftScript removes a subject's ban and failure window. It returns the
// ban's fields as HGETALL does, none when there was no ban. The fields
// are kept a while under the call's token, so that the script sent again
// by go-redis returns them again rather than nothing.
//
// KEYS: window, ban, index, lifted. ARGV: subject, token, how long to keep
// the lifted fields (ms).
var liftScript = redis.NewScript(`
local done = redis.call('HGETALL', KEYS[4])
for i = 1, #done, 2 do
  if done[i] == 'token' and done[i+1] == ARGV[2] then return done end
end
local ban = redis.call('HGETALL', KEYS[2])
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
if #ban > 0 then
  redis.call('DEL', KEYS[4])
  redis.call('HSET', KEYS[4], unpack(ban))
  redis.call('HSET', KEYS[4], 'token', ARGV[2])
  redis.call('PEXPIRE', KEYS[4], ARGV[3])
end
return ban
`)
