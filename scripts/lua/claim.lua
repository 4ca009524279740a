-- claim.lua — move up to N jobs from the queue into leases, in one step.
--
-- Nothing is claimed while the fleet is paused or stopped at its spend cap
-- (the reply says how long to wait); during a long pause one job at a time
-- may be claimed when a probe is due. Due retries move from the delayed set
-- back to the consuming end of the queue first (the retry rule). Each
-- claimed job gets a lease: id ARGV[CA.PREFIX] .. i, expiry from Redis TIME
-- in `leases`; the raw jobs go to the list K.list (claimed:PREFIX), which
-- the worker reads with LRANGE right after this call.
--
-- KEYS: the fleet's keys (proto.def), then claimed:PREFIX.
-- ARGV: CA (N >= 1, LEASE_MS, PREFIX: unique per call, ending in ':',
-- MAX_JOB: larger jobs are kept in Redis, a stand-in handed out; 0 none;
-- INTAKE: the worker's name, whose intake goes back to the queue first;
-- N = 0 does only that: a worker giving back what its waker took; N = -1
-- also says it leaves: out of `workers` (status stops counting it), its
-- `intakes` entry ended now, so the reaper gives back what its waker may
-- still take in the next WAKE_BLOCK_MS).
-- Reply: CR {now_ms, wait_ms, reason[, n]} (lib/claim.lua).
local n = tonumber(ARGV[CA.N])
if n <= 0 then
    local name = ARGV[CA.INTAKE]
    intakeBack(name)
    if n < 0 and name ~= '' then
        rcall('ZREM', K.workers, name)
        rcall('ZADD', K.intakes, 'XX', nowMs(), name)
    end
    return {0, 0, '', 0}
end
return claimJobs(n, tonumber(ARGV[CA.LEASE_MS]), ARGV[CA.PREFIX], nowMs(), loadLimits(),
                 loadHash(K.state), tonumber(ARGV[CA.MAX_JOB]), ARGV[CA.INTAKE], true)
