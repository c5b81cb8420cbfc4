"""A loss that never leaves its starting level."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lossdoctor.detectors import Evidence, register_detector
from lossdoctor.features import SeriesView

MIN_POINTS = 10


@dataclass(frozen=True)
class Flatline:
    """How far the loss ever got below where it started."""

    improvement: float
    improvement_pct: float
    end_change: float
    start_value: float
    end_value: float
    evidence: Evidence


@register_detector("flatline")
def flatline(series: SeriesView) -> Flatline:
    """Return the best improvement over the start (nats; ``improvement_pct`` in % of the
    start value) and the change from start to end (nats, positive = higher at the end)."""
    if series.n < MIN_POINTS or not series.log_space:
        empty = Evidence(series=series.series.role, column=series.series.column)
        nan = float("nan")
        return Flatline(nan, nan, nan, nan, nan, empty)
    improvement = series.start_level - series.best_level
    end_change = series.end_level - series.start_level
    evidence = Evidence(
        series=series.series.role,
        column=series.series.column,
        start_step=float(series.steps[0]),
        end_step=float(series.steps[-1]),
        numbers={
            "start_value": series.value_at(series.start_level),
            "best_value": series.value_at(series.best_level),
            "end_value": series.value_at(series.end_level),
        },
    )
    return Flatline(
        improvement=improvement,
        improvement_pct=100 * (1 - float(np.exp(-improvement))),
        end_change=end_change,
        start_value=series.value_at(series.start_level),
        end_value=series.value_at(series.end_level),
        evidence=evidence,
    )
