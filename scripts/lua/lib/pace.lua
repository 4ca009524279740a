-- pace.lua (library) — a class's pacing as admission sees it, one rule
-- for admission and for the claim (which looks at a due parked job the
-- same way before it hands the job to a worker: lib/claim.lua). pacer(st,
-- l, now) reads the class's state on first use (classState), a job's
-- needs, the wait its class's buckets set (paceWait), and where a job
-- that must wait parks (parkDue); C holds the classes read, newClasses
-- those not yet in state.classes.
local PARK_MIN_MS = 250
local PARK_HORIZON_MS = 2000
-- A class's line moves in steps (lib/claim.lua): when its head must wait,
-- the line slips by the refill of LINE_STEP.jobs jobs of the class's mean
-- needs, within [LINE_STEP.min, LINE_STEP.max] ms; its early look comes at
-- most once a step. A step's jobs go through one claim, one admission and
-- one settle, so a slow refill (600 requests a minute: 2.5 jobs in 250 ms)
-- no longer costs three script calls for every two or three jobs. At most
-- a second: a per-minute limit may be enforced over shorter intervals (60
-- RPM as 1 per second), and a step's jobs go out together; 16 jobs (was
-- 8: 800 ms at 600 RPM, 1 s now) when the refill is faster.
local LINE_STEP = {jobs = 16, min = 250, max = 1000}
-- A class's burst (max_burst, ms): however full its buckets, what its
-- requests use goes out at their refill rate, at most max_burst's refill
-- at once: the docs allow a limit per minute to be enforced over shorter
-- intervals (60 RPM as 1 per second), a bucket the headers do not show.
-- Per bucket b, GCRA: CLASS|b_tat (ms) is when the refill has caught up
-- with what admission sent; a job goes when b_tat, moved by its use, is
-- at most 0.9 x max_burst ahead of now (a tenth kept for the spread of
-- the requests' arrivals; a job bigger than that goes when b_tat is that
-- tenth, or the part of it the job leaves, behind now, and moves it by
-- all its use: counted as the burst, 60 requests a minute went 0.9 s apart
-- against a bucket of one a second). Requests and input only, charged
-- as a request goes: output is charged at the answer under the 2026
-- rule, by a length no client knows (answers averaging 150 tokens
-- overdraw a per-second bucket of 300 by their spread, whatever is sent),
-- and held at max_tokens for a latency under the 2025 rule. A line's step
-- is then at most that less 100 ms (800 ms by default): a step's claim or
-- admission up to 100 ms late loses no refill (with steps as long as the
-- burst, each step's lateness was refill lost for good: the buckets stay
-- full while the burst binds).

-- A parked job's member of `parked` (score 0): CLASS|PLACE|LEASE, PLACE
-- its place in its class's line (ms, zero-padded: the members sort by
-- class, then place; lib/claim.lua); and back, its class and place.
local PARKED_PLACE = '%015d'
local function parkedId(c, place, lid)
    if place < 0 then place = 0 end
    return c .. '|' .. string.format(PARKED_PLACE, math.floor(place)) .. '|' .. lid
end
local function parkedOf(id)
    local c, p = string.match(id, '^([^|]*)|(%-?%d+)|')
    return c, tonumber(p)
end

local function pacer(st, l, now)
    local rule = l.output_rule
    local pct = string.match(l.soft_token_floor, '%%$') ~= nil
    local burstMax = tonumber(l.max_burst) or 0
    local burst = burstMax * 0.9
    local classCeil = parseMap(l.class_max_in_flight)
    local nowS = string.format('%d', now)
    -- A wait of the fleet's latency spread over n, within [10, 1000] ms.
    local function shortWait(n)
        local w = (tonumber(st.ewma_ms) or 1000) / (n > 0 and n or 1)
        if w < 10 then w = 10 elseif w > 1000 then w = 1000 end
        return math.ceil(w)
    end

    -- What n requests of class k holding `held` output tokens give back at
    -- their answers (lib/bucket.lua).
    local function giveBack(k, held, n) return holdsBack(held, n, k.oq, k.eo) end

    -- A class's state as this call sees it, read on first use.
    local C, newClasses = {}, {}
    local function classState(c)
        local k = C[c]
        if k then return k end
        local function get(f) return st[cf(c, f)] end
        k = {c = c, est = {}, lim = {}, soft = {}, cum = {}, add = {r = 0, i = 0, o = 0},
             pend = {r = 0, i = 0, o = 0}, n = 0, nf = 0, pause = pauseNow(st, now, c), observed = get('observed'),
             inflight = tonumber(get('n_inflight')) or 0, cal = tonumber(get('cal')) or 1,
             oq = tonumber(get('oq')) or 1, o_done = tonumber(get('o_done')) or 0,
             eo = tonumber(get('ewma_out')),
             ei = tonumber(get('ewma_in')),
             ceiling = tonumber(classCeil[c]), tail = tonumber(get('park_tail')) or 0,
             slip = tonumber(get('park_slip')) or 0, lookAt = tonumber(get('look_at')) or 0,
             tat = {}, tat0 = {}}
        k.tail0, k.slip0, k.lookAt0 = k.tail, k.slip, k.lookAt
        -- Under output_rule=reserve the API holds max_tokens of every request
        -- in flight and gives back the unproduced part at its answer: what the
        -- class's requests in flight will give back (giveBack), which the
        -- pacing waits for instead of the refill when it is enough.
        k.back = 0
        if rule ~= 'actual' then k.back = giveBack(k, tonumber(get('o_inflight')) or 0, k.inflight) end
        k.probeDue = k.pause and k.pause.probe
        -- The reservations' admission snapshot: the class's charge counters as
        -- this call found them (so the call's own charges count as charged
        -- after each of its requests: conservative by one batch).
        k.snap = nowS .. ',' .. istr(tonumber(get('r_cum')) or 0) .. ',' ..
                 istr(tonumber(get('i_cum')) or 0) .. ',' .. istr(tonumber(get('o_cum')) or 0) ..
                 ',' .. istr(k.o_done)
        for _, b in ipairs(BUCKETS) do
            k.est[b], k.lim[b] = bucketEstimate(get, b, now, rule)
            k.soft[b] = 0
            if k.est[b] and (b ~= 'r' or pct) then k.soft[b] = floorOf(l.soft_token_floor, k.lim[b]) end
            k.cum[b] = tonumber(get(b .. '_cum')) or 0
            k.tat[b] = tonumber(get(b .. '_tat')) or 0
            k.tat0[b] = k.tat[b]
        end
        if l.ceiling == 'auto' then
            -- Little's law: the rate the class's limits allow x latency.
            local lat, rate = tonumber(st.ewma_ms), nil
            local per = {r = 1, i = tonumber(get('ewma_in')), o = k.eo}
            for _, b in ipairs(BUCKETS) do
                if k.lim[b] and per[b] and per[b] > 0 then
                    local r = k.lim[b] / REFILL_MS / per[b]
                    if not rate or r < rate then rate = r end
                end
            end
            if lat and rate then
                local a = math.ceil(rate * lat * 1.2) + 1
                if not k.ceiling or a < k.ceiling then k.ceiling = a end
            end
        end
        if not string.find(',' .. (st.classes or '') .. ',', ',' .. c .. ',', 1, true) then
            newClasses[#newClasses + 1] = c
        end
        C[c] = k
        return k
    end

    -- The prompt prefixes (hashes) the API reported cached, among pfx:
    -- prefix -> tokens the API holds (reads do not count toward the input
    -- limit), for needs.
    local cached = {}
    local function loadCached(pfx)
        if #pfx == 0 then return end
        local got = rcall('HMGET', K.cache, unpack(pfx))
        for i, v in ipairs(pfx) do
            local tok, exp = string.match(got[i] or '', '^(%d+),(%d+)$')
            if tok and tonumber(exp) > now then cached[v] = tonumber(tok) end
        end
    end

    -- The job's needs in class k: r, i, o, each capped at the bucket.
    local function needs(k, raw, mt, prefix)
        local inp = math.ceil(raw * k.cal) - (cached[prefix] or 0)
        if inp < 1 then inp = 1 end
        local out = mt
        if rule == 'actual' then out = math.ceil(k.oq * mt) end
        local need = {r = 1, i = inp, o = out}
        for _, b in ipairs(BUCKETS) do
            if k.lim[b] and need[b] > k.lim[b] then need[b] = k.lim[b] end
        end
        return need
    end

    -- How long the class's buckets take to refill what this job uses: its
    -- needs, but for output what it is expected to produce, not the max_tokens
    -- held while it runs (output_rule=reserve) nor the high quantile charged
    -- for it (oq x max_tokens, a safety margin learned down from 1 over tens
    -- of answers): the class's mean output when known. Spaced by the quantile,
    -- parked jobs came back at a fraction of the rate the bucket serves (4.8 s
    -- apart for 150-token answers of max_tokens 2048 while oq was 0.7) and
    -- the fleet idled with the bucket full.
    local function spacing(k, need)
        local t = 0
        for _, b in ipairs(BUCKETS) do
            if k.lim[b] then
                local use = need[b]
                if b == 'o' then
                    if rule ~= 'actual' then use = use * k.oq end
                    if k.eo and k.eo > 0 and k.eo < use then use = k.eo end
                end
                local x = use / (k.lim[b] / REFILL_MS)
                if x > t then t = x end
            end
        end
        return t
    end

    -- Class k's line step (ms, above): its mean job is a request, and the
    -- input and output its answers averaged (nothing known yet: the request
    -- alone), whatever the output rule holds while it runs.
    local function lineStep(k)
        if not k.step then
            local mean, t = {r = 1, i = k.ei or 0, o = k.eo or 0}, 0
            for _, b in ipairs(BUCKETS) do
                if k.lim[b] then
                    local x = mean[b] / (k.lim[b] / REFILL_MS)
                    if x > t then t = x end
                end
            end
            t = LINE_STEP.jobs * t
            local max = LINE_STEP.max
            if burst > 0 and burst - 100 < max then max = math.max(burst - 100, burst / 2) end
            if t > max then t = max end
            if t < LINE_STEP.min and LINE_STEP.min <= max then t = LINE_STEP.min end
            k.step = math.ceil(t)
        end
        return k.step
    end

    -- Where a job of class k that must wait at least wait ms parks: behind
    -- the class's other waiting jobs, but never past PARK_HORIZON_MS beyond its
    -- own wait: there it is looked at again, with the estimates of that time.
    -- Moves the class's tail past it.
    local function parkDue(k, wait, need)
        local due = now + wait
        local tail = math.min(k.tail, due + PARK_HORIZON_MS)
        if tail > due then due = tail end
        k.tail = due + spacing(k, need)
        return due
    end

    -- How long until class k's bucket b may send a job of needs need
    -- within its burst (0: now). A job of more than the burst goes once
    -- the refill has caught up (b_tat) by the rest of it too, up to
    -- max_burst (the API's bucket full, less the tenth kept), and moves
    -- b_tat by all of it: at 60 requests a minute, one every 1.1 s (a
    -- second apart, one arrival in 30 came early enough to draw a 429
    -- from a bucket of one a second).
    local function burstWait(k, b, need)
        if burst <= 0 or b == 'o' then return 0 end
        local t = k.tat[b] + math.min(burstUse(b, need[b], k.lim[b]), burstMax)
        return t - now > burst and t - now - burst or 0
    end

    -- How long class k's buckets need to hold need over the soft floor (0:
    -- they do now), which bucket says so, and whether the wait is for the
    -- holds in flight to come back (soon: the job waits in its slot, not
    -- behind the class's parked jobs); or, when they do, for the burst.
    local function paceWait(k, need)
        local wait, why, soon = 0, nil, false
        for _, b in ipairs(BUCKETS) do
            local wb = k.est[b] and burstWait(k, b, need) or 0
            if wb > wait then
                wait, soon = wb, false
                why = k.c .. ': pacing, ' .. BUCKET_NAME[b] .. ' bucket at its burst (max_burst)'
            end
            if k.est[b] then
                local w = bucketWait(k.est[b], k.lim[b], need[b], k.soft[b])
                if w > 0 and k.inflight + k.n > 0 then
                    -- Under zero the estimate counts requests in flight twice
                    -- (the reading taken at admission, when the API stamped
                    -- at the answer): the API's bucket is never below empty,
                    -- and their answers bring fresh readings; so no wait past
                    -- a refill from empty while some are in flight.
                    local cap = bucketWait(0, k.lim[b], need[b], k.soft[b])
                    if w > cap then w = cap end
                end
                local back = false
                if w > 0 and b == 'o' and k.back > 0 then
                    -- The holds in flight give back within a latency; the
                    -- refill adds the rest meanwhile.
                    local wb = bucketWait(k.est[b] + k.back, k.lim[b], need[b], k.soft[b])
                    if wb <= (tonumber(st.ewma_ms) or 1000) then
                        -- Enough within a latency: look again soon, in the
                        -- slot, rather than wait for the refill.
                        local q = shortWait(4)
                        if q > 200 then q = 200 end
                        if q < w then w, back = q, true end
                    elseif wb < w then
                        w = wb
                    end
                end
                if w > wait then
                    wait, soon = w, back
                    why = k.c .. ': pacing, ' .. BUCKET_NAME[b] .. ' bucket under the soft floor'
                end
            end
        end
        return wait, why, soon
    end
    -- A job of class k with needs need that goes (admission's go) or is
    -- handed out by the claim's look: taken from the estimate, and, a
    -- request of its own (not a follower, which takes its leader's unit),
    -- counted in flight with the holds it gives back under
    -- output_rule=reserve (the look without them: the next head saw the
    -- bucket emptied by a hold that comes back within a latency and slipped
    -- the line by the refill's seconds).
    local function take(k, need, follower)
        for _, b in ipairs(BUCKETS) do
            if k.est[b] then
                k.est[b] = k.est[b] - need[b]
                if burst > 0 and b ~= 'o' then k.tat[b] = math.max(k.tat[b], now) + burstUse(b, need[b], k.lim[b]) end
            end
        end
        if follower then return end
        if rule ~= 'actual' then k.back = k.back + giveBack(k, need.o, 1) end
        k.n = k.n + 1
    end
    -- The classes' tails, slips and early looks this call moved, into
    -- set (a state Writer's fields: util.lua); and, sent (admission: the
    -- claim's look only judges), their bursts.
    local function saveTails(set, sent)
        for c, k in pairs(C) do
            if k.tail ~= k.tail0 then set[cf(c, 'park_tail')] = istr(k.tail) end
            if k.slip ~= k.slip0 then set[cf(c, 'park_slip')] = istr(k.slip) end
            if k.lookAt ~= k.lookAt0 then set[cf(c, 'look_at')] = istr(k.lookAt) end
            if sent then
                for _, b in ipairs(BUCKETS) do
                    if k.tat[b] ~= k.tat0[b] then set[cf(c, b .. '_tat')] = istr(math.ceil(k.tat[b])) end
                end
            end
        end
    end
    return {C = C, newClasses = newClasses, saveTails = saveTails, shortWait = shortWait,
            classState = classState, loadCached = loadCached, needs = needs,
            spacing = spacing, lineStep = lineStep, parkDue = parkDue, paceWait = paceWait, take = take}
end
