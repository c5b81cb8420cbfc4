"""The learning-rate series itself: zero at the start or throughout."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lossdoctor.detectors import Evidence, register_detector
from lossdoctor.features import SeriesView

#: Learning rates at or below this are zero (a float32 schedule at its floor is not).
ZERO_LR = 1e-12


@dataclass(frozen=True)
class LRSchedule:
    """Zero learning rates at the start of the run or throughout."""

    points: int
    zero_at_start: int
    zero_share_at_start: float
    all_zero: bool
    peak: float
    first_nonzero_step: float
    evidence: Evidence


@register_detector("lr_schedule")
def lr_schedule(lr: SeriesView) -> LRSchedule:
    """Return the number of logged learning rates (points), how many of the first ones are
    zero (points, and share 0-1 of all), whether every one is zero, the peak rate and the
    step of the first non-zero rate (NaN when there is none)."""
    values = np.abs(lr.values)
    steps = lr.steps
    n = lr.n
    zero = values <= ZERO_LR
    leading = int(np.argmax(~zero)) if (~zero).any() else n
    first_nonzero = float(steps[leading]) if leading < n else float("nan")
    evidence = Evidence(
        series=lr.series.role,
        column=lr.series.column,
        start_step=float(steps[0]) if leading else None,
        end_step=float(steps[leading - 1]) if leading else None,
        numbers={"zero_at_start": leading, "peak_lr": float(values.max()) if n else 0.0},
    )
    return LRSchedule(
        points=n,
        zero_at_start=leading,
        zero_share_at_start=leading / n if n else 0.0,
        all_zero=bool(n) and leading == n,
        peak=float(values.max()) if n else float("nan"),
        first_nonzero_step=first_nonzero,
        evidence=evidence,
    )
