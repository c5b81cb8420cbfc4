#!/usr/bin/env python3
"""Scaling: ``lossdoctor check`` on CSVs of 1e3 .. 1e7 rows against ``pandas.read_csv``
alone on the same file, time and peak memory (child processes, measured in one run).

Each pair is run ``--repeat`` times, interleaved, and the fastest run of each is kept
(the machine is noisy; the minimum is the least disturbed measurement).

    python benchmarks/bench_scale.py [--max 10000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_csv(path: Path, rows: int) -> None:
    """Write step, loss, lr and a sparse val_loss (every 100th row)."""
    rng = np.random.default_rng(0)
    steps = np.arange(rows)
    loss = (4.0 * np.exp(-steps / max(rows / 5, 1)) + 1.0) * np.exp(rng.normal(0, 0.03, rows))
    lr = np.full(rows, 3e-4)
    with path.open("w") as out:
        out.write("step,loss,lr,val_loss\n")
        for start in range(0, rows, 1_000_000):
            chunk = slice(start, min(rows, start + 1_000_000))
            lines = [
                f"{s},{v:.5f},{r:.1e},{v * 1.1:.5f}" if s % 100 == 0 else f"{s},{v:.5f},{r:.1e},"
                for s, v, r in zip(steps[chunk], loss[chunk], lr[chunk], strict=True)
            ]
            out.write("\n".join(lines) + "\n")


def measure(command: list[str]) -> tuple[float, float]:
    """Return (seconds, peak MiB) of a child process."""
    import os

    started = time.perf_counter()
    pid = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).pid
    _, _, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - started
    return seconds, usage.ru_maxrss / 1024


def main() -> int:
    """Print the scaling table (Markdown)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(
        "| rows | lossdoctor check | peak memory | pandas.read_csv alone | its peak memory "
        "| float columns | time ratio | memory / float columns |"
    )
    print("|---|---|---|---|---|---|---|---|")
    sizes = [n for n in (1_000, 10_000, 100_000, 1_000_000, 10_000_000) if n <= args.max]
    with tempfile.TemporaryDirectory() as tmp:
        for rows in sizes:
            path = Path(tmp) / f"run{rows}.csv"
            write_csv(path, rows)
            pandas_cmd = [sys.executable, "-c", f"import pandas; pandas.read_csv({str(path)!r})"]
            check_cmd = [sys.executable, "-m", "lossdoctor", "check", "--fail-on", "never"]
            check_cmd += ["-f", "json", str(path)]
            runs = [(measure(pandas_cmd), measure(check_cmd)) for _ in range(args.repeat)]
            pandas_s = min(p[0] for p, _ in runs)
            pandas_peak = min(p[1] for p, _ in runs)
            check_s = min(c[0] for _, c in runs)
            peak = min(c[1] for _, c in runs)
            columns_mib = rows * 4 * 8 / 2**20
            # below ~100 MiB of data the interpreter's own memory dominates the peak
            memory_ratio = f"{peak / columns_mib:.2f}x" if columns_mib >= 100 else "-"
            print(
                f"| {rows:,} | {check_s:.2f} s | {peak:.0f} MiB | {pandas_s:.2f} s "
                f"| {pandas_peak:.0f} MiB | {columns_mib:.0f} MiB | {check_s / pandas_s:.2f}x "
                f"| {memory_ratio} |"
            )
            path.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
