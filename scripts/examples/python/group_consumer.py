#!/usr/bin/env python3
"""Share llmfleet results between consumers: XREADGROUP + XACK.

    group_consumer.py [--group G] [--name C] [--start ID] [--claim-idle-ms MS]

Every consumer of a group gets its own share of llmfleet:{FLEET}:results:
each entry goes to one of them, which prints it (JSONL, as consumer.py
does, plus "consumer") and then XACKs it. Run as many as you like with the
same --group and different --name.

- The group is created (XGROUP CREATE .. MKSTREAM) when it does not exist,
  reading after --start ("$", the default: results from now on; "0": all).
- On start a consumer first takes back its own pending entries (those it
  read but did not acknowledge before it stopped), then reads new ones.
- Entries that another consumer read and left unacknowledged for
  --claim-idle-ms (it died) are taken over with XAUTOCLAIM.
- --count N exits after N results; SIGINT / SIGTERM stop it after the
  current batch, everything printed acknowledged.

Handling is at least once: an entry printed just before a crash, not yet
acknowledged, is printed again after the restart. Make what you do with a
result idempotent by its "id".

Environment: LLMFLEET_REDIS_URL (default redis://127.0.0.1:6379/0),
LLMFLEET_FLEET (default "default").
"""
import argparse
import json
import os
import signal
import socket
import sys
import time

import redis

from fleet import REDIS_URL, RESULTS, result_json


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--group", default="printers")
    ap.add_argument("--name", default=f"{socket.gethostname()}:{os.getpid()}")
    ap.add_argument("--start", default="$", help="where a new group starts reading")
    ap.add_argument("--claim-idle-ms", type=int, default=60000)
    ap.add_argument("--count", type=int, default=0, help="exit after N results")
    args = ap.parse_args()

    stop = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.append(True))

    r = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        r.xgroup_create(RESULTS, args.group, id=args.start, mkstream=True)
    except redis.ResponseError as e:
        if "BUSYGROUP" not in str(e):  # it exists already: fine
            raise

    seen = 0

    def handle(entries):
        """Print a batch, then acknowledge it: at least once."""
        nonlocal seen
        for stream_id, fields in entries:
            if fields:  # None / empty: trimmed from the stream meanwhile
                out = result_json(stream_id, fields)
                out["consumer"] = args.name
                print(json.dumps(out, ensure_ascii=False), flush=True)
                seen += 1
        if entries:
            r.xack(RESULTS, args.group, *[stream_id for stream_id, _ in entries])

    def room():
        """How many entries the next read may take (--count: no more than left)."""
        return min(500, args.count - seen) if args.count else 500

    # 1. Our own pending entries, from a previous run that did not ack.
    while not stop and room() > 0:
        reply = r.xreadgroup(args.group, args.name, {RESULTS: "0"}, count=room())
        entries = reply[0][1] if reply else []
        if not entries:
            break
        handle(entries)

    # 2. New entries, and now and then those a dead consumer left behind.
    next_claim = 0.0
    while not stop and room() > 0:
        if time.monotonic() >= next_claim:
            next_claim = time.monotonic() + max(args.claim_idle_ms / 2000, 0.1)
            cursor = "0-0"
            while room() > 0:
                cursor, claimed = r.xautoclaim(RESULTS, args.group, args.name,
                                               args.claim_idle_ms, cursor, count=room())[:2]
                handle(claimed)
                if cursor == "0-0":
                    break
            if room() == 0:
                break
        reply = r.xreadgroup(args.group, args.name, {RESULTS: ">"}, count=room(), block=1000)
        if reply:
            handle(reply[0][1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
