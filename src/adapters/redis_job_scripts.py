"""The Lua scripts of RedisJobStore. Each runs atomically in Redis, so another process never sees a job saved
without its index members, nor half of a sweep. The key layout is described in redis_job_store."""

SAVE = """
-- KEYS: 1 job hash, 2 owner's set, 3 fingerprint set, 4 idempotency-key set, 5 expiry set
-- ARGV: 1 job JSON, 2 order member, 3 entry, 4 '1' if the job has an idempotency key,
--       5 expiry time ('' = never), 6 milliseconds left to live (at least 1)
-- Returns the job's previous entry if it differs (created_at, fingerprint or key changed), else nil: the caller
-- then drops the members that entry put in other sets.
local old = redis.call('HGET', KEYS[1], 'entry')
redis.call('HSET', KEYS[1], 'job', ARGV[1], 'entry', ARGV[3])
redis.call('ZADD', KEYS[2], 0, ARGV[2])
redis.call('ZADD', KEYS[3], 0, ARGV[2])
if ARGV[4] == '1' then redis.call('ZADD', KEYS[4], 0, ARGV[2]) end
local moved = old and old ~= ARGV[3]
if moved then redis.call('ZREM', KEYS[5], old) end
if ARGV[5] == '' then
  redis.call('ZREM', KEYS[5], ARGV[3])
  redis.call('PERSIST', KEYS[1])
else
  redis.call('ZADD', KEYS[5], ARGV[5], ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
end
if moved then return old end
return false
"""

DROP_STALE = """
-- KEYS: 1 a set, then the job hash of each member; ARGV: the members.
-- Drops a member only if its job is still gone, so a job saved again meanwhile keeps its place.
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then redis.call('ZREM', KEYS[1], ARGV[i - 1]) end
end
return 1
"""

SWEEP = """
-- KEYS: 1 expiry set, then 4 per job: its hash, owner's set, fingerprint set, idempotency-key set
-- ARGV: 1 now, then 3 per job: its entry, its order member, '1' if it has an idempotency key
-- Forgets a job only if its entry is still in the expiry set at a time before now: a save since the caller read
-- the set may have given it more time. Deletes the hash too, as `now` may run ahead of Redis's own expiry.
local now = tonumber(ARGV[1])
local swept = 0
for i = 0, (#ARGV - 1) / 3 - 1 do
  local k, a = 2 + 4 * i, 2 + 3 * i
  local expires = redis.call('ZSCORE', KEYS[1], ARGV[a])
  if expires and tonumber(expires) < now then
    redis.call('ZREM', KEYS[1], ARGV[a])
    redis.call('ZREM', KEYS[k + 1], ARGV[a + 1])
    redis.call('ZREM', KEYS[k + 2], ARGV[a + 1])
    if ARGV[a + 2] == '1' then redis.call('ZREM', KEYS[k + 3], ARGV[a + 1]) end
    if redis.call('HGET', KEYS[k], 'entry') == ARGV[a] then redis.call('DEL', KEYS[k]) end
    swept = swept + 1
  end
end
return swept
"""

COUNT_CALLER = """
-- KEYS: 1 job hash; ARGV: 1 the change to its count of callers in other processes.
-- Only a job that is still there: a gone job's hash is not made again with nothing but a count in it.
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HINCRBY', KEYS[1], 'elsewhere', ARGV[1]) end
return 1
"""
