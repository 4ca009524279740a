-- reap.lua — put the jobs of expired leases back on the queue.
--
-- Any live worker runs it periodically. A lease expires only when its
-- worker stopped renewing it (died, hung, lost Redis). The job goes back to
-- the consuming end of the queue, so it is the next one claimed. A request
-- that was in flight has an unknown outcome: its reservation is counted as
-- spent.
--
-- KEYS[1] leases  KEYS[2] claimed  KEYS[3] jobs  KEYS[4] workers
-- KEYS[5] inflight  KEYS[6] reserv  KEYS[7] state  KEYS[8] lost
-- KEYS[9] stats
-- A lease that was in flight counts one lost delivery for its job id:
-- begin.lua dead-letters a job lost max_deliveries times (a poison job).
-- ARGV[1] max leases to reap in one call
-- Reply: number of jobs put back.
local now = nowMs()
rcall('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
local toks = rcall('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0,
                   tonumber(ARGV[1]))
local reserved, out, lost = 0, 0, 0
for _, tok in ipairs(toks) do
    local job = leaseJob(KEYS[2], tok)
    if job then rcall('RPUSH', KEYS[3], job) end
    rcall('ZREM', KEYS[1], tok)
    local r = rcall('HGET', KEYS[6], tok)
    if r then
        -- In flight: an unknown outcome; its whole reservation is spent.
        local rout, rcost, id = reservation(r)
        if id then rcall('HINCRBY', KEYS[8], id, 1) end
        reserved, out, lost = reserved + rcost, out + rout, lost + 1
        rcall('HDEL', KEYS[6], tok)
        rcall('ZREM', KEYS[5], tok)
    end
end
if lost > 0 then
    incr(KEYS[7], 'reserved', 0 - reserved)
    incr(KEYS[7], 'spent', reserved)
    incr(KEYS[7], 'o_inflight', 0 - out)
    incr(KEYS[9], 'lost_in_flight', lost)
end
leasesEnded(KEYS[2], toks)
return #toks
