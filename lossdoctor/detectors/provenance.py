"""How the logged values were produced: sampled exports, smoothed or per-epoch losses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lossdoctor.detectors import Evidence, register_detector
from lossdoctor.features import SeriesView
from lossdoctor.model import FloatArray

#: TensorBoard's scalar plugin keeps this many points per series when exporting.
TB_EXPORT_SAMPLES = 1000
#: Median gap between points (epochs) from which a series is logged once an epoch.
MIN_EPOCH_GAP = 0.5


@dataclass(frozen=True)
class Provenance:
    """Flags about the source of a series."""

    points: int
    tensorboard_export: bool
    export_at_sample_limit: bool
    smoothed: bool
    per_epoch: bool
    #: Logged points per epoch (one over the median gap between points, in epochs), NaN
    #: when the x axis is not the epoch.
    points_per_epoch: float
    evidence: Evidence


@register_detector("provenance")
def provenance(series: SeriesView, *, sample_slack: int = 5) -> Provenance:
    """Return whether the series is a TensorBoard export holding about as many points as
    TensorBoard samples (within ``sample_slack`` of 1000), was smoothed by its logger, or
    has one point per epoch (x is the epoch and points lie half an epoch apart or more: a
    logger that counts fractional epochs, 0.02, 0.04, ..., logs within them), with the
    points per epoch (one over the median gap, NaN off an epoch axis)."""
    meta = series.series.meta
    points = len(series.series)
    is_export = meta.get("export") == "TensorBoard"
    on_epochs = series.series.x_kind == "epoch"
    gap = _median_gap(series.series.steps) if on_epochs else float("nan")
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
        per_epoch=on_epochs and gap >= MIN_EPOCH_GAP,
        points_per_epoch=_points_per_epoch(gap) if on_epochs else float("nan"),
        evidence=evidence,
    )


def _median_gap(epochs: FloatArray) -> float:
    """Return the median gap between points (epochs); infinity for fewer than 2 points."""
    if epochs.shape[0] < 2:
        return float("inf")
    return float(np.median(np.diff(epochs)))


def _points_per_epoch(gap: float) -> float:
    """Return points per epoch for a median gap of ``gap`` epochs (1 for a lone point)."""
    if gap == float("inf"):
        return 1.0
    return 1 / gap if gap > 0 else float("nan")
