"""Negative values in a loss series that should be a cross-entropy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lossdoctor.detectors import Evidence, register_detector
from lossdoctor.features import SeriesView


@dataclass(frozen=True)
class Negative:
    """How many finite values are below zero, and the lowest."""

    count: int
    share: float
    min_value: float
    first_step: float
    evidence: Evidence


@register_detector("negative")
def negative(series: SeriesView) -> Negative:
    """Return the count (points) and share (0-1) of values below zero and the minimum, over
    every finite point of the series."""
    values = series.series.values
    below = np.zeros(0, dtype=bool) if series.all_positive else values < 0
    count = int(np.count_nonzero(below))
    first = int(np.argmax(below)) if count else -1
    first_step = float(series.series.steps[first]) if count else float("nan")
    min_value = float(np.min(series.values)) if series.n else float("nan")
    if count:
        min_value = float(np.min(values[below]))
    line = series.series.line_of(first) if count else None
    evidence = Evidence(
        series=series.series.role,
        column=series.series.column,
        start_step=first_step if count else None,
        line=line,
        numbers={"count": count, "min_value": min_value},
    )
    return Negative(
        count=count,
        share=count / series.n_finite if series.n_finite else 0.0,
        min_value=min_value,
        first_step=first_step,
        evidence=evidence,
    )
