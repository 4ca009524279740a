-- claim.lua (library) — claim up to n jobs into leases (claim.lua, and
-- settle.lua when it claims for the slots it frees). The jobs go to the
-- list K.list (K.claimed .. ':' .. prefix; prefix ends in ':'). l, st:
-- limits and state as read by the caller.
-- Returns the claim reply (CR): {now, wait_ms, reason[, n]}: n jobs
-- claimed, lease ids prefix .. 1 to prefix .. n (the caller knows the
-- prefix); wait_ms > 0: nothing claimed, ask again after it.
-- Parked jobs whose time has come go back to the consuming end of the
-- queue, the earliest due nearest it (up to n of them). Each is looked at
-- first by admission's own pacing rule (lib/pace.lua) with what admission
-- knew of its needs (`parkedneed`): one that would park again is parked
-- again here, at the same due time, and never leaves Redis (a job waiting
-- 30 s for its turn came back every 2 s, each time through a worker and
-- an admission); one that may go is handed out, its needs taken from the
-- estimate as admission takes a job that goes, and admission decides. A
-- job the look cannot judge (its class paused or cold, no needs kept) is
-- handed out. At most LOOK_MAX due jobs are looked at per claim.
local LOOK_MAX = 100
local function parkedDue(now, n, l)
    local due = rcall('ZRANGEBYSCORE', K.parked, '-inf', now, 'LIMIT', 0, LOOK_MAX)
    if #due == 0 then return end
    local facts = rcall('HMGET', K.parkedneed, unpack(due))
    local P, out, again = nil, {}, {}
    for i, lid in ipairs(due) do
        local c, raw, mt, pfx = string.match(facts[i] or '', '^([^,]+),(%d+),(%d+),(.*)$')
        local park = nil
        if c then
            P = P or pacer(loadHash(K.state), l, now)   -- (fresh: a settle's own writes)
            local k = P.classState(c)
            if k.observed and not k.pause then
                if pfx ~= '' then P.loadCached({pfx}) end
                local need = P.needs(k, tonumber(raw), tonumber(mt), pfx)
                local wait, _, soon = P.paceWait(k, need)
                if wait > 0 and not soon then
                    local tail = k.tail
                    local at = P.parkDue(k, wait, need)
                    -- (a short wait is admission's, in a slot, tail and all)
                    if at - now > PARK_MIN_MS then park = at else k.tail = tail end
                elseif wait == 0 and #out < n then
                    for _, b in ipairs(BUCKETS) do
                        if k.est[b] then k.est[b] = k.est[b] - need[b] end
                    end
                    k.n = k.n + 1
                end
            end
        end
        if park then
            again[#again + 1] = string.format('%d', park)
            again[#again + 1] = lid
        elseif #out < n then
            out[#out + 1] = lid
        end
    end
    if #again > 0 then
        bulk('ZADD', K.parked, again)
        P.saveTails()
    end
    if #out == 0 then return end
    local jobs = rcall('HMGET', K.parkedjob, unpack(out))
    local back = 0
    for i = #out, 1, -1 do
        if jobs[i] then rcall('RPUSH', K.jobs, jobs[i]); back = back + 1 end
    end
    reenter(back)
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
    local first = rcall('ZRANGEBYSCORE', K.qmarks, '-inf', '+inf', 'LIMIT', 0, 1)
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

local function claimJobs(n, leaseMs, prefix, now, l, st, maxJob, intake)
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

    parkedDue(now, n, l)
    retriesDue(now, l)

    local out = {now, 0, ''}
    -- The n jobs at the consuming (right) end, oldest first.
    local got = rcall('SORT', K.jobs, 'BY', 'nosort', 'DESC', 'LIMIT', 0, n, 'STORE', K.list)
    if got == 0 then
        -- Nothing to do: when the next parked job or retry is due, so that
        -- an idle worker asks again then, not on a fixed poll.
        local next = -1
        for _, z in ipairs({K.parked, K.delayed}) do
            local f = rcall('ZRANGEBYSCORE', z, '-inf', '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
            if f[2] then
                local d = tonumber(f[2]) - now
                if d < 0 then d = 0 end
                if next < 0 or d < next then next = d end
            end
        end
        -- One claimer per due time: the first idle worker to ask is told
        -- when (`wake_at`), the others only that nothing is due (they look
        -- again within IDLE_MAX_MS, or a push wakes them). All told, every
        -- idle worker claimed at each parked job's due time: 16 idle
        -- workers made 160 claims a second for 10 paced jobs. A wake_at
        -- that has come is served (a claim at or after it moves the jobs
        -- due): the next to ask is told the next one.
        if next > 0 then
            local at, wa = now + next, tonumber(st.wake_at) or 0
            if wa > now and wa <= at then
                next = -1
            else
                rcall('HSET', K.state, 'wake_at', istr(at))
            end
        end
        out[CR.N] = 0
        out[CR.NEXT_MS] = next
        return out
    end
    rcall('LTRIM', K.jobs, 0, -(got + 1))
    rcall('HINCRBY', K.state, 'q_taken', got)
    rcall('HSET', K.claimed, prefix, got)
    local exp = string.format('%d', now + leaseMs)   -- once, as an integer string
    local z = {}
    for i = 1, got do z[#z + 1] = exp; z[#z + 1] = prefix .. i end
    bulk('ZADD', K.leases, z)
    oversized(maxJob, prefix, got)
    out[CR.N] = got
    return out
end
