"""Large sustained swings around the trend, compared with the progress made."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lossdoctor.detectors import Evidence, deferred, register_detector, span_evidence
from lossdoctor.features import LRProfile, SeriesView, spearman
from lossdoctor.robust import band_passes, median, quantiles, robust_sigma

MIN_POINTS = 10
#: Progress below this (nats) counts as none when comparing swing and progress.
MIN_PROGRESS = 0.01
#: Smallest noise around the trend assumed when comparing the alternation with it (nats).
NOISE_FLOOR = 0.01
#: Fewest points of a half of the run the alternation is measured on.
MIN_HALF_POINTS = 5
#: Fewest points of a validation loss whose calm says the training loss's swings are noise.
MIN_VAL_POINTS = 5
#: The local level's swing is the spread between these quantiles of the second half.
LEVEL_QUANTILES = (0.1, 0.9)


@dataclass(frozen=True)
class Oscillation:
    """Typical swing of the loss around its trend and how it compares with the progress.

    The learning rate's and the validation loss's fields, the swing on the loss values
    and the evidence are computed when a rule first reads them (see
    :func:`~lossdoctor.detectors.deferred`): on a run that does not swing, every level
    fails on the swings first."""

    swing: float
    swing_pct: float
    progress: float
    swing_to_progress: float
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
    #: The role of the series the evidence names.
    judged: str
    #: The inputs and the detector's tunables the deferred fields read; ``_measured`` is
    #: False for a series too short or not in log space (every deferred field NaN, the
    #: evidence empty, ``val_calm`` False).
    _series: SeriesView = field(repr=False, compare=False)
    _lr: SeriesView | None = field(repr=False, compare=False)
    _val: SeriesView | None = field(repr=False, compare=False)
    _calm_bounds: tuple[float, float, float] = field(repr=False, compare=False)
    _measured: bool = field(repr=False, compare=False)

    @deferred
    def linear_swing_to_progress(self) -> float:
        """Return the swing over the progress on the loss values (see
        :attr:`~lossdoctor.features.SeriesView.linear_swing_to_progress`)."""
        return self._series.linear_swing_to_progress if self._measured else float("nan")

    @deferred
    def _lr_profile(self) -> LRProfile:
        """Return the learning rate's profile (all NaN without one or when not measured)."""
        return LRProfile(self._lr if self._measured else None)

    @deferred
    def lr_peak(self) -> float:
        """Return the learning rate's peak (NaN without one)."""
        return self._lr_profile.peak

    @deferred
    def lr_rel_end(self) -> float:
        """Return the learning rate at the end as a share of its peak (NaN without one)."""
        return self._lr_profile.rel_end

    @deferred
    def _calm(self) -> ValCalm:
        """Return how the validation loss behaves beside the training loss (see
        :func:`val_calm`; all NaN when not measured)."""
        if not self._measured:
            nan = float("nan")
            return ValCalm(nan, nan, nan, nan)
        return val_calm(self._series, self._val)

    @deferred
    def val_fall(self) -> float:
        """Return the validation loss's rank correlation with the step (see :class:`ValCalm`)."""
        return self._calm.fall

    @deferred
    def val_best_share(self) -> float:
        """Return where the validation loss's lowest point lies (0-1 of its steps)."""
        return self._calm.best_share

    @deferred
    def val_swing_pct(self) -> float:
        """Return the validation loss's own swing from point to point, in %."""
        return 100 * (float(np.exp(self._calm.swing)) - 1)

    @deferred
    def val_swing_to_swing(self) -> float:
        """Return the validation loss's swing over the training loss's swing."""
        return self._calm.swing_to_swing

    @deferred
    def val_calm(self) -> bool:
        """Return True when the validation loss falls steadily to its best at or near the
        end while swinging little (see :func:`oscillation`)."""
        if not self._measured:
            return False
        fall_max, best_min, swing_max = self._calm_bounds
        calm = self._calm
        return (
            calm.fall <= fall_max
            and calm.best_share >= best_min
            and calm.swing_to_swing <= swing_max
        )

    @deferred
    def evidence(self) -> Evidence:
        """Return where the measurement points: the whole series, the swings in %, the
        start and best levels (loss units) and the validation loss's swing and fall."""
        series = self._series
        if not self._measured:
            return Evidence(series=self.judged, column=series.series.column)
        calm = self._calm
        numbers = {
            "swing_pct": round(100 * (float(np.exp(self.swing)) - 1), 1),
            "alternation_pct": round(100 * (float(np.exp(self.alternation)) - 1), 1),
            "wave_pct": round(100 * (float(np.exp(self.wave)) - 1), 1),
            "start_level": series.value_at(series.early_level),
            "best_level": series.value_at(series.best_level),
        }
        if calm.swing == calm.swing:
            numbers.update(
                val_swing_pct=round(100 * (float(np.exp(calm.swing)) - 1), 1),
                val_fall=round(calm.fall, 2),
                val_best_share=round(calm.best_share, 2),
            )
        return span_evidence(series, numbers, role=self.judged)


@dataclass(frozen=True)
class ValCalm:
    """How the validation loss logged beside the training loss behaves (NaN without one)."""

    #: Rank correlation of the validation loss with the step (-1: falls at every point).
    fall: float
    #: Where its lowest point lies, as a share of its steps (1.0: at the last point).
    best_share: float
    #: Its own typical swing from point to point (nats) and that swing over the training
    #: loss's swing around its trend.
    swing: float
    swing_to_swing: float


def val_calm(series: SeriesView, val: SeriesView | None) -> ValCalm:
    """Return how steadily the validation loss ``val`` falls beside the training loss
    ``series`` (see :class:`ValCalm`): the rank correlation of its values with the step,
    the share of its steps before its lowest point, its point-to-point swing (the robust
    spread of the differences between neighbours over the square root of 2, nats in log
    space) and that swing over the training loss's swing.  The validation loss is the
    same weights judged on more data: an unstable optimisation moves it as much as the
    training loss, while the noise of small training batches does not reach it.  All NaN
    without a validation loss of :data:`MIN_VAL_POINTS` positive points or more."""
    nan = float("nan")
    if val is None or val.n < MIN_VAL_POINTS or not val.log_space or not series.log_space:
        return ValCalm(nan, nan, nan, nan)
    span = float(val.steps[-1] - val.steps[0])
    lowest = int(np.argmin(val.y))
    best_share = float(val.steps[lowest] - val.steps[0]) / span if span > 0 else nan
    swing = robust_sigma(np.diff(val.y)) / float(np.sqrt(2))
    return ValCalm(
        fall=spearman(val.steps.astype(np.float64), val.y),
        best_share=best_share,
        swing=swing,
        swing_to_swing=swing / max(series.swing, NOISE_FLOOR),
    )


@register_detector(
    "oscillation",
    ranges={"val_fall_max": (-1.0, 0.0), "val_best_min": (0.0, 1.0)},
    beside=("val",),
)
def oscillation(
    series: SeriesView,
    lr: SeriesView | None = None,
    val: SeriesView | None = None,
    *,
    val_fall_max: float = -0.7,
    val_best_min: float = 0.9,
    val_swing_max: float = 0.33,
) -> Oscillation:
    """Return the robust swing around the trend (nats in log space; ``swing_pct`` in %: the
    larger of the spread around the rolling-median trend, the coarse trend and the lines
    of the second half's wave),
    the progress (start level minus best level, nats) and their ratio, in log space and
    on the loss values themselves; the alternation (see :func:`alternation`: nats,
    ``alternation_pct`` in %) as a multiple of the noise around the local trend; and the
    wave of the second half (see :func:`wave`: nats, ``wave_pct`` in %) as a multiple of
    the point-to-point noise, with its balance (see :class:`~lossdoctor.features.Wave`);
    and how the local level itself swings (see :func:`level_swings`: nats,
    ``level_swing_pct`` in %, as a multiple of the noise around it).

    With a validation loss ``val`` beside it (see :func:`val_calm`), ``val_calm`` is
    True when the validation loss falls steadily (rank correlation with the step at most
    ``val_fall_max``) to its best at or near the end (at ``val_best_min`` of its steps
    or later) while swinging at most ``val_swing_max`` times as much as the training
    loss: the training loss's swings are then the noise of its batches, not an unstable
    optimisation; ``val_swing_pct`` is the validation loss's own swing in %."""
    role = series.series.role
    bounds = (val_fall_max, val_best_min, val_swing_max)
    if series.n < MIN_POINTS or not series.log_space:
        n = float("nan")
        return Oscillation(
            n, n, n, n, n, n, n, n, n, n, n, n, n, n, n, n, role, series, lr, val, bounds, False
        )
    late = series.wave
    # a rolling median of a short run follows a swing slower than its few points; the
    # lines through each tenth of the second half do not
    swing = max(series.swing, late.swing) if late.swing == late.swing else series.swing
    progress = max(series.early_level - series.best_level, 0.0)
    ratio = swing / max(progress, MIN_PROGRESS)
    alternate = alternation(series)
    level_swing, passes = level_swings(series)
    return Oscillation(
        swing=swing,
        swing_pct=100 * (float(np.exp(swing)) - 1),
        progress=progress,
        swing_to_progress=ratio,
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
        judged=role,
        _series=series,
        _lr=lr,
        _val=val,
        _calm_bounds=bounds,
        _measured=True,
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
    low, high = quantiles(late, LEVEL_QUANTILES)
    spread = high - low
    if spread <= 0:
        return spread, 0
    return spread, band_passes(series.trend, low + spread / 4, high - spread / 4)
