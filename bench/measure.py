#!/usr/bin/env python3
"""Runs one command and prints its wall time, CPU time and peak RSS as JSON.

Usage: measure.py -- CMD ARGS...   (the command's stdout is discarded)

Peak RSS is the child's own VmHWM from /proc, read until it exits: the
rusage of a child forked from Python would report Python's size instead.
"""
import json
import os
import subprocess
import sys
import time

args = sys.argv[1:]
if args[:1] == ["--"]:
    args = args[1:]


def hwm_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


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
wall = time.perf_counter() - start
print(json.dumps({
    "exit": os.waitstatus_to_exitcode(status),
    "wall_s": wall,
    "cpu_s": usage.ru_utime + usage.ru_stime,
    "peak_rss_mb": peak / 1024.0,
}))
