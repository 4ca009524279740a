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

-- A whole number as a string, never "1e+15". (string.format's '%d' takes
-- the C library's integer path; tostring, and a number concatenated or
-- passed to redis.call, take its floating-point one, "%.14g" / "%.17g":
-- counted with callgrind on a replayed paced run, admission's calls ran 5 %
-- fewer instructions with '%d'.)
local function istr(x)
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

-- The state hash's counters of one call, written at its end with its
-- other fields in one HSET (a HINCRBY each made a settle 16 commands, an
-- admission 6): w = Writer.new(), w:add(f, n) adds the whole number n to
-- field f; w.set holds the fields to set, and a set wins over adds to the
-- same field (as an HSET after them would). w:flush(st) takes each sum
-- from st, the state as this call read it with HGETALL, so the call
-- changes no field it adds to any other way; it writes, and leaves st as
-- Redis holds it (a claim after a settle reads it as fresh).
-- Writer.incrAll(key, d): whole-number counters of another hash (deltas
-- by field) read, then written in one HSET (two commands, not one
-- HINCRBY each). (One table: a script's main function holds at most 200
-- locals, the libraries' included.)
local Writer = {}
Writer.__index = Writer
function Writer.new(set) return setmetatable({adds = {}, set = set or {}}, Writer) end
function Writer:add(f, n)
    n = math.floor(tonumber(n) or 0)
    if n ~= 0 then self.adds[f] = (self.adds[f] or 0) + n end
end
function Writer:flush(st)
    local set, kv = self.set, {}
    for f, n in pairs(self.adds) do
        if set[f] == nil and n ~= 0 then set[f] = istr((tonumber(st[f]) or 0) + n) end
    end
    for f, v in pairs(set) do
        kv[#kv + 1] = f; kv[#kv + 1] = v
        st[f] = v
    end
    if #kv > 0 then bulk('HSET', K.state, kv) end
    self.adds, self.set = {}, {}
end
-- Something comes due at t (a job parked, a retry): sooner than the time
-- a worker was told to claim at (`wake_at`), that time is dropped, so the
-- next claim, an idle worker's poll too (claim.lua's pollQuiet trusts
-- wake_at), looks and tells one worker the sooner time. set: a Writer's.
function Writer.dueAt(set, st, t)
    if t < (tonumber(st.wake_at) or 0) then set.wake_at = '0' end
end
function Writer.incrAll(key, d)
    local f, n = {}, {}
    for k, v in pairs(d) do
        v = math.floor(tonumber(v) or 0)
        if v ~= 0 then f[#f + 1] = k; n[#n + 1] = v end
    end
    if #f == 0 then return end
    if #f == 1 then incr(key, f[1], n[1]); return end
    local cur = rcall('HMGET', key, unpack(f))
    local kv = {}
    for i = 1, #f do kv[#kv + 1] = f[i]; kv[#kv + 1] = istr((tonumber(cur[i]) or 0) + n[i]) end
    rcall('HSET', key, unpack(kv))
end
