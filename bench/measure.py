#!/usr/bin/env python3
"""Runs a command and prints its wall time, CPU time and peak RSS as JSON.

Usage: measure.py [--repeat N] -- CMD ARGS...   (stdout is discarded)

With --repeat N the command runs N times and the report is the run with
the median wall time (the upper middle one for an even N), plus the fastest wall time (`wall_min_s`) and the
largest peak RSS: on a shared VM one run can be 50% slower than the next,
and the median of a few is a figure that repeats.

Peak RSS is the child's own VmHWM from /proc, read until it exits: the
rusage of a child forked from Python would report Python's size instead.
"""
import json
import os
import subprocess
import sys
import time

def hwm_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_once(args):
    """One run of `args`: exit code, wall and CPU seconds, peak RSS (also
    what bench/alternate.py measures)."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    peak = 0
    while True:
        peak = max(peak, hwm_kb(proc.pid))
        # wait4 without reaping until it has exited, so /proc stays readable.
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        time.sleep(0.002)
    return {
        "exit": os.waitstatus_to_exitcode(status),
        "wall_s": time.perf_counter() - start,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": peak / 1024.0,
    }


def main():
    args = sys.argv[1:]
    repeat = 1
    if args[:1] == ["--repeat"]:
        repeat = max(1, int(args[1]))
        args = args[2:]
    if args[:1] == ["--"]:
        args = args[1:]
    runs = sorted((run_once(args) for _ in range(repeat)), key=lambda r: r["wall_s"])
    result = dict(runs[len(runs) // 2])
    result["wall_min_s"] = runs[0]["wall_s"]
    result["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    result["runs"] = repeat
    result["exit"] = max((r["exit"] for r in runs), key=abs)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
