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

-- A reservation as admit.lua writes it ("input,output,cost,t_ms,id"): the
-- output tokens and the cost (micro-USD, >= 0) it holds, and the job id.
local function reservation(r)
    local rout, rcost, id = string.match(r, '^%-?%d+,(%-?%d+),(%-?%d+),%-?%d+,(.*)$')
    rcost = tonumber(rcost) or 0
    if rcost < 0 then rcost = 0 end
    return tonumber(rout) or 0, rcost, id
end

-- In flight across the fleet: admitted leases not yet expired.
local function inFlight(now)
    return rcall('ZCOUNT', K.inflight, '(' .. now, '+inf')
end
