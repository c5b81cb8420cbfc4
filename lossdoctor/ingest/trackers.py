"""What the readers of local tracker stores share (W&B run files, trackio, SwanLab, MLflow):
a logged value as a number, and the step axis.

A tracker keeps its own step: W&B's ``_step`` and trackio's ``step`` count ``log`` calls,
SwanLab's and MLflow's are the ``step=`` the caller gave (or a count, or 0).  The Hugging
Face Trainer logs its optimizer step beside the values (``train/global_step``; Lightning's
W&B logger ``trainer/global_step``) and lets the tracker count calls, so a run of steps
10..2000 logged every 10 steps sits on the tracker's steps 0..208.  :func:`on_step_key`
moves the series onto such a logged step (or the one ``--step-col`` names).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from lossdoctor.errors import InputError
from lossdoctor.ingest.columns import ColumnHints, is_epoch_name, is_step_name, resolve_hint
from lossdoctor.model import FloatArray, Run, XKind

#: Logged values that count the trainer's optimizer steps, in order of preference.
STEP_KEYS = ("train/global_step", "trainer/global_step")

Arrays = dict[str, tuple[FloatArray, FloatArray]]


def number(value: object) -> float | None:
    """Return the float a logged value holds (numbers, and strings such as ``"NaN"``,
    ``"INF"``, ``"-Infinity"``), or None for booleans and anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def as_arrays(columns: dict[str, tuple[list[float], list[float]]]) -> Arrays:
    """Return (steps, values) lists per key as float arrays."""
    return {
        key: (np.asarray(s, dtype=np.float64), np.asarray(v, dtype=np.float64))
        for key, (s, v) in columns.items()
    }


def on_step_key(
    columns: Arrays, *, hints: ColumnHints | None, own: str, source: str
) -> tuple[Arrays, ColumnHints | None, list[str], XKind]:
    """Return the series of ``columns`` (key -> steps on the tracker's own step, named
    ``own``, and values) moved onto the step a logged key holds at each of those steps:
    the key ``--step-col`` names, else the trainer's step (:data:`STEP_KEYS`) where it
    differs from the tracker's.  Also returns the hints left for choosing the series
    (without the step), notes saying what was done, and what the new x counts.

    Points at a tracker step where the key was not logged are left out (noted).  Raises
    :class:`InputError` when ``--step-col`` names no key, or a key that holds several
    values at one tracker step.
    """
    hinted = hints is not None and bool(hints.step)
    if hints is not None and hints.step:
        try:
            key: str | None = resolve_hint(hints.step, list(columns), "--step-col")
        except KeyError as exc:
            raise InputError(str(exc.args[0]), path=source) from None
        hints = replace(hints, step=None)
    else:
        key = next((k for k in STEP_KEYS if k in columns), None)
    if key is None:
        return columns, hints, [], "step"
    at, counted = columns[key]
    finite = np.isfinite(at) & np.isfinite(counted)
    order = np.argsort(at[finite], kind="stable")
    tracker_steps, trainer_steps = at[finite][order], counted[finite][order]
    repeated = tracker_steps[1:] == tracker_steps[:-1]
    clash = repeated & (trainer_steps[1:] != trainer_steps[:-1])
    if clash.any():
        if hinted:
            raise InputError(
                f"--step-col '{key}' holds several values at one {own} "
                f"({own} {tracker_steps[1:][clash][0]:g}): it cannot be the step axis",
                path=source,
            )
        note = f"'{key}' holds several values at one {own}: steps are {own}"
        return columns, hints, [note], "step"
    if not hinted and np.array_equal(tracker_steps, trainer_steps):
        return columns, hints, [], "step"  # the tracker's step is the trainer's already
    first = np.concatenate(([True], ~repeated))
    known, their = tracker_steps[first], trainer_steps[first]
    moved: Arrays = {}
    left_out = 0
    for name, (steps, values) in columns.items():
        if name == key:
            continue
        at_known = np.minimum(np.searchsorted(known, steps), max(known.size - 1, 0))
        keep = known[at_known] == steps if known.size else np.zeros(steps.size, dtype=bool)
        if not is_step_name(name):  # (another step counter is no loss of data)
            left_out += int((~keep).sum())
        if keep.any():
            moved[name] = (their[at_known[keep]], values[keep])
    why = "--step-col" if hinted else "the trainer's step"
    notes = [f"step axis: '{key}' ({why}), not the tracker's {own}"]
    if left_out:
        notes.append(f"{left_out} points logged without '{key}' were left out")
    return moved, hints, notes, "epoch" if is_epoch_name(key.rsplit("/", 1)[-1]) else "step"


def tracker_run(
    columns: Arrays,
    *,
    source: str,
    reader: str,
    hints: ColumnHints | None,
    notes: list[str],
    own: str,
) -> Run:
    """Return the run of a tracker's series (key -> steps on its own step ``own``, values),
    on the step :func:`on_step_key` chooses.

    Raises :class:`InputError` as :func:`on_step_key` and
    :func:`~lossdoctor.ingest.table.series_run` do.
    """
    from lossdoctor.ingest.table import series_run

    columns, hints, step_notes, x_kind = on_step_key(columns, hints=hints, own=own, source=source)
    return series_run(
        columns, source=source, reader=reader, hints=hints, notes=[*notes, *step_notes],
        x_kind=x_kind,
    )  # fmt: skip
