"""Robust statistics on whole numpy arrays: spread (MAD) and a centred rolling median."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from lossdoctor.model import FloatArray, IntArray

#: MAD -> standard deviation of a normal distribution.
MAD_TO_SIGMA = 1.4826


def median(values: FloatArray) -> float:
    """Return the median of the one-dimensional ``values``, as ``np.median`` gives it (NaN
    when one is NaN or none is given), without numpy's per-call overhead (a few
    microseconds instead of about twenty: detectors take dozens of medians a series)."""
    if values.shape[0] == 0:
        return float("nan")
    import bottleneck

    return float(bottleneck.median(values))


def quantile(values: FloatArray, q: float) -> float:
    """Return the ``q`` quantile (0 to 1) of the one-dimensional, non-empty ``values``, as
    ``np.quantile`` gives it (linear interpolation; NaN when one is NaN), bit for bit but
    for the sign of a zero among equal zeros, without the ``np.unique`` call inside it
    (which imports ``numpy.ma``: tens of milliseconds of every process's start)."""
    return quantiles(values, (q,))[0]


def quantiles(values: FloatArray, qs: tuple[float, ...]) -> tuple[float, ...]:
    """Return the quantiles ``qs`` (0 to 1) of the one-dimensional, non-empty ``values``,
    each as :func:`quantile` gives it, from one partial sort of ``values``."""
    n = int(values.shape[0])
    if n == 0:
        return tuple(float(np.quantile(values, q)) for q in qs)  # raises as numpy does
    # per quantile: the (lower, upper) neighbours and the weight of the upper one; None
    # for a NaN quantile; an integer q picks the point at its index as it is
    picks: list[tuple[int, int, float, bool] | None] = []
    for q in qs:
        if isinstance(q, int):  # numpy takes the point at an integer index as it is
            at = min(max((n - 1) * q, 0), n - 1)
            picks.append((at, at, 0.0, True))
            continue
        virtual = (n - 1) * float(q)
        if virtual >= n - 1:
            previous = following = n - 1
        elif virtual < 0:
            previous = following = 0
        elif math.isnan(virtual):
            picks.append(None)
            continue
        else:
            previous = math.floor(virtual)
            following = previous + 1
        # numpy's virtual index past the end is -1: its gamma is counted from there
        gamma = virtual - (-1 if virtual >= n - 1 else previous)
        picks.append((previous, following, gamma, False))
    kth = {n - 1}
    for pick in picks:
        if pick is not None:
            kth.update((0, pick[0], pick[1]) if not pick[3] else (pick[0],))
    arranged = np.partition(values, sorted(kth))
    nan = float("nan")
    if math.isnan(arranged[n - 1]):
        return tuple(nan for _ in qs)  # NaN sorts last
    out: list[float] = []
    for pick in picks:
        if pick is None:
            out.append(nan)
            continue
        previous, following, gamma, exact = pick
        if exact:
            out.append(float(arranged[previous]))
            continue
        low, high = float(arranged[previous]), float(arranged[following])
        step = high - low
        out.append(high - step * (1 - gamma) if gamma >= HALF else low + step * gamma)
    return tuple(out)


#: numpy's interpolation switches from the lower to the upper neighbour at this gamma.
HALF = 0.5


def robust_sigma(values: FloatArray) -> float:
    """Return 1.4826 x the median absolute deviation of ``values`` (0.0 when empty)."""
    if values.shape[0] == 0:
        return 0.0
    return float(MAD_TO_SIGMA * median(np.abs(values - median(values))))


def rolling_median(values: FloatArray, window: int) -> FloatArray:
    """Return the centred rolling median of ``values`` over ``window`` points (edges shrink)."""
    if values.shape[0] == 0:
        return values.copy()
    import bottleneck

    half = window // 2
    # bottleneck's moving median is trailing and skips NaN: pad the end with NaN and
    # shift by half a window to get pandas' centred median with shrinking edges; a series
    # shorter than the window is padded in front too (bottleneck wants window <= length)
    lead = max(0, window - values.shape[0] - half)
    padded = np.concatenate(
        [np.full(lead, np.nan), values.astype(np.float64), np.full(half, np.nan)]
    )
    trailing = bottleneck.move_median(padded, window=window, min_count=1)
    return np.asarray(trailing[lead + half :], dtype=np.float64)


def bucket_medians(values: FloatArray, edges: IntArray) -> FloatArray:
    """Return the median of each bucket ``values[edges[i]:edges[i + 1]]`` (``values``
    finite, buckets non-empty and of sizes that differ by at most a few points), as
    ``np.median`` gives it, computed for all buckets at once."""
    sizes = np.diff(edges)
    buckets = sizes.shape[0]
    size = int(sizes[0])
    if size * buckets == values.shape[0] and edges[0] == 0 and (sizes == size).all():
        rows = np.sort(values.reshape(buckets, size), axis=1)  # buckets of one size
        low, high = rows[:, (size - 1) // 2], rows[:, size // 2]
        return np.asarray(low if size % 2 else (low + high) / 2, dtype=np.float64)
    grid = np.full((buckets, int(sizes.max())), np.inf)
    rows = np.repeat(np.arange(buckets), sizes)
    grid[rows, np.arange(values.shape[0]) - np.repeat(edges[:-1], sizes)] = values
    grid.sort(axis=1)  # the padding (+inf) sorts after every value
    at = np.arange(buckets)
    low, high = grid[at, (sizes - 1) // 2], grid[at, sizes // 2]
    return np.asarray(np.where(sizes % 2 == 1, low, (low + high) / 2), dtype=np.float64)


@lru_cache(maxsize=64)
def even_edges(n: int, buckets: int) -> IntArray:
    """Return the ``buckets + 1`` edges that cut ``n`` points into buckets of (nearly) one
    size, as ``np.linspace(0, n, buckets + 1)`` truncated to integers (read-only: kept
    for the next series of the same length)."""
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    edges.flags.writeable = False
    return edges


def band_passes(levels: FloatArray, low: float, high: float) -> int:
    """Return how many times ``levels`` pass from at or below ``low`` to at or above
    ``high`` or back (a pass counts once the other band is reached, so wiggles around one
    threshold do not count).  A fall then a rise gives 2; a swing between the two bands
    gives 2 a period."""
    # 1 at or above the high band, -1 at or below the low one (when they overlap: 1)
    above = levels >= high
    below = levels <= low
    np.greater(below, above, out=below)  # below and not above
    state = above.view(np.int8) - below.view(np.int8)
    banded = state[state != 0]
    return int(np.count_nonzero(banded[1:] != banded[:-1])) if banded.size > 1 else 0
