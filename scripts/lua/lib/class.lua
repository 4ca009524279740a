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

-- Field names of class c, built once. (As a function library the scripts
-- keep these caches from call to call: bounded, since classes come from
-- the model names producers send.)
local FNAMES, nFNAMES = {}, 0
local function cf(c, name)
    local t = FNAMES[c]
    if not t then
        if nFNAMES >= 256 then FNAMES, nFNAMES = {}, 0 end
        t = {}; FNAMES[c] = t; nFNAMES = nFNAMES + 1
    end
    local f = t[name]
    if not f then f = c .. '|' .. name; t[name] = f end
    return f
end

local CLASS_MAP = {                     -- model id prefix -> class
    {'^claude%-opus%-4', 'opus-4'}, {'^claude%-sonnet%-4', 'sonnet-4'},
    {'^claude%-haiku%-4', 'haiku-4'}, {'^claude%-3%-5%-haiku', 'haiku-3-5'},
    {'^claude%-3%-7%-sonnet', 'sonnet-3-7'}, {'^claude%-3%-5%-sonnet', 'sonnet-3-5'},
}
local classCache, nClassCache = {}, 0

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
    if nClassCache >= 256 then classCache, nClassCache = {}, 0 end
    classCache[model] = c
    nClassCache = nClassCache + 1
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
-- EWMA) and the OUTPUT_Q quantile of output / max_tokens, oq: over the
-- first OQ_WARM answers it moves from 1 (the worst case) to the largest
-- share seen (omax) as they come in, then a stochastic-quantile step in
-- the log domain (up by e^(a x OUTPUT_Q) when an answer is above it, down
-- by e^(-a x (1 - OUTPUT_Q)) otherwise: it settles where OUTPUT_Q of the
-- answers are below). The gain a falls with the answers since the
-- warm-up, oqn: 0.5 / sqrt(1 + oqn / OQ_WARM), at least OQ_GAIN_MIN. At a
-- fixed 0.5, two answers above it in a row lifted oq by 2.6x, and with it
-- the output the fleet holds for each request in flight: with answers
-- of ~150 tokens (max_tokens 2,048) its reserve in the output bucket rose
-- by 2,500 tokens over 14 s, a tenth of the refill not sent (a CI run's
-- output workload: 89 % used). Two answers above in a row (one time in
-- 400 while oq holds; often once the outputs have grown) start the gain
-- over: oqn 0, stored negative while the last answer was above. A tripled
-- mean output is caught up in a median of ~18 answers (8 at 0.5; 54 with
-- no restart), the spread of oq halved. v holds the class's values {cal,
-- ncal, oq, on, omax, oqn}; returns the estimate's relative error before
-- this answer (nil while warming up).
local OUTPUT_Q = 0.95
local OQ_WARM = 20
local OQ_GAIN_MIN = 0.15
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
        v.on = v.on + 1
        if v.on <= OQ_WARM then
            if x > v.omax then v.omax = x end
            v.oq = v.omax + (1 - v.omax) * (1 - v.on / OQ_WARM)
        else
            local n, above = math.abs(v.oqn), v.oqn < 0
            local a = 0.5 / math.sqrt(1 + n / OQ_WARM)
            if a < OQ_GAIN_MIN then a = OQ_GAIN_MIN end
            if x > v.oq then
                v.oq = v.oq * math.exp(a * OUTPUT_Q)
                if above then n = 0 end
                v.oqn = -(n + 1)
            else
                v.oq = v.oq * math.exp(-a * (1 - OUTPUT_Q))
                v.oqn = n + 1
            end
        end
        if v.oq > 1 then v.oq = 1 elseif v.oq < 0.001 then v.oq = 0.001 end
    end
    return err
end
