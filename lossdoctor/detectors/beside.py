"""Evidence from the signals beside a loss series, shared by the detectors whose rules rank
their causes with it: the gradient norm at the loss's events, fp16 and overflow-skipped
steps, and epoch boundaries.  Pure functions of series views, like the detectors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lossdoctor.detectors.epochs import MIN_POINTS_PER_EPOCH, STEPS_PER_EPOCH
from lossdoctor.features import SeriesView
from lossdoctor.model import OVERFLOW_SKIPS, PRECISION, BoolArray, FloatArray


@dataclass(frozen=True)
class Precision:
    """What the run says about its number format: fp16, and the steps an overflow broke."""

    #: True when the log or its configuration says the run trains in fp16.
    fp16: bool
    #: Steps the loss scaler skipped on overflow, as the log's own lines say.
    overflow_skips: int
    #: Logged gradient norms that are NaN or Inf (an overflowed step).
    grad_non_finite: int


def precision(loss: SeriesView, grad_norm: SeriesView | None = None) -> Precision:
    """Return the precision facts of the run ``loss`` belongs to: fp16 and overflow-skipped
    steps from the series' meta (what the reader found in the log), and the count of
    non-finite gradient norms (points)."""
    meta = loss.series.meta
    skips = meta.get(OVERFLOW_SKIPS, "")
    grad_bad = 0
    if grad_norm is not None:
        grad_bad = len(grad_norm.series) - grad_norm.n_finite
    return Precision(
        fp16=meta.get(PRECISION, "") == "fp16",
        overflow_skips=int(skips) if skips.isdigit() else 0,
        grad_non_finite=grad_bad,
    )


def log_interval(view: SeriesView) -> float:
    """Return the median distance between logged steps (steps; NaN below two points)."""
    return float(np.median(np.diff(view.steps))) if view.n > 1 else float("nan")


def grad_ratio_over_spans(
    grad_norm: SeriesView | None, starts: FloatArray, ends: FloatArray, slack: float
) -> FloatArray:
    """Return, for each step span [start - slack, end + slack], the largest gradient norm
    logged in it as a multiple of the norm's local typical size (its rolling median); NaN
    where no finite norm is logged in the span or the norm is not positive throughout."""
    out = np.full(starts.shape, np.nan)
    if grad_norm is None or grad_norm.n == 0 or not grad_norm.log_space or not starts.size:
        return out
    steps = grad_norm.steps
    ratio = np.exp(grad_norm.resid)
    slack = slack if np.isfinite(slack) else 0.0
    lo = np.searchsorted(steps, starts - slack, side="left")
    hi = np.searchsorted(steps, ends + slack, side="right")
    has = hi > lo
    if has.any():
        # max over each [lo, hi): reduceat over (lo, hi) pairs, every other result kept
        bounds = np.column_stack([lo[has], hi[has]]).ravel()
        out[has] = np.maximum.reduceat(np.concatenate((ratio, [-np.inf])), bounds)[::2]
    return out


def at_epoch_boundary(loss: SeriesView, steps: FloatArray) -> BoolArray:
    """Return True for each step within one logging interval of an epoch boundary (a whole
    multiple of the steps one epoch takes, from the series' meta); all False when the reader
    does not know the epoch length or an epoch holds fewer than six logged points."""
    raw = loss.series.meta.get(STEPS_PER_EPOCH, "")
    per_epoch = float(raw) if raw else float("nan")
    interval = log_interval(loss)
    if not (per_epoch > 0 and interval > 0 and per_epoch >= MIN_POINTS_PER_EPOCH * interval):
        return np.zeros(steps.shape, dtype=bool)
    epoch = np.round(steps / per_epoch)
    return np.asarray((epoch >= 1) & (np.abs(steps - epoch * per_epoch) <= interval))
