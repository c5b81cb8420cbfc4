"""A loss that falls steadily without large disturbances."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lossdoctor.detectors import Evidence, register_detector, span_evidence
from lossdoctor.features import SeriesView, spearman

MIN_POINTS = 5
MIN_PROGRESS = 0.01


@dataclass(frozen=True)
class Decline:
    """How much the loss fell, how steadily, and how noisy it was doing so."""

    drop: float
    drop_pct: float
    first_value: float
    last_value: float
    steadiness: float
    swing_to_progress: float
    linear_swing_to_progress: float
    giveback: float
    late_wave: float
    evidence: Evidence


@register_detector("decline")
def decline(series: SeriesView) -> Decline:
    """Return the fall from the smoothed start level to the smoothed end level (medians
    of the first and last 10% of points; nats, ``drop_pct`` in %), the first and last
    logged values, its steadiness
    (minus Spearman's rho of the coarse trend against steps: 1 = always falling),
    the swing-to-progress ratios (log space and values; the progress from the higher of
    the start level, the first points, and the early level, the first 10%, down to the best
    level), the share of the progress
    given back by the end (0-1) and the persistent swing of the second half around its
    local level (nats, 0.0 when the half is too short to tell; see
    :class:`~lossdoctor.features.Wave`)."""
    if series.n < MIN_POINTS or not series.log_space:
        empty = Evidence(series=series.series.role, column=series.series.column)
        nan = float("nan")
        return Decline(nan, nan, nan, nan, nan, nan, nan, nan, nan, empty)
    steps, levels = series.coarse
    drop = series.early_level - series.end_level
    steadiness = -spearman(steps, levels)
    # the progress the swing is set against runs from the higher of the run's start (its
    # first points) and its early level (its first 10%): a run that fell most in its first
    # tenth made that progress too, and the first points of a run of a few points already
    # lie on its way down
    top = max(series.start_level, series.early_level)
    progress = max(top - series.best_level, MIN_PROGRESS)
    linear_progress = series.value_at(top) - series.value_at(series.best_level)
    evidence = span_evidence(
        series,
        {
            "first_value": float(series.values[0]),
            "last_value": float(series.values[-1]),
            "start_level": series.value_at(series.early_level),
            "end_level": series.value_at(series.end_level),
            "drop_pct": round(100 * (1 - float(np.exp(-drop))), 1),
        },
    )
    return Decline(
        drop=drop,
        drop_pct=100 * (1 - float(np.exp(-drop))),
        first_value=float(series.values[0]),
        last_value=float(series.values[-1]),
        steadiness=steadiness,
        swing_to_progress=series.swing / progress,
        linear_swing_to_progress=(
            series.linear_swing / linear_progress if linear_progress > 0 else float("inf")
        ),
        giveback=series.giveback,
        late_wave=_known_or_zero(series.wave.persistent),
        evidence=evidence,
    )


def _known_or_zero(value: float) -> float:
    """Return ``value``, 0.0 for NaN (as ``np.nan_to_num`` does to a persistent swing that
    cannot be told; the swing is never infinite)."""
    return 0.0 if value != value else float(value)
