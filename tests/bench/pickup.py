#!/usr/bin/env python3
"""pickup.py REDIS_URL N [PREFIX] — pickup latency of an idle fleet: N
times, LPUSH one job and wait (XREAD BLOCK) for its result; between jobs a
pause of 20-80 ms so the fleet is idle each time. Prints one JSON line:
{"n", "p50_ms", "p90_ms", "p99_ms"} (time from LPUSH to the result being
readable, through a fake API at 0 ms)."""
import json
import random
import sys
import time

import redis

url, n = sys.argv[1], int(sys.argv[2])
prefix = sys.argv[3] if len(sys.argv) > 3 else "llmfleet:{default}"
r = redis.Redis.from_url(url)
jobs, results = prefix + ":jobs", prefix + ":results"
last = r.xrevrange(results, count=1)
last = last[0][0] if last else b"0-0"
run = "%x" % random.getrandbits(32)
lat = []
for i in range(n):
    jid = "pk-%s-%d" % (run, i)
    job = {"id": jid, "request": {"model": "claude-sonnet-4-5", "max_tokens": 8,
                                  "messages": [{"role": "user", "content": "ping"}]}}
    time.sleep(random.uniform(0.02, 0.08))
    t0 = time.perf_counter()
    r.lpush(jobs, json.dumps(job))
    seen = False
    while not seen:
        got = r.xread({results: last}, block=5000)
        if not got:
            sys.exit("pickup: no result for %s within 5 s" % jid)
        for _, entries in got:
            for sid, fields in entries:
                last = sid
                if fields.get(b"id") == jid.encode():
                    seen = True
    lat.append((time.perf_counter() - t0) * 1000)
lat.sort()
q = lambda p: round(lat[min(len(lat) - 1, int(p * len(lat)))], 2)
print(json.dumps({"n": n, "p50_ms": q(0.5), "p90_ms": q(0.9), "p99_ms": q(0.99)}))
