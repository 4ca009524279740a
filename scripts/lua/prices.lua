-- prices.lua — the fleet's one price table: `prices` holds the models the
-- operator added or changed (over the workers' built-in table), and
-- `state.prices_ver` counts its changes. Admission compares the version a
-- worker holds with this one and holds its jobs until it has reloaded, so
-- reservations, costs and the cap use one table fleet-wide.
--
-- KEYS: the fleet's keys (proto.def).
-- ARGV[1] 'get' | 'set' (then model, "INPUT CACHE_5M CACHE_1H CACHE_READ
--         OUTPUT" pairs, USD per MTok, validated by the CLI) | 'del' (then
--         models) | 'reset'
-- Reply: {version, model1, value1, ...} for get; {version} otherwise.
local op = ARGV[1]
if op == 'get' then
    local out = {rcall('HGET', K.state, 'prices_ver') or '0'}
    local kv = rcall('HGETALL', K.prices)
    for i = 1, #kv do out[#out + 1] = kv[i] end
    return out
end
if op == 'set' then
    for i = 2, #ARGV - 1, 2 do rcall('HSET', K.prices, ARGV[i], ARGV[i + 1]) end
elseif op == 'del' then
    for i = 2, #ARGV do rcall('HDEL', K.prices, ARGV[i]) end
elseif op == 'reset' then
    rcall('DEL', K.prices)
else
    return redis.error_reply('prices: unknown op ' .. tostring(op))
end
return {tostring(rcall('HINCRBY', K.state, 'prices_ver', 1))}
