"""Validation loss rising from its minimum while training loss keeps falling."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lossdoctor.detectors import Evidence, register_detector
from lossdoctor.features import SeriesView, rolling_median, spearman

#: Fewest validation points on which overfitting is judged.
MIN_VAL_POINTS = 4
#: Validation points smoothed over before the minimum is taken (when there are many).
SMOOTH_POINTS = 3
SMOOTH_FROM = 12


@dataclass(frozen=True)
class Overfitting:
    """The best validation point, how far validation rose after it, what training did."""

    best_step: float
    best_value: float
    val_rise: float
    val_rise_pct: float
    points_after: int
    after_share: float
    steadiness: float
    train_drop_after: float
    wasted_share: float
    evidence: Evidence


@register_detector("overfitting")
def overfitting(train: SeriesView, val: SeriesView) -> Overfitting:
    """Return the best validation step and value, the rise of validation's end level over
    its best (nats; ``val_rise_pct`` in %), how many validation points follow the best and
    what share of the validation span (0-1) they cover, the steadiness of the rise
    (Spearman's rho, -1..1), how much training fell after the best (nats) and the share
    of training steps (0-1) spent after the best validation step."""
    nan = float("nan")
    if val.n < MIN_VAL_POINTS or not val.log_space or val.span <= 0:
        empty = Evidence(series=val.series.role, column=val.series.column)
        return Overfitting(nan, nan, nan, nan, 0, nan, nan, nan, nan, empty)
    smooth = rolling_median(val.y, SMOOTH_POINTS) if val.n >= SMOOTH_FROM else val.y
    best = int(np.argmin(smooth))
    best_step = float(val.steps[best])
    tail = max(1, val.n // 10) if best < val.n - 1 else 1
    end_level = float(np.median(val.y[-tail:]))
    rise = end_level - float(smooth[best])
    points_after = val.n - 1 - best
    after_share = float((val.steps[-1] - best_step) / val.span)
    steadiness = spearman(val.steps[best:], val.y[best:])
    train_drop = nan
    wasted = nan
    if train.n >= MIN_VAL_POINTS and train.log_space and train.span > 0:
        at_best = train.y[np.searchsorted(train.steps, best_step, side="right") - 1 :]
        window = max(1, train.n // 20)
        if at_best.shape[0] > window:
            train_drop = float(np.median(at_best[:window]) - train.end_level)
        wasted = float(np.clip((train.steps[-1] - best_step) / train.span, 0.0, 1.0))
    evidence = Evidence(
        series=val.series.role,
        column=val.series.column,
        start_step=best_step,
        end_step=float(val.steps[-1]),
        line=val.series.line_of(int(val.index[best])),
        numbers={
            "best_value": float(val.values[best]),
            "end_value": val.value_at(end_level),
            "val_rise_pct": round(100 * (float(np.exp(rise)) - 1), 1),
            "wasted_pct": round(100 * wasted, 1) if wasted == wasted else nan,
        },
    )
    return Overfitting(
        best_step=best_step,
        best_value=float(val.values[best]),
        val_rise=rise,
        val_rise_pct=100 * (float(np.exp(rise)) - 1),
        points_after=points_after,
        after_share=after_share,
        steadiness=steadiness,
        train_drop_after=train_drop,
        wasted_share=wasted,
        evidence=evidence,
    )
