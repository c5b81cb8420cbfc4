"""Patterns with the period of one epoch: unshuffled data, and the expected staircase."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lossdoctor.detectors import Evidence, register_detector
from lossdoctor.features import SeriesView, robust_sigma, rolling_median

#: Series meta key readers fill with the steps one epoch takes.
STEPS_PER_EPOCH = "steps_per_epoch"
#: Fewest logged points per epoch for a pattern within the epoch to be seen.
MIN_POINTS_PER_EPOCH = 6
#: Fewest whole epochs compared.
MIN_EPOCHS = 3
#: Share of an epoch at each side of a boundary whose medians are compared.
BOUNDARY_SHARE = 0.15
#: Smallest drop across a boundary, beyond the epoch's own slope, that counts (log units:
#: about 5%).
MIN_DROP = 0.05


@dataclass(frozen=True)
class EpochPattern:
    """How much of the loss's wobble repeats every epoch, and the drops at epoch starts."""

    epochs: float
    steps_per_epoch: float
    points_per_epoch: float
    epoch_autocorr: float
    half_epoch_autocorr: float
    swing: float
    boundaries: int
    boundary_drops: int
    median_drop: float
    evidence: Evidence


def _autocorr(values: np.ndarray, lag: int) -> float:
    if lag <= 0 or values.shape[0] <= lag + 2:
        return float("nan")
    a, b = values[:-lag], values[lag:]
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


@register_detector("epoch_pattern")
def epoch_pattern(train: SeriesView) -> EpochPattern:
    """Return, for a run whose reader knows the steps per epoch: the epochs covered, the
    logged points per epoch, the autocorrelation of the loss's detrended wobble (log space;
    trend = rolling median over one epoch) at a lag of one epoch and of half an epoch, the
    wobble's robust size (log units: 0.1 is about +-10%), the number of epoch boundaries
    and how many show a drop of the loss at the new epoch (median of the first 15% of the
    epoch below the last 15% of the previous one by more than the previous epoch's own
    slope predicts, by at least 5% and three noise deviations), with the median drop
    (ratio after / before, below 1)."""
    nan = float("nan")
    raw = train.series.meta.get(STEPS_PER_EPOCH, "")
    per_epoch = float(raw) if raw else nan
    empty = Evidence(series=train.series.role, column=train.series.column)
    if not raw or train.n < 2 or not train.log_space or not per_epoch > 0:
        return EpochPattern(nan, per_epoch, nan, nan, nan, nan, 0, 0, nan, empty)
    steps, y = train.steps, train.y
    step_size = float(np.median(np.diff(steps))) if train.n > 1 else nan
    points = per_epoch / step_size if step_size > 0 else nan
    epochs = train.span / per_epoch
    if not (points >= MIN_POINTS_PER_EPOCH and epochs >= MIN_EPOCHS):
        return EpochPattern(epochs, per_epoch, points, nan, nan, nan, 0, 0, nan, empty)
    window = int(points) | 1
    wobble = y - rolling_median(y, window)
    lag = round(points)
    ac_epoch = _autocorr(wobble, lag)
    ac_half = _autocorr(wobble, max(1, lag // 2))
    swing = robust_sigma(wobble)
    # epoch starts: drops of the level across each boundary
    first = steps[0]
    index = np.floor((steps - first) / per_epoch + 1e-9).astype(np.int64)
    edge = max(1, round(points * BOUNDARY_SHARE))
    noise = max(train.noise, 1e-9)
    drops: list[float] = []
    boundaries = 0
    for k in range(1, int(index[-1]) + 1):
        previous = y[index == k - 1]
        before, after = previous[-edge:], y[index == k][:edge]
        if previous.shape[0] < 2 * edge or after.shape[0] == 0:
            continue
        boundaries += 1
        gap = float(np.median(after) - np.median(before))
        # what the previous epoch's own slope predicts over the same distance: a steady
        # decline crosses a boundary as it crosses any other point
        within = float(np.median(before) - np.median(previous[:edge]))
        expected = within * edge / max(1, previous.shape[0] - edge)
        excess = gap - min(expected, 0.0)
        if excess < -max(3 * noise / np.sqrt(edge), MIN_DROP):
            drops.append(gap)
    median_drop = float(np.exp(np.median(drops))) if drops else nan
    evidence = Evidence(
        series=train.series.role,
        column=train.series.column,
        numbers={
            "steps_per_epoch": per_epoch,
            "epoch_autocorr": ac_epoch,
            "boundary_drops": len(drops),
        },
    )
    return EpochPattern(
        epochs=epochs,
        steps_per_epoch=per_epoch,
        points_per_epoch=points,
        epoch_autocorr=ac_epoch,
        half_epoch_autocorr=ac_half,
        swing=swing,
        boundaries=boundaries,
        boundary_drops=len(drops),
        median_drop=median_drop,
        evidence=evidence,
    )
