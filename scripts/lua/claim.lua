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
-- still take in the next WAKE_BLOCK_MS); POLL: 1 for an idle worker's
-- look (pollQuiet, below).
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
-- An idle worker's look (its idle timer: the backstop for a due time
-- whose worker is gone, or a push its waker missed): while another worker
-- waits for the next due time (`wake_at`, still ahead: at it, a claim
-- serves what is due and tells the next), and the queue, this worker's
-- intake and the retries due now are empty, and the fleet is neither
-- paused nor stopped at a cap (the claim says why, and lets probes
-- through), nothing is there for it; the reply says so, as a drained
-- claim's would (this worker's own due time again, when it is the one
-- told), without the claim's reads. Not when that due time is more than
-- a step ahead (LINE_STEP.max, lib/pace.lua): then the whole claim, whose
-- early look (at most once a step a class) hands out a job its class has
-- room for now. Quiet then too, a line slipped by a wait that turned out
-- long stood still to its due time, nothing in flight to settle and
-- nothing else looking: 11 s of an output bucket's refill lost
-- (output_rule=reserve, one run in ~40 of test_workloads' case). nil:
-- claim. (Here, not in
-- lib/claim.lua: a script's main function holds at most 200 locals, the
-- libraries' included. 16 idle paced workers' looks were two of every
-- three claims, each ~330 us of Redis's CPU: ~65 us a job at 600
-- requests a minute.)
local function pollQuiet(intake, prefix)
    local now = nowMs()
    local f = rcall('HMGET', K.state, 'wake_at', 'wake_by', 'pause_until', 'budget_cap', 'day_cap')
    local wa = tonumber(f[1]) or 0
    if wa <= now or wa - now > LINE_STEP.max or (tonumber(f[3]) or 0) > now or f[4] or f[5] then
        return nil
    end
    if rcall('LLEN', K.jobs) > 0 then return nil end
    if intake ~= '' and rcall('LLEN', intakeOf(intake)) > 0 then return nil end
    if rcall('ZRANGEBYSCORE', K.delayed, '-inf', now, 'LIMIT', '0', '1')[1] then return nil end
    local me = string.match(prefix, '^(.*):%d+:$') or prefix
    return {now, 0, '', 0, f[2] == me and wa - now or -1}
end

if ARGV[CA.POLL] == '1' then
    local quiet = pollQuiet(ARGV[CA.INTAKE], ARGV[CA.PREFIX])
    if quiet then return quiet end
end
return claimJobs(n, tonumber(ARGV[CA.LEASE_MS]), ARGV[CA.PREFIX], nowMs(), loadLimits(),
                 loadHash(K.state), tonumber(ARGV[CA.MAX_JOB]), ARGV[CA.INTAKE], true)
