#!/usr/bin/env python3
"""Run the rule pack over labelled corpora and print per-rule precision/recall.

    python scripts/primer.py [--bench DIR] [--real DIR] [-v]

Corpora: ``../shared/bench/cases`` and ``../shared/corpus/real`` (each with a
``labels.jsonl`` of must / allow / verdicts).  Scoring follows the benchmark:
a rule fires when it has a finding at warning or error (smooth-decline and
plateau at any severity).  Run it before changing a threshold and put its
numbers in the commit message.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from lossdoctor.api import diagnose
from lossdoctor.engine.loader import load_rules

SCORED = [
    "smooth-decline",
    "spikes",
    "oscillation",
    "high-flatline",
    "plateau",
    "overfitting",
    "divergence",
    "non-finite",
]
ANY_SEVERITY = {"smooth-decline", "plateau"}
HERE = Path(__file__).resolve().parent.parent


def fired(run: dict) -> set[str]:
    """Return the rules that count as fired in a run dict."""
    return {
        f["rule"]
        for f in run.get("findings", [])
        if f["rule"] in ANY_SEVERITY or f["severity"] in ("warning", "error")
    }


def score(root: Path, verbose: bool) -> None:
    """Print the per-rule scores of the corpus at ``root``."""
    labels = [json.loads(x) for x in (root / "labels.jsonl").read_text().splitlines() if x.strip()]
    rules = load_rules()
    tp, fp, fn = Counter(), Counter(), Counter()
    verdict_ok = errors = healthy = false_alarms = 0
    for case in labels:
        run = diagnose(str(root / case["file"]), rules=rules).to_dict()
        if run["verdict"] == "error":
            errors += 1
            if verbose:
                print("  unreadable:", case["file"], run["error"])
            continue
        got = fired(run)
        must, allow = set(case["must"]), set(case["allow"])
        for rule in SCORED:
            if rule in must and rule in got:
                tp[rule] += 1
            elif rule in must:
                fn[rule] += 1
            elif rule in got and rule not in allow:
                fp[rule] += 1
        ok = run["verdict"] in case["verdicts"]
        verdict_ok += ok
        if "healthy" in case["verdicts"] and case["verdicts"] == ["healthy"]:
            healthy += 1
            false_alarms += run["verdict"] != "healthy"
        if verbose and (not ok or not must <= got or not got <= must | allow):
            print(
                f"  miss: {case['file']} must={sorted(must)} fired={sorted(got)} "
                f"verdict={run['verdict']} want={case['verdicts']}"
            )
    print(f"{root}: {len(labels)} cases, {errors} unreadable")
    print(f"{'rule':16} {'prec':>6} {'recall':>6} {'f1':>6}  tp fp fn")
    f1s = []
    for rule in SCORED:
        p = tp[rule] / (tp[rule] + fp[rule]) if tp[rule] + fp[rule] else 1.0
        r = tp[rule] / (tp[rule] + fn[rule]) if tp[rule] + fn[rule] else 1.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        if tp[rule] + fp[rule] + fn[rule]:
            f1s.append(f1)
        print(f"{rule:16} {p:6.3f} {r:6.3f} {f1:6.3f}  {tp[rule]} {fp[rule]} {fn[rule]}")
    n = len(labels) - errors
    print(
        f"macro_f1={sum(f1s) / max(len(f1s), 1):.3f} verdict={verdict_ok / max(n, 1):.3f} "
        f"false_alarms_on_healthy={false_alarms}/{healthy}\n"
    )


def main() -> int:
    """Score every corpus that exists."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", default=str(HERE.parent / "shared" / "bench" / "cases"))
    ap.add_argument("--real", default=str(HERE.parent / "shared" / "corpus" / "real"))
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    for folder in (args.bench, args.real):
        if (Path(folder) / "labels.jsonl").is_file():
            score(Path(folder), args.verbose)
        else:
            print(f"{folder}: not found, skipped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
