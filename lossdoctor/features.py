"""The per-series view detectors share: finite points, log space, robust trend, noise.

Everything is computed once, lazily, and in numpy (no per-point Python loops).
Units: ``y`` is log(loss) in nats when every finite value is positive ("log
space"), else the raw value; residuals and noise are in the same space, so in
log space a residual of 0.69 means "twice the local trend".
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from lossdoctor.arrays import all_finite
from lossdoctor.model import BoolArray, FloatArray, IntArray, Series
from lossdoctor.robust import (
    bucket_medians,
    even_edges,
    median,
    quantiles,
    robust_sigma,
    rolling_median,
)
from lossdoctor.sampling import JUDGE_MAX_POINTS, judged_positions, sample_stride

__all__ = ["LRProfile", "SeriesView", "Wave", "robust_sigma", "rolling_median", "spearman"]

#: Rolling-median window, as a share of the number of points ...
TREND_WINDOW_SHARE = 0.04
#: ... bounded to this many points.
TREND_WINDOW_MIN = 5
TREND_WINDOW_MAX = 401
#: Share of points at each end used for the "early level" and the "end level" (and the
#: coarse trend's smoothing).
EDGE_SHARE = 0.1
EDGE_MIN_POINTS = 3
#: The start of a run is its first points: this share of them, at least
#: ``START_MIN_POINTS`` and at most ``START_MAX_POINTS`` (a run that drops in its first 1%
#: did leave its start).
START_SHARE = 0.005
START_MIN_POINTS = 3
START_MAX_POINTS = 10
#: Buckets of the coarse trend.
COARSE_BUCKETS = 200
#: A warmup starts below this share of the peak learning rate ...
WARMUP_START_SHARE = 0.5
#: ... and reaches the peak within this share of the run.
WARMUP_MAX_SHARE = 0.3
WARMUP_MIN_POINTS = 3
#: The wave is measured on the second half of the run, in blocks of a tenth of it, at
#: least this many points (a line through each block is the local level).
WAVE_BLOCKS = 10
WAVE_MIN_BLOCK = 21
#: Fewest points a rank correlation is computed on.
MIN_RANK_POINTS = 3


@dataclass(frozen=True)
class Wave:
    """How the second half of a run swings around its local level (nats in log space).

    The local level is a straight line through each block of a tenth of the half (at
    least 21 points), so it does not follow a swing faster than a block, whatever
    progress the run made before.  ``swing`` is the robust spread of the points around
    those lines; ``point_noise`` the robust spread of the differences
    between neighbours
    over the square root of 2: about the swing for independent noise, a fraction of it
    for a swing that persists over several points (a sine or square wave), however slow.
    ``persistent`` is the part of the swing the point-to-point noise does not explain
    (sqrt(swing^2 - point_noise^2): about 0 for independent noise, about the swing for a
    wave).  ``balance`` is how far the 10th percentile of the points lies below
    the lines over how far the 90th lies above them: about 1 or more for a swing (in log
    space, a swing of the loss goes further down than up), small for bursts that only
    go up.  ``crossings`` is how often the points cross their lines in all: a
    wave crosses twice a period, a one-off jump or explosion a few times.  All
    NaN when the half is shorter than a block."""

    swing: float
    point_noise: float
    persistent: float
    balance: float
    crossings: float


class SeriesView:
    """Cached features of one series; build it once per run and share it.

    The features are computed on the judged points: every finite point, or for a
    series longer than ``max_points`` a representative sample of them (see
    :mod:`lossdoctor.sampling`); ``series`` is always the whole series.
    """

    def __init__(self, series: Series, *, max_points: int = JUDGE_MAX_POINTS) -> None:
        self.series = series
        self.max_points = max_points

    @cached_property
    def finite_mask(self) -> BoolArray:
        """Return which points of the whole series are finite."""
        return np.isfinite(self.series.values)

    @cached_property
    def all_finite(self) -> bool:
        """Return True when no point of the whole series is NaN or infinite (told without
        a mask of every point: the mask of a long series costs more than its sum)."""
        return all_finite(self.series.values)

    @cached_property
    def lowest(self) -> float:
        """Return the lowest value of the whole series (NaN when it holds a NaN or no
        point)."""
        values = self.series.values
        return float(np.min(values)) if values.shape[0] else float("nan")

    @cached_property
    def all_positive(self) -> bool:
        """Return True when every point of the whole series is above zero (one pass: no
        point then is zero, negative or NaN)."""
        return self.lowest > 0

    @cached_property
    def index(self) -> IntArray:
        """Return the positions (in the series) of the judged finite points."""
        values = self.series.values
        if self.all_finite:
            # a sample's log space is told by the lowest value, shared with all_positive
            lowest = self.lowest if values.shape[0] > self.max_points else None
            return judged_positions(values, self.max_points, all_finite=True, lowest=lowest)
        return judged_positions(values, self.max_points, finite=self.finite_mask)

    @cached_property
    def steps(self) -> FloatArray:
        """Return the steps of the judged points."""
        return self.series.steps[self.index]

    @cached_property
    def values(self) -> FloatArray:
        """Return the judged (finite) values."""
        return self.series.values[self.index]

    @cached_property
    def n(self) -> int:
        """Return the number of judged points."""
        return int(self.values.shape[0])

    @cached_property
    def n_finite(self) -> int:
        """Return the number of finite points in the whole series."""
        if self.all_finite:
            return len(self.series)
        return int(np.count_nonzero(self.finite_mask))

    @property
    def sampled(self) -> bool:
        """Return True when the series is judged on a sample of its finite points."""
        return self.n < self.n_finite

    @cached_property
    def regular(self) -> BoolArray:
        """Return which judged points are regular picks of the sample (all of them when the
        series is not sampled): the points kept for standing out are over-represented in a
        sample, so distributions of the noise are taken over the regular picks only."""
        if not self.sampled:
            return np.ones(self.n, dtype=bool)
        stride = sample_stride(self.n_finite, self.max_points)
        # every point finite: a point's rank is its position
        rank = self.index if self.all_finite else (np.cumsum(self.finite_mask) - 1)[self.index]
        return np.asarray(rank % stride == 0)

    @cached_property
    def log_space(self) -> bool:
        """Return True when every finite value is positive, so ``y`` is log(value)."""
        return self.n > 0 and bool((self.values > 0).all())

    @cached_property
    def y(self) -> FloatArray:
        """Return log(values) in log space, else the values."""
        return np.log(self.values) if self.log_space else self.values.astype(np.float64)

    @cached_property
    def window(self) -> int:
        """Return the rolling-median window in points (odd)."""
        size = round(self.n * TREND_WINDOW_SHARE)
        size = max(TREND_WINDOW_MIN, min(TREND_WINDOW_MAX, size))
        return size if size % 2 else size + 1

    @cached_property
    def trend(self) -> FloatArray:
        """Return the robust local level of ``y`` (centred rolling median)."""
        return rolling_median(self.y, self.window)

    @cached_property
    def resid(self) -> FloatArray:
        """Return ``y - trend``: positive above the local level."""
        return self.y - self.trend

    @cached_property
    def noise(self) -> float:
        """Return the robust spread of the residuals (same units as ``y``)."""
        return robust_sigma(self.resid)

    def edge_points(self) -> int:
        """Return how many points make up the start or the end of the run."""
        share = int(self.n * EDGE_SHARE)
        if share >= EDGE_MIN_POINTS:
            return share
        return max(1, min(EDGE_MIN_POINTS, self.n // 4))

    @cached_property
    def early_level(self) -> float:
        """Return the median of ``y`` over the first 10% of the points: a level robust to
        noise for comparing swings with progress (the start itself is :attr:`start_level`)."""
        return median(self.y[: self.edge_points()]) if self.n else float("nan")

    def start_points(self) -> int:
        """Return how many of the first points make up the start of the run."""
        wanted = min(START_MAX_POINTS, max(START_MIN_POINTS, int(self.n * START_SHARE)))
        return max(1, min(self.n, wanted))

    @cached_property
    def start_level(self) -> float:
        """Return the median of ``y`` over the first points (see :meth:`start_points`)."""
        return median(self.y[: self.start_points()]) if self.n else float("nan")

    @cached_property
    def end_level(self) -> float:
        """Return the median of ``y`` over the last points."""
        return median(self.y[-self.edge_points() :]) if self.n else float("nan")

    def value_at(self, level: float) -> float:
        """Return a level of ``y`` as a loss value (undoing the log in log space)."""
        return float(np.exp(level)) if self.log_space else level

    @cached_property
    def coarse(self) -> tuple[FloatArray, FloatArray]:
        """Return (steps, levels) of a coarse trend: bucket medians smoothed over 10% of the run.

        At most 200 buckets, so the cost is independent of the run's length after
        one pass; each level summarises about a tenth of the run.
        """
        if self.n == 0:
            return np.empty(0), np.empty(0)
        buckets = min(self.n, COARSE_BUCKETS)
        edges = even_edges(self.n, buckets)
        if buckets == self.n:
            levels, steps = self.y.copy(), self.steps.copy()
        else:
            levels = bucket_medians(self.y, edges)
            # a logged step (the bucket's middle point), never the mean of two steps
            steps = self.steps[(edges[:-1] + edges[1:] - 1) // 2].astype(np.float64)
        return steps, rolling_median(levels, _coarse_window(buckets))

    @cached_property
    def coarse_level_points(self) -> float:
        """Return how many judged points one level of the coarse trend summarises (the
        points of a bucket times the buckets its smoothing spans; 0.0 when empty)."""
        buckets = min(self.n, COARSE_BUCKETS)
        return self.n / buckets * min(buckets, _coarse_window(buckets)) if buckets else 0.0

    @cached_property
    def best_level(self) -> float:
        """Return the lowest level of the coarse trend (``y`` units)."""
        return float(self.coarse[1].min()) if self.n else float("nan")

    @cached_property
    def coarse_at_points(self) -> FloatArray:
        """Return the coarse trend interpolated at every finite point (``y`` units)."""
        steps, levels = self.coarse
        if self.n == 0:
            return np.empty(0)
        return np.asarray(np.interp(self.steps, steps, levels), dtype=np.float64)

    @cached_property
    def swing(self) -> float:
        """Return the typical swing of ``y`` around its trend: the larger of the spread
        around the local trend and around the coarse trend (which also catches waves
        slower than the local window)."""
        if self.n == 0:
            return float("nan")
        return max(self.noise, robust_sigma(self.y - self.coarse_at_points))

    @cached_property
    def linear_swing_to_progress(self) -> float:
        """Return the robust swing of the values around the trend divided by the progress
        (early level minus best level), both measured on the loss values themselves.

        Near zero, log space magnifies harmless wobbles; this ratio does not.
        """
        if not self.log_space or self.n == 0:
            return float("nan")
        progress = float(np.exp(self.early_level) - np.exp(self.best_level))
        return self.linear_swing / progress if progress > 0 else float("inf")

    @cached_property
    def linear_swing(self) -> float:
        """Return the robust swing of the values (loss units, not logs) around the local and
        the coarse trend, the larger of the two (NaN unless in log space)."""
        if not self.log_space or self.n == 0:
            return float("nan")
        return max(
            robust_sigma(self.values - np.exp(self.trend)),
            robust_sigma(self.values - np.exp(self.coarse_at_points)),
        )

    @cached_property
    def giveback(self) -> float:
        """Return the share of the progress (start to best) given back by the end (0 = none,
        1 = back at the start), on the loss values themselves."""
        if self.n == 0:
            return float("nan")
        start, best, end = (
            self.value_at(v) for v in (self.early_level, self.best_level, self.end_level)
        )
        return (end - best) / (start - best) if start > best else float("inf")

    @cached_property
    def wave(self) -> Wave:
        """Return how the second half of the run swings around its local level (see
        :class:`Wave`)."""
        half = self.y[self.n // 2 :]
        size = max(WAVE_MIN_BLOCK, half.shape[0] // WAVE_BLOCKS)
        blocks = half.shape[0] // size
        if blocks < 1 or not self.log_space:
            nan = float("nan")
            return Wave(nan, nan, nan, nan, nan)
        parts = half[half.shape[0] - blocks * size :].reshape(blocks, size)
        x = np.arange(size) - (size - 1) / 2
        slopes = (parts * x).sum(axis=1) / float((x * x).sum())
        around = (parts - parts.mean(axis=1, keepdims=True) - slopes[:, None] * x).ravel()
        low, high = quantiles(around, (0.1, 0.9))
        rows = around.reshape(blocks, size)
        swing = robust_sigma(around)
        point_noise = robust_sigma(np.diff(half)) / float(np.sqrt(2))
        return Wave(
            swing=swing,
            point_noise=point_noise,
            persistent=float(np.sqrt(max(swing**2 - point_noise**2, 0.0))),
            balance=-low / high if high > 0 else float("inf"),
            crossings=float(np.count_nonzero(np.diff(rows > 0, axis=1))),
        )

    @cached_property
    def magnitudes(self) -> tuple[np.float64, np.float64, np.float64, np.float64]:
        """Return the highest and the lowest absolute judged value, and the absolute first
        and last (the series' units; the series must not be empty)."""
        size = np.abs(self.values)
        return size.max(), size.min(), size[0], size[-1]

    @cached_property
    def span(self) -> float:
        """Return the number of steps between the first and the last finite point."""
        return float(self.steps[-1] - self.steps[0]) if self.n > 1 else 0.0


def _coarse_window(buckets: int) -> int:
    """Return the (odd) window, in buckets, the coarse trend is smoothed over."""
    window = max(3, round(buckets * EDGE_SHARE))
    return window if window % 2 else window + 1


def warmup_end_step(lr: SeriesView | None) -> float | None:
    """Return the step where a learning-rate warmup ends (the LR reaches its peak), or None
    when the LR does not start with a ramp up."""
    if lr is None or lr.n < WARMUP_MIN_POINTS:
        return None
    values = lr.values
    peak = int(np.argmax(values))
    peak_value = float(values[peak])
    if peak_value <= 0 or values[0] > WARMUP_START_SHARE * peak_value:
        return None
    if lr.steps[peak] - lr.steps[0] > WARMUP_MAX_SHARE * lr.span:
        return None
    return float(lr.steps[peak])


def spearman(x: FloatArray, y: FloatArray) -> float:
    """Return Spearman's rank correlation of ``x`` and ``y`` (-1..1; NaN when undefined)."""
    n = x.shape[0]
    if n < MIN_RANK_POINTS:
        return float("nan")
    # steps that only go up (the usual x) are ranked by their positions
    rising = bool((x[1:] > x[:-1]).all())
    rank_x = np.arange(1, n + 1, dtype=np.float64) if rising else average_ranks(x)
    rank_y = average_ranks(y)
    if (not rising and rank_x.min() == rank_x.max()) or rank_y.min() == rank_y.max():
        return float("nan")  # no spread
    return pearson(rank_x, rank_y)


def pearson(x: FloatArray, y: FloatArray) -> float:
    """Return ``np.corrcoef(x, y)[0, 1]`` for two float series of two points or more, bit for
    bit (the same operations), without its handling of every other kind of argument."""
    n = x.shape[0]
    both = np.empty((2, n), dtype=np.result_type(x, y))
    both[0], both[1] = x, y
    both -= (np.add.reduce(both, axis=1) / n)[:, None]  # the rows' means, as .mean takes them
    c = np.dot(both, both.T.conj())
    c *= np.true_divide(1, n - 1)
    spread = np.sqrt(np.diag(c))
    c /= spread[:, None]
    c /= spread[None, :]
    np.clip(c, -1, 1, out=c)
    return float(c[0, 1])


def average_ranks(values: FloatArray) -> FloatArray:
    """Return the 1-based ranks of ``values``, ties sharing their average rank (as
    ``scipy.stats.rankdata`` gives them)."""
    n = values.shape[0]
    # ties share one rank whatever their order: any sort will do, the fastest is taken
    order = np.argsort(values)
    ordered = values[order]
    if n and ordered[-1] != ordered[-1]:  # NaN (sorted last): ranked in order of position
        order = np.argsort(values, kind="stable")
        ordered = values[order]
    distinct = ordered[1:] != ordered[:-1]
    if distinct.all():  # no ties: a value's rank is its place in the order
        ranks = np.empty(n, dtype=np.float64)
        ranks[order] = np.arange(1, n + 1, dtype=np.float64)
        return ranks
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = np.arange(n)
    starts = np.concatenate(([True], distinct))
    dense = np.cumsum(starts)[inverse]
    bounds = np.concatenate((np.flatnonzero(starts), [starts.shape[0]]))
    return np.asarray(0.5 * (bounds[dense] + bounds[dense - 1] + 1), dtype=np.float64)


class LRProfile:
    """What the learning-rate series says around a step: peak, share of the peak then and
    at the end (NaN everywhere when the run logged no learning rate)."""

    def __init__(self, lr: SeriesView | None, at_step: float | None = None) -> None:
        nan = float("nan")
        self.has_lr = lr is not None and lr.n > 0
        self.peak = nan
        self.rel_at = nan
        self.rel_end = nan
        self.rel_start = nan
        #: The lowest logged rate as a share of the peak (1.0: constant).
        self.rel_min = nan
        #: The highest logged rate from ``at_step`` on as a share of the peak (a restart
        #: after it shows even when the rate has decayed again by the end).
        self.rel_max_after = nan
        if lr is None or lr.n == 0:
            return
        highest, lowest, first, last = lr.magnitudes
        peak = float(highest)
        self.peak = peak
        if peak <= 0:
            return
        self.rel_end = float(last / peak)
        self.rel_start = float(first / peak)
        self.rel_min = float(lowest / peak)
        if at_step is not None and at_step == at_step:
            index = int(np.searchsorted(lr.steps, at_step, side="right")) - 1
            index = min(max(index, 0), lr.n - 1)
            self.rel_at = float(abs(lr.values[index]) / peak)
            self.rel_max_after = float(np.max(np.abs(lr.values[index:])) / peak)
