-- limits.lua — the fleet limits in force: the `limits` hash over the
-- defaults of _lib.lua (the one place defaults live).
--
-- KEYS[1] limits
-- Reply: {name1, value1, set1, name2, value2, set2, ...} sorted by name;
-- set is 1 when the value is stored in Redis, 0 for a default.
local stored = loadHash(KEYS[1])
local l = loadLimits(KEYS[1])
local names = {}
for k in pairs(l) do names[#names + 1] = k end
table.sort(names)
local out = {}
for _, k in ipairs(names) do
    out[#out + 1] = k
    out[#out + 1] = l[k]
    out[#out + 1] = stored[k] and 1 or 0
end
return out
