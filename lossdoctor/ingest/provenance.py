"""Mark series whose values were produced in a way that hides detail: already smoothed by
the logger, or exported with sampling.  Rules report these as info caveats."""

from __future__ import annotations

from lossdoctor.model import TRAIN, Run

#: detectron2 logs losses with ``smoothing_hint=True``: the median of the last 20 iterations.
DETECTRON2_KEYS = frozenset({"total_loss", "data_time"})
#: nanochat prints an exponentially smoothed, debiased loss next to ``lrm``.
NANOCHAT_KEYS = frozenset({"lrm", "loss"})


def mark_smoothing(run: Run, names: set[str]) -> Run:
    """Return ``run`` with its training series marked when the logger smoothed it."""
    lowered = {n.lower() for n in names}
    if lowered.issuperset(DETECTRON2_KEYS) and run.columns.get(TRAIN, "").lower() == "total_loss":
        return run.with_meta(TRAIN, smoothed="detectron2 logs the median of the last 20 iterations")
    if lowered.issuperset(NANOCHAT_KEYS):
        return run.with_meta(TRAIN, smoothed="nanochat prints an exponentially smoothed loss")
    return run
