#!/usr/bin/env python3
"""trickle.py REDIS_URL FILE RATE [PREFIX] — LPUSH the jobs of FILE (JSON
lines) one at a time, RATE per second, on a fixed schedule (a late push
does not delay the next ones)."""
import sys
import time

import redis

url, path, rate = sys.argv[1], sys.argv[2], float(sys.argv[3])
prefix = sys.argv[4] if len(sys.argv) > 4 else "llmfleet:{default}"
r = redis.Redis.from_url(url)
with open(path, "rb") as f:
    jobs = [line.rstrip(b"\n") for line in f if line.strip()]
t0 = time.monotonic()
for i, job in enumerate(jobs):
    d = t0 + i / rate - time.monotonic()
    if d > 0:
        time.sleep(d)
    r.lpush(prefix + ":jobs", job)
