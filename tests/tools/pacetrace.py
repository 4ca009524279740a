#!/usr/bin/env python3
"""pacetrace.py — the fleet's bucket estimates of one model class beside the
fake API's exact bucket levels, sampled while a fleet runs.

  pacetrace.py sample LLMFLEET REDIS_URL FAKE_URL CLASS OUT [FLEET] [PERIOD_MS]
      every PERIOD_MS (20; a sample takes ~25 ms here, so as fast as it
      goes) until killed, append a JSON line to OUT: t (s), now (Redis ms),
      from `LLMFLEET status --json` (the fleet's own figures, as admission
      computes them): est_i / est_o (the class's input and output
      estimates, null before the API reported the bucket), in_flight (the
      class's), parked, queued; and from the fake's /_stats: level_i /
      level_o (the exact levels of the class's buckets; the fake's class is
      CLASS's first word: sonnet-4 -> sonnet), messages and r429 (the
      fake's counts for that class).
  pacetrace.py summary OUT...
      per file: samples, the largest excess of the input estimate over the
      level (an over-estimate: 429s), the median and the lowest (under).

The two reads of a sample are a few ms apart, not atomic: a request
admitted between them shows as a one-sample excess of its size. Test use
only."""
import json
import subprocess
import sys
import time
import urllib.request


def sample(lf, redis_url, fake, cls, out, fleet='default', period_ms=20):
    fake_cls = cls.split('-')[0]
    with open(out, 'a') as o:
        while True:
            t = time.time()
            try:
                st = json.loads(subprocess.run(
                    [lf, 'status', '--json', '--redis-url', redis_url, '--fleet', fleet],
                    capture_output=True, check=True, timeout=5).stdout)
                c = next((x for x in st.get('classes', []) if x.get('class') == cls), {})
                fs = json.load(urllib.request.urlopen(fake + '/_stats', timeout=2))
                lv = fs.get('classes', {}).get(fake_cls, {})
                o.write(json.dumps({
                    't': t, 'now': st.get('now_ms'), 'est_i': c.get('i_estimate'),
                    'est_o': c.get('o_estimate'), 'in_flight': c.get('in_flight'),
                    'oq': c.get('output_quantile'),
                    'parked': st.get('parked'), 'queued': st.get('queued'),
                    'level_i': lv.get('level', {}).get('input'),
                    'level_o': lv.get('level', {}).get('output'),
                    'messages': lv.get('requests'), 'r429': lv.get('r429')}) + '\n')
            except (OSError, ValueError, subprocess.SubprocessError) as e:
                o.write(json.dumps({'t': t, 'error': str(e)}) + '\n')
            o.flush()
            time.sleep(max(0, period_ms / 1000 - (time.time() - t)))


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
    if argv[:1] == ['sample'] and 6 <= len(argv) <= 8:
        lf, redis_url, fake, cls, out = argv[1:6]
        fleet = argv[6] if len(argv) > 6 else 'default'
        period = int(argv[7]) if len(argv) > 7 else 20
        sample(lf, redis_url, fake, cls, out, fleet, period)
    elif argv[:1] == ['summary'] and len(argv) >= 2:
        summary(argv[1:])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
