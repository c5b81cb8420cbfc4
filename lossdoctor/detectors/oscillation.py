"""Large sustained swings around the trend, compared with the progress made."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lossdoctor.detectors import Evidence, register_detector
from lossdoctor.features import LRProfile, SeriesView

MIN_POINTS = 10
#: Progress below this (nats) counts as none when comparing swing and progress.
MIN_PROGRESS = 0.01


@dataclass(frozen=True)
class Oscillation:
    """Typical swing of the loss around its trend and how it compares with the progress."""

    swing: float
    swing_pct: float
    progress: float
    swing_to_progress: float
    linear_swing_to_progress: float
    lr_peak: float
    lr_rel_end: float
    evidence: Evidence


@register_detector("oscillation")
def oscillation(series: SeriesView, lr: SeriesView | None = None) -> Oscillation:
    """Return the robust swing around the trend (nats in log space; ``swing_pct`` in %),
    the progress (start level minus best level, nats) and their ratio, in log space and
    on the loss values themselves."""
    if series.n < MIN_POINTS or not series.log_space:
        empty = Evidence(series=series.series.role, column=series.series.column)
        nan = float("nan")
        return Oscillation(nan, nan, nan, nan, nan, nan, nan, empty)
    swing = series.swing
    progress = max(series.early_level - series.best_level, 0.0)
    ratio = swing / max(progress, MIN_PROGRESS)
    evidence = Evidence(
        series=series.series.role,
        column=series.series.column,
        start_step=float(series.steps[0]),
        end_step=float(series.steps[-1]),
        numbers={
            "swing_pct": round(100 * (float(np.exp(swing)) - 1), 1),
            "start_level": series.value_at(series.early_level),
            "best_level": series.value_at(series.best_level),
        },
    )
    return Oscillation(
        swing=swing,
        swing_pct=100 * (float(np.exp(swing)) - 1),
        progress=progress,
        swing_to_progress=ratio,
        linear_swing_to_progress=series.linear_swing_to_progress,
        lr_peak=LRProfile(lr).peak,
        lr_rel_end=LRProfile(lr).rel_end,
        evidence=evidence,
    )
