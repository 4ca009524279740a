-- pause.lua — `llmfleet pause` / `resume`: an operator's pause (until the
-- operator resumes; in-flight requests finish, jobs stay queued), or its
-- end. Resuming ends whatever pause is in force, as an operator would
-- expect, but not a stop at the spend cap: that lifts when the cap does.
--
-- KEYS: the fleet's keys (proto.def).
-- ARGV: PA (KIND: PAUSE.OPERATOR to pause, -1 to resume; REASON).
-- Reply: {was_paused (0/1), budget_stopped (0/1)}.
local now = nowMs()
local st = loadHash(K.state)
local l = loadLimits()
local set = {}
local P = pauseOpen(st, set)
local was = pauseNow(st, now) and 1 or 0
if tonumber(ARGV[PA.KIND]) == PAUSE.OPERATOR then
    set.pause_until, set.pause_kind, set.pause_reason, set.pause_since =
        FOREVER_MS, PAUSE.OPERATOR, ARGV[PA.REASON], now
else
    pauseEnd(P, now)
end
local kv = {}
for k, v in pairs(set) do kv[#kv + 1] = k; kv[#kv + 1] = v end
rcall('HSET', K.state, unpack(kv))
local stopped = (st.budget_cap and l.max_spend_usd ~= '' and
                 st.budget_cap == l.max_spend_usd or dayStopped(st, l, now)) and 1 or 0
return {was, stopped}
