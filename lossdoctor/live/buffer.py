"""Bounded point storage for endless streams that keeps the shape of the whole run.

Three parts, whatever the length of the stream:

- the **start**: the first :data:`HEAD` points at full resolution (the early drop);
- the **recent window**: the last :data:`RECENT` points at full resolution;
- the **middle**: summaries of equal runs of consecutive points (a bucket), each with
  its first point, its lowest and highest points and its first non-finite one.  When
  there are more than :data:`MAX_BUCKETS` buckets, neighbours are merged two by two:
  the merged minimum and maximum are exact (the minimum of two minima), so the middle's
  resolution is the same everywhere and nothing decays by thinning thinned points again.

The run is judged on the start, one point per middle bucket (its first point, or its
lowest or highest point when that stands far off the trend, as ``check`` samples long
runs, see :mod:`lossdoctor.sampling`), every bucket's first non-finite point, and the
recent window.  Memory: about ``8 * (2 * (HEAD + RECENT + FOLD) + 7 * MAX_BUCKETS)``
bytes per series (under 1 MiB; the recent window also holds up to one bucket of points
waiting to be folded, 2,000 points per bucket after 16 million points).
"""

from __future__ import annotations

from array import array

import numpy as np

from lossdoctor.model import FloatArray
from lossdoctor.robust import robust_sigma, rolling_median
from lossdoctor.sampling import OUTLIER_FLOOR, OUTLIER_Z, SAMPLE_TREND_WINDOW

#: First points kept at full resolution.
HEAD = 1000
#: Last points kept at full resolution.
RECENT = 4096
#: Points moved from the recent window into the middle at a time (at the least).
FOLD = 4096
#: Middle buckets kept at most (two neighbours merge beyond it).
MAX_BUCKETS = 8192
_FIELDS = ("first_s", "first_v", "lo_s", "lo_v", "hi_s", "hi_v", "bad_s")


class PointBuffer:
    """Appends (step, value) points; memory stays bounded however many arrive."""

    def __init__(self, head: int = HEAD, recent: int = RECENT, max_buckets: int = MAX_BUCKETS):
        self.head_size, self.recent_size, self.max_buckets = head, recent, max_buckets
        self.head_steps, self.head_values = array("d"), array("d")
        self.steps, self.values = array("d"), array("d")  # the recent window
        self.mid = {name: np.empty(0) for name in _FIELDS}
        #: Points per middle bucket (doubles at each merge).
        self.bucket = 1
        #: Points appended in all.
        self.total = 0

    def append(self, step: float, value: float) -> None:
        """Add one point."""
        if len(self.head_values) < self.head_size:
            self.extend([step], [value])
            return
        self.total += 1
        self.steps.append(step)
        self.values.append(value)
        if len(self.values) >= self.recent_size + max(min(FOLD, self.recent_size), self.bucket):
            self._fold()

    def extend(self, steps: list[float], values: list[float]) -> None:
        """Add many points (in arrival order)."""
        self.total += len(values)
        room = self.head_size - len(self.head_values)
        if room > 0:
            self.head_steps.extend(steps[:room])
            self.head_values.extend(values[:room])
            steps, values = steps[room:], values[room:]
        self.steps.extend(steps)
        self.values.extend(values)
        if len(self.values) >= self.recent_size + max(min(FOLD, self.recent_size), self.bucket):
            self._fold()

    def _fold(self) -> None:
        count = (len(self.values) - self.recent_size) // self.bucket * self.bucket
        if count <= 0:
            return
        steps = np.frombuffer(self.steps, dtype=np.float64)[:count].reshape(-1, self.bucket)
        values = np.frombuffer(self.values, dtype=np.float64)[:count].reshape(-1, self.bucket)
        new = _summarise(steps, values)
        del steps, values  # release the views before the arrays shrink
        del self.steps[:count]
        del self.values[:count]
        for name in _FIELDS:
            self.mid[name] = np.concatenate([self.mid[name], new[name]])
        while self.mid["first_s"].shape[0] > self.max_buckets:
            self.mid = _merge_pairs(self.mid)
            self.bucket *= 2

    def arrays(self) -> tuple[FloatArray, FloatArray]:
        """Return the (steps, values) the run is judged on, in arrival order."""
        mid_s, mid_v = _judged(self.mid)
        steps = np.concatenate([np.frombuffer(self.head_steps), mid_s, np.frombuffer(self.steps)])
        values = np.concatenate(
            [np.frombuffer(self.head_values), mid_v, np.frombuffer(self.values)]
        )
        return steps.astype(np.float64), values.astype(np.float64)

    def __len__(self) -> int:
        return len(self.head_values) + int(self.mid["first_s"].shape[0]) + len(self.values)


def _summarise(steps: FloatArray, values: FloatArray) -> dict[str, FloatArray]:
    """Return the bucket summaries of rows of consecutive points."""
    finite = np.isfinite(values)
    rows = np.arange(values.shape[0])
    low = np.argmin(np.where(finite, values, np.inf), axis=1)
    high = np.argmax(np.where(finite, values, -np.inf), axis=1)
    any_finite = finite.any(axis=1)
    bad = ~finite
    first_bad = np.argmax(bad, axis=1)
    nan = np.full(rows.shape[0], np.nan)
    return {
        "first_s": steps[:, 0].copy(),
        "first_v": values[:, 0].copy(),
        "lo_s": np.where(any_finite, steps[rows, low], nan),
        "lo_v": np.where(any_finite, values[rows, low], nan),
        "hi_s": np.where(any_finite, steps[rows, high], nan),
        "hi_v": np.where(any_finite, values[rows, high], nan),
        "bad_s": np.where(bad.any(axis=1), steps[rows, first_bad], nan),
    }


def _merge_pairs(mid: dict[str, FloatArray]) -> dict[str, FloatArray]:
    """Return the buckets merged two by two (an odd last bucket stays as it is)."""
    size = mid["first_s"].shape[0]
    pairs = size // 2 * 2
    left = {k: v[:pairs:2] for k, v in mid.items()}
    right = {k: v[1:pairs:2] for k, v in mid.items()}
    take_low = np.isnan(left["lo_v"]) | (right["lo_v"] < left["lo_v"])
    take_high = np.isnan(left["hi_v"]) | (right["hi_v"] > left["hi_v"])
    merged = {
        "first_s": left["first_s"],
        "first_v": left["first_v"],
        "lo_s": np.where(take_low, right["lo_s"], left["lo_s"]),
        "lo_v": np.where(take_low, right["lo_v"], left["lo_v"]),
        "hi_s": np.where(take_high, right["hi_s"], left["hi_s"]),
        "hi_v": np.where(take_high, right["hi_v"], left["hi_v"]),
        "bad_s": np.where(np.isnan(left["bad_s"]), right["bad_s"], left["bad_s"]),
    }
    return {k: np.concatenate([v, mid[k][pairs:]]) for k, v in merged.items()}


def _judged(mid: dict[str, FloatArray]) -> tuple[FloatArray, FloatArray]:
    """Return one point per middle bucket (its first point, or its lowest or highest when
    that stands more than OUTLIER_Z robust deviations off the trend of the first points)
    and each bucket's first non-finite point."""
    first_s, first_v = mid["first_s"], mid["first_v"]
    if first_s.shape[0] == 0:
        return first_s, first_v
    steps, values = first_s.copy(), first_v.copy()
    finite = np.isfinite(first_v)
    if finite.sum() >= 3:
        log_space = bool(np.nanmin(mid["lo_v"]) > 0)
        y = np.log(first_v[finite]) if log_space else first_v[finite]
        trend = np.full(first_v.shape[0], np.nan)
        trend[finite] = rolling_median(y, min(SAMPLE_TREND_WINDOW, int(finite.sum()) | 1))
        trend = np.where(np.isnan(trend), np.interp(first_s, first_s[finite], trend[finite]), trend)
        sigma = robust_sigma(y - trend[finite])
        floor = OUTLIER_FLOOR if log_space else OUTLIER_FLOOR * float(np.median(np.abs(y)))
        bar = max(OUTLIER_Z * sigma, floor)
        with np.errstate(all="ignore"):
            lo = np.log(mid["lo_v"]) if log_space else mid["lo_v"]
            hi = np.log(mid["hi_v"]) if log_space else mid["hi_v"]
            up, down = hi - trend, trend - lo
        up, down = np.nan_to_num(up, nan=-np.inf), np.nan_to_num(down, nan=-np.inf)
        use_high = (up > bar) & (up >= down)
        use_low = (down > bar) & ~use_high
        steps = np.where(use_high, mid["hi_s"], np.where(use_low, mid["lo_s"], steps))
        values = np.where(use_high, mid["hi_v"], np.where(use_low, mid["lo_v"], values))
    bad = ~np.isnan(mid["bad_s"]) & (mid["bad_s"] != steps)
    if bad.any():
        order = np.argsort(
            np.concatenate([np.arange(steps.shape[0]), np.flatnonzero(bad)]), kind="stable"
        )
        steps = np.concatenate([steps, mid["bad_s"][bad]])[order]
        values = np.concatenate([values, np.full(int(bad.sum()), np.nan)])[order]
    return steps, values
