-- retry.lua (library) — the retry rule: retries are bounded by
-- max_attempts per job and by retry_budget_per_min for the whole fleet,
-- counted over a sliding RETRY_WINDOW_MS in `retrylog` (retries sent) plus
-- `delayed` (retries scheduled); backoff is full jitter from base_delay
-- doubling to max_delay, never under the API's retry-after.

-- Retries sent within the window (older entries are dropped).
local function retriesSent(now)
    rcall('ZREMRANGEBYSCORE', K.retrylog, '-inf', now - RETRY_WINDOW_MS)
    return rcall('ZCARD', K.retrylog)
end

-- The delay before attempt att + 1: rand in [0, 1), retryAfter ms or nil.
local function retryDelay(l, att, rand, retryAfter)
    local base, maxd = tonumber(l.base_delay), tonumber(l.max_delay)
    local capd = base
    for _ = 2, att do
        if capd >= maxd then break end
        capd = capd * 2
    end
    if capd > maxd then capd = maxd end
    local d = math.floor((rand or 0.5) * capd)
    if retryAfter and d < retryAfter then d = retryAfter end
    return d
end

-- Due retries go back to the consuming end of the queue, each taking one
-- unit of the budget; without budget they wait in `delayed`.
local function retriesDue(now, l)
    local due = rcall('ZRANGEBYSCORE', K.delayed, '-inf', now, 'LIMIT', 0, 256)
    if #due == 0 then return end
    local budget = tonumber(l.retry_budget_per_min) or 0
    local used = retriesSent(now)
    for _, lid in ipairs(due) do
        if used >= budget then break end
        local job = rcall('HGET', K.delayedjob, lid)
        if job then rcall('RPUSH', K.jobs, job); reenter(1) end
        rcall('HDEL', K.delayedjob, lid)
        rcall('ZREM', K.delayed, lid)
        rcall('ZADD', K.retrylog, now, lid)
        used = used + 1
    end
end
