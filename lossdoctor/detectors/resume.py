"""Resumed runs: does the loss continue where it was when training picked up again?"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lossdoctor.detectors import Evidence, register_detector
from lossdoctor.features import SeriesView
from lossdoctor.robust import median

#: Series meta key where readers list the steps at which a run resumed (comma-separated).
RESUMED_AT = "resumed_at"
#: Finite points on each side of a resume compared.
SIDE_POINTS = 5


@dataclass(frozen=True)
class ResumeJump:
    """The loss at the resumes the reader found: the largest jump across one."""

    resumes: int
    jumps: int
    worst_ratio: float
    worst_sigmas: float
    worst_step: float
    before: float
    after: float
    steps_list: str
    evidence: Evidence


@register_detector("resume_jump")
def resume_jump(
    train: SeriesView, *, min_sigmas: float = 6.0, min_ratio: float = 1.2
) -> ResumeJump:
    """Return the number of resumes the reader found (steps where the step counter went
    back and training continued), how many show a jump of the loss (the median of the 5
    points after is at least ``min_ratio`` times and ``min_sigmas`` robust deviations above
    the median of the 5 points before), the worst ratio (after / before), its size in
    robust deviations of the noise, its step and the two levels."""
    nan = float("nan")
    marks = train.series.meta.get(RESUMED_AT, "")
    resumed = [float(x) for x in marks.split(",") if x.strip()]
    empty = Evidence(series=train.series.role, column=train.series.column)
    if not resumed or train.n < 2 * SIDE_POINTS or not train.log_space:
        return ResumeJump(len(resumed), 0, nan, nan, nan, nan, nan, "", empty)
    y, steps = train.y, train.steps
    noise = max(train.noise, 1e-9)
    best = (nan, nan, nan, nan, nan)
    jumped: list[float] = []
    for step in resumed:
        at = int(np.searchsorted(steps, step, side="left"))
        before, after = y[max(0, at - SIDE_POINTS) : at], y[at : at + SIDE_POINTS]
        if before.shape[0] < 2 or after.shape[0] < 2:
            continue
        rise = median(after) - median(before)
        sigmas = rise / noise
        if rise >= np.log(min_ratio) and sigmas >= min_sigmas:
            jumped.append(step)
        if not rise <= best[0]:
            best = (rise, sigmas, step, median(before), median(after))
    rise, sigmas, step, lo, hi = best
    shown = ", ".join(f"{s:g}" for s in jumped[:10])
    evidence = Evidence(
        series=train.series.role,
        column=train.series.column,
        start_step=None if step != step else step,
        numbers={"resumes": len(resumed), "jumps": len(jumped)},
    )
    return ResumeJump(
        resumes=len(resumed),
        jumps=len(jumped),
        worst_ratio=float(np.exp(rise)) if rise == rise else nan,
        worst_sigmas=sigmas,
        worst_step=step,
        before=float(np.exp(lo)) if lo == lo else nan,
        after=float(np.exp(hi)) if hi == hi else nan,
        steps_list=shown,
        evidence=evidence,
    )
