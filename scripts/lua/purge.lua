-- purge.lua — `llmfleet dead purge`: drop every dead letter.
--
-- KEYS: the fleet's keys (proto.def).
-- Reply: how many were dropped.
local n = rcall('LLEN', K.dead)
rcall('DEL', K.dead)
return n
