-- renew.lua — extend a live worker's leases and record its heartbeat.
--
-- KEYS[1] leases   ZSET
-- KEYS[2] workers  ZSET  worker name -> heartbeat expiry ms
-- ARGV[1] lease_ms   ARGV[2] worker name   ARGV[3] heartbeat ttl ms
-- ARGV[4..] tokens held by the worker
-- Reply: the tokens whose lease is gone (reaped): the worker must not
-- settle them (settle.lua would refuse anyway).
local rcall = redis.call
local t = rcall('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
rcall('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[2])
local exp = now + tonumber(ARGV[1])
local lost = {}
for i = 4, #ARGV do
    if rcall('ZADD', KEYS[1], 'XX', 'CH', exp, ARGV[i]) == 0 and
       not rcall('ZSCORE', KEYS[1], ARGV[i]) then
        lost[#lost + 1] = ARGV[i]
    end
end
return lost
