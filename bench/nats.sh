#!/usr/bin/env bash
# Records/s through one mmon instance reading NATS JetStream, against
# `mmon replay` of the same records from a file (issue 16): the stream
# published unbatched (one record per message) and with --batch 100, each
# read by `mmon replay nats://…` and by `mmon watch nats://… --once` (leases
# and checkpoints included; once, since a second run has nothing new to
# read). Medians of REPEAT (default 5) alternated runs (bench/alternate.py). Starts its own nats-server on a free loopback port
# with a store in a temp folder, and stops it at the end.
#
#   bench/nats.sh
#   EVENTS=500000 REPEAT=3 bench/nats.sh
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${EVENTS:-200000}
REPEAT=${REPEAT:-5}
server=$(command -v nats-server || echo /usr/sbin/nats-server)
[ -x "$server" ] || { echo "nats-server is needed: apt-get install nats-server" >&2; exit 1; }
cargo build --release --quiet --bin mmon
mmon=$PWD/target/release/mmon
d=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$server" -js -a 127.0.0.1 -p "$port" -sd "$d/store" >"$d/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$d"' EXIT
for _ in $(seq 50); do (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done

# One model, so that --batch 100 fills every message.
$mmon generate -q --events "$EVENTS" --models 1 --out "$d/m.jsonl"
one="nats://127.0.0.1:$port/one.>?stream=ONE"
hundred="nats://127.0.0.1:$port/hundred.>?stream=HUNDRED"
$mmon publish -q "$one" "$d/m.jsonl"
$mmon publish -q "$hundred" "$d/m.jsonl" --batch 100
q="--format json -q"
start=$(date +%s.%N)
$mmon watch "$hundred&partitions=4" --once --instance bench $q >/dev/null
once=$(python3 -c "import time; print(time.time() - $start)")
echo "== $EVENTS records, medians of $REPEAT alternated runs"
timings=$(python3 bench/alternate.py "$REPEAT" \
    file "$mmon replay $d/m.jsonl $q" \
    replay1 "$mmon replay $one $q" \
    replay100 "$mmon replay $hundred $q")
python3 - "$timings" "$EVENTS" "$once" <<'PY'
import json, sys
m = json.loads(sys.argv[1])
events = int(sys.argv[2])
once = float(sys.argv[3])
for name, r in m.items():
    rate = events / r["wall_s"]
    print(f"  {name:<10} {r['wall_s']:7.3f} s  {rate / 1e6:6.2f} M records/s  {r['peak_rss_mb']:6.1f} MB")
f = m["file"]["wall_s"]
for name in ("replay1", "replay100"):
    print(f"  {name} / file replay: {m[name]['wall_s'] / f:5.2f}x")
print(f"  watch --once, batch 100, 4 partitions (one run): {once:.3f} s, "
      f"{events / once / 1e6:.2f} M records/s, {once / f:.2f}x file replay")
PY
