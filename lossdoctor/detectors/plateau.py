"""A loss that fell and then stayed flat for the final stretch of the run."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lossdoctor.detectors import Evidence, register_detector
from lossdoctor.features import LRProfile, SeriesView

MIN_POINTS = 10


@dataclass(frozen=True)
class Plateau:
    """The final flat stretch: where it starts and how much of the run it covers."""

    improvement: float
    flat_share: float
    flatten_step: float
    tail_change: float
    lr_rel_end: float
    lr_rel_at_flatten: float
    evidence: Evidence


@register_detector("plateau", ranges={"band_share": (0.0, 1.0)})
def plateau(
    series: SeriesView, lr: SeriesView | None = None, *, band_share: float = 0.1
) -> Plateau:
    """Return the share of the run (0-1, in steps) since the trend came within
    ``band_share`` of the total improvement of its final level and stayed there,
    the step where that happened, the improvement (nats) and the change over the
    flat stretch (nats, positive = rising); with an lr series, the learning rate at the
    end and where the loss flattened, as shares of its peak.  ``flat_share`` is also
    the share of the run's compute spent after the loss stopped improving."""
    if series.n < MIN_POINTS or not series.log_space or series.span <= 0:
        empty = Evidence(series=series.series.role, column=series.series.column)
        nan = float("nan")
        return Plateau(nan, nan, nan, nan, nan, nan, empty)
    steps, levels = series.coarse
    improvement = series.start_level - series.best_level
    final = series.end_level
    band = max(band_share * max(improvement, 0.0), series.noise / np.sqrt(len(levels)))
    outside = np.flatnonzero(np.abs(levels - final) > band)
    first_flat = int(outside[-1]) + 1 if outside.size else 0
    first_flat = min(first_flat, len(levels) - 1)
    flatten_step = float(steps[first_flat])
    flat_share = float((series.steps[-1] - flatten_step) / series.span)
    tail_change = float(levels[-1] - levels[first_flat])
    lr_profile = LRProfile(lr, flatten_step)
    evidence = Evidence(
        series=series.series.role,
        column=series.series.column,
        start_step=flatten_step,
        end_step=float(series.steps[-1]),
        numbers={
            "flat_share_pct": round(100 * flat_share, 1),
            "level_value": series.value_at(final),
            "start_level": series.value_at(series.start_level),
        },
    )
    return Plateau(
        improvement=improvement,
        flat_share=flat_share,
        flatten_step=flatten_step,
        tail_change=tail_change,
        lr_rel_end=lr_profile.rel_end,
        lr_rel_at_flatten=lr_profile.rel_at,
        evidence=evidence,
    )
