#!/usr/bin/env python3
"""Writes the river parity fixtures of the real-valued detectors.

Run by hand (not by CI) from the repository root:

    python3 tests/parity/make_expected.py

It installs river 0.26.1 with pip when it is missing, builds deterministic
streams from the recipes below (seeded Python `random`), rounds every value
to 6 decimals *before* feeding it to river, and stores exactly those values in
the fixtures, so the Rust tests read the same numbers and never need Python's
random generator. For each detector and each parameter setting it records
the 0-based index of every update on which river's `drift_detected` became
True:

    fixtures/parity/adwin.json         exact positions (ADWIN)
    fixtures/parity/page_hinkley.json  exact positions (PageHinkley)
    fixtures/parity/kswin.json         river's positions for several seeds
                                       (compared within a tolerance)
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

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "fixtures", "parity")

# A recipe is a seed and a list of segments. Each segment draws `n` values:
#   {"n", "normal": [mean, sd]}                 i.i.d. Gaussian
#   {"n", "ramp": [mean_from, mean_to, sd]}     Gaussian whose mean moves linearly
#   {"n", "bernoulli": p}                       0/1 with P(1) = p
#   {"n", "bernoulli_ramp": [p_from, p_to]}     0/1 with P(1) moving linearly
#   {"n", "lognormal": [median, sigma]}         log-normal (latency-like), 3 decimals
#   {"n", "choice": [v, ...]}                   uniform choice among values (ties)
#   {"n", "uniform": [lo, hi]}                  uniform real
# `changes` (segment starts after the first) is derived, for the KSWIN tolerance.
STREAMS = {
    "sudden_large": {"seed": 1, "segments": [
        {"n": 2000, "normal": [0.0, 1.0]}, {"n": 2000, "normal": [2.0, 1.0]}]},
    "sudden_small": {"seed": 2, "segments": [
        {"n": 3000, "normal": [0.0, 1.0]}, {"n": 3000, "normal": [0.5, 1.0]}]},
    "gradual": {"seed": 3, "segments": [
        {"n": 2000, "normal": [0.0, 1.0]}, {"n": 2000, "ramp": [0.0, 1.5, 1.0]},
        {"n": 1000, "normal": [1.5, 1.0]}]},
    "noisy": {"seed": 4, "segments": [
        {"n": 5000, "normal": [10.0, 5.0]}, {"n": 5000, "normal": [11.0, 5.0]}]},
    "several_drifts": {"seed": 5, "segments": [
        {"n": 1500, "normal": [0.0, 1.0]}, {"n": 1500, "normal": [3.0, 1.0]},
        {"n": 1500, "normal": [1.0, 1.0]}, {"n": 1500, "normal": [-2.0, 1.0]},
        {"n": 1500, "normal": [4.0, 1.0]}, {"n": 1500, "normal": [0.0, 1.0]}]},
    "latency_like": {"seed": 6, "segments": [
        {"n": 5000, "lognormal": [40.0, 0.45]}, {"n": 5000, "lognormal": [60.0, 0.45]}]},
    "variance_change": {"seed": 7, "segments": [
        {"n": 3000, "uniform": [0.0, 1.0]}, {"n": 3000, "normal": [0.5, 0.05]}]},
    "ties_doc": {"seed": 12345, "segments": [
        {"n": 1000, "choice": [0, 1]}, {"n": 1000, "choice": [4, 5, 6, 7]}]},
    "errors_sudden": {"seed": 8, "segments": [
        {"n": 3000, "bernoulli": 0.1}, {"n": 3000, "bernoulli": 0.3}]},
    "errors_rising": {"seed": 9, "segments": [
        {"n": 2000, "bernoulli": 0.05}, {"n": 4000, "bernoulli_ramp": [0.05, 0.35]}]},
    "correct_drop": {"seed": 10, "segments": [
        {"n": 5000, "bernoulli": 0.9}, {"n": 5000, "bernoulli": 0.82}]},
    "stationary_100k": {"seed": 11, "segments": [
        {"n": 100000, "normal": [0.5, 0.1]}]},
}


def generate(recipe):
    rng = random.Random(recipe["seed"])
    values = []
    for seg in recipe["segments"]:
        n = seg["n"]
        for i in range(n):
            if "normal" in seg:
                mean, sd = seg["normal"]
                x = rng.gauss(mean, sd)
            elif "ramp" in seg:
                a, b, sd = seg["ramp"]
                x = rng.gauss(a + (b - a) * (i + 1) / n, sd)
            elif "bernoulli" in seg:
                x = 1.0 if rng.random() < seg["bernoulli"] else 0.0
            elif "bernoulli_ramp" in seg:
                a, b = seg["bernoulli_ramp"]
                x = 1.0 if rng.random() < a + (b - a) * (i + 1) / n else 0.0
            elif "lognormal" in seg:
                median, sigma = seg["lognormal"]
                x = round(rng.lognormvariate(__import__("math").log(median), sigma), 3)
            elif "choice" in seg:
                x = float(rng.choice(seg["choice"]))
            elif "uniform" in seg:
                x = rng.uniform(*seg["uniform"])
            else:
                raise ValueError(seg)
            values.append(round(x, 6))
    return values


def changes(recipe):
    out, pos = [], 0
    for seg in recipe["segments"][:-1]:
        pos += seg["n"]
        out.append(pos)
    return out


def drifts_of(detector, values):
    found = []
    for i, x in enumerate(values):
        detector.update(x)
        if detector.drift_detected:
            found.append(i)
    return found


ADWIN_SETTINGS = [
    {},
    {"clock": 1},
    {"delta": 0.01, "clock": 1},
    {"delta": 1e-5},
    {"delta": 0.1, "clock": 7},
    {"max_buckets": 3, "min_window_length": 10, "grace_period": 50},
    {"clock": 1, "max_buckets": 2, "min_window_length": 1, "grace_period": 0},
]

PH_SETTINGS = [
    {},
    {"mode": "up"},
    {"mode": "down"},
    {"threshold": 10.0, "delta": 0.01},
    {"threshold": 10.0, "delta": 0.01, "mode": "down"},
    {"threshold": 20.0, "alpha": 0.999, "min_instances": 100, "mode": "up"},
    {"threshold": 3.0, "delta": 0.0, "min_instances": 1},
]

KSWIN_SETTINGS = [
    {},
    {"alpha": 0.0001},
    {"window_size": 200, "stat_size": 50, "alpha": 0.001},
]
KSWIN_SEEDS = [1, 2, 3, 4, 5]
# KSWIN costs one scipy call per update; the 100k stream gets the defaults only.
KSWIN_STREAMS_SKIP_FOR_NON_DEFAULT = {"stationary_100k"}


def write(name, doc):
    path = os.path.join(OUT, name)
    with open(path, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {path} ({os.path.getsize(path)} bytes)", file=sys.stderr)


def main():
    os.makedirs(OUT, exist_ok=True)
    streams = {}
    for name, recipe in STREAMS.items():
        streams[name] = {"recipe": recipe, "changes": changes(recipe), "values": generate(recipe)}

    def header(detector, note):
        return {
            "generator": "tests/parity/make_expected.py",
            "river_version": RIVER_VERSION,
            "detector": detector,
            "note": note,
            "streams": streams,
        }

    cases = []
    for name, s in streams.items():
        for params in ADWIN_SETTINGS:
            cases.append({"stream": name, "params": params,
                          "drifts": drifts_of(drift.ADWIN(**params), s["values"])})
    doc = header("ADWIN", "drifts: 0-based update indices where drift_detected was True")
    doc["cases"] = cases
    write("adwin.json", doc)

    cases = []
    for name, s in streams.items():
        for params in PH_SETTINGS:
            cases.append({"stream": name, "params": params,
                          "drifts": drifts_of(drift.PageHinkley(**params), s["values"])})
    doc = header("PageHinkley", "drifts: 0-based update indices where drift_detected was True")
    doc["cases"] = cases
    write("page_hinkley.json", doc)

    cases = []
    for name, s in streams.items():
        for k, params in enumerate(KSWIN_SETTINGS):
            if k > 0 and name in KSWIN_STREAMS_SKIP_FOR_NON_DEFAULT:
                continue
            runs = []
            for seed in KSWIN_SEEDS:
                det = drift.KSWIN(seed=seed, **params)
                runs.append({"seed": seed, "drifts": drifts_of(det, s["values"])})
            cases.append({"stream": name, "params": params, "runs": runs})
            print(f"kswin {name} {params}: {[len(r['drifts']) for r in runs]}", file=sys.stderr)
    doc = header("KSWIN", "runs: river's drift indices for each seed; river's RNG is not "
                 "reproduced, so the Rust test compares within a tolerance")
    doc["cases"] = cases
    write("kswin.json", doc)


if __name__ == "__main__":
    main()
