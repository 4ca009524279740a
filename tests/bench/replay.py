#!/usr/bin/env python3
"""replay.py DIR BIN [ROUNDS] — what each script costs Redis hot, with no
other load: a redis-server started from DIR/dump.rdb (BENCH_CAPTURE=DIR make bench: DIR/N)
with its clock set back to the snapshot (BIN/clockshim.so), BIN's function
library loaded, then DIR/mon.txt's commands sent one at a time, the scripts
renamed to BIN's library: each script's mean time per call from SLOWLOG (at
0 for the replay), and the share of it in the commands the scripts call
(INFO commandstats). REDIS_SERVER picks another server binary. A build's
Lua can so be compared with another's on the same traffic (its decisions
differ where the rules do).

REPLAY_IR=1 (implies REPLAY_EXACT): the server runs under valgrind's
callgrind, counting the instructions each FCALL runs (its Lua and the
commands it calls; not the network): per script, instructions per call,
and all of them per result the replay wrote. A count, not a time: the
same on a quiet machine and a busy one, so two builds compare to the
percent on one capture (this machine's timings drift 25-35 % an hour).
Debian's redis-server keeps the symbol it needs (fcallCommand).

REPLAY_EXACT=1: each command runs at the time MONITOR stamped on it
(Redis's clock stopped there, read at every call: the times are the same
for every build, the timings mean nothing), so two builds see the same clock and decide alike where their rules
do; under a profiler (REDIS_SERVER a valgrind wrapper) the counts compare
builds call for call. Each round ends with the dataset's digest (DEBUG
DIGEST): a change meant to decide nothing differently (a faster parse)
leaves the same digest as the build before it on the same capture."""
import collections
import glob
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

cap, binp = sys.argv[1], os.path.abspath(sys.argv[2])
rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
server = os.environ.get("REDIS_SERVER", "redis-server")
SKIP = {b"BLMOVE", b"MONITOR", b"INFO", b"SAVE", b"TIME", b"XLEN", b"CLIENT", b"HELLO",
        b"AUTH", b"SELECT", b"PING", b"FUNCTION"}
ESC = {"n": b"\n", "r": b"\r", "t": b"\t", "a": b"\a", "b": b"\b", '"': b'"', "\\": b"\\"}


def unquote(s):
    out, i = bytearray(), 0
    while i < len(s):
        if s[i] == "\\":
            if s[i + 1] == "x":
                out.append(int(s[i + 2:i + 4], 16))
                i += 4
                continue
            out += ESC.get(s[i + 1], s[i + 1].encode("latin1"))
            i += 2
            continue
        out += s[i].encode("latin1")
        i += 1
    return bytes(out)


def command(args):
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def reply(f):
    line = f.readline()
    kind, rest = line[:1], line[1:-2]
    if kind in b"+-:":
        return rest
    if kind == b"$":
        return None if int(rest) < 0 else f.read(int(rest) + 2)[:-2]
    if kind == b"*":
        return [reply(f) for _ in range(max(int(rest), 0))]
    raise ValueError(line)


cmds = []
for line in open(os.path.join(cap, "mon.txt"), encoding="latin1"):
    m = re.match(r'^(\d+)\.(\d+) \[\d+ ([^\]]+)\] (.*)$', line.rstrip("\n"))
    if not m or m.group(3) == "lua":
        continue
    args = [unquote(a) for a in re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(4))]
    if args and args[0].upper() not in SKIP:
        # (MONITOR's stamp, in whole ms: integers, not a float's rounding)
        cmds.append((int(m.group(1)) * 1000 + int(m.group(2).ljust(6, "0")[:6]) // 1000, args))
ir = os.environ.get("REPLAY_IR") == "1"
exact = ir or os.environ.get("REPLAY_EXACT") == "1"
# The results stream: the key of the captured FCALLs that ends in
# ":results" (a fleet of any name); what the replay wrote is the entries
# added to it (XINFO STREAM's entries-added: a MAXLEN trim or a replayed
# gc does not hide them).
RESULTS = next((k for _, a in cmds if a[0].upper() == b"FCALL"
                for k in a[3:3 + int(a[2])] if k.endswith(b":results")), b"")


def added(s, f):
    if not RESULTS:
        return 0
    s.sendall(command([b"XINFO", b"STREAM", RESULTS]))
    x = reply(f)
    if not isinstance(x, list):
        return 0                    # (no stream yet)
    d = dict(zip(x[0::2], x[1::2]))
    return int(d.get(b"entries-added", 0))


sec, usec = open(os.path.join(cap, "savetime")).read().split()[:2]
snap_ms = int(sec) * 1000 + int(usec) // 1000

res = collections.defaultdict(list)
digests = []
for _ in range(rounds):
    d = tempfile.mkdtemp(prefix="llmfleet-replay.")
    shutil.copy(os.path.join(cap, "dump.rdb"), d)
    port = int(subprocess.check_output([binp + "/freeport"]).strip())
    off = os.path.join(d, "offset")
    open(off, "w").write("%d" % (snap_ms - int(time.time() * 1000)))
    env = dict(os.environ, LD_PRELOAD=binp + "/clockshim.so", CLOCKSHIM_FILE=off)
    if exact:
        env["CLOCKSHIM_EVERY"] = "1"
    wrap = []
    if ir:
        wrap = ["valgrind", "-q", "--tool=callgrind", "--toggle-collect=fcallCommand",
                "--dump-after=fcallCommand", "--callgrind-out-file=" + d + "/cg.%p"]
    p = subprocess.Popen(wrap + [server, "--port", str(port), "--bind", "127.0.0.1", "--dir", d,
                          "--save", "", "--appendonly", "no", "--logfile", d + "/log",
                          "--enable-debug-command", "yes",
                          "--slowlog-log-slower-than", "-1", "--slowlog-max-len", "1000000"],
                         env=env)
    for _ in range(1200 if ir else 200):
        try:
            s = socket.create_connection(("127.0.0.1", port))
            break
        except OSError:
            time.sleep(0.05)
    f = s.makefile("rb")
    url = "redis://127.0.0.1:%d/0" % port
    subprocess.run([binp + "/llmfleet", "functions", "load", "--redis-url", url],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    lib = subprocess.check_output([binp + "/llmfleet", "functions", "list", "--redis-url", url]).decode()
    h = re.search(r"llmfleet_([0-9a-f]{12})[^\n]*this", lib).group(1).encode()
    open(off, "w").write("%d" % (snap_ms - int(time.time() * 1000)))
    time.sleep(0.03)                # (the shim reads its file every 20 ms)
    # (exact: no SLOWLOG, whose entries a profiler would count; the
    # timings mean nothing then)
    for c in ([b"CONFIG", b"RESETSTAT"], [b"SLOWLOG", b"RESET"],
              [b"CONFIG", b"SET", b"slowlog-log-slower-than", b"-1" if exact else b"0"]):
        s.sendall(command(c))
        reply(f)
    errors = collections.Counter()
    fnames = []                     # the scripts called, in order
    xadded0 = added(s, f)
    for t, a in cmds:
        if exact:
            open(off, "w").write("=%d" % t)
        if a[0].upper() == b"FCALL":
            a = [a[0], re.sub(rb"^lf_[0-9a-f]{12}_", b"lf_" + h + b"_", a[1])] + a[2:]
            fnames.append(a[1].decode().rsplit("_", 1)[-1])
        s.sendall(command(a))
        x = reply(f)
        if isinstance(x, bytes) and x.startswith(b"ERR") and a[0].upper() == b"FCALL":
            errors[x[:100]] += 1
    s.sendall(command([b"CONFIG", b"SET", b"slowlog-log-slower-than", b"-1"]))
    reply(f)
    results = added(s, f) - xadded0
    s.sendall(command([b"SLOWLOG", b"GET", b"-1"]))
    log = reply(f)
    s.sendall(command([b"INFO", b"commandstats"]))
    stats = reply(f).decode()
    total, calls = collections.Counter(), collections.Counter()
    for e in log:
        if e[3][0].upper() == b"FCALL":
            k = e[3][1].decode().rsplit("_", 1)[-1]
            total[k] += int(e[2])
            calls[k] += 1
    for k in calls:
        res[k + " us/call"].append(total[k] / calls[k])
    inner = fcall = 0
    for line in stats.splitlines():
        m = re.match(r"cmdstat_([^:]+):calls=\d+,usec=(\d+)", line)
        if not m or m.group(1) in ("slowlog", "config", "info", "function"):
            continue
        if m.group(1) == "fcall":
            fcall = int(m.group(2))
        else:
            inner += int(m.group(2))
    res["in commands %"].append(100.0 * inner / fcall if fcall else 0)
    for e, n in errors.items():
        print("error x%d: %s" % (n, e.decode(errors="replace")))
    # The whole dataset's digest: with REPLAY_EXACT, two builds that decide
    # alike (a refactor) leave the same one.
    s.sendall(command([b"DEBUG", b"DIGEST"]))
    digests.append(reply(f).decode())
    s.sendall(command([b"SHUTDOWN", b"NOSAVE"]))   # (a profiler around it writes its file)
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    if ir:
        # One profile part per FCALL, in order (cg.PID.1, .2, ...).
        parts = sorted(glob.glob(d + "/cg.*.*"), key=lambda x: int(x.rsplit(".", 1)[1]))
        if len(parts) != len(fnames):
            print("replay: %d profile parts for %d script calls" % (len(parts), len(fnames)))
        per, allIr = collections.defaultdict(list), 0
        for name, part in zip(fnames, parts):
            for line in open(part):
                if line.startswith("totals:"):
                    per[name].append(int(line.split()[1]))
                    allIr += int(line.split()[1])
                    break
        for k, v in per.items():
            res[k + " Ir/call"].append(sum(v) / len(v))
            res[k + " calls"].append(len(v))
        res["all Ir/result"].append(allIr / results if results > 0 else 0)
        res["results"].append(results)
    shutil.rmtree(d)
for k, v in sorted(res.items()):
    if ir and ("us/call" in k or k == "in commands %"):
        continue                    # (times under a profiler mean nothing)
    print("%-18s %s" % (k, " ".join("%.0f" % x if ir else "%.1f" % x for x in v)))
print("%-18s %s" % ("digest", " ".join(digests)))
