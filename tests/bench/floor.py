#!/usr/bin/env python3
"""floor.py PORT IDLE_PORT WORKERS RATE SECONDS JOBS GROUP... — the Redis CPU
per job of the least any queue worker does with a job, measured on this
machine at the fleet's own rate: the floor under the paced figure of
`make bench`, as libfloor is the floor under the idle worker's memory.

WORKERS connections (and as many more blocked in a BLMOVE on an empty list,
as the fleet's wakers are) call, round-robin on a fixed schedule, RATE jobs
a second in all, one function per GROUP jobs: it writes the results of the
jobs that worker took at its last call (an XADD each, a result of 300
bytes sent for each), drops their leases, and takes the next GROUP from the
queue into the worker's list, a lease each (LMPOP, RPUSH, ZADD), and
returns them. No pacing, no admission, no spend: a job is taken and its
result written, nothing else. A GROUP ending in "p" (8p) adds the least
pacing: one token bucket read, refilled, drawn and written (HMGET, HSET),
a reservation per job taken (HSET) and dropped at its result (HDEL), the
spend and the count in flight. GROUP "ping" sends only a PING a job: the
cost of a wake. Each connection calls once before the
span, so that every call in it writes GROUP results. The queue holds the
lines of JOBS (the bench's own jobs). For each GROUP, for SECONDS, prints

    GROUP redis_us_per_job idle_redis_us_per_job reads_per_job

(Redis's user + system CPU over the span, INFO cpu, per result written;
the idle redis-server at IDLE_PORT over the same span; Redis's reads from
clients, INFO stats total_reads_processed, per result: the round trips it
served, the two INFO calls and a HGET among them). Its keys (floor:*) are
deleted after each GROUP."""
import sys
import time

import redis

LIB = """#!lua name=llmfleet_floor
-- KEYS: results, the worker's list, leases, state, queue, reservations.
-- ARGV: GROUP, lease expiry, then a result for each job the list holds.
-- The results of the jobs the list holds (taken at the worker's last call)
-- are written, their leases dropped; then GROUP jobs are taken into the
-- list, each with a lease, and returned.
local function results(keys, argv, held)
    local ids = {}
    for i, job in ipairs(held) do
        redis.call('XADD', keys[1], 'MAXLEN', '~', '100000', '*',
                   'id', string.match(job, '^{"id":"([^"]*)"') or '', 'result', argv[2 + i])
        ids[i] = keys[2] .. ':' .. i
    end
    if #held > 0 then
        redis.call('DEL', keys[2])
        redis.call('ZREM', keys[3], unpack(ids))
        redis.call('HINCRBY', keys[4], 'done', #held)
    end
    return ids
end
local function take(keys, argv)
    local got = redis.call('LMPOP', 1, keys[5], 'RIGHT', 'COUNT', argv[1])
    if not got then return {} end
    local jobs, z = got[2], {}
    redis.call('RPUSH', keys[2], unpack(jobs))
    for i = 1, #jobs do z[#z + 1] = argv[2]; z[#z + 1] = keys[2] .. ':' .. i end
    redis.call('ZADD', keys[3], unpack(z))
    return jobs
end
redis.register_function('floor_step', function(keys, argv)
    results(keys, argv, redis.call('LRANGE', keys[2], 0, -1))
    return take(keys, argv)
end)
-- ... and the least pacing: a token bucket (level, time) refilled and
-- drawn by the jobs taken, each with a reservation its result drops, the
-- spend and the count in flight.
redis.register_function('floor_paced', function(keys, argv)
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    local held = redis.call('LRANGE', keys[2], 0, -1)
    local ids = results(keys, argv, held)
    if #ids > 0 then redis.call('HDEL', keys[6], unpack(ids)) end
    local b = redis.call('HMGET', keys[4], 'level', 't', 'inflight', 'spent')
    local level, bt = tonumber(b[1]) or 3000, tonumber(b[2]) or now
    local inflight, spent = (tonumber(b[3]) or 0) - #held, (tonumber(b[4]) or 0) + 3 * #held
    level = math.min(3000, level + (now - bt) * 3000 / 60000)
    local jobs = take(keys, argv)
    if #jobs > 0 then
        local res, rec = {}, string.format('1,%d', now)
        for i = 1, #jobs do
            res[#res + 1] = keys[2] .. ':' .. i
            res[#res + 1] = rec
        end
        redis.call('HSET', keys[6], unpack(res))
    end
    redis.call('HSET', keys[4], 'level', string.format('%d', level - #jobs), 't', string.format('%d', now),
               'inflight', string.format('%d', inflight + #jobs), 'spent', string.format('%d', spent))
    return jobs
end)
"""


def cpu_s(r):
    c = r.info("cpu")
    return float(c["used_cpu_sys"]) + float(c["used_cpu_user"])


def reads(r):
    return int(r.info("stats")["total_reads_processed"])


def measure(r, idle, secs, rate, per, step):
    """step() on a fixed schedule, per jobs each, rate jobs a second, for
    secs; returns the steps made and Redis's CPU (s), the idle Redis's CPU
    (s) and Redis's reads over them."""
    c0, i0, r0, t0 = cpu_s(r), cpu_s(idle), reads(r), time.monotonic()
    steps = 0
    while time.monotonic() - t0 < secs:
        step(steps)
        steps += 1
        d = t0 + steps * per / rate - time.monotonic()
        if d > 0:
            time.sleep(d)
    return steps, cpu_s(r) - c0, cpu_s(idle) - i0, reads(r) - r0


def run(port, idle, workers, rate, secs, jobs, group):
    r = redis.Redis(port=port)
    ws = [redis.Redis(port=port) for _ in range(workers)]
    if group == "ping":
        # a PING a job, round-robin, nothing else: what a wake of Redis's
        # event loop costs it at this rate
        for w in ws:
            w.ping()
        n, cpu, icpu, rd = measure(r, idle, secs, rate, 1, lambda k: ws[k % workers].ping())
    else:
        fn = "floor_paced" if group.endswith("p") else "floor_step"
        g = int(group.rstrip("p"))
        if g < 1:
            sys.exit("floor.py: GROUP must be positive, not %s" % group)
        r.delete("floor:q")
        need = int(rate * secs) + g * workers * 3
        for i in range(0, need, 500):
            r.lpush("floor:q", *[jobs[(i + k) % len(jobs)] for k in range(min(500, need - i))])
        blocked = []
        for i in range(workers):
            c = redis.Connection(port=port)
            c.send_command("BLMOVE", "floor:wake:%d" % i, "floor:woken", "RIGHT", "LEFT", "0")
            blocked.append(c)
        results = ["x" * 300] * g
        keys = ["floor:results", None, "floor:leases", "floor:state", "floor:q", "floor:reserved"]

        def call(k):
            keys[1] = "floor:held:%d" % (k % workers)
            if len(ws[k % workers].fcall(fn, 6, *keys, g, int(time.time() * 1000) + 60000, *results)) != g:
                sys.exit("floor.py: the queue ran dry")

        for k in range(workers):        # (untimed: every timed call writes g results)
            call(k)
        d0 = int(r.hget("floor:state", "done") or 0)
        calls, cpu, icpu, rd = measure(r, idle, secs, rate, g, call)
        n = int(r.hget("floor:state", "done")) - d0
        if n != calls * g:
            sys.exit("floor.py: %d results written by %d calls of %d" % (n, calls, g))
        for c in blocked:
            c.disconnect()
        r.delete(*r.keys("floor:*"))
    print("%s %.1f %.1f %.2f" % (group, cpu * 1e6 / n, icpu * 1e6 / n, rd / n))
    for w in ws:
        w.close()


def main():
    port, idle_port, workers = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    rate, secs = float(sys.argv[4]), float(sys.argv[5])
    if rate <= 0:
        sys.exit("floor.py: RATE must be positive, not %s" % sys.argv[4])
    with open(sys.argv[6], "rb") as f:
        jobs = [line.rstrip(b"\n") for line in f if line.strip()]
    r = redis.Redis(port=port)
    r.function_load(LIB, replace=True)
    idle = redis.Redis(port=idle_port)
    for g in sys.argv[7:]:
        run(port, idle, workers, rate, secs, jobs, g)
    r.function_delete("llmfleet_floor")


if __name__ == "__main__":
    main()
