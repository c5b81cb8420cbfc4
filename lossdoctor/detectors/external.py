"""Measurements made outside the one-run pipeline: a comparison with a reference run
(``compare``, ``check --baseline``) and a live log that stops growing (``watch``,
``run``).  Their rules (``emitted_by`` in the rule file) are documented like every other
rule; the engine never runs these detectors on a run alone, so they measure nothing."""

from __future__ import annotations

from dataclasses import dataclass

from lossdoctor.detectors import Evidence, register_detector
from lossdoctor.features import SeriesView


@dataclass(frozen=True)
class BaselineRegression:
    """How many comparison checks the run failed against the reference run."""

    failed_checks: int
    evidence: Evidence


@register_detector("baseline_regression")
def baseline_regression(train: SeriesView) -> BaselineRegression:
    """Return no failed check: the comparison with a reference (``lossdoctor.compare``)
    makes this rule's findings, not a run on its own."""
    return BaselineRegression(0, Evidence(series=train.series.role, column=train.series.column))


@dataclass(frozen=True)
class Stall:
    """Seconds since the last point of a live log."""

    seconds_without_point: float
    evidence: Evidence


@register_detector("stall")
def stall(train: SeriesView) -> Stall:
    """Return no stall (NaN seconds): only a live monitor, which sees the clock, makes
    this rule's findings."""
    return Stall(float("nan"), Evidence(series=train.series.role, column=train.series.column))
