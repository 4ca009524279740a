-- bucket.lua (library) — the token-bucket model of the API's limits: the
-- fleet's estimate of each bucket ('r' requests, 'i' input tokens, 'o'
-- output tokens), learned from the rate-limit headers and refilled at
-- limit / REFILL_MS. State fields per bucket b: b_lim, b_rem (remaining as
-- last observed), b_at (when), b_since (admitted since); o_inflight (output
-- reserved by requests in flight).
local BUCKETS = {'r', 'i', 'o'}
local BUCKET_NAME = {r = 'requests', i = 'input', o = 'output'}

-- What bucket b holds now: the last remaining the API reported, refilled
-- since then (capped at the limit), minus what was admitted since. Under
-- the 'actual' output rule the API charges output at the end, so every
-- output reservation in flight is subtracted instead.
-- Returns est, lim, or nil when the API has not reported this bucket.
local function bucketEstimate(st, b, now, rule)
    local lim = tonumber(st[b .. '_lim'])
    if not lim or lim <= 0 then return nil end
    local est = tonumber(st[b .. '_rem']) + (now - tonumber(st[b .. '_at'])) * lim / REFILL_MS
    if est > lim then est = lim end
    if b == 'o' and rule == 'actual' then
        est = est - (tonumber(st.o_inflight) or 0)
    else
        est = est - (tonumber(st[b .. '_since']) or 0)
    end
    return est, lim
end

-- How long until bucket b (estimate est of lim) holds need over the floor
-- soft: 0 when it does now. A need over the whole bucket waits for a full
-- one.
local function bucketWait(est, lim, need, soft)
    local target = need + soft
    if target > lim then target = lim end
    if est >= target then return 0 end
    return (target - est) / (lim / REFILL_MS)
end

-- Take an observation: obs[b] = {lim, rem} from the headers. They are the
-- API's word on its buckets, but token counts come rounded to the nearest
-- 1,000 (and clamped at 0): where the fleet's own prediction (read through
-- cur(field)) is within what the header can mean, it is the better figure,
-- so it is kept, clamped to the header's +-500. Writes go into set.
local function bucketObserve(obs, cur, set, now, rule)
    for _, b in ipairs(BUCKETS) do
        local o = obs[b]
        if o then
            local lim, rem = o[1], o[2]
            local keep = rem
            local plim, prem, pat = cur(b .. '_lim'), cur(b .. '_rem'), cur(b .. '_at')
            if b ~= 'r' and plim and prem and pat and not (b == 'o' and rule == 'actual') then
                local p = prem + (now - pat) * plim / REFILL_MS
                if p > plim then p = plim end
                p = p - (cur(b .. '_since') or 0)
                local lo, hi = rem - 500, rem + 500
                if rem <= 0 then lo = p end
                if p < lo then p = lo elseif p > hi then p = hi end
                keep = math.floor(p)
            end
            set[b .. '_lim'], set[b .. '_rem'], set[b .. '_at'], set[b .. '_since'] = lim, keep, now, 0
        end
    end
end

-- The hard floor: a token bucket observed under hard_token_floor pauses
-- the fleet until the reset the API gave. Returns the number of hits.
local function bucketHardFloor(obs, reset, l, P, now)
    local hits = 0
    local hard = l.hard_token_floor
    local maxPause = tonumber(l.max_pause)
    for _, b in ipairs({'i', 'o'}) do
        local o = obs[b]
        if o and reset and reset > now and o[2] < floorOf(hard, o[1]) then
            pauseRaise(P, now, reset, 'hard floor: ' .. BUCKET_NAME[b] ..
                       ' tokens remaining ' .. o[2] .. ' < hard_token_floor ' .. hard,
                       reset - now > maxPause and PAUSE.LONG or PAUSE.SHORT,
                       tonumber(l.probe_interval))
            hits = hits + 1
        end
    end
    return hits
end
