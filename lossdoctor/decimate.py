"""Min/max bucket decimation: fewer points to draw, with spikes and NaN kept."""

from __future__ import annotations

import itertools

import numpy as np

from lossdoctor.model import FloatArray


def minmax_decimate(
    steps: FloatArray, values: FloatArray, buckets: int
) -> tuple[FloatArray, FloatArray]:
    """Return at most ``2 * buckets`` points: per bucket of consecutive points, the lowest
    and the highest value (in step order), and the first non-finite value in place of the
    lowest when the bucket has one."""
    n = values.shape[0]
    if n <= 2 * buckets:
        return steps, values
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    bad = ~np.isfinite(values)
    finite = np.where(bad, np.nan, values)
    out_steps: list[float] = []
    out_values: list[float] = []
    with np.errstate(all="ignore"):
        for start, end in itertools.pairwise(edges.tolist()):
            chunk = finite[start:end]
            picks = []
            if bad[start:end].any():
                picks.append(start + int(np.argmax(bad[start:end])))
            if not np.isnan(chunk).all():
                lo, hi = start + int(np.nanargmin(chunk)), start + int(np.nanargmax(chunk))
                picks += [hi] if picks else [lo, hi]
            for index in sorted(set(picks)):
                out_steps.append(float(steps[index]))
                out_values.append(float(values[index]))
    return np.asarray(out_steps), np.asarray(out_values)
