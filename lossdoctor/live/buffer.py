"""Bounded point storage for endless streams: full resolution for the recent points,
min/max buckets for the rest (so spikes and NaN survive the decimation)."""

from __future__ import annotations

import numpy as np

from lossdoctor.model import FloatArray

#: Points kept before the oldest part is decimated.
CAPACITY = 200_000
#: Points at the end never decimated.
RECENT = 50_000
#: Older points are folded into buckets of this many (two kept per bucket: min and max).
BUCKET = 8


class PointBuffer:
    """Appends (step, value) pairs; memory stays below ``capacity`` points."""

    def __init__(self, capacity: int = CAPACITY, recent: int = RECENT) -> None:
        self.capacity = capacity
        self.recent = recent
        self.steps: list[float] = []
        self.values: list[float] = []
        self.total = 0

    def append(self, step: float, value: float) -> None:
        """Add one point."""
        self.steps.append(step)
        self.values.append(value)
        self.total += 1
        if len(self.values) > self.capacity:
            self._decimate()

    def extend(self, steps: list[float], values: list[float]) -> None:
        """Add many points."""
        self.steps.extend(steps)
        self.values.extend(values)
        self.total += len(values)
        if len(self.values) > self.capacity:
            self._decimate()

    def _decimate(self) -> None:
        old = len(self.values) - self.recent
        usable = old - old % BUCKET
        steps = np.asarray(self.steps[:usable], dtype=np.float64).reshape(-1, BUCKET)
        values = np.asarray(self.values[:usable], dtype=np.float64).reshape(-1, BUCKET)
        finite = np.where(np.isfinite(values), values, np.nan)
        bad = ~np.isfinite(values)
        with np.errstate(all="ignore"):
            lo = np.nanargmin(np.where(np.isnan(finite).all(1, keepdims=True), 0, finite), axis=1)
            hi = np.nanargmax(np.where(np.isnan(finite).all(1, keepdims=True), 0, finite), axis=1)
        # a bucket holding a NaN keeps the NaN in place of its min (spikes are maxima)
        lo = np.where(bad.any(1), np.argmax(bad, axis=1), lo)
        rows = np.arange(steps.shape[0])
        first, second = np.minimum(lo, hi), np.maximum(lo, hi)
        pairs_s = np.stack([steps[rows, first], steps[rows, second]], axis=1).ravel()
        pairs_v = np.stack([values[rows, first], values[rows, second]], axis=1).ravel()
        keep = np.ones(pairs_s.shape[0], dtype=bool)
        keep[1::2] = first != second
        self.steps = pairs_s[keep].tolist() + self.steps[usable:]
        self.values = pairs_v[keep].tolist() + self.values[usable:]

    def arrays(self) -> tuple[FloatArray, FloatArray]:
        """Return (steps, values) as arrays."""
        return np.asarray(self.steps, dtype=np.float64), np.asarray(self.values, dtype=np.float64)

    def __len__(self) -> int:
        return len(self.values)
