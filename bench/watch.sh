#!/usr/bin/env bash
# Benchmarks of `mmon watch` (not a test): latency from an append to its
# `opened` line (p50, p99) with events and with polling, the sustained rate
# behind a writer appending as fast as it can compared with replay of the
# same bytes, and idle CPU with 100 files watched. Targets: p99 < 50 ms with
# events, < 250 ms polling; sustained >= 80% of replay (set when replay
# parsed on one thread; it now parses on every core); idle < 1% of a core.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
python3 bench/watch_bench.py target/release/mmon
