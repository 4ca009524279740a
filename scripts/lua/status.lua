-- status.lua — the fleet at a glance, read in one atomic step. Writes
-- nothing.
--
-- KEYS: the fleet's keys (proto.def).
-- Reply: one string per STATUS field (proto.def's LF_STATUS), in that
-- order; "" where a field does not apply.
local now = nowMs()
local l = loadLimits()
local st = loadHash(K.state)
local stats = loadHash(K.stats)
local out = {}
local function put(k, v) out[STATUS[k]] = tostring(v) end

put('now_ms', now)
put('queued', rcall('LLEN', K.jobs))
put('leased', rcall('ZCARD', K.leases))
put('in_flight', inFlight(now))
put('ceiling', st.ceiling or l.max_in_flight)
put('ceiling_mode', l.ceiling)
put('delayed', rcall('ZCARD', K.delayed))
put('dead', rcall('LLEN', K.dead))
put('done', rcall('SCARD', K.done))
put('results', rcall('XLEN', K.results))
put('workers_alive', rcall('ZCOUNT', K.workers, '(' .. now, '+inf'))
for _, b in ipairs(BUCKETS) do
    local est, lim = bucketEstimate(st, b, now, l.output_rule)
    if est then
        put(b .. '_estimate', math.floor(est))
        put(b .. '_limit', lim)
        put(b .. '_soft_floor', math.floor(floorOf(l.soft_token_floor, lim)))
        put(b .. '_hard_floor', math.floor(floorOf(l.hard_token_floor, lim)))
    end
end
local p = pauseNow(st, now)
put('paused', p and 1 or 0)
if p then
    put('pause_until_ms', st.pause_until)
    put('pause_reason', p.reason)
    put('pause_kind', PAUSE_NAME[p.kind] or 'short')
end
put('spent_usd', string.format('%.6f', (tonumber(st.spent) or 0) / 1e6))
put('reserved_usd', string.format('%.6f', (tonumber(st.reserved) or 0) / 1e6))
put('max_spend_usd', l.max_spend_usd)
put('budget_stopped', st.budget_cap and st.budget_cap == l.max_spend_usd and 1 or 0)
put('retries_last_min', rcall('ZCOUNT', K.retrylog, now - RETRY_WINDOW_MS, '+inf'))
put('retry_budget_per_min', l.retry_budget_per_min)
local j, q, ti, to = statsRates(stats, now)
put('jobs_per_s', string.format('%.1f', j))
put('requests_per_s', string.format('%.1f', q))
put('input_tokens_per_s', string.format('%.1f', ti))
put('output_tokens_per_s', string.format('%.1f', to))
for _, k in ipairs({'ok', 'error', 'requests', 'retries', 'r429', 'hard_floor_hits',
                    'retry_budget_refusals', 'lost_in_flight'}) do
    put('total_' .. k, stats[k] or 0)
end
put('latency_ewma_ms', math.floor(tonumber(st.ewma_ms) or 0))
put('prices_ver', st.prices_ver or 0)
for i = 1, NSTATUS do out[i] = out[i] or '' end
return out
