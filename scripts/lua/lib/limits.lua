-- limits.lua (library) — the fleet limits in force: the `limits` hash over
-- LIMIT_DEFAULTS (from proto.def, the one place defaults live).

local function loadLimits()
    local l = {}
    for k, v in pairs(LIMIT_DEFAULTS) do l[k] = v end
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
