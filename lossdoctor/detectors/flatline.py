"""A loss that never leaves its starting level."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lossdoctor.detectors import Evidence, register_detector
from lossdoctor.features import LRProfile, SeriesView

MIN_POINTS = 10


@dataclass(frozen=True)
class Flatline:
    """How far the loss ever got below where it started."""

    improvement: float
    improvement_pct: float
    end_change: float
    first_value: float
    last_value: float
    start_value: float
    end_value: float
    chance_loss: float
    chance_ratio: float
    lr_peak: float
    lr_rel_end: float
    evidence: Evidence


@register_detector("flatline")
def flatline(
    series: SeriesView, lr: SeriesView | None = None, *, chance_loss: float | None = None
) -> Flatline:
    """Return the best improvement over the start (nats; ``improvement_pct`` in % of the
    start value), the change from start to end (nats, positive = higher at the end), the
    first and last logged values, the smoothed start and end levels (``start_value``,
    ``end_value``: medians of the first and last 10% of points, loss units), the end
    level as a share of the chance loss ln(N) when known, and the learning rate's peak
    and its end as a share of the peak (NaN without an lr series)."""
    if series.n < MIN_POINTS or not series.log_space:
        empty = Evidence(series=series.series.role, column=series.series.column)
        nan = float("nan")
        return Flatline(nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, empty)
    improvement = series.start_level - series.best_level
    end_change = series.end_level - series.start_level
    chance = float(chance_loss) if chance_loss else float("nan")
    lr_profile = LRProfile(lr)
    evidence = Evidence(
        series=series.series.role,
        column=series.series.column,
        start_step=float(series.steps[0]),
        end_step=float(series.steps[-1]),
        numbers={
            "first_value": float(series.values[0]),
            "last_value": float(series.values[-1]),
            "start_level": series.value_at(series.start_level),
            "best_level": series.value_at(series.best_level),
            "end_level": series.value_at(series.end_level),
            "chance_loss": chance,
            "lr_peak": lr_profile.peak,
        },
    )
    return Flatline(
        improvement=improvement,
        improvement_pct=100 * (1 - float(np.exp(-improvement))),
        end_change=end_change,
        first_value=float(series.values[0]),
        last_value=float(series.values[-1]),
        start_value=series.value_at(series.start_level),
        end_value=series.value_at(series.end_level),
        chance_loss=chance,
        chance_ratio=series.value_at(series.end_level) / chance,
        lr_peak=lr_profile.peak,
        lr_rel_end=lr_profile.rel_end,
        evidence=evidence,
    )
