#!/usr/bin/env python3
"""Follow llmfleet results with XREAD BLOCK and print them as JSONL.

    consumer.py [--from ID] [--count N] [--timeout S]

Reads llmfleet:{FLEET}:results after stream id ID ("0", the default: from
the beginning; "$": only results written from now on) and keeps following
it. Each line is one result: its fields (README "Result format") with
"response" and "meta" as JSON, the counts as numbers, and "stream_id", the
entry's id: pass the last one to --from to resume where you stopped.

--count N exits 0 after N results; --timeout S exits 1 when no result came
for S seconds. SIGINT / SIGTERM stop it cleanly.

Environment: LLMFLEET_REDIS_URL (default redis://127.0.0.1:6379/0),
LLMFLEET_FLEET (default "default").
"""
import argparse
import json
import signal
import sys
import time

import redis

from fleet import REDIS_URL, RESULTS, result_json


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--from", dest="start", default="0", help='stream id to read after ("0", "$")')
    ap.add_argument("--count", type=int, default=0, help="exit after N results")
    ap.add_argument("--timeout", type=float, default=0, help="exit 1 after S idle seconds")
    args = ap.parse_args()

    stop = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.append(True))

    r = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    last = args.start
    if last == "$":
        # Resolve "$" once: XREAD BLOCK with "$" on every call would miss
        # whatever arrives between two calls.
        newest = r.xrevrange(RESULTS, count=1)
        last = newest[0][0] if newest else "0"

    seen = 0
    idle_since = time.monotonic()
    while not stop:
        # BLOCK 1000: wake up every second to look at the stop flag.
        reply = r.xread({RESULTS: last}, count=500, block=1000)
        if not reply:
            if args.timeout and time.monotonic() - idle_since > args.timeout:
                print(f"consumer: no result for {args.timeout:g} s", file=sys.stderr)
                return 1
            continue
        idle_since = time.monotonic()
        for _stream, entries in reply:
            for stream_id, fields in entries:
                print(json.dumps(result_json(stream_id, fields), ensure_ascii=False), flush=True)
                last = stream_id
                seen += 1
                if args.count and seen >= args.count:
                    return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
