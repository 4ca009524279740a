-- bucket.lua (library) — the token-bucket model of the API's limits: per
-- model class c, the fleet's estimate of each bucket ('r' requests, 'i'
-- input tokens, 'o' output tokens), learned from the rate-limit headers and
-- refilled at limit / REFILL_MS. Fields (under the class's prefix, see
-- class.lua): b_lim, b_rem and b_at (the estimate as of the last
-- observation), b_cum (charged to b by admissions, ever), b_base (b_cum at
-- that observation); o_done (output tokens the API reported, ever) and
-- o_base for the 'actual' output rule; o_inflight (output reserved by the
-- requests in flight); b_pend (charged to b by followers admitted and not
-- yet sent: each moves to b_cum when its request goes out, see admit.lua).
local BUCKETS = {'r', 'i', 'o'}
local BUCKET_NAME = {r = 'requests', i = 'input', o = 'output'}

-- What bucket b of class c holds now (get(field) reads the class's state):
-- the observed estimate, refilled since (capped at the limit), minus what
-- was charged since. Under the 'actual' output rule the API charges output
-- when it is produced: the output reported since and every output
-- reservation in flight are subtracted instead.
-- Returns est, lim, or nil when the API has not reported this bucket.
local function bucketEstimate(get, b, now, rule)
    local lim = tonumber(get(b .. '_lim'))
    if not lim or lim <= 0 then return nil end
    local est = tonumber(get(b .. '_rem')) + (now - tonumber(get(b .. '_at'))) * lim / REFILL_MS
    if est > lim then est = lim end
    if b == 'o' and rule == 'actual' then
        est = est - ((tonumber(get('o_done')) or 0) - (tonumber(get('o_base')) or 0))
                  - (tonumber(get('o_inflight')) or 0)
    else
        est = est - ((tonumber(get(b .. '_cum')) or 0) - (tonumber(get(b .. '_base')) or 0))
    end
    -- Followers' charges count from their admission, but are charged
    -- (b_cum: "after" every reading taken before) only once sent.
    est = est - (tonumber(get(b .. '_pend')) or 0)
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

-- A class's burst (lib/pace.lua): what a job needing need of bucket b
-- (limit lim) uses of it, in ms of its refill; 0 for output, which no
-- burst counts (charged at the answer, or held for a latency).
local function burstUse(b, need, lim)
    if b == 'o' then return 0 end
    return need * REFILL_MS / lim
end

-- What n requests holding `held` output tokens in flight give back at
-- their answers under output_rule=reserve: all but their output, expected
-- at the class's mean output eo once known; never less than the 1 - oq of
-- each that the high quantile oq promises. (Admission's pacing and the
-- 429 pause count the holds alike.)
local function holdsBack(held, n, oq, eo)
    local b = held * (1 - oq)
    if eo and held - n * eo > b then b = held - n * eo end
    return b
end

-- Take class c's observation obs[b] = {lim, rem} from the headers of the
-- answer to a request admitted at tAdm, when b_cum (o_done for the
-- 'actual' output rule) stood at cumA[b] right after it. When the API
-- computed `remaining` is not documented, so both readings are taken and
-- the lower one kept:
--   at admission:  rem + refill since tAdm - charged since tAdm
--   at the answer: rem (the answer is now)
-- Token counts come rounded to the nearest 1,000 (and clamped at 0):
-- where the fleet's own prediction (read through cur(field)) is within what
-- the header can mean, it is the better figure, so it is kept, clamped to
-- +-500 of that reading. For the output bucket under output_rule=reserve,
-- whose bookkeeping is exact, the estimate moves halfway to the reading,
-- so that the rounding averages out over the answers instead of leaving it
-- anywhere in the +-500 (a random walk: under admission-stamped headers it
-- drifted 1,250 tokens further under the truth over a minute, and the
-- bucket's level with it); for the other buckets the prediction carries
-- the estimates' own error, which the clamp bounds. unc (nil, or per
-- bucket): charges made after the snapshot cumA that the reading may hold
-- (a follower's, see settle.lua): the admission reading counts them as
-- after it, so the truth may be up to unc[b] over it, and the prediction
-- is not pulled down within that. Writes go into set;
-- returns the kept readings (per bucket) for the hard floor.
local function bucketObserve(obs, tAdm, cumA, cur, set, now, rule, unc)
    local seen = {}
    for _, b in ipairs(BUCKETS) do
        local o = obs[b]
        if o then
            local lim, rem = o[1], o[2]
            local spentF = (b == 'o' and rule == 'actual') and 'o_done' or b .. '_cum'
            local spentNow = cur(spentF) or 0
            local atAdmit = rem + (now - tAdm) * lim / REFILL_MS
            if atAdmit > lim then atAdmit = lim end
            atAdmit = atAdmit - (spentNow - (cumA[b] or spentNow))
            local m = rem < atAdmit and rem or atAdmit
            local keep = m
            -- (No prediction without a positive limit: a header may say 0.)
            local p = b ~= 'r' and bucketEstimate(cur, b, now, rule)
            if p then
                if b == 'o' and rule == 'actual' then p = p + (cur('o_inflight') or 0) end
                p = p + (cur(b .. '_pend') or 0)     -- not at the API: no reading holds them
                local lo, hi = m - 500, m + 500
                local u = unc and unc[b] or 0
                if u > 0 then hi = (rem < atAdmit + u and rem or atAdmit + u) + 500 end
                if rem <= 0 then lo = p end
                if p < lo then p = lo elseif p > hi then p = hi end
                keep = math.floor(p)
                -- Under output_rule=reserve the output bucket's bookkeeping
                -- is exact (max_tokens held, the rest given back): only the
                -- reading's rounding moves it, averaged out here.
                if b == 'o' and rule ~= 'actual' then keep = math.floor((p + m) / 2) end
            end
            set[b .. '_lim'], set[b .. '_rem'], set[b .. '_at'] = lim, keep, now
            set[(b == 'o' and rule == 'actual') and 'o_base' or b .. '_base'] = spentNow
            seen[b] = {lim, rem}
        end
    end
    return seen
end

-- The hard floor: a token bucket reported under hard_token_floor stops the
-- class until it has refilled to the soft floor at the limit's rate (not
-- until the reset header, which is the time of a full bucket). Returns the
-- number of hits.
local function bucketHardFloor(seen, l, P, now)
    local hits = 0
    local hard = l.hard_token_floor
    for _, b in ipairs({'i', 'o'}) do
        local o = seen[b]
        if o and o[2] < floorOf(hard, o[1]) then
            local soft = floorOf(l.soft_token_floor, o[1])
            local w = math.ceil((soft - o[2]) / (o[1] / REFILL_MS))
            if w < 100 then w = 100 end
            pauseRaise(P, now, now + w, 'hard floor: ' .. BUCKET_NAME[b] ..
                       ' tokens remaining ' .. math.floor(o[2]) .. ' < hard_token_floor ' ..
                       hard .. ': until refilled to the soft floor',
                       w > tonumber(l.max_pause) and PAUSE.LONG or PAUSE.SHORT,
                       tonumber(l.probe_interval))
            hits = hits + 1
        end
    end
    return hits
end
