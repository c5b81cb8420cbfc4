"""What a rule needs before it may judge a run in progress: its ``[requires]`` table.

A run in progress is not a finished run.  Each rule file may state the evidence it needs
(``points`` of the judged series, ``steps`` it must span when its x is a step counter,
``past_warmup`` points after the learning-rate warmup when the run logs one,
``max_recent_drop``: the loss must have stopped falling, or ``finished = true`` for rules
only meaningful on a whole run);
on a partial run the engine lets a rule judge only once it has that evidence, and
otherwise lists it as waiting.  A finished run is always judged, so ``check`` on a
finished file and ``watch`` at its last line go through the same path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lossdoctor.features import SeriesView
    from lossdoctor.model import FloatArray

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
    #: Steps the judged series must span (last logged step minus first), when its x is a
    #: step counter: several lines logged per step (one per rank, per micro-batch) do
    #: not count as more training.
    steps: int = 0
    #: The loss must have stopped falling: the median of the last quarter of the judged
    #: points at most this share below the median of the quarter before (0: no condition).
    #: A run still on its way down (a slow warmup with no learning rate logged) waits.
    max_recent_drop: float = 0.0
    #: Only a finished run is judged.
    finished: bool = False


#: The whole-number keys of a ``[requires]`` table.
REQUIRES_INTS = ("points", "steps", "past_warmup")
#: The share keys of a ``[requires]`` table (from 0 to 1).
REQUIRES_SHARES = ("max_recent_drop",)


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
    if requires.steps and view.series.x_kind == "step" and view.n:
        span = float(view.steps[-1] - view.steps[0])
        if span < requires.steps:
            return f"waiting for {requires.steps} steps ({span:g} so far)"
    if requires.past_warmup:
        end = warmup_end(lr)
        if end is not None:
            after = int((view.steps > end).sum())
            if after < requires.past_warmup:
                return (
                    f"waiting for {requires.past_warmup} points past the learning-rate warmup "
                    f"({after} so far)"
                )
    if requires.max_recent_drop:
        drop = recent_drop(view.values)
        if drop > requires.max_recent_drop:
            return f"waiting while the loss is still falling ({drop:.1%} in its last quarter)"
    return None


def recent_drop(values: FloatArray) -> float:
    """Return the share by which the median of the last quarter of ``values`` lies below
    the median of the quarter before (negative when it rose; 0 for fewer than 8 values)."""
    import numpy as np

    quarter = values.shape[0] // 4
    if quarter < 2:
        return 0.0
    before = float(np.median(values[-2 * quarter : -quarter]))
    last = float(np.median(values[-quarter:]))
    return (before - last) / abs(before) if before else 0.0
