"""Min/max bucket decimation: fewer points to draw, with spikes and NaN kept."""

from __future__ import annotations

import numpy as np

from lossdoctor.arrays import unique_ints
from lossdoctor.model import FloatArray


def minmax_decimate(
    steps: FloatArray, values: FloatArray, buckets: int
) -> tuple[FloatArray, FloatArray]:
    """Return at most ``2 * buckets`` points: per bucket of consecutive points, the lowest
    and the highest value (in step order), with the first non-finite value of a bucket
    in place of its lowest."""
    n = values.shape[0]
    if n <= 2 * buckets:
        return steps, values
    size = -(-n // buckets)
    if np.isfinite(values).all():
        return _minmax_finite(steps, values, size)
    rows = -(-n // size)
    padded = np.full(rows * size, np.nan)
    padded[:n] = values
    grid = padded.reshape(rows, size)
    real = np.zeros(rows * size, dtype=bool)
    real[:n] = True
    real_grid = real.reshape(rows, size)
    bad = ~np.isfinite(grid) & real_grid
    finite = np.where(np.isfinite(grid), grid, np.nan)
    has_finite: np.ndarray = np.asarray(~np.isnan(finite).all(axis=1))
    safe = np.where(has_finite[:, None], finite, 0.0)
    low = np.nanargmin(np.where(np.isnan(safe), np.inf, safe), axis=1)
    high = np.nanargmax(np.where(np.isnan(safe), -np.inf, safe), axis=1)
    low = np.where(bad.any(axis=1), np.argmax(bad, axis=1), low)
    offsets = np.arange(rows) * size
    keep_low = has_finite | bad.any(axis=1)
    picks = np.concatenate([(offsets + low)[keep_low], (offsets + high)[has_finite]])
    picks = unique_ints(picks[picks < n])
    return steps[picks], values[picks]


def _minmax_finite(
    steps: FloatArray, values: FloatArray, size: int
) -> tuple[FloatArray, FloatArray]:
    """Return :func:`minmax_decimate` of finite ``values`` in buckets of ``size`` points,
    without copying them."""
    n = values.shape[0]
    whole = n // size
    grid = values[: whole * size].reshape(whole, size)
    offsets = np.arange(whole, dtype=np.int64) * size
    picks = [offsets + grid.argmin(axis=1), offsets + grid.argmax(axis=1)]
    if whole * size < n:
        tail = values[whole * size :]
        picks.append(np.array([whole * size + tail.argmin(), whole * size + tail.argmax()]))
    chosen = unique_ints(np.concatenate(picks))
    return steps[chosen], values[chosen]
