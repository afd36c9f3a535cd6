package auth

import "github.com/redis/go-redis/v9"

// The scripts share the functions below. Every script gets the key prefix
// (<prefix>:{auth}:) as ARGV[1] and builds its keys from it, all in the
// {auth} hash slot, which KEYS[1] names so that Redis Cluster routes the
// script there. Times are ms since the epoch, from the Store's clock, and
// key lifetimes are set relative to it (PEXPIRE, not PEXPIREAT), so a
// Store whose clock differs from Redis's still keeps tokens as long as it
// means to.
//
// An account's hash (userFields): name (as given), roles (comma list in
// the order of Roles), agent, organizer, disabled ("1" or "0"), pw (PHC string, absent
// without a password), created, created_by, updated, updated_by, op (the
// id of the AddUser that made it, so a retried AddUser finds its own
// work).
//
// A token's hash (tokenFields): id, user ("" for none), name, roles,
// login ("1" or "0"), created, created_by, expires, revoked and
// revoked_by (absent until revoked), used (last use, optional), idle (ms
// without use after which it ends, optional), sha (hex SHA-256 of the
// secret).
const luaLib = `
local P = ARGV[1]
local function ukey(name) return P .. 'user:' .. string.lower(name) end
local function tkey(id) return P .. 'token:' .. id end
local function lkey(name) return P .. 'login:' .. string.lower(name) end
local function has(list, role)
  if not list then return false end
  for x in string.gmatch(list, '[^,]+') do
    if x == role then return true end
  end
  return false
end
-- prune drops the index entries of token keys that have expired.
local function prune(now)
  redis.call('ZREMRANGEBYSCORE', P .. 'tokens', '-inf', now)
end
-- settle sets how long a token's key lives: Retention past the time it
-- ended or will end.
local function settle(id, ended, now, ret)
  local gone = ended + ret
  redis.call('PEXPIRE', tkey(id), math.max(gone - now, 1))
  redis.call('ZADD', P .. 'tokens', gone, id)
end
-- revoke revokes a live or expired token; a revoked one is left as it is.
local function revoke(id, now, by, ret)
  local k = tkey(id)
  local t = redis.call('HMGET', k, 'expires', 'revoked', 'user', 'login')
  if not t[1] then return false end
  if t[2] then return true end
  redis.call('HSET', k, 'revoked', now, 'revoked_by', by)
  settle(id, math.min(tonumber(t[1]), tonumber(now)), tonumber(now), tonumber(ret))
  if t[4] == '1' then redis.call('ZREM', lkey(t[3]), id) end
  return true
end
-- account returns the fields of the account name, exactly as spelled, or
-- nil.
local function account(name, ...)
  local u = redis.call('HMGET', ukey(name), 'name', ...)
  if u[1] ~= name then return nil end
  return u
end
-- ok replies with the word 'ok' and the fields of key.
local function ok(key)
  return {'ok', redis.call('HGETALL', key)}
end
`

func script(body string) *redis.Script { return redis.NewScript(luaLib + body) }

// addUserScript makes an account, once. A retry of the same AddUser (the
// same op) finds the account it made and replies as the first run did.
//
// ARGV: prefix, name, roles, agent, pw ("" for none), now, by, op,
// organizer.
// Replies {'ok', fields} or {'exists', the name that holds the key}.
var addUserScript = script(`
local name, now, op = ARGV[2], ARGV[6], ARGV[8]
local k = ukey(name)
if redis.call('EXISTS', k) == 1 then
  if redis.call('HGET', k, 'op') == op then return ok(k) end
  return {'exists', redis.call('HGET', k, 'name')}
end
redis.call('HSET', k, 'name', name, 'roles', ARGV[3], 'agent', ARGV[4], 'organizer', ARGV[9] or '',
  'disabled', '0', 'created', now, 'created_by', ARGV[7], 'updated', now, 'op', op)
if ARGV[5] ~= '' then redis.call('HSET', k, 'pw', ARGV[5]) end
redis.call('SADD', P .. 'users', name)
return ok(k)
`)

// updateUserScript changes an account's roles, agent, organizer or disabled flag;
// running it twice changes nothing more.
//
// ARGV: prefix, name, roles ("" to keep), set agent ("1" or "0"), agent,
// disabled ("" to keep, "0", "1"), now, by, set organizer ("1" or "0"),
// organizer.
// Replies {'ok', fields} or {'notfound'}.
var updateUserScript = script(`
local name, roles, disabled = ARGV[2], ARGV[3], ARGV[6]
if not account(name) then return {'notfound'} end
local k = ukey(name)
if roles ~= '' then redis.call('HSET', k, 'roles', roles) end
if ARGV[4] == '1' then redis.call('HSET', k, 'agent', ARGV[5]) end
if ARGV[9] == '1' then redis.call('HSET', k, 'organizer', ARGV[10]) end
if disabled ~= '' then redis.call('HSET', k, 'disabled', disabled) end
redis.call('HSET', k, 'updated', ARGV[7], 'updated_by', ARGV[8])
return ok(k)
`)

// setPasswordScript sets an account's password hash.
//
// ARGV: prefix, name, pw, now, by. Replies {'ok'} or {'notfound'}.
var setPasswordScript = script(`
local name = ARGV[2]
if not account(name) then return {'notfound'} end
redis.call('HSET', ukey(name), 'pw', ARGV[3], 'updated', ARGV[4], 'updated_by', ARGV[5])
return {'ok'}
`)

// putToken stores a new token, its index entry and its lifetime, and for
// a login token makes room under the account's cap by revoking its oldest
// live login tokens.
const putToken = `
local function put_token(id, sha, user, tname, roles, login, now, by, expires, ret, maxlogin)
  local k = tkey(id)
  redis.call('HSET', k, 'id', id, 'user', user, 'name', tname, 'roles', roles, 'login', login,
    'created', now, 'created_by', by, 'expires', expires, 'sha', sha)
  settle(id, tonumber(expires), tonumber(now), tonumber(ret))
  if login ~= '1' then return end
  local lk = lkey(user)
  for _, tid in ipairs(redis.call('ZRANGE', lk, 0, -1)) do
    local t = redis.call('HMGET', tkey(tid), 'expires', 'revoked')
    if not t[1] or t[2] or tonumber(t[1]) <= tonumber(now) then redis.call('ZREM', lk, tid) end
  end
  local n = redis.call('ZCARD', lk)
  if n >= maxlogin then
    for _, tid in ipairs(redis.call('ZRANGE', lk, 0, n - maxlogin)) do
      revoke(tid, now, 'login limit', ret)
    end
  end
  redis.call('ZADD', lk, now, id)
  local want = tonumber(expires) - tonumber(now)
  if redis.call('PTTL', lk) < want then redis.call('PEXPIRE', lk, want) end
end
`

// createTokenScript makes a token for an account that exists, is enabled
// and holds every role asked, or for no account. A retry finds the token
// it made (same id and hash) and replies as the first run did.
//
// ARGV: prefix, id, sha, user ("" for none), name, roles, login ("1" or
// "0"), now, by, expires, retention ms, most login tokens, idle ms (0:
// none).
// Replies {'ok', fields}, {'collision'} (the id is another token's),
// {'nouser'}, {'disabled'} or {'role', the first role the account lacks}.
var createTokenScript = script(putToken + `
local id, sha, user, roles, now = ARGV[2], ARGV[3], ARGV[4], ARGV[6], ARGV[8]
local k = tkey(id)
if redis.call('EXISTS', k) == 1 then
  if redis.call('HGET', k, 'sha') == sha then return ok(k) end
  return {'collision'}
end
if user ~= '' then
  local u = account(user, 'roles', 'disabled')
  if not u then return {'nouser'} end
  if u[3] == '1' then return {'disabled'} end
  for r in string.gmatch(roles, '[^,]+') do
    if not has(u[2], r) then return {'role', r} end
  end
end
prune(now)
put_token(id, sha, user, ARGV[5], roles, ARGV[7], now, ARGV[9], ARGV[10], ARGV[11], tonumber(ARGV[12]))
if tonumber(ARGV[13] or '0') > 0 then redis.call('HSET', k, 'idle', ARGV[13]) end
return ok(k)
`)

// revokeTokenScript revokes a token; a revoked one is left as it is.
//
// ARGV: prefix, id, now, by, retention ms.
// Replies {'ok', fields} or {'notfound'}.
var revokeTokenScript = script(`
local id, now = ARGV[2], ARGV[3]
if not revoke(id, now, ARGV[4], ARGV[5]) then return {'notfound'} end
prune(now)
return ok(tkey(id))
`)

// lookupScript reads a token and the account it acts for in one round
// trip; it writes nothing, as nothing an unauthenticated peer sends may.
//
// ARGV: prefix, id. Replies {token fields, account fields}; either empty
// when missing.
var lookupScript = script(`
local t = redis.call('HGETALL', tkey(ARGV[2]))
local u = {}
local user = redis.call('HGET', tkey(ARGV[2]), 'user')
if user and user ~= '' then u = redis.call('HGETALL', ukey(user)) end
return {t, u}
`)

// touchScript records a token's use, on a token key that still exists
// (HSET on a gone key would make one that never expires).
//
// ARGV: prefix, id, now. Replies {'ok'}, {'later'} (a later use is
// recorded) or {'notfound'}.
var touchScript = script(`
local k = tkey(ARGV[2])
if redis.call('EXISTS', k) == 0 then return {'notfound'} end
local used = tonumber(redis.call('HGET', k, 'used') or '0')
if used >= tonumber(ARGV[3]) then return {'later'} end
redis.call('HSET', k, 'used', ARGV[3])
return {'ok'}
`)

// adminLib says whether there is a way in as admin: an enabled account
// holding the admin role with a password, or a live admin token whose
// account, if it has one, is enabled and still holds the admin role.
const adminLib = `
local function way_in(now)
  for _, n in ipairs(redis.call('SMEMBERS', P .. 'users')) do
    local u = redis.call('HMGET', ukey(n), 'roles', 'disabled', 'pw')
    if u[2] ~= '1' and has(u[1], 'admin') and u[3] and u[3] ~= '' then return true end
  end
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'tokens', '(' .. now, '+inf')) do
    local t = redis.call('HMGET', tkey(id), 'roles', 'expires', 'revoked', 'user')
    if t[2] and not t[3] and tonumber(t[2]) > tonumber(now) and has(t[1], 'admin') then
      if not t[4] or t[4] == '' then return true end
      local u = account(t[4], 'roles', 'disabled')
      if u and u[3] ~= '1' and has(u[2], 'admin') then return true end
    end
  end
  return false
end
`

// hasAdminScript replies 1 when there is a way in as admin, else 0.
//
// ARGV: prefix, now. Replies {1} or {0}.
var hasAdminScript = script(adminLib + `
if way_in(ARGV[2]) then return {1} end
return {0}
`)

// bootstrapScript, when there is no way in as admin, makes one: the
// account BootstrapUser (made, or enabled and given the admin role) and
// an admin token for it. A retry finds the token it made. An existing
// account that was disabled or not an admin loses its password and its
// live tokens on the way, so that only the new token gets in: it was
// disabled for a reason, and whoever knew its password was no admin.
//
// ARGV: prefix, id, sha, now, expires, retention ms, account name.
// Replies {1, account name} when it made the token, {0} otherwise.
var bootstrapScript = script(adminLib + putToken + `
local id, sha, now = ARGV[2], ARGV[3], ARGV[4]
local tk = tkey(id)
if redis.call('EXISTS', tk) == 1 then
  if redis.call('HGET', tk, 'sha') == sha then return {1, redis.call('HGET', tk, 'user')} end
  return {0}
end
if way_in(now) then return {0} end
local k = ukey(ARGV[7])
if redis.call('EXISTS', k) == 1 then
  local u = redis.call('HMGET', k, 'name', 'roles', 'disabled')
  local roles = u[2] or ''
  local was_admin = has(roles, 'admin') and u[3] ~= '1'
  if not has(roles, 'admin') then
    if roles == '' then roles = 'admin' else roles = roles .. ',admin' end
  end
  if not was_admin then
    redis.call('HDEL', k, 'pw')
    for _, tid in ipairs(redis.call('ZRANGEBYSCORE', P .. 'tokens', '(' .. now, '+inf')) do
      local t = redis.call('HMGET', tkey(tid), 'user', 'expires')
      if t[1] == u[1] and tonumber(t[2]) > tonumber(now) then revoke(tid, now, 'bootstrap', ARGV[6]) end
    end
  end
  redis.call('HSET', k, 'roles', roles, 'disabled', '0', 'updated', now, 'updated_by', 'bootstrap')
else
  redis.call('HSET', k, 'name', ARGV[7], 'roles', 'admin', 'agent', '', 'disabled', '0',
    'created', now, 'created_by', 'bootstrap', 'updated', now, 'op', 'bootstrap')
  redis.call('SADD', P .. 'users', ARGV[7])
end
local name = redis.call('HGET', k, 'name')
prune(now)
put_token(id, sha, name, 'bootstrap', 'admin', '0', now, 'bootstrap', ARGV[5], ARGV[6], 1)
return {1, name}
`)
