-- requeue.lua — `llmfleet dead requeue`: dead letters back to the queue.
--
-- An operator's explicit request to run a job again after its error result:
-- the entry leaves the dead list, its raw job (`job`, or `job_base64`
-- decoded: the exact bytes) goes to the consuming end of the queue, and its
-- id is forgotten (done, retry count, lost deliveries), so the new run
-- writes a new result: the stream then holds both, the dead letter's error
-- first. Oldest entries first. With an id, only the entries of that id (the
-- entry's, or for a job refused before its id was read, the job's own).
--
-- KEYS: the fleet's keys (proto.def).
-- ARGV[1] at most this many entries   ARGV[2] only this id ('' any)
-- Reply: {requeued, skipped (entries that are not llmfleet dead letters)}
local B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
local B64V = {}
for i = 1, 64 do B64V[string.byte(B64, i)] = i - 1 end

local function unbase64(s)
    local out, acc, bits = {}, 0, 0
    for i = 1, #s do
        local v = B64V[string.byte(s, i)]
        if v then
            acc = acc * 64 + v
            bits = bits + 6
            if bits >= 8 then
                bits = bits - 8
                local b = math.floor(acc / 2 ^ bits)
                out[#out + 1] = string.char(b)
                acc = acc - b * 2 ^ bits
            end
        end
    end
    return table.concat(out)
end

local now = nowMs()
local max = tonumber(ARGV[1]) or 0
local want = ARGV[2]
local n, skipped = 0, 0
local entries = rcall('LRANGE', K.dead, 0, -1)
for i = #entries, 1, -1 do                  -- LPUSHed: the oldest is last
    if n >= max then break end
    local e = entries[i]
    local ok, d = pcall(cjson.decode, e)
    local raw = nil
    if ok and type(d) == 'table' then
        if type(d.job) == 'string' then raw = d.job
        elseif type(d.job_base64) == 'string' then raw = unbase64(d.job_base64)
        elseif type(d.job_ref) == 'string' and d.job_ref ~= '' then
            raw = rcall('HGET', K.deadjob, d.job_ref) or nil     -- kept, too large to quote
        end
    end
    local id = ok and type(d) == 'table' and type(d.id) == 'string' and d.id or nil
    -- A job refused before its id was read (too big, not UTF-8) is still
    -- found by the id inside it.
    local jobId = id
    if raw and not id and want ~= '' then
        local okj, j = pcall(cjson.decode, raw)
        if okj and type(j) == 'table' and type(j.id) == 'string' then jobId = j.id end
    end
    if not raw then
        skipped = skipped + 1
    elseif want == '' or jobId == want then
        rcall('LREM', K.dead, 1, e)
        if type(d.job_ref) == 'string' and d.job_ref ~= '' then rcall('HDEL', K.deadjob, d.job_ref) end
        if id then
            rcall('SREM', K.done, id)
            rcall('HSET', K.redone, id, now)
            rcall('HDEL', K.attempts, id)
            rcall('HDEL', K.lost, id)
        end
        rcall('RPUSH', K.jobs, raw)
        reenter(1)
        n = n + 1
    end
end
return {n, skipped}
