-- lease.lua (library) — leases, their claims and their reservations.
--
-- The raw jobs of a claim stay in Redis, never passing through Lua: the
-- claim moves them from the queue into its own list `claimed:PREFIX` with
-- SORT .. BY nosort .. STORE (a copy inside Redis) and LTRIM, and the worker
-- reads that list with LRANGE. Lease id PREFIX .. i is the job at index
-- i - 1; the `claimed` hash counts each claim's leases not yet ended, and a
-- claim's list goes when its count reaches 0.

local function leaseParts(lid)
    local p, i = string.match(lid, '^(.*:)(%d+)$')
    return p, tonumber(i)
end

-- The raw job of a lease (nil when gone).
local function leaseJob(lid)
    local p, i = leaseParts(lid)
    if not p then return nil end
    return rcall('LINDEX', K.claimed .. ':' .. p, i - 1) or nil
end

-- Leases ended (settled, dropped, reaped): their claims' counts go down.
local function leasesEnded(lids)
    local per = {}
    for _, lid in ipairs(lids) do
        local p = leaseParts(lid)
        if p then per[p] = (per[p] or 0) + 1 end
    end
    for p, n in pairs(per) do
        if rcall('HINCRBY', K.claimed, p, -n) <= 0 then
            rcall('HDEL', K.claimed, p)
            rcall('DEL', K.claimed .. ':' .. p)
        end
    end
end

-- A reservation, as admission writes it for each request it lets go:
-- "class,in,out,cost,t_ms,r_cum,i_cum,o_cum,o_done,raw,max_tokens,prefix,
-- cache_1h,id": the model class ('b:' CLASS for a job of the Batch lane:
-- its cost reserved at the batch price, nothing charged to buckets or
-- in-flight counts); the tokens charged to the input and output
-- buckets and the worst-case cost (micro-USD) reserved; when it was admitted
-- and the class's charge counters (o_done: output reported) as the
-- admission call found them (its batch counts as charged after it);
-- the worker's raw input estimate, max_tokens, the prompt prefix hash and
-- its 1-hour flag (for learning); the job id (last: it may hold commas).
-- Returns a table, or nil for a string in another format; the admission
-- snapshot (t_ms and the counters) stays a string until reservationSnap
-- reads it (only an observed record needs it).
local RES_PAT = '^([^,]*),(%-?%d+),(%-?%d+),(%-?%d+),(%-?%d+,%-?%d+,%-?%d+,%-?%d+,%-?%d+[/%d]*),' ..
                '(%-?%d+),(%-?%d+),([^,]*),(%d),(.*)$'
local function reservation(s)
    local c, i, o, cost, snap, raw, mt, px, h1, id = string.match(s, RES_PAT)
    if not c then return nil end
    cost = tonumber(cost)
    if cost < 0 then cost = 0 end
    return {class = c, i = tonumber(i), o = tonumber(o), cost = cost, snap = snap,
            raw = tonumber(raw), max_tokens = tonumber(mt), prefix = px,
            cache_1h = h1 == '1', id = id, batch = string.sub(c, 1, 2) == 'b:'}
end

-- Reservation string s with its admission snapshot replaced (a follower's
-- gets its own charges and its uncertainty when it is sent).
local function reservationResnap(s, snap)
    local head, tail = string.match(s, '^([^,]*,%-?%d+,%-?%d+,%-?%d+,)%-?%d+,%-?%d+,%-?%d+,%-?%d+,%-?%d+[/%d]*(,.*)$')
    if not head then return s end
    return head .. snap .. tail
end

-- A follower's charges (reservation r) leave its class's b_pend; sent (or
-- maybe sent: reaped), they are charged to b_cum from now on. d: the
-- class's counter deltas, written by the caller.
local function followerCharges(d, r, sent)
    local x = {r = 1, i = r.i, o = r.o}
    for b, n in pairs(x) do
        d[b .. '_pend'] = (d[b .. '_pend'] or 0) - n
        if sent then d[b .. '_cum'] = (d[b .. '_cum'] or 0) + n end
    end
end

-- The admission snapshot of a reservation: t (ms), cum {r, i, o}, o_done,
-- and for a follower sent, unc {r, i, o} (its charges' counters) and
-- unc.od (o_done): what was charged between its admission and its leader's
-- record, which its reading may hold or not ("/ur/ui/uo/uod" after o_done).
local function reservationSnap(r)
    local t, rc, ic, oc, od, u = string.match(r.snap, '^(%-?%d+),(%-?%d+),(%-?%d+),(%-?%d+),(%-?%d+)(.*)$')
    r.t, r.o_done = tonumber(t), tonumber(od)
    r.cum = {r = tonumber(rc), i = tonumber(ic), o = tonumber(oc)}
    local ur, ui, uo, uod = string.match(u or '', '^/(%d+)/(%d+)/(%d+)/(%d+)$')
    r.unc = ur and {r = tonumber(ur), i = tonumber(ui), o = tonumber(uo), od = tonumber(uod)} or nil
    return r
end

-- Redis itself stopped (a stalled VM, a long fork, a healed partition) or
-- its clock stepped: every lease looks expired, though live workers would
-- have renewed them. `tick` is the Redis time of the last renew or reap (a
-- live fleet writes it at least every lease_ms / 3); a gap over half a
-- lease, or time going back, holds reaping for one lease period from now:
-- time for every live worker to renew. Returns true on such a gap.
local function fleetTick(now, leaseMs)
    local last = tonumber(rcall('HGET', K.state, 'tick') or now)
    rcall('HSET', K.state, 'tick', now)
    if now - last > leaseMs / 2 or now < last then
        local until_ = math.max(now + leaseMs, tonumber(rcall('HGET', K.state, 'reap_after') or 0))
        rcall('HSET', K.state, 'reap_after', until_)
        return true
    end
    return false
end

-- st: the state hash as the caller loaded it (nil: read the field).
local function reapHeld(now, st)
    local ra = st and st.reap_after or (not st and rcall('HGET', K.state, 'reap_after'))
    return now < (tonumber(ra) or 0)
end

-- In flight across the fleet: admitted leases not yet expired (all of them
-- while reaping is held: expiry means nothing then).
local function inFlight(now, st)
    if reapHeld(now, st) then return rcall('ZCARD', K.inflight) end
    return rcall('ZCOUNT', K.inflight, '(' .. istr(now), '+inf')
end
