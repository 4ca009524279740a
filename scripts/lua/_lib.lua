-- _lib.lua — prepended to every script by scripts/embed-lua.sh, so the
-- scripts share one definition of the clock, the fleet limits and the
-- token-bucket model. Defines locals only; touches no key by itself.
local rcall = redis.call

-- HINCRBY with a whole number, never "-0" or "1e+15" (Redis refuses both):
-- a script must not fail halfway, since Redis keeps what it already wrote.
local function incr(key, field, n)
    n = math.floor(tonumber(n) or 0)
    if n == 0 then return end
    rcall('HINCRBY', key, field, string.format('%d', n))
end

-- cmd key a1 a2 ... in chunks (Lua's unpack has a stack limit): for
-- multi-member ZADD, ZREM, HSET, HDEL, SADD over a whole batch in one call.
local function bulk(cmd, key, args, step)
    step = step or 2
    local n = #args
    local chunk = 1000 - (1000 % step)
    for i = 1, n, chunk do
        local j = i + chunk - 1
        if j > n then j = n end
        rcall(cmd, key, unpack(args, i, j))
    end
end

-- Redis server time in ms: one clock for every worker on every machine.
local function nowMs()
    local t = rcall('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Fleet limits: the `limits` hash over these defaults. Durations are ms.
local LIMIT_DEFAULTS = {
    max_in_flight = '100', soft_token_floor = '5%', hard_token_floor = '0',
    max_spend_usd = '', max_attempts = '5', base_delay = '500',
    max_delay = '30000', retry_budget_per_min = '600', ceiling = 'fixed',
    max_pause = '300000', probe_interval = '10000', output_rule = 'actual',
    max_deliveries = '3',
}
local function loadLimits(key)
    local l = {}
    for k, v in pairs(LIMIT_DEFAULTS) do l[k] = v end
    local kv = rcall('HGETALL', key)
    for i = 1, #kv, 2 do l[kv[i]] = kv[i + 1] end
    return l
end

-- A HASH as a Lua table.
local function loadHash(key)
    local h = {}
    local kv = rcall('HGETALL', key)
    for i = 1, #kv, 2 do h[kv[i]] = kv[i + 1] end
    return h
end

-- A floor ("5%" of the bucket's limit, or an absolute count).
local function floorOf(spec, lim)
    local pct = string.match(spec, '^([%d%.]+)%%$')
    if pct then return lim * tonumber(pct) / 100 end
    return tonumber(spec) or 0
end

-- The fleet's estimate of what bucket b ('r' requests, 'i' input tokens,
-- 'o' output tokens) holds now: the last remaining the API reported,
-- refilled at limit/60 s since then (capped at the limit), minus what was
-- admitted since. Under the 'actual' output rule the API charges output at
-- the end, so every output reservation in flight is subtracted instead.
-- Returns est, lim, or nil when the API has not reported this bucket.
local function bucketEstimate(st, b, now, rule)
    local lim = tonumber(st[b .. '_lim'])
    if not lim or lim <= 0 then return nil end
    local est = tonumber(st[b .. '_rem']) + (now - tonumber(st[b .. '_at'])) * lim / 60000
    if est > lim then est = lim end
    if b == 'o' and rule == 'actual' then
        est = est - (tonumber(st.o_inflight) or 0)
    else
        est = est - (tonumber(st[b .. '_since']) or 0)
    end
    return est, lim
end

-- In flight across the fleet: admitted leases not yet expired.
local function inFlight(key, now)
    return rcall('ZCOUNT', key, '(' .. now, '+inf')
end

-- A reservation as begin.lua writes it ("input,output,cost,t_ms,id"): the
-- output tokens and the cost (micro-USD, >= 0) it holds, and the job id.
local function reservation(r)
    local rout, rcost, id = string.match(r, '^%-?%d+,(%-?%d+),(%-?%d+),%-?%d+,(.*)$')
    rcost = tonumber(rcost) or 0
    if rcost < 0 then rcost = 0 end
    return tonumber(rout) or 0, rcost, id
end

-- The raw jobs of a claim stay in Redis, never passing through Lua: the
-- claim moves them from the queue into its own list `claimed:PREFIX` with
-- SORT .. BY nosort .. STORE (a copy inside Redis) and LTRIM, and the worker
-- reads that list with LRANGE. Lease token PREFIX .. i is the job at index
-- i - 1; the `claimed` hash counts each claim's leases not yet ended, and a
-- claim's list goes when its count reaches 0.
local function tokenParts(tok)
    local p, i = string.match(tok, '^(.*:)(%d+)$')
    return p, tonumber(i)
end

-- The raw job of a lease token (nil when gone).
local function leaseJob(claimedKey, tok)
    local p, i = tokenParts(tok)
    if not p then return nil end
    return rcall('LINDEX', claimedKey .. ':' .. p, i - 1) or nil
end

-- Leases ended (settled, dropped, reaped): their claims' counts go down.
local function leasesEnded(claimedKey, toks)
    local per = {}
    for _, tok in ipairs(toks) do
        local p = tokenParts(tok)
        if p then per[p] = (per[p] or 0) + 1 end
    end
    for p, n in pairs(per) do
        if rcall('HINCRBY', claimedKey, p, -n) <= 0 then
            rcall('HDEL', claimedKey, p)
            rcall('DEL', claimedKey .. ':' .. p)
        end
    end
end

-- Claim up to n jobs into leases (claim.lua, and settle.lua when it claims
-- for the slots it frees). K: jobs, leases, claimed, delayed, delayedjob,
-- retrylog keys, and list: K.claimed .. ':' .. prefix (prefix ends in
-- ':'). l, st: limits and state as read by the caller.
-- Returns {now, wait_ms, reason[, n]}: n jobs claimed, tokens prefix .. 1
-- to prefix .. n (the caller knows the prefix).
local function claimJobs(K, n, leaseMs, prefix, now, l, st)
    -- Spend cap: stopped until the cap changes.
    if st.budget_cap then
        if l.max_spend_usd ~= '' and tostring(st.budget_cap) == l.max_spend_usd then
            return {now, 1000, 'spend cap reached (max_spend_usd=' .. l.max_spend_usd .. ')'}
        end
        rcall('HDEL', K.state, 'budget_cap')
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
    local due = rcall('ZRANGEBYSCORE', K.delayed, '-inf', now, 'LIMIT', 0, 256)
    if #due > 0 then
        rcall('ZREMRANGEBYSCORE', K.retrylog, '-inf', now - 60000)
        local budget = tonumber(l.retry_budget_per_min) or 0
        local used = rcall('ZCARD', K.retrylog)
        for _, tok in ipairs(due) do
            if used >= budget then break end
            local job = rcall('HGET', K.delayedjob, tok)
            if job then rcall('RPUSH', K.jobs, job) end
            rcall('HDEL', K.delayedjob, tok)
            rcall('ZREM', K.delayed, tok)
            rcall('ZADD', K.retrylog, now, tok)
            used = used + 1
        end
    end

    local out = {now, 0, ''}
    -- The n jobs at the consuming (right) end, oldest first.
    local got = rcall('SORT', K.jobs, 'BY', 'nosort', 'DESC', 'LIMIT', 0, n, 'STORE', K.list)
    if got == 0 then return out end
    rcall('LTRIM', K.jobs, 0, -(got + 1))
    rcall('HSET', K.claimed, prefix, got)
    local exp = string.format('%d', now + leaseMs)   -- once, as an integer string
    local z = {}
    for i = 1, got do z[#z + 1] = exp; z[#z + 1] = prefix .. i end
    bulk('ZADD', K.leases, z)
    out[4] = got
    return out
end
