#!/usr/bin/env python3
"""Prefixes of healthy runs: what lossdoctor says of a healthy run while it is still running.

    python benchmarks/bench_prefixes.py [--lab lab/runs] [--real DIR ...] [--shares 10,20,...]
                                        [-v] [--json]

Every run labelled healthy only (``verdicts == ["healthy"]``) in the lab and in the real
corpora (``../shared/corpus/real``, ``../shared/corpus/real2``, skipped when absent) is cut
to its first 10%, 20%, ..., 90% and judged twice: as ``lossdoctor check --in-progress``
judges a log still being written, and as plain ``lossdoctor check``.  A text log is cut
by its lines (the bytes a tailing ``check`` would read); a file of another kind (a
``trainer_state.json``, TensorBoard event files, a folder) is read whole and every series
is cut at the step the share of its training points reaches.  The table counts the
prefixes judged ``warning`` and ``failing`` and the rules behind them; ``-v`` lists each.

No prefix of a healthy run may reach ``failing``: the brief's rule (anything that stops
a training job must be right first).  A warning on a prefix can be a genuine
observation (a run that is at that point not yet healthy-looking); the list says which.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_accuracy import HERE, as_seen

#: Shares of a run judged, in percent.
SHARES = (10, 20, 30, 40, 50, 60, 70, 80, 90)
#: Files read as text and cut by their lines (anything else is cut after reading).
TEXT_SUFFIXES = frozenset({".csv", ".tsv", ".jsonl", ".log", ".txt", ".out"})
#: The two ways a prefix is judged.
MODES = {"in-progress": True, "check": False}


@dataclass
class Counts:
    """What the prefixes of one corpus were called, per judging mode."""

    runs: int = 0
    prefixes: Counter[str] = field(default_factory=Counter)
    warning: Counter[str] = field(default_factory=Counter)
    failing: Counter[str] = field(default_factory=Counter)
    rules: dict[str, Counter[str]] = field(default_factory=dict)
    listed: list[str] = field(default_factory=list)


def _cut_lines(data: bytes, share: int) -> bytes:
    """Return the first ``share`` percent of the lines of ``data`` (at least two: a
    table's header and one row)."""
    lines = data.splitlines(keepends=True)
    keep = max(2, len(lines) * share // 100)
    return b"".join(lines[:keep])


def _cut_run(run: Any, share: int) -> Any:
    """Return ``run`` with every series cut at the step where ``share`` percent of its
    training points have been logged."""
    from dataclasses import replace

    train = run.series.get("train") or next(iter(run.series.values()))
    keep = max(1, len(train) * share // 100)
    last = float(train.steps[keep - 1])
    series = {}
    for role, s in run.series.items():
        mask = s.steps <= last if s.x_kind == train.x_kind else np.arange(len(s)) < keep
        if not mask.any():
            continue
        series[role] = replace(
            s,
            steps=s.steps[mask],
            values=s.values[mask],
            lines=None if s.lines is None else s.lines[mask],
        )
    return replace(run, series=series, groups=())


def judge_prefixes(path: Path, rules: list[Any]) -> dict[tuple[str, int], dict[str, Any]]:
    """Return what ``check`` (and ``check --in-progress``) shows of every prefix of the log
    at ``path``: ``{(mode, share): {"verdict", "fired"}}``."""
    from lossdoctor.api import diagnose_source
    from lossdoctor.engine.evaluate import evaluate
    from lossdoctor.ingest import read_source

    out: dict[tuple[str, int], dict[str, Any]] = {}
    if path.is_file() and path.suffix in TEXT_SUFFIXES:
        data = path.read_bytes()
        for share in SHARES:
            cut = _cut_lines(data, share)
            for mode, partial in MODES.items():
                reports = diagnose_source(
                    str(path), data=cut, rules=rules, curves=False, in_progress=partial
                )
                out[mode, share] = as_seen(reports)
        return out
    runs, _ = read_source(str(path))
    whole = [r for run in runs for r in run.runs()]
    for share in SHARES:
        cut_runs = [_cut_run(run, share) for run in whole]
        for mode, partial in MODES.items():
            reports = [evaluate(r, rules, curves=False, partial=partial) for r in cut_runs]
            out[mode, share] = as_seen(reports)
    return out


def tally(root: Path, counts: Counts) -> None:
    """Judge the prefixes of every healthy run labelled below ``root``."""
    from lossdoctor.engine.loader import load_rules

    rules = load_rules()
    for line in (root / "labels.jsonl").read_text().splitlines():
        if not line.strip():
            continue
        case = json.loads(line)
        if case["verdicts"] != ["healthy"] or case.get("confidence") == "low":
            continue
        counts.runs += 1
        for (mode, share), seen in judge_prefixes(root / case["file"], rules).items():
            counts.prefixes[mode] += 1
            verdict = seen["verdict"]
            if verdict not in ("warning", "failing"):
                continue
            getattr(counts, verdict)[mode] += 1
            loud = sorted(seen["loud"])
            counts.rules.setdefault(mode, Counter()).update(loud)
            counts.listed.append(f"{mode:11s} {share:2d}% {verdict:7s} {loud} {case['file']}")


def main() -> int:
    """Judge the prefixes of every corpus that exists; print the counts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    shared = HERE.parent / "shared"
    parser.add_argument("--lab", default=str(HERE / "lab" / "runs"))
    parser.add_argument(
        "--real",
        nargs="*",
        default=[str(shared / "corpus" / "real"), str(shared / "corpus" / "real2")],
    )
    parser.add_argument("--json", action="store_true", help="print the counts as JSON")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every loud prefix")
    args = parser.parse_args()
    results: dict[str, Counts] = {}
    for folder in [args.lab, *args.real]:
        if not (Path(folder) / "labels.jsonl").is_file():
            print(f"{folder}: not found, skipped", file=sys.stderr)
            continue
        name = "lab" if folder == args.lab else Path(folder).name
        results[name] = Counts()
        tally(Path(folder), results[name])
    if args.json:
        doc = {
            name: {
                "healthy_runs": c.runs,
                **{
                    mode: {
                        "prefixes": c.prefixes[mode],
                        "warning": c.warning[mode],
                        "failing": c.failing[mode],
                        "rules": dict(c.rules.get(mode, {})),
                    }
                    for mode in MODES
                },
            }
            for name, c in results.items()
        }
        print(json.dumps(doc, indent=2, sort_keys=True))
        return 0
    print("| corpus | healthy runs | mode | prefixes | warning | failing | rules (prefixes) |")
    print("|---|---:|---|---:|---:|---:|---|")
    for name, c in results.items():
        for mode in MODES:
            rules = ", ".join(f"{r} {n}" for r, n in sorted(c.rules.get(mode, {}).items()))
            print(
                f"| {name} | {c.runs} | {mode} | {c.prefixes[mode]} | {c.warning[mode]} "
                f"| {c.failing[mode]} | {rules or '-'} |"
            )
    if args.verbose:
        for name, c in results.items():
            print(f"\n## {name}: prefixes judged warning or failing")
            for entry in c.listed:
                print("  " + entry)
    return 0


if __name__ == "__main__":
    sys.exit(main())
