-- purge.lua — `llmfleet dead purge`: drop every dead letter (and the jobs
-- kept for letters too large to quote them).
--
-- KEYS: the fleet's keys (proto.def).
-- Reply: how many were dropped.
local n = rcall('LLEN', K.dead)
rcall('DEL', K.dead, K.deadjob)
return n
