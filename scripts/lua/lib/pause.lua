-- pause.lua (library) — the pause rule: while `pause_until` is ahead, the
-- fleet sends nothing, except that a long pause (PAUSE.LONG: past
-- max_pause, or a spend limit) lets one probe through per probe_interval;
-- a successful probe ends it. An operator's pause (PAUSE.OPERATOR) is only
-- ended by the operator. State fields: pause_until, pause_kind,
-- pause_reason, pause_since, probe_at, probe_lease.

-- The pause in force at now, or nil. Fields: probe (a probe may go now),
-- wait (ms until a probe or the end), left (ms until the end), kind, reason.
local function pauseNow(st, now)
    local pu = tonumber(st.pause_until) or 0
    if pu <= now then return nil end
    local p = {kind = tonumber(st.pause_kind) or PAUSE.SHORT,
               reason = st.pause_reason or 'paused', wait = pu - now, left = pu - now}
    if p.kind == PAUSE.LONG then
        local probe = tonumber(st.probe_at) or 0
        if probe <= now then p.probe = true end
        if probe - now < p.wait then p.wait = probe - now end
    end
    return p
end

-- A pause as a batch of changes sees it: P.until_ms, P.kind, and the state
-- fields to write go into set (the caller writes them once).
local function pauseOpen(st, set)
    return {until_ms = tonumber(st.pause_until) or 0,
            kind = tonumber(st.pause_kind) or PAUSE.SHORT, set = set}
end

-- Raise the pause to untilMs (never shortens one; an operator's stays).
local function pauseRaise(P, now, untilMs, reason, kind, probeEvery)
    if P.until_ms > now and P.kind == PAUSE.OPERATOR then return end
    if untilMs <= P.until_ms and kind <= P.kind then return end
    if untilMs > P.until_ms then P.until_ms = untilMs end
    if kind > P.kind or P.until_ms <= now then P.kind = kind end
    local s = P.set
    s.pause_until, s.pause_reason, s.pause_kind, s.pause_since = P.until_ms, reason, P.kind, now
    if kind == PAUSE.LONG then s.probe_at = now + probeEvery end
end

-- End the pause (a probe got through, or the operator resumed).
local function pauseEnd(P)
    P.until_ms, P.kind = 0, PAUSE.SHORT
    P.set.pause_until, P.set.pause_kind, P.set.pause_reason = 0, PAUSE.SHORT, ''
end
