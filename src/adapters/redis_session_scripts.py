"""The Lua scripts of RedisSessionRepository. Each runs atomically in Redis, so a check and the write it guards
(the turn count and the append, the LRU trim and the deletes) cannot be split by another process.

Keys: KEYS[1] the session's meta, KEYS[2] its turn list, KEYS[3] the owner's LRU sorted set (id -> last use).
The scripts that walk the sorted set (add's trim, list) build the keys of the other sessions from the prefixes
in ARGV: fine on a standalone Redis (or Sentinel), not Redis Cluster, which wants every key in KEYS.
"""

from __future__ import annotations

# touch(ttl, score, id): mark the session used now and push back the expiry of its keys and of the LRU set (so
# the set outlives every session in it). ttl 0: no expiry.
_TOUCH = """
local function touch(ttl, score, id)
  redis.call('ZADD', KEYS[3], score, id)
  for i = 1, 3 do
    if ttl > 0 then redis.call('PEXPIRE', KEYS[i], ttl) else redis.call('PERSIST', KEYS[i]) end
  end
end
"""

# ARGV: ttl, score, id, max sessions (0: no cap), meta prefix, turns prefix, meta JSON, turn JSON...
# Stale members (their keys expired) are dropped before counting, so they never push a live session out.
ADD = _TOUCH + """
local ttl, score, id, cap = tonumber(ARGV[1]), ARGV[2], ARGV[3], tonumber(ARGV[4])
redis.call('DEL', KEYS[2])
redis.call('SET', KEYS[1], ARGV[7])
for i = 8, #ARGV do redis.call('RPUSH', KEYS[2], ARGV[i]) end
touch(ttl, score, id)
if cap > 0 then
  local live = {}
  for _, member in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
    if redis.call('EXISTS', ARGV[5] .. member) == 1 then live[#live + 1] = member
    else redis.call('ZREM', KEYS[3], member) end
  end
  for i = 1, #live - cap do
    redis.call('DEL', ARGV[5] .. live[i], ARGV[6] .. live[i])
    redis.call('ZREM', KEYS[3], live[i])
  end
end
return 1
"""

# ARGV: ttl, score, id. Returns {meta, turns} and counts as a use, or nil if the session is gone.
GET = _TOUCH + """
local meta = redis.call('GET', KEYS[1])
if not meta then
  redis.call('ZREM', KEYS[3], ARGV[3])
  return false
end
touch(tonumber(ARGV[1]), ARGV[2], ARGV[3])
return {meta, redis.call('LRANGE', KEYS[2], 0, -1)}
"""

# ARGV: ttl, score, id, turn count the caller expects (turn.turn - 1), turn JSON.
# Returns {1, turns after} if appended, {0, turns stored} if the session moved on, nil if it is gone.
APPEND = _TOUCH + """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[3], ARGV[3])
  return false
end
local stored = redis.call('LLEN', KEYS[2])
if stored ~= tonumber(ARGV[4]) then return {0, stored} end
redis.call('RPUSH', KEYS[2], ARGV[5])
touch(tonumber(ARGV[1]), ARGV[2], ARGV[3])
return {1, stored + 1}
"""

# ARGV: id. Returns {meta, turns} of the session it deleted, or nil.
REMOVE = """
local meta = redis.call('GET', KEYS[1])
redis.call('ZREM', KEYS[3], ARGV[1])
if not meta then return false end
local turns = redis.call('LRANGE', KEYS[2], 0, -1)
redis.call('DEL', KEYS[1], KEYS[2])
return {meta, turns}
"""

# KEYS[1] the LRU set; ARGV: meta prefix, turns prefix. Returns {meta, turns} per live session, most recently
# used first, dropping members whose keys expired. Listing is not a use: it touches nothing.
LIST = """
local found = {}
for _, member in ipairs(redis.call('ZREVRANGE', KEYS[1], 0, -1)) do
  local meta = redis.call('GET', ARGV[1] .. member)
  if meta then found[#found + 1] = {meta, redis.call('LRANGE', ARGV[2] .. member, 0, -1)}
  else redis.call('ZREM', KEYS[1], member) end
end
return found
"""
