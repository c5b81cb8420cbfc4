"""A loss of exactly 0.0: nothing is being trained, or a numeric failure is hidden."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lossdoctor.detectors import Evidence, register_detector
from lossdoctor.features import SeriesView
from lossdoctor.model import BoolArray
from lossdoctor.robust import median

#: Points before the longest zero stretch whose median is the level the loss fell from.
BEFORE_POINTS = 5


@dataclass(frozen=True)
class ZeroLoss:
    """Where the loss is exactly 0.0 and what the gradient norm does there."""

    zero_points: int
    zero_share: float
    longest_zero_run: int
    zero_from_start: bool
    grad_logged: bool
    grad_zero_share: float
    grad_nonfinite_share: float
    level_before: float
    first_step: float
    last_step: float
    evidence: Evidence


def longest_true_run(mask: BoolArray) -> tuple[int, int]:
    """Return (length in points, start index) of the longest run of True in ``mask``
    ((0, -1) when there is none)."""
    if not mask.any():
        return 0, -1
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    starts, ends = edges[0::2], edges[1::2]
    lengths = ends - starts
    best = int(np.argmax(lengths))
    return int(lengths[best]), int(starts[best])


@register_detector("zero_loss")
def zero_loss(train: SeriesView, grad_norm: SeriesView | None = None) -> ZeroLoss:
    """Return how many logged losses are exactly 0.0 (points and share 0-1 of all points),
    the longest stretch of them (points), whether the run starts with one, and the share
    (0-1) of the gradient norms logged at those steps that are exactly 0.0 or non-finite
    (NaN when no gradient norm is logged), and the loss just before the longest stretch
    (median of the 5 non-zero points before it; NaN when the run starts at 0.0)."""
    values = train.series.values
    steps = train.series.steps
    n = values.shape[0]
    # a loss above zero everywhere (told in one pass) holds no zero to look for
    zero = np.zeros(0, dtype=bool) if train.all_positive else values == 0.0
    count = int(np.count_nonzero(zero))
    longest, start = longest_true_run(zero)
    nan = float("nan")
    grad_zero = grad_bad = nan
    logged = grad_norm is not None and len(grad_norm.series) > 0
    if count and grad_norm is not None and logged:
        g_steps, g_values = grad_norm.series.steps, grad_norm.series.values
        at_zero = np.isin(g_steps, steps[zero])
        if at_zero.any():
            g = g_values[at_zero]
            grad_zero = float(np.count_nonzero(g == 0.0) / g.shape[0])
            grad_bad = float(np.count_nonzero(~np.isfinite(g)) / g.shape[0])
    level_before = nan
    if longest and start > 0:
        before = values[max(0, start - BEFORE_POINTS) : start]
        before = before[np.isfinite(before) & (before != 0.0)]
        level_before = median(before) if before.shape[0] else nan
    first = float(steps[start]) if longest else nan
    last = float(steps[start + longest - 1]) if longest else nan
    evidence = Evidence(
        series=train.series.role,
        column=train.series.column,
        start_step=None if not longest else first,
        end_step=None if not longest else last,
        line=train.series.line_of(start) if longest else None,
        numbers={"zero_points": count, "longest_zero_run": longest},
    )
    return ZeroLoss(
        zero_points=count,
        zero_share=count / n if n else 0.0,
        longest_zero_run=longest,
        zero_from_start=bool(count and zero[0]),
        grad_logged=logged,
        grad_zero_share=grad_zero,
        grad_nonfinite_share=grad_bad,
        level_before=level_before,
        first_step=first,
        last_step=last,
        evidence=evidence,
    )
