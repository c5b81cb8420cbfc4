"""Measurements made outside the one-run pipeline: a comparison with a reference run
(``compare``, ``check --baseline``) and a live log that stops growing (``watch``,
``run``).  Their rules (``emitted_by`` in the rule file) are documented like every other
rule; the engine never runs these detectors on a run alone, so they measure nothing:
each is bound by :func:`_made_elsewhere` to the fields its rule's conditions name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lossdoctor.detectors import Evidence, register_detector
from lossdoctor.features import SeriesView


@dataclass(frozen=True)
class BaselineRegression:
    """How many comparison checks the run failed against the reference run."""

    evidence: Evidence
    failed_checks: int = 0


@dataclass(frozen=True)
class Stall:
    """Seconds since the last point of a live log (NaN: no stall measured)."""

    evidence: Evidence
    seconds_without_point: float = float("nan")


def _made_elsewhere(name: str, result: type[Any], maker: str) -> Callable[..., Any]:
    """Register detector ``name`` returning ``result`` with its defaults: the findings of
    its rule are made by ``maker``, never by the engine on a run alone."""

    def detector(train: SeriesView) -> Any:
        return result(evidence=Evidence(series=train.series.role, column=train.series.column))

    detector.__annotations__ = {"train": SeriesView, "return": result}
    detector.__doc__ = f"Return nothing measured: {maker} makes this rule's findings."
    detector.__name__ = detector.__qualname__ = name
    return register_detector(name)(detector)


baseline_regression = _made_elsewhere(
    "baseline_regression", BaselineRegression, "the comparison with a reference run"
)
stall = _made_elsewhere("stall", Stall, "a live monitor, which sees the clock,")
