#!/usr/bin/env python3
"""Chart rendering speed: a 300,000-point run to PNG and SVG (target: under 2 s each).

    python benchmarks/bench_plot.py [--points 300000]

Points are decimated with min/max buckets before drawing, so spikes and NaN stay
visible; the time includes diagnosing the run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lossdoctor import synth
from lossdoctor.engine.evaluate import evaluate
from lossdoctor.engine.loader import load_rules
from lossdoctor.model import Run, Series
from lossdoctor.report import Report
from lossdoctor.reporters import chart


def main() -> int:
    """Time diagnosing and drawing one large run."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=300_000)
    args = ap.parse_args()
    steps, values = synth.healthy(args.points, noise=0.05)
    values[args.points // 2] *= 6
    values[-100:] = np.nan
    run = Run("big.csv", "synthetic", {"train": Series("train", "loss", steps, values)})
    started = time.perf_counter()
    doc = Report([evaluate(run, load_rules())]).to_dict(curves=True)
    judged = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        for suffix in ("png", "svg"):
            started = time.perf_counter()
            chart.render(doc, str(Path(tmp) / f"chart.{suffix}"))
            print(
                f"{args.points} points -> {suffix}: {time.perf_counter() - started:.2f} s "
                f"(diagnosis {judged:.2f} s)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
