-- limits.lua — `llmfleet limits`: change, then show, the fleet limits in
-- force (the `limits` hash over LIMIT_DEFAULTS). Values arrive validated
-- by the CLI (proto.def's LF_LIMITS says what each takes); all changes of
-- one call land together.
--
-- KEYS: the fleet's keys (proto.def).
-- ARGV: name1, value1, name2, value2, ... to set ('' removes: the default
--       applies again); none to only show.
-- Reply: {name1, value1, set1, name2, value2, set2, ...} sorted by name;
-- set is 1 when the value is stored in Redis, 0 for a default.
local hset, hdel = {}, {}
for i = 1, #ARGV - 1, 2 do
    if LIMIT_DEFAULTS[ARGV[i]] == nil then
        return redis.error_reply('unknown limit ' .. ARGV[i])
    end
    if ARGV[i + 1] == '' then hdel[#hdel + 1] = ARGV[i]
    else hset[#hset + 1] = ARGV[i]; hset[#hset + 1] = ARGV[i + 1] end
end
if #hset > 0 then rcall('HSET', K.limits, unpack(hset)) end
if #hdel > 0 then rcall('HDEL', K.limits, unpack(hdel)) end
local stored = loadHash(K.limits)
local l = loadLimits()
local names = {}
for k in pairs(LIMIT_DEFAULTS) do names[#names + 1] = k end
for k in pairs(l) do if not LIMIT_DEFAULTS[k] then names[#names + 1] = k end end
table.sort(names)
local out = {}
for _, k in ipairs(names) do
    out[#out + 1] = k
    out[#out + 1] = l[k]
    out[#out + 1] = stored[k] and 1 or 0
end
return out
