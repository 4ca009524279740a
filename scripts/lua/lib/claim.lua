-- claim.lua (library) — claim up to n jobs into leases (claim.lua, and
-- settle.lua when it claims for the slots it frees). The jobs go to the
-- list K.list (K.claimed .. ':' .. prefix; prefix ends in ':'). l, st:
-- limits and state as read by the caller.
-- Returns the claim reply (CR): {now, wait_ms, reason[, n]}: n jobs
-- claimed, lease ids prefix .. 1 to prefix .. n (the caller knows the
-- prefix); wait_ms > 0: nothing claimed, ask again after it.
-- Parked jobs form one line per model class, in one set: every `parked`
-- score is 0 and a member is CLASS|PLACE|LEASE (PLACE zero-padded ms,
-- parkedId in lib/pace.lua), so a class's line is a lexical range, in
-- order of place. A job is due at its place plus its class's slip (state
-- CLASS|park_slip, ms): when the line's head falls due and must still
-- wait, the whole line slips (one field), never its jobs one by one.
-- (Parked again each, 2 s ahead as admission parks, a 30 s backlog was
-- looked at again every 2 s: 67 us of Redis's CPU per paced job went to
-- looking. Scored by place in one order, the lines of two classes with
-- different slips interleaved, and a class's due jobs could sit behind
-- another's hundred that were not.)
--
-- A claim looks at each class's due jobs, the class whose head fell due
-- first first, by admission's own pacing rule (lib/pace.lua) and what
-- admission knew of their needs (`parkedneed`): one its class has room
-- for is handed out (its needs taken from the estimate, as admission
-- takes a job that goes), and admission decides; at the first that must
-- wait its class is done for this claim, and its line slips to that wait,
-- a step at least (lib/pace.lua's lineStep: the refill of 16 mean jobs,
-- 250 ms to 1 s; slipped by the few ms the refill lacked, a line laid at
-- the refill's pace woke a claim twice a job, 16 workers 1.1 claims per
-- job: a step takes its refill in one claim; at 250 ms a group of a
-- quarter second's refill goes through one claim, one admission and one
-- settle, 0.4-0.5 script calls a paced job at 3,000 requests a minute
-- against 0.8-1.0 at 100 ms; a fixed 500 ms made 1.3 at 16 workers).
-- A wait for the holds in flight to come back (output_rule=reserve) is
-- admission's, in a slot: that job is handed out and its class is done. A
-- job the look cannot judge (its class paused or cold, no needs kept) is
-- handed out. Pages of LOOK_PAGE, at most LOOK_MAX jobs a class. Then,
-- while slots are left, a class's next PULL_MAX jobs not yet due: one its
-- class has room for now is handed out before its time (a line laid by an
-- estimate that turned out long leaves no bucket idle), the others keep
-- their place; at most one claim per step a class looks so (`look_at`:
-- not before then): what the look hands out is charged only at its
-- admission, so every claim in between saw the same room (16 workers:
-- each job handed out 1.2 times, parked again by admission once, 5 waits
-- in slots); and a look that found no room is not worth repeating before
-- the bucket's refill of a step (counted only when it handed a job out, a
-- settle's claim between two steps built the class's pacer to look again:
-- ~25 % of a paced settle's time). Members with
-- a score (parked by a version before the lines, scored by due time) are
-- handed out when due. st: the state as the caller read it, when fresh.
local LOOK_MAX, LOOK_PAGE, PULL_MAX = 100, 8, 16
local PARKED_FACT = '^([^,]+),(%d+),(%d+),(.*)$'

-- The lexical bounds of class c's line: from its start, to places up to
-- `upto` (nil: to its end).
local function lineFrom(c) return '[' .. c .. '|' end
local function lineTo(c, upto)
    if not upto then return '(' .. c .. '|~' end
    return '(' .. c .. '|' .. string.format(PARKED_PLACE, math.floor(upto) + 1)
end
-- ... and from the places after `upto`.
local function lineAfter(c, upto)
    return '[' .. c .. '|' .. string.format(PARKED_PLACE, math.floor(upto) + 1)
end

-- Each class's line head: {c, due} for the classes with parked jobs, the
-- earliest due first; a class with none parked loses its slip (no place
-- needs it).
local function lineHeads(now, st)
    local heads = {}
    for c in string.gmatch(st.classes or '', '[^,]+') do
        local h = rcall('ZRANGEBYLEX', K.parked, lineFrom(c), lineTo(c), 'LIMIT', '0', '1')
        local slip = tonumber(st[cf(c, 'park_slip')])
        if h[1] then
            local _, place = parkedOf(h[1])
            heads[#heads + 1] = {c = c, place = place or 0, due = (place or 0) + (slip or 0)}
        elseif slip then
            rcall('HDEL', K.state, cf(c, 'park_slip'))
        end
    end
    table.sort(heads, function(a, b) return a.due < b.due end)
    return heads
end

-- Returns, when it hands out nothing, when the first parked job is due
-- (ms, Redis time: its place plus its class's slip as this call left it),
-- or nil when none is parked (an idle worker asks again then).
local function parkedDue(now, n, l, st)
    st = st or loadHash(K.state)                -- (fresh: a settle's own writes)
    -- Members with a score (parked by a version before the lines: the
    -- score is the due time; a rolling upgrade has both): handed out when
    -- due, the others moved into their class's line (with mixed scores
    -- ZRANGEBYLEX's answer is unspecified: a class's line read as empty);
    -- one without needs kept stays until handed out.
    local out, nextDue = {}, nil
    local old = rcall('ZRANGEBYSCORE', K.parked, '(0', '+inf', 'WITHSCORES', 'LIMIT', '0', istr(LOOK_MAX))
    for i = 1, #old, 2 do
        local id, due = old[i], tonumber(old[i + 1])
        if due <= now and #out < n then
            out[#out + 1] = id
            rcall('ZREM', K.parked, id)             -- (at once: no score left to mix)
        else
            local c = string.match(rcall('HGET', K.parkedneed, id) or '', '^([^,]+),')
            if c then
                local lid = string.match(id, '^[^|]*|%-?%d+|(.*)$') or id
                local nid = parkedId(c, due - (tonumber(st[cf(c, 'park_slip')]) or 0), lid)
                for _, h in ipairs({K.parkedjob, K.parkedneed}) do
                    local v = rcall('HGET', h, id)
                    if v then rcall('HSET', h, nid, v); rcall('HDEL', h, id) end
                end
                rcall('ZREM', K.parked, id)
                rcall('ZADD', K.parked, 0, nid)
            elseif not nextDue or due < nextDue then
                nextDue = due
            end
        end
    end
    local P = nil
    -- Job of class k (facts raw, mt, pfx) may go now: taken from the
    -- estimate; else nil, and the wait.
    local function fits(k, raw, mt, pfx)
        if pfx ~= '' then P.loadCached({pfx}) end
        local need = P.needs(k, tonumber(raw), tonumber(mt), pfx)
        local wait, _, soon = P.paceWait(k, need)
        if wait > 0 then return nil, wait, soon end
        P.take(k, need)
        return true
    end
    local room = nil
    -- Class h.c's due jobs, then its early ones.
    local function lookClass(h)
        P = P or pacer(st, l, now)
        local k = P.classState(h.c)
        local done = false
        if h.due <= now then
            local to, from = lineTo(h.c, now - k.slip), 0
            while not done and from < LOOK_MAX and #out < n do
                local page = rcall('ZRANGEBYLEX', K.parked, lineFrom(h.c), to, 'LIMIT', istr(from), istr(LOOK_PAGE))
                if #page == 0 then break end
                local facts = rcall('HMGET', K.parkedneed, unpack(page))
                for i, id in ipairs(page) do
                    if #out >= n then break end
                    local c, raw, mt, pfx = string.match(facts[i] or '', PARKED_FACT)
                    if not c or not k.observed or k.pause then
                        out[#out + 1] = id
                    else
                        local go, wait, soon = fits(k, raw, mt, pfx)
                        if go or soon then
                            out[#out + 1] = id
                            done = soon
                        else
                            -- (the tail moves with the line, and is never
                            -- before its head)
                            local step = P.lineStep(k)
                            if wait < step then wait = step end
                            local _, place = parkedOf(id)
                            local d = now + wait - ((place or now - k.slip) + k.slip)
                            k.slip, k.tail = k.slip + d, math.max(k.tail + d, now + wait)
                            done = true
                        end
                    end
                    if done then break end
                end
                if #page < LOOK_PAGE then break end
                from = from + LOOK_PAGE
            end
            if from >= LOOK_MAX then done = true end
        end
        -- Early, only under the in-flight ceilings, the fleet's and the
        -- class's (admission would only make it wait, and the next claim
        -- hand it out again), at most once a step a class; in
        -- pages (the first job that does not fit ends it, mostly the first).
        if done or now < k.lookAt or not k.observed or k.pause then return end
        room = room or (tonumber(l.max_in_flight) or 100) - inFlight(now, st)
        local from = 0
        while from < PULL_MAX and #out < n and room - #out > 0 do
            k.lookAt = now + P.lineStep(k)          -- (it looks: the next after a step)
            local early = rcall('ZRANGEBYLEX', K.parked, lineAfter(h.c, now - k.slip), lineTo(h.c),
                                'LIMIT', istr(from), istr(LOOK_PAGE))
            if #early == 0 then return end
            local facts = rcall('HMGET', K.parkedneed, unpack(early))
            for i, id in ipairs(early) do
                if #out >= n or room - #out <= 0 then return end
                local c, raw, mt, pfx = string.match(facts[i] or '', PARKED_FACT)
                if not c or (k.ceiling and k.inflight + k.n >= k.ceiling) or
                   not fits(k, raw, mt, pfx) then
                    return
                end
                out[#out + 1] = id
            end
            if #early < LOOK_PAGE then return end
            from = from + LOOK_PAGE
        end
    end
    local heads = lineHeads(now, st)
    for _, h in ipairs(heads) do
        if #out >= n then break end
        -- (nothing due, and its early look not yet again: nothing to read)
        if h.due <= now or now >= (tonumber(st[cf(h.c, 'look_at')]) or 0) then
            lookClass(h)
        end
    end
    if P then
        local w = Writer.new()
        P.saveTails(w.set)
        w:flush(st)
    end
    if #out == 0 then
        for _, h in ipairs(heads) do
            local k = P and P.C[h.c]
            local due = k and h.place + k.slip or h.due        -- (as this call slipped it)
            if not nextDue or due < nextDue then nextDue = due end
        end
        return nextDue
    end
    local jobs = rcall('HMGET', K.parkedjob, unpack(out))
    local back = {}                                 -- (out[1] rightmost: claimed first)
    for i = #out, 1, -1 do
        if jobs[i] then back[#back + 1] = jobs[i] end
    end
    if #back > 0 then bulk('RPUSH', K.jobs, back, 1) end
    reenter(#back)
    rcall('ZREM', K.parked, unpack(out))
    rcall('HDEL', K.parkedjob, unpack(out))
    rcall('HDEL', K.parkedneed, unpack(out))
end

-- A job over maxJob bytes is never handed to a worker (it would read it
-- whole): it moves to `deadjob` under its lease id, and the claim's list
-- holds a stand-in in its place, {"llmfleet_oversized":BYTES,"ref":LEASE
-- [,"id":ID]} (ID when the job starts {"id":"..."}), which the worker
-- dead-letters with job_ref LEASE. Checked only when the claim's list,
-- all jobs together, is over maxJob (MEMORY USAGE: no job is read then).
local function oversized(maxJob, prefix, got)
    if not maxJob or maxJob <= 0 then return end
    local mem = rcall('MEMORY', 'USAGE', K.list, 'SAMPLES', 0)
    if not mem or mem <= maxJob then return end
    for i = 1, got do
        local j = rcall('LINDEX', K.list, i - 1)
        if j and #j > maxJob then
            local lid = prefix .. i
            local id = string.match(string.sub(j, 1, 4096), '^%s*{%s*"id"%s*:%s*"([%w%-_.:/@]+)"')
            rcall('HSET', K.deadjob, lid, j)
            rcall('LSET', K.list, i - 1, '{"llmfleet_oversized":' .. #j .. ',"ref":' ..
                  cjson.encode(lid) .. (id and (',"id":"' .. id .. '"') or '') .. '}')
        end
    end
end

-- The queue's age marks (`qmarks`, for status's oldest queued job): the
-- jobs that ever arrived at the queue are state.q_taken (taken by claims,
-- less those that went back) + LLEN. A mark (score: that count, member:
-- the time) is added when it grew, at most every max(1 s, span / 500)
-- (span: since the oldest mark kept), and marks no queued job needs go:
-- the oldest queued job is arrival q_taken + 1, which arrived no later
-- than the first mark at or above it.
local function markQueue(now, st)
    local lastT = tonumber(st.qmark_t) or 0
    if now - lastT < 1000 then return end           -- the common case: no command
    local taken = tonumber(st.q_taken) or 0
    local p = taken + rcall('LLEN', K.jobs)
    if p <= (tonumber(st.qmark_p) or 0) then return end
    local first = rcall('ZRANGEBYSCORE', K.qmarks, '-inf', '+inf', 'LIMIT', '0', '1')
    local every = first[1] and (now - tonumber(first[1])) / 500 or 0
    if now - lastT < every then return end
    -- Marks no queued job needs go when one comes (status reads from
    -- q_taken + 1 up, so a late trim is harmless).
    rcall('ZREMRANGEBYSCORE', K.qmarks, '-inf', '(' .. istr(taken + 1))
    rcall('ZADD', K.qmarks, p, istr(now))
    rcall('HSET', K.state, 'qmark_p', istr(p), 'qmark_t', istr(now))
end

-- A worker's intake (`jobs:intake:NAME`): its waker's BLMOVE moves the
-- oldest job there at a push (worker/wake.c), so that a push wakes one
-- idle worker, not all of them. The job is still queued: every claim of
-- that worker first puts its intake back at the consuming end (the oldest
-- rightmost), and so does the reaper for a worker whose heartbeat ended.
-- Never counted taken (q_taken), so the queue's arrival count stays.
local function intakeOf(name) return K.jobs .. ':intake:' .. name end
local function intakeBack(name)
    if not name or name == '' then return end
    local key = intakeOf(name)
    local j = rcall('LRANGE', key, 0, -1)           -- newest first
    if #j == 0 then return end
    bulk('RPUSH', K.jobs, j, 1)
    rcall('DEL', key)
end

-- Workers whose heartbeat ended (`intakes`, kept apart from `workers`,
-- which workers of older versions reap without a look at intakes): their
-- intakes go back at every reap until WAKE_BLOCK_MS + 2 s past the end,
-- since a BLMOVE the worker left blocked (a frozen host, a close Redis has
-- not seen yet) can still take a job that long after it went out.
local function intakesReap(now)
    for _, name in ipairs(rcall('ZRANGEBYSCORE', K.intakes, '-inf', now)) do intakeBack(name) end
    rcall('ZREMRANGEBYSCORE', K.intakes, '-inf', now - WAKE_BLOCK_MS - 2000)
end

local function claimJobs(n, leaseMs, prefix, now, l, st, maxJob, intake, fresh)
    intakeBack(intake)
    markQueue(now, st)
    -- Spend cap: stopped until the cap changes.
    if st.budget_cap then
        if l.max_spend_usd ~= '' and tostring(st.budget_cap) == l.max_spend_usd then
            return {now, 1000, 'spend cap reached (max_spend_usd=' .. l.max_spend_usd .. ')'}
        end
        rcall('HDEL', K.state, 'budget_cap')
    end
    -- The daily cap: stopped until the UTC day or the cap changes.
    if st.day_cap then
        if dayStopped(st, l, now) then
            return {now, 1000, 'daily spend cap reached (max_spend_usd_per_day=' ..
                    l.max_spend_usd_per_day .. '); resumes at 00:00 UTC'}
        end
        rcall('HDEL', K.state, 'day_cap')
    end

    local p = pauseNow(st, now)
    if p then
        if not p.probe then return {now, p.wait, p.reason} end
        n = 1                               -- a probe is due: one job
    end

    local parkedAt = parkedDue(now, n, l, fresh and st or nil)
    retriesDue(now, l)

    local out = {now, 0, ''}
    -- The n jobs at the consuming (right) end, oldest first.
    local got = rcall('SORT', K.jobs, 'BY', 'nosort', 'DESC', 'LIMIT', '0', istr(n), 'STORE', K.list)
    out[CR.N] = got
    -- Fewer than asked: the queue is drained. When the next parked job or
    -- retry is due, so that the worker asks again then, not on a fixed
    -- poll, nor at once when admission frees a slot (29 of 35 empty
    -- claims of 16 paced workers came right after an admission).
    if got < n then
        local next = -1
        if parkedAt then next = parkedAt < now and 0 or parkedAt - now end
        local f = rcall('ZRANGEBYSCORE', K.delayed, '-inf', '+inf', 'WITHSCORES', 'LIMIT', '0', '1')
        if f[2] then
            local d = tonumber(f[2]) - now
            if d < 0 then d = 0 end
            if next < 0 or d < next then next = d end
        end
        -- One claimer per due time: the first worker to ask is told
        -- when (`wake_at`), the others only that nothing is due (they look
        -- again within IDLE_MAX_MS, or a push wakes them). All told, every
        -- idle worker claimed at each parked job's due time: 16 idle
        -- workers made 160 claims a second for 10 paced jobs. A wake_at
        -- that has come is served (a claim at or after it moves the jobs
        -- due): the next to ask is told the next one.
        -- The worker told it (`wake_by`) hears it again when it asks first
        -- (a push woke it before): it is the one waiting for it.
        if next > 0 then
            local at, wa = now + next, tonumber(st.wake_at) or 0
            local me = string.match(prefix, '^(.*):%d+:$') or prefix
            if wa > now and wa <= at then
                next = st.wake_by == me and wa - now or -1
            else
                rcall('HSET', K.state, 'wake_at', istr(at), 'wake_by', me)
            end
        end
        out[CR.NEXT_MS] = next
    end
    if got == 0 then return out end
    rcall('LTRIM', K.jobs, 0, -(got + 1))
    rcall('HINCRBY', K.state, 'q_taken', got)
    rcall('HSET', K.claimed, prefix, got)
    local exp = string.format('%d', now + leaseMs)   -- once, as an integer string
    local z = {}
    for i = 1, got do z[#z + 1] = exp; z[#z + 1] = prefix .. i end
    bulk('ZADD', K.leases, z)
    oversized(maxJob, prefix, got)
    return out
end
