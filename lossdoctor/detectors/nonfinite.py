"""NaN and infinite values in a loss series."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lossdoctor.detectors import Evidence, register_detector
from lossdoctor.detectors.beside import precision
from lossdoctor.features import SeriesView


@dataclass(frozen=True)
class NonFinite:
    """Counts of non-finite points (NaN, +Inf, -Inf) and where they start."""

    count: int
    share: float
    nan_count: int
    inf_count: int
    first_step: float
    first_line: int
    last_step: float
    recovered_step: float
    to_the_end: bool
    #: True when the series ends on non-finite values (the run died, at once or after
    #: coming back from earlier ones); ``dead_step`` is where that last stretch starts.
    ends_non_finite: bool
    dead_step: float
    #: What the log says of its number format: fp16, and overflow-skipped steps (lines).
    fp16: bool
    overflow_skips: int
    evidence: Evidence


@register_detector("non_finite")
def non_finite(series: SeriesView) -> NonFinite:
    """Return how many values are NaN or infinite (points), their share (0-1), the first.

    ``to_the_end`` is True when every point from the first non-finite one on is
    non-finite (the run died rather than hiccuped); otherwise ``last_step`` is the step of
    the last non-finite point and ``recovered_step`` the step of the finite point after it
    (NaN when there is none).  ``ends_non_finite`` is True when the series ends on
    non-finite points, ``dead_step`` the step where that last unbroken stretch of them
    starts (NaN otherwise).  ``fp16`` and ``overflow_skips`` are what the log says of
    its number format (the evidence for an overflow).
    """
    values = series.series.values
    n = values.shape[0]
    count = n - series.n_finite
    # the mask of every point only where some is not finite (a long series' costs more)
    good = series.finite_mask if count else np.ones(0, dtype=bool)
    bad = ~good
    first = int(np.argmax(bad)) if count else -1
    first_step = float(series.series.steps[first]) if count else float("nan")
    line = series.series.line_of(first) if count else None
    if not series.n_finite:
        last_good = -1
    else:  # with every point finite, the last one
        last_good = n - 1 - int(np.argmax(good[::-1])) if count else n - 1
    last_good_step = float(series.series.steps[last_good]) if last_good >= 0 else float("nan")
    last_bad = n - 1 - int(np.argmax(bad[::-1])) if count else -1
    last_step = float(series.series.steps[last_bad]) if count else float("nan")
    recovered = count and last_bad < n - 1
    recovered_step = float(series.series.steps[last_bad + 1]) if recovered else float("nan")
    ends = bool(count and bad[-1])
    dead_step = float(series.series.steps[last_good + 1]) if ends else float("nan")
    signs = precision(series)
    evidence = Evidence(
        series=series.series.role,
        column=series.series.column,
        start_step=first_step if count else None,
        end_step=float(series.series.steps[-1]) if count else None,
        line=line,
        numbers={"count": count, "points": n, "last_finite_step": last_good_step},
    )
    return NonFinite(
        count=count,
        share=count / n if n else 0.0,
        nan_count=int(np.isnan(values).sum()) if count else 0,
        inf_count=int(np.isinf(values).sum()) if count else 0,
        first_step=first_step,
        first_line=line or 0,
        last_step=last_step,
        recovered_step=recovered_step,
        to_the_end=bool(count and bad[first:].all()),
        ends_non_finite=ends,
        dead_step=dead_step,
        fp16=signs.fp16,
        overflow_skips=signs.overflow_skips,
        evidence=evidence,
    )
