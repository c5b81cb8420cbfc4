"""A loss that falls, then jumps back to where it started and stays: a re-initialised model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lossdoctor.detectors import Evidence, register_detector
from lossdoctor.features import SeriesView
from lossdoctor.robust import median

#: Points whose median is the start level of the run (its first logged losses).
START_POINTS = 3


@dataclass(frozen=True)
class LossReset:
    """The largest jump of the loss from below its start level back up to it."""

    first_value: float
    low_before: float
    level_after: float
    progress_lost: float
    above_start: float
    jump_points: int
    abrupt: bool
    stays_share: float
    at_chance: bool
    jump_step: float
    evidence: Evidence


def _nan_reset(view: SeriesView) -> LossReset:
    nan = float("nan")
    empty = Evidence(series=view.series.role, column=view.series.column)
    return LossReset(nan, nan, nan, nan, nan, 0, False, nan, False, nan, empty)


@register_detector("loss_reset")
def loss_reset(
    train: SeriesView,
    *,
    min_points: int = 20,
    jump_share: float = 0.02,
    chance_loss: float | None = None,
) -> LossReset:
    """Return the strongest reset of the loss: its first logged value, the lowest logged
    value before the reset, the level after it (median of the rest of the run), the share
    of the progress lost (0 = none, 1 = back at the start), the level after as a multiple
    of the first logged value, the points the jump took (from the last low to the first point
    back near the start), whether that was abrupt (at most 3 points or ``jump_share`` of
    the run), the share (0-1) of the rest of the run that stayed near the start level,
    and whether the level after is at least ln(N) (``at_chance``, with ``--vocab-size``)."""
    if train.n < min_points or not train.log_space:
        return _nan_reset(train)
    y, trend = train.y, train.trend
    start = median(y[:START_POINTS])
    low_so_far = np.minimum.accumulate(trend)
    progress = start - low_so_far
    # a point is "back" when it regained 80% of the progress made before it
    back = (y - low_so_far) >= 0.8 * progress
    back &= progress > np.log(2.0) * 0.5
    if not back.any():
        return _nan_reset(train)
    j = int(np.argmax(back))
    after = y[j:]
    level_after = median(after)
    low = float(low_so_far[j])
    lost = (level_after - low) / (start - low)
    # how many points the loss took to climb from its low to the start level
    lows = np.flatnonzero(trend[:j] <= low + 0.2 * (start - low))
    last_low = int(lows[-1]) if lows.shape[0] else 0
    jump_points = j - last_low
    stays = float(np.count_nonzero(after >= low + 0.6 * (start - low)) / after.shape[0])
    abrupt = jump_points <= max(3, round(jump_share * train.n))
    chance = bool(chance_loss) and float(np.exp(level_after)) >= 0.95 * float(chance_loss or 0)
    first_logged = float(train.values[0])
    lowest_logged = float(train.values[:j].min()) if j else first_logged
    evidence = Evidence(
        series=train.series.role,
        column=train.series.column,
        start_step=float(train.steps[j]),
        line=train.series.line_of(int(train.index[j])),
        numbers={
            "first_value": first_logged,
            "low_before": lowest_logged,
            "level_after": float(np.exp(level_after)),
        },
    )
    return LossReset(
        first_value=first_logged,
        low_before=lowest_logged,
        level_after=float(np.exp(level_after)),
        progress_lost=float(lost),
        above_start=float(np.exp(level_after)) / first_logged,
        jump_points=jump_points,
        abrupt=abrupt,
        stays_share=stays,
        at_chance=bool(chance),
        jump_step=float(train.steps[j]),
        evidence=evidence,
    )
