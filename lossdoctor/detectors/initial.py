"""Where the loss starts and ends compared with chance and with typical values."""

from __future__ import annotations

from dataclasses import dataclass

from lossdoctor.detectors import Evidence, known, register_detector
from lossdoctor.features import SeriesView
from lossdoctor.robust import median

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


#: Objectives (``--objective``) that start from pretrained weights.
FINETUNE_OBJECTIVES = frozenset({"sft", "dpo", "ipo", "reward-model"})
#: Profiles (``--profile``) of fine-tunes.
FINETUNE_PROFILES = frozenset({"slm-finetune"})


@dataclass(frozen=True)
class InitialLoss:
    """The first loss and the chance loss ln(N)."""

    first_value: float
    start_level: float
    chance_loss: float
    first_to_chance: float
    finetune: bool
    evidence: Evidence


@register_detector("initial_loss")
def initial_loss(
    series: SeriesView,
    *,
    chance_loss: float | None = None,
    profile: str | None = None,
    objective: str | None = None,
) -> InitialLoss:
    """Return the first logged loss, the start level (median of the first 3 points, nats),
    the start level's ratio to the chance loss ln(N) (NaN without ``--vocab-size``,
    ``--classes`` or a vocabulary size stated in the log), and whether the run is a
    fine-tune (``--profile slm-finetune`` or ``--objective sft|dpo|ipo|reward-model``):
    a fine-tune starts far below ln(N)."""
    first = median(series.values[:FIRST_POINTS]) if series.n else float("nan")
    first_logged = float(series.values[0]) if series.n else float("nan")
    chance = float(chance_loss) if chance_loss else float("nan")
    finetune = (profile or "") in FINETUNE_PROFILES or (objective or "") in FINETUNE_OBJECTIVES
    evidence = Evidence(
        series=series.series.role,
        column=series.series.column,
        start_step=float(series.steps[0]) if series.n else None,
        numbers={"first_value": first_logged, "start_level": first, **known(chance_loss=chance)},
    )
    return InitialLoss(first_logged, first, chance, first / chance, finetune, evidence)


@dataclass(frozen=True)
class LossBand:
    """Which typical band of a profile the final loss falls in."""

    final_value: float
    band: str
    placement: str
    in_band: bool
    placed: bool
    band_low: float
    band_high: float
    evidence: Evidence


@register_detector("loss_band")
def loss_band(series: SeriesView, *, profile: str | None = None) -> LossBand:
    """Return the final loss (median of the last points) and the band of ``profile``
    (``--profile``) it falls in; ``in_band`` is False without a profile or outside
    every band; ``placement`` says where the value lies among the bands (in one, between
    two, below or above them all) and ``placed`` is True whenever there is a profile and
    a finite final loss."""
    nan = float("nan")
    final = series.value_at(series.end_level) if series.n else nan
    bands = PROFILES.get(profile or "", ())
    hit = next(((name, lo, hi) for name, lo, hi in bands if lo <= final <= hi), None)
    placement = _placement(bands, final)
    numbers: dict[str, float] = {"final_value": final}
    label = hit[0] if hit else ""
    evidence = Evidence(
        series=series.series.role,
        column=series.series.column,
        numbers=numbers,
    )
    placed = bool(placement)
    if hit is None:
        return LossBand(final, "", placement, False, placed, nan, nan, evidence)
    evidence.numbers["band_low"], evidence.numbers["band_high"] = hit[1], hit[2]
    return LossBand(final, label, placement, True, placed, hit[1], hit[2], evidence)


def _placement(bands: tuple[tuple[str, float, float], ...], value: float) -> str:
    """Return where ``value`` lies among ``bands`` in words ("" without bands or value)."""
    if not bands or value != value:
        return ""
    inside = [f"{name} ({lo:g}-{hi:g})" for name, lo, hi in bands if lo <= value <= hi]
    if inside:
        return "in the typical range of a " + " and of a ".join(inside)
    ordered = sorted(bands, key=lambda b: b[1])
    low_name, low, low_hi = ordered[0]
    if value < low:
        return f"below every typical band (the lowest: {low_name}, {low:g}-{low_hi:g})"
    high_name, high_lo, high = max(ordered, key=lambda b: b[2])
    if value > high:
        return f"above every typical band (the highest: {high_name}, {high_lo:g}-{high:g})"
    under = max((b for b in ordered if b[2] < value), key=lambda b: b[2])
    over = min((b for b in ordered if b[1] > value), key=lambda b: b[1])
    return (
        f"between the typical ranges of a {under[0]} ({under[1]:g}-{under[2]:g}) "
        f"and of {over[0]} ({over[1]:g}-{over[2]:g})"
    )
