#!/usr/bin/env python3
"""Writes the parity fixtures of mmon's binary drift detectors from river 0.26.1.

Run by hand, not by CI:

    python3 tests/parity/make_expected_binary.py

For each of river's `drift.binary.DDM`, `EDDM`, `HDDMA` and `HDDMW` it feeds a
set of deterministic streams (seeded `random.Random`) under several parameter
settings and writes `fixtures/parity/<detector>.json` with the streams (name,
recipe, values) and, per case, the stream's name, the parameters (river's
names) and the 0-based update indices at which river's `drift_detected` was
true (`drifts`) and the runs of indices at which its `warning_detected` was
true (`warnings`, as inclusive `[first, last]` pairs, because a warning zone
lasts many updates).

The Rust tests in `src/detect/{ddm,eddm,hddm_a,hddm_w}.rs` read these files
and require the exact same positions, fed as is under `direction =
"increase"` (or `"both"` for `two_sided_test`) and fed `1 - x` under
`"decrease"`.

Values are stored as a string of digits: value = digit / `denominator`
(1 for the 0/1 streams; 4 for the one fractional stream, whose values
0, 0.25, 0.5, 0.75 and 1 are exact in binary floating point).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

RIVER_VERSION = "0.26.1"


def ensure_river():
    try:
        import river  # noqa: F401

        if river.__version__ == RIVER_VERSION:
            return
    except ImportError:
        pass
    subprocess.check_call([sys.executable, "-m", "pip", "install", f"river=={RIVER_VERSION}"])


ensure_river()
from river import drift  # noqa: E402
import river  # noqa: E402

assert river.__version__ == RIVER_VERSION, river.__version__

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "fixtures", "parity")


def bits(rng, rates):
    """One 0/1 value per error rate in `rates`."""
    return [1 if rng.random() < p else 0 for p in rates]


def streams():
    """(name, recipe, denominator, digits) of every stream."""
    out = []

    rng = random.Random(1)
    rates = [0.1] * 3000 + [0.4] * 3000
    out.append(("sudden", "seed 1: 3000 at p=0.1, then 3000 at p=0.4", 1, bits(rng, rates)))

    rng = random.Random(2)
    rates = [0.05] * 2000 + [0.05 + 0.35 * i / 4000 for i in range(4000)] + [0.4] * 2000
    out.append(
        ("gradual", "seed 2: 2000 at p=0.05, linear ramp to 0.4 over 4000, 2000 at 0.4", 1, bits(rng, rates))
    )

    rng = random.Random(3)
    rates = []
    for p in [0.1, 0.3, 0.05, 0.5, 0.2, 0.6, 0.1]:
        rates += [p] * 2500
    out.append(("several", "seed 3: 2500 each at p=0.1,0.3,0.05,0.5,0.2,0.6,0.1", 1, bits(rng, rates)))

    rng = random.Random(4)
    out.append(("stationary", "seed 4: 100000 at p=0.2", 1, bits(rng, [0.2] * 100_000)))

    rng = random.Random(5)
    rates = []
    p = 0.3
    while len(rates) < 20_000:
        p = min(0.6, max(0.05, p + rng.uniform(-0.08, 0.08)))
        rates += [p] * rng.randint(50, 600)
    rates = rates[:20_000]
    out.append(("noisy", "seed 5: 20000, p a bounded random walk re-drawn every 50..600", 1, bits(rng, rates)))

    rng = random.Random(6)
    rates = [0.0] * 500 + [0.02] * 5000 + [0.15] * 3000
    out.append(("rare", "seed 6: 500 at p=0, 5000 at p=0.02, 3000 at p=0.15", 1, bits(rng, rates)))

    rng = random.Random(7)
    digits = [rng.choice([0, 0, 1, 1, 2]) for _ in range(3000)] + [rng.choice([1, 2, 3, 4, 4]) for _ in range(3000)]
    out.append(
        ("fractional", "seed 7: values k/4, 3000 with k in {0,0,1,1,2}, then 3000 with k in {1,2,3,4,4}", 4, digits)
    )
    return out


SETTINGS = {
    "ddm": (
        drift.binary.DDM,
        [
            {},
            {"warm_start": 100, "warning_threshold": 1.5, "drift_threshold": 2.5},
            {"warm_start": 10, "warning_threshold": 3.0, "drift_threshold": 4.0},
        ],
    ),
    "eddm": (
        drift.binary.EDDM,
        [
            {},
            {"warm_start": 30, "alpha": 0.8, "beta": 0.75},
            {"warm_start": 10, "alpha": 0.9, "beta": 0.85},
        ],
    ),
    "hddm_a": (
        drift.binary.HDDMA,
        [
            {},
            {"two_sided_test": True},
            {"drift_confidence": 0.0001, "warning_confidence": 0.001},
            {"drift_confidence": 0.01, "warning_confidence": 0.05, "two_sided_test": True},
        ],
    ),
    "hddm_w": (
        drift.binary.HDDMW,
        [
            {},
            {"two_sided_test": True},
            {"lambda_val": 0.1, "drift_confidence": 0.0001, "warning_confidence": 0.001},
            {"lambda_val": 0.01, "drift_confidence": 0.01, "warning_confidence": 0.05, "two_sided_test": True},
        ],
    ),
}


def runs(indices):
    out = []
    for i in indices:
        if out and out[-1][1] == i - 1:
            out[-1][1] = i
        else:
            out.append([i, i])
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    all_streams = streams()
    for name, (cls, settings) in SETTINGS.items():
        cases = []
        for stream_name, recipe, denominator, digits in all_streams:
            values = [d / denominator if denominator != 1 else d for d in digits]
            for params in settings:
                det = cls(**params)
                drifts, warnings = [], []
                for i, x in enumerate(values):
                    det.update(x)
                    if det.drift_detected:
                        drifts.append(i)
                    if det.warning_detected:
                        warnings.append(i)
                cases.append(
                    {
                        "stream": stream_name,
                        "params": params,
                        "drifts": drifts,
                        "warnings": runs(warnings),
                    }
                )
                print(f"{name:7} {stream_name:11} {json.dumps(params):90} "
                      f"drifts={len(drifts):4} warning updates={len(warnings)}")
        doc = {
            "generator": "tests/parity/make_expected_binary.py",
            "river": RIVER_VERSION,
            "detector": f"river.drift.binary.{cls.__name__}",
            "index": "0-based update index; warnings are inclusive [first, last] runs",
            "streams": [
                {"name": n, "recipe": r, "denominator": d, "values": "".join(str(v) for v in digits)}
                for n, r, d, digits in all_streams
            ],
            "cases": cases,
        }
        path = os.path.join(OUT, f"{name}.json")
        with open(path, "w") as f:
            json.dump(doc, f, separators=(",", ":"))
            f.write("\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
