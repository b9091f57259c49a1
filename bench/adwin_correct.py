#!/usr/bin/env python3
"""How quiet and how fast is `adwin` on a 0/1 `correct` field? (run by hand)

Simulates the per-model `correct` streams of shared/bench/gen_metrics.py logs
(i.i.d. 0/1 with the models' base accuracies; a 1M-record log with the default
3 models gives churn 1/2, fraud 1/3 and ranker 1/6 of the records) and runs
river's ADWIN (which mmon's `adwin` reproduces exactly) with
direction = "decrease": a detection counts only if the mean of the kept window
is at most the mean of the dropped part, as mmon reports it.

    python3 bench/adwin_correct.py --seeds 20 --delta 0.002,1e-4,1e-5,1e-6

For each delta: false alarms (decrease detections) on stationary streams, and
the delay, in that model's records, to detect an accuracy drop of 0.08 that
starts after the stationary prefix the default log gives it.

Measured with river 0.26.1, clock 32, other parameters at their defaults
(false alarms: 40 simulated 1M-record logs for 1e-4 and 1e-5, 30 for 0.002;
delays: 40 drops (20 for 1e-6), churn and fraud, in that model's records):

    delta   logs with a false decrease alarm   delay median   delay max
    0.002   4 of 30                             404            719
    1e-4    0 of 40                             546            980
    1e-5    0 of 40                             690           1076
    1e-6    0 of 10                             815           1236
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys

# model: (base accuracy, records in a 1M log, per-model index of the drift)
MODELS = {"churn": (0.91, 500_000, 250_000), "fraud": (0.87, 333_333, 266_667),
          "ranker": (0.83, 166_667, None)}
DROP = 0.08


def decrease_detections(adwin_factory, values):
    d = adwin_factory()
    found = []
    for i, x in enumerate(values):
        width, total = d.width, d.total
        if d.drift_detected:
            width, total = 0, 0.0
        d.update(x)
        if d.drift_detected:
            kept_w, kept_t = d.width, d.total
            drop_w, drop_t = width + 1 - kept_w, total + x - kept_t
            if drop_w > 0 and kept_t / kept_w <= drop_t / drop_w:
                found.append(i)
    return found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--delta", default="0.002,1e-4,1e-5,1e-6")
    ap.add_argument("--clock", type=int, default=32)
    ap.add_argument("--delay-runs", type=int, default=20)
    args = ap.parse_args()
    from river import drift

    for delta in [float(d) for d in args.delta.split(",")]:
        make = lambda: drift.ADWIN(delta=delta, clock=args.clock)  # noqa: E731
        false_alarms, logs_with_alarm = 0, 0
        for seed in range(args.seeds):
            in_this_log = 0
            for k, (name, (p, n, _)) in enumerate(MODELS.items()):
                rng = random.Random(seed * 100 + k)
                values = [1.0 if rng.random() < p else 0.0 for _ in range(n)]
                in_this_log += len(decrease_detections(make, values))
            false_alarms += in_this_log
            logs_with_alarm += in_this_log > 0
        delays = []
        for run in range(args.delay_runs):
            for k, (name, (p, n, at)) in enumerate(MODELS.items()):
                if at is None:
                    continue
                rng = random.Random(10_000 + run * 100 + k)
                values = [1.0 if rng.random() < (p if i < at else p - DROP) else 0.0
                          for i in range(at + 5000)]
                after = [i - at for i in decrease_detections(make, values) if i >= at]
                delays.append(after[0] if after else float("inf"))
        print(f"delta={delta:g} clock={args.clock}: {false_alarms} false decrease alarms in "
              f"{args.seeds} stationary 1M logs ({logs_with_alarm} logs with any); drop "
              f"{DROP}: delay median {statistics.median(delays):.0f}, max {max(delays):.0f} "
              f"records over {len(delays)} runs", flush=True)


if __name__ == "__main__":
    sys.exit(main())
