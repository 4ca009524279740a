-- claim.lua — move up to N jobs from the queue into leases, in one step.
--
-- Due retries (delayed set) are first moved back to the consuming end of
-- the queue. Each claimed job gets a lease: a token (ARGV[3] .. i, unique
-- because the prefix is unique per call), an expiry from Redis TIME in the
-- leases ZSET and the raw job in the leasejob HASH. A worker that dies
-- leaves its leases to expire; reap.lua puts the jobs back.
--
-- KEYS[1] jobs        LIST
-- KEYS[2] leases      ZSET  token -> expiry ms
-- KEYS[3] leasejob    HASH  token -> job
-- KEYS[4] delayed     ZSET  token -> due ms
-- KEYS[5] delayedjob  HASH  token -> job
-- ARGV[1] n           jobs wanted (>= 1)
-- ARGV[2] lease_ms    lease duration
-- ARGV[3] prefix      token prefix, unique per call
-- Reply: {now_ms, token1, job1, token2, job2, ...} (no pairs: queue empty)
local rcall = redis.call
local t = rcall('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)

local due = rcall('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, 256)
for _, tok in ipairs(due) do
    local job = rcall('HGET', KEYS[5], tok)
    if job then rcall('RPUSH', KEYS[1], job) end
    rcall('HDEL', KEYS[5], tok)
    rcall('ZREM', KEYS[4], tok)
end

local out = {now}
local jobs = rcall('RPOP', KEYS[1], tonumber(ARGV[1]))
if not jobs then return out end

local exp = now + tonumber(ARGV[2])
local z, h = {}, {}
for i, job in ipairs(jobs) do
    local tok = ARGV[3] .. i
    z[#z + 1] = exp; z[#z + 1] = tok
    h[#h + 1] = tok; h[#h + 1] = job
    out[#out + 1] = tok; out[#out + 1] = job
end
rcall('ZADD', KEYS[2], unpack(z))
rcall('HSET', KEYS[3], unpack(h))
return out
