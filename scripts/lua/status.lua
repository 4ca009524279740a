-- status.lua — the fleet at a glance, read in one atomic step. Writes
-- nothing.
--
-- KEYS: the fleet's keys (proto.def).
-- Reply: one string per STATUS field (proto.def's LF_STATUS), in that
-- order ("" where a field does not apply), then for each model class the
-- fleet has seen, one string per CLASS_STATUS field.
local now = nowMs()
local l = loadLimits()
local st = loadHash(K.state)
local stats = loadHash(K.stats)
local out = {}
local function put(k, v) out[STATUS[k]] = tostring(v) end
local classes = classList(st)

put('now_ms', now)
-- Queued: the list, and what the workers' wakers hold in their intakes
-- for a round trip (lib/claim.lua), so that nothing queued looks gone.
local queued = rcall('LLEN', K.jobs)
for _, name in ipairs(rcall('ZRANGEBYSCORE', K.intakes, '-inf', '+inf')) do
    queued = queued + rcall('LLEN', intakeOf(name))
end
put('queued', queued)
put('leased', rcall('ZCARD', K.leases))
put('in_flight', inFlight(now, st))
put('ceiling', st.ceiling or l.max_in_flight)
put('ceiling_mode', l.ceiling)
put('delayed', rcall('ZCARD', K.delayed))
put('parked', rcall('ZCARD', K.parked))
put('dead', rcall('LLEN', K.dead))
put('done', rcall('SCARD', K.done))
put('results', rcall('XLEN', K.results))
put('workers_alive', rcall('ZCOUNT', K.workers, '(' .. now, '+inf'))
-- The fleet's pause, or else the class pause that lasts longest.
local p = pauseNow(st, now)
if not p then
    for _, c in ipairs(classes) do
        local cp = pauseNow(st, now, c)
        if cp and (not p or cp.left > p.left) then
            p = cp
            p.reason = c .. ': ' .. cp.reason
        end
    end
end
-- A pause's four fields through putf.
local function putPause(putf, pz)
    putf('paused', pz and 1 or 0)
    if not pz then return end
    putf('pause_until_ms', now + pz.left)
    putf('pause_reason', pz.reason)
    putf('pause_kind', PAUSE_NAME[pz.kind] or 'short')
end
putPause(put, p)
put('spent_usd', string.format('%.6f', (tonumber(st.spent) or 0) / 1e6))
put('reserved_usd', string.format('%.6f', (tonumber(st.reserved) or 0) / 1e6))
put('max_spend_usd', l.max_spend_usd)
put('budget_stopped', st.budget_cap and st.budget_cap == l.max_spend_usd and 1 or 0)
put('spent_today_usd', string.format('%.6f', spentToday(st, now) / 1e6))
put('max_spend_usd_per_day', l.max_spend_usd_per_day)
put('day_stopped', dayStopped(st, l, now) and 1 or 0)
put('retries_last_min', rcall('ZCOUNT', K.retrylog, now - RETRY_WINDOW_MS, '+inf'))
put('retry_budget_per_min', l.retry_budget_per_min)
local j, q, ti, to = statsRates(stats, now)
put('jobs_per_s', string.format('%.1f', j))
put('requests_per_s', string.format('%.1f', q))
put('input_tokens_per_s', string.format('%.1f', ti))
put('output_tokens_per_s', string.format('%.1f', to))
j, q = statsRates(stats, now, 1)              -- the last whole 10 s: a burst shows
put('jobs_per_s_10s', string.format('%.1f', j))
put('requests_per_s_10s', string.format('%.1f', q))
for _, k in ipairs({'ok', 'error', 'requests', 'retries', 'r429', 'hard_floor_hits',
                    'retry_budget_refusals', 'lost_in_flight'}) do
    put('total_' .. k, stats[k] or 0)
end
put('latency_ewma_ms', math.floor(tonumber(st.ewma_ms) or 0))
put('prices_ver', st.prices_ver or 0)
put('failed_kept', rcall('ZCARD', K.failed))
-- The oldest queued job: arrival q_taken + 1 came no later than the first
-- mark at or above it ("" when no claim has counted it yet: status is
-- read-only, marks are the claims').
local qlen = tonumber(out[STATUS.queued])
if qlen > 0 then
    local m = rcall('ZRANGEBYSCORE', K.qmarks, istr((tonumber(st.q_taken) or 0) + 1), '+inf', 'LIMIT', 0, 1)
    if m[1] then put('oldest_queued_s', string.format('%d', math.floor((now - tonumber(m[1])) / 1000))) end
end
-- Until the backlog drains at the last minute's rate.
local backlog = qlen + tonumber(out[STATUS.delayed]) + tonumber(out[STATUS.parked]) + tonumber(out[STATUS.leased])
local jps = tonumber(out[STATUS.jobs_per_s])
if backlog > 0 and jps > 0 then put('eta_s', string.format('%d', math.ceil(backlog / jps))) end
-- The Batch lane: its open batches, their jobs, and what it saved (the
-- batch price is half the sync one: the saving is the batch cost).
local nb, bj = 0, 0
for _, bid in ipairs(rcall('ZRANGEBYSCORE', K.batches, '-inf', '+inf')) do
    nb = nb + 1
    bj = bj + (tonumber(rcall('HGET', K.batches .. ':' .. bid, 'n')) or 0)
end
put('batch_jobs', bj)
put('batches_open', nb)
put('batches_done', stats.batches_done or 0)
put('batch_saved_usd', string.format('%.6f', (tonumber(stats.batch_saved) or 0) / 1e6))
put('classes', #classes)
for i = 1, NSTATUS do out[i] = out[i] or '' end

local classCeil = parseMap(l.class_max_in_flight)
for _, c in ipairs(classes) do
    local base = #out + 1
    local function cput(k, v) out[base + CSTATUS[k]] = tostring(v) end
    cput('class', c)
    cput('in_flight', tonumber(st[cf(c, 'n_inflight')]) or 0)
    cput('ceiling', classCeil[c] or '')
    local function get(f) return st[cf(c, f)] end
    for _, b in ipairs(BUCKETS) do
        local est, lim = bucketEstimate(get, b, now, l.output_rule)
        if est then
            cput(b .. '_estimate', math.floor(est))
            cput(b .. '_limit', lim)
            cput(b .. '_soft_floor', math.floor(floorOf(l.soft_token_floor, lim)))
            cput(b .. '_hard_floor', math.floor(floorOf(l.hard_token_floor, lim)))
        end
    end
    putPause(cput, pauseNow(st, now, c))
    cput('input_calibration', string.format('%.3f', tonumber(st[cf(c, 'cal')]) or 1))
    cput('output_quantile', string.format('%.3f', tonumber(st[cf(c, 'oq')]) or 1))
    local en = tonumber(stats[cf(c, 'est_n')]) or 0
    if en > 0 then
        cput('estimate_error_pct', string.format('%.1f', (tonumber(stats[cf(c, 'est_err_ppm')]) or 0) / en / 1e4))
    end
    cput('requests', stats[cf(c, 'requests')] or 0)
    cput('r429', stats[cf(c, 'r429')] or 0)
    for i = base, base + NCSTATUS - 1 do out[i] = out[i] or '' end
end
return out
