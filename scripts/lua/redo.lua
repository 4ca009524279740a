-- redo.lua — `llmfleet retry`: jobs whose result was an error, run again.
--
-- settle.lua keeps the exact bytes of every job that ended in an error
-- result (`failedjob`, `failed`). A retry puts them at the consuming end of
-- the queue and forgets the id (done, retry count, lost deliveries), so
-- the new run writes a new result: the stream then holds both, the error
-- first (`redone` notes when, for gc). An id with a copy at the API now
-- (`live`) is left alone.
--
-- KEYS: the fleet's keys (proto.def).
-- ARGV[1] this id only ('' every kept job)   ARGV[2] only this error_type
-- ('' any)   ARGV[3] at most this many   ARGV[4] skip the first N kept jobs
-- (oldest first; the CLI pages with it)   ARGV[5] only jobs kept up to this
-- time (ms; '' now): the first page's, so that a retried job that fails
-- again during the run is not retried again by a later page
-- Reply: {requeued, skipped (type differs or live), missing (not kept),
--         more (1: there may be more kept jobs after this page), cutoff}
local now = nowMs()
local want, etype = ARGV[1], ARGV[2]
local max, skip = tonumber(ARGV[3]) or 0, tonumber(ARGV[4]) or 0
local cutoff = tonumber(ARGV[5]) or now
local ids, more = {want}, 0
if want == '' then
    ids = rcall('ZRANGEBYSCORE', K.failed, '-inf', istr(cutoff), 'LIMIT', skip, max)
    if #ids == max then more = 1 end
end
local n, skipped, missing = 0, 0, 0
for _, id in ipairs(ids) do
    local v = rcall('HGET', K.failedjob, id)
    local nl = v and string.find(v, '\n', 1, true)
    if not nl then
        missing = missing + 1
        rcall('ZREM', K.failed, id)
        if v then rcall('HDEL', K.failedjob, id) end
    elseif (etype ~= '' and string.sub(v, 1, nl - 1) ~= etype) or rcall('HGET', K.live, id) then
        skipped = skipped + 1
    else
        rcall('RPUSH', K.jobs, string.sub(v, nl + 1))
        reenter(1)
        rcall('SREM', K.done, id)
        rcall('HSET', K.redone, id, now)
        rcall('HDEL', K.attempts, id)
        rcall('HDEL', K.lost, id)
        rcall('HDEL', K.failedjob, id)
        rcall('ZREM', K.failed, id)
        n = n + 1
    end
end
return {n, skipped, missing, more, istr(cutoff)}
