#!/usr/bin/env python3
"""Fleet: ``lossdoctor check`` of many small runs (``-f summary-csv``), locally with
``--jobs 1`` (with ``--cache``, which stores every report), ``--jobs 2``, on a Dask
LocalCluster (2 worker processes), and again with ``--jobs 1 --cache`` over the unchanged
runs; runs per second and the peak memory of the coordinating process (its own RSS, not
the workers').

    python benchmarks/bench_fleet.py [--runs 10000] [--points 200] [--skip-dask | --cache-only]

Each pass runs in a fresh coordinator process; the table is Markdown.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: Shapes of the generated runs, in turn (one run in 50 is a file that is not a log).
SHAPES = ("healthy", "healthy", "spiky", "healthy", "diverging", "plateau", "with_nan")
CORRUPT_EVERY = 50
#: Scheduler, workers and the scheduler's HTTP server listen on the loopback interface only.
LOOPBACK_ONLY = {"host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"}


def write_runs(folder: Path, count: int, points: int) -> list[str]:
    """Write ``count`` small CSV runs of ``points`` rows under ``folder``; return the paths."""
    from lossdoctor import synth

    paths = []
    for i in range(count):
        sub = folder / f"sweep-{i // 1000:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        path = sub / f"run-{i:05d}.csv"
        if i % CORRUPT_EVERY == CORRUPT_EVERY - 1:
            path.write_bytes(b"\x00\x01 not a log")
        else:
            steps, values = getattr(synth, SHAPES[i % len(SHAPES)])(n=points, seed=i)
            rows = "\n".join(f"{int(s)},{v:.5g}" for s, v in zip(steps, values, strict=True))
            path.write_text("step,loss\n" + rows + "\n")
        paths.append(str(path))
    return paths


def coordinate(args: list[str]) -> None:
    """Run ``lossdoctor ARGS`` in this process; print its seconds, peak RSS and exit code."""
    import resource

    from lossdoctor.cli import app

    started = time.perf_counter()
    try:
        code = int(app(args, standalone_mode=False) or 0)  # typer.Exit's code is returned
    except SystemExit as exc:
        code = int(exc.code or 0)
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "peak_mib": peak_kib / 1024, "exit": code}))


def timed_pass(paths_file: Path, options: list[str], out: Path) -> dict[str, float]:
    """Return the coordinator's numbers for one ``check`` pass over the runs in
    ``paths_file`` with ``options``."""
    paths = paths_file.read_text().split("\n")
    command = [sys.executable, __file__, "--coordinate", "--", "check", *options]
    command += ["-f", f"summary-csv:{out}", *paths]
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    """Print the fleet table (Markdown)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--points", type=int, default=200)
    ap.add_argument("--skip-dask", action="store_true")
    ap.add_argument(
        "--cache-only", action="store_true", help="only the two --jobs 1 --cache passes"
    )
    ap.add_argument("--coordinate", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.coordinate:
        coordinate(args.rest)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths_file = root / "paths.txt"
        paths_file.write_text("\n".join(write_runs(root / "runs", args.runs, args.points)))
        cache = ["--jobs", "1", "--cache", str(root / "cache")]
        passes: list[tuple[str, list[str]]] = [
            ("local --jobs 1 --cache (first pass: every run diagnosed and stored)", cache),
        ]
        if not args.cache_only:
            passes.append(("local --jobs 2", ["--jobs", "2"]))
        cluster = None
        if not args.skip_dask and not args.cache_only:
            from distributed import LocalCluster

            cluster = LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, **LOOPBACK_ONLY
            )
            address = cluster.scheduler_address
            passes.append(
                ("dask LocalCluster (2 workers)", ["--executor", "dask", "--scheduler", address])
            )
        passes.append(("local --jobs 1 --cache (second pass, runs unchanged)", cache))
        print(f"{args.runs:,} runs of {args.points} points (one in {CORRUPT_EVERY} not a log)\n")
        print("| pass | seconds | runs/s | coordinator peak RSS | exit |")
        print("|---|---:|---:|---:|---:|")
        results = {}
        baseline = None
        try:
            for name, options in passes:
                out = root / f"summary-{len(results)}.csv"
                numbers = timed_pass(paths_file, options, out)
                results[name] = numbers
                rate = args.runs / numbers["seconds"]
                print(
                    f"| {name} | {numbers['seconds']:.1f} | {rate:,.0f} | "
                    f"{numbers['peak_mib']:.0f} MiB | {numbers['exit']:.0f} |",
                    flush=True,
                )
                summary = out.read_text()
                if baseline is None:
                    baseline = summary
                elif summary != baseline:
                    print(f"  ! {name}: the summary differs from the first pass")
        finally:
            if cluster is not None:
                cluster.close()
        first, second = (results[name]["seconds"] for name in (passes[0][0], passes[-1][0]))
        print(f"\ncache: the second pass is {first / second:.1f}x faster than the first")
    return 0


if __name__ == "__main__":
    sys.exit(main())
