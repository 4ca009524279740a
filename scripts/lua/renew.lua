-- renew.lua — extend a live worker's leases (and their in-flight entries)
-- and record its heartbeat.
--
-- KEYS[1] leases  ZSET   KEYS[2] workers  ZSET   KEYS[3] inflight  ZSET
-- ARGV[1] lease_ms   ARGV[2] worker name   ARGV[3] heartbeat ttl ms
-- ARGV[4..] tokens held by the worker
-- Reply: the tokens whose lease is gone (reaped): the worker must not
-- expect to settle them (settle.lua refuses them anyway).
local now = nowMs()
rcall('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[2])
local exp = now + tonumber(ARGV[1])
local lost = {}
for i = 4, #ARGV do
    if rcall('ZSCORE', KEYS[1], ARGV[i]) then
        rcall('ZADD', KEYS[1], 'XX', exp, ARGV[i])
        rcall('ZADD', KEYS[3], 'XX', exp, ARGV[i])
    else
        lost[#lost + 1] = ARGV[i]
    end
end
return lost
