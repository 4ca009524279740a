-- batch.lua — the Batch lane's batches (Message Batches, half price).
--
-- admit.lua appends a batch job to its class's forming batch: the job's
-- lease stays (pushed to the batch's horizon), its leases are the
-- batch's items, `batches:BID:items` (custom_id NONCE-N is item N, 1-based), and
-- `batches:BID` is its record: class, model, state, n, bytes, opened_ms,
-- token, and later sealed_ms, submit_ms, sent_n and nonce (the last POST:
-- when, how many requests, its custom_ids' prefix), submits, refused, api_id,
-- poll_ms, counts, cancel. The `batches` set says when a worker next acts on each batch;
-- a worker that takes one holds it for OWN_MS (its due time moves there):
-- one actor per batch fleet-wide, and a dead one's batch is due again.
-- Every write of an actor carries the token its take returned: a stale
-- actor (its hold passed, someone took the batch since) changes nothing.
--
-- States: forming (admit.lua appends) -> sealed (full, or batch_max_wait
-- passed: the take seals it) -> submitting (the take; `sending` records
-- each POST before it goes: whoever takes a batch found `submitting` with a
-- POST recorded first looks for it in the API's batch list, so a crash
-- between the POST and its answer never sends it twice) -> submitted (the API's id known; polled with backoff)
-- -> ended (the API says so; its results are streamed and settled by
-- settle.lua, fenced by the items' leases) -> gone (finish).
--
-- KEYS: the fleet's keys (proto.def). ARGV[1] the op:
--   take OWN_MS      -> {1, bid, state, token, fresh, class, model, n, api_id,
--                        submit_ms, sent_n, poll_ms, cancel, now, nonce} or
--                       {0, ms until the next is due (-1 none)}
--   items BID I...   -> {now, then per item: lease, raw job ("" when its
--                       lease is gone), admitted_ms, attempt}
--   submitted BID TOKEN API_ID -> 1; 0 the API id is another batch's; -1 fenced
--   sending BID TOKEN N NONCE OWN -> now (a POST of N requests goes, its
--                       custom_ids NONCE-N; the hold runs OWN ms from now); -1
--   unadopt BID TOKEN          -> 1 (the API batch adopted was another's)
--   polled BID TOKEN STATUS COUNTS -> 1 (ended: results next); -1 fenced
--   later BID TOKEN MS [UNSENT [HOLD [GUESS]]] -> 1 (try again in MS; UNSENT
--                       1: the POST was refused, nothing created; HOLD: a 429,
--                       the whole lane waits, fleet-wide (1), or the creates
--                       of the batch's class (2), MS as the API said, or
--                       doubling while it refuses when GUESS is 1: it said
--                       no retry-after); -1 fenced
--   finish BID TOKEN           -> jobs put back (items without a result)
--   list                       -> {bid, record pairs as a flat list, ...}
--   cancel BID                 -> 1; 0 no such batch
local op = ARGV[1]
local now = nowMs()
local POLL_MAX = 300000
local BATCH_HORIZON_MS = 36 * 3600000
local FIRST_MAX = 3                 -- refusals before the first batch gives up its place
local ROOM_MEMORY_MS = 300000       -- how long a refusal for room is remembered
local function pollMin() return tonumber(loadLimits().batch_poll) end

local function rec(bid) return K.batches .. ':' .. bid end

-- The token check: the caller's take is the batch's latest.
local function fenced(bid, token)
    return rcall('HGET', rec(bid), 'token') ~= token
end

-- A batch not yet sent (a create refused stays `submitting`, its POST
-- known not to have created anything).
local function unsent(state) return state == 'sealed' or state == 'submitting' end

-- The API's queue of batch requests (per class) after a create refused for
-- room: `CLASS|broom_t` the refusal's time, `CLASS|broom` the most requests
-- of ours it took into the queue at once since (ours processing plus the
-- new batch). A batch's requests are in it while it is submitted, or
-- submitting with a POST out (held: its record's state, class, n,
-- submit_ms). queued(cls): all of ours in it now, the live batches scanned
-- once a class per call (take asks for each due batch it skips).
local function fields(b) return rcall('HMGET', rec(b), 'state', 'class', 'n', 'submit_ms') end
local function held(v, cls)
    if v[2] == cls and (v[1] == 'submitted' or (v[1] == 'submitting' and v[4])) then
        return tonumber(v[3]) or 0
    end
    return 0
end
local inQueue = {}
local function queued(cls)
    local n = inQueue[cls]
    if not n then
        n = 0
        for _, b in ipairs(rcall('ZRANGEBYSCORE', K.batches, '-inf', '+inf')) do
            n = n + held(fields(b), cls)
        end
        inQueue[cls] = n
    end
    return n
end

-- A create of batch b waits for room: a refusal for room is recent, ours
-- hold requests in the queue (b's own, a POST out, aside), and these with
-- b's pass the most it took.
local function roomWait(b)
    local v = fields(b)
    local c = v[2]
    if not c then return false end
    local r = rcall('HMGET', K.state, cf(c, 'broom_t'), cf(c, 'broom'))
    if tonumber(r[1] or 0) < now - ROOM_MEMORY_MS or not r[2] then return false end
    local q = queued(c) - held(v, c)
    return q > 0 and q + (tonumber(v[3]) or 0) > tonumber(r[2])
end

-- A create refused (a 429 for its POST) holds the creates of its batch's
-- class (`CLASS|bhold`, until then; `_ms`, the hold's length, for the
-- guess that doubles) and keeps that batch's place (`CLASS|bfirst`): the
-- API's queue of batch requests is per model class, so the other classes'
-- creates go on. Were the 429 the endpoints' rate instead, their next
-- create is refused too and holds its class: one refused POST a class,
-- nothing created, where a hold of every class stopped a class with room
-- for the whole retry-after (60 s and more) behind another's full queue.
-- `batch_hold_send`, written by a version before, holds every class.
-- sendHold(c, old): class c's {hold, first, firstDue}, read once a call.
local holds = {}
local function sendHold(c, old)
    local h = holds[c]
    if h then return h end
    local v = rcall('HMGET', K.state, cf(c, 'bhold'), cf(c, 'bfirst'))
    h = {hold = math.max(old, tonumber(v[1] or 0))}
    if v[2] then
        if unsent(rcall('HGET', rec(v[2]), 'state')) then
            h.first, h.firstDue = v[2], tonumber(rcall('ZSCORE', K.batches, v[2]))
        else
            rcall('HDEL', K.state, cf(c, 'bfirst'))
        end
    end
    holds[c] = h
    return h
end

if op == 'take' then
    local own = tonumber(ARGV[2])
    -- The batch endpoints said 429: the lane waits, fleet-wide (a create
    -- refused: only the creates of its class wait, above).
    local hv = rcall('HMGET', K.state, 'batch_hold', 'batch_hold_send')
    local hold, old = tonumber(hv[1] or 0), tonumber(hv[2] or 0)
    if hold > now then return {0, hold - now} end
    -- The first batch of a class a create refused for room goes before any
    -- younger one of its class is sent: else the small batches formed
    -- during the hold take the room at its end, and a large one is refused
    -- again each time (a batch of the queue's size, never sent). After
    -- FIRST_MAX refusals it gives up its place (it may never fit).
    local due = rcall('ZRANGEBYSCORE', K.batches, '-inf', now, 'LIMIT', 0, 200)
    local bid, blocked, heldTo = nil, {}, nil
    for _, b in ipairs(due) do
        local v = rcall('HMGET', rec(b), 'state', 'class')
        local stt = v[1]
        if stt == 'submitted' or stt == 'ended' or not stt then
            bid = b
            break
        end
        local h = sendHold(v[2] or '', old)
        if h.hold <= now then
            if (not h.first or b == h.first) and not roomWait(b) then
                bid = b
                break
            end
            blocked[#blocked + 1] = h
        elseif not heldTo or h.hold < heldTo then
            heldTo = h.hold
        end
    end
    for _, h in ipairs(blocked) do
        if bid then break end
        if h.firstDue and h.firstDue <= now and not roomWait(h.first) then bid = h.first end
    end
    if not bid then
        local f = rcall('ZRANGEBYSCORE', K.batches, '(' .. now, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
        local next = f[2] and math.max(0, tonumber(f[2]) - now) or -1
        if heldTo and (next < 0 or heldTo - now < next) then next = heldTo - now end
        -- waiting for a first's send, or for room: a poll's time at most
        for _, h in ipairs(blocked) do
            local w = h.firstDue and math.max(0, h.firstDue - now) or pollMin()
            if w > pollMin() then w = pollMin() end
            if next < 0 or w < next then next = w end
        end
        return {0, next}
    end
    local h = loadHash(rec(bid))
    if not h.state then
        rcall('ZREM', K.batches, bid)
        return {0, 0}
    end
    local token = tostring(rcall('HINCRBY', rec(bid), 'token', 1))
    local fresh = 0
    if h.state == 'forming' then
        if rcall('HGET', K.batchform, h.class) == bid then rcall('HDEL', K.batchform, h.class) end
        h.state = 'sealed'
        rcall('HSET', rec(bid), 'sealed_ms', now)
    end
    if h.state == 'sealed' and h.cancel ~= '1' then
        h.state = 'submitting'
        rcall('HSET', rec(bid), 'state', 'submitting')
        fresh = 1
    else
        rcall('HSET', rec(bid), 'state', h.state)
    end
    rcall('ZADD', K.batches, now + own, bid)
    return {1, bid, h.state, token, fresh, h.class, h.model or '', tonumber(h.n) or 0,
            h.api_id or '', h.submit_ms or '', h.sent_n or '0', h.poll_ms or '',
            h.cancel or '0', now, h.nonce or ''}
end

if op == 'items' then
    local bid = ARGV[2]
    local key = rec(bid) .. ':items'
    local out = {now}
    local attIds, lostIds = {}, {}
    local anyAtt = rcall('EXISTS', K.attempts, K.lost) > 0
    for i = 3, #ARGV do
        local lid = rcall('LINDEX', key, tonumber(ARGV[i]) - 1)
        local raw, t, att = '', '', 1
        if lid and rcall('ZSCORE', K.leases, lid) then
            local r = reservation(rcall('HGET', K.reserv, lid) or '')
            raw = leaseJob(lid) or ''
            if r then
                reservationSnap(r)
                t = istr(r.t)
                if anyAtt then
                    att = (tonumber(rcall('HGET', K.attempts, r.id)) or 0) +
                          (tonumber(rcall('HGET', K.lost, r.id)) or 0) + 1
                end
            end
        end
        out[#out + 1] = lid or ''
        out[#out + 1] = raw
        out[#out + 1] = t
        out[#out + 1] = att
    end
    return out
end

if op == 'list' then
    local out = {}
    for _, bid in ipairs(rcall('ZRANGEBYSCORE', K.batches, '-inf', '+inf')) do
        out[#out + 1] = bid
        out[#out + 1] = rcall('HGETALL', rec(bid))
        out[#out + 1] = tostring(rcall('ZSCORE', K.batches, bid) or '')
    end
    return {now, out}
end

if op == 'cancel' then
    local bid = ARGV[2]
    if rcall('EXISTS', rec(bid)) == 0 then
        bid = rcall('HGET', K.batchapi, ARGV[2])
        if not bid then return 0 end
    end
    rcall('HSET', rec(bid), 'cancel', '1')
    if rcall('HGET', K.batchform, rcall('HGET', rec(bid), 'class') or '') == bid then
        rcall('HDEL', K.batchform, rcall('HGET', rec(bid), 'class'))
        rcall('HSET', rec(bid), 'state', 'sealed')
    end
    rcall('ZADD', K.batches, now, bid)
    return 1
end

local bid, token = ARGV[2], ARGV[3]
if fenced(bid, token) then return -1 end
local key = rec(bid)

if op == 'submitted' then
    local api = ARGV[4]
    local owner = rcall('HGET', K.batchapi, api)
    if owner and owner ~= bid then return 0 end
    rcall('HSET', K.batchapi, api, bid)
    local p = pollMin()
    rcall('HSET', key, 'state', 'submitted', 'api_id', api, 'poll_ms', p, 'submitted_ms', now)
    local c = rcall('HGET', key, 'class')
    local r = c and rcall('HMGET', K.state, cf(c, 'broom_t'), cf(c, 'broom'))
    if r and tonumber(r[1] or 0) >= now - ROOM_MEMORY_MS then
        local took = queued(c)        -- (this batch, submitted now, among them)
        if not r[2] or took > tonumber(r[2]) then rcall('HSET', K.state, cf(c, 'broom'), took) end
    end
    rcall('ZADD', K.batches, now + p, bid)
    -- The items' leases run 36 h from now: the API ends a batch within 24 h
    -- of its creation, however long it waited to be sent.
    local z, exp = {}, istr(now + BATCH_HORIZON_MS)
    for _, lid in ipairs(rcall('LRANGE', key .. ':items', 0, -1)) do
        z[#z + 1] = exp
        z[#z + 1] = lid
    end
    if #z > 0 then
        for i = 1, #z, 1000 do
            rcall('ZADD', K.leases, 'XX', unpack(z, i, math.min(i + 999, #z)))
        end
    end
    return 1
end

if op == 'sending' then
    rcall('HINCRBY', key, 'submits', 1)
    rcall('HSET', key, 'submit_ms', now, 'sent_n', ARGV[4], 'nonce', ARGV[5])
    rcall('ZADD', K.batches, now + tonumber(ARGV[6]), bid)    -- the hold, from now
    return now
end

if op == 'unadopt' then
    -- Its results were another POST's (another nonce): that API batch is
    -- nobody's here, and the batch looks for its own again.
    local api = rcall('HGET', key, 'api_id')
    if api then rcall('HSET', K.batchapi, api, '-') end
    rcall('HDEL', key, 'api_id', 'counts')
    rcall('HSET', key, 'state', 'submitting')
    rcall('ZADD', K.batches, now, bid)
    return 1
end

if op == 'polled' then
    rcall('HSET', key, 'counts', ARGV[5], 'polled_ms', now)
    if ARGV[4] == 'ended' then
        rcall('HSET', key, 'state', 'ended', 'ended_ms', now)
        return 1
    end
    local p = tonumber(rcall('HGET', key, 'poll_ms')) or pollMin()
    rcall('ZADD', K.batches, now + p, bid)
    p = p * 2
    if p > POLL_MAX then p = POLL_MAX end
    rcall('HSET', key, 'poll_ms', p)
    return 0
end

if op == 'later' then
    local ms = tonumber(ARGV[4])
    if ARGV[5] == '1' then
        -- Refused (429): nothing was created; the next try need not look
        -- for it at the API.
        rcall('HDEL', key, 'submit_ms', 'sent_n')
    end
    if ARGV[6] == '1' or ARGV[6] == '2' then
        -- A 429 of the batch endpoints: the whole lane (1: a rate limit of
        -- the endpoints) or the creates of the batch's class (2: a create
        -- refused, maybe for the class's queue of requests processing)
        -- wait ms: the API's retry-after, or without one a guess doubled
        -- while it keeps refusing (up to 5 minutes).
        local c = ARGV[6] == '2' and (rcall('HGET', key, 'class') or '')
        local f = c and cf(c, 'bhold') or 'batch_hold'
        local v = rcall('HMGET', K.state, f, f .. '_ms', c and cf(c, 'bfirst') or 'batch_first')
        local held, last = tonumber(v[1] or 0), tonumber(v[2] or 0)
        if ARGV[7] == '1' and held > now - 60000 and last > 0 then
            ms = math.max(ms, math.min(last * 2, POLL_MAX))     -- (no retry-after given)
        end
        rcall('HSET', K.state, f, now + ms, f .. '_ms', ms)
        if c then
            -- A create refused: the first such batch of its class goes
            -- first at the end of the hold (take), up to FIRST_MAX
            -- refusals; what the queue took before is no longer known.
            rcall('HSET', K.state, cf(c, 'broom_t'), now)
            rcall('HDEL', K.state, cf(c, 'broom'))
            local n, fs = rcall('HINCRBY', key, 'refused', 1), nil
            if v[3] and v[3] ~= bid then fs = rcall('HGET', rec(v[3]), 'state') end
            if v[3] == bid and n >= FIRST_MAX then
                rcall('HDEL', K.state, cf(c, 'bfirst'))
            elseif not unsent(fs) and n < FIRST_MAX then
                rcall('HSET', K.state, cf(c, 'bfirst'), bid)
            end
        end
    end
    rcall('ZADD', K.batches, now + ms, bid)
    return 1
end

if op == 'finish' then
    -- Items without a result (the API returned none for them, or the batch
    -- never went: canceled before it was sent) go back to the queue, their
    -- reservations given back at no cost.
    local lids = rcall('LRANGE', key .. ':items', 0, -1)
    local back, ended, ids, freed = {}, {}, {}, 0
    for _, lid in ipairs(lids) do
        if rcall('ZSCORE', K.leases, lid) then
            local raw = leaseJob(lid)
            if raw then back[#back + 1] = raw end
            local r = reservation(rcall('HGET', K.reserv, lid) or '')
            if r then
                freed = freed + r.cost
                ids[#ids + 1] = r.id
                rcall('HDEL', K.reserv, lid)
            end
            ended[#ended + 1] = lid
        end
    end
    if #back > 0 then bulk('RPUSH', K.jobs, back, 1); reenter(#back) end
    if #ids > 0 then bulk('HDEL', K.live, ids, 1) end
    incr(K.state, 'reserved', 0 - freed)
    if #ended > 0 then bulk('ZREM', K.leases, ended, 1); leasesEnded(ended) end
    local api = rcall('HGET', key, 'api_id')
    if api then rcall('HDEL', K.batchapi, api) end
    local c = rcall('HGET', key, 'class')
    if c and rcall('HGET', K.batchform, c) == bid then rcall('HDEL', K.batchform, c) end
    rcall('DEL', key, key .. ':items')
    rcall('ZREM', K.batches, bid)
    incr(K.stats, 'batches_done', 1)
    return #back
end

return redis.error_reply('batch: unknown op ' .. tostring(op))
