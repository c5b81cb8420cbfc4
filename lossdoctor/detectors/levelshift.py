"""An abrupt upward jump of the loss level that persists."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lossdoctor.detectors import Evidence, deferred, register_detector
from lossdoctor.features import SeriesView, rolling_median
from lossdoctor.model import FloatArray
from lossdoctor.robust import band_passes, median

MIN_POINTS = 30
#: Window before and after a candidate jump, as a share of the points.
WINDOW_SHARE = 0.02
WINDOW_MIN = 5
#: Windows after the jump over which the new level must hold.
HOLD_WINDOWS = 5


@dataclass(frozen=True)
class LevelShift:
    """The largest abrupt rise of the loss level and whether it lasted.

    How much of the jump held, how much further the loss rose, the passes and the
    evidence are computed when a rule first reads them (see
    :func:`~lossdoctor.detectors.deferred`): a run without a jump fails the rule's first
    condition on ``jump_ratio``."""

    jump: float
    jump_ratio: float
    jump_to_noise: float
    after_share: float
    step: float
    #: The role of the series the evidence names.
    judged: str
    #: What the deferred fields read: the series, its smoothed level and that level just
    #: before and just after each point, the window (points) and the jump's position; None
    #: when no jump was measured (every deferred field NaN, the evidence empty).
    _series: SeriesView = field(repr=False, compare=False)
    _levels: tuple[FloatArray, FloatArray, FloatArray, int, int] | None = field(
        repr=False, compare=False
    )

    @deferred
    def kept_share(self) -> float:
        """Return how much of the jump the next five windows kept (0-1)."""
        if self._levels is None:
            return float("nan")
        _, before, _, window, at = self._levels
        held = self._series.y[at : at + HOLD_WINDOWS * window]
        return (median(held) - float(before[at])) / self.jump if self.jump > 0 else float("nan")

    @deferred
    def further_rise(self) -> float:
        """Return how much further the loss rose after the jump, as a share of it."""
        if self._levels is None:
            return float("nan")
        _, _, after, window, at = self._levels
        later = self._series.y[at + 3 * window : at + (3 + HOLD_WINDOWS) * window]
        if self.jump > 0 and later.size:
            return (median(later) - float(after[at])) / self.jump
        return float("nan")

    @deferred
    def passes(self) -> float:
        """Return how often the local level passed between a quarter and three quarters of
        the jump above the level before it."""
        if self._levels is None:
            return float("nan")
        smooth, before, _, _, at = self._levels
        low, jump = float(before[at]), self.jump
        return float(band_passes(smooth, low + jump / 4, low + 3 * jump / 4) if jump > 0 else 0)

    @deferred
    def evidence(self) -> Evidence:
        """Return where the jump is: its step, its line, the levels before and after it."""
        series = self._series
        if self._levels is None:
            return Evidence(series=self.judged, column=series.series.column)
        _, before, after, _, at = self._levels
        return Evidence(
            series=self.judged,
            column=series.series.column,
            start_step=self.step,
            line=series.series.line_of(int(series.index[at])),
            numbers={
                "before_value": series.value_at(float(before[at])),
                "after_value": series.value_at(float(after[at])),
            },
        )


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
    role = series.series.role
    if series.n < MIN_POINTS or not series.log_space or series.span <= 0:
        return LevelShift(nan, nan, nan, nan, nan, role, series, None)
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
        return LevelShift(nan, nan, nan, nan, nan, role, series, None)
    at = window + int(np.argmax(inner))
    jump = float(jumps[at])
    step = float(series.steps[at])
    return LevelShift(
        jump=jump,
        jump_ratio=float(np.exp(jump)),
        jump_to_noise=jump / max(series.noise, 1e-3),
        after_share=float((series.steps[-1] - step) / series.span),
        step=step,
        judged=role,
        _series=series,
        _levels=(smooth, before, after, window, at),
    )
