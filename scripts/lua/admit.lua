-- admit.lua — admission: may these leased jobs be sent to the API now?
--
-- One atomic verdict per job (ADMIT, proto.def), in order:
--   lease gone or expired -> LOST; id done -> DUP, lease dropped;
--   another copy of the id sent and not settled (`live`), or earlier in the
--     batch: the same bytes -> DUP, lease dropped (the other copy has the
--     job); other bytes -> DUPID: a dead letter `duplicate_id` quoting this
--     copy, lease dropped (never a second result for the id);
--   lost with its worker max_deliveries times -> POISON;
--   a suspect's rule (below) -> WAIT / WAIT_ALONE;
--   the worker's prices are not the fleet's -> WAIT (it reloads them);
--   the fleet or the job's model class paused -> WAIT (a long pause admits
--     one probe per probe_interval);
--   the class's cold start (no rate-limit headers seen yet) -> one request;
--   spend cap set and the model has no price -> NOPRICE;
--   spent + reserved + this reservation > max_spend_usd -> WAIT while
--     reservations may still shrink, else BUDGET (the fleet stops; one
--     budget_exceeded entry goes to the results stream);
--   in flight >= the fleet's ceiling, or the class's -> WAIT;
--   one of the class's bucket estimates minus this job's need under
--     soft_token_floor -> WAIT exactly as long as the refill takes (at
--     most a refill from empty while the class has requests in flight:
--     an estimate under zero is theirs counted twice; under
--     output_rule=reserve, when the holds of the requests in flight will
--     give back enough output at their answers, a short WAIT in the slot
--     instead: they are answered within a latency);
--   a wait of the job's own class (its buckets, its pause) longer than
--     PARK_MIN_MS -> PARKED: the job leaves its lease for the `parked` set
--     until due, holding no worker slot, so jobs of other classes flow;
--     the class's waiting jobs are spaced by the refill of what they use
--     (for output, the class's mean output, not max_tokens or its high
--     quantile) (park_tail), so they come back one by one, not all at
--     once (and never more than PARK_HORIZON_MS after their own wait, so
--     that a spacing learned later takes over); a job waiting for the
--     holds in flight to come back (above) waits in its slot instead;
--   else GO (GO_ALONE for a suspect): count the attempt, add the lease to
--   `inflight` (scored by expiry, so a dead worker's slots come back),
--   charge its needs to the class's buckets and reserve its cost.
-- A job's needs: 1 request; input: the worker's estimate times the class's
-- calibration (lib/class.lua), less the prefix the API reported cached
-- (`cache`, reads do not count toward the input limit); output: max_tokens
-- under output_rule=reserve, the class's learned high quantile of output /
-- max_tokens times max_tokens under 'actual'. A need is capped at the
-- bucket's limit: a job bigger than the bucket goes when it is full.
-- A job about to use its last delivery (lost with its worker
-- max_deliveries - 1 times: a poison job, or a bystander of one) runs alone
-- on its worker, so that it is dead-lettered only if it alone was running
-- when its worker died: it waits until the worker has nothing in flight,
-- and while such a suspect waits or runs the worker admits nothing else.
--
-- KEYS: the fleet's keys (proto.def).
-- ARGV: AA (LEASE_MS, BUSY: requests this worker has in flight, SOLO: its
--       solo state, PRICES_VER: the price table version it holds), then
--       per job AJ (LEASE, ID, MODEL, INPUT estimate, MAX_TOKENS, RESERVE
--       micro-USD (-1: the model has no price), PREFIX, PREFIX_TOKENS,
--       CACHE_1H).
-- Reply: AR {ceiling, reason, solo, prices_ver}, then per job a verdict
-- (ADMIT) and its value.
local now = nowMs()
local l = loadLimits()
local st = loadHash(K.state)
local rule = l.output_rule
local maxAtt = tonumber(l.max_attempts) or 5
local maxDel = tonumber(l.max_deliveries) or 3
local cap = spendCap(l)
local dcap = dayCap(l)
local spent = tonumber(st.spent) or 0
local daySpent = spentToday(st, now)
local reserved = tonumber(st.reserved) or 0
local inflight = inFlight(now, st)
local leaseExp = string.format('%d', now + tonumber(ARGV[AA.LEASE_MS]))
local nowS = string.format('%d', now)
local pricesVer = st.prices_ver or '0'
local stalePrices = ARGV[AA.PRICES_VER] ~= pricesVer
local overrides = parseMap(l.model_classes)
local ceiling = tonumber(l.max_in_flight) or 100
local pz = pauseNow(st, now)                -- the fleet's pause
local probeDue = pz and pz.probe
local reason = ''

local P = pacer(st, l, now)                 -- the class's pacing (lib/pace.lua)
local shortWait, classState, paceWait = P.shortWait, P.classState, P.paceWait
local C, newClasses = P.C, P.newClasses

-- One lookup each for all leases, done ids, attempt counters and cached
-- prefixes.
local lids, ids, pfx = {}, {}, {}
local J0 = AA.PRICES_VER + 1                -- first job group
for k = J0, #ARGV, AJ_N do
    lids[#lids + 1] = ARGV[k + AJ.LEASE]
    ids[#ids + 1] = ARGV[k + AJ.ID]
    if ARGV[k + AJ.PREFIX] ~= '' then pfx[#pfx + 1] = ARGV[k + AJ.PREFIX] end
end
local busy = tonumber(ARGV[AA.BUSY]) or 0
local solo = tonumber(ARGV[AA.SOLO]) or SOLO.NONE
local leased = rcall('ZMSCORE', K.leases, unpack(lids))
local isDone = rcall('SMISMEMBER', K.done, unpack(ids))
local liveLid = rcall('HMGET', K.live, unpack(ids))
-- Retry counts and lost deliveries exist only for jobs that failed or lost
-- a worker: in a healthy fleet both hashes are gone, and not read.
local atts, lostN = {}, {}
if rcall('EXISTS', K.attempts, K.lost) > 0 then
    atts = rcall('HMGET', K.attempts, unpack(ids))
    lostN = rcall('HMGET', K.lost, unpack(ids))
end
P.loadCached(pfx)
local unknownGo = nil                       -- the unknown-size request this call lets go
local unknownWent = nil                     -- ... once it went
local seen = {}                             -- id -> its first lease in this batch
local zin, hres, dropped, liveSet = {}, {}, {}, {}
local follow, led = {}, {}                  -- HSET pairs for `follow`; leaders taken here
local parkZ, parkH, parkN = {}, {}, {}
local w = Writer.new()                      -- the state's fields, written at the end
-- The job's needs in class k (arguments from a).
local function needs(k, a)
    return P.needs(k, tonumber(ARGV[a + AJ.INPUT]), tonumber(ARGV[a + AJ.MAX_TOKENS]),
                   ARGV[a + AJ.PREFIX])
end
local BATCH_HORIZON_MS = 36 * 3600000      -- a batch ends within 24 h (API), then its results

-- Job n of class k must wait at least wait ms: behind the class's other
-- waiting jobs, in its slot when that is short, else parked in Redis.
local function classWait(n, k, wait, need, why)
    local due = P.parkDue(k, wait, need)
    reason = why
    if due - now <= PARK_MIN_MS then return ADMIT.WAIT, math.ceil(due - now) end
    local job = leaseJob(lids[n])
    if not job then return ADMIT.LOST, 0 end
    local id = parkedId(k.c, due - k.slip, lids[n])          -- (its place in the line)
    Writer.dueAt(w.set, st, due)
    parkZ[#parkZ + 1] = '0'
    parkZ[#parkZ + 1] = id
    parkH[#parkH + 1] = id
    parkH[#parkH + 1] = job
    local a = J0 + (n - 1) * AJ_N
    parkN[#parkN + 1] = id
    parkN[#parkN + 1] = k.c .. ',' .. ARGV[a + AJ.INPUT] .. ',' .. ARGV[a + AJ.MAX_TOKENS] ..
                        ',' .. ARGV[a + AJ.PREFIX]
    dropped[#dropped + 1] = lids[n]
    return ADMIT.PARKED, math.ceil(due - now)
end

-- Let job n (arguments from a) go: charge it, reserve, record.
-- A follower (lead: the lease it follows) takes no in-flight unit of its
-- own and its charges wait in b_pend until it is sent (settle.lua).
local function go(n, a, k, need, res, val, lead)
    local lid, id = lids[n], ids[n]
    liveSet[#liveSet + 1] = id; liveSet[#liveSet + 1] = lid
    if lid == unknownGo then unknownWent = lid end
    local resS = ARGV[a + AJ.RESERVE]
    if res < 0 then res, resS = 0, '0' end
    local into = lead and k.pend or k.add
    for _, b in ipairs(BUCKETS) do into[b] = into[b] + need[b] end
    P.take(k, need, lead)
    if lead then
        led[lead] = true
        follow[#follow + 1] = lead; follow[#follow + 1] = lid
        follow[#follow + 1] = '>' .. lid; follow[#follow + 1] = lead
        k.nf = k.nf + 1
    else
        busy = busy + 1
        zin[#zin + 1] = leaseExp; zin[#zin + 1] = lid
        inflight = inflight + 1
    end
    hres[#hres + 1] = lid
    -- Numbers become strings only where they differ from the caller's.
    local rawS, mtS = ARGV[a + AJ.INPUT], ARGV[a + AJ.MAX_TOKENS]
    local inS = need.i == tonumber(rawS) and rawS or istr(need.i)
    local outS = need.o == tonumber(mtS) and mtS or istr(need.o)
    hres[#hres + 1] = k.c .. ',' .. inS .. ',' .. outS .. ',' .. resS .. ',' .. k.snap ..
        ',' .. rawS .. ',' .. mtS .. ',' .. ARGV[a + AJ.PREFIX] .. ',' ..
        ARGV[a + AJ.CACHE_1H] .. ',' .. id
    reserved = reserved + res
    return val
end

-- The spend cap's verdict on a reservation of res micro-USD: nil (it
-- fits), NOPRICE, COUNT (it does not fit, and it is a bound, not a count),
-- WAIT (it may fit once the requests in flight settle:
-- reservations are worst cases) or BUDGET (the fleet stops: one
-- budget_exceeded entry marks it).
-- One cap against what it already holds (held: spent, or spent today):
-- COUNT (near the cap a bound is too coarse: the worker counts the input
-- exactly with count_tokens and asks again with the truth), WAIT (it may
-- fit once the requests in flight settle), nil (it fits), or false (it
-- cannot fit: the caller stops the fleet).
local function capCheck(held, capv, res, exact, what)
    if held + reserved + res > capv and not exact then return ADMIT.COUNT, 0 end
    if held + reserved + res > capv and reserved > 0 then
        reason = 'spend: waiting for in-flight reservations to settle' .. what
        return ADMIT.WAIT, shortWait(inflight)
    end
    if held + res <= capv then return nil end
    return false
end

local function dayVerdict(res, exact)
    local code, val = capCheck(daySpent, dcap, res, exact, ' (daily cap)')
    if code ~= false then return code, val end
    local mark = istr(dayOf(now)) .. ':' .. l.max_spend_usd_per_day
    if st.day_cap ~= mark then
        st.day_cap = mark
        rcall('HSET', K.state, 'day_cap', mark)
        rcall('XADD', K.results, '*', 'status', 'budget_exceeded',
              'max_spend_usd_per_day', l.max_spend_usd_per_day,
              'spent_today_usd', string.format('%.6f', daySpent / 1e6),
              'reserved_usd', string.format('%.6f', reserved / 1e6),
              'resumes_at_ms', istr((dayOf(now) + 1) * DAY_MS))
    end
    reason = 'daily spend cap reached (max_spend_usd_per_day=' .. l.max_spend_usd_per_day ..
             '); resumes at 00:00 UTC'
    return ADMIT.BUDGET, 0
end

local function spendVerdict(res, exact)
    if not cap and not dcap then return nil end
    if res < 0 then return ADMIT.NOPRICE, 0 end
    if dcap then
        local code, val = dayVerdict(res, exact)
        if code then return code, val end
        if not cap then return nil end
    end
    local code, val = capCheck(spent, cap, res, exact, '')
    if code ~= false then return code, val end
    reason = 'spend cap reached (max_spend_usd=' .. l.max_spend_usd .. ')'
    if st.budget_cap ~= l.max_spend_usd then
        st.budget_cap = l.max_spend_usd
        rcall('HSET', K.state, 'budget_cap', l.max_spend_usd)
        rcall('XADD', K.results, '*', 'status', 'budget_exceeded',
              'max_spend_usd', l.max_spend_usd,
              'spent_usd', string.format('%.6f', spent / 1e6),
              'reserved_usd', string.format('%.6f', reserved / 1e6))
    end
    return ADMIT.BUDGET, 0
end

-- The Batch lane (Message Batches, half price). A job's lane: its own,
-- else the fleet's default_lane; `auto` is batch when the job's deadline
-- is at least batch_margin away (or it has none), else sync.
local function laneOf(a)
    local ln = ARGV[a + AJ.LANE]
    if ln == '' then ln = l.default_lane end
    if ln ~= 'auto' then return ln end
    local dl = tonumber(ARGV[a + AJ.DEADLINE_MS]) or -1
    if dl >= 0 and dl - now < tonumber(l.batch_margin) then return 'sync' end
    return 'batch'
end

-- The batch forming for class c (created on first use), as this call
-- leaves it: {bid, n, bytes, key}.
local forming, batchSeq = {}, nil
-- (the API's own limits cap the fleet's: 100,000 requests, 256 MB)
local batchMaxN = math.min(tonumber(l.batch_max_requests), 100000)
local batchMaxBytes = math.min(tonumber(l.batch_max_bytes), 256 * 1024 * 1024 - 1024)
local BATCH_ITEM_BYTES = 64                 -- a request's envelope in the POST
local function batchSeal(b)
    rcall('HSET', b.key, 'state', 'sealed', 'sealed_ms', nowS, 'n', b.n, 'bytes', b.bytes)
    rcall('ZADD', K.batches, nowS, b.bid)
    rcall('HDEL', K.batchform, b.c)
    forming[b.c] = nil
end
local function batchFor(c, model)
    local b = forming[c]
    if b then return b end
    local bid = rcall('HGET', K.batchform, c)
    if bid then
        local key = K.batches .. ':' .. bid
        local v = rcall('HMGET', key, 'n', 'bytes', 'opened_ms')
        b = {bid = bid, c = c, key = key, n = tonumber(v[1]) or 0, bytes = tonumber(v[2]) or 0,
             opened = tonumber(v[3]) or now}
    else
        batchSeq = rcall('HINCRBY', K.state, 'batch_seq', 1)
        bid = 'b' .. batchSeq
        b = {bid = bid, c = c, key = K.batches .. ':' .. bid, n = 0, bytes = 0, opened = now}
        rcall('HSET', b.key, 'class', c, 'model', model, 'state', 'forming',
              'opened_ms', nowS, 'n', 0, 'bytes', 0, 'token', 0)
        rcall('HSET', K.batchform, c, bid)
        rcall('ZADD', K.batches, istr(now + tonumber(l.batch_max_wait)), bid)
    end
    forming[c] = b
    return b
end

-- Job n (arguments from a) to the Batch lane: its worst case reserved at
-- the batch price, its lease pushed to the batch's horizon (the batch
-- owns it now: settled by the batch's results, or reaped if the lane
-- never finishes), appended to its class's forming batch, which is
-- sealed at batch_max_requests or batch_max_bytes (batch_max_wait: a
-- worker seals it, batch.lua). The verdict's value: ms until the batch is
-- due (0: sealed now), for the worker's lane timer.
local function batchVerdict(n, a, lost)
    local att = (tonumber(atts[n]) or 0) + lost + 1
    if att > maxAtt then return ADMIT.POISON, att - 1 end
    if stalePrices then
        reason = 'the fleet price table changed: reloading it'
        return ADMIT.WAIT, 50
    end
    if pz then reason = pz.reason; return ADMIT.WAIT, pz.wait end
    local res = tonumber(ARGV[a + AJ.RESERVE])
    if res > 0 then res = math.floor(res / 2) + res % 2 end    -- priceBatch
    local code, val = spendVerdict(res, ARGV[a + AJ.EXACT] ~= '0')
    if code then return code, val end
    if res < 0 then res = 0 end
    local model = ARGV[a + AJ.MODEL]
    local c = classOf(model, overrides)
    local bytes = (tonumber(ARGV[a + AJ.BYTES]) or 0) + BATCH_ITEM_BYTES
    local b = batchFor(c, model)
    if b.n > 0 and b.bytes + bytes > batchMaxBytes then
        batchSeal(b)
        b = batchFor(c, model)
    end
    local lid, id = lids[n], ids[n]
    rcall('RPUSH', b.key .. ':items', lid)
    b.n, b.bytes = b.n + 1, b.bytes + bytes
    local horizon = now + tonumber(l.batch_max_wait) + BATCH_HORIZON_MS
    rcall('ZADD', K.leases, 'XX', istr(horizon), lid)
    liveSet[#liveSet + 1] = id; liveSet[#liveSet + 1] = lid
    hres[#hres + 1] = lid
    hres[#hres + 1] = 'b:' .. c .. ',0,0,' .. istr(res) .. ',' .. nowS .. ',0,0,0,0,' ..
        ARGV[a + AJ.INPUT] .. ',' .. ARGV[a + AJ.MAX_TOKENS] .. ',,0,' .. id
    reserved = reserved + res
    if b.n >= batchMaxN or b.bytes >= batchMaxBytes then
        batchSeal(b)
        return ADMIT.BATCHED, 0
    end
    rcall('HSET', b.key, 'n', b.n, 'bytes', b.bytes)
    return ADMIT.BATCHED, math.max(0, b.opened + tonumber(l.batch_max_wait) - now)
end

-- The verdict for job n (its arguments from a).
local function decide(n, a)
    if not leased[n] or tonumber(leased[n]) <= now then
        -- Gone, or expired and about to be reaped: its job goes back to the
        -- queue, so sending it now could send it twice.
        return ADMIT.LOST, 0
    end
    local id = ids[n]
    if isDone[n] == 1 then
        dropped[#dropped + 1] = lids[n]
        return ADMIT.DUP, 0
    end
    local other = seen[id]
    if not other and liveLid[n] and liveLid[n] ~= lids[n] and
       (rcall('ZSCORE', K.inflight, liveLid[n]) or
        rcall('HGET', K.follow, '>' .. liveLid[n]) or
        string.sub(rcall('HGET', K.reserv, liveLid[n]) or '', 1, 2) == 'b:') then
        other = liveLid[n]
    end
    if other then
        -- A second live copy of the id (a producer's retry, a double
        -- push): never sent. Same bytes: dropped, the other copy has
        -- the job. Other bytes: the producer reused an id: dead letter.
        dropped[#dropped + 1] = lids[n]
        local mine, theirs = leaseJob(lids[n]), leaseJob(other)
        if not mine or not theirs or mine == theirs then return ADMIT.DUP, 0 end
        rcall('LPUSH', K.dead, cjson.encode({ts_ms = now, id = id, job = mine,
            reason = 'duplicate_id: another job with this id and other contents is ' ..
                     'running; ids must be unique (this copy was not sent)'}))
        return ADMIT.DUPID, 0
    end
    seen[id] = lids[n]
    local lost = tonumber(lostN[n]) or 0
    local suspect = lost > 0 and lost >= maxDel - 1
    if lost >= maxDel then return ADMIT.POISON, lost end
    if laneOf(a) == 'batch' then return batchVerdict(n, a, lost) end
    if solo == SOLO.RUNS or (solo == SOLO.WAITS and not suspect) then
        reason = 'a job lost with its worker before runs alone here first'
        return ADMIT.WAIT, 100
    end
    if suspect and busy > 0 then
        solo = SOLO.WAITS
        reason = 'a job lost with its worker before waits to run alone'
        return ADMIT.WAIT_ALONE, 100
    end
    if stalePrices then
        reason = 'the fleet price table changed: reloading it'
        return ADMIT.WAIT, 50
    end
    if pz and not probeDue then reason = pz.reason; return ADMIT.WAIT, pz.wait end
    local k = classState(classOf(ARGV[a + AJ.MODEL], overrides))
    local cp = k.pause
    if cp and not k.probeDue then
        return classWait(n, k, cp.wait, needs(k, a), k.c .. ': ' .. cp.reason)
    end
    if not k.observed and k.inflight + k.n > 0 then
        -- Cold start: until an answer brings the class's rate-limit
        -- headers, its buckets are unknown; one request goes first.
        local ms = tonumber(st.ewma_ms) or 100
        if ms < 20 then ms = 20 elseif ms > 1000 then ms = 1000 end
        reason = k.c .. ': cold start, waiting for the first answer and its rate-limit headers'
        return ADMIT.WAIT, math.ceil(ms)
    end
    -- A follower takes over its leader's in-flight unit: the leader must be
    -- in flight (admitted, its lease alive) and followed by no other job.
    -- Never a probe, nor a request of unknown size.
    local lead = ARGV[a + AJ.FOLLOW]
    if lead == '' then lead = nil end
    if lead then
        local ls = tonumber(rcall('ZSCORE', K.inflight, lead) or 0)
        if ls <= now and rcall('HGET', K.follow, '>' .. lead) then
            -- A follower itself, sent, its leader's record on its way.
            ls = tonumber(rcall('ZSCORE', K.leases, lead) or 0)
        end
        if ls <= now or led[lead] or rcall('HGET', K.follow, lead) or
           ARGV[a + AJ.EXACT] == '2' or probeDue or k.probeDue then
            -- (no reason: the fleet does not wait; the worker asks again)
            return ADMIT.WAIT, 10
        end
    end
    local res = tonumber(ARGV[a + AJ.RESERVE])
    local exact = ARGV[a + AJ.EXACT]
    local code, val = spendVerdict(res, exact ~= '0')
    if code then return code, val end
    -- A request whose input is unknown (no bound, its count failed) under a
    -- cap goes one at a time: at most one such guess is out at once.
    if exact == '2' and (cap or dcap) then
        local u = st.unknown_lease
        if (u and u ~= '' and u ~= lids[n] and rcall('ZSCORE', K.inflight, u)) or unknownGo then
            reason = 'spend: a request of unknown size is in flight (one at a time under a cap)'
            return ADMIT.WAIT, shortWait(inflight)
        end
        unknownGo = lids[n]
    end
    if lead then
        -- (its leader's unit: checked above)
    elseif inflight >= ceiling then
        reason = 'in flight at the ceiling (' .. ceiling .. ')'
        return ADMIT.WAIT, shortWait(ceiling)
    end
    if not lead and k.ceiling and k.inflight + k.n >= k.ceiling then
        reason = k.c .. ': in flight at the class ceiling (' .. k.ceiling .. ')'
        return ADMIT.WAIT, shortWait(k.ceiling)
    end
    local need = needs(k, a)
    local wait, why, soon = paceWait(k, need)
    if soon then
        -- Not the refill: the answers of the requests in flight give the
        -- bucket back (output_rule=reserve). Spacing by the refill would
        -- hold the job up to PARK_HORIZON_MS for tokens that return within
        -- a latency, and keep the bucket full: it asks again in its slot.
        reason = why .. ' (holds in flight coming back)'
        return ADMIT.WAIT, math.ceil(wait)
    end
    if wait > 0 then return classWait(n, k, wait, need, why) end
    -- attempt number: failed attempts retried + deliveries lost + 1
    local att = (tonumber(atts[n]) or 0) + lost + 1
    if att > maxAtt then
        -- Earlier deliveries were admitted and never settled: their
        -- workers died. Give up instead of sending again.
        return ADMIT.POISON, att - 1
    end
    code = ADMIT.GO
    if suspect then code, solo = ADMIT.GO_ALONE, SOLO.RUNS end
    local probe = nil
    if probeDue then probe, probeDue = pz, false
    elseif k.probeDue then probe, k.probeDue = cp, false end
    if probe then
        -- The probe goes; the rest wait for the next one.
        local every = tonumber(l.probe_interval)
        probe.wait = math.min(probe.left, every)
        local pre = probe.class and (probe.class .. '|') or ''
        rcall('HSET', K.state, pre .. 'probe_at', now + every, pre .. 'probe_lease', lids[n])
    end
    return code, go(n, a, k, need, res, att, lead)
end

local out = {ceiling, '', 0, pricesVer}
for n = 1, #lids do
    local code, val = decide(n, J0 + (n - 1) * AJ_N)
    out[#out + 1] = code
    out[#out + 1] = val
end
if #dropped > 0 then
    bulk('ZREM', K.leases, dropped, 1)
    leasesEnded(dropped)
end
if #zin > 0 then bulk('ZADD', K.inflight, zin) end
if #hres > 0 then
    bulk('HSET', K.reserv, hres)
    bulk('HSET', K.live, liveSet)
end
if #follow > 0 then bulk('HSET', K.follow, follow) end
if #parkZ > 0 then
    bulk('ZADD', K.parked, parkZ)
    bulk('HSET', K.parkedjob, parkH)
    bulk('HSET', K.parkedneed, parkN)
end
-- The state's counters and fields in one HSET (util.lua's writer).
w:add('reserved', reserved - (tonumber(st.reserved) or 0))
P.saveTails(w.set, true)
for c, k in pairs(C) do
    if k.n > 0 then
        w:add(cf(c, 'r_cum'), k.add.r)
        w:add(cf(c, 'i_cum'), k.add.i)
        w:add(cf(c, 'o_cum'), k.add.o)
        w:add(cf(c, 'o_inflight'), k.add.o)
        w:add(cf(c, 'n_inflight'), k.n)
    end
    if k.nf > 0 then
        for _, b in ipairs(BUCKETS) do w:add(cf(c, b .. '_pend'), k.pend[b]) end
    end
end
if #newClasses > 0 then
    local all = st.classes and st.classes ~= '' and (st.classes .. ',') or ''
    w.set.classes = all .. table.concat(newClasses, ',')
end
if st.ceiling ~= tostring(ceiling) then w.set.ceiling = ceiling end
if unknownWent then w.set.unknown_lease = unknownWent end
w:flush(st)
out[AR.REASON] = reason
out[AR.SOLO] = solo
return out
