#!/usr/bin/env python3
"""Measures `mmon watch`: append-to-alert latency, sustained rate, idle CPU.

Run through bench/watch.sh, which builds the release binary first.
Every record is {"timestamp": T, "n": X}; the config opens a window for each
record with n = 1 (threshold above 0.5, window 1, merge_gap 0), so an
`opened` line on stdout marks the moment that record reached the pipeline.
"""
import json, os, random, subprocess, sys, tempfile, threading, time

MMON = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/release/mmon")
CONFIG = ('[[monitor]]\nmetric = "n"\ndetector = "threshold"\n'
          'params = { window = 1, above = 0.5 }\n[report]\nmerge_gap = 0\n')


def rec(t, n):
    return '{"timestamp":%d,"n":%d}\n' % (1_700_000_000 + t, n)


def start(d, args):
    p = subprocess.Popen([MMON, "watch", "--format", "jsonl", "-v", "--config",
                          os.path.join(d, "mmon.toml")] + args, cwd=d,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in p.stderr:  # wait for the follower to be ready
        if "watching" in line:
            break
    threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()
    return p


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def latency(poll, n=200):
    with tempfile.TemporaryDirectory() as d:
        open(os.path.join(d, "mmon.toml"), "w").write(CONFIG)
        log = os.path.join(d, "app.jsonl")
        open(log, "w").close()
        p = start(d, ["app.jsonl"] + (["--poll"] if poll else []))
        out, t = [], 0
        f = open(log, "a")
        for i in range(n):
            time.sleep(random.uniform(0.0, 0.1))
            f.write(rec(t, 0)); f.flush(); t += 1
            t0 = time.monotonic()
            f.write(rec(t, 1)); f.flush(); t += 1
            while True:
                line = p.stdout.readline()
                if json.loads(line)["event"] == "opened":
                    break
            out.append((time.monotonic() - t0) * 1000)
        p.terminate(); p.wait()
        return pct(out, 0.5), pct(out, 0.99)


def sustained(records=2_000_000):
    with tempfile.TemporaryDirectory() as d:
        open(os.path.join(d, "mmon.toml"), "w").write(CONFIG)
        data = "".join(rec(i, 0) for i in range(records - 1)) + rec(records, 1)
        data = data.encode()
        full = os.path.join(d, "full.jsonl")
        open(full, "wb").write(data)
        t0 = time.monotonic()
        subprocess.run([MMON, "replay", full, "--format", "jsonl", "--config",
                        os.path.join(d, "mmon.toml")], check=True, capture_output=True)
        replay = time.monotonic() - t0
        log = os.path.join(d, "app.jsonl")
        open(log, "w").close()
        p = start(d, ["app.jsonl"])
        t0 = time.monotonic()
        with open(log, "ab") as f:
            for i in range(0, len(data), 1 << 16):
                f.write(data[i:i + (1 << 16)])
                f.flush()
        p.stdout.readline()  # the final record's window
        watch = time.monotonic() - t0
        p.terminate(); p.wait()
        return records / replay, records / watch, len(data)


def idle_cpu(files=100, seconds=10.0):
    with tempfile.TemporaryDirectory() as d:
        open(os.path.join(d, "mmon.toml"), "w").write(CONFIG)
        for k in range(files):
            open(os.path.join(d, "f%03d.jsonl" % k), "w").write(rec(k, 0))
        res = {}
        for mode in ["events", "poll"]:
            p = start(d, ["*.jsonl"] + (["--poll"] if mode == "poll" else []))
            def ticks():
                f = open("/proc/%d/stat" % p.pid).read().rsplit(")", 1)[1].split()
                return int(f[11]) + int(f[12])
            a = ticks(); time.sleep(seconds); b = ticks()
            res[mode] = 100.0 * (b - a) / os.sysconf("SC_CLK_TCK") / seconds
            p.terminate(); p.wait()
        return res


if __name__ == "__main__":
    for poll in (False, True):
        p50, p99 = latency(poll)
        print("latency %-6s p50 %6.1f ms  p99 %6.1f ms" % ("poll" if poll else "events", p50, p99))
    r, w, b = sustained()
    print("sustained: replay %.0f rec/s, watch behind a writer %.0f rec/s (%.0f%% of replay, %d MB)"
          % (r, w, 100 * w / r, b / 1e6))
    for mode, cpu in idle_cpu().items():
        print("idle CPU, 100 files, %-6s %.2f%% of a core" % (mode, cpu))
