-- settle.lua — end leases: account for the attempt, then write the result,
-- schedule a retry, dead-letter or requeue. Fenced by the lease token.
--
-- Each record: op, token, id, dead, 10 attempt values, nfields, fields...
-- A token whose lease is gone (reaped: its worker was stopped or too slow;
-- the reaper already released its reservation) changes nothing: -1.
--
-- Attempt values (A1..A10; "" when absent):
--   sent (1 when a request went out), http_status (0: transport failure),
--   cost_micro (of the usage; -1 unknown price), latency_ms, input_tokens,
--   output_tokens, retry_after_ms, spend_limit (1:
--   enforced_spend_limit_reached), rand (0..1, for jitter), attempt (the
--   number begin.lua gave)
-- The batch's observation of the API's buckets is the rate-limit headers
-- of its freshest answer (the worker picks it; all of a batch's answers
-- arrived within a few ms): OBS[1] the index of that record (0: none; it
-- counts only while that record's lease holds), OBS[2..8] r_lim, r_rem,
-- i_lim, i_rem, o_lim, o_rem, reset_ms.
-- `attempts` counts an id's failed attempts that were retried (begin.lua
-- adds the deliveries lost with a worker to number the next attempt).
-- When sent: the reservation is released and spend settled (usage cost on
-- a 200, nothing for an API error, the whole reservation for an unknown
-- outcome); the observation becomes the new bucket estimate; a 429 or a
-- bucket under hard_token_floor pauses the fleet until the reset the API
-- gave (a long pause, with probes, past max_pause or for a spend limit); a
-- successful probe ends a long pause.
-- Ops:
--   R  write the result (fields), mark id done.
--   D  as R, plus LPUSH `dead` (a JSON entry) on the dead list.
--   F  retryable failure: retry later (delayed set, full-jitter backoff
--      from base_delay to max_delay, never under retry-after) when attempts
--      and the retry budget allow; else write the error result (fields),
--      its message prefixed with why it was not retried.
--   Q  requeue: back to the consuming end of the queue.
-- A result for an id that is done is refused (0): exactly one result per id.
--
-- KEYS[1] leases  KEYS[2] claimed  KEYS[3] done  KEYS[4] attempts
-- KEYS[5] results KEYS[6] dead  KEYS[7] delayed  KEYS[8] delayedjob
-- KEYS[9] jobs  KEYS[10] limits  KEYS[11] state  KEYS[12] inflight
-- KEYS[13] reserv  KEYS[14] retrylog  KEYS[15] stats  KEYS[16] lost
-- KEYS[17] claimed:ARGV[4], the list of this call's claim
-- ARGV[1] results stream MAXLEN (approximate)
-- ARGV[2] claim_n: when > 0, claim up to that many jobs afterwards (the
--         slots this call frees): what claim.lua does, without a second call
-- ARGV[3] lease_ms   ARGV[4] token prefix for the claim
-- ARGV[5..12] OBS[1..8]
-- ARGV[13..] records
-- Reply: {statuses, claim}: statuses has one integer per record: 1 done,
-- 2 retry scheduled, 0 duplicate, -1 lease lost; claim is claim.lua's reply
-- (empty when claim_n is 0).
local NA = 10
local OBS = 4                           -- ARGV[OBS + k] is OBS[k]
local now = nowMs()
local l = loadLimits(KEYS[10])
local st = loadHash(KEYS[11])
local maxPause = tonumber(l.max_pause)
local probeEvery = tonumber(l.probe_interval)
local bucket = math.floor(now / 10000)
local out = {}
local doneIds = {}
local recs = {}

-- Names built once per call, not once per record.
local BUCKETS = {'r', 'i', 'o'}
local F = {}
for _, b in ipairs(BUCKETS) do
    F[b] = {lim = b .. '_lim', rem = b .. '_rem', at = b .. '_at', since = b .. '_since'}
end
local QB, JB, TIB, TOB = 'q' .. bucket, 'j' .. bucket, 'ti' .. bucket, 'to' .. bucket

local function num(s) if s == nil or s == '' then return nil end return tonumber(s) end

-- Everything that changes the shared state hash or the counters is added
-- up here and written once at the end: one call carries many records.
local dState = {reserved = 0, spent = 0, o_inflight = 0}
local dStats = {}
local function stat(k, n) dStats[k] = (dStats[k] or 0) + n end
local nReq, nRes, nOk, tokIn, tokOut = 0, 0, 0, 0, 0
local set = {}                          -- state fields to HSET at the end
local pu = tonumber(st.pause_until) or 0
local plong = tonumber(st.pause_long) or 0
local probeTok = st.probe_token
local ew, ei, eo = tonumber(st.ewma_ms), tonumber(st.ewma_in), tonumber(st.ewma_out)
local reset = num(ARGV[OBS + 8])

local function pause(untilMs, reason, long)
    if pu > now and plong == 2 then return end     -- an operator's pause stays
    if untilMs <= pu and long <= plong then return end
    if untilMs > pu then pu = untilMs end
    if long > plong or pu <= now then plong = long end
    set.pause_until, set.pause_reason, set.pause_long, set.pause_since = pu, reason, plong, now
    if long == 1 then set.probe_at = now + probeEvery end
end

-- Release a lease's reservation r (read up front): its spend moves from reserved to spent (cost, or the whole reservation when
-- cost is nil: an unknown outcome).
local unreserve = {}
local function release(tok, r, cost)
    if not r then return end
    local rout, rcost = reservation(r)
    if cost == nil or cost < 0 then cost = rcost end
    dState.reserved = dState.reserved - rcost
    dState.spent = dState.spent + cost
    dState.o_inflight = dState.o_inflight - rout
    unreserve[#unreserve + 1] = tok
end

-- An attempt that went out (its values at ARGV[ab + 1 ..]).
local function account(tok, ab, r)
    local status = ARGV[ab + 2]
    local cost = nil
    -- A usable 200 costs its usage; an API error costs nothing; a 200 we
    -- could not read, or no answer at all, costs the whole reservation.
    local answered = status ~= '0' and status ~= ''
    if status == '200' then cost = num(ARGV[ab + 3]); if cost and cost < 0 then cost = nil end
    elseif answered then cost = 0 end
    release(tok, r, cost)
    nReq = nReq + 1
    if answered then set.observed = 1 end

    if status == '429' then
        stat('r429', 1)
        if ARGV[ab + 8] == '1' then
            pause(now + maxPause, 'spend limit: the API answered 429 ' ..
                  'enforced_spend_limit_reached; probing every ' ..
                  math.floor(probeEvery / 1000) .. ' s', 1)
        else
            local w = num(ARGV[ab + 7]) or -1
            if w < 0 and reset then w = reset - now end
            if w < 0 then w = 1000 end
            if w > maxPause then
                pause(now + w, 'rate limit: the API asked to wait ' ..
                      math.floor(w / 1000) .. ' s (over max_pause); probing every ' ..
                      math.floor(probeEvery / 1000) .. ' s', 1)
            else
                pause(now + w, '429 rate_limit_error: waiting ' .. w .. ' ms', 0)
            end
        end
    elseif status == '200' then
        if probeTok == tok and plong == 1 then
            pu, plong = 0, 0
            set.pause_until, set.pause_long, set.pause_reason = 0, 0, ''
        end
        local lat = num(ARGV[ab + 4]) or 0
        local it, ot = num(ARGV[ab + 5]) or 0, num(ARGV[ab + 6]) or 0
        ew = ew and ew * 0.9 + lat * 0.1 or lat
        ei = ei and ei * 0.9 + it * 0.1 or it
        eo = eo and eo * 0.9 + ot * 0.1 or ot
        tokIn, tokOut, nOk = tokIn + it, tokOut + ot, nOk + 1
    end
    if probeTok == tok then
        probeTok = nil
        rcall('HDEL', KEYS[11], 'probe_token')
    end
end

-- A state field as this batch has left it so far.
local function cur(k)
    local v = set[k]
    if v == nil then v = st[k] end
    return tonumber(v)
end

-- The batch's observation: the headers are the API's word on its buckets.
-- Token counts come rounded to the nearest 1,000 (and clamped at 0): where
-- our own prediction is within what the header can mean, it is the better
-- figure, so it is kept, clamped to the header's +-500.
local function observe()
    local obs = {}
    for i, b in ipairs(BUCKETS) do
        local lim, rem = num(ARGV[OBS + 2 * i]), num(ARGV[OBS + 1 + 2 * i])
        if lim and rem then
            local keep = rem
            local f = F[b]
            local plim, prem, pat = cur(f.lim), cur(f.rem), cur(f.at)
            if b ~= 'r' and plim and prem and pat and
               not (b == 'o' and l.output_rule == 'actual') then
                local p = prem + (now - pat) * plim / 60000
                if p > plim then p = plim end
                p = p - (cur(f.since) or 0)
                local lo, hi = rem - 500, rem + 500
                if rem <= 0 then lo = p end
                if p < lo then p = lo elseif p > hi then p = hi end
                keep = math.floor(p)
            end
            set[f.lim], set[f.rem], set[f.at], set[f.since] = lim, keep, now, 0
            obs[b] = {lim, rem}
        end
    end
    local hard = l.hard_token_floor
    for _, b in ipairs({'i', 'o'}) do
        if obs[b] and reset and reset > now and obs[b][2] < floorOf(hard, obs[b][1]) then
            pause(reset, 'hard floor: ' .. (b == 'i' and 'input' or 'output') ..
                  ' tokens remaining ' .. obs[b][2] .. ' < hard_token_floor ' .. hard,
                  reset - now > maxPause and 1 or 0)
            stat('hard_floor_hits', 1)
        end
    end
end

-- Writes collected over the batch, done in a few calls at the end.
local sadd, hdelAtt, lpushDead, rpushJobs, zDelayed, hDelayed, leaseGone = {}, {}, {}, {}, {}, {}, {}
local doneNow = {}

local function writeResult(n, id, f0, nf, prefix)
    if id ~= '' and (doneIds[n] == 1 or doneNow[id]) then return 0 end
    local status = 'error'
    for j = f0, f0 + 5, 2 do            -- the worker puts status first-ish
        if ARGV[j] == 'status' then status = ARGV[j + 1] break end
    end
    if prefix then
        local fields = {}
        for j = f0, f0 + nf - 1 do fields[#fields + 1] = ARGV[j] end
        for j = 1, #fields - 1, 2 do
            if fields[j] == 'error_message' then fields[j + 1] = prefix .. fields[j + 1] end
        end
        rcall('XADD', KEYS[5], 'MAXLEN', '~', ARGV[1], '*', unpack(fields))
    else
        rcall('XADD', KEYS[5], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, f0, f0 + nf - 1))
    end
    if id ~= '' then
        doneNow[id] = true
        sadd[#sadd + 1] = id
        -- A first attempt has no retry count and no lost delivery to forget.
        if ARGV[recs[n].ab + NA] ~= '1' then hdelAtt[#hdelAtt + 1] = id end
    end
    stat(status, 1)
    nRes = nRes + 1
    return 1
end

-- Parse the records, then read what they need in one call per key.
local i = OBS + 9
while i <= #ARGV do
    local r = {op = ARGV[i], tok = ARGV[i + 1], id = ARGV[i + 2], dead = ARGV[i + 3], ab = i + 3}
    r.nf = tonumber(ARGV[i + 4 + NA])
    r.f0 = i + 5 + NA
    i = r.f0 + r.nf
    recs[#recs + 1] = r
end

local toks, ids, jobToks = {}, {}, {}
for n, r in ipairs(recs) do
    toks[n] = r.tok
    ids[n] = r.id
    if r.op == 'F' or r.op == 'Q' then jobToks[#jobToks + 1] = r.tok end
end
local leased, resv = {}, {}
if #recs > 0 then
    -- A reservation exists only with its lease (begin adds it to a leased
    -- token; settle and the reaper remove both), so only tokens without
    -- one need the lease lookup.
    resv = rcall('HMGET', KEYS[13], unpack(toks))
    local ask, at = {}, {}
    for n = 1, #toks do
        if resv[n] then leased[n] = true else ask[#ask + 1] = toks[n]; at[#at + 1] = n end
    end
    if #ask > 0 then
        local got = rcall('ZMSCORE', KEYS[1], unpack(ask))
        for k = 1, #ask do leased[at[k]] = got[k] end
    end
    doneIds = rcall('SMISMEMBER', KEYS[3], unpack(ids))
end
local jobs = {}
for _, t in ipairs(jobToks) do jobs[t] = leaseJob(KEYS[2], t) end

local retriesUsed = nil                 -- retry budget in use, read once
for n, r in ipairs(recs) do
    local op, tok, id, ab = r.op, r.tok, r.id, r.ab
    if not leased[n] or ((op == 'F' or op == 'Q') and not jobs[tok]) then
        out[#out + 1] = -1
    else
        if ARGV[ab + 1] == '1' then account(tok, ab, resv[n]) else release(tok, resv[n], 0) end
        if op == 'R' or op == 'D' then
            local w = writeResult(n, id, r.f0, r.nf, nil)
            if w == 1 and op == 'D' then lpushDead[#lpushDead + 1] = r.dead end
            out[#out + 1] = w
        elseif op == 'F' then
            local att = num(ARGV[ab + NA]) or 1
            local maxAtt = tonumber(l.max_attempts)
            local budget = tonumber(l.retry_budget_per_min) or 0
            if not retriesUsed then
                rcall('ZREMRANGEBYSCORE', KEYS[14], '-inf', now - 60000)
                retriesUsed = rcall('ZCARD', KEYS[14]) + rcall('ZCARD', KEYS[7])
            end
            if att >= maxAtt then
                out[#out + 1] = writeResult(n, id, r.f0, r.nf,
                    'gave up after ' .. att .. ' attempts (max_attempts): ')
            elseif retriesUsed >= budget then
                out[#out + 1] = writeResult(n, id, r.f0, r.nf,
                    'not retried, the fleet retry budget is spent (retry_budget_per_min=' ..
                    budget .. ') after ' .. att .. ' attempts: ')
                stat('retry_budget_refusals', 1)
            else
                local base, maxd = tonumber(l.base_delay), tonumber(l.max_delay)
                local capd = base
                for _ = 2, att do
                    if capd >= maxd then break end
                    capd = capd * 2
                end
                if capd > maxd then capd = maxd end
                local d = math.floor((num(ARGV[ab + 9]) or 0.5) * capd)
                local ra = num(ARGV[ab + 7]) or -1
                if d < ra then d = ra end
                zDelayed[#zDelayed + 1] = string.format('%d', now + d)
                rcall('HINCRBY', KEYS[4], id, 1)
                zDelayed[#zDelayed + 1] = tok
                hDelayed[#hDelayed + 1] = tok
                hDelayed[#hDelayed + 1] = jobs[tok]
                retriesUsed = retriesUsed + 1
                stat('retries', 1)
                out[#out + 1] = 2
            end
        else
            rpushJobs[#rpushJobs + 1] = jobs[tok]
            out[#out + 1] = 1
        end
        leaseGone[#leaseGone + 1] = tok
    end
end

local oi = tonumber(ARGV[OBS + 1]) or 0
if oi > 0 and out[oi] and out[oi] >= 0 then observe() end
if nReq > 0 then
    stat('requests', nReq)
    stat(QB, nReq)
    if nOk > 0 then set.ewma_ms, set.ewma_in, set.ewma_out = ew, ei, eo end
    if tokIn > 0 then stat(TIB, tokIn) end
    if tokOut > 0 then stat(TOB, tokOut) end
end
if nRes > 0 then stat(JB, nRes) end

if #sadd > 0 then bulk('SADD', KEYS[3], sadd, 1) end
if #hdelAtt > 0 then
    bulk('HDEL', KEYS[4], hdelAtt, 1)
    bulk('HDEL', KEYS[16], hdelAtt, 1)
end
if #lpushDead > 0 then bulk('LPUSH', KEYS[6], lpushDead, 1) end
if #rpushJobs > 0 then bulk('RPUSH', KEYS[9], rpushJobs, 1) end
if #zDelayed > 0 then bulk('ZADD', KEYS[7], zDelayed); bulk('HSET', KEYS[8], hDelayed) end
if #unreserve > 0 then bulk('HDEL', KEYS[13], unreserve, 1); bulk('ZREM', KEYS[12], unreserve, 1) end
for k, n in pairs(dState) do incr(KEYS[11], k, n) end
for k, n in pairs(dStats) do incr(KEYS[15], k, n) end
local kv = {}
for k, v in pairs(set) do kv[#kv + 1] = k; kv[#kv + 1] = v end
if #kv > 0 then rcall('HSET', KEYS[11], unpack(kv)) end
-- Keep the last ~80 s of 10-second rate buckets.
local old = bucket - 8
rcall('HDEL', KEYS[15], 'q' .. old, 'j' .. old, 'ti' .. old, 'to' .. old)
-- The leases go last: should anything above fail, the jobs are still
-- leased and the reaper puts them back (at least once, never lost).
if #leaseGone > 0 then bulk('ZREM', KEYS[1], leaseGone, 1); leasesEnded(KEYS[2], leaseGone) end

local claimed = {}
local claimN = tonumber(ARGV[2]) or 0
if claimN > 0 then
    st.pause_until, st.pause_long = pu, plong
    if set.probe_at then st.probe_at = set.probe_at end
    if set.pause_reason then st.pause_reason = set.pause_reason end
    local K = {jobs = KEYS[9], leases = KEYS[1], claimed = KEYS[2], delayed = KEYS[7],
               delayedjob = KEYS[8], state = KEYS[11], retrylog = KEYS[14], list = KEYS[17]}
    claimed = claimJobs(K, claimN, tonumber(ARGV[3]), ARGV[4], now, l, st)
end
return {out, claimed}
