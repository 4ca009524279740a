-- util.lua — small helpers every script shares. Touches no key by itself,
-- but for reenter's counter.

-- HINCRBY with a whole number, never "-0" or "1e+15" (Redis refuses both):
-- a script must not fail halfway, since Redis keeps what it already wrote.
local function incr(key, field, n)
    n = math.floor(tonumber(n) or 0)
    if n == 0 then return end
    rcall('HINCRBY', key, field, string.format('%d', n))
end

-- cmd key a1 a2 ... in chunks (Lua's unpack has a stack limit): for
-- multi-member ZADD, ZREM, HSET, HDEL, SADD over a whole batch in one call.
local function bulk(cmd, key, args, step)
    step = step or 2
    local n = #args
    local chunk = 1000 - (1000 % step)
    for i = 1, n, chunk do
        local j = i + chunk - 1
        if j > n then j = n end
        rcall(cmd, key, unpack(args, i, j))
    end
end

-- A HASH as a Lua table.
local function loadHash(key)
    local h = {}
    local kv = rcall('HGETALL', key)
    for i = 1, #kv, 2 do h[kv[i]] = kv[i + 1] end
    return h
end

-- A whole number as a string, never "1e+15" (Lua's own tostring is exact
-- below 1e14 and cheaper than string.format).
local function istr(x)
    if x < 1e14 and x > -1e14 then return tostring(x) end
    return string.format('%d', x)
end

-- A number from an argument or field; nil for nil or "".
local function num(s)
    if s == nil or s == '' then return nil end
    return tonumber(s)
end

-- Redis server time in ms: one clock for every worker on every machine.
local function nowMs()
    local t = rcall('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- k jobs went back to the consuming end of the queue (a requeue, a due
-- retry or parked job, a reaped lease): they count as not taken again, so
-- the arrival count (state.q_taken + LLEN, see markQueue) stays.
local function reenter(k)
    if k > 0 then rcall('HINCRBY', K.state, 'q_taken', -k) end
end
