-- class.lua (library) — model classes. The API's rate limits are per model
-- class (Opus 4.x share one pool, Sonnet 4.x another, ...): the fleet keeps
-- its bucket estimates, pauses, cold start, in-flight count, input
-- calibration and output quantile per class, in `state` fields named
-- CLASS .. '|' .. FIELD. A model's class comes from `model_classes`
-- (MODEL=CLASS,...) when it names the model, else from the built-in map
-- below; a model it does not know is a class of its own. The set of
-- classes seen is the state field `classes` (comma-separated).

-- MODEL=CLASS,... or CLASS=N,... as a table (values as strings).
local function parseMap(spec)
    local m = {}
    if not spec or spec == '' then return m end
    for k, v in string.gmatch(spec, '([^,=]+)=([^,]+)') do m[k] = v end
    return m
end

-- Field names of class c, built once per call.
local FNAMES = {}
local function cf(c, name)
    local t = FNAMES[c]
    if not t then t = {}; FNAMES[c] = t end
    local f = t[name]
    if not f then f = c .. '|' .. name; t[name] = f end
    return f
end

local CLASS_MAP = {                     -- model id prefix -> class
    {'^claude%-opus%-4', 'opus-4'}, {'^claude%-sonnet%-4', 'sonnet-4'},
    {'^claude%-haiku%-4', 'haiku-4'}, {'^claude%-3%-5%-haiku', 'haiku-3-5'},
    {'^claude%-3%-7%-sonnet', 'sonnet-3-7'}, {'^claude%-3%-5%-sonnet', 'sonnet-3-5'},
}
local classCache = {}

-- The class of a model under the overrides (parseMap of model_classes).
local function classOf(model, overrides)
    local c = overrides[model] or classCache[model]
    if c then return c end
    for _, e in ipairs(CLASS_MAP) do
        if string.find(model, e[1]) then c = e[2] break end
    end
    if not c then                       -- its own class, date suffix off
        c = string.gsub(string.gsub(model, '%-%d%d%d%d%d%d%d%d$', ''), '[^%w%._%-]', '_')
    end
    classCache[model] = c
    return c
end

-- The classes seen, as a list, from the state field.
local function classList(st)
    local l = {}
    for c in string.gmatch(st.classes or '', '[^,]+') do l[#l + 1] = c end
    return l
end

-- Learn from an answer: the input calibration (actual prompt tokens over
-- the worker's estimate: a running mean over the first answers, then an
-- EWMA) and the output's share of max_tokens, in a decaying histogram of
-- quarter-octave buckets (bucket i holds x in (2^-(i+1)/4, 2^-i/4]; the
-- last one everything smaller), from which classQuantile takes the
-- OUTPUT_Q quantile. v holds the class's values {cal, ncal, oh (the
-- histogram), on (answers in it)}; returns the estimate's relative error
-- before this answer (nil while warming up).
local OUTPUT_Q = 0.95
local OH_N = 48                         -- down to 2^-12 of max_tokens
local OH_DECAY = 0.99                   -- per answer: half-life ~70 answers
local CAL_WARM = 50
local function classLearn(v, raw, actual, out, maxTokens)
    local err = nil
    if raw > 0 and actual > 0 then
        local r = actual / raw
        if r < 0.1 then r = 0.1 elseif r > 10 then r = 10 end
        if v.ncal >= CAL_WARM then err = math.abs(raw * v.cal - actual) / actual end
        local w = 1 / (v.ncal + 1)
        if w < 0.05 then w = 0.05 end
        v.cal = v.cal + (r - v.cal) * w
        v.ncal = v.ncal + 1
    end
    if maxTokens > 0 and out >= 0 then
        local x = out / maxTokens
        local i = OH_N - 1
        if x > 0 then i = math.floor(-4 * math.log(x) / math.log(2)) end
        if i < 0 then i = 0 elseif i >= OH_N then i = OH_N - 1 end
        for j = 1, OH_N do v.oh[j] = (v.oh[j] or 0) * OH_DECAY end
        v.oh[i + 1] = v.oh[i + 1] + 1
        v.on = (v.on or 0) + 1
    end
    return err
end

-- The histogram from its state field ("c1,c2,...") and back.
local function ohParse(s)
    local h = {}
    for x in string.gmatch(s or '', '[^,]+') do h[#h + 1] = tonumber(x) or 0 end
    for j = #h + 1, OH_N do h[j] = 0 end
    return h
end
local function ohFormat(h)
    local t = {}
    for j = 1, OH_N do t[j] = string.format('%.3f', h[j]) end
    return table.concat(t, ',')
end

-- The OUTPUT_Q quantile of output / max_tokens (the upper edge of its
-- bucket); 1 (the worst case) until OH_MIN answers are in. Under
-- OH_MIN / (1 - OUTPUT_Q) answers it is their maximum.
local OH_MIN = 5
local function classQuantile(v)
    if (v.on or 0) < OH_MIN then return 1 end
    local total = 0
    for j = 1, OH_N do total = total + v.oh[j] end
    local allow = (1 - OUTPUT_Q) * total
    if v.on < OH_MIN / (1 - OUTPUT_Q) then allow = 0 end
    local above = 0
    for j = 1, OH_N do
        above = above + v.oh[j]
        if above > allow + 1e-9 then return 2 ^ (-(j - 1) / 4) end
    end
    return 2 ^ (-OH_N / 4)
end
