#!/usr/bin/env python3
"""Run the rule pack over labelled corpora and print per-rule precision/recall.

    python scripts/primer.py [--bench DIR] [--real DIR] [--real2 DIR] [--lab DIR] [-v]

Corpora: ``../shared/bench/cases``, ``../shared/corpus/real`` and ``real2`` and the
project's training lab ``lab/runs`` (each with a ``labels.jsonl`` of must / allow /
verdicts), and the project's own rule case files (``tests/cases``).  The numbers are
compared with the committed baseline (``scripts/primer_baseline.json``); ``--save``
rewrites it.  Scoring follows the benchmark:
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

from lossdoctor.api import diagnose_source
from lossdoctor.engine.loader import load_rules

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from bench_accuracy import as_seen  # a labelled file scored as check shows it

SCORED = [
    "smooth-decline",
    "spikes",
    "oscillation",
    "high-flatline",
    "plateau",
    "overfitting",
    "divergence",
    "non-finite",
    "level-shift",
    "masked-non-finite",
]
HERE = Path(__file__).resolve().parent.parent


def score(root: Path, verbose: bool) -> dict:
    """Print the per-rule scores of the corpus at ``root`` and return them."""
    labels = [json.loads(x) for x in (root / "labels.jsonl").read_text().splitlines() if x.strip()]
    rules = load_rules()
    tp, fp, fn = Counter(), Counter(), Counter()
    verdict_ok = errors = healthy = false_alarms = 0
    for case in labels:
        run = as_seen(diagnose_source(str(root / case["file"]), rules=rules, curves=False))
        if run["verdict"] == "error":
            errors += 1
            if verbose:
                print("  unreadable:", case["file"], run["error"])
            continue
        got = run["fired"]
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
    per_rule = {}
    for rule in SCORED:
        p = tp[rule] / (tp[rule] + fp[rule]) if tp[rule] + fp[rule] else 1.0
        r = tp[rule] / (tp[rule] + fn[rule]) if tp[rule] + fn[rule] else 1.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        if tp[rule] + fp[rule] + fn[rule]:
            f1s.append(f1)
        print(f"{rule:16} {p:6.3f} {r:6.3f} {f1:6.3f}  {tp[rule]} {fp[rule]} {fn[rule]}")
        per_rule[rule] = round(f1, 3)
    n = len(labels) - errors
    summary = {
        "macro_f1": round(sum(f1s) / max(len(f1s), 1), 3),
        "verdict": round(verdict_ok / max(n, 1), 3),
        "false_alarms_on_healthy": false_alarms,
        "unreadable": errors,
        "f1": per_rule,
    }
    print(
        f"macro_f1={summary['macro_f1']:.3f} verdict={summary['verdict']:.3f} "
        f"false_alarms_on_healthy={false_alarms}/{healthy}\n"
    )
    return summary


def score_cases(folder: Path, verbose: bool) -> dict:
    """Print and return how many expectations of the project's rule case files hold."""
    from lossdoctor.casefile import run_case_dir

    results = run_case_dir(folder, load_rules())
    failed = [r for r in results if not r.ok]
    for r in failed if verbose else []:
        print(f"  case miss: {Path(r.file).name} [{r.case}] {r.rule}: {r.expected} != {r.got}")
    print(f"{folder}: {len(results) - len(failed)}/{len(results)} case expectations hold\n")
    return {"held": len(results) - len(failed), "total": len(results)}


def diff(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Return lines naming every number that changed between two score dicts."""
    lines = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) or isinstance(b, dict):
            lines += diff(a or {}, b or {}, f"{prefix}{key}.")
        elif a != b:
            lines.append(f"  {prefix}{key}: {a} -> {b}")
    return lines


def main() -> int:
    """Score every corpus that exists."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", default=str(HERE.parent / "shared" / "bench" / "cases"))
    ap.add_argument("--real", default=str(HERE.parent / "shared" / "corpus" / "real"))
    ap.add_argument("--real2", default=str(HERE.parent / "shared" / "corpus" / "real2"))
    ap.add_argument("--lab", default=str(HERE / "lab" / "runs"))
    ap.add_argument("--cases", default=str(HERE / "tests" / "cases"))
    ap.add_argument("--baseline", default=str(HERE / "scripts" / "primer_baseline.json"))
    ap.add_argument("--save", action="store_true", help="rewrite the baseline with these numbers")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    scores: dict = {}
    corpora = (("bench", args.bench), ("real", args.real), ("real2", args.real2), ("lab", args.lab))
    for name, folder in corpora:
        if (Path(folder) / "labels.jsonl").is_file():
            scores[name] = score(Path(folder), args.verbose)
        else:
            print(f"{folder}: not found, skipped", file=sys.stderr)
    scores["cases"] = score_cases(Path(args.cases), args.verbose)
    baseline = Path(args.baseline)
    if args.save:
        baseline.write_text(json.dumps(scores, indent=2, sort_keys=True) + "\n")
        print(f"baseline written: {baseline}")
    elif baseline.is_file():
        changes = diff(json.loads(baseline.read_text()), scores)
        print("against the baseline:" if changes else "no change against the baseline")
        print("\n".join(changes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
