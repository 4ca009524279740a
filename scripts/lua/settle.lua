-- settle.lua — end leases: account for the attempt, then write the result,
-- schedule a retry, dead-letter or requeue. Fenced by the lease token.
--
-- Each record: op, token, id, dead, 17 attempt values, nfields, fields...
-- A token whose lease is gone (reaped: its worker was stopped or too slow;
-- the reaper already released its reservation) changes nothing: -1.
--
-- Attempt values (A1..A17; "" when absent):
--   sent (1 when a request went out), http_status (0: transport failure),
--   cost_micro (of the usage; -1 unknown price), latency_ms, retryable,
--   retry_after_ms, spend_limit (1: enforced_spend_limit_reached), rand
--   (0..1, for jitter), r_lim, r_rem, i_lim, i_rem, o_lim, o_rem, reset_ms,
--   input_tokens, output_tokens
-- When sent: the reservation is released and spend settled (usage cost on
-- a 200, nothing for an API error, the whole reservation for an unknown
-- outcome); the rate-limit headers become the new bucket observation; a
-- 429 or a bucket under hard_token_floor pauses the fleet until the reset
-- the API gave (a long pause, with probes, past max_pause or for a spend
-- limit); a successful probe ends a long pause.
-- Ops:
--   R  write the result (fields), mark id done.
--   D  as R, plus LPUSH `dead` (a JSON entry) on the dead list.
--   F  retryable failure: retry later (delayed set, full-jitter backoff
--      from base_delay to max_delay, never under retry-after) when attempts
--      and the retry budget allow; else write the error result (fields),
--      its message prefixed with why it was not retried.
--   Q  requeue: back to the consuming end of the queue.
-- A result for an id that is done is refused (0): exactly one result per id.
--
-- KEYS[1] leases  KEYS[2] leasejob  KEYS[3] done  KEYS[4] attempts
-- KEYS[5] results KEYS[6] dead  KEYS[7] delayed  KEYS[8] delayedjob
-- KEYS[9] jobs  KEYS[10] limits  KEYS[11] state  KEYS[12] inflight
-- KEYS[13] reserv  KEYS[14] retrylog  KEYS[15] stats
-- ARGV[1] results stream MAXLEN (approximate)  ARGV[2..] records
-- Reply: one integer per record: 1 done, 2 retry scheduled, 0 duplicate,
-- -1 lease lost.
local NA = 17
local now = nowMs()
local l = loadLimits(KEYS[10])
local maxPause = tonumber(l.max_pause)
local bucket = math.floor(now / 10000)
local out = {}

local function num(s) if s == nil or s == '' then return nil end return tonumber(s) end

local function pause(untilMs, reason, long)
    local cur = tonumber(rcall('HGET', KEYS[11], 'pause_until')) or 0
    if cur > now and tonumber(rcall('HGET', KEYS[11], 'pause_long')) == 2 then
        return                          -- an operator's pause stays as it is
    end
    if untilMs <= cur and long == 0 then return end
    rcall('HSET', KEYS[11], 'pause_until', math.max(untilMs, cur),
          'pause_reason', reason, 'pause_long', long, 'pause_since', now)
    if long == 1 then
        rcall('HSET', KEYS[11], 'probe_at', now + tonumber(l.probe_interval))
    end
end

local function account(tok, a)
    local status = num(a[2]) or 0
    local cost = nil
    if status == 200 then cost = num(a[3]) or 0; if cost < 0 then cost = 0 end
    elseif status > 0 then cost = 0 end
    releaseReservation(KEYS[12], KEYS[13], KEYS[11], tok, cost)
    incr(KEYS[15], 'requests', 1)
    incr(KEYS[15], 'q' .. bucket, 1)

    -- The headers are the API's word on its buckets.
    local st = {}
    for i, b in ipairs({'r', 'i', 'o'}) do
        local lim, rem = num(a[8 + 2 * i - 1]), num(a[8 + 2 * i])
        if lim and rem then
            rcall('HSET', KEYS[11], b .. '_lim', lim, b .. '_rem', rem,
                  b .. '_at', now, b .. '_since', 0)
            st[b] = {lim, rem}
        end
    end
    local reset = num(a[15])
    local hard = l.hard_token_floor
    for _, b in ipairs({'i', 'o'}) do
        if st[b] and st[b][2] < floorOf(hard, st[b][1]) and reset and reset > now then
            pause(reset, 'hard floor: ' .. (b == 'i' and 'input' or 'output') ..
                  ' tokens remaining ' .. st[b][2] .. ' < hard_token_floor ' .. hard,
                  reset - now > maxPause and 1 or 0)
            incr(KEYS[15], 'hard_floor_hits', 1)
        end
    end

    local probeTok = rcall('HGET', KEYS[11], 'probe_token')
    if status == 429 then
        incr(KEYS[15], 'r429', 1)
        local ra = num(a[6]) or -1
        if num(a[7]) == 1 then
            pause(now + maxPause, 'spend limit: the API answered 429 ' ..
                  'enforced_spend_limit_reached; probing every ' ..
                  math.floor(tonumber(l.probe_interval) / 1000) .. ' s', 1)
        else
            local w = ra
            if w < 0 and reset then w = reset - now end
            if w < 0 then w = 1000 end
            if w > maxPause then
                pause(now + w, 'rate limit: the API asked to wait ' ..
                      math.floor(w / 1000) .. ' s (over max_pause); probing every ' ..
                      math.floor(tonumber(l.probe_interval) / 1000) .. ' s', 1)
            else
                pause(now + w, '429 rate_limit_error: waiting ' .. w .. ' ms', 0)
            end
        end
    elseif status == 200 then
        if probeTok == tok then
            rcall('HSET', KEYS[11], 'pause_until', 0, 'pause_long', 0, 'pause_reason', '')
        end
        local lat = num(a[4]) or 0
        local ew = tonumber(rcall('HGET', KEYS[11], 'ewma_ms'))
        local ei = tonumber(rcall('HGET', KEYS[11], 'ewma_in'))
        local eo = tonumber(rcall('HGET', KEYS[11], 'ewma_out'))
        local it, ot = num(a[16]) or 0, num(a[17]) or 0
        rcall('HSET', KEYS[11], 'ewma_ms', ew and ew * 0.9 + lat * 0.1 or lat,
              'ewma_in', ei and ei * 0.9 + it * 0.1 or it,
              'ewma_out', eo and eo * 0.9 + ot * 0.1 or ot)
        incr(KEYS[15], 'ti' .. bucket, it)
        incr(KEYS[15], 'to' .. bucket, ot)
    end
    if probeTok == tok then rcall('HDEL', KEYS[11], 'probe_token') end
end

local function writeResult(id, f0, nf, prefix)
    if id ~= '' and rcall('SISMEMBER', KEYS[3], id) == 1 then return 0 end
    local fields = {}
    for j = f0, f0 + nf - 1 do fields[#fields + 1] = ARGV[j] end
    local status = 'error'
    for j = 1, #fields - 1, 2 do
        if fields[j] == 'error_message' and prefix then
            fields[j + 1] = prefix .. fields[j + 1]
        elseif fields[j] == 'status' then
            status = fields[j + 1]
        end
    end
    rcall('XADD', KEYS[5], 'MAXLEN', '~', ARGV[1], '*', unpack(fields))
    if id ~= '' then
        rcall('SADD', KEYS[3], id)
        rcall('HDEL', KEYS[4], id)
    end
    incr(KEYS[15], status, 1)
    incr(KEYS[15], 'j' .. bucket, 1)
    return 1
end

local i = 2
while i <= #ARGV do
    local op, tok, id, dead = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
    local a = {}
    for j = 1, NA do a[j] = ARGV[i + 3 + j] end
    local nf = tonumber(ARGV[i + 4 + NA])
    local f0 = i + 5 + NA
    i = f0 + nf
    local job = nil
    if rcall('ZSCORE', KEYS[1], tok) then job = rcall('HGET', KEYS[2], tok) end
    if not job then
        out[#out + 1] = -1
    else
        if num(a[1]) == 1 then
            account(tok, a)
        else
            releaseReservation(KEYS[12], KEYS[13], KEYS[11], tok, 0)
        end
        if op == 'R' or op == 'D' then
            local r = writeResult(id, f0, nf, nil)
            if r == 1 and op == 'D' then rcall('LPUSH', KEYS[6], dead) end
            out[#out + 1] = r
        elseif op == 'F' then
            local att = tonumber(rcall('HGET', KEYS[4], id)) or 0
            local maxAtt = tonumber(l.max_attempts)
            rcall('ZREMRANGEBYSCORE', KEYS[14], '-inf', now - 60000)
            local budget = tonumber(l.retry_budget_per_min) or 0
            local used = rcall('ZCARD', KEYS[14]) + rcall('ZCARD', KEYS[7])
            if att >= maxAtt then
                out[#out + 1] = writeResult(id, f0, nf,
                    'gave up after ' .. att .. ' attempts (max_attempts): ')
            elseif used >= budget then
                out[#out + 1] = writeResult(id, f0, nf,
                    'not retried, the fleet retry budget is spent (retry_budget_per_min=' ..
                    budget .. ') after ' .. att .. ' attempts: ')
                incr(KEYS[15], 'retry_budget_refusals', 1)
            else
                local base, maxd = tonumber(l.base_delay), tonumber(l.max_delay)
                local capd = base
                for _ = 2, att do
                    if capd >= maxd then break end
                    capd = capd * 2
                end
                if capd > maxd then capd = maxd end
                local d = math.floor((num(a[8]) or 0.5) * capd)
                local ra = num(a[6]) or -1
                if d < ra then d = ra end
                rcall('ZADD', KEYS[7], now + d, tok)
                rcall('HSET', KEYS[8], tok, job)
                incr(KEYS[15], 'retries', 1)
                out[#out + 1] = 2
            end
        else
            rcall('RPUSH', KEYS[9], job)
            out[#out + 1] = 1
        end
        -- The lease goes last: should anything above fail, the job is still
        -- leased and the reaper puts it back (at least once, never lost).
        rcall('ZREM', KEYS[1], tok)
        rcall('HDEL', KEYS[2], tok)
    end
end
-- Keep the last ~80 s of 10-second rate buckets.
local old = bucket - 8
rcall('HDEL', KEYS[15], 'q' .. old, 'j' .. old, 'ti' .. old, 'to' .. old)
return out
