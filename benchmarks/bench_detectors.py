#!/usr/bin/env python3
"""The whole rule pack on long runs: judging time (reading excluded) for 1e4 .. 1e7 points.

python benchmarks/bench_detectors.py [--max 10000000]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def main() -> int:
    """Print judging time per run length (Markdown)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max", type=int, default=10_000_000)
    args = ap.parse_args()
    from lossdoctor.engine.evaluate import evaluate
    from lossdoctor.engine.loader import load_rules
    from lossdoctor.model import LR, TRAIN, VAL, Run, Series

    rules = load_rules()
    print("| points (train and lr; val every 100th) | rule pack | findings |")
    print("|---|---|---|")
    for n in (10_000, 100_000, 1_000_000, 10_000_000):
        if n > args.max:
            break
        rng = np.random.default_rng(0)
        steps = np.arange(n, dtype=np.float64)
        train = (3.0 * np.exp(-steps / (n / 5)) + 1.0) * np.exp(rng.normal(0, 0.03, n))
        train[n // 3] *= 4.0
        lr = np.full(n, 3e-4)
        val_steps = steps[::100]
        val = (3.0 * np.exp(-val_steps / (n / 5)) + 1.1) * np.exp(
            rng.normal(0, 0.01, len(val_steps))
        )
        run = Run(
            source="bench",
            reader="bench",
            series={
                TRAIN: Series(TRAIN, "loss", steps, train),
                VAL: Series(VAL, "val_loss", val_steps, val),
                LR: Series(LR, "lr", steps, lr),
            },
        )
        started = time.perf_counter()
        report = evaluate(run, rules)
        seconds = time.perf_counter() - started
        found = ", ".join(sorted(f.rule for f in report.findings)) or "none"
        print(f"| {n:,} | {seconds:.2f} s | {found} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
