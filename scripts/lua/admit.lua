-- admit.lua — admission: may these leased jobs be sent to the API now?
--
-- One atomic verdict per job (ADMIT, proto.def), in order:
--   lease gone -> LOST; id done (or twice in the batch) -> DUP, lease dropped;
--   lost with its worker max_deliveries times -> POISON;
--   a suspect's rule (below) -> WAIT / WAIT_ALONE;
--   the worker's prices are not the fleet's -> WAIT (it reloads them);
--   fleet paused -> WAIT (a long pause admits one probe per probe_interval);
--   cold start (no rate-limit headers seen yet) -> one request first;
--   spend cap set and the model has no price -> NOPRICE;
--   spent + reserved + this reservation > max_spend_usd -> WAIT while
--     reservations may still shrink, else BUDGET (the fleet stops; one
--     budget_exceeded entry goes to the results stream);
--   in flight >= ceiling -> WAIT;
--   a bucket estimate minus this job's need under soft_token_floor ->
--     WAIT exactly as long as the refill takes;
--   else GO (GO_ALONE for a suspect): count the attempt, add the lease to
--   `inflight` (scored by expiry, so a dead worker's slots come back),
--   reserve its tokens and cost.
-- A job about to use its last delivery (lost with its worker
-- max_deliveries - 1 times: a poison job, or a bystander of one) runs alone
-- on its worker, so that it is dead-lettered only if it alone was running
-- when its worker died: it waits until the worker has nothing in flight,
-- and while such a suspect waits or runs the worker admits nothing else.
--
-- KEYS: the fleet's keys (proto.def).
-- ARGV: BA (LEASE_MS, BUSY: requests this worker has in flight, SOLO: its
--       solo state, PRICES_VER: the price table version it holds), then
--       per job BJ (LEASE, ID, INPUT estimate, MAX_TOKENS, RESERVE micro-USD;
--       RESERVE -1: the model has no price).
-- Reply: BR {ceiling, reason, solo, prices_ver}, then per job a verdict
-- (ADMIT) and its value.
local now = nowMs()
local l = loadLimits()
local st = loadHash(K.state)
local rule = l.output_rule
local maxAtt = tonumber(l.max_attempts) or 5
local cap = spendCap(l)
local spent = tonumber(st.spent) or 0
local reserved = tonumber(st.reserved) or 0
local inflight = inFlight(now)
local leaseExp = string.format('%d', now + tonumber(ARGV[AA.LEASE_MS]))
local pricesVer = st.prices_ver or '0'
local stalePrices = ARGV[AA.PRICES_VER] ~= pricesVer

-- The ceiling: fixed, or Little's law (rate the API allows x latency).
local ceiling = tonumber(l.max_in_flight) or 100
if l.ceiling == 'auto' then
    local lat = tonumber(st.ewma_ms)
    local rate = nil                    -- jobs per ms the limits allow
    local function consider(b, per)
        local lim = tonumber(st[b .. '_lim'])
        if lim and lim > 0 and per and per > 0 then
            local r = lim / REFILL_MS / per
            if not rate or r < rate then rate = r end
        end
    end
    consider('r', 1)
    consider('i', tonumber(st.ewma_in))
    consider('o', tonumber(st.ewma_out))
    if lat and rate then
        local c = math.ceil(rate * lat * 1.2) + 1
        if c < ceiling then ceiling = c end
    end
end

local pz = pauseNow(st, now)
local probeDue = pz and pz.probe

local est, lim, need, soft = {}, {}, {}, {}
local pct = string.match(l.soft_token_floor, '%%$') ~= nil
for _, b in ipairs(BUCKETS) do
    est[b], lim[b] = bucketEstimate(st, b, now, rule)
    -- Soft floors, once per call (an absolute floor counts tokens, so the
    -- request bucket has one only when the floor is a percentage).
    soft[b] = 0
    if est[b] and (b ~= 'r' or pct) then soft[b] = floorOf(l.soft_token_floor, lim[b]) end
end
local nowS = string.format('%d', now)
local add = {r = 0, i = 0, o = 0, res = 0}
local reason = ''
local out = {ceiling, '', 0, pricesVer}

-- A wait of w ms (the fleet's latency spread over n, within [10, 1000]).
local function shortWait(n)
    local w = (tonumber(st.ewma_ms) or 1000) / (n > 0 and n or 1)
    if w < 10 then w = 10 elseif w > 1000 then w = 1000 end
    return math.ceil(w)
end

-- One lookup each for all leases, done ids and attempt counters.
local lids, ids = {}, {}
local J0 = AA.PRICES_VER + 1                -- first job group
for k = J0, #ARGV, AJ_N do lids[#lids + 1] = ARGV[k + AJ.LEASE]; ids[#ids + 1] = ARGV[k + AJ.ID] end
local busy = tonumber(ARGV[AA.BUSY]) or 0
local solo = tonumber(ARGV[AA.SOLO]) or SOLO.NONE
local leased = rcall('ZMSCORE', K.leases, unpack(lids))
local isDone = rcall('SMISMEMBER', K.done, unpack(ids))
-- Retry counts and lost deliveries exist only for jobs that failed or lost
-- a worker: in a healthy fleet both hashes are gone, and not read.
local atts, lostN = {}, {}
if rcall('EXISTS', K.attempts, K.lost) > 0 then
    atts = rcall('HMGET', K.attempts, unpack(ids))
    lostN = rcall('HMGET', K.lost, unpack(ids))
end
local maxDel = tonumber(l.max_deliveries) or 3
local seen = {}                         -- ids admitted or queued in this batch
local zin, hres, dropped = {}, {}, {}

for n = 1, #lids do
    local k = J0 + (n - 1) * AJ_N
    local lid, id = lids[n], ids[n]
    local inp, mt, res = tonumber(ARGV[k + AJ.INPUT]), tonumber(ARGV[k + AJ.MAX_TOKENS]),
                         tonumber(ARGV[k + AJ.RESERVE])
    local code, val = ADMIT.GO, 0
    if not leased[n] or tonumber(leased[n]) <= now then
        -- Gone, or expired and about to be reaped: its job goes back to the
        -- queue, so sending it now could send it twice.
        code = ADMIT.LOST
    elseif isDone[n] == 1 or seen[id] then
        dropped[#dropped + 1] = lid
        code = ADMIT.DUP
    else
        seen[id] = true
        local lost = tonumber(lostN[n]) or 0
        local suspect = lost > 0 and lost >= maxDel - 1
        if lost >= maxDel then
            code, val = ADMIT.POISON, lost
        elseif solo == SOLO.RUNS or (solo == SOLO.WAITS and not suspect) then
            code, val = ADMIT.WAIT, 100
            reason = 'a job lost with its worker before runs alone here first'
        elseif suspect and busy > 0 then
            code, val, solo = ADMIT.WAIT_ALONE, 100, SOLO.WAITS
            reason = 'a job lost with its worker before waits to run alone'
        elseif stalePrices then
            code, val = ADMIT.WAIT, 50
            reason = 'the fleet price table changed: reloading it'
        elseif pz and not probeDue then
            code, val = ADMIT.WAIT, pz.wait
            reason = pz.reason
        elseif not st.observed and inflight > 0 then
            -- Cold start: until an answer brings the API's rate-limit
            -- headers, the buckets are unknown; one request goes first.
            local w = tonumber(st.ewma_ms) or 100
            if w < 20 then w = 20 elseif w > 1000 then w = 1000 end
            code, val = ADMIT.WAIT, math.ceil(w)
            reason = 'cold start: waiting for the first answer and its rate-limit headers'
        elseif cap and res < 0 then
            code = ADMIT.NOPRICE
        elseif cap and spent + reserved + res > cap and reserved > 0 then
            -- It may fit once the requests in flight settle (reservations
            -- are worst cases): wait for them, do not stop yet.
            code, val = ADMIT.WAIT, shortWait(inflight)
            reason = 'spend: waiting for in-flight reservations to settle'
        elseif cap and spent + res > cap then
            code = ADMIT.BUDGET
            if st.budget_cap ~= l.max_spend_usd then
                st.budget_cap = l.max_spend_usd
                rcall('HSET', K.state, 'budget_cap', l.max_spend_usd)
                rcall('XADD', K.results, '*', 'status', 'budget_exceeded',
                      'max_spend_usd', l.max_spend_usd,
                      'spent_usd', string.format('%.6f', spent / 1e6),
                      'reserved_usd', string.format('%.6f', reserved / 1e6))
            end
        elseif inflight >= ceiling then
            code, val = ADMIT.WAIT, shortWait(ceiling)
            reason = 'in flight at the ceiling (' .. ceiling .. ')'
        else
            need.r, need.i, need.o = 1, inp, mt
            local wait = 0
            for _, b in ipairs(BUCKETS) do
                if est[b] then
                    local w = bucketWait(est[b], lim[b], need[b], soft[b])
                    if w > wait then
                        wait = w
                        reason = 'pacing: ' .. b .. ' bucket under the soft floor'
                    end
                end
            end
            if wait > 0 then
                code, val = ADMIT.WAIT, math.ceil(wait)
            else
                -- attempt number: failed attempts retried + deliveries lost + 1
                val = (tonumber(atts[n]) or 0) + lost + 1
                if val > maxAtt then
                    -- Earlier deliveries were admitted and never settled:
                    -- their workers died. Give up instead of sending again.
                    code, val = ADMIT.POISON, val - 1
                end
            end
            if code == ADMIT.GO then
                busy = busy + 1
                if suspect then code, solo = ADMIT.GO_ALONE, SOLO.RUNS end
                zin[#zin + 1] = leaseExp; zin[#zin + 1] = lid
                -- "input,output,cost,t_ms,id" from the caller's own strings
                -- (no number formatting per job).
                local resS = ARGV[k + AJ.RESERVE]
                if res < 0 then res, resS = 0, '0' end
                hres[#hres + 1] = lid
                hres[#hres + 1] = ARGV[k + AJ.INPUT] .. ',' .. ARGV[k + AJ.MAX_TOKENS] .. ',' ..
                                  resS .. ',' .. nowS .. ',' .. id
                for _, b in ipairs(BUCKETS) do
                    if est[b] then est[b] = est[b] - need[b] end
                    add[b] = add[b] + need[b]
                end
                reserved = reserved + res
                inflight = inflight + 1
                add.res = add.res + res
                if probeDue then
                    -- The probe goes; the rest wait for the next one.
                    probeDue = false
                    local nextProbe = tonumber(l.probe_interval)
                    pz.wait = math.min(pz.left, nextProbe)
                    rcall('HSET', K.state, 'probe_at', now + nextProbe, 'probe_lease', lid)
                end
            end
        end
    end
    out[#out + 1] = code
    out[#out + 1] = val
end
if #dropped > 0 then
    bulk('ZREM', K.leases, dropped, 1)
    leasesEnded(dropped)
end
if #zin > 0 then
    bulk('ZADD', K.inflight, zin)
    bulk('HSET', K.reserv, hres)
end
if add.r > 0 then
    incr(K.state, 'r_since', add.r)
    incr(K.state, 'i_since', add.i)
    incr(K.state, 'o_since', add.o)
    incr(K.state, 'o_inflight', add.o)
    incr(K.state, 'reserved', add.res)
end
if st.ceiling ~= tostring(ceiling) then rcall('HSET', K.state, 'ceiling', ceiling) end
out[AR.REASON] = reason
out[AR.SOLO] = solo
return out
