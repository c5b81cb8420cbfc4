"""Array helpers where numpy's own would import ``numpy.ma`` on first use.

numpy 2's ``np.unique`` (and so ``np.quantile``) asks ``np.ma.is_masked``, which imports
``numpy.ma``: tens of milliseconds of every check's start-up for nothing.
"""

from __future__ import annotations

import numpy as np

from lossdoctor.model import FloatArray, IntArray


def unique_ints(values: IntArray) -> IntArray:
    """Return the distinct values of the integer array ``values``, sorted: what
    ``np.unique`` gives for it."""
    ordered = np.sort(values, axis=None)
    if not ordered.shape[0]:
        return ordered
    keep = np.empty(ordered.shape[0], dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def all_finite(values: FloatArray) -> bool:
    """Return True when no value of ``values`` is NaN or infinite.  Their sum is finite
    only then, and is taken without a mask of every value (a 10,000,000-point series'
    mask costs more than its sum); a sum that overflows is checked value by value."""
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.add.reduce(values, axis=None)):
            return True
    return bool(np.isfinite(values).all())
