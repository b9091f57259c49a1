#!/usr/bin/env python3
"""Memory of `mmon watch` with many files (not a test; SPEC §6 target).

1,000 files of 1 MB each, followed under `ulimit -n 1024`: the peak
resident memory of a `--once --from-start` catch-up of all of them, and the
resident memory of a running watch once it has caught up (idle). Target:
< 64 MiB. Usage: watch_memory.py MMON [FILES] [BYTES_PER_FILE]
"""

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

CONFIG = """[input]
model_id = "model_id"
[[monitor]]
metric = "n"
detector = "threshold"
params = { window = 1, above = 1e12 }
"""


def write_files(root, files, size):
    base = 1_700_000_000
    line_len = len(json.dumps({"timestamp": base, "model_id": "m", "n": 1.5}, separators=(",", ":"))) + 1
    per_file = size // line_len
    for f in range(files):
        with open(os.path.join(root, "logs", f"{f:04d}.jsonl"), "w") as out:
            t = base + f * per_file
            out.write("".join(
                f'{{"timestamp":{t + i},"model_id":"m","n":1.5}}\n' for i in range(per_file)))
    return per_file


def vm(pid, key):
    with open(f"/proc/{pid}/status") as s:
        for line in s:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def main():
    mmon = os.path.abspath(sys.argv[1])
    files = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 1_000_000
    root = tempfile.mkdtemp(prefix="mmon-mem-")
    try:
        os.mkdir(os.path.join(root, "logs"))
        with open(os.path.join(root, "mmon.toml"), "w") as c:
            c.write(CONFIG)
        per_file = write_files(root, files, size)
        sh = ["sh", "-c", 'ulimit -n 1024 && exec "$0" "$@"', mmon, "watch", "--format", "json"]

        start = time.monotonic()
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        out = subprocess.run(
            sh + ["--once", "--from-start", "--state", "once.json", "logs/*.jsonl"],
            cwd=root, capture_output=True, text=True)
        took = time.monotonic() - start
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        if out.returncode != 0:
            sys.exit(f"--once failed ({out.returncode}): {out.stderr[-2000:]}")
        records = json.loads(out.stdout)["summary"]["records"]
        print(f"--once catch-up: {files} files x {size} B ({records} records) in {took:.1f} s, "
              f"peak RSS {peak / 2**20:.1f} MiB" + (" (an earlier child was larger)" if before * 1024 >= peak else ""))

        live = subprocess.Popen(
            sh + ["--from-start", "--poll", "logs/*.jsonl"], cwd=root,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # Caught up when it has read every byte (rchar) and a pass more.
        total = files * per_file * len('{"timestamp":1700000000,"model_id":"m","n":1.5}\n')
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            time.sleep(0.25)
            with open(f"/proc/{live.pid}/io") as s:
                rchar = int(next(l for l in s if l.startswith("rchar:")).split()[1])
            if rchar >= total:
                break
        time.sleep(1.0)
        rss, hwm = vm(live.pid, "VmRSS"), vm(live.pid, "VmHWM")
        fds = len(os.listdir(f"/proc/{live.pid}/fd"))
        live.terminate()
        live.wait()
        print(f"running watch, idle after catch-up: RSS {rss / 2**20:.1f} MiB, "
              f"peak {hwm / 2**20:.1f} MiB, {fds} descriptors open")
        target = 64 * 2**20
        verdict = "meets" if max(peak, hwm) < target else "MISSES"
        print(f"target < 64 MiB: {verdict} ({per_file} lines per file)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
