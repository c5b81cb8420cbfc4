"""Large sustained swings around the trend, compared with the progress made."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lossdoctor.detectors import Evidence, register_detector
from lossdoctor.features import LRProfile, SeriesView
from lossdoctor.robust import band_passes, median, quantile

MIN_POINTS = 10
#: Progress below this (nats) counts as none when comparing swing and progress.
MIN_PROGRESS = 0.01
#: Smallest noise around the trend assumed when comparing the alternation with it (nats).
NOISE_FLOOR = 0.01
#: Fewest points of a half of the run the alternation is measured on.
MIN_HALF_POINTS = 5
#: The local level's swing is the spread between these quantiles of the second half.
LEVEL_QUANTILES = (0.1, 0.9)


@dataclass(frozen=True)
class Oscillation:
    """Typical swing of the loss around its trend and how it compares with the progress."""

    swing: float
    swing_pct: float
    progress: float
    swing_to_progress: float
    linear_swing_to_progress: float
    alternation: float
    alternation_pct: float
    alternation_to_noise: float
    wave: float
    wave_pct: float
    wave_to_noise: float
    wave_balance: float
    wave_crossings: float
    level_swing: float
    level_swing_pct: float
    level_passes: float
    level_to_noise: float
    lr_peak: float
    lr_rel_end: float
    evidence: Evidence


@register_detector("oscillation")
def oscillation(series: SeriesView, lr: SeriesView | None = None) -> Oscillation:
    """Return the robust swing around the trend (nats in log space; ``swing_pct`` in %: the
    larger of the spread around the rolling-median trend, the coarse trend and the lines
    of the second half's wave),
    the progress (start level minus best level, nats) and their ratio, in log space and
    on the loss values themselves; the alternation (see :func:`alternation`: nats,
    ``alternation_pct`` in %) as a multiple of the noise around the local trend; and the
    wave of the second half (see :func:`wave`: nats, ``wave_pct`` in %) as a multiple of
    the point-to-point noise, with its balance (see :class:`~lossdoctor.features.Wave`);
    and how the local level itself swings (see :func:`level_swings`: nats,
    ``level_swing_pct`` in %, as a multiple of the noise around it)."""
    if series.n < MIN_POINTS or not series.log_space:
        empty = Evidence(series=series.series.role, column=series.series.column)
        nan = float("nan")
        n = nan
        return Oscillation(n, n, n, n, n, n, n, n, n, n, n, n, n, n, n, n, n, n, n, empty)
    late = series.wave
    # a rolling median of a short run follows a swing slower than its few points; the
    # lines through each tenth of the second half do not
    swing = max(series.swing, late.swing) if late.swing == late.swing else series.swing
    progress = max(series.early_level - series.best_level, 0.0)
    ratio = swing / max(progress, MIN_PROGRESS)
    alternate = alternation(series)
    level_swing, passes = level_swings(series)
    lr_profile = LRProfile(lr)
    evidence = Evidence(
        series=series.series.role,
        column=series.series.column,
        start_step=float(series.steps[0]),
        end_step=float(series.steps[-1]),
        numbers={
            "swing_pct": round(100 * (float(np.exp(swing)) - 1), 1),
            "alternation_pct": round(100 * (float(np.exp(alternate)) - 1), 1),
            "wave_pct": round(100 * (float(np.exp(late.persistent)) - 1), 1),
            "start_level": series.value_at(series.early_level),
            "best_level": series.value_at(series.best_level),
        },
    )
    return Oscillation(
        swing=swing,
        swing_pct=100 * (float(np.exp(swing)) - 1),
        progress=progress,
        swing_to_progress=ratio,
        linear_swing_to_progress=series.linear_swing_to_progress,
        alternation=alternate,
        alternation_pct=100 * (float(np.exp(alternate)) - 1),
        alternation_to_noise=alternate / max(series.noise, NOISE_FLOOR),
        wave=late.persistent,
        wave_pct=100 * (float(np.exp(late.persistent)) - 1),
        wave_to_noise=late.swing / max(late.point_noise, NOISE_FLOOR / 10),
        wave_balance=late.balance,
        wave_crossings=late.crossings,
        level_swing=level_swing,
        level_swing_pct=100 * (float(np.exp(level_swing)) - 1),
        level_passes=float(passes),
        level_to_noise=level_swing / max(series.noise, NOISE_FLOOR),
        lr_peak=lr_profile.peak,
        lr_rel_end=lr_profile.rel_end,
        evidence=evidence,
    )


def alternation(series: SeriesView) -> float:
    """Return how far a point typically lies from the mean of its two neighbours (the
    median distance: nats in log space), the smaller of the run's two halves.

    Independent noise gives about 0.8x the noise around the trend; a sawtooth that goes up and
    down between neighbouring points (every other epoch high) gives its full amplitude,
    while a rolling median follows such a sawtooth and leaves little around the trend;
    a smooth curve, however steep, gives about nothing.  NaN when a half has fewer than
    five points."""
    half = series.n // 2
    if half < MIN_HALF_POINTS:
        return float("nan")
    spreads = []
    for part in (series.y[:half], series.y[half:]):
        around = part[1:-1] - (part[:-2] + part[2:]) / 2
        spreads.append(median(np.abs(around)))
    return min(spreads)


def level_swings(series: SeriesView) -> tuple[float, int]:
    """Return how far the local level (the rolling-median trend) swings in the second half
    of the run (the spread between its 10th and 90th percentiles there, nats) and how many
    times it passes over the whole run between a quarter and three quarters of that spread
    (see :func:`~lossdoctor.robust.band_passes`): a falling curve passes once, a swing
    slower than the rolling window (which the trend follows, so the noise around the trend
    stays small) twice a period.  (NaN, 0) on a run too short for halves."""
    if series.n < 4 * MIN_HALF_POINTS:
        return float("nan"), 0
    late = series.trend[series.n // 2 :]
    low, high = (quantile(late, q) for q in LEVEL_QUANTILES)
    spread = high - low
    if spread <= 0:
        return spread, 0
    return spread, band_passes(series.trend, low + spread / 4, high - spread / 4)
