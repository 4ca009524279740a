-- begin.lua — admission: may these leased jobs be sent to the API now?
--
-- One atomic decision per job, in order:
--   lease gone -> lost; id done -> duplicate (lease dropped);
--   lost with its worker max_deliveries times (a poison job) -> exhausted;
--   fleet paused -> wait (a long pause admits one probe per probe_interval);
--   spend cap set and the model has no price -> noprice;
--   spent + reserved + this reservation > max_spend_usd -> budget (the fleet
--     stops; one budget_exceeded entry goes to the results stream);
--   in flight >= ceiling -> wait;
--   a token bucket estimate minus this job's need under soft_token_floor ->
--     wait exactly as long as the refill takes;
--   else go: count the attempt, add the lease to `inflight` (scored by
--   expiry, so a dead worker's slots come back), reserve its tokens and cost.
--
-- KEYS[1] leases  KEYS[2] claimed  KEYS[3] done  KEYS[4] attempts
-- KEYS[5] limits  KEYS[6] state  KEYS[7] inflight  KEYS[8] reserv
-- KEYS[9] results
-- A job about to use its last delivery (lost with its worker
-- max_deliveries - 1 times: a poison job, or a bystander of one) runs alone
-- on its worker, so that it is dead-lettered only if it alone was running
-- when its worker died: it waits until the worker has nothing in flight,
-- and while such a suspect waits or runs the worker admits nothing else.
--
-- ARGV[1] lease_ms
-- ARGV[2] requests this worker has in flight
-- ARGV[3] this worker's solo state: 0 none, 1 a suspect waits, 2 one runs
-- ARGV[4..] per job: token, id, input_estimate, max_tokens, reserve_micro
--           (reserve_micro -1: the model has no price)
-- KEYS[10] lost  (id -> deliveries whose worker died mid-request)
-- Reply: {ceiling, reason, solo, code1, value1, code2, value2, ...}
--   code 1 go (value: attempt number)   7 go, alone (a suspect)
--        0 duplicate   -1 lease lost   2 wait (value: ms)   8 wait, alone
--        4 budget   5 noprice   6 poison: lost max_deliveries times (value)
local now = nowMs()
local l = loadLimits(KEYS[5])
local st = loadHash(KEYS[6])
local rule = l.output_rule
local maxAtt = tonumber(l.max_attempts) or 5
local cap = nil
if l.max_spend_usd ~= '' then cap = math.floor(tonumber(l.max_spend_usd) * 1000000 + 0.5) end
local spent = tonumber(st.spent) or 0
local reserved = tonumber(st.reserved) or 0
local inflight = inFlight(KEYS[7], now)
local leaseExp = string.format('%d', now + tonumber(ARGV[1]))

-- The ceiling: fixed, or Little's law (rate the API allows x latency).
local ceiling = tonumber(l.max_in_flight) or 100
if l.ceiling == 'auto' then
    local lat = tonumber(st.ewma_ms)
    local rate = nil                    -- jobs per ms the limits allow
    local function consider(b, per)
        local lim = tonumber(st[b .. '_lim'])
        if lim and lim > 0 and per and per > 0 then
            local r = lim / 60000 / per
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

local pu = tonumber(st.pause_until) or 0
local paused = pu > now
local probeDue = paused and tonumber(st.pause_long) == 1 and
                 (tonumber(st.probe_at) or 0) <= now
local pauseWait = pu - now
if paused and tonumber(st.pause_long) == 1 then
    local pw = (tonumber(st.probe_at) or pu) - now
    if pw < pauseWait then pauseWait = pw end
end

local B = {'r', 'i', 'o'}
local est, lim, need, soft = {}, {}, {}, {}
local pct = string.match(l.soft_token_floor, '%%$') ~= nil
for _, b in ipairs(B) do
    est[b], lim[b] = bucketEstimate(st, b, now, rule)
    -- Soft floors, once per call (an absolute floor counts tokens, so the
    -- request bucket has one only when the floor is a percentage).
    soft[b] = 0
    if est[b] and (b ~= 'r' or pct) then soft[b] = floorOf(l.soft_token_floor, lim[b]) end
end
local nowS = string.format('%d', now)
local add = {r = 0, i = 0, o = 0, res = 0}
local reason = ''
local out = {ceiling, ''}

-- One lookup each for all leases, done ids and attempt counters.
local toks, ids = {}, {}
for k = 4, #ARGV, 5 do toks[#toks + 1] = ARGV[k]; ids[#ids + 1] = ARGV[k + 1] end
local busy = tonumber(ARGV[2]) or 0
local solo = tonumber(ARGV[3]) or 0
local leased = rcall('ZMSCORE', KEYS[1], unpack(toks))
local isDone = rcall('SMISMEMBER', KEYS[3], unpack(ids))
-- Retry counts and lost deliveries exist only for jobs that failed or lost
-- a worker: in a healthy fleet both hashes are gone, and not read.
local atts, lostN = {}, {}
if rcall('EXISTS', KEYS[4], KEYS[10]) > 0 then
    atts = rcall('HMGET', KEYS[4], unpack(ids))
    lostN = rcall('HMGET', KEYS[10], unpack(ids))
end
local maxDel = tonumber(l.max_deliveries) or 3
local seen = {}                         -- ids admitted or queued in this batch
local zin, hres, dropped = {}, {}, {}

for n = 1, #toks do
    local k = 4 + (n - 1) * 5
    local tok, id = toks[n], ids[n]
    local inp, mt, res = tonumber(ARGV[k + 2]), tonumber(ARGV[k + 3]), tonumber(ARGV[k + 4])
    local code, val = 1, 0
    if not leased[n] then
        code = -1
    elseif isDone[n] == 1 or seen[id] then
        -- A duplicate delivery (done, or twice in this batch): drop it.
        dropped[#dropped + 1] = tok
        code = 0
    else
        seen[id] = true
        local lost = tonumber(lostN[n]) or 0
        local suspect = lost > 0 and lost >= maxDel - 1
        if lost >= maxDel then
            code, val = 6, lost
        elseif solo == 2 or (solo == 1 and not suspect) then
            code, val = 2, 100
            reason = 'a job lost with its worker before runs alone here first'
        elseif suspect and busy > 0 then
            code, val, solo = 8, 100, 1
            reason = 'a job lost with its worker before waits to run alone'
        elseif paused and not probeDue then
            code, val = 2, pauseWait
            reason = st.pause_reason or 'paused'
        elseif not st.observed and inflight > 0 then
            -- Cold start: until an answer brings the API's rate-limit
            -- headers, the buckets are unknown; one request goes first.
            local w = tonumber(st.ewma_ms) or 100
            if w < 20 then w = 20 elseif w > 1000 then w = 1000 end
            code, val = 2, math.ceil(w)
            reason = 'cold start: waiting for the first answer and its rate-limit headers'
        elseif cap and res < 0 then
            code = 5
        elseif cap and spent + reserved + res > cap and reserved > 0 then
            -- It may fit once the requests in flight settle (reservations
            -- are worst cases): wait for them, do not stop yet.
            local w = (tonumber(st.ewma_ms) or 1000) / (inflight > 0 and inflight or 1)
            if w < 10 then w = 10 elseif w > 1000 then w = 1000 end
            code, val = 2, math.ceil(w)
            reason = 'spend: waiting for in-flight reservations to settle'
        elseif cap and spent + res > cap then
            code = 4
            if st.budget_cap ~= l.max_spend_usd then
                st.budget_cap = l.max_spend_usd
                rcall('HSET', KEYS[6], 'budget_cap', l.max_spend_usd)
                rcall('XADD', KEYS[9], '*', 'status', 'budget_exceeded',
                      'max_spend_usd', l.max_spend_usd,
                      'spent_usd', string.format('%.6f', spent / 1e6),
                      'reserved_usd', string.format('%.6f', reserved / 1e6))
            end
        elseif inflight >= ceiling then
            local w = (tonumber(st.ewma_ms) or 1000) / ceiling
            if w < 10 then w = 10 elseif w > 1000 then w = 1000 end
            code, val = 2, math.ceil(w)
            reason = 'in flight at the ceiling (' .. ceiling .. ')'
        else
            need.r, need.i, need.o = 1, inp, mt
            local wait = 0
            for _, b in ipairs(B) do
                if est[b] then
                    local target = need[b] + soft[b]
                    if target > lim[b] then target = lim[b] end
                    if est[b] < target then
                        local w = (target - est[b]) / (lim[b] / 60000)
                        if w > wait then
                            wait = w
                            reason = 'pacing: ' .. b .. ' bucket under the soft floor'
                        end
                    end
                end
            end
            if wait > 0 then
                code, val = 2, math.ceil(wait)
            else
                -- attempt number: failed attempts retried + deliveries lost + 1
                val = (tonumber(atts[n]) or 0) + lost + 1
                if val > maxAtt then
                    -- Earlier deliveries were admitted and never settled:
                    -- their workers died. Give up instead of sending again.
                    code, val = 6, val - 1
                end
            end
            if code == 1 then
                busy = busy + 1
                if suspect then code, solo = 7, 2 end
                zin[#zin + 1] = leaseExp; zin[#zin + 1] = tok
                -- "input,output,cost,t_ms,id" from the caller's own strings
                -- (no number formatting per job).
                local resS = ARGV[k + 4]
                if res < 0 then res, resS = 0, '0' end
                hres[#hres + 1] = tok
                hres[#hres + 1] = ARGV[k + 2] .. ',' .. ARGV[k + 3] .. ',' .. resS .. ',' .. nowS .. ',' .. id
                for _, b in ipairs(B) do
                    if est[b] then est[b] = est[b] - need[b] end
                    add[b] = add[b] + need[b]
                end
                reserved = reserved + res
                inflight = inflight + 1
                add.res = add.res + res
                if probeDue then
                    probeDue = false
                    rcall('HSET', KEYS[6], 'probe_at', now + tonumber(l.probe_interval),
                          'probe_token', tok)
                end
            end
        end
    end
    out[#out + 1] = code
    out[#out + 1] = val
end
if #dropped > 0 then
    bulk('ZREM', KEYS[1], dropped, 1)
    leasesEnded(KEYS[2], dropped)
end
if #zin > 0 then
    bulk('ZADD', KEYS[7], zin)
    bulk('HSET', KEYS[8], hres)
end
if add.r > 0 then
    incr(KEYS[6], 'r_since', add.r)
    incr(KEYS[6], 'i_since', add.i)
    incr(KEYS[6], 'o_since', add.o)
    incr(KEYS[6], 'o_inflight', add.o)
    incr(KEYS[6], 'reserved', add.res)
end
if st.ceiling ~= tostring(ceiling) then rcall('HSET', KEYS[6], 'ceiling', ceiling) end
out[2] = reason
table.insert(out, 3, solo)
return out
