"""A one-line sparkline of a series, bucketed so spikes and NaN survive downsampling."""

from __future__ import annotations

import numpy as np

from lossdoctor.model import BoolArray, FloatArray
from lossdoctor.robust import even_edges

BLOCKS = "▁▂▃▄▅▆▇█"
NAN_MARK = "×"
_GLYPHS = BLOCKS + NAN_MARK


def sparkline(
    values: FloatArray,
    width: int = 48,
    *,
    log: bool = False,
    finite: BoolArray | bool | None = None,
) -> str:
    """Return ``values`` drawn as at most ``width`` block characters (``finite``: which
    values are finite, when known; True: every value is, no mask is needed).

    Each character is one bucket of points, drawn at the bucket's maximum (so a
    one-point spike shows); a bucket holding NaN or Inf is drawn as ``×``.
    """
    n = values.shape[0]
    if n == 0:
        return ""
    buckets = min(width, n)
    edges = even_edges(n, buckets)
    if finite is True:
        has_bad = np.zeros(buckets, dtype=bool)
    else:
        finite = np.isfinite(values) if finite is None or finite is False else finite
        has_bad = ~np.logical_and.reduceat(finite, edges[:-1])
    # fmax skips NaN; a bucket holding +Inf is drawn as a mark whatever its top
    tops = np.fmax.reduceat(values, edges[:-1])
    with np.errstate(all="ignore"):
        tops = np.log(np.where(tops > 0, tops, np.nan)) if log else tops
    good = np.isfinite(tops)
    if not good.any():
        return str(NAN_MARK * buckets)
    drawn = tops if good.all() else tops[good]
    low, high = float(drawn.min()), float(drawn.max())
    scale = (high - low) or 1.0
    levels = ((tops - low) / scale * (len(BLOCKS) - 1)).round()
    levels = np.minimum(np.maximum(levels, 0), len(BLOCKS) - 1)  # np.clip's, NaN kept
    glyphs = np.where(has_bad | ~good, len(BLOCKS), levels).astype(np.int64)
    return "".join([_GLYPHS[i] for i in glyphs.tolist()])
