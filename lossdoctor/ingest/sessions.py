"""Sessions of a TensorBoard export: one export may hold the points of several event
files (a run stopped and resumed, or started again from scratch), interleaved.

The wall time puts the points back in the order they were logged; a step that goes
back, or a long pause, starts a new session.  A session whose step counter starts
again at (or before) the first step is either a new run from scratch (its loss starts
near the run's first loss) or the same training resumed with a fresh step counter
(its loss picks up where the last session ended: its steps are shifted to follow
on).  A session that starts at a later step resumes the run (its points replace the
earlier ones from that step on)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lossdoctor.model import FloatArray, IntArray

#: A pause between two points longer than this many seconds ...
MIN_PAUSE_S = 600.0
#: ... and this many times the typical interval starts a new session.
PAUSE_FACTOR = 20.0
#: Points whose median is the level at a session's edge.
EDGE_POINTS = 3
#: Sessions named in the note at the most.
MAX_SAID = 5
#: Points before a restart whose step-to-step changes measure how far the loss moves.
RECENT_POINTS = 20
#: A resumed loss lies within this many typical step-to-step changes of where it was ...
RESUME_CHANGES = 4.0
#: ... or within this share of the way from there back to the level the run started at.
RESUME_SHARE = 0.25


@dataclass(frozen=True)
class Sessions:
    """The logged order of an export's points, their steps and what the sessions are."""

    order: IntArray
    #: Steps in logged order, shifted where a session resumed with a fresh step counter.
    steps: FloatArray
    #: One sentence for the report ("" for one session).
    note: str


def level(values: FloatArray) -> float:
    """Return the loss level of a few points: the median of their logs (of the values
    when some are not positive); NaN when none is finite."""
    finite = values[np.isfinite(values)]
    if not finite.size:
        return float("nan")
    data = np.log(finite) if (finite > 0).all() else finite
    with np.errstate(over="ignore", invalid="ignore"):
        middle = float(np.median(data))
    if np.isfinite(middle):
        return middle
    # two middle values near the float limit: their mean overflows, their halves do not
    ordered = np.sort(data)
    half = ordered.size // 2
    low, high = ordered[(ordered.size - 1) // 2], ordered[half]
    return float(low / 2 + high / 2)


def _space(*parts: FloatArray) -> tuple[FloatArray, ...]:
    """Return ``parts`` without their non-finite values, as logs when every value is
    positive (a loss level is compared by ratio), else as they are."""
    finite = [p[np.isfinite(p)].astype(np.float64) for p in parts]
    if all((f > 0).all() for f in finite):
        return tuple(np.log(f) for f in finite)
    return tuple(finite)


def goes_on(before: FloatArray, after: FloatArray, start: FloatArray) -> bool:
    """Return True when the loss after a restarted step counter goes on from where it was
    (the same training resumed), False when a run started again (from scratch, or a new
    run of another kind).  ``before``: the session's losses before the restart (its last
    :data:`RECENT_POINTS` are used), ``after``: the first losses after it, ``start``: the
    first losses of the session.

    The level of ``after``'s first :data:`EDGE_POINTS` points (a median, of logs for a
    positive loss) must be nearer the level it had (its last points) than the level the
    session started at, and within :data:`RESUME_CHANGES` typical step-to-step changes of
    it (or :data:`RESUME_SHARE` of the way back to the start): a loss that falls through
    a fresh early drop right after the restart did not go on, even if its first point
    happens to lie near where the session ended."""
    with np.errstate(over="ignore", invalid="ignore"):  # losses near the float limit
        return _goes_on(before, after, start)


def _goes_on(before: FloatArray, after: FloatArray, start: FloatArray) -> bool:
    old, new, first = _space(before[-RECENT_POINTS:], after[:EDGE_POINTS], start[:EDGE_POINTS])
    if not (old.size and new.size and first.size):
        return False
    old_level, new_level = float(np.median(old[-EDGE_POINTS:])), float(np.median(new))
    start_level = float(np.median(first))
    from_old, from_start = abs(new_level - old_level), abs(new_level - start_level)
    if from_old >= from_start:
        return False
    change = float(np.median(np.abs(np.diff(old)))) if old.size > 1 else 0.0
    return from_old <= max(RESUME_CHANGES * change, RESUME_SHARE * abs(old_level - start_level))


def sessions(walls: FloatArray, steps: FloatArray, values: FloatArray) -> Sessions:
    """Return the logged order of the points (by wall time; by step when wall times are
    missing), their steps (shifted where a session resumed with a fresh step counter)
    and a note saying how the sessions were judged."""
    n = steps.shape[0]
    if n < 2 or not np.isfinite(walls).all():
        order = np.argsort(steps, kind="stable")
        return Sessions(order, steps[order], "")
    with np.errstate(over="ignore", invalid="ignore"):  # steps of +-1e308: inf gaps are fine
        return _sessions(walls, steps, values)


def _sessions(walls: FloatArray, steps: FloatArray, values: FloatArray) -> Sessions:
    n = steps.shape[0]
    order = np.argsort(walls, kind="stable")
    wall, step, value = walls[order], steps[order].astype(np.float64), values[order]
    gaps = np.diff(wall)
    pause = gaps > max(MIN_PAUSE_S, PAUSE_FACTOR * float(np.median(gaps)))
    starts = np.flatnonzero(pause | (np.diff(step) < 0)) + 1
    if not starts.size:
        return Sessions(order, step, "")
    interval = float(np.median(np.abs(np.diff(step)))) or 1.0
    session_start = 0
    raw = step.copy()
    said: list[str] = []
    separate = renumbered = False
    offset = 0.0
    ends = [*starts[1:].tolist(), n]
    for at, end in zip(starts.tolist(), ends, strict=True):
        if raw[at] <= raw[0]:
            before, after = value[session_start:at], value[at:end]
            if goes_on(before, after, value[session_start:at]):
                offset = step[at - 1] + interval - raw[at]
                renumbered = True
                said.append(f"the step counter restarted at wall-time row {at + 1} but the loss "
                            "went on from where it was: the same training resumed (its steps "
                            "shifted to follow on)")  # fmt: skip
            else:
                offset = 0.0
                separate = True
                session_start = at
                said.append(f"at step {raw[at]:g} a separate run started from scratch")
        elif raw[at] < raw[at - 1]:
            said.append(f"resumed at step {raw[at] + offset:g}")
        else:
            said.append(f"continued at step {raw[at] + offset:g} after a pause")
        step[at:end] = raw[at:end] + offset
    if separate:
        verdict = "judged: each run from scratch on its own (one report per run)"
    else:
        verdict = "judged as one resumed run"
        if renumbered:
            verdict += " (x: steps counted on across sessions)"
    shown = "; ".join(said[:MAX_SAID]) + ("; ..." if len(said) > MAX_SAID else "")
    note = f"{starts.size + 1} sessions in this export (by wall time): {shown}; {verdict}"
    return Sessions(order, step, note)
