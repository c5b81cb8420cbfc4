#!/usr/bin/env python3
"""Start-up: ``lossdoctor --help`` and ``lossdoctor check`` of a 100-row CSV, each the
fastest and the median of ``--repeat`` runs in fresh processes, with what they import.

    python benchmarks/bench_startup.py [--repeat 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = ("pandas", "scipy", "matplotlib", "google.protobuf")


def timed(command: list[str], repeat: int) -> tuple[float, float]:
    """Return (fastest, median) seconds of ``command`` over ``repeat`` fresh processes."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - started)
    return min(times), statistics.median(times)


def heavy_imports(command: list[str]) -> list[str]:
    """Return the heavy modules ``command`` (a ``python -m`` call) imports."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *command[1:]],
        capture_output=True,
        text=True,
        check=False,
    )
    names = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()}
    return sorted(h for h in HEAVY if h in names)


def main() -> int:
    """Print the start-up table (Markdown)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "run.csv"
        rows = [f"{i},{4.0 * 0.99**i + 1.0:.4f}" for i in range(100)]
        log.write_text("step,loss\n" + "\n".join(rows) + "\n")
        commands = {
            "lossdoctor --help": [sys.executable, "-m", "lossdoctor", "--help"],
            "lossdoctor check (100-row CSV)": [
                sys.executable,
                "-m",
                "lossdoctor",
                "check",
                str(log),
            ],
            "python -c pass (the interpreter alone)": [sys.executable, "-c", "pass"],
        }
        print("| command | fastest | median | heavy modules imported |")
        print("|---|---|---|---|")
        for name, command in commands.items():
            fastest, median = timed(command, args.repeat)
            heavy = ", ".join(heavy_imports(command)) if "-m" in command else "-"
            print(f"| {name} | {fastest:.2f} s | {median:.2f} s | {heavy or 'none'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
