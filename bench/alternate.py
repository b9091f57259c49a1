#!/usr/bin/env python3
"""Runs several commands alternately, REPEAT rounds, and prints each one's
median wall time, CPU time and peak RSS as one JSON object.

Usage: alternate.py REPEAT NAME1 'CMD1' NAME2 'CMD2' ...   (stdout discarded)

Alternating (a b c, a b c, ...) rather than running each command REPEAT
times in a row spreads the noise of a shared machine over all of them, so
the ratios of medians are fairer than the medians themselves.
"""
import json
import shlex
import sys


from measure import run_once as measure


def run_once(args):
    r = measure(args)
    if r["exit"] not in (0, 3):
        sys.exit(f"{args}: exit {r['exit']}")
    return r["wall_s"], r["cpu_s"], r["peak_rss_mb"]


repeat = int(sys.argv[1])
pairs = list(zip(sys.argv[2::2], sys.argv[3::2]))
runs = {name: [] for name, _ in pairs}
for _ in range(repeat):
    for name, cmd in pairs:
        runs[name].append(run_once(shlex.split(cmd)))
out = {}
for name, rs in runs.items():
    walls = sorted(r[0] for r in rs)
    cpus = sorted(r[1] for r in rs)
    out[name] = {
        "wall_s": walls[len(walls) // 2],
        "wall_min_s": walls[0],
        "cpu_s": cpus[len(cpus) // 2],
        "peak_rss_mb": max(r[2] for r in rs),
    }
print(json.dumps(out))
