"""Non-finite values hidden from the loss column: NaN gradient norms, a loss stuck at 0.0."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lossdoctor.detectors import Evidence, register_detector
from lossdoctor.features import SeriesView

#: A loss that falls below this (nats) before it reads 0.0 was rounded by the logger.
ROUNDED_BELOW = 0.01


@dataclass(frozen=True)
class MaskedNonFinite:
    """Signs of NaN that the logger filtered out of the loss."""

    grad_nonfinite: int
    grad_share: float
    grad_to_the_end: bool
    zero_after_nonzero: int
    first_step: float
    evidence: Evidence


@register_detector("masked_non_finite")
def masked_non_finite(train: SeriesView, grad_norm: SeriesView | None = None) -> MaskedNonFinite:
    """Return the number (points) and share (0-1) of non-finite gradient norms logged beside
    a finite loss, whether they
    last to the end of the run, and how many loss values are exactly 0.0 after a non-zero
    loss (Hugging Face's NaN filter and broken fp16 runs log that); zeros where the gradient
    norm is 0.0 too (nothing to learn: zero-loss) or after the loss glided below 0.01
    (rounding) are not counted."""
    losses = train.series.values
    zero_count, zero_step = _zeros_after_nonzero(train, grad_norm)
    grad_bad = 0
    share = 0.0
    to_end = False
    first_step = float("nan")
    if grad_norm is not None and len(grad_norm.series):
        # a gradient norm is masked only where the loss logged beside it is finite: a NaN
        # loss at the same step is shown (and judged) by itself
        loss_bad_steps = (
            train.series.steps[~train.finite_mask]
            if train.n_finite < losses.shape[0]
            else train.series.steps[:0]
        )
        bad = ~np.isfinite(grad_norm.series.values)
        bad &= ~np.isin(grad_norm.series.steps, loss_bad_steps)
        grad_bad = int(bad.sum())
        share = grad_bad / bad.shape[0]
        if grad_bad:
            first = int(np.argmax(bad))
            to_end = bool(bad[first:].all())
            first_step = float(grad_norm.series.steps[first])
    if np.isnan(first_step) and zero_count:
        first_step = zero_step
    evidence = Evidence(
        series=train.series.role,
        column=train.series.column,
        start_step=None if np.isnan(first_step) else first_step,
        numbers={"grad_norm_nonfinite": grad_bad, "loss_exactly_zero": zero_count},
    )
    return MaskedNonFinite(
        grad_nonfinite=grad_bad,
        grad_share=share,
        grad_to_the_end=to_end,
        zero_after_nonzero=zero_count,
        first_step=first_step,
        evidence=evidence,
    )


def _zeros_after_nonzero(train: SeriesView, grad_norm: SeriesView | None) -> tuple[int, float]:
    """Return how many loss values are exactly 0.0 after a non-zero loss (not counting those
    where the gradient norm is 0.0 too, nor those after the loss glided below
    :data:`ROUNDED_BELOW`) and the step of the first of them (NaN: none).  A loss with no
    0.0 at all is found so in one look (a 10,000,000-point loss: a tenth of the work)."""
    losses = train.series.values
    if train.all_positive or not (losses == 0.0).any():
        return 0, float("nan")
    nonzero = (losses != 0.0) & ~np.isnan(losses)
    first_nonzero = int(np.argmax(nonzero)) if nonzero.any() else losses.shape[0]
    zeros_after = losses[first_nonzero + 1 :] == 0.0
    if zeros_after.any():
        # the last non-zero loss before each zero: a loss that glided below ROUNDED_BELOW
        # was rounded to 0.0 by the logger, not filtered
        zero_at = np.flatnonzero(zeros_after)
        nonzero_at = np.flatnonzero(nonzero)
        before = nonzero_at[np.searchsorted(nonzero_at, zero_at + first_nonzero + 1) - 1]
        zeros_after[zero_at[np.abs(losses[before]) < ROUNDED_BELOW]] = False
    if grad_norm is not None and len(grad_norm.series):
        # a gradient norm of exactly 0.0 with the loss means nothing to learn (zero-loss)
        at = train.series.steps[first_nonzero + 1 :]
        grad_zero_steps = grad_norm.series.steps[grad_norm.series.values == 0.0]
        zeros_after &= ~np.isin(at, grad_zero_steps)
    zero_count = int(np.count_nonzero(zeros_after))
    if not zero_count:
        return 0, float("nan")
    return zero_count, float(train.series.steps[first_nonzero + 1 + int(np.argmax(zeros_after))])
