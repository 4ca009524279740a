-- renew.lua — extend a live worker's leases (and their in-flight entries)
-- and record its heartbeat.
--
-- KEYS: the fleet's keys (proto.def).
-- ARGV[1] lease_ms   ARGV[2] worker name   ARGV[3] heartbeat ttl ms (in
-- `workers`, and in `intakes` for its waker's intake: lib/claim.lua)
-- ARGV[4..] lease ids held by the worker
-- Reply: {seq, live, the lease ids that are gone (reaped)...}: the fleet's
-- write counter (settle.lua; a worker that sees it go back knows Redis lost
-- acknowledged writes), the workers whose heartbeat lives (each reaps less
-- often in a larger fleet: worker/lease.c), then the leases the worker
-- must not expect to settle (settle.lua refuses them anyway).
local now = nowMs()
fleetTick(now, tonumber(ARGV[1]))
rcall('ZADD', K.workers, now + tonumber(ARGV[3]), ARGV[2])
rcall('ZADD', K.intakes, now + tonumber(ARGV[3]), ARGV[2])     -- (its waker's intake)
local exp = now + tonumber(ARGV[1])
local lost = {tonumber(rcall('HGET', K.state, 'seq') or 0), rcall('ZCOUNT', K.workers, '(' .. now, '+inf')}
for i = 4, #ARGV do
    local cur = rcall('ZSCORE', K.leases, ARGV[i])
    if cur then
        -- Never shortened: a job the Batch lane took while this renew was
        -- on its way has its lease at the batch's horizon now.
        if tonumber(cur) < exp then
            rcall('ZADD', K.leases, 'XX', exp, ARGV[i])
            rcall('ZADD', K.inflight, 'XX', exp, ARGV[i])
        end
    else
        lost[#lost + 1] = ARGV[i]
    end
end
return lost
