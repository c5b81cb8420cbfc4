"""What a rule needs before it may judge a run in progress: its ``[requires]`` table.

A run in progress is not a finished run.  Each rule file may state the evidence it needs
(``points`` of the judged series, ``past_warmup`` points after the learning-rate warmup
when the run logs one, or ``finished = true`` for rules only meaningful on a whole run);
on a partial run the engine lets a rule judge only once it has that evidence, and
otherwise lists it as waiting.  A finished run is always judged, so ``check`` on a
finished file and ``watch`` at its last line go through the same path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lossdoctor.features import SeriesView

#: The learning rate counts as warmed up from the first point at this share of its peak.
WARMED_UP_SHARE = 0.99


@dataclass(frozen=True)
class Requires:
    """The evidence a rule needs on a run in progress (a finished run is always judged)."""

    #: Finite points of the judged series.
    points: int = 0
    #: Finite points of the judged series after the learning-rate warmup (when the run
    #: logs a learning rate that rises to its peak).
    past_warmup: int = 0
    #: Only a finished run is judged.
    finished: bool = False


#: The whole-number keys of a ``[requires]`` table.
REQUIRES_INTS = ("points", "past_warmup")


def warmup_end(lr: SeriesView | None) -> float | None:
    """Return the step at which the learning rate first reaches its peak (within 1%),
    or None when no learning rate is logged."""
    import numpy as np

    if lr is None or lr.n == 0:
        return None
    values = np.abs(lr.values)
    peak = float(values.max())
    if peak <= 0:
        return None
    return float(lr.steps[int(np.argmax(values >= WARMED_UP_SHARE * peak))])


def waiting(requires: Requires, view: SeriesView, lr: SeriesView | None) -> str | None:
    """Return why a rule with ``requires`` may not judge ``view`` of a run in progress yet
    (None: it may)."""
    if requires.finished:
        return "judged on a finished run only"
    if view.n < requires.points:
        return f"waiting for {requires.points} points ({view.n} so far)"
    if requires.past_warmup:
        end = warmup_end(lr)
        if end is not None:
            after = int((view.steps > end).sum())
            if after < requires.past_warmup:
                return (
                    f"waiting for {requires.past_warmup} points past the learning-rate warmup "
                    f"({after} so far)"
                )
    return None
