"""The gradient norm as a signal: non-finite values and spikes, scale-free."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lossdoctor.detectors import MAX_MARKS, Evidence, register_detector
from lossdoctor.detectors.zeroloss import longest_true_run
from lossdoctor.features import SeriesView
from lossdoctor.robust import median

#: Logged loss points after the first non-finite gradient norm that are searched for a
#: loss of 0.0 or NaN (the trainer's response to a broken step).
FOLLOW_POINTS = 3
#: Finite loss points on each side of the non-finite gradient norms compared to tell
#: whether the loss kept falling.
SIDE_POINTS = 10


@dataclass(frozen=True)
class GradNonFinite:
    """NaN/Inf gradient norms: how many, how clustered, and what the loss did."""

    count: int
    share: float
    longest_run: int
    to_the_end: bool
    loss_broken_after: bool
    loss_kept_falling: bool
    first_step: float
    last_step: float
    evidence: Evidence


def _side_median(values: np.ndarray, steps: np.ndarray, at: float, *, after: bool) -> float:
    finite = np.isfinite(values) & (values != 0.0)
    mask = finite & ((steps > at) if after else (steps < at))
    picked = values[mask]
    picked = picked[:SIDE_POINTS] if after else picked[-SIDE_POINTS:]
    return median(picked) if picked.shape[0] else float("nan")


@register_detector("grad_nonfinite")
def grad_nonfinite(grad_norm: SeriesView, train: SeriesView | None = None) -> GradNonFinite:
    """Return the number (points) and share (0-1) of NaN/Inf gradient norms logged where the
    loss is finite (a NaN loss at the same step is the non-finite rule's), their longest
    consecutive stretch (points), whether they last to the end, whether the loss turns
    0.0 or NaN within 3 logged points of the first one, and whether the loss 10 points
    after the last one is no higher than 10 points before the first (it kept falling)."""
    values = grad_norm.series.values
    steps = grad_norm.series.steps
    bad = ~np.isfinite(values)
    if train is not None and len(train.series):
        # where the loss itself is NaN/Inf at the same step, non-finite reports it
        loss_bad_steps = train.series.steps[~np.isfinite(train.series.values)]
        bad &= ~np.isin(steps, loss_bad_steps)
    count = int(np.count_nonzero(bad))
    nan = float("nan")
    first = last = nan
    longest, _ = longest_true_run(bad)
    to_end = broken = falling = False
    if count:
        first_i = int(np.argmax(bad))
        first, last = float(steps[first_i]), float(steps[np.flatnonzero(bad)[-1]])
        to_end = bool(bad[first_i:].all())
        if train is not None and len(train.series):
            loss, loss_steps = train.series.values, train.series.steps
            after = loss[loss_steps >= first][:FOLLOW_POINTS]
            broken = bool(((after == 0.0) | ~np.isfinite(after)).any())
            before_level = _side_median(loss, loss_steps, first, after=False)
            after_level = _side_median(loss, loss_steps, last, after=True)
            falling = bool(after_level <= before_level)
    marks = tuple((float(s), 0.0) for s in steps[bad][:MAX_MARKS])
    evidence = Evidence(
        series=grad_norm.series.role,
        column=grad_norm.series.column,
        start_step=None if not count else first,
        end_step=None if not count else last,
        line=grad_norm.series.line_of(int(np.argmax(bad))) if count else None,
        numbers={"non_finite": count, "longest_run": longest},
        marks=marks,
    )
    return GradNonFinite(
        count=count,
        share=count / values.shape[0] if values.shape[0] else 0.0,
        longest_run=longest,
        to_the_end=to_end,
        loss_broken_after=broken,
        loss_kept_falling=falling,
        first_step=first,
        last_step=last,
        evidence=evidence,
    )


@dataclass(frozen=True)
class GradNormSpikes:
    """Spikes of the gradient norm relative to its typical size, and the loss at them."""

    count: int
    clear_count: int
    max_score: float
    worst_step: float
    worst_value: float
    typical: float
    with_loss_spike: int
    evidence: Evidence


@register_detector("grad_norm_spikes")
def grad_norm_spikes(
    grad_norm: SeriesView,
    train: SeriesView | None = None,
    *,
    mild_score: float = 10.0,
    clear_score: float = 50.0,
    loss_ratio: float = 1.5,
    min_points: int = 20,
    skip_first: int = 10,
) -> GradNormSpikes:
    """Return the gradient-norm spikes: points whose norm is at least ``mild_score`` times
    the typical norm around them (the rolling median of |g|: SPAM's |g|/mean|g| score made
    robust and local; the first ``skip_first`` points, where norms start large, are not
    scored), how many reach ``clear_score`` times, the worst score (x typical) and its
    step, and how many spikes coincide with a loss at least ``loss_ratio`` times its local
    trend at the same logged step (a co-spike)."""
    nan = float("nan")
    g = np.abs(grad_norm.values)
    steps = grad_norm.steps
    empty = Evidence(series=grad_norm.series.role, column=grad_norm.series.column)
    if grad_norm.n < min_points:
        return GradNormSpikes(0, 0, nan, nan, nan, nan, 0, empty)
    typical = median(g)
    if typical <= 0:
        return GradNormSpikes(0, 0, nan, nan, nan, typical, 0, empty)
    # the local typical norm (rolling median) follows the large norms of the first steps,
    # which are not spikes; a single spike does not move it
    local = np.exp(grad_norm.trend) if grad_norm.log_space else np.full(g.shape, typical)
    score = g / np.where(local > 0, local, typical)
    score[: min(skip_first, grad_norm.n // 10)] = 0.0
    spike = score >= mild_score
    count = int(np.count_nonzero(spike))
    clear = int(np.count_nonzero(score >= clear_score))
    worst = int(np.argmax(score))
    co = 0
    if count and train is not None and train.n and train.log_space:
        ratio = np.exp(train.resid)
        loss_spike_steps = train.steps[ratio >= loss_ratio]
        co = int(np.count_nonzero(np.isin(steps[spike], loss_spike_steps)))
    marks = tuple((float(s), float(v)) for s, v in zip(steps[spike], g[spike], strict=True))
    evidence = Evidence(
        series=grad_norm.series.role,
        column=grad_norm.series.column,
        start_step=float(steps[worst]) if count else None,
        line=grad_norm.series.line_of(int(grad_norm.index[worst])) if count else None,
        numbers={
            "spikes": count,
            "typical_grad_norm": typical,
            "max_score": float(score[worst]),
            "with_loss_spike": co,
        },
        marks=marks[:MAX_MARKS],
    )
    return GradNormSpikes(
        count=count,
        clear_count=clear,
        max_score=float(score[worst]),
        worst_step=float(steps[worst]),
        worst_value=float(g[worst]),
        typical=typical,
        with_loss_spike=co,
        evidence=evidence,
    )
