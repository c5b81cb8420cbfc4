"""An abrupt upward jump of the loss level that persists."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lossdoctor.detectors import Evidence, register_detector
from lossdoctor.features import SeriesView, rolling_median
from lossdoctor.robust import band_passes, median

MIN_POINTS = 30
#: Window before and after a candidate jump, as a share of the points.
WINDOW_SHARE = 0.02
WINDOW_MIN = 5
#: Windows after the jump over which the new level must hold.
HOLD_WINDOWS = 5


@dataclass(frozen=True)
class LevelShift:
    """The largest abrupt rise of the loss level and whether it lasted."""

    jump: float
    jump_ratio: float
    jump_to_noise: float
    kept_share: float
    further_rise: float
    after_share: float
    passes: float
    step: float
    evidence: Evidence


@register_detector("level_shift")
def level_shift(series: SeriesView) -> LevelShift:
    """Return the largest jump between the median of the points just before and just after
    a step (nats; ``jump_ratio`` = after/before), the jump in robust deviations, how much of
    it the next five windows kept (0-1), how much further the loss rose after it (as a
    share of the jump: a level shift holds, a divergence keeps climbing), the share of
    the run after the jump (0-1) and how often the local level passed between a quarter
    and three quarters of the jump above the level before it (``passes``: a jump that
    holds is 1 or 2, a square or random swing between the two levels makes many)."""
    nan = float("nan")
    empty = Evidence(series=series.series.role, column=series.series.column)
    if series.n < MIN_POINTS or not series.log_space or series.span <= 0:
        return LevelShift(nan, nan, nan, nan, nan, nan, nan, nan, empty)
    window = max(WINDOW_MIN, int(series.n * WINDOW_SHARE))
    y = series.y
    smooth = rolling_median(y, window)  # centred
    half = window // 2
    before = (
        np.concatenate((np.full(half + 1, np.nan), smooth[: -half - 1]))
        if series.n > half + 1
        else smooth
    )
    after = np.concatenate((smooth[half:], np.full(half, np.nan)))
    jumps = after - before
    jumps[:window] = np.nan
    jumps[-window:] = np.nan
    # the jumps between the ends are finite (medians of finite points): the largest is
    # found among them
    inner = jumps[window:-window]
    if inner.size == 0:
        return LevelShift(nan, nan, nan, nan, nan, nan, nan, nan, empty)
    at = window + int(np.argmax(inner))
    jump = float(jumps[at])
    held = y[at : at + HOLD_WINDOWS * window]
    later = y[at + 3 * window : at + (3 + HOLD_WINDOWS) * window]
    kept = (median(held) - float(before[at])) / jump if jump > 0 else nan
    further = (median(later) - float(after[at])) / jump if jump > 0 and later.size else nan
    step = float(series.steps[at])
    low = float(before[at])
    passes = band_passes(smooth, low + jump / 4, low + 3 * jump / 4) if jump > 0 else 0
    evidence = Evidence(
        series=series.series.role,
        column=series.series.column,
        start_step=step,
        line=series.series.line_of(int(series.index[at])),
        numbers={
            "before_value": series.value_at(float(before[at])),
            "after_value": series.value_at(float(after[at])),
        },
    )
    return LevelShift(
        jump=jump,
        jump_ratio=float(np.exp(jump)),
        jump_to_noise=jump / max(series.noise, 1e-3),
        kept_share=kept,
        further_rise=further,
        after_share=float((series.steps[-1] - step) / series.span),
        passes=float(passes),
        step=step,
        evidence=evidence,
    )
