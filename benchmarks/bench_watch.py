#!/usr/bin/env python3
"""Live-mode benchmarks: ingest throughput of ``lossdoctor watch -`` and detection delay.

    python benchmarks/bench_watch.py [--lines 1000000]

1. Throughput: N nanoGPT-style lines piped into ``lossdoctor watch -`` (report at
   the end included); lines per second of wall time, and the same for ``cat`` as the
   pipe's own ceiling, measured in the same run.
2. Detection delay: for each labelled benchmark case (``../shared/bench/cases``,
   table formats) and each rule it must fire, the fewest leading points of the log
   with which the rule already fires, as a share of the log (judging prefixes).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def write_lines(path: Path, n: int) -> None:
    """Write ``n`` nanoGPT training lines (a healthy decaying loss with noise)."""
    with path.open("w") as out:
        for i in range(n):
            loss = 4.0 * math.exp(-i / (n / 5)) + 1.0 + 0.02 * math.sin(i * 12.9898)
            out.write(f"iter {i}: loss {loss:.4f}, time 31.2ms, mfu 35.10%\n")


def throughput(n: int) -> None:
    """Print lines per second through watch and through cat."""
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "train.log"
        write_lines(log, n)
        started = time.perf_counter()
        subprocess.run(f"cat {log} > /dev/null", shell=True, check=True)
        cat = time.perf_counter() - started
        started = time.perf_counter()
        proc = subprocess.run(
            f"cat {log} | {sys.executable} -m lossdoctor watch - > /dev/null",
            shell=True, env={"LOSSDOCTOR_PLAIN": "1", "PATH": "/usr/bin:/bin"},
        )  # fmt: skip
        watch = time.perf_counter() - started
    print(
        f"throughput: {n} lines in {watch:.2f} s = {n / watch:,.0f} lines/s through "
        f"'lossdoctor watch -' (exit {proc.returncode}); cat alone: {n / cat:,.0f} lines/s"
    )


def detection_delay() -> None:
    """Print, per rule, the median share of the log needed before the rule fires."""
    sys.path.insert(0, str(HERE))
    from lossdoctor.engine.evaluate import evaluate
    from lossdoctor.engine.loader import load_rules
    from lossdoctor.ingest import read_run
    from lossdoctor.model import Run, Series

    cases_dir = HERE.parent / "shared" / "bench" / "cases"
    if not (cases_dir / "labels.jsonl").is_file():
        print("detection delay: ../shared/bench not found, skipped")
        return
    rules = load_rules()
    delays: dict[str, list[float]] = {}
    for line in (cases_dir / "labels.jsonl").read_text().splitlines():
        case = json.loads(line)
        run = read_run(str(cases_dir / case["file"]))
        train = run.series["train"]
        n = len(train)
        for rule in case["must"]:
            if rule in ("smooth-decline", "plateau"):
                continue
            found = None
            for share in [i / 20 for i in range(1, 21)]:
                cut = max(2, int(n * share))
                series = {
                    role: Series(role, s.column, s.steps[s.steps <= train.steps[cut - 1]],
                                 s.values[s.steps <= train.steps[cut - 1]], s.x_kind)
                    for role, s in run.series.items()
                }  # fmt: skip
                report = evaluate(Run(run.source, run.reader, series), rules)
                if any(f.rule == rule and f.severity != "info" for f in report.findings):
                    found = share
                    break
            delays.setdefault(rule, []).append(found if found is not None else math.nan)
    print("detection delay (share of the log needed before the rule fires; median over cases):")
    for rule, values in sorted(delays.items()):
        seen = sorted(v for v in values if v == v)
        median = seen[len(seen) // 2] if seen else math.nan
        fired = f"{len(seen)}/{len(values)} cases fire before the end"
        print(f"  {rule:14} median {median:.0%}  ({fired})")


def main() -> int:
    """Run both benchmarks."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--skip-delay", action="store_true")
    args = ap.parse_args()
    throughput(args.lines)
    if not args.skip_delay:
        detection_delay()
    return 0


if __name__ == "__main__":
    sys.exit(main())
