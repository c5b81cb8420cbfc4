"""Upward bursts above the local trend."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lossdoctor.detectors import MAX_MARKS, Evidence, register_detector
from lossdoctor.detectors.beside import (
    at_epoch_boundary,
    grad_ratio_over_spans,
    log_interval,
    precision,
)
from lossdoctor.features import LRProfile, SeriesView, warmup_end_step
from lossdoctor.robust import median, quantile

#: Smallest noise assumed, as a relative change (log space): 1%.
NOISE_FLOOR = 0.01
#: Fewest points on which spikes are judged.
MIN_POINTS = 8
#: Points after a spike within which the loss should be back near its trend.
RECOVERY_POINTS = 10
#: Events this short (points) are single-step bursts.
SINGLE_STEP_POINTS = 2
#: A learning rate whose lowest logged value is below this share of its peak is scheduled.
LR_VARIES = 0.9
#: After the worst spike, a loss this many times its earlier level never came back down.
STAYS_HIGH_RATIO = 1.3


@dataclass(frozen=True)
class Spikes:
    """Spike events: how many, how big (x the local trend), how often."""

    count: int
    big_count: int
    max_ratio: float
    max_z: float
    spike_rate: float
    worst_step: float
    recovered: bool
    single_step: bool
    max_duration: int
    stays_high: bool
    excess_to_progress: float
    lr_rel_at_worst: float
    #: True when the logged learning rate follows a schedule (its lowest value is below
    #: 90% of its peak): a constant rate is always "at its peak".
    lr_varies: bool
    #: Spikes with a gradient norm logged in their steps, and those where it spiked too.
    grad_checked: int
    co_spikes: int
    calm_spikes: int
    co_spike_share: float
    grad_ratio_at_worst: float
    #: Spikes that start within one logging interval of an epoch boundary.
    epoch_aligned: int
    epoch_aligned_share: float
    fp16: bool
    overflow_skips: int
    grad_non_finite: int
    evidence: Evidence


def _no_spikes(rate: float, evidence: Evidence) -> Spikes:
    """Return the measurement of a series without spike events."""
    nan = float("nan")
    return Spikes(
        count=0,
        big_count=0,
        max_ratio=1.0,
        max_z=0.0,
        spike_rate=rate,
        worst_step=nan,
        recovered=True,
        single_step=True,
        max_duration=0,
        stays_high=False,
        excess_to_progress=0.0,
        lr_rel_at_worst=nan,
        lr_varies=False,
        grad_checked=0,
        co_spikes=0,
        calm_spikes=0,
        co_spike_share=nan,
        grad_ratio_at_worst=nan,
        epoch_aligned=0,
        epoch_aligned_share=nan,
        fp16=False,
        overflow_skips=0,
        grad_non_finite=0,
        evidence=evidence,
    )


@register_detector("spikes", ranges={"tail_quantile": (0.0, 1.0)})
def spikes(
    series: SeriesView,
    lr: SeriesView | None = None,
    grad_norm: SeriesView | None = None,
    *,
    z: float = 6.0,
    min_ratio: float = 1.1,
    big_ratio: float = 1.5,
    huge_ratio: float = 3.0,
    huge_z: float = 2.5,
    tail_factor: float = 1.5,
    tail_quantile: float = 0.001,
    co_ratio: float = 2.0,
) -> Spikes:
    """Return the spike events of a series (judged in log space; a series with values
    at or below zero has none).

    A point is in a spike when it stands above the rolling-median trend by more
    than ``z`` robust deviations and by at least ``min_ratio`` times the trend;
    consecutive such points make one event.  ``max_ratio`` is the peak of the
    worst event as a multiple of the local trend; ``spike_rate`` is the share
    of points (0-1) beyond ``z`` deviations; ``big_count`` counts events of at
    least ``big_ratio`` x.  In a very noisy series a jump of ``huge_ratio`` x the
    trend counts once it is beyond ``huge_z`` deviations.

    The bar adapts to heavy-tailed noise: a spike must also stand ``tail_factor``
    times further above the trend than the ``tail_quantile`` of the points below it
    (noise is symmetric in log space, spikes are not).  Points during a learning-rate
    warmup (from ``lr``) are not judged.

    ``excess_to_progress`` is how far the worst spike rose above its trend, in loss units,
    as a multiple of the progress the run made (its early level minus its best level): near
    a loss of zero a batch twice the local level is a small step; a bad batch is not.

    The signals beside the loss, as evidence for the causes: ``grad_checked`` spikes have a
    gradient norm logged within half a logging interval of their steps, ``co_spikes`` of
    them a norm at least ``co_ratio`` times its local typical size (``co_spike_share``
    0-1; ``grad_ratio_at_worst`` at the worst spike); ``epoch_aligned`` spikes start within
    one logging interval of an epoch boundary (share 0-1 of all spikes); ``fp16``,
    ``overflow_skips`` (lines of the log) and ``grad_non_finite`` (NaN/Inf norms, points)
    say whether the run's number format overflowed.
    """
    empty = Evidence(series=series.series.role, column=series.series.column)
    if series.n < MIN_POINTS or not series.log_space:
        return _no_spikes(0.0, empty)
    scale = max(series.noise, NOISE_FLOOR)
    resid, trend = series.resid, series.trend
    ratio = np.exp(resid)
    zscore = resid / scale
    # the tail of the noise, from the regular picks: a sample keeps every outlier (dips
    # too), so over all judged points the tail of a long run would look far heavier
    lower_tail = -quantile(zscore[series.regular], tail_quantile)
    bar = max(z, tail_factor * lower_tail)
    beyond = zscore > bar
    hot = (beyond & (ratio >= min_ratio)) | ((zscore > huge_z) & (ratio >= huge_ratio))
    warm_end = warmup_end_step(lr)
    if warm_end is not None:
        hot &= series.steps > warm_end
    # a burst rises from what came before it: the first point of a series cannot
    # be one, and the peak is measured against the higher of the previous point
    # and its trend (a steep early fall leaves the first points above a lagging trend)
    hot[0] = False
    starts = np.flatnonzero(hot & ~np.concatenate(([False], hot[:-1])))
    ends = np.flatnonzero(hot & ~np.concatenate((hot[1:], [False])))
    before = np.maximum(series.y[starts - 1], trend[starts - 1]) if starts.size else starts
    count = int(starts.shape[0])
    if count == 0:
        return _no_spikes(float(beyond.mean()), empty)
    peak_ratio = np.maximum.reduceat(np.where(hot, ratio, -np.inf), starts)
    peak_y = np.maximum.reduceat(np.where(hot, series.y, -np.inf), starts)
    rise = peak_y - before
    peak_ratio = np.minimum(peak_ratio, np.exp(rise))
    real = peak_ratio >= min_ratio
    starts, ends, peak_ratio = starts[real], ends[real], peak_ratio[real]
    count = int(starts.shape[0])
    if count == 0:
        return _no_spikes(float(beyond.mean()), empty)
    worst = int(np.argmax(peak_ratio))
    worst_start, worst_end = int(starts[worst]), int(ends[worst])
    after = resid[worst_end + 1 : worst_end + 1 + RECOVERY_POINTS]
    recovered = bool(after.size == 0 or (after < z * scale).any())
    peak_index = worst_start + int(np.argmax(ratio[worst_start : worst_end + 1]))
    durations = ends - starts + 1
    rest = series.y[worst_end + 1 :]
    stays_high = bool(
        rest.size >= max(RECOVERY_POINTS, series.n // 20)
        and median(rest) - trend[max(worst_start - 1, 0)] >= np.log(STAYS_HIGH_RATIO)
    )
    start_steps, end_steps = series.steps[starts], series.steps[ends]
    grad_ratio = grad_ratio_over_spans(
        grad_norm, start_steps, end_steps, 0.5 * log_interval(series)
    )
    grad_checked = int(np.isfinite(grad_ratio).sum())
    co_spikes = int((grad_ratio >= co_ratio).sum())
    aligned = int(at_epoch_boundary(series, start_steps).sum())
    signs = precision(series, grad_norm)
    lr_profile = LRProfile(lr, float(series.steps[peak_index]))
    evidence = Evidence(
        series=series.series.role,
        column=series.series.column,
        start_step=float(series.steps[worst_start]),
        end_step=float(series.steps[worst_end]),
        line=series.series.line_of(int(series.index[peak_index])),
        marks=tuple(
            (float(series.steps[i]), float(series.values[i]))
            for i in (
                s + int(np.argmax(series.values[s : e + 1]))
                for s, e in zip(starts[:MAX_MARKS].tolist(), ends[:MAX_MARKS].tolist(), strict=True)
            )
        ),
        numbers={
            "peak_value": float(series.values[peak_index]),
            "trend_value": series.value_at(float(trend[peak_index])),
            "max_ratio": float(peak_ratio[worst]),  # the name the rule conditions use
            "events": count,
            "spike_rate_pct": round(100 * float(beyond.mean()), 3),
            **({"co_spikes": co_spikes} if grad_checked else {}),
            **({"epoch_aligned": aligned} if aligned else {}),
        },
    )
    return Spikes(
        count=count,
        big_count=int((peak_ratio >= big_ratio).sum()),
        max_ratio=float(peak_ratio[worst]),
        max_z=float(zscore[worst_start : worst_end + 1].max()),
        spike_rate=float(beyond.mean()),
        worst_step=float(series.steps[peak_index]),
        recovered=recovered,
        single_step=bool(durations.max() <= SINGLE_STEP_POINTS),
        max_duration=int(durations.max()),
        stays_high=stays_high,
        excess_to_progress=_excess_to_progress(series, peak_index),
        lr_rel_at_worst=lr_profile.rel_at,
        lr_varies=bool(lr is not None and lr.n and lr_profile.rel_min < LR_VARIES),
        grad_checked=grad_checked,
        co_spikes=co_spikes,
        calm_spikes=grad_checked - co_spikes,
        co_spike_share=co_spikes / grad_checked if grad_checked else float("nan"),
        grad_ratio_at_worst=float(grad_ratio[worst]),
        epoch_aligned=aligned,
        epoch_aligned_share=aligned / count,
        fp16=signs.fp16,
        overflow_skips=signs.overflow_skips,
        grad_non_finite=signs.grad_non_finite,
        evidence=evidence,
    )


def _excess_to_progress(series: SeriesView, at: int) -> float:
    """Return the rise of the point ``at`` above its trend divided by the run's progress,
    both in loss units (inf when the run made no progress)."""
    excess = float(series.values[at]) - series.value_at(float(series.trend[at]))
    progress = series.value_at(series.early_level) - series.value_at(series.best_level)
    return excess / progress if progress > 0 else float("inf")
