"""How the logged values were produced: sampled exports, smoothed or per-epoch losses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lossdoctor.detectors import Evidence, register_detector
from lossdoctor.features import SeriesView
from lossdoctor.model import FloatArray

#: TensorBoard's scalar plugin keeps this many points per series when exporting.
TB_EXPORT_SAMPLES = 1000


@dataclass(frozen=True)
class Provenance:
    """Flags about the source of a series."""

    points: int
    tensorboard_export: bool
    export_at_sample_limit: bool
    smoothed: bool
    per_epoch: bool
    evidence: Evidence


@register_detector("provenance")
def provenance(series: SeriesView, *, sample_slack: int = 5) -> Provenance:
    """Return whether the series is a TensorBoard export holding about as many points as
    TensorBoard samples (within ``sample_slack`` of 1000), was smoothed by its logger, or
    has one point per epoch (x is the epoch and points lie about a whole epoch apart: a
    logger that counts fractional epochs, 0.02, 0.04, ..., logs within them)."""
    meta = series.series.meta
    points = len(series.series)
    is_export = meta.get("export") == "TensorBoard"
    evidence = Evidence(
        series=series.series.role,
        column=series.series.column,
        numbers={"points": points},
    )
    return Provenance(
        points=points,
        tensorboard_export=is_export,
        export_at_sample_limit=is_export and abs(points - TB_EXPORT_SAMPLES) <= sample_slack,
        smoothed="smoothed" in meta,
        per_epoch=series.series.x_kind == "epoch" and _whole_epochs_apart(series.series.steps),
        evidence=evidence,
    )


def _whole_epochs_apart(epochs: FloatArray) -> bool:
    """Return True when the points lie half an epoch apart or more (median gap)."""
    if epochs.shape[0] < 2:
        return True
    return float(np.median(np.diff(epochs))) >= 0.5
