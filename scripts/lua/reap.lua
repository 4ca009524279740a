-- reap.lua — put the jobs of expired leases back on the queue.
--
-- Any live worker runs it periodically. A lease expires only when its
-- worker stopped renewing it (died, hung, lost Redis). The job goes back to
-- the consuming end of the queue, so it is the next one claimed. A request
-- that was in flight has an unknown outcome: its reservation is counted as
-- spent, and its job id counts one lost delivery (admit.lua dead-letters a
-- job lost max_deliveries times: a poison job).
--
-- When Redis itself did not run (stalled, or its clock stepped), leases
-- expired without any worker failing: reaping waits a lease period for the
-- live workers to renew (fleetTick in lease.lua).
--
-- KEYS: the fleet's keys (proto.def).
-- ARGV[1] max leases to reap in one call   ARGV[2] lease_ms
-- Reply: number of jobs put back; -1 when a gap was just seen, -2 while
-- reaping is held after one.
local now = nowMs()
if fleetTick(now, tonumber(ARGV[2])) then return -1 end
if reapHeld(now) then return -2 end
rcall('ZREMRANGEBYSCORE', K.workers, '-inf', now)
intakesReap(now)
local lids = rcall('ZRANGEBYSCORE', K.leases, '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local reserved, lost = 0, 0
local perClass = {}
local anyFollow = #lids > 0 and rcall('EXISTS', K.follow) == 1
for _, lid in ipairs(lids) do
    local job = leaseJob(lid)
    if job then rcall('RPUSH', K.jobs, job); reenter(1) end
    rcall('ZREM', K.leases, lid)
    local r = rcall('HGET', K.reserv, lid)
    if r then
        local v = reservation(r)
        if v then
            rcall('HINCRBY', K.lost, v.id, 1)
            reserved = reserved + v.cost
            local pc = perClass[v.class] or {o = 0, n = 0, d = {}}
            local lead = anyFollow and rcall('HGET', K.follow, '>' .. lid)
            if v.batch then
                -- (a Batch lane job past its horizon: no unit, no bucket)
            elseif lead then
                -- A follower not known to be sent: it may have been (its
                -- worker died within a round trip of its leader's answer,
                -- maybe of it: a poison job), so charged as sent and
                -- counted a lost delivery like any request in flight.
                rcall('HDEL', K.follow, '>' .. lid, lead)
                followerCharges(pc.d, v, true)
            else
                pc.o, pc.n = pc.o + v.o, pc.n + 1
            end
            if not v.batch then perClass[v.class] = pc end
        end
        lost = lost + 1
        rcall('HDEL', K.reserv, lid)
        rcall('ZREM', K.inflight, lid)
    end
end
if lost > 0 then
    incr(K.state, 'reserved', 0 - reserved)
    incr(K.state, 'spent', reserved)
    daySpend(now, reserved)
    for c, pc in pairs(perClass) do
        incr(K.state, cf(c, 'o_inflight'), 0 - pc.o)
        incr(K.state, cf(c, 'n_inflight'), 0 - pc.n)
        for f, x in pairs(pc.d) do incr(K.state, cf(c, f), x) end
    end
    incr(K.stats, 'lost_in_flight', lost)
end
leasesEnded(lids)
return #lids
