-- limits.lua (library) — the fleet limits in force: the `limits` hash over
-- LIMIT_DEFAULTS (from proto.def, the one place defaults live).

-- (The defaults through a metatable, kept in MEMO: a copy of them each
-- call was ~3 % of the scripts' time in a paced run. pairs() sees only
-- the stored ones.)
local function loadLimits()
    MEMO.limits = MEMO.limits or {__index = LIMIT_DEFAULTS}
    local l = setmetatable({}, MEMO.limits)
    local kv = rcall('HGETALL', K.limits)
    for i = 1, #kv, 2 do l[kv[i]] = kv[i + 1] end
    return l
end

-- A floor ("5%" of the bucket's limit, or an absolute count).
local function floorOf(spec, lim)
    local pct = string.match(spec, '^([%d%.]+)%%$')
    if pct then return lim * tonumber(pct) / 100 end
    return tonumber(spec) or 0
end

-- The spend cap in micro-USD, or nil when none is set.
local function spendCap(l)
    if l.max_spend_usd == '' then return nil end
    return math.floor(tonumber(l.max_spend_usd) * 1000000 + 0.5)
end

-- The spend cap per UTC day in micro-USD, or nil; the day's number.
local DAY_MS = 86400000
local function dayCap(l)
    if l.max_spend_usd_per_day == '' then return nil end
    return math.floor(tonumber(l.max_spend_usd_per_day) * 1000000 + 0.5)
end
local function dayOf(now) return math.floor(now / DAY_MS) end

-- Micro-USD spent on the UTC day of now (state day / day_spent).
local function spentToday(st, now)
    if tonumber(st.day) ~= dayOf(now) then return 0 end
    return tonumber(st.day_spent) or 0
end

-- n micro-USD became spent now: add them to the UTC day's spend (a new
-- day starts from them). Every place that adds to state.spent calls it;
-- day: state.day when the caller has it loaded (else it is read); w: the
-- caller's state writer (util.lua's Writer), when it gathers them.
local function daySpend(now, n, day, w)
    if n <= 0 then return end
    if tonumber(day or rcall('HGET', K.state, 'day')) == dayOf(now) then
        if w then w:add('day_spent', n); return end
        rcall('HINCRBY', K.state, 'day_spent', istr(n))
    elseif w then
        w.set.day, w.set.day_spent = istr(dayOf(now)), istr(n)
    else
        rcall('HSET', K.state, 'day', istr(dayOf(now)), 'day_spent', istr(n))
    end
end

-- The fleet stopped at its daily cap: today's mark, for this cap.
local function dayStopped(st, l, now)
    return l.max_spend_usd_per_day ~= '' and
           st.day_cap == istr(dayOf(now)) .. ':' .. l.max_spend_usd_per_day
end
