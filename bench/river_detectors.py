#!/usr/bin/env python3
"""Measures river 0.26.1's drift detectors, in updates per second, on this machine.

Run by hand (bench/detectors.sh runs it after mmon's benchmarks):

    python3 bench/river_detectors.py [--scale 1.0] > river.json

The real-valued detectors get the same stationary N(0.5, 0.1) stream as
benches/detectors_real.rs (SplitMix64 and Box-Muller, 6 decimals, seed 7:
bit for bit the same values); the 0/1 detectors get a Bernoulli(0.1) error
stream. KSWIN runs one scipy test per update, so it gets fewer values.
Prints one JSON object: {"river_version", "rates": {name: updates/s}, "n": {name: values}}.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

MASK = (1 << 64) - 1


def uniforms(seed):
    state = seed
    while True:
        state = (state + 0x9E3779B97F4A7C15) & MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        z ^= z >> 31
        yield (z >> 11) / float(1 << 53)


def gaussian_stream(n, seed=7):
    u = uniforms(seed)
    out = []
    for _ in range(n):
        u1 = max(next(u), sys.float_info.min)
        u2 = next(u)
        g = math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)
        out.append(round((0.5 + 0.1 * g) * 1e6) / 1e6)
    return out


def error_stream(n, seed=11, rate=0.1):
    u = uniforms(seed)
    return [1 if next(u) < rate else 0 for _ in range(n)]


def rate(detector, values):
    update = detector.update
    start = time.perf_counter()
    for x in values:
        update(x)
    return len(values) / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0,
                        help="fraction of the default stream lengths (1M; KSWIN 20k)")
    args = parser.parse_args()
    import river
    from river import drift
    from river.drift import binary

    n = max(1000, int(1_000_000 * args.scale))
    n_kswin = max(1000, int(20_000 * args.scale))
    real = gaussian_stream(n)
    errors = error_stream(n)
    cases = [
        ("adwin_clock32", lambda: drift.ADWIN(), real),
        ("adwin_clock1", lambda: drift.ADWIN(clock=1), real),
        ("page_hinkley", lambda: drift.PageHinkley(), real),
        ("kswin", lambda: drift.KSWIN(seed=1), real[:n_kswin]),
        ("ddm", lambda: binary.DDM(), errors),
        ("eddm", lambda: binary.EDDM(), errors),
        ("hddm_a", lambda: binary.HDDMA(), errors),
        ("hddm_w", lambda: binary.HDDMW(), errors),
    ]
    rates, lengths = {}, {}
    for name, make, values in cases:
        rates[name] = rate(make(), values)
        lengths[name] = len(values)
        print(f"river {name}: {rates[name]:,.0f} updates/s on {len(values):,} values",
              file=sys.stderr)
    json.dump({"river_version": river.__version__, "rates": rates, "n": lengths}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
