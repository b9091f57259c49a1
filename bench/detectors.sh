#!/usr/bin/env bash
# Runs every detector benchmark (cargo bench --bench 'detectors_*': the
# real-valued ones and, when present, the 0/1 ones), then river's on the same
# kind of streams, and prints updates/s side by side with the ratio.
# Run by hand from anywhere; needs python3 with river 0.26.1.
#   bench/detectors.sh            # full run
#   RIVER_SCALE=0.1 bench/detectors.sh   # river on 10% of the values
set -euo pipefail
cd "$(dirname "$0")/.."

cargo bench --bench 'detectors_*'
mkdir -p target/bench
python3 bench/river_detectors.py --scale "${RIVER_SCALE:-1.0}" > target/bench/river_detectors.json

python3 - target/criterion target/bench/river_detectors.json <<'PY'
import glob, json, os, re, sys

criterion_dir, river_file = sys.argv[1], sys.argv[2]
river = json.load(open(river_file))

def norm(s):
    return re.sub(r"[^a-z0-9]", "", s.lower())

# mmon: every criterion benchmark of a group named detectors_*.
mmon = {}
for path in glob.glob(os.path.join(criterion_dir, "detectors_*", "**", "new", "benchmark.json"),
                      recursive=True):
    bench = json.load(open(path))
    elements = (bench.get("throughput") or {}).get("Elements")
    estimates = json.load(open(os.path.join(os.path.dirname(path), "estimates.json")))
    mean_ns = estimates["mean"]["point_estimate"]
    if elements:
        name = bench.get("value_str") or bench.get("function_id") or bench["full_id"]
        mmon[norm(name)] = elements / (mean_ns * 1e-9)

def find(key):
    k = norm(key)
    if k in mmon:
        return mmon[k]
    hits = [v for name, v in mmon.items() if name.startswith(k) or name.endswith(k)]
    return hits[0] if len(hits) == 1 else None

print()
print(f"{'detector':<16}{'mmon updates/s':>18}{'river ' + river['river_version'] + ' updates/s':>26}{'ratio':>10}")
for key, r in river["rates"].items():
    m = find(key)
    ms = f"{m:,.0f}" if m else "(no bench)"
    ratio = f"{m / r:,.1f}x" if m else "-"
    print(f"{key:<16}{ms:>18}{r:>26,.0f}{ratio:>10}")
PY
