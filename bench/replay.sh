#!/usr/bin/env bash
# Replay throughput with the embedded default configuration, side by side
# with `wc -l` and `cat > /dev/null` on the same file, from one run of this
# script: wall seconds, records/s, MB/s and peak RSS, for 1M and 4M records (peak
# RSS must not grow with the input), and mmon pinned to one core with
# taskset (the per-core figure: with one CPU mmon parses in place, with two
# it parses on a second thread). Logs are generated once by `mmon generate`
# and cached in target/bench/.
#
# Each command runs REPEAT times (default 5) and its median run is shown,
# with the fastest wall time: on a shared VM one run can take 50% longer
# than the next.
#
#   bench/replay.sh            # 1M and 4M records
#   SIZES="1000000" REPEAT=9 bench/replay.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-"1000000 4000000"}
REPEAT=${REPEAT:-5}
mkdir -p target/bench
cargo build --release --quiet

row() { # name records bytes json
    python3 - "$@" <<'PY'
import json, sys
name, records, size, m = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
w = m["wall_s"]
print(f"{name:<24} {w:7.3f} s (min {m['wall_min_s']:.3f}) {records / w / 1e6:6.2f} M rec/s {size / w / 1e6:7.1f} MB/s {m['peak_rss_mb']:6.1f} MB  cpu {m['cpu_s']:.3f} s")
PY
}

for n in $SIZES; do
    log=target/bench/m$n.jsonl
    if [ ! -f "$log" ]; then
        echo "generating $log ..." >&2
        ./target/release/mmon generate --events "$n" --out "$log" --truth "$log.truth.json"
    fi
    size=$(stat -c %s "$log")
    echo "== $n records, $((size / 1000000)) MB: $log (median of $REPEAT runs)"
    mmon=$(python3 bench/measure.py --repeat "$REPEAT" -- ./target/release/mmon replay "$log" --format json -q)
    # The issue's target is per core: the same run pinned to one CPU.
    one=""
    if command -v taskset >/dev/null; then
        one=$(python3 bench/measure.py --repeat "$REPEAT" -- taskset -c 0 ./target/release/mmon replay "$log" --format json -q)
    fi
    wc=$(python3 bench/measure.py --repeat "$REPEAT" -- wc -l "$log")
    cat=$(python3 bench/measure.py --repeat "$REPEAT" -- cat "$log")
    row "mmon replay (default)" "$n" "$size" "$mmon"
    [ -n "$one" ] && row "mmon replay, one core" "$n" "$size" "$one"
    row "wc -l" "$n" "$size" "$wc"
    row "cat > /dev/null" "$n" "$size" "$cat"
    python3 - "$wc" "$mmon" "$one" <<'PY'
import json, sys
w = json.loads(sys.argv[1])
for name, m in (("mmon", sys.argv[2]), ("mmon, one core", sys.argv[3])):
    if m:
        print(f"ratio {name} / wc -l: {json.loads(m)['wall_s'] / w['wall_s']:.1f}x the time")
PY
done
