package auth

import "github.com/redis/go-redis/v9"

// The scripts share the functions below. Every script gets the key prefix
// (<prefix>:{auth}:) as ARGV[1] and builds its keys from it, all in the
// {auth} hash slot, which KEYS[1] names so that Redis Cluster routes the
// script there. Times are ms since the epoch, from the Store's clock.
//
// An account's hash (userFields): name (as given), roles (comma list in
// the order of Roles), agent, disabled ("1" or "0"), pw (PHC string, absent
// without a password), created, created_by, updated, updated_by, op (the
// id of the AddUser that made it, so a retried AddUser finds its own
// work).
const luaLib = `
local P = ARGV[1]
local function ukey(name) return P .. 'user:' .. string.lower(name) end
local function has(list, role)
  if not list then return false end
  for x in string.gmatch(list, '[^,]+') do
    if x == role then return true end
  end
  return false
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
// ARGV: prefix, name, roles, agent, pw ("" for none), now, by, op.
// Replies {'ok', fields} or {'exists', the name that holds the key}.
var addUserScript = script(`
local name, now, op = ARGV[2], ARGV[6], ARGV[8]
local k = ukey(name)
if redis.call('EXISTS', k) == 1 then
  if redis.call('HGET', k, 'op') == op then return ok(k) end
  return {'exists', redis.call('HGET', k, 'name')}
end
redis.call('HSET', k, 'name', name, 'roles', ARGV[3], 'agent', ARGV[4], 'disabled', '0',
  'created', now, 'created_by', ARGV[7], 'updated', now, 'op', op)
if ARGV[5] ~= '' then redis.call('HSET', k, 'pw', ARGV[5]) end
redis.call('SADD', P .. 'users', name)
return ok(k)
`)

// updateUserScript changes an account's roles, agent or disabled flag;
// running it twice changes nothing more.
//
// ARGV: prefix, name, roles ("" to keep), set agent ("1" or "0"), agent,
// disabled ("" to keep, "0", "1"), now, by.
// Replies {'ok', fields} or {'notfound'}.
var updateUserScript = script(`
local name, roles, disabled = ARGV[2], ARGV[3], ARGV[6]
if not account(name) then return {'notfound'} end
local k = ukey(name)
if roles ~= '' then redis.call('HSET', k, 'roles', roles) end
if ARGV[4] == '1' then redis.call('HSET', k, 'agent', ARGV[5]) end
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
