#!/usr/bin/env bash
# `mmon eval` on a 1M-record log of `mmon generate` (default drifts, seed 42)
# with a 27-point grid (3 values each of the three default monitors' main
# parameter) and the embedded default: wall time, CPU time and peak RSS of
# one run each (target: the grid in under a minute on the 2-core machine),
# and the grid's ranking. The log is cached in target/bench/.
#
#   bench/eval.sh
#   EVENTS=300000 bench/eval.sh
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${EVENTS:-1000000}
mkdir -p target/bench
cargo build --release --quiet
log=target/bench/eval-m$EVENTS.jsonl
if [ ! -f "$log" ]; then
    echo "generating $log ..." >&2
    ./target/release/mmon generate --events "$EVENTS" --seed 42 --out "$log" --truth "$log.truth.json"
fi
grid=(
    --grid 'monitor[0].params.window=1000,1500,2000'
    --grid 'monitor[1].params.delta=1e-3,1e-4,1e-5'
    --grid 'monitor[2].params.h=15,25,35'
)
measure() { # label args...
    local label=$1; shift
    python3 bench/measure.py -- ./target/release/mmon eval "$log" --truth "$log.truth.json" "$@" --format json -q > target/bench/eval-measure.json
    python3 - "$label" target/bench/eval-measure.json <<'PY'
import json, sys
m = json.load(open(sys.argv[2]))
print(f"{sys.argv[1]:<28} wall {m['wall_s']:7.2f} s  cpu {m['cpu_s']:7.2f} s  peak RSS {m['peak_rss_mb']:6.1f} MB")
PY
}
echo "== $EVENTS records: $log ($(nproc) CPUs)"
measure "embedded default (1 run)"
measure "27-point grid" "${grid[@]}"
./target/release/mmon eval "$log" --truth "$log.truth.json" "${grid[@]}" --format table -q
