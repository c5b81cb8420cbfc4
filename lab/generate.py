#!/usr/bin/env python3
"""Regenerate the lab: train every scenario's runs on CPU and write their logs and labels.

    python lab/generate.py [--out lab/runs] [--only PATTERN[,PATTERN...]] [--list] [--labels-only]

Each run trains a tiny model for a few hundred steps on one thread (seconds each);
the whole lab takes a few minutes.  ``labels.jsonl`` in the output folder says, per
run, what its cause implies (``must`` / ``allow`` / ``verdicts``), decided by the
scenario before training.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scenarios import Scenario

HERE = Path(__file__).resolve().parent


def main() -> int:
    """Train and write the runs; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(HERE / "runs"), help="output folder")
    parser.add_argument(
        "--only", default="*", help="scenario name patterns (fnmatch), comma-separated"
    )
    parser.add_argument("--list", action="store_true", help="list the runs and exit")
    parser.add_argument(
        "--labels-only",
        action="store_true",
        help="rewrite labels.jsonl for the runs already written (no training)",
    )
    args = parser.parse_args()
    import torch
    from formats import WRITERS
    from scenarios import SCENARIOS
    from train import train

    torch.set_num_threads(1)
    out = Path(args.out)
    labels: list[dict[str, object]] = []
    began = time.monotonic()
    for scenario in SCENARIOS:
        if not any(fnmatch.fnmatch(scenario.name, p) for p in args.only.split(",")):
            continue
        for run_id, config, fmt in scenario.runs():
            if args.list:
                print(run_id)
                continue
            folder = out / scenario.name / run_id
            if args.labels_only:
                written = sorted(folder.iterdir()) if folder.is_dir() else []
                if written:
                    path = folder if fmt == "tensorboard" else written[0]
                    labels.append(
                        label_of(scenario, fmt, config.seed, path.relative_to(out).as_posix())
                    )
                continue
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            started = time.monotonic()
            record = train(config)
            path = WRITERS[fmt](record, folder, config.seed)
            labels.append(label_of(scenario, fmt, config.seed, path.relative_to(out).as_posix()))
            print(f"{run_id:40} {time.monotonic() - started:5.1f}s", flush=True)
    if not args.list:
        write_labels(out / "labels.jsonl", labels, replace_all=args.only == "*")
        print(f"{len(labels)} runs in {time.monotonic() - began:.0f}s -> {out}")
    return 0


def label_of(scenario: Scenario, fmt: str, seed: int, file: str) -> dict[str, object]:
    """Return the label line of one run: its file, what its cause implies and where from."""
    label: dict[str, object] = {"file": file}
    label.update(scenario.labels_for(fmt, seed))
    label.update(scenario=scenario.name, cause=scenario.cause, format=fmt, seed=seed)
    return label


def write_labels(path: Path, labels: list[dict[str, object]], *, replace_all: bool) -> None:
    """Write the labels; a partial regeneration keeps the other scenarios' lines."""
    kept: list[dict[str, object]] = []
    if not replace_all and path.is_file():
        fresh = {str(label["file"]) for label in labels}
        scenarios = {str(label["scenario"]) for label in labels}
        for line in path.read_text().splitlines():
            old = json.loads(line)
            if old["file"] not in fresh and old["scenario"] not in scenarios:
                kept.append(old)
    rows = sorted(kept + labels, key=lambda label: str(label["file"]))
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    sys.exit(main())
