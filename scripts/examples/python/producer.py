#!/usr/bin/env python3
"""Push jobs onto an llmfleet queue (Debian: apt-get install python3-redis).

    producer.py [-n N] [--prefix P] [--model M] [--max-tokens K]

Each job is one JSON object LPUSHed onto llmfleet:{FLEET}:jobs; the
workers send its "request" to POST /v1/messages unchanged and echo "meta"
in the result. Ids must be unique forever (a job whose id already has a
result is dropped), hence the default prefix carries the time.

Environment: LLMFLEET_REDIS_URL (default redis://127.0.0.1:6379/0),
LLMFLEET_FLEET (default "default"). Prints the pushed ids, one a line.
"""
import argparse
import json
import sys
import time

import redis

from fleet import JOBS, REDIS_URL


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", "--count", type=int, default=10, help="jobs to push")
    ap.add_argument("--prefix", default=f"py-{int(time.time())}", help="id prefix")
    ap.add_argument("--model", default="claude-haiku-4-5")
    ap.add_argument("--max-tokens", type=int, default=64)
    args = ap.parse_args()

    r = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    pipe = r.pipeline(transaction=False)  # one round trip per batch
    ids = []
    for i in range(1, args.count + 1):
        job = {
            "id": f"{args.prefix}-{i}",
            "request": {
                "model": args.model,
                "max_tokens": args.max_tokens,
                "messages": [{"role": "user", "content": f"Say something about the number {i}."}],
            },
            "meta": {"lang": "python", "n": i},
        }
        pipe.lpush(JOBS, json.dumps(job, separators=(",", ":")))
        ids.append(job["id"])
        if len(pipe) >= 500:
            pipe.execute()
    pipe.execute()
    for job_id in ids:
        print(job_id)
    print(f"pushed {len(ids)} jobs to {JOBS}", file=sys.stderr)


if __name__ == "__main__":
    main()
