#!/usr/bin/env python3
"""Writes fixtures/train/dataset.csv: a small, deterministic binary
classification set for examples/train/train.py.

Two features uniform in [-2, 2], a third that is pure noise, and a label
from a noisy linear rule, drawn from a fixed linear congruential generator
so the file is the same on every machine and Python version.

    python3 examples/train/make_dataset.py > fixtures/train/dataset.csv
"""

import sys


class Lcg:
    """Numerical Recipes' 32-bit LCG: tiny, portable, reproducible."""

    def __init__(self, seed):
        self.state = seed & 0xFFFFFFFF

    def unit(self):
        self.state = (1664525 * self.state + 1013904223) & 0xFFFFFFFF
        return self.state / 2**32


def main(rows=400, seed=20240501):
    rng = Lcg(seed)
    out = sys.stdout
    out.write("x1,x2,x3,label\n")
    for _ in range(rows):
        x1 = rng.unit() * 4 - 2
        x2 = rng.unit() * 4 - 2
        x3 = rng.unit() * 4 - 2
        noise = (rng.unit() - 0.5) * 1.2
        label = 1 if 1.5 * x1 - x2 + 0.3 + noise > 0 else 0
        out.write(f"{x1:.4f},{x2:.4f},{x3:.4f},{label}\n")


if __name__ == "__main__":
    main()
