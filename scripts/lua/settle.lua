-- settle.lua — end leases: account for the attempt, then write the result,
-- schedule a retry, dead-letter or requeue. Fenced by the lease id: a lease
-- that is gone (reaped: its worker was stopped or too slow; the reaper
-- already released its reservation) changes nothing (SETTLED.LOST).
--
-- When an attempt went out (ATT.SENT), its reservation is released and the
-- spend settled: the usage's cost on a 200, nothing for an API error, the
-- whole reservation for an unknown outcome. A 429 pauses the fleet (the
-- pause rule, lib/pause.lua); the batch's observation becomes the new
-- bucket estimate (lib/bucket.lua) and may hit the hard floor; a
-- successful probe ends a long pause.
-- Ops (OP, proto.def): RESULT writes the result (its fields) and marks the
-- id done; DEAD as RESULT plus a dead letter; FAILED retries when
-- max_attempts and the retry budget allow (lib/retry.lua), else writes the
-- error result, its message prefixed with why it was not retried; REQUEUE
-- puts the job back at the consuming end of the queue. A result for an id
-- that is done is refused (SETTLED.DUP): exactly one result per id.
-- `attempts` counts an id's failed attempts that were retried.
--
-- KEYS: the fleet's keys (proto.def), then claimed:PREFIX for the claim.
-- ARGV: SA (MAXLEN of the results stream, CLAIM_N: when > 0, claim up to
--       that many jobs afterwards (the slots this call frees), LEASE_MS and
--       PREFIX for that claim); OBS (the batch's observation: INDEX of the
--       record whose answer it is, 0 none; it counts only while that
--       record's lease holds; then the rate-limit headers); from REC0 the
--       records: REC fields, ATT values ("" when absent), NFIELDS, fields.
-- Reply: {verdicts, claim}: one SETTLED per record; claim is claim.lua's
-- reply, empty when CLAIM_N is 0.
local now = nowMs()
local l = loadLimits()
local st = loadHash(K.state)
local probeEvery = tonumber(l.probe_interval)
local bucket = statsBucket(now)
local QB, JB, TIB, TOB = 'q' .. bucket, 'j' .. bucket, 'ti' .. bucket, 'to' .. bucket
local out = {}
local recs = {}

-- Everything that changes the shared state hash or the counters is added
-- up here and written once at the end: one call carries many records.
local dState = {reserved = 0, spent = 0, o_inflight = 0}
local dStats = {}
local function stat(k, n) dStats[k] = (dStats[k] or 0) + n end
local nReq, nRes, nOk, tokIn, tokOut = 0, 0, 0, 0, 0
local set = {}                          -- state fields to HSET at the end
local P = pauseOpen(st, set)
local probeLease = st.probe_lease
local ew, ei, eo = tonumber(st.ewma_ms), tonumber(st.ewma_in), tonumber(st.ewma_out)
local reset = num(ARGV[OBS.RESET_MS])

-- Release a lease's reservation r (read up front): its spend moves from
-- reserved to spent (cost, or the whole reservation when cost is nil: an
-- unknown outcome).
local unreserve = {}
local function release(lid, r, cost)
    if not r then return end
    local rout, rcost = reservation(r)
    if cost == nil or cost < 0 then cost = rcost end
    dState.reserved = dState.reserved - rcost
    dState.spent = dState.spent + cost
    dState.o_inflight = dState.o_inflight - rout
    unreserve[#unreserve + 1] = lid
end

-- A 429: pause until the API says (a long pause past max_pause, or for a
-- spend limit, which gives no time at all).
local function on429(a)
    local maxPause = tonumber(l.max_pause)
    stat('r429', 1)
    if ARGV[a + ATT.SPEND_LIMIT] == '1' then
        pauseRaise(P, now, now + maxPause, 'spend limit: the API answered 429 ' ..
                   'enforced_spend_limit_reached; probing every ' ..
                   math.floor(probeEvery / 1000) .. ' s', PAUSE.LONG, probeEvery)
        return
    end
    local w = num(ARGV[a + ATT.RETRY_AFTER_MS]) or -1
    if w < 0 and reset then w = reset - now end
    if w < 0 then w = 1000 end
    if w > maxPause then
        pauseRaise(P, now, now + w, 'rate limit: the API asked to wait ' ..
                   math.floor(w / 1000) .. ' s (over max_pause); probing every ' ..
                   math.floor(probeEvery / 1000) .. ' s', PAUSE.LONG, probeEvery)
    else
        pauseRaise(P, now, now + w, '429 rate_limit_error: waiting ' .. w .. ' ms',
                   PAUSE.SHORT, probeEvery)
    end
end

-- An attempt that went out (record at ARGV[a]).
local function account(lid, a, r)
    local status = ARGV[a + ATT.HTTP_STATUS]
    local cost = nil
    -- A usable 200 costs its usage; an API error costs nothing; a 200 we
    -- could not read, or no answer at all, costs the whole reservation.
    local answered = status ~= '0' and status ~= ''
    if status == '200' then cost = num(ARGV[a + ATT.COST_MICRO]); if cost and cost < 0 then cost = nil end
    elseif answered then cost = 0 end
    release(lid, r, cost)
    nReq = nReq + 1
    if answered then set.observed = 1 end

    if status == '429' then
        on429(a)
    elseif status == '200' then
        if probeLease == lid and P.kind == PAUSE.LONG then pauseEnd(P) end
        local lat = num(ARGV[a + ATT.LATENCY_MS]) or 0
        local it, ot = num(ARGV[a + ATT.INPUT_TOKENS]) or 0, num(ARGV[a + ATT.OUTPUT_TOKENS]) or 0
        ew = ew and ew * 0.9 + lat * 0.1 or lat
        ei = ei and ei * 0.9 + it * 0.1 or it
        eo = eo and eo * 0.9 + ot * 0.1 or ot
        tokIn, tokOut, nOk = tokIn + it, tokOut + ot, nOk + 1
    end
    if probeLease == lid then
        probeLease = nil
        rcall('HDEL', K.state, 'probe_lease')
    end
end

-- A state field as this batch has left it so far.
local function cur(k)
    local v = set[k]
    if v == nil then v = st[k] end
    return tonumber(v)
end

-- The batch's observation: the headers of its freshest answer.
local function observe()
    local obs = {}
    for i, b in ipairs(BUCKETS) do
        local lim, rem = num(ARGV[OBS.R_LIM + 2 * (i - 1)]), num(ARGV[OBS.R_REM + 2 * (i - 1)])
        if lim and rem then obs[b] = {lim, rem} end
    end
    bucketObserve(obs, cur, set, now, l.output_rule)
    local hits = bucketHardFloor(obs, reset, l, P, now)
    if hits > 0 then stat('hard_floor_hits', hits) end
end

-- Writes collected over the batch, done in a few calls at the end.
local sadd, hdelAtt, lpushDead, rpushJobs, zDelayed, hDelayed, leaseGone = {}, {}, {}, {}, {}, {}, {}
local doneNow = {}
local doneIds = {}

local function writeResult(n, prefix)
    local r = recs[n]
    local id, f0, nf = r.id, r.f0, r.nf
    if id ~= '' and (doneIds[n] == 1 or doneNow[id]) then return SETTLED.DUP end
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
        rcall('XADD', K.results, 'MAXLEN', '~', ARGV[SA.MAXLEN], '*', unpack(fields))
    else
        rcall('XADD', K.results, 'MAXLEN', '~', ARGV[SA.MAXLEN], '*', unpack(ARGV, f0, f0 + nf - 1))
    end
    if id ~= '' then
        doneNow[id] = true
        sadd[#sadd + 1] = id
        -- A first attempt has no retry count and no lost delivery to forget.
        if ARGV[r.a + ATT.ATTEMPT] ~= '1' then hdelAtt[#hdelAtt + 1] = id end
    end
    stat(status, 1)
    nRes = nRes + 1
    return SETTLED.DONE
end

-- A retryable failure: schedule the retry, or write why not.
local retriesUsed = nil                 -- retry budget in use, read once
local function retryOrGiveUp(n, job)
    local r = recs[n]
    local att = num(ARGV[r.a + ATT.ATTEMPT]) or 1
    local budget = tonumber(l.retry_budget_per_min) or 0
    if not retriesUsed then retriesUsed = retriesSent(now) + rcall('ZCARD', K.delayed) end
    if att >= tonumber(l.max_attempts) then
        return writeResult(n, 'gave up after ' .. att .. ' attempts (max_attempts): ')
    elseif retriesUsed >= budget then
        stat('retry_budget_refusals', 1)
        return writeResult(n, 'not retried, the fleet retry budget is spent ' ..
                           '(retry_budget_per_min=' .. budget .. ') after ' .. att .. ' attempts: ')
    end
    local d = retryDelay(l, att, num(ARGV[r.a + ATT.RAND]), num(ARGV[r.a + ATT.RETRY_AFTER_MS]))
    zDelayed[#zDelayed + 1] = string.format('%d', now + d)
    zDelayed[#zDelayed + 1] = r.lid
    hDelayed[#hDelayed + 1] = r.lid
    hDelayed[#hDelayed + 1] = job
    rcall('HINCRBY', K.attempts, r.id, 1)
    retriesUsed = retriesUsed + 1
    stat('retries', 1)
    return SETTLED.RETRY
end

-- Parse the records, then read what they need in one call per key.
local i = REC0
while i <= #ARGV do
    local r = {op = ARGV[i + REC.OP], lid = ARGV[i + REC.LEASE], id = ARGV[i + REC.ID],
               dead = ARGV[i + REC.DEAD], a = i, nf = tonumber(ARGV[i + REC_NF]),
               f0 = i + REC_NF + 1}
    i = r.f0 + r.nf
    recs[#recs + 1] = r
end

local lids, ids, jobLids = {}, {}, {}
for n, r in ipairs(recs) do
    lids[n] = r.lid
    ids[n] = r.id
    if r.op == OP.FAILED or r.op == OP.REQUEUE then jobLids[#jobLids + 1] = r.lid end
end
local leased, resv = {}, {}
if #recs > 0 then
    -- A reservation exists only with its lease (admission adds it to a leased
    -- id; settle and the reaper remove both), so only leases without one
    -- need the lease lookup.
    resv = rcall('HMGET', K.reserv, unpack(lids))
    local ask, at = {}, {}
    for n = 1, #lids do
        if resv[n] then leased[n] = true else ask[#ask + 1] = lids[n]; at[#at + 1] = n end
    end
    if #ask > 0 then
        local got = rcall('ZMSCORE', K.leases, unpack(ask))
        for k = 1, #ask do leased[at[k]] = got[k] end
    end
    doneIds = rcall('SMISMEMBER', K.done, unpack(ids))
end
local jobs = {}
for _, lid in ipairs(jobLids) do jobs[lid] = leaseJob(lid) end

for n, r in ipairs(recs) do
    local op, lid = r.op, r.lid
    if not leased[n] or ((op == OP.FAILED or op == OP.REQUEUE) and not jobs[lid]) then
        out[#out + 1] = SETTLED.LOST
    else
        if ARGV[r.a + ATT.SENT] == '1' then account(lid, r.a, resv[n]) else release(lid, resv[n], 0) end
        if op == OP.RESULT or op == OP.DEAD then
            local v = writeResult(n, nil)
            if v == SETTLED.DONE and op == OP.DEAD then lpushDead[#lpushDead + 1] = r.dead end
            out[#out + 1] = v
        elseif op == OP.FAILED then
            out[#out + 1] = retryOrGiveUp(n, jobs[lid])
        else
            rpushJobs[#rpushJobs + 1] = jobs[lid]
            out[#out + 1] = SETTLED.DONE
        end
        leaseGone[#leaseGone + 1] = lid
    end
end

local oi = tonumber(ARGV[OBS.INDEX]) or 0
if oi > 0 and out[oi] and out[oi] ~= SETTLED.LOST then observe() end
if nReq > 0 then
    stat('requests', nReq)
    stat(QB, nReq)
    if nOk > 0 then set.ewma_ms, set.ewma_in, set.ewma_out = ew, ei, eo end
    if tokIn > 0 then stat(TIB, tokIn) end
    if tokOut > 0 then stat(TOB, tokOut) end
end
if nRes > 0 then stat(JB, nRes) end

if #sadd > 0 then bulk('SADD', K.done, sadd, 1) end
if #hdelAtt > 0 then
    bulk('HDEL', K.attempts, hdelAtt, 1)
    bulk('HDEL', K.lost, hdelAtt, 1)
end
if #lpushDead > 0 then bulk('LPUSH', K.dead, lpushDead, 1) end
if #rpushJobs > 0 then bulk('RPUSH', K.jobs, rpushJobs, 1) end
if #zDelayed > 0 then bulk('ZADD', K.delayed, zDelayed); bulk('HSET', K.delayedjob, hDelayed) end
if #unreserve > 0 then bulk('HDEL', K.reserv, unreserve, 1); bulk('ZREM', K.inflight, unreserve, 1) end
for k, n in pairs(dState) do incr(K.state, k, n) end
for k, n in pairs(dStats) do incr(K.stats, k, n) end
local kv = {}
for k, v in pairs(set) do kv[#kv + 1] = k; kv[#kv + 1] = v end
if #kv > 0 then rcall('HSET', K.state, unpack(kv)) end
statsTrim(bucket)
-- The leases go last: should anything above fail, the jobs are still
-- leased and the reaper puts them back (at least once, never lost).
if #leaseGone > 0 then bulk('ZREM', K.leases, leaseGone, 1); leasesEnded(leaseGone) end

local claimed = {}
local claimN = tonumber(ARGV[SA.CLAIM_N]) or 0
if claimN > 0 then
    st.pause_until, st.pause_kind = P.until_ms, P.kind
    if set.probe_at then st.probe_at = set.probe_at end
    if set.pause_reason then st.pause_reason = set.pause_reason end
    claimed = claimJobs(claimN, tonumber(ARGV[SA.LEASE_MS]), ARGV[SA.PREFIX], now, l, st)
end
return {out, claimed}
