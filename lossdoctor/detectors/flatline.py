"""A loss that never leaves its starting level."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lossdoctor.detectors import (
    Evidence,
    deferred,
    known,
    register_detector,
    span_evidence,
)
from lossdoctor.features import LRProfile, SeriesView, rolling_median, spearman
from lossdoctor.robust import median

MIN_POINTS = 10
#: The early phase of a run: its first 10% (steps) ...
EARLY_SHARE = 0.1
#: ... after which the level it settled at is measured up to 20% of the run.
SETTLED_SHARE = 0.2
#: Points a rise must hold (rolling median) to count as an early burst.
BURST_POINTS = 3
#: The spread of a 3-point median of independent normal noise, in sigmas of the noise.
HELD_SPREAD = 0.67
#: Fewest points after the early phase on which the late trend is judged.
MIN_LATE_POINTS = 5


@dataclass(frozen=True)
class Flatline:
    """How far the loss ever got below where it started.

    ``late_fall_t``, ``early_burst_sigmas`` and the evidence are computed when a rule first
    reads them (see :func:`~lossdoctor.detectors.deferred`): a run whose loss fell far
    from its start fails the rule's first condition and never needs them."""

    improvement: float
    improvement_pct: float
    later_improvement_pct: float
    early_burst: float
    below_first_pct: float
    late_fall_pct: float
    end_change: float
    first_value: float
    last_value: float
    start_value: float
    end_value: float
    chance_loss: float
    chance_ratio: float
    lr_peak: float
    lr_rel_end: float
    #: The role of the series the evidence names.
    judged: str
    #: The judged series and whether it was measured (False when too short or not in
    #: log space: every deferred field NaN, the evidence empty).
    _series: SeriesView = field(repr=False, compare=False)
    _measured: bool = field(repr=False, compare=False)
    #: The rise of the early burst (nats), as :func:`_after_early_phase` gives it.
    _burst: float = field(repr=False, compare=False)

    @deferred
    def early_burst_sigmas(self) -> float:
        """Return how far the early burst stands out of the noise (see :func:`_burst_sigmas`)."""
        return _burst_sigmas(self._series, self._burst) if self._measured else float("nan")

    @deferred
    def late_fall_t(self) -> float:
        """Return how clearly the loss falls after its first 20% (see :func:`_late_fall_t`)."""
        return _late_fall_t(self._series) if self._measured else float("nan")

    @deferred
    def evidence(self) -> Evidence:
        """Return where the measurement points: the whole series, its levels (loss units)."""
        series = self._series
        if not self._measured:
            return Evidence(series=self.judged, column=series.series.column)
        numbers = {
            "first_value": float(series.values[0]),
            "last_value": float(series.values[-1]),
            "start_level": series.value_at(series.start_level),
            "best_level": series.value_at(series.best_level),
            "end_level": series.value_at(series.end_level),
            **known(chance_loss=self.chance_loss, lr_peak=self.lr_peak),
        }
        return span_evidence(series, numbers, role=self.judged)


@register_detector("flatline")
def flatline(
    series: SeriesView, lr: SeriesView | None = None, *, chance_loss: float | None = None
) -> Flatline:
    """Return the best improvement over the start (nats; ``improvement_pct`` in % of the
    start value), the improvement after the early phase (``later_improvement_pct``: from the
    level the run settled at, 10-20% into it, to its best level after that, in %), the
    early burst (the highest 3-point rolling median in the first 10% as a multiple of the
    first logged value),
    how far it stands out of the noise (``early_burst_sigmas``: its rise in noise sigmas
    less the highest 3-point median noise alone gives in the early phase; infinite on a
    noiseless series), how far the best
    level lies below the first logged value (``below_first_pct``, in %: the run's whole
    progress when a burst fills its first points and lifts the start level),
    whether the loss still falls after its first 20% (``late_fall_t``: the t statistic of
    the rank correlation of the points against the step, positive when falling; about
    standard normal for a flat loss, NaN on fewer than 5 points) and how far
    (``late_fall_pct``: from the level it settled at, 10-20% into the run, to its end
    level, in %),
    the change from start to end (nats, positive = higher at the end), the first and last
    logged values, the start and end levels (``start_value``: median of the first points,
    at most 10; ``end_value``: median of the last 10% of points; loss units), the end
    level as a share of the chance loss ln(N) when known, and the learning rate's peak
    and its end as a share of the peak (NaN without an lr series)."""
    role = series.series.role
    if series.n < MIN_POINTS or not series.log_space:
        na = float("nan")
        return Flatline(
            na, na, na, na, na, na, na, na, na, na, na, na, na, na, na, role, series, False, na
        )
    improvement = series.start_level - series.best_level
    end_change = series.end_level - series.start_level
    chance = float(chance_loss) if chance_loss else float("nan")
    later, late_fall, burst = _after_early_phase(series)
    lr_profile = LRProfile(lr)
    return Flatline(
        improvement=improvement,
        improvement_pct=100 * (1 - float(np.exp(-improvement))),
        later_improvement_pct=100 * (1 - float(np.exp(-later))),
        early_burst=float(np.exp(burst)) if burst == burst else float("nan"),
        below_first_pct=100 * (1 - float(np.exp(-(series.y[0] - series.best_level)))),
        late_fall_pct=100 * (1 - float(np.exp(-late_fall))),
        end_change=end_change,
        first_value=float(series.values[0]),
        last_value=float(series.values[-1]),
        start_value=series.value_at(series.start_level),
        end_value=series.value_at(series.end_level),
        chance_loss=chance,
        chance_ratio=series.value_at(series.end_level) / chance,
        lr_peak=lr_profile.peak,
        lr_rel_end=lr_profile.rel_end,
        judged=role,
        _series=series,
        _measured=True,
        _burst=burst,
    )


def _burst_sigmas(series: SeriesView, rise: float) -> float:
    """Return how far an early ``rise`` (nats) stands out of the noise: in units of the
    series' noise, less the highest 3-point median noise alone gives among the points of
    the early phase (about 0.67 sqrt(2 ln m) sigmas on m points; infinite, or NaN,
    without noise)."""
    if rise != rise:
        return float("nan")
    if series.noise <= 0:
        return float("inf") if rise > 0 else 0.0
    early = int(np.count_nonzero(series.steps < series.steps[0] + EARLY_SHARE * series.span))
    by_chance = HELD_SPREAD * float(np.sqrt(2 * np.log(max(early, 2))))
    return rise / series.noise - by_chance


def _late_fall_t(series: SeriesView) -> float:
    """Return how clearly the loss falls after the first 20% of the run: the t statistic
    of Spearman's rho of the points against the step (t = -rho * sqrt((m - 2) / (1 -
    rho^2)) on m points; positive when falling, infinite when every point is lower than
    the one before, NaN on fewer than 5 points or no spread)."""
    late = series.steps >= series.steps[0] + SETTLED_SHARE * series.span
    points = int(np.count_nonzero(late))
    if points < MIN_LATE_POINTS:
        return float("nan")
    rho = spearman(series.steps[late], series.y[late])
    if rho != rho:
        return float("nan")
    if abs(rho) >= 1:
        return float("inf") if rho < 0 else float("-inf")
    return float(-rho * np.sqrt((points - 2) / (1 - rho * rho)))


def _after_early_phase(series: SeriesView) -> tuple[float, float, float]:
    """Return the improvement (nats) from the level the run settled at after its early phase
    to its best coarse level later on, the fall from that level to the end level (nats;
    medians both, so noise does not lower it as it lowers the best level), and the rise of
    the highest 3-point rolling median of the early phase over the first logged value
    (nats); NaN when the run is too short to tell."""
    nan = float("nan")
    start = series.steps[0]
    early_end = start + EARLY_SHARE * series.span
    settled_end = start + SETTLED_SHARE * series.span
    settled = series.y[(series.steps >= early_end) & (series.steps < settled_end)]
    coarse_steps, levels = series.coarse
    later = levels[coarse_steps >= settled_end]
    if settled.size == 0 or later.size == 0:
        return nan, nan, nan
    # a burst: the loss rising above its first logged value in the early phase, held for a
    # few points (a rolling median of 3: one noisy high is not a burst)
    early = series.y[series.steps < early_end]
    held = rolling_median(early, BURST_POINTS) if early.size >= BURST_POINTS else early
    burst = float(held.max()) - float(series.y[0]) if early.size else nan
    level = median(settled)
    return level - float(later.min()), level - series.end_level, burst
