-- reap.lua — put the jobs of expired leases back on the queue.
--
-- Any live worker runs it periodically. A lease expires only when its
-- worker stopped renewing it (died, hung, lost Redis). The job goes back to
-- the consuming end of the queue, so it is the next one claimed.
--
-- KEYS[1] leases  ZSET   KEYS[2] leasejob  HASH   KEYS[3] jobs  LIST
-- KEYS[4] workers ZSET
-- ARGV[1] max leases to reap in one call
-- Reply: number of jobs put back.
local rcall = redis.call
local t = rcall('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
rcall('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
local toks = rcall('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0,
                   tonumber(ARGV[1]))
for _, tok in ipairs(toks) do
    local job = rcall('HGET', KEYS[2], tok)
    if job then rcall('RPUSH', KEYS[3], job) end
    rcall('HDEL', KEYS[2], tok)
    rcall('ZREM', KEYS[1], tok)
end
return #toks
