-- begin.lua — a worker is about to send the API requests of some leases.
--
-- For each (token, id): a lease that is gone (reaped: the worker was too
-- slow) is refused; an id that already has its result is a duplicate
-- delivery: its lease is dropped and nothing is sent; otherwise the id's
-- attempt counter goes up by one and is returned.
--
-- KEYS[1] leases    ZSET
-- KEYS[2] leasejob  HASH
-- KEYS[3] done      SET
-- KEYS[4] attempts  HASH  id -> attempts
-- ARGV    token1, id1, token2, id2, ...
-- Reply: one integer per pair: n >= 1 attempt number, 0 duplicate (lease
-- dropped), -1 lease lost.
local rcall = redis.call
local out = {}
for i = 1, #ARGV, 2 do
    local tok, id = ARGV[i], ARGV[i + 1]
    if not rcall('ZSCORE', KEYS[1], tok) then
        out[#out + 1] = -1
    elseif rcall('SISMEMBER', KEYS[3], id) == 1 then
        rcall('ZREM', KEYS[1], tok)
        rcall('HDEL', KEYS[2], tok)
        out[#out + 1] = 0
    else
        out[#out + 1] = rcall('HINCRBY', KEYS[4], id, 1)
    end
end
return out
