#!/usr/bin/env bash
# Memory benchmark of `mmon watch` (not a test): 1,000 files of 1 MB each
# followed under `ulimit -n 1024`; peak RSS of a --once catch-up and of a
# running watch after it caught up. Target: < 64 MiB (SPEC §6).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
python3 bench/watch_memory.py target/release/mmon "$@"
