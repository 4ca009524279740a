-- pause.lua (library) — the pause rule: while `pause_until` is ahead, the
-- fleet (or one model class: the same fields under the class's prefix)
-- sends nothing, except that a long pause (PAUSE.LONG: past max_pause, or a
-- spend limit) lets one probe through per probe_interval; a successful
-- probe ends it. An operator's pause (PAUSE.OPERATOR) is only ended by the
-- operator. Fields: pause_until, pause_kind, pause_reason, pause_since,
-- probe_at, probe_lease. A class pause comes from its own buckets (a 429
-- within max_pause, the hard floor); the fleet's from the operator, a
-- spend limit, or a wait past max_pause (a daily or org cap).

local function pf(c, name) if c then return cf(c, name) end return name end

-- The pause in force at now (the fleet's when c is nil, else class c's),
-- or nil. Fields: probe (a probe may go now), wait (ms until a probe or the
-- end), left (ms until the end), kind, reason.
local function pauseNow(st, now, c)
    local pu = tonumber(st[pf(c, 'pause_until')]) or 0
    if pu <= now then return nil end
    local p = {kind = tonumber(st[pf(c, 'pause_kind')]) or PAUSE.SHORT,
               reason = st[pf(c, 'pause_reason')] or 'paused', wait = pu - now,
               left = pu - now, class = c}
    if p.kind == PAUSE.LONG then
        local probe = tonumber(st[pf(c, 'probe_at')]) or 0
        if probe <= now then p.probe = true end
        if probe - now < p.wait then p.wait = probe - now end
    end
    return p
end

-- A pause as a batch of changes sees it: P.until_ms, P.kind, and the state
-- fields to write go into set (the caller writes them once).
local function pauseOpen(st, set, c)
    return {until_ms = tonumber(st[pf(c, 'pause_until')]) or 0,
            kind = tonumber(st[pf(c, 'pause_kind')]) or PAUSE.SHORT, set = set, c = c}
end

-- Raise the pause to untilMs (never shortens one; an operator's stays).
local function pauseRaise(P, now, untilMs, reason, kind, probeEvery)
    if P.until_ms > now and P.kind == PAUSE.OPERATOR then return end
    if untilMs <= P.until_ms and kind <= P.kind then return end
    if untilMs > P.until_ms then P.until_ms = untilMs end
    if kind > P.kind or P.until_ms <= now then P.kind = kind end
    local s, c = P.set, P.c
    s[pf(c, 'pause_until')], s[pf(c, 'pause_reason')] = P.until_ms, reason
    s[pf(c, 'pause_kind')], s[pf(c, 'pause_since')] = P.kind, now
    if kind == PAUSE.LONG then s[pf(c, 'probe_at')] = now + probeEvery end
end

-- End the pause (a probe got through, or the operator resumed). Retries
-- that the pause pushed out (a 429's retry-after of an hour, its reset)
-- are due by the pause's end, give or take their jitter: an early end
-- makes them due now, rather than leaving them in `delayed` for the hour.
-- (An operator's own pause delays no retry: nothing moves.)
local function pauseEnd(P, now)
    local s, c = P.set, P.c
    if P.until_ms > now and P.kind ~= PAUSE.OPERATOR then
        local ids = rcall('ZRANGEBYSCORE', K.delayed, '(' .. now, P.until_ms + 60000,
                          'LIMIT', 0, 10000)
        if #ids > 0 then
            local z = {}
            for _, lid in ipairs(ids) do z[#z + 1] = now; z[#z + 1] = lid end
            rcall('ZADD', K.delayed, 'XX', unpack(z))
            s.wake_at = '0'             -- (due now: no worker waits for them)
        end
    end
    P.until_ms, P.kind = 0, PAUSE.SHORT
    s[pf(c, 'pause_until')], s[pf(c, 'pause_kind')], s[pf(c, 'pause_reason')] = 0, PAUSE.SHORT, ''
end
