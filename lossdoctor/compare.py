"""Compare a candidate run with a reference run: is it worse beyond a tolerance?

Checks, on the training loss: the first logged loss (either way: a difference before
any update means the two runs do not compute the same loss), the final level and the
best level (relative tolerance), the curve over the shared steps (a band of max(rtol, k robust
deviations of the reference's trend)), the steps needed to reach the reference's
final loss, and problem findings the reference did not have.  Failed checks become
``baseline-regression`` findings (error) on the candidate's report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lossdoctor.engine.evaluate import evaluate
from lossdoctor.engine.schema import Rule
from lossdoctor.errors import InputError
from lossdoctor.features import SeriesView
from lossdoctor.ingest import ColumnHints, read_runs
from lossdoctor.model import TRAIN, Run
from lossdoctor.report import Finding, Report, RunReport, safe_exp

RULE_NAME = "baseline-regression"
RULE_CODE = "LD601"
#: Share of the shared steps a gap must last to count as the curves parting.
PERSIST_SHARE = 0.05
#: The trend's noise relative to the per-point noise, per sqrt(window) (median of a window).
TREND_NOISE = 1.25


#: What the compared "final" and "best" losses are (said in every message and the README).
MEANING = {
    "final": "final = median of the last 10% of points",
    "best": "best = lowest level of the trend smoothed over 10% of the run",
}
#: The logged values quoted beside them.
LOGGED = {"final": "last logged", "best": "lowest logged"}
LOGGED_KEY = {"final": "last_logged", "best": "lowest_logged"}


@dataclass(frozen=True)
class Tolerances:
    """How much worse the candidate may be: relative loss, noise bands, convergence time."""

    rtol: float = 0.05
    k: float = 3.0
    speed_tol: float = 0.1


@dataclass(frozen=True)
class Check:
    """One comparison check and its outcome."""

    name: str
    passed: bool
    message: str
    numbers: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """Return the check as a JSON-ready dict."""
        nums: dict[str, Any] = {
            k: (round(v, 6) if math.isfinite(v) else str(v)) for k, v in self.numbers.items()
        }
        for key, value in nums.items():  # steps as logged: 10, not 10.0
            if (key == "step" or key.endswith("_step")) and isinstance(value, float):
                nums[key] = int(value) if value.is_integer() else value
        return {"check": self.name, "passed": self.passed, "message": self.message, **nums}


def _pct(ratio: float) -> str:
    return f"{100 * (ratio - 1):+.1f}%"


def compare_runs(
    reference: Run, candidate: Run, ref_report: RunReport, cand_report: RunReport, tol: Tolerances
) -> list[Check]:
    """Return the checks of ``candidate`` against ``reference`` (training loss)."""
    ref_train, cand_train = reference.get(TRAIN), candidate.get(TRAIN)
    if ref_train is None or cand_train is None:
        return [Check("curve", True, "no training loss in both runs: nothing to compare", {})]
    ref, cand = SeriesView(ref_train), SeriesView(cand_train)
    if ref.n < 2 or cand.n < 2 or not (ref.log_space and cand.log_space):
        return [Check("curve", True, "too few positive points to compare", {})]
    checks: list[Check] = [_first_check(ref, cand, tol)]
    for name, ref_level, cand_level, ref_logged, cand_logged in (
        ("final", ref.end_level, cand.end_level, ref.values[-1], cand.values[-1]),
        ("best", ref.best_level, cand.best_level, ref.values.min(), cand.values.min()),
    ):
        ratio = safe_exp(cand_level - ref_level)
        passed = ratio <= 1 + tol.rtol
        message = (
            f"{name} loss {safe_exp(cand_level):.4g} vs reference {safe_exp(ref_level):.4g} "
            f"({_pct(ratio)}, tolerance +{100 * tol.rtol:.0f}%; {MEANING[name]}; "
            f"{LOGGED[name]} {float(cand_logged):.4g} vs {float(ref_logged):.4g})"
        )
        numbers = {
            "candidate": safe_exp(cand_level),
            "reference": safe_exp(ref_level),
            "ratio": ratio,
            f"candidate_{LOGGED_KEY[name]}": float(cand_logged),
            f"reference_{LOGGED_KEY[name]}": float(ref_logged),
        }
        checks.append(Check(name, passed, message, numbers))
    checks.append(_curve_check(ref, cand, tol))
    checks.append(_speed_check(ref, cand, tol))
    ref_problems = {f.rule for f in ref_report.active if f.severity != "info"}
    new = sorted({f.rule for f in cand_report.active if f.severity != "info"} - ref_problems)
    message = (
        f"new findings the reference did not have: {', '.join(new)}" if new else "no new findings"
    )
    checks.append(Check("new-findings", not new, message, {"count": float(len(new))}))
    return checks


#: A whole-curve ratio this close (relative) to a whole number k >= 2 (or 1/k) is named as
#: a loss-scaling suspect.
INTEGER_FACTOR_TOL = 0.03


def scale_factor(ref: SeriesView, cand: SeriesView) -> float:
    """Return the median ratio candidate / reference of the two trends over the shared
    steps (NaN when they share fewer than 3 logged steps of the reference)."""
    shared = (ref.steps >= cand.steps[0]) & (ref.steps <= cand.steps[-1])
    if shared.sum() < 3:
        return float("nan")
    cand_y = np.interp(ref.steps[shared], cand.steps, cand.trend)
    return safe_exp(float(np.median(cand_y - ref.trend[shared])))


def integer_factor(ratio: float) -> int | None:
    """Return k when ``ratio`` is within 3% of a whole number k >= 2 or of 1/k, else None."""
    if not math.isfinite(ratio) or ratio <= 0:
        return None
    big = ratio if ratio >= 1 else 1 / ratio
    k = round(big)
    return k if k >= 2 and abs(big / k - 1) <= INTEGER_FACTOR_TOL else None


def _first_check(ref: SeriesView, cand: SeriesView, tol: Tolerances) -> Check:
    """The first logged losses, before any update could explain a difference."""
    ref_first, cand_first = float(ref.values[0]), float(cand.values[0])
    ref_step, cand_step = float(ref.steps[0]), float(cand.steps[0])
    numbers = {"candidate_first": cand_first, "reference_first": ref_first, "step": ref_step}
    if ref_step != cand_step:
        message = f"first logged steps differ ({cand_step:g} vs {ref_step:g}): not compared"
        return Check("first-loss", True, message, numbers)
    ratio = cand_first / ref_first
    # two seeds' first batches differ by the per-point noise: the band is the larger of
    # the relative tolerance and k noise deviations of a difference of two points
    band = max(math.log1p(tol.rtol), tol.k * math.sqrt(2.0) * ref.noise)
    numbers.update(ratio=ratio, band_pct=100 * (safe_exp(band) - 1))
    factor = scale_factor(ref, cand)
    numbers["curve_ratio"] = factor
    within = f"band {numbers['band_pct']:.1f}% either way"
    if abs(math.log(ratio)) <= band:
        message = (
            f"first logged loss {cand_first:.4g} vs reference {ref_first:.4g} at step "
            f"{ref_step:g} ({_pct(ratio)}, {within})"
        )
        return Check("first-loss", True, message, numbers)
    direction = "lower" if ratio < 1 else "higher"
    message = (
        f"the first logged loss is already {direction}: {cand_first:.4g} vs reference "
        f"{ref_first:.4g} at step {ref_step:g} ({_pct(ratio)}, {within}), before any "
        "update could explain it: the loss function, the data or the tokenisation changed, "
        "so the two curves are not comparable"
    )
    k = integer_factor(factor)
    if k is not None:
        numbers["integer_factor"] = float(k)
        message += (
            f"; the whole curve is {factor:.3g}x the reference's, near {'1/' if factor < 1 else ''}"
            f"{k}: a loss-scaling suspect (the gradient-accumulation count, or a sum instead of "
            "a mean)"
        )
    return Check("first-loss", False, message, numbers)


def _curve_check(ref: SeriesView, cand: SeriesView, tol: Tolerances) -> Check:
    low, high = max(ref.steps[0], cand.steps[0]), min(ref.steps[-1], cand.steps[-1])
    grid_mask = (ref.steps >= low) & (ref.steps <= high)
    if grid_mask.sum() < 3:
        return Check("curve", True, "the runs share too few steps to compare curves", {})
    grid = ref.steps[grid_mask]
    ref_y = ref.trend[grid_mask]
    cand_y = np.interp(grid, cand.steps, cand.trend)
    band = max(math.log1p(tol.rtol), tol.k * TREND_NOISE * ref.noise / math.sqrt(ref.window))
    excess = cand_y - ref_y
    above = excess > band
    need = max(3, int(PERSIST_SHARE * grid.shape[0]))
    if above.shape[0] >= need:
        runs = np.convolve(above.astype(int), np.ones(need, dtype=int), mode="valid") == need
    else:
        runs = np.zeros(0, dtype=bool)
    worst = float(np.max(excess))
    numbers = {"band_pct": 100 * (safe_exp(band) - 1), "max_gap_pct": 100 * (safe_exp(worst) - 1)}
    if not runs.any():
        message = (
            f"the curves stay within the band (+{numbers['band_pct']:.1f}%) over the shared steps"
        )
        return Check("curve", True, message, numbers)
    part = int(np.argmax(runs))
    numbers["part_step"] = float(grid[part])
    message = (
        f"the candidate leaves the reference's band at step {grid[part]:g} and is up to "
        f"{numbers['max_gap_pct']:.1f}% higher (band +{numbers['band_pct']:.1f}%)"
    )
    return Check("curve", False, message, numbers)


def _first_reach(view: SeriesView, target: float) -> float:
    below = np.flatnonzero(view.trend <= target)
    return float(view.steps[below[0]]) if below.size else math.inf


def _speed_check(ref: SeriesView, cand: SeriesView, tol: Tolerances) -> Check:
    target = ref.end_level + math.log1p(tol.rtol)
    ref_steps = _first_reach(ref, target) - float(ref.steps[0])
    cand_steps = _first_reach(cand, target) - float(cand.steps[0])
    numbers = {"reference_steps": ref_steps, "candidate_steps": cand_steps}
    goal = f"{safe_exp(target):.4g}"
    if not math.isfinite(cand_steps):
        return Check(
            "speed", False, f"the candidate never reached the reference's loss ({goal})", numbers
        )
    slower = cand_steps > ref_steps * (1 + tol.speed_tol) and cand_steps - ref_steps > 0
    message = (
        f"reached the reference's loss ({goal}) after {cand_steps:g} steps vs {ref_steps:g} "
        f"(tolerance +{100 * tol.speed_tol:.0f}%)"
    )
    return Check("speed", not slower, message, numbers)


def compare_report(
    report: Report,
    reference_source: str,
    *,
    hints: ColumnHints | None = None,
    rules: Sequence[Rule],
    context: Mapping[str, Any] | None = None,
    tol: Tolerances | None = None,
) -> Report:
    """Return ``report`` with every readable run compared with the reference run.

    Raises :class:`InputError` when the reference cannot be read.
    """
    tol = tol or Tolerances()
    reference = read_runs(reference_source, hints=hints)[0]
    ref_report = evaluate(reference, rules, context)
    out = []
    for run_report in report.runs:
        if run_report.error is not None:
            out.append(run_report)
            continue
        try:
            runs = read_runs(run_report.source, hints=hints) if run_report.source != "-" else []
        except InputError:
            runs = []
        # the run of its log this report is about (a log may hold several: its groups)
        candidate = next((r for r in runs if r.group == run_report.group), None)
        if candidate is None:
            out.append(run_report)
            continue
        checks = compare_runs(reference, candidate, ref_report, run_report, tol)
        attached = attach(run_report, reference_source, checks, _fixes(rules))
        if attached.comparison is not None and TRAIN in ref_report.curves:
            steps, values = ref_report.curves[TRAIN]
            band = next((c.numbers.get("band_pct") for c in checks if c.name == "curve"), None)
            attached.comparison["reference_curve"] = {"steps": steps, "values": values}
            attached.comparison["band_pct"] = band
        out.append(attached)
    return Report(runs=out)


def _fixes(rules: Sequence[Rule]) -> tuple[dict[str, str], ...]:
    """Return the fixes of the baseline-regression rule (its rule file), from ``rules`` or
    the built-in pack when the selection left it out."""
    from lossdoctor.engine.loader import load_rules

    rule = next((r for r in rules if r.name == RULE_NAME), None)
    if rule is None:
        rule = next(r for r in load_rules() if r.name == RULE_NAME)
    return tuple({"title": f.title, "why": f.why} for f in rule.fixes)


#: Keys of a check that the finding's message already says.
_SAID = frozenset({"message", "passed"})


def attach(
    report: RunReport, reference: str, checks: list[Check], fixes: tuple[dict[str, str], ...]
) -> RunReport:
    """Return ``report`` with the comparison, a finding per failed check (``fixes`` are
    the rule's) and the rule counted among the rules checked."""
    findings = list(report.findings)
    for check in checks:
        if not check.passed:
            findings.append(
                Finding(
                    rule=RULE_NAME,
                    code=RULE_CODE,
                    severity="error",
                    message=f"Worse than the reference {reference}: {check.message}.",
                    series=TRAIN,
                    evidence={
                        **{k: v for k, v in check.to_dict().items() if k not in _SAID},
                        "reference_run": reference,
                    },
                    fixes=fixes,
                )
            )
    report.findings = findings
    if (RULE_CODE, RULE_NAME) not in report.checked:
        report.checked = [*report.checked, (RULE_CODE, RULE_NAME)]
    report.comparison = {"reference": reference, "checks": [c.to_dict() for c in checks]}
    return report
