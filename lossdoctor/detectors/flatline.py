"""A loss that never leaves its starting level."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lossdoctor.detectors import Evidence, known, register_detector
from lossdoctor.features import LRProfile, SeriesView, rolling_median
from lossdoctor.robust import median

MIN_POINTS = 10
#: The early phase of a run: its first 10% (steps) ...
EARLY_SHARE = 0.1
#: ... after which the level it settled at is measured up to 20% of the run.
SETTLED_SHARE = 0.2
#: Points a rise must hold (rolling median) to count as an early burst.
BURST_POINTS = 3


@dataclass(frozen=True)
class Flatline:
    """How far the loss ever got below where it started."""

    improvement: float
    improvement_pct: float
    later_improvement_pct: float
    early_burst: float
    early_burst_sigmas: float
    below_first_pct: float
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
    start value), the improvement after the early phase (``later_improvement_pct``: from the
    level the run settled at, 10-20% into it, to its best level after that, in %), the
    early burst (the highest 3-point rolling median in the first 10% as a multiple of the
    first logged value),
    its rise in units of the series' noise (``early_burst_sigmas``: how far the burst stands
    out of what per-point noise gives; infinite on a noiseless series), how far the best
    level lies below the first logged value (``below_first_pct``, in %: the run's whole
    progress when a burst fills its first points and lifts the start level),
    the change from start to end (nats, positive = higher at the end), the first and last
    logged values, the start and end levels (``start_value``: median of the first points,
    at most 10; ``end_value``: median of the last 10% of points; loss units), the end
    level as a share of the chance loss ln(N) when known, and the learning rate's peak
    and its end as a share of the peak (NaN without an lr series)."""
    if series.n < MIN_POINTS or not series.log_space:
        empty = Evidence(series=series.series.role, column=series.series.column)
        nan = float("nan")
        return Flatline(
            nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, empty
        )
    improvement = series.start_level - series.best_level
    end_change = series.end_level - series.start_level
    chance = float(chance_loss) if chance_loss else float("nan")
    later, burst = _after_early_phase(series)
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
            **known(chance_loss=chance, lr_peak=lr_profile.peak),
        },
    )
    return Flatline(
        improvement=improvement,
        improvement_pct=100 * (1 - float(np.exp(-improvement))),
        later_improvement_pct=100 * (1 - float(np.exp(-later))),
        early_burst=float(np.exp(burst)) if burst == burst else float("nan"),
        early_burst_sigmas=_in_sigmas(burst, series.noise),
        below_first_pct=100 * (1 - float(np.exp(-(series.y[0] - series.best_level)))),
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


def _in_sigmas(rise: float, noise: float) -> float:
    """Return ``rise`` (nats) in units of ``noise`` (infinite, or NaN, without noise)."""
    if rise != rise:
        return float("nan")
    if noise > 0:
        return rise / noise
    return float("inf") if rise > 0 else 0.0


def _after_early_phase(series: SeriesView) -> tuple[float, float]:
    """Return the improvement (nats) from the level the run settled at after its early phase
    to its best coarse level later on, and the rise of the highest 3-point rolling median
    of the early phase over the first logged value (nats); NaN when the run is too short to
    tell."""
    nan = float("nan")
    start = series.steps[0]
    early_end = start + EARLY_SHARE * series.span
    settled_end = start + SETTLED_SHARE * series.span
    settled = series.y[(series.steps >= early_end) & (series.steps < settled_end)]
    coarse_steps, levels = series.coarse
    later = levels[coarse_steps >= settled_end]
    if settled.size == 0 or later.size == 0:
        return nan, nan
    # a burst: the loss rising above its first logged value in the early phase, held for a
    # few points (a rolling median of 3: one noisy high is not a burst)
    early = series.y[series.steps < early_end]
    held = rolling_median(early, BURST_POINTS) if early.size >= BURST_POINTS else early
    burst = float(held.max()) - float(series.y[0]) if early.size else nan
    return median(settled) - float(later.min()), burst
