-- settle.lua — end leases: write results, schedule retries, hand jobs back.
--
-- A batch of records, each: op, token, id, extra, nfields, field, value, ...
-- Every op first checks the lease (fencing): a token whose lease is gone
-- (reaped while this worker was stopped or too slow) changes nothing.
--   R  result: XADD the fields to the results stream, mark id done, forget
--      its attempts. A second result for a done id is refused (dup).
--   D  dead letter: as R, plus LPUSH extra (a JSON entry) on the dead list.
--      With an empty id (unreadable job) nothing is marked done.
--   T  retry: the job waits in the delayed set until now + extra ms.
--   Q  requeue: the job goes back to the consuming end of the queue now.
-- The lease is released in every case.
--
-- KEYS[1] leases  KEYS[2] leasejob  KEYS[3] done  KEYS[4] attempts
-- KEYS[5] results KEYS[6] dead      KEYS[7] delayed  KEYS[8] delayedjob
-- KEYS[9] jobs
-- ARGV[1] results stream MAXLEN (approximate)
-- ARGV[2..] records
-- Reply: one integer per record: 1 done, 0 duplicate, -1 lease lost.
local rcall = redis.call
local out = {}
local now
local i = 2
while i <= #ARGV do
    local op, tok, id, extra = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
    local nf = tonumber(ARGV[i + 4])
    local f0 = i + 5
    i = f0 + nf
    local job = nil
    if rcall('ZSCORE', KEYS[1], tok) then job = rcall('HGET', KEYS[2], tok) end
    if not job then
        out[#out + 1] = -1
    else
        rcall('ZREM', KEYS[1], tok)
        rcall('HDEL', KEYS[2], tok)
        if op == 'R' or op == 'D' then
            if id ~= '' and rcall('SISMEMBER', KEYS[3], id) == 1 then
                out[#out + 1] = 0
            else
                rcall('XADD', KEYS[5], 'MAXLEN', '~', ARGV[1], '*',
                      unpack(ARGV, f0, f0 + nf - 1))
                if id ~= '' then
                    rcall('SADD', KEYS[3], id)
                    rcall('HDEL', KEYS[4], id)
                end
                if op == 'D' then rcall('LPUSH', KEYS[6], extra) end
                out[#out + 1] = 1
            end
        elseif op == 'T' then
            if not now then
                local t = rcall('TIME')
                now = t[1] * 1000 + math.floor(t[2] / 1000)
            end
            rcall('ZADD', KEYS[7], now + tonumber(extra), tok)
            rcall('HSET', KEYS[8], tok, job)
            out[#out + 1] = 1
        else
            rcall('RPUSH', KEYS[9], job)
            out[#out + 1] = 1
        end
    end
end
return out
