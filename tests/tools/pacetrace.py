#!/usr/bin/env python3
"""pacetrace.py — the fleet's bucket estimates of one model class beside the
fake API's exact bucket levels, sampled while a fleet runs.

  pacetrace.py sample REDIS_PORT FAKE_URL CLASS OUT [FLEET] [PERIOD_MS]
      every PERIOD_MS (20) until killed, append a JSON line to OUT:
      t (s), now (Redis ms), est_i / est_o (the fleet's input and output
      estimates, computed as bucketEstimateF in scripts/lua/lib/bucket.lua
      does, null before the API reported the bucket), pend_i, n_inflight,
      cum_i, parked (ZCARD), queued (LLEN), and from the fake's /_stats:
      level_i / level_o (the exact levels of the class's buckets; the
      fake's class is CLASS's first word: sonnet-4 -> sonnet), messages
      and r429 (the fake's counts for that class).
  pacetrace.py summary OUT...
      per file: samples, the largest excess of the input estimate over the
      level (an over-estimate: 429s), the median and the lowest (under).

The two reads of a sample are ~1 ms apart, not atomic: a request admitted
between them shows as a one-sample excess of its size. Test use only: it
reads the fleet's keys as the default Redis user (rcli's)."""
import json
import socket
import sys
import time
import urllib.request

LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local c = ARGV[1]
local function g(f) return tonumber(redis.call('HGET', KEYS[1], c .. '|' .. f)) end
local function est(b, actual)
    local lim = g(b .. '_lim')
    if not lim or lim <= 0 then return nil end
    local e = g(b .. '_rem') + (now - g(b .. '_at')) * lim / 60000
    if e > lim then e = lim end
    if actual then
        e = e - ((g('o_done') or 0) - (g('o_base') or 0)) - (g('o_inflight') or 0)
    else
        e = e - ((g(b .. '_cum') or 0) - (g(b .. '_base') or 0))
    end
    return tostring(e - (g(b .. '_pend') or 0))
end
local actual = (redis.call('HGET', KEYS[2], 'output_rule') or 'actual') == 'actual'
return {tostring(now), est('i', false) or '', est('o', actual) or '',
        tostring(g('i_pend') or 0), tostring(g('n_inflight') or 0), tostring(g('i_cum') or 0),
        tostring(redis.call('ZCARD', KEYS[3])), tostring(redis.call('LLEN', KEYS[4]))}
"""


def resp(*args):
    out = b'*%d\r\n' % len(args)
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        out += b'$%d\r\n%s\r\n' % (len(a), a)
    return out


def read(f):
    line = f.readline()
    kind, rest = line[:1], line[1:].strip()
    if kind == b'*':
        return [read(f) for _ in range(int(rest))]
    if kind == b'$':
        n = int(rest)
        return None if n < 0 else f.read(n + 2)[:-2].decode()
    if kind == b'-':
        raise RuntimeError(rest.decode())
    return rest.decode()


def num(s):
    return float(s) if s not in (None, '') else None


def sample(port, fake, cls, out, fleet='default', period_ms=20):
    keys = ['llmfleet:{%s}:%s' % (fleet, k) for k in ('state', 'limits', 'parked', 'jobs')]
    fake_cls = cls.split('-')[0]
    sock = socket.create_connection(('127.0.0.1', int(port)))
    f = sock.makefile('rb')
    with open(out, 'a') as o:
        while True:
            try:
                sock.sendall(resp('EVAL', LUA, '4', *keys, cls))
                r = read(f)
                st = json.load(urllib.request.urlopen(fake + '/_stats', timeout=2))
                c = st.get('classes', {}).get(fake_cls, {})
                lv = c.get('level', {})
                o.write(json.dumps({
                    't': time.time(), 'now': int(r[0]), 'est_i': num(r[1]), 'est_o': num(r[2]),
                    'pend_i': num(r[3]), 'n_inflight': num(r[4]), 'cum_i': num(r[5]),
                    'parked': int(r[6]), 'queued': int(r[7]),
                    'level_i': lv.get('input'), 'level_o': lv.get('output'),
                    'messages': c.get('requests'), 'r429': c.get('r429')}) + '\n')
            except (OSError, ValueError, RuntimeError) as e:
                o.write(json.dumps({'t': time.time(), 'error': str(e)}) + '\n')
            o.flush()
            time.sleep(period_ms / 1000)


def summary(paths):
    for p in paths:
        errs = []
        with open(p) as f:
            for line in f:
                s = json.loads(line)
                if s.get('est_i') is not None and s.get('level_i') is not None:
                    errs.append(s['est_i'] - s['level_i'])
        if not errs:
            print('%s: no sample with both figures' % p)
            continue
        errs.sort()
        print('%s: %d samples, estimate - level: max %+.0f, median %+.0f, min %+.0f'
              % (p, len(errs), errs[-1], errs[len(errs) // 2], errs[0]))


def main(argv):
    if argv[:1] == ['sample'] and 5 <= len(argv) <= 7:
        port, fake, cls, out = argv[1:5]
        fleet = argv[5] if len(argv) > 5 else 'default'
        period = int(argv[6]) if len(argv) > 6 else 20
        sample(port, fake, cls, out, fleet, period)
    elif argv[:1] == ['summary'] and len(argv) >= 2:
        summary(argv[1:])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
