-- stats.lua (library) — counters and rate buckets in `stats`: totals by
-- name, and per STATS_BUCKET_MS bucket q (requests), j (results), ti / to
-- (input / output tokens), STATS_BUCKETS of them kept.
local RATE_BUCKETS = 60000 / STATS_BUCKET_MS        -- one minute (a divisor: whole)

local function statsBucket(now) return math.floor(now / STATS_BUCKET_MS) end

-- Drop the bucket that just fell out of the kept range.
local function statsTrim(bucket)
    local old = bucket - STATS_BUCKETS
    rcall('HDEL', K.stats, 'q' .. old, 'j' .. old, 'ti' .. old, 'to' .. old)
end

-- Per-second rates over the last full minute (complete buckets only):
-- jobs, requests, input tokens, output tokens.
local function statsRates(stats, now, nb)
    nb = nb or RATE_BUCKETS
    local b = statsBucket(now)
    local j, q, ti, to = 0, 0, 0, 0
    for k = b - nb, b - 1 do
        j = j + (tonumber(stats['j' .. k]) or 0)
        q = q + (tonumber(stats['q' .. k]) or 0)
        ti = ti + (tonumber(stats['ti' .. k]) or 0)
        to = to + (tonumber(stats['to' .. k]) or 0)
    end
    local s = nb * STATS_BUCKET_MS / 1000
    return j / s, q / s, ti / s, to / s
end
