"""Robust statistics on whole numpy arrays: spread (MAD) and a centred rolling median."""

from __future__ import annotations

import numpy as np

from lossdoctor.model import FloatArray

#: MAD -> standard deviation of a normal distribution.
MAD_TO_SIGMA = 1.4826


def robust_sigma(values: FloatArray) -> float:
    """Return 1.4826 x the median absolute deviation of ``values`` (0.0 when empty)."""
    if values.shape[0] == 0:
        return 0.0
    return float(MAD_TO_SIGMA * np.median(np.abs(values - np.median(values))))


def rolling_median(values: FloatArray, window: int) -> FloatArray:
    """Return the centred rolling median of ``values`` over ``window`` points (edges shrink)."""
    if values.shape[0] == 0:
        return values.copy()
    import bottleneck

    half = window // 2
    # bottleneck's moving median is trailing and skips NaN: pad the end with NaN and
    # shift by half a window to get pandas' centred median with shrinking edges
    padded = np.concatenate([values.astype(np.float64), np.full(half, np.nan)])
    trailing = bottleneck.move_median(padded, window=window, min_count=1)
    return np.asarray(trailing[half:], dtype=np.float64)
