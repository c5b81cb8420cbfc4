"""A loss that rises steadily, or explodes, after having been lower."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lossdoctor.detectors import Evidence, deferred, register_detector
from lossdoctor.detectors.beside import precision
from lossdoctor.features import LRProfile, SeriesView, spearman
from lossdoctor.model import FloatArray
from lossdoctor.robust import band_passes

MIN_POINTS = 10
#: An explosion is judged on the lowest of the last this many points as well (a run that
#: blows up within its last few points, before the end level of its last 10% moves).
TAIL_POINTS = 5
#: Smallest swing assumed when comparing the rise with the noise (nats).
SWING_FLOOR = 0.01
#: Standard error of the median of k normal draws, in units of sigma / sqrt(k).
MEDIAN_SE = 1.2533


@dataclass(frozen=True)
class Divergence:
    """The rise from the best level to the end, how steady it is, how long it lasts.

    The rise's steadiness, hold, passes and size against the noise, the learning rate's
    fields and the evidence are computed when a rule first reads them (see
    :func:`~lossdoctor.detectors.deferred`): a run that did not rise fails every level
    on ``rise_ratio``, ``peak_ratio`` or ``rise`` first."""

    rise: float
    rise_ratio: float
    rise_share: float
    peak_ratio: float
    best_step: float
    #: fp16 and overflow facts of the run (see ``beside.precision``).
    fp16: bool
    overflow_skips: int
    grad_non_finite: int
    #: The role of the series the evidence names.
    judged: str
    #: What the deferred fields read: the series, the learning rate, the coarse trend's
    #: (steps, levels), the position of its best level and the evidence numbers of the
    #: rise ratio; ``_coarse`` is None when the series was too short to measure (every
    #: deferred field NaN, the evidence empty).
    _series: SeriesView = field(repr=False, compare=False)
    _lr: SeriesView | None = field(repr=False, compare=False)
    _coarse: tuple[FloatArray, FloatArray] | None = field(repr=False, compare=False)
    _best: int = field(repr=False, compare=False)
    _ratio_numbers: dict[str, float] = field(repr=False, compare=False)

    @deferred
    def steadiness(self) -> float:
        """Return Spearman's rho of the coarse trend after the best level (-1..1)."""
        if self._coarse is None:
            return float("nan")
        steps, levels = self._coarse
        return spearman(steps[self._best :], levels[self._best :])

    @deferred
    def rise_to_swing(self) -> float:
        """Return the rise as a multiple of the noise around the trend."""
        if self._coarse is None:
            return float("nan")
        return self.rise / max(self._series.noise, SWING_FLOOR)

    @deferred
    def rise_z(self) -> float:
        """Return the rise in standard errors of the two levels (see :func:`rise_z`)."""
        return rise_z(self._series, self.rise) if self._coarse is not None else float("nan")

    @deferred
    def held_share(self) -> float:
        """Return the share of the coarse trend after the best that stays above half the
        rise (0-1)."""
        if self._coarse is None:
            return float("nan")
        levels, best, rise = self._coarse[1], self._best, self.rise
        midway = float(levels[best]) + rise / 2
        if rise > 0 and best < len(levels) - 1:
            return float(np.mean(levels[best:][1:] > midway))
        return 0.0

    @deferred
    def passes(self) -> float:
        """Return how often the coarse trend or the local level went between a quarter and
        three quarters of the rise above the best, whichever more often."""
        if self._coarse is None:
            return float("nan")
        levels, rise = self._coarse[1], self.rise
        best_level = float(levels[self._best])
        quarter = rise / 4
        passes = 0
        if rise > 0:
            # on the coarse trend, and on the local level, which follows a swing the coarse
            # trend's smoothing over a tenth of the run hides (a short run, random swings)
            low, high = best_level + quarter, best_level + 3 * quarter
            trend = self._series.trend
            passes = max(band_passes(levels, low, high), band_passes(trend, low, high))
        return float(passes)

    @deferred
    def _lr_profile(self) -> LRProfile:
        """Return the learning rate's profile at the best level (all NaN without one or
        when not measured)."""
        if self._coarse is None:
            return LRProfile(None)
        return LRProfile(self._lr, self.best_step)

    @deferred
    def lr_rel_at_best(self) -> float:
        """Return the learning rate at the best level as a share of its peak."""
        return self._lr_profile.rel_at

    @deferred
    def lr_rel_end(self) -> float:
        """Return the learning rate at the end as a share of its peak."""
        return self._lr_profile.rel_end

    @deferred
    def lr_rel_max_after_best(self) -> float:
        """Return the highest learning rate after the best level as a share of its peak."""
        return self._lr_profile.rel_max_after

    @deferred
    def lr_rise_after_best(self) -> float:
        """Return how far the learning rate rose after the best level (share of its peak)."""
        return self._lr_profile.rel_max_after - self._lr_profile.rel_at

    @deferred
    def evidence(self) -> Evidence:
        """Return where the rise is: from the best level to the end, with the levels (loss
        units), the last value and the line of the last point."""
        series = self._series
        if self._coarse is None:
            return Evidence(series=self.judged, column=series.series.column)
        levels = self._coarse[1]
        return Evidence(
            series=self.judged,
            column=series.series.column,
            start_step=self.best_step,
            end_step=float(series.steps[-1]),
            line=series.series.line_of(int(series.index[-1])),
            numbers={
                "best_level": series.value_at(float(levels[self._best])),
                "end_level": series.value_at(series.end_level),
                "last_value": float(series.values[-1]),
                **self._ratio_numbers,
            },
        )


@register_detector("divergence")
def divergence(
    series: SeriesView, lr: SeriesView | None = None, grad_norm: SeriesView | None = None
) -> Divergence:
    """Return the rise of the end level over the best level (nats; ``rise_ratio`` = end/best
    as a multiple), the share of the run (0-1, steps) since the best level, and the
    steadiness of the rise (Spearman's rho of the coarse trend after the best, -1..1),
    the rise as a multiple of the typical swing around the trend, the rise in standard
    errors of the two levels compared (``rise_z``: see :func:`rise_z`), the highest local level
    after the best as a multiple of the best (``peak_ratio``: an explosion that later
    settles still shows), and the share of the coarse trend after the best that stays
    above half the final rise (``held_share``, 0-1: a rise that never comes back holds),
    how often the coarse trend or the local level (the rolling median) went between a
    quarter and three quarters of the rise above the best, whichever more often
    (``passes``: a fall then a rise is 2, a run that keeps swinging between its best and
    its end level makes more); with the run's fp16 facts (``fp16``,
    ``overflow_skips`` lines, ``grad_non_finite`` gradient norms) as evidence for an
    overflow."""
    signs = precision(series, grad_norm)
    facts = (signs.fp16, signs.overflow_skips, signs.grad_non_finite)
    role = series.series.role
    if series.n < MIN_POINTS or series.span <= 0:
        nan = float("nan")
        return Divergence(nan, nan, nan, nan, nan, *facts, role, series, lr, None, 0, {})
    steps, levels = series.coarse
    best = int(np.argmin(levels))
    rise = series.end_level - float(levels[best])
    best_step = float(steps[best])
    best_level = float(levels[best])
    later = series.trend[series.steps >= best_step]
    peak_rise = float(later.max()) - best_level if later.size else float("nan")
    rise_ratio = float(np.exp(rise)) if series.log_space else float("nan")
    ratio_numbers: dict[str, float] = {}
    if series.log_space and series.n >= MIN_POINTS:
        tail = float(np.min(series.y[-TAIL_POINTS:])) - float(levels[best])
        if tail > rise:
            # the last points all stand above the smoothed end level: the ratio is theirs
            ratio_numbers["tail_lowest"] = series.value_at(float(np.min(series.y[-TAIL_POINTS:])))
            ratio_numbers["tail_points"] = TAIL_POINTS
        rise_ratio = max(rise_ratio, float(np.exp(tail)))
        ratio_numbers["rise_ratio"] = round(rise_ratio, 4)
    return Divergence(
        rise=rise,
        rise_ratio=rise_ratio,
        rise_share=float((series.steps[-1] - best_step) / series.span),
        peak_ratio=float(np.exp(peak_rise)) if series.log_space else float("nan"),
        best_step=best_step,
        fp16=signs.fp16,
        overflow_skips=signs.overflow_skips,
        grad_non_finite=signs.grad_non_finite,
        judged=role,
        _series=series,
        _lr=lr,
        _coarse=(steps, levels),
        _best=best,
        _ratio_numbers=ratio_numbers,
    )


def rise_z(series: SeriesView, rise: float) -> float:
    """Return how many standard errors ``rise`` (end level minus best coarse level, nats)
    stands above what noise alone gives: the end level is the median of the last
    points, the best level the lowest of the coarse trend's levels, each the median of
    :attr:`~lossdoctor.features.SeriesView.coarse_level_points` points; picking the lowest
    of ``m`` independent levels lies about ``sqrt(2 ln m)`` of their standard errors below
    their middle, and that bias is taken off the rise first.  Infinite on a series with
    no noise.  On a long run the levels are precise and this is large for any visible
    rise; on a short noisy log (a few dozen points) a rise of two points' noise is not a
    trend."""
    se_point = MEDIAN_SE * series.noise
    if se_point <= 0 or series.n == 0:
        return float("inf")
    per_level = max(series.coarse_level_points, 1.0)
    se_end = se_point / np.sqrt(series.edge_points())
    se_best = se_point / np.sqrt(per_level)
    levels = max(series.n / per_level, 1.0)
    bias = se_best * np.sqrt(2 * np.log(levels))
    return float((rise - bias) / np.hypot(se_end, se_best))
