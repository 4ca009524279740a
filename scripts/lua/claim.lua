-- claim.lua — move up to N jobs from the queue into leases, in one step.
--
-- Nothing is claimed while the fleet is paused or stopped at its spend cap
-- (the reply says how long to wait); during a long pause one job at a time
-- may be claimed when a probe is due. Due retries move from the delayed set
-- back to the consuming end of the queue first, each taking one unit of the
-- fleet-wide retry budget (a sliding 60 s log); without budget they wait.
-- Each claimed job gets a lease: token ARGV[3] .. i, expiry from Redis TIME
-- in `leases`; the raw jobs go to the list `claimed:ARGV[3]` (KEYS[9]),
-- which the worker reads with LRANGE right after this call.
--
-- KEYS[1] jobs  KEYS[2] leases  KEYS[3] claimed  KEYS[4] delayed
-- KEYS[5] delayedjob  KEYS[6] limits  KEYS[7] state  KEYS[8] retrylog
-- KEYS[9] claimed:ARGV[3]
-- ARGV[1] n (>= 1)  ARGV[2] lease_ms  ARGV[3] token prefix, unique per call,
--         ending in ':'
-- Reply: {now_ms, wait_ms, reason[, n]}: n jobs claimed, tokens ARGV[3] .. 1
--   to ARGV[3] .. n
--   wait_ms > 0: nothing claimed, ask again after it (reason says why).
local K = {jobs = KEYS[1], leases = KEYS[2], claimed = KEYS[3], delayed = KEYS[4],
           delayedjob = KEYS[5], state = KEYS[7], retrylog = KEYS[8], list = KEYS[9]}
return claimJobs(K, tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], nowMs(),
                 loadLimits(KEYS[6]), loadHash(KEYS[7]))
