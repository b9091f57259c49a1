#!/usr/bin/env bash
# What a log of many models costs, and why: the 1M-record default replay of
# 3 models against the same replay of 1,000 models, and of 1,000 models:
#
#   h16 / h256         with `[report] history` lowered from 4,096 to 16 and
#                      256 (the memory of the position rings);
#   grouped            the same records, reordered within blocks of 5,300
#                      lines (about one 1 MiB chunk) so that each model's
#                      records are consecutive: what a pipeline that ran a
#                      chunk's records model by model would gain (the cache
#                      misses of 1,000 models' state);
#   grouped h16        both.
#
# The grouped log is not a replay anyone would run: its windows are the same
# (each model's records keep their order, so every window keeps its stream
# positions and levels) but sit at other lines, and come in another order.
# It only measures the memory traffic. It is rebuilt only when the 1,000-model
# log is newer. Each figure is the median of REPEAT (default 5) alternated runs
# (bench/alternate.py); the ratios are to the 3-model replay.
#
#   bench/models.sh
#   REPEAT=9 bench/models.sh
set -euo pipefail
cd "$(dirname "$0")/.."
REPEAT=${REPEAT:-5}
mkdir -p target/bench
cargo build --release --quiet --bin mmon
mmon=./target/release/mmon
d=target/bench
replay="replay --format json -q"

[ -f $d/t1m.jsonl ] || $mmon generate -q --events 1000000 --out $d/t1m.jsonl
[ -f $d/t1m-1000.jsonl ] || $mmon generate -q --events 1000000 --models 1000 --out $d/t1m-1000.jsonl
[ $d/t1m-1000-grouped.jsonl -nt $d/t1m-1000.jsonl ] ||
    python3 - $d/t1m-1000.jsonl $d/t1m-1000-grouped.jsonl 5300 <<'PY'
import re, sys
src, dst, block = sys.argv[1], sys.argv[2], int(sys.argv[3])
model = re.compile(rb'"model_id":"([^"]*)"')
def key(line):
    m = model.search(line)
    return m.group(1) if m else b""
with open(src, "rb") as f, open(dst, "wb") as out:
    lines = []
    for line in f:
        lines.append(line)
        if len(lines) == block:
            out.writelines(sorted(lines, key=key))
            lines = []
    out.writelines(sorted(lines, key=key))
PY
for h in 16 256; do
    sed "s/^history = 4096 /history = $h /" src/default.toml > $d/history-$h.toml
    grep -q "^history = $h " $d/history-$h.toml
done

# Replays read the page cache, not the disk: a log not read for a while
# would make the first round of its command a disk benchmark.
cat $d/t1m.jsonl $d/t1m-1000.jsonl $d/t1m-1000-grouped.jsonl > /dev/null
m=$(python3 bench/alternate.py "$REPEAT" \
    three "$mmon $replay $d/t1m.jsonl" \
    m1000 "$mmon $replay $d/t1m-1000.jsonl" \
    h16 "$mmon $replay --config $d/history-16.toml $d/t1m-1000.jsonl" \
    h256 "$mmon $replay --config $d/history-256.toml $d/t1m-1000.jsonl" \
    grouped "$mmon $replay $d/t1m-1000-grouped.jsonl" \
    grouped_h16 "$mmon $replay --config $d/history-16.toml $d/t1m-1000-grouped.jsonl")
python3 - "$m" <<'PY'
import json, sys
m = json.loads(sys.argv[1])
base = m["three"]["wall_s"]
print(f"== 1M records, medians of alternated runs; ratio to 3 models (target <= 1.15, RSS < 30 MiB)")
for name, r in m.items():
    print(f"  {name:<12} {r['wall_s']:7.3f} s  cpu {r['cpu_s']:.3f} s  {r['peak_rss_mb']:6.1f} MB  {r['wall_s'] / base:5.2f}x")
PY
