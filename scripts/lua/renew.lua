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
local expS = istr(exp)
local lost = {tonumber(rcall('HGET', K.state, 'seq') or 0), rcall('ZCOUNT', K.workers, '(' .. istr(now), '+inf')}
-- The leases' expiries in one read, the renewed ones in one write a key
-- (a ZSCORE and two ZADDs a lease were 1.6 M instructions a renew of 32).
local z, CHUNK = {}, 500
for i = 4, #ARGV, CHUNK do
    local j = math.min(i + CHUNK - 1, #ARGV)
    local cur = rcall('ZMSCORE', K.leases, unpack(ARGV, i, j))
    for x = i, j do
        local c = cur[x - i + 1]
        if c then
            -- Never shortened: a job the Batch lane took while this renew
            -- was on its way has its lease at the batch's horizon now.
            if tonumber(c) < exp then z[#z + 1] = expS; z[#z + 1] = ARGV[x] end
        else
            lost[#lost + 1] = ARGV[x]
        end
    end
end
for k = 1, #z, 2 * CHUNK do
    local part = {'XX', unpack(z, k, math.min(k + 2 * CHUNK - 1, #z))}
    rcall('ZADD', K.leases, unpack(part))
    rcall('ZADD', K.inflight, unpack(part))
end
return lost
