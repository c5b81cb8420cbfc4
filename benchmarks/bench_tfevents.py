#!/usr/bin/env python3
"""Event-file reading speed: 1,000,000 scalars, lossdoctor against TensorBoard's
EventAccumulator (every point kept) and tbparse (when installed), measured in one run.

    python benchmarks/bench_tfevents.py [--scalars 1000000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> int:
    """Write one event file, then time both readers on it."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scalars", type=int, default=1_000_000)
    args = ap.parse_args()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    from lossdoctor.ingest import read_run

    with tempfile.TemporaryDirectory() as tmp:
        writer = EventFileWriter(tmp)
        values = np.linspace(5, 1, args.scalars)
        for step, value in enumerate(values):
            summary = summary_pb2.Summary(
                value=[summary_pb2.Summary.Value(tag="train/loss", simple_value=float(value))]
            )
            writer.add_event(event_pb2.Event(step=step, wall_time=1.0, summary=summary))
        writer.close()
        (path,) = list(Path(tmp).iterdir())
        started = time.perf_counter()
        run = read_run(str(path))
        ours = time.perf_counter() - started
        started = time.perf_counter()
        acc = EventAccumulator(str(path), size_guidance={"scalars": 0})
        acc.Reload()
        theirs_points = len(acc.Scalars("train/loss"))
        theirs = time.perf_counter() - started
        print(
            f"{args.scalars} scalars: lossdoctor {ours:.2f} s ({len(run.series['train'])} "
            f"points), EventAccumulator {theirs:.2f} s ({theirs_points} points): "
            f"{theirs / ours:.1f}x faster"
        )
        try:
            from tbparse import SummaryReader
        except ImportError:
            print("tbparse: not installed (pip install tbparse)")
            return 0
        started = time.perf_counter()
        frame = SummaryReader(str(path)).scalars
        parsed = time.perf_counter() - started
        print(f"tbparse {parsed:.2f} s ({len(frame)} points): {parsed / ours:.1f}x faster")
    return 0


if __name__ == "__main__":
    sys.exit(main())
