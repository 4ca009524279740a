-- reap.lua — put the jobs of expired leases back on the queue.
--
-- Any live worker runs it periodically. A lease expires only when its
-- worker stopped renewing it (died, hung, lost Redis). The job goes back to
-- the consuming end of the queue, so it is the next one claimed. A request
-- that was in flight has an unknown outcome: its reservation is counted as
-- spent, and its job id counts one lost delivery (admit.lua dead-letters a
-- job lost max_deliveries times: a poison job).
--
-- KEYS: the fleet's keys (proto.def).
-- ARGV[1] max leases to reap in one call
-- Reply: number of jobs put back.
local now = nowMs()
rcall('ZREMRANGEBYSCORE', K.workers, '-inf', now)
local lids = rcall('ZRANGEBYSCORE', K.leases, '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local reserved, out, lost = 0, 0, 0
for _, lid in ipairs(lids) do
    local job = leaseJob(lid)
    if job then rcall('RPUSH', K.jobs, job) end
    rcall('ZREM', K.leases, lid)
    local r = rcall('HGET', K.reserv, lid)
    if r then
        local rout, rcost, id = reservation(r)
        if id then rcall('HINCRBY', K.lost, id, 1) end
        reserved, out, lost = reserved + rcost, out + rout, lost + 1
        rcall('HDEL', K.reserv, lid)
        rcall('ZREM', K.inflight, lid)
    end
end
if lost > 0 then
    incr(K.state, 'reserved', 0 - reserved)
    incr(K.state, 'spent', reserved)
    incr(K.state, 'o_inflight', 0 - out)
    incr(K.stats, 'lost_in_flight', lost)
end
leasesEnded(lids)
return #lids
