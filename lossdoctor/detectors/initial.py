"""Where the loss starts and ends compared with chance and with typical values."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lossdoctor.detectors import Evidence, register_detector
from lossdoctor.features import SeriesView

#: Points whose median is the first loss.
FIRST_POINTS = 3
#: Typical loss bands of a small language model fine-tune (nats), from the design notes.
PROFILES: dict[str, tuple[tuple[str, float, float], ...]] = {
    "slm-finetune": (
        ("excellent specialisation", 0.2, 0.6),
        ("well-trained domain model", 0.5, 1.0),
        ("early training (one to two hours in)", 1.2, 2.0),
        ("first batches", 3.0, 5.0),
    ),
}


@dataclass(frozen=True)
class InitialLoss:
    """The first loss and the chance loss ln(N)."""

    first_value: float
    chance_loss: float
    first_to_chance: float
    evidence: Evidence


@register_detector("initial_loss")
def initial_loss(series: SeriesView, *, chance_loss: float | None = None) -> InitialLoss:
    """Return the first loss (median of the first 3 points, nats) and its ratio to the
    chance loss ln(N) (NaN without ``--vocab-size``/``--classes``)."""
    first = float(np.median(series.values[:FIRST_POINTS])) if series.n else float("nan")
    chance = float(chance_loss) if chance_loss else float("nan")
    evidence = Evidence(
        series=series.series.role,
        column=series.series.column,
        start_step=float(series.steps[0]) if series.n else None,
        numbers={"first_value": first, "chance_loss": chance},
    )
    return InitialLoss(first, chance, first / chance, evidence)


@dataclass(frozen=True)
class LossBand:
    """Which typical band of a profile the final loss falls in."""

    final_value: float
    band: str
    in_band: bool
    band_low: float
    band_high: float
    evidence: Evidence


@register_detector("loss_band")
def loss_band(series: SeriesView, *, profile: str | None = None) -> LossBand:
    """Return the final loss (median of the last points) and the band of ``profile``
    (``--profile``) it falls in; ``in_band`` is False without a profile or outside
    every band."""
    nan = float("nan")
    final = series.value_at(series.end_level) if series.n else nan
    bands = PROFILES.get(profile or "", ())
    hit = next(((name, lo, hi) for name, lo, hi in bands if lo <= final <= hi), None)
    numbers: dict[str, float] = {"final_value": final}
    label = hit[0] if hit else ""
    evidence = Evidence(
        series=series.series.role,
        column=series.series.column,
        numbers=numbers,
    )
    if hit is None:
        return LossBand(final, "", False, nan, nan, evidence)
    evidence.numbers["band_low"], evidence.numbers["band_high"] = hit[1], hit[2]
    return LossBand(final, label, True, hit[1], hit[2], evidence)
