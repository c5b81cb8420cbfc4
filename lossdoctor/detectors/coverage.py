"""What a run logged: how many points, and whether it has a validation series."""

from __future__ import annotations

from dataclasses import dataclass

from lossdoctor.detectors import Evidence, register_detector
from lossdoctor.features import SeriesView


@dataclass(frozen=True)
class Coverage:
    """Point counts of the training and validation series."""

    train_points: int
    val_points: int
    has_val: bool
    evidence: Evidence


@register_detector("coverage")
def coverage(train: SeriesView, val: SeriesView | None = None) -> Coverage:
    """Return the number of finite training and validation points and whether validation
    was logged at all."""
    evidence = Evidence(
        series=train.series.role,
        column=train.series.column,
        numbers={"train_points": train.n_finite, "val_points": val.n_finite if val else 0},
    )
    return Coverage(
        train_points=train.n_finite,
        val_points=val.n_finite if val is not None else 0,
        has_val=val is not None,
        evidence=evidence,
    )
