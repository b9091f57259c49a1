#!/usr/bin/env bash
# The embedded default configuration's two criteria (SPEC §4) at full size:
# drift windows on stationary 1M-record logs (seeds 1, 2, 3; must be none),
# and the delay, in the model's own records, with which every default monitor
# finds each injected drift of the generator's default log (seeds 42, 5, 6;
# must be at most 2,000). Logs are cached in target/bench/. The test suite
# checks the same on smaller logs (tests/cli/default_config.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p target/bench
cargo build --release --quiet

gen() { # name args...
    local name=$1; shift
    [ -f "target/bench/$name.jsonl" ] ||
        ./target/release/mmon generate --events 1000000 "$@" --out "target/bench/$name.jsonl" --truth "target/bench/$name.jsonl.truth.json"
}
for s in 1 2 3; do gen "stationary-s$s" --drift-at none --seed "$s"; done
for s in 42 5 6; do gen "default-s$s" --seed "$s"; done

for s in 1 2 3; do
    ./target/release/mmon replay "target/bench/stationary-s$s.jsonl" --format json -q |
        python3 -c "import json, sys; w = json.load(sys.stdin)['summary']['windows']; print(f'stationary seed $s: {w[\"drift\"]} drift windows, {w[\"warning\"]} warning windows')"
done
for s in 42 5 6; do
    log="target/bench/default-s$s.jsonl"
    ./target/release/mmon replay "$log" --format json -q > target/bench/default-report.json
    python3 - "$log.truth.json" "$s" <<'PY'
import json, sys
truth = json.load(open(sys.argv[1]))
report = json.load(open("target/bench/default-report.json"))
metrics = sorted({w["metric"] for w in report["windows"]})
for d in truth["drifts"]:
    model, first = d["model_id"], d["first_affected"]["model_event_index"]
    cells = []
    for metric in metrics:
        hits = [w["detected"]["index"] - first for w in report["windows"]
                if w["model_id"] == model and w["metric"] == metric and w["severity"] == "drift"]
        late = [h for h in hits if h >= 0]
        early = [h for h in hits if h < 0]
        cells.append(f"{metric} {min(late) if late else 'MISSED'}" + (f" ({len(early)} early)" if early else ""))
    print(f"default seed {sys.argv[2]}: {model} drift at its record {first}: " + ", ".join(cells))
PY
done
