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
-- Per model class (the reservation says which): the in-flight counts and
-- output reservations go down, output reported adds to o_done, each answer
-- teaches the class's input calibration and output quantile
-- (lib/class.lua), and a prompt prefix the API reports cached is recorded
-- in `cache` for its TTL. A 429 within max_pause pauses the class until
-- its buckets have refilled to the soft floor (or retry-after, when
-- longer); one past max_pause, or a spend limit, pauses the fleet.
--
-- KEYS: the fleet's keys (proto.def), then claimed:PREFIX for the claim.
-- ARGV: SA (MAXLEN of the results stream, CLAIM_N: when > 0, claim up to
--       that many jobs afterwards (the slots this call frees), LEASE_MS and
--       PREFIX for that claim, NOBS); NOBS observations (OBS: INDEX of the
--       record whose answer it is, then its rate-limit headers; one counts
--       only while that record's lease holds, and only when its request was
--       admitted after the class's observation in force); then the records:
--       REC fields, ATT values ("" when absent), NFIELDS, fields.
-- Reply: {verdicts, claim}: one SETTLED per record; claim is claim.lua's
-- reply, empty when CLAIM_N is 0.
local now = nowMs()
local l = loadLimits()
local st = loadHash(K.state)
local rule = l.output_rule
local probeEvery = tonumber(l.probe_interval)
local maxPause = tonumber(l.max_pause)
local bucket = statsBucket(now)
local QB, JB, TIB, TOB = 'q' .. bucket, 'j' .. bucket, 'ti' .. bucket, 'to' .. bucket
local out = {}
local recs = {}
local nobs = tonumber(ARGV[SA.NOBS]) or 0
local REC0 = OBS0 + nobs * OBS_N

-- Everything that changes the shared state hash or the counters is added
-- up here and written once at the end: one call carries many records.
local dState = {reserved = 0, spent = 0}
local dStats = {}
local function stat(k, n) dStats[k] = (dStats[k] or 0) + n end
local nReq, nRes, nOk, tokIn, tokOut = 0, 0, 0, 0, 0
local set = {}                          -- state fields to HSET at the end
local P = pauseOpen(st, set)            -- the fleet's pause
local probeLease = st.probe_lease
local ew = tonumber(st.ewma_ms)

-- Per class: counter deltas (d), fields to set (s, unprefixed), learned
-- values (v), its pause (P), 429s seen (r429: the longest retry-after, -1
-- when none said one).
local CL = {}
local function cls(c)
    local k = CL[c]
    if k then return k end
    local function g(f) return tonumber(st[cf(c, f)]) end
    k = {c = c, d = {o_inflight = 0, n_inflight = 0, o_done = 0, o_cum = 0}, s = {},
         v = {cal = g('cal') or 1, ncal = g('ncal') or 0, on = g('on') or 0,
              oq = g('oq') or 1, omax = g('omax') or 0, oqn = g('oqn') or 0, ei = g('ewma_in'), eo = g('ewma_out')},
         P = pauseOpen(st, set, c), probeLease = st[cf(c, 'probe_lease')],
         nreq = 0, n429 = 0, est_n = 0, est_err = 0}
    CL[c] = k
    return k
end

-- A field of class k as this batch has left it so far.
local function curOf(k)
    return function(f)
        local v = k.s[f]
        if v ~= nil then return tonumber(v) end
        v = tonumber(st[cf(k.c, f)])
        local d = k.d[f]
        if d and d ~= 0 then v = (v or 0) + d end
        return v
    end
end

-- Release a lease's reservation r (parsed up front): its spend moves from
-- reserved to spent (cost, or the whole reservation when cost is nil: an
-- unknown outcome); its class's in-flight count and output reservation go.
local unreserve = {}
local function release(lid, r, cost)
    if not r then return end
    if cost == nil or cost < 0 then cost = r.cost end
    dState.reserved = dState.reserved - r.cost
    dState.spent = dState.spent + cost
    if r.batch then             -- (the Batch lane holds no unit, no bucket)
        unreserve[#unreserve + 1] = lid
        return
    end
    local k = cls(r.class)
    if not r.unsent then        -- (a follower never sent held no unit)
        k.d.o_inflight = k.d.o_inflight - r.o
        k.d.n_inflight = k.d.n_inflight - 1
    end
    unreserve[#unreserve + 1] = lid
end

-- Follower lid (admit.lua) was sent (sent: its leader's answer came) or
-- never will be: its charges leave b_pend; sent, they are charged now
-- (after every reading in force: none of them holds it), it takes the
-- in-flight unit its leader held (its snapshot: below).
-- r: its reservation (parsed; read when nil), lead: its leader (read when
-- nil). Returns r, or nil when lid is not a follower waiting to be sent.
local function activate(lid, sent, r, lead)
    lead = lead or rcall('HGET', K.follow, '>' .. lid)
    if not lead then return nil end
    rcall('HDEL', K.follow, '>' .. lid, lead)
    local raw = (sent or not r) and rcall('HGET', K.reserv, lid)
    r = r or (raw and reservation(raw))
    if not r then return nil end
    local k = cls(r.class)
    local d = k.d
    followerCharges(d, r, sent)
    if not sent then
        r.unsent = true
        return r
    end
    d.o_inflight, d.n_inflight = d.o_inflight + r.o, d.n_inflight + 1
    local exp = rcall('ZSCORE', K.leases, lid)
    if exp then rcall('ZADD', K.inflight, exp, lid) end
    -- Its snapshot stays its admission's, plus its own charges (moved to
    -- b_cum now). It went out before this record reached Redis: a reading
    -- the API stamped when it took it does not hold what was charged
    -- meanwhile, so the counters as of now would count that held (an
    -- over-estimate: 429s; 8,000 tokens in a cold start's burst on a
    -- loaded machine). As of its admission, what was charged while it
    -- waited for its leader counts as after its reading: never over. How
    -- much that was is its reading's uncertainty (unc, lease.lua): the
    -- truth may be that much higher, so its reading does not pull the
    -- estimate down within it (bucketObserve); counted as a plain reading
    -- it held a cold start's burst 12,000 tokens under the truth, the
    -- fleet idle, for 12 s. The time stays its admission's: a reading of a
    -- request admitted after it takes over.
    reservationSnap(r)
    local cur, max = curOf(k), math.max
    r.snap = string.format('%d,%d,%d,%d,%d/%d/%d/%d/%d', r.t, r.cum.r + 1, r.cum.i + r.i,
                           r.cum.o + r.o, r.o_done,
                           max(0, (cur('r_cum') or 0) - 1 - r.cum.r),
                           max(0, (cur('i_cum') or 0) - r.i - r.cum.i),
                           max(0, (cur('o_cum') or 0) - r.o - r.cum.o),
                           max(0, (cur('o_done') or 0) - r.o_done))
    if raw then rcall('HSET', K.reserv, lid, reservationResnap(raw, r.snap)) end
    return r
end

-- What a 200 teaches: latency, the class's calibration and output
-- quantile, a cached prompt prefix.
local function learn(k, a, r)
    local it, ot = num(ARGV[a + ATT.INPUT_TOKENS]) or 0, num(ARGV[a + ATT.OUTPUT_TOKENS]) or 0
    local cw, cr = num(ARGV[a + ATT.CACHE_WRITE_TOKENS]) or 0, num(ARGV[a + ATT.CACHE_READ_TOKENS]) or 0
    local lat = num(ARGV[a + ATT.LATENCY_MS]) or 0
    ew = ew and ew * 0.9 + lat * 0.1 or lat
    local v = k.v
    v.ei = v.ei and v.ei * 0.9 + (it + cw) * 0.1 or (it + cw)
    v.eo = v.eo and v.eo * 0.9 + ot * 0.1 or ot
    k.d.o_done = k.d.o_done + ot
    tokIn, tokOut, nOk = tokIn + it, tokOut + ot, nOk + 1
    if not r then return end
    local err = classLearn(v, r.raw, it + cw + cr, ot, r.max_tokens)
    if err then
        k.est_n = k.est_n + 1
        k.est_err = k.est_err + err
    end
    if r.prefix ~= '' and cw + cr > 0 then
        local ttl = r.cache_1h and 3600000 or 300000
        rcall('HSET', K.cache, r.prefix, string.format('%d,%d', cw + cr, now + ttl))
    end
end

-- An attempt that went out (record at ARGV[a], reservation r).
local function account(lid, a, r)
    local status = ARGV[a + ATT.HTTP_STATUS]
    local cost = nil
    -- A usable 200 costs its usage; an API error costs nothing; a 200 we
    -- could not read, or no answer at all, costs the whole reservation.
    local answered = status ~= '0' and status ~= ''
    if status == '200' then cost = num(ARGV[a + ATT.COST_MICRO]); if cost and cost < 0 then cost = nil end
    elseif answered then cost = 0 end
    release(lid, r, cost)
    if r and r.batch then
        -- A Batch lane result: its cost, nothing the sync buckets,
        -- pauses or estimates learn from.
        stat('batch_requests', 1)
        if status == '200' then stat('batch_saved', cost or 0) end
        return
    end
    nReq = nReq + 1
    if answered then set.observed = 1 end
    local k = r and cls(r.class)
    if k then
        if answered then k.s.observed = 1 end
        if answered and rule == 'reserve' then
            -- The 2025 rule: the API charged max_tokens at the start and
            -- gives back what was not produced at the end (all of it when
            -- it refused the request): o_cum counts what stays charged.
            local produced = status == '200' and (num(ARGV[a + ATT.OUTPUT_TOKENS]) or 0) or 0
            local back = r.o - produced
            k.d.o_cum = k.d.o_cum - back
            if status == '200' and back > 0 then
                -- Given back at an answer that the reading in force may
                -- already hold (headers stamped at a later answer counted
                -- it): answered before that reading was taken (o_at), it
                -- moves the reading's base with it, and the estimate
                -- stays. Counted twice it is an over-estimate: 429s.
                reservationSnap(r)
                local lat = num(ARGV[a + ATT.LATENCY_MS]) or 0
                if r.t and r.t + lat <= (curOf(k)('o_at') or 0) then
                    k.d.o_base = (k.d.o_base or 0) - back
                end
            end
        end
        k.nreq = k.nreq + 1
    end

    if status == '429' then
        stat('r429', 1)
        if k then k.n429 = k.n429 + 1 end
        local ra = num(ARGV[a + ATT.RETRY_AFTER_MS]) or -1
        if ARGV[a + ATT.SPEND_LIMIT] == '1' then
            pauseRaise(P, now, now + maxPause, 'spend limit: the API answered 429 ' ..
                       'enforced_spend_limit_reached; probing every ' ..
                       math.floor(probeEvery / 1000) .. ' s', PAUSE.LONG, probeEvery)
        elseif ra > maxPause or not k then
            -- Past max_pause: a daily or org cap, not one class's bucket.
            if ra < 0 then ra = 1000 end
            pauseRaise(P, now, now + ra, 'rate limit: the API asked to wait ' ..
                       math.floor(ra / 1000) .. ' s (over max_pause); probing every ' ..
                       math.floor(probeEvery / 1000) .. ' s', ra > maxPause and PAUSE.LONG or PAUSE.SHORT,
                       probeEvery)
        elseif not k.r429 or ra > k.r429 then
            k.r429 = ra
        end
    elseif status == '200' then
        if probeLease == lid and P.kind == PAUSE.LONG then pauseEnd(P, now) end
        if k and k.probeLease == lid and k.P.kind == PAUSE.LONG then pauseEnd(k.P, now) end
        if k and k.probeLease == lid then k.s.probe_lease = '' end
        if k then learn(k, a, r) end
    end
    if probeLease == lid then
        probeLease = nil
        rcall('HDEL', K.state, 'probe_lease')
        st.probe_lease = nil
    end
end

-- Observation g (ARGV from o) of the batch, for record n's class.
local function observe(o, n, r)
    reservationSnap(r)
    local k = cls(r.class)
    local objT = curOf(k)('obs_t') or 0
    if r.t < objT then return end       -- one admitted later is in force
    local obs = {}
    for i, b in ipairs(BUCKETS) do
        local lim, rem = num(ARGV[o + OBS.R_LIM + 2 * (i - 1)]), num(ARGV[o + OBS.R_REM + 2 * (i - 1)])
        if lim and rem then obs[b] = {lim, rem} end
    end
    local cumA = {r = r.cum.r, i = r.cum.i, o = rule == 'actual' and r.o_done or r.cum.o}
    local unc = r.unc and {r = r.unc.r, i = r.unc.i, o = rule == 'actual' and r.unc.od or r.unc.o}
    -- A bucket's first reading: the cold start's request went out with no
    -- burst counted (no limit known), so its use starts the class's burst
    -- (lib/pace.lua; requests and input), up to max_burst: a first request
    -- bigger than that (an 8k-token cache write at 40k a minute) leaves the
    -- readings apart (the minute's bucket has room; a per-second one has
    -- none for 11 s), and the plain one is taken: a 429 then says how long.
    local cur = curOf(k)
    local burst = tonumber(l.max_burst) or 0
    for b, v in pairs(obs) do
        if b ~= 'o' and burst > 0 and not cur(b .. '_lim') and not cur(b .. '_tat') and v[1] > 0 then
            k.s[b .. '_tat'] = istr(math.ceil(r.t + math.min(burstUse(b, b == 'r' and 1 or r.i, v[1]), burst)))
        end
    end
    local seen = bucketObserve(obs, r.t, cumA, cur, k.s, now, rule, unc)
    k.s.obs_t = r.t
    local hits = bucketHardFloor(seen, l, k.P, now)
    if hits > 0 then stat('hard_floor_hits', hits) end
end

-- A class that drew 429s: it waits until its buckets have refilled to the
-- soft floor, or for the API's retry-after when that is longer. The
-- API's bucket is never below empty: an estimate under zero is requests
-- counted twice (a reading taken at admission while the API stamped at the
-- answer, or holds in flight), so the wait is at most a refill from empty
-- to the soft floor. Under output_rule=reserve the holds in flight come
-- back at their answers (holdsBack, as admission counts them), within a
-- latency.
local function pause429(k)
    local w = k.r429
    local cur = curOf(k)
    for _, b in ipairs(BUCKETS) do
        local est, lim = bucketEstimate(cur, b, now, rule)
        if est then
            if b == 'o' and rule ~= 'actual' then
                est = est + holdsBack(cur('o_inflight') or 0, cur('n_inflight') or 0, k.v.oq, k.v.eo)
            end
            if est < 0 then est = 0 end
            local soft = (b ~= 'r' or string.match(l.soft_token_floor, '%%$')) and
                         floorOf(l.soft_token_floor, lim) or 0
            local need = b == 'r' and 1 or 0
            local t = bucketWait(est, lim, need, soft)
            if t > w then w = math.ceil(t) end
        end
    end
    if w <= 0 then w = 1000 end         -- nothing known: a second
    pauseRaise(k.P, now, now + w, '429 rate_limit_error: waiting ' .. w ..
               ' ms for the buckets to refill', PAUSE.SHORT, probeEvery)
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
        -- An error result keeps its job (exact bytes, copied inside Redis
        -- from the claim) for `llmfleet retry`, until retried or `gc`.
        -- A dead letter keeps its own.
        if status == 'error' and r.op ~= OP.DEAD then
            local raw = leaseJob(r.lid)
            if raw then
                local et = ''
                for j = f0, f0 + nf - 2, 2 do
                    if ARGV[j] == 'error_type' then et = ARGV[j + 1] break end
                end
                rcall('ZADD', K.failed, now, id)
                rcall('HSET', K.failedjob, id, et .. '\n' .. raw)
            end
        end
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
    Writer.dueAt(set, st, now + d)
    hDelayed[#hDelayed + 1] = r.lid
    hDelayed[#hDelayed + 1] = job
    rcall('HINCRBY', K.attempts, r.id, 1)
    retriesUsed = retriesUsed + 1
    stat('retries', 1)
    return SETTLED.RETRY
end

-- Parse the records, then read what they need in one call per key. A
-- figure no integer arithmetic here could hold exactly (past 2^53, or not
-- a number where one must be) is not written: a cost becomes unknown (the
-- reservation counts), a token count absent. The worker never sends one
-- (outcome.c bounds usage); this is the last wall before HINCRBY.
local EXACT_MAX = 9007199254740992
local function wholeOr(v, dflt)
    -- (digits only, under 16 of them, the common case: whole and in range
    -- without the C library's strtod behind tonumber; settles ran 2.4 %
    -- fewer instructions on a replayed paced run)
    if v and #v < 16 and not string.find(v, '%D') then return v end
    local n = tonumber(v)
    if v == '' or (n and n == math.floor(n) and n >= -1 and n <= EXACT_MAX) then return v end
    stat('refused_numbers', 1)
    return dflt
end
local TOKEN_FIELDS = {ATT.INPUT_TOKENS, ATT.OUTPUT_TOKENS, ATT.CACHE_WRITE_TOKENS,
                      ATT.CACHE_READ_TOKENS, ATT.LATENCY_MS}
local i = REC0
while i <= #ARGV do
    local r = {op = ARGV[i + REC.OP], lid = ARGV[i + REC.LEASE], id = ARGV[i + REC.ID],
               dead = ARGV[i + REC.DEAD], a = i, nf = tonumber(ARGV[i + REC_NF]),
               f0 = i + REC_NF + 1}
    ARGV[i + ATT.COST_MICRO] = wholeOr(ARGV[i + ATT.COST_MICRO], '-1')
    for _, f in ipairs(TOKEN_FIELDS) do
        ARGV[i + f] = wholeOr(ARGV[i + f], '')
    end
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
    for n = 1, #lids do if resv[n] then resv[n] = reservation(resv[n]) or nil end end
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
-- A follower settled before its leader's record said it was sent (that
-- record failed, or is behind): sent or not, its attempt says.
if #recs > 0 and rcall('EXISTS', K.follow) == 1 then
    local f = {}
    for n, r in ipairs(recs) do f[n] = '>' .. r.lid end
    local leads = rcall('HMGET', K.follow, unpack(f))     -- one read, not one per record
    for n, r in ipairs(recs) do
        if leads[n] and resv[n] then activate(r.lid, ARGV[r.a + ATT.SENT] == '1', resv[n], leads[n]) end
    end
end

for n, r in ipairs(recs) do
    local op, lid = r.op, r.lid
    if not leased[n] or ((op == OP.FAILED or op == OP.REQUEUE) and not jobs[lid]) then
        out[#out + 1] = SETTLED.LOST
    else
        if ARGV[r.a + ATT.SENT] == '1' then account(lid, r.a, resv[n]) else release(lid, resv[n], 0) end
        if op == OP.RESULT or op == OP.DEAD then
            local v = writeResult(n, nil)
            if v == SETTLED.DONE and op == OP.DEAD then
                -- Stamped with Redis's clock unless the worker did (ts_ms first).
                local d = r.dead
                -- Too large to quote: the raw job stays in Redis (a copy
                -- from the claim), the letter points at it.
                if string.sub(d, 1, 14) == '{"job_ref":"",' then
                    local raw = leaseJob(lid)
                    if raw then rcall('HSET', K.deadjob, lid, raw) end
                    d = '{"job_ref":' .. cjson.encode(raw and lid or '') .. ',' .. string.sub(d, 15)
                end
                if string.sub(d, 1, 9) ~= '{"ts_ms":' then
                    d = string.format('{"ts_ms":%d,', now) .. string.sub(d, 2)
                end
                lpushDead[#lpushDead + 1] = d
            end
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

for g = 1, nobs do
    local o = OBS0 + (g - 1) * OBS_N
    local oi = tonumber(ARGV[o + OBS.INDEX]) or 0
    if oi > 0 and out[oi] and out[oi] ~= SETTLED.LOST and resv[oi] then observe(o, oi, resv[oi]) end
end
-- Followers sent at their leaders' answers: after the observations (a
-- reading of this batch does not hold them).
for _, r in ipairs(recs) do
    local act = ARGV[r.a + REC.ACT]
    if act ~= '' then activate(act, true) end
end
for _, k in pairs(CL) do if k.r429 then pause429(k) end end
if nReq > 0 then
    stat('requests', nReq)
    stat(QB, nReq)
    if nOk > 0 then set.ewma_ms = ew end
    if tokIn > 0 then stat(TIB, tokIn) end
    if tokOut > 0 then stat(TOB, tokOut) end
end
if nRes > 0 then stat(JB, nRes) end

if #sadd > 0 then bulk('SADD', K.done, sadd, 1) end
if #sadd > 0 then bulk('HDEL', K.live, sadd, 1) end      -- no copy is in flight now
if #hdelAtt > 0 then
    bulk('HDEL', K.attempts, hdelAtt, 1)
    bulk('HDEL', K.lost, hdelAtt, 1)
end
if #lpushDead > 0 then bulk('LPUSH', K.dead, lpushDead, 1) end
if #rpushJobs > 0 then
    bulk('RPUSH', K.jobs, rpushJobs, 1)
    reenter(#rpushJobs)
    st.q_taken = (tonumber(st.q_taken) or 0) - #rpushJobs    -- claimJobs below reads it
end
if #zDelayed > 0 then bulk('ZADD', K.delayed, zDelayed); bulk('HSET', K.delayedjob, hDelayed) end
if #unreserve > 0 then bulk('HDEL', K.reserv, unreserve, 1); bulk('ZREM', K.inflight, unreserve, 1) end
-- The state's counters and fields in one HSET (util.lua's writer: every
-- field it adds to is changed here only through it).
local w = Writer.new(set)
for k, n in pairs(dState) do w:add(k, n) end
daySpend(now, dState.spent, st.day, w)      -- max_spend_usd_per_day
for c, k in pairs(CL) do
    for f, n in pairs(k.d) do w:add(cf(c, f), n) end
    stat(cf(c, 'requests'), k.nreq)
    stat(cf(c, 'r429'), k.n429)
    stat(cf(c, 'est_n'), k.est_n)
    stat(cf(c, 'est_err_ppm'), k.est_err * 1e6)
    local v = k.v
    if v.on ~= (tonumber(st[cf(c, 'on')]) or 0) then k.s.on, k.s.oq, k.s.omax, k.s.oqn = v.on, v.oq, v.omax, v.oqn end
    if v.ncal ~= (tonumber(st[cf(c, 'ncal')]) or 0) then k.s.cal, k.s.ncal = v.cal, v.ncal end
    if v.ei then k.s.ewma_in, k.s.ewma_out = v.ei, v.eo end
    for f, x in pairs(k.s) do set[cf(c, f)] = x end
end
Writer.incrAll(K.stats, dStats)
-- The fleet's write counter: it only grows, so a worker that sees it go
-- back knows Redis lost acknowledged writes (renew.lua reports it).
if #leaseGone > 0 then set.seq = (tonumber(st.seq) or 0) + 1 end
-- The rate bucket that fell out of the kept range goes once, at the first
-- settle of a new bucket (`stats_trim`), not at every settle.
if st.stats_trim ~= istr(bucket) then
    statsTrim(bucket)
    set.stats_trim = istr(bucket)
end
w:flush(st)
-- The leases go last: should anything above fail, the jobs are still
-- leased and the reaper puts them back (at least once, never lost).
if #leaseGone > 0 then bulk('ZREM', K.leases, leaseGone, 1); leasesEnded(leaseGone) end

local claimed = {}
local claimN = tonumber(ARGV[SA.CLAIM_N]) or 0
if claimN > 0 then
    -- (st is as Redis holds it now: the claim reads no state again)
    claimed = claimJobs(claimN, tonumber(ARGV[SA.LEASE_MS]), ARGV[SA.PREFIX], now, l, st,
                        tonumber(ARGV[SA.MAX_JOB]), ARGV[SA.INTAKE], true)
end
return {out, claimed}
