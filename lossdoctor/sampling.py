"""Which points of a series are judged: every finite point up to a limit; beyond it, a
representative sample that keeps the noise of the curve and every outlier.

A 10,000,000-point log judged point by point would spend seconds on rolling medians
that a sample of half a million points answers as well: one point per bucket of
consecutive points keeps the trend, the noise distribution (a regular pick, not a
bucket summary) and the timing (the points keep their steps), and a bucket whose
most extreme point stands far off the trend is represented by that point, so a
one-step spike or dip is never sampled away.  Counts that must be exact (non-finite
and negative values, points logged) are taken from the whole series.
"""

from __future__ import annotations

import numpy as np

from lossdoctor.arrays import unique_ints
from lossdoctor.model import BoolArray, FloatArray, IntArray
from lossdoctor.robust import robust_sigma, rolling_median

#: Series with more finite points than this are judged on a sample of about this many.
JUDGE_MAX_POINTS = 200_000
#: A bucket's most extreme point replaces its regular pick when it stands this many
#: robust deviations off the trend ...
OUTLIER_Z = 6.0
#: ... and at least this far: 1% in log space (a ratio of 1.01), 1% of the typical
#: magnitude otherwise.
OUTLIER_FLOOR = 0.01
#: Rolling-median window (points of the sample) of the trend outliers are measured from.
SAMPLE_TREND_WINDOW = 201
#: Buckets handled at a time in the full-resolution pass (bounds temporary memory).
BLOCK_BUCKETS = 1 << 16
#: How far (relative to the trend's magnitude and the bar) the bounds a bucket's values are
#: first compared with are widened: far more than the rounding of the log, the exponential
#: and the differences, so no bucket past the bar is missed.
SLACK = 1e-9


def sample_stride(n_finite: int, limit: int = JUDGE_MAX_POINTS) -> int:
    """Return how many consecutive finite points one judged point stands for (1 when all
    ``n_finite`` points are judged)."""
    return max(1, -(-n_finite // limit))


def judged_positions(
    values: FloatArray,
    limit: int = JUDGE_MAX_POINTS,
    *,
    finite: BoolArray | None = None,
    all_finite: bool = False,
    lowest: float | None = None,
) -> IntArray:
    """Return the positions (ascending, in ``values``) of the points a series is judged on:
    every finite point when there are at most ``limit``; otherwise one point per bucket of
    ``ceil(n / limit)`` consecutive finite points (the bucket's first, or its most extreme
    point when that stands more than :data:`OUTLIER_Z` robust deviations off the trend),
    and the first and last finite points.  ``finite`` is ``np.isfinite(values)`` when known;
    ``all_finite``: every value is known to be finite (no mask is made), and ``lowest``
    their lowest, when known."""
    if all_finite:
        n_finite = values.shape[0]
        if n_finite <= limit:
            return np.arange(n_finite, dtype=np.int64)
        every = True
    else:
        finite = np.isfinite(values) if finite is None else finite
        n_finite = int(np.count_nonzero(finite))
        if n_finite <= limit:
            return np.flatnonzero(finite)
        every = n_finite == values.shape[0]
    where = None if every or finite is None else np.flatnonzero(finite)
    kept = values if every or finite is None else values[finite]
    size = sample_stride(n_finite, limit)
    buckets = n_finite // size
    lowest = np.min(kept) if lowest is None or not every else lowest
    log_space = bool(lowest > 0)
    regular = kept[: buckets * size : size]
    if regular.max() == lowest and np.max(kept) == lowest:
        # a constant series (a learning rate that never changes): no point stands out
        return _with_ends(np.arange(buckets, dtype=np.int64) * size, n_finite, where)
    y = np.log(regular) if log_space else regular
    trend = rolling_median(y, min(SAMPLE_TREND_WINDOW, buckets | 1))
    sigma = robust_sigma(y - trend)
    floor = OUTLIER_FLOOR if log_space else OUTLIER_FLOOR * float(np.median(np.abs(y)))
    bar = max(OUTLIER_Z * sigma, floor)
    picks = np.arange(buckets, dtype=np.int64) * size
    for first in range(0, buckets, BLOCK_BUCKETS):
        last = min(buckets, first + BLOCK_BUCKETS)
        block = kept[first * size : last * size]
        picks[first:last] += _extremes(block, trend[first:last], bar, log_space=log_space)
    return _with_ends(picks, n_finite, where)


def _with_ends(picks: IntArray, n_finite: int, where: IntArray | None) -> IntArray:
    """Return the positions of ``picks`` (ranks among the ``n_finite`` finite points, whose
    positions are ``where``; None: every point is finite) with the first and last finite
    points added."""
    if picks[0] != 0:
        picks = np.insert(picks, 0, 0)
    if picks[-1] != n_finite - 1:
        picks = np.append(picks, n_finite - 1)
    return picks if where is None else where[picks]


def _extremes(values: FloatArray, trend: FloatArray, bar: float, *, log_space: bool) -> IntArray:
    """Return, per bucket of ``values`` (one bucket per trend level), the offset of the point
    furthest from the trend when it is more than ``bar`` away, else 0.  In log space the
    trend is a log level.

    A bucket's most extreme points are looked for only in the buckets holding a value past
    the bar (a comparison of every value with its bucket's bounds, widened by far more than
    their rounding, finds them: outliers are few); those buckets are then measured as
    :func:`_bucket_extremes` measures every bucket, so the offsets are the same."""
    rows = trend.shape[0]
    size = values.shape[0] // rows
    grid = values.reshape(rows, size)
    with np.errstate(all="ignore"):
        slack = SLACK * (np.abs(trend) + bar)
        high, low = trend + bar - slack, trend - bar + slack
        if log_space:
            high, low = np.exp(high), np.exp(low)
        above = np.flatnonzero(grid > high[:, None])
        below = np.flatnonzero(grid < low[:, None])
    offsets = np.zeros(rows, dtype=np.int64)
    if above.shape[0] or below.shape[0]:
        near = unique_ints(np.concatenate((above, below)) // size)
        offsets[near] = _bucket_extremes(grid[near], trend[near], bar, log_space=log_space)
    return offsets


def _bucket_extremes(
    grid: FloatArray, trend: FloatArray, bar: float, *, log_space: bool
) -> IntArray:
    """Return, per row of ``grid`` (a bucket per trend level), the offset of the point
    furthest from the trend when it is more than ``bar`` away, else 0.  In log space only
    each bucket's lowest and highest values are logged."""
    rows = trend.shape[0]
    high, low = grid.argmax(axis=1), grid.argmin(axis=1)
    at = np.arange(rows)
    top, bottom = grid[at, high], grid[at, low]
    if log_space:
        up, down = np.log(top) - trend, trend - np.log(bottom)
    else:
        up, down = top - trend, trend - bottom
    return np.where(np.maximum(up, down) > bar, np.where(up >= down, high, low), 0).astype(np.int64)
