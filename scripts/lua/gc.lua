-- gc.lua — `llmfleet gc --older-than D`: the fleet's retention, a bounded
-- step per call (the CLI calls again from where the last one ended).
--
-- Walks the results stream's entries older than D, oldest first, and
-- deletes them (XDEL); each one's id is forgotten with it (out of `done`,
-- its kept failed job dropped), unless an operator requeued the id after
-- that entry was written (`redone`: the entry is superseded, the id's
-- newer result decides). An entry whose id has a copy at the API (`live`)
-- or waiting for a retry (`attempts`) is kept, id and all. A job pushed
-- again after its id was forgotten runs again: D must be longer than any
-- producer's resubmission window. Entries the stream's MAXLEN dropped took
-- nothing with them: their ids stay done. Also drops prompt-cache entries
-- that have expired.
--
-- KEYS: the fleet's keys (proto.def).
-- ARGV[1] D (ms)   ARGV[2] entries per call   ARGV[3] go on after this
-- stream id ('' from the start)   ARGV[4] cache HSCAN cursor ('' done)
-- Reply: {forgotten, kept, deleted, cache_pruned, last_id, cursor, more}
local now = nowMs()
local cutoff = now - tonumber(ARGV[1])
local max = tonumber(ARGV[2]) or 1000
local from = ARGV[3] == '' and '-' or '(' .. ARGV[3]
local entries = rcall('XRANGE', K.results, from, istr(cutoff), 'COUNT', max)
local del, forget, unredo, kept, last = {}, {}, {}, 0, ARGV[3]
for _, e in ipairs(entries) do
    last = e[1]
    local f, id = e[2], nil
    for j = 1, #f - 1, 2 do
        if f[j] == 'id' then id = f[j + 1] break end
    end
    if id == '' then id = nil end
    if id and (rcall('HGET', K.live, id) or rcall('HGET', K.attempts, id)) then
        kept = kept + 1
    else
        del[#del + 1] = e[1]
        if id then
            local redo = tonumber(rcall('HGET', K.redone, id) or '')
            local at = tonumber(string.match(e[1], '^(%d+)'))
            if not redo or redo <= at then
                forget[#forget + 1] = id
                if redo then unredo[#unredo + 1] = id end
            end
        end
    end
end
if #del > 0 then bulk('XDEL', K.results, del, 1) end
if #forget > 0 then
    bulk('SREM', K.done, forget, 1)
    bulk('ZREM', K.failed, forget, 1)
    bulk('HDEL', K.failedjob, forget, 1)
end
if #unredo > 0 then bulk('HDEL', K.redone, unredo, 1) end

local pruned, cursor = 0, ARGV[4]
if cursor ~= '' then
    local page = rcall('HSCAN', K.cache, cursor, 'COUNT', 200)
    cursor = page[1]
    local gone = {}
    for i = 1, #page[2], 2 do
        local exp = tonumber(string.match(page[2][i + 1], ',(%d+)$'))
        if not exp or exp < now then gone[#gone + 1] = page[2][i] end
    end
    if #gone > 0 then bulk('HDEL', K.cache, gone, 1) end
    pruned = #gone
    if cursor == '0' then cursor = '' end
end
local more = (#entries == max or cursor ~= '') and 1 or 0
return {#forget, kept, #del, pruned, last, cursor, more}
