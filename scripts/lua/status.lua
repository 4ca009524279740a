-- status.lua — the fleet at a glance, read in one atomic step.
--
-- KEYS[1] jobs  KEYS[2] leases  KEYS[3] inflight  KEYS[4] delayed
-- KEYS[5] dead  KEYS[6] done  KEYS[7] results  KEYS[8] workers
-- KEYS[9] limits  KEYS[10] state  KEYS[11] stats  KEYS[12] retrylog
-- Reply: {name1, value1, name2, value2, ...} (values as strings)
local now = nowMs()
local l = loadLimits(KEYS[9])
local st = loadHash(KEYS[10])
local stats = loadHash(KEYS[11])
local out = {}
local function put(k, v) out[#out + 1] = k; out[#out + 1] = tostring(v) end

put('now_ms', now)
put('queued', rcall('LLEN', KEYS[1]))
put('leased', rcall('ZCARD', KEYS[2]))
put('in_flight', inFlight(KEYS[3], now))
put('ceiling', st.ceiling or l.max_in_flight)
put('ceiling_mode', l.ceiling)
put('delayed', rcall('ZCARD', KEYS[4]))
put('dead', rcall('LLEN', KEYS[5]))
put('done', rcall('SCARD', KEYS[6]))
put('results', rcall('XLEN', KEYS[7]))
put('workers_alive', rcall('ZCOUNT', KEYS[8], '(' .. now, '+inf'))
for _, b in ipairs({'r', 'i', 'o'}) do
    local est, lim = bucketEstimate(st, b, now, l.output_rule)
    if est then
        put(b .. '_estimate', math.floor(est))
        put(b .. '_limit', lim)
        put(b .. '_soft_floor', math.floor(floorOf(l.soft_token_floor, lim)))
        put(b .. '_hard_floor', math.floor(floorOf(l.hard_token_floor, lim)))
    end
end
local pu = tonumber(st.pause_until) or 0
put('paused', pu > now and 1 or 0)
if pu > now then
    put('pause_until_ms', pu)
    put('pause_reason', st.pause_reason or '')
    put('pause_kind', ({[0] = 'short', [1] = 'long', [2] = 'operator'})[tonumber(st.pause_long) or 0] or 'short')
end
put('spent_usd', string.format('%.6f', (tonumber(st.spent) or 0) / 1e6))
put('reserved_usd', string.format('%.6f', (tonumber(st.reserved) or 0) / 1e6))
put('max_spend_usd', l.max_spend_usd)
put('budget_stopped', st.budget_cap and st.budget_cap == l.max_spend_usd and 1 or 0)
put('retries_last_min', rcall('ZCOUNT', KEYS[12], now - 60000, '+inf'))
put('retry_budget_per_min', l.retry_budget_per_min)
-- Rates over the last full minute: six complete 10-second buckets.
local b = math.floor(now / 10000)
local j, ti, to, q = 0, 0, 0, 0
for k = b - 6, b - 1 do
    j = j + (tonumber(stats['j' .. k]) or 0)
    ti = ti + (tonumber(stats['ti' .. k]) or 0)
    to = to + (tonumber(stats['to' .. k]) or 0)
    q = q + (tonumber(stats['q' .. k]) or 0)
end
put('jobs_per_s', string.format('%.1f', j / 60))
put('requests_per_s', string.format('%.1f', q / 60))
put('input_tokens_per_s', string.format('%.1f', ti / 60))
put('output_tokens_per_s', string.format('%.1f', to / 60))
for _, k in ipairs({'ok', 'error', 'requests', 'retries', 'r429', 'hard_floor_hits',
                    'retry_budget_refusals', 'lost_in_flight'}) do
    put('total_' .. k, stats[k] or 0)
end
put('latency_ewma_ms', math.floor(tonumber(st.ewma_ms) or 0))
return out
