#!/usr/bin/env python3
"""promcheck.py — read a Prometheus text exposition (0.0.4) on stdin and
check what a scraper relies on: every sample belongs to a family declared
by one HELP and one TYPE line before it, a family's samples are together,
names and labels are well formed, values parse, a histogram's buckets are
cumulative and end with +Inf equal to its _count. Exit 1 naming the first
fault; with NAME[{LABELS}] arguments, print each one's value (or "absent")."""
import math
import re
import sys

NAME = re.compile(r'[a-zA-Z_:][a-zA-Z0-9_:]*$')
SAMPLE = re.compile(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


def labels_of(text):
    out, pos = [], 0
    while pos < len(text):
        m = LABEL.match(text, pos)
        if not m:
            raise ValueError('bad labels {%s}' % text)
        out.append((m.group(1), m.group(2)))
        pos = m.end()
    return tuple(out)


def main():
    families, types, samples, current, done = {}, {}, {}, None, set()
    for n, line in enumerate(sys.stdin.read().split('\n'), 1):
        if not line:
            continue
        if line.startswith('# '):
            kind, name = line.split(' ')[1:3]
            if kind not in ('HELP', 'TYPE'):
                continue
            if not NAME.match(name):
                sys.exit('line %d: bad family name %s' % (n, name))
            if (kind, name) in families:
                sys.exit('line %d: second %s for %s' % (n, kind, name))
            families[(kind, name)] = n
            if kind == 'TYPE':
                types[name] = line.split(' ')[3]
            if current and current != name:
                done.add(current)
            current = name
            continue
        m = SAMPLE.match(line)
        if not m:
            sys.exit('line %d: not a sample: %r' % (n, line))
        name, labels, value = m.group(1), labels_of(m.group(3) or ''), m.group(4)
        fam = name
        for suffix in ('_bucket', '_sum', '_count'):
            if name.endswith(suffix) and types.get(name[:-len(suffix)]) == 'histogram':
                fam = name[:-len(suffix)]
        if fam not in types or ('HELP', fam) not in families:
            sys.exit('line %d: %s has no HELP/TYPE before it' % (n, name))
        if fam != current or fam in done:
            sys.exit('line %d: %s is not with its family' % (n, name))
        v = float(value)
        if math.isnan(v):
            sys.exit('line %d: NaN' % n)
        key = (name, labels)
        if key in samples:
            sys.exit('line %d: duplicate sample %s%s' % (n, name, labels))
        samples[key] = v
    if not samples:
        sys.exit('no samples at all')
    for fam, t in types.items():
        if t != 'histogram':
            continue
        series = {}
        for (name, labels), v in samples.items():
            if name == fam + '_bucket':
                rest = tuple(l for l in labels if l[0] != 'le')
                le = dict(labels)['le']
                series.setdefault(rest, []).append((math.inf if le == '+Inf' else float(le), v))
        for rest, buckets in series.items():
            buckets.sort()
            counts = [c for _, c in buckets]
            if counts != sorted(counts) or buckets[-1][0] != math.inf:
                sys.exit('%s%s: buckets not cumulative or no +Inf' % (fam, rest))
            if samples.get((fam + '_count', rest)) != counts[-1]:
                sys.exit('%s%s: +Inf bucket is not _count' % (fam, rest))
    for want in sys.argv[1:]:
        m = SAMPLE.match(want + ' 0')
        key = (m.group(1), labels_of(m.group(3) or ''))
        v = samples.get(key)
        print('absent' if v is None else ('%d' % v if v == int(v) else repr(v)))


main()
