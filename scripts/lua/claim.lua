-- claim.lua — move up to N jobs from the queue into leases, in one step.
--
-- Nothing is claimed while the fleet is paused or stopped at its spend cap
-- (the reply says how long to wait); during a long pause one job at a time
-- may be claimed when a probe is due. Due retries move from the delayed set
-- back to the consuming end of the queue first, each taking one unit of the
-- fleet-wide retry budget (a sliding 60 s log); without budget they wait.
-- Each claimed job gets a lease: token ARGV[3] .. i, expiry from Redis TIME
-- in `leases`, the raw job in `leasejob`.
--
-- KEYS[1] jobs  KEYS[2] leases  KEYS[3] leasejob  KEYS[4] delayed
-- KEYS[5] delayedjob  KEYS[6] limits  KEYS[7] state  KEYS[8] retrylog
-- ARGV[1] n (>= 1)  ARGV[2] lease_ms  ARGV[3] token prefix, unique per call
-- Reply: {now_ms, wait_ms, reason, token1, job1, token2, job2, ...}
--   wait_ms > 0: nothing claimed, ask again after it (reason says why).
local now = nowMs()
local l = loadLimits(KEYS[6])
local st = loadHash(KEYS[7])
local n = tonumber(ARGV[1])

-- Spend cap: stopped until the cap changes.
if st.budget_cap then
    if l.max_spend_usd ~= '' and tostring(st.budget_cap) == l.max_spend_usd then
        return {now, 1000, 'spend cap reached (max_spend_usd=' .. l.max_spend_usd .. ')'}
    end
    rcall('HDEL', KEYS[7], 'budget_cap')
end

-- Pauses.
local pu = tonumber(st.pause_until) or 0
if pu > now then
    local long = tonumber(st.pause_long) or 0
    local probe = tonumber(st.probe_at) or 0
    if long == 1 and probe <= now then
        n = 1
    else
        local w = pu - now
        if long == 1 and probe - now < w then w = probe - now end
        return {now, w, st.pause_reason or 'paused'}
    end
end

-- Due retries, within the retry budget.
rcall('ZREMRANGEBYSCORE', KEYS[8], '-inf', now - 60000)
local budget = tonumber(l.retry_budget_per_min) or 0
local due = rcall('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, 256)
if #due > 0 then
    local used = rcall('ZCARD', KEYS[8])
    for _, tok in ipairs(due) do
        if used >= budget then break end
        local job = rcall('HGET', KEYS[5], tok)
        if job then rcall('RPUSH', KEYS[1], job) end
        rcall('HDEL', KEYS[5], tok)
        rcall('ZREM', KEYS[4], tok)
        rcall('ZADD', KEYS[8], now, tok)
        used = used + 1
    end
end

local out = {now, 0, ''}
local jobs = rcall('RPOP', KEYS[1], n)
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
