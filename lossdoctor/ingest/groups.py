"""Tables that hold several runs: one per value of a group column (a sweep's table, runs
appended to one file with their run id: ``--group-by`` or a column named like
``trial_id``, ``run``, ``version``), or one per training session started from scratch
in the same file (the step counter back at the first step and the loss back at its
starting level).  A session whose step counter starts again while its loss goes on from
where the last one ended is the same training resumed: its steps are shifted to follow
on, and it stays one run."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from lossdoctor.errors import InputError
from lossdoctor.ingest.columns import (
    GROUP_NAMES,
    ColumnChoice,
    ColumnHints,
    normalise,
    resolve_hint,
)
from lossdoctor.ingest.sessions import EDGE_POINTS, goes_on, level
from lossdoctor.ingest.table import MISSING_TOKENS, Column, Table, column_texts
from lossdoctor.model import TRAIN, VAL, BoolArray, FloatArray, IntArray, Lines, Run

#: ``--group-by none``: no grouping, not even by a column named like a run id.
NO_GROUPING = "none"
#: Readers of tables whose columns may name the run of each row without --group-by.
AUTO_GROUP_READERS = frozenset({"csv", "tsv", "jsonl", "json-records"})
#: More sessions than this is a counter restarting every epoch, not training sessions.
MAX_SESSIONS = 20


def group_column(
    names: list[str], labels_of: dict[str, list[str]], hints: ColumnHints | None, taken: set[str]
) -> str | None:
    """Return the column naming each row's run: the ``--group-by`` column (``none``: None),
    else the first column named like a run id (``trial_id``, ``run``, ``version``, ...)
    that is no series' column and holds at least two names, else None.  ``labels_of``
    gives a column's cells as text.

    Raises ``KeyError`` with a readable message when the named column is missing.
    """
    wanted = hints.group if hints else None
    if wanted:
        if normalise(wanted) == NO_GROUPING:
            return None
        return resolve_hint(wanted, names, "--group-by")
    for name in names:
        if normalise(name) in GROUP_NAMES and name not in taken:
            labels = labels_of[name]
            named = [label for label in labels if label]
            # runs named on (nearly) every row: not a key a few lines of a log carry
            if 2 <= len(set(named)) <= max(2, len(labels) // 2) and len(named) >= 0.9 * len(labels):
                return name
    return None


def filled(labels: list[str]) -> list[str]:
    """Return ``labels`` with each empty one taken from the last name before it (before
    the first name, from the first): a row without a run name belongs to the run above."""
    first = next((label for label in labels if label), "")
    out: list[str] = []
    last = first
    for label in labels:
        last = label or last
        out.append(last)
    return out


def group_masks(labels: list[str]) -> list[tuple[str, BoolArray]]:
    """Return (name, rows) for every distinct name in ``labels``, in first-seen order."""
    array = np.array(labels, dtype=object)
    order = list(dict.fromkeys(labels))
    return [(name, array == name) for name in order]


@dataclass
class SessionPlan:
    """The sessions of a table: the rows where a run from scratch starts, the row steps
    (shifted where the same training resumed with a fresh step counter) and notes."""

    starts: list[int] = field(default_factory=list)
    steps: FloatArray | None = None
    #: (row, note) of every resume with a fresh step counter.
    notes: list[tuple[int, str]] = field(default_factory=list)
    said: dict[int, str] = field(default_factory=dict)


def plan_sessions(
    steps: FloatArray, loss: FloatArray, has_loss: BoolArray, lines: Lines | None
) -> SessionPlan:
    """Return the sessions of a table whose rows have ``steps`` and a loss (``loss`` where
    ``has_loss``) and come from ``lines`` of the file (None: rows).  A step that goes back to (or
    before) the first step starts a session: a run from scratch when its first losses are
    nearer the log's first losses than the last ones before it, else the same training
    resumed with a fresh step counter (its steps, and those after, shifted to follow on).
    More than :data:`MAX_SESSIONS` restarts: no plan (a per-epoch counter)."""
    n = steps.shape[0]
    plan = SessionPlan()

    def where(row: int) -> str:
        return f"line {int(lines[row])}" if lines is not None else f"row {row + 1}"

    if n < 2 or not (steps[1:] <= steps[0]).any():
        return plan  # no step goes back to the first: one session (found without the
        # loss rows' positions and steps, two copies of a 10,000,000-row log's steps)
    loss_rows = np.flatnonzero(has_loss)
    if loss_rows.size < 2:
        return plan
    # the loss's own steps restart (rows of other series may count on their own: a
    # validation loop's counter in a Lightning metrics.csv is no new session)
    loss_steps = steps[loss_rows]
    back = np.flatnonzero((loss_steps[1:] < loss_steps[:-1]) & (loss_steps[1:] <= steps[0])) + 1
    if not back.size or back.size >= MAX_SESSIONS:
        return plan
    restarts = [_session_row(steps, int(loss_rows[j - 1]), int(loss_rows[j])) for j in back]
    session_start = int(loss_rows[0])  # the row the current session started at
    forward = np.diff(loss_steps)
    interval = float(np.median(forward[forward > 0])) if (forward > 0).any() else 1.0
    shifted = steps.astype(np.float64).copy()
    offset = 0.0
    bounds = [*restarts, n]
    for at, end in itertools.pairwise(bounds):
        after = loss_rows[(loss_rows >= at) & (loss_rows < end)]
        before = loss_rows[(loss_rows >= session_start) & (loss_rows < at)]
        start = before[:EDGE_POINTS]
        first_after, last_before = _logged(loss, after), _logged(loss, before[-1:])
        if goes_on(loss[before], loss[after], loss[start]):
            previous = loss_rows[loss_rows < at][-1]
            offset = shifted[previous] + interval - steps[at]
            said = (
                f"the step counter restarted at {where(at)} (step {steps[at]:g}) but the loss "
                f"went on from where it was (last {last_before}, next {first_after}): the "
                f"same training resumed; its steps shifted by {offset:g} to follow on"
            )
            plan.notes.append((at, said))
        else:
            offset = 0.0
            plan.starts.append(at)
            plan.said[at] = _why_new(
                loss, before, after, start, f"{where(at)} (step {steps[at]:g})"
            )
            session_start = at
        shifted[at:end] = steps[at:end] + offset
    plan.steps = shifted
    return plan


def _why_new(loss: FloatArray, before: IntArray, after: IntArray, start: IntArray, at: str) -> str:
    """Return that a new run started ``at`` and why, in logged values: the loss at rows
    ``after`` is back near where the session of rows ``before`` (first rows ``start``)
    started (a run from scratch), or does not go on from where it ended (a new run)."""
    first_after, last_before = _logged(loss, after), _logged(loss, before[-1:])
    new, old, begun = (
        level(loss[after[:EDGE_POINTS]]),
        level(loss[before[-EDGE_POINTS:]]),
        level(loss[start]),
    )
    if abs(new - begun) <= abs(new - old):
        return (
            f"a run from scratch started at {at}: its first loss {first_after} is back near "
            "where the run before started "
            f"({_logged(loss, start)}), not where it ended ({last_before})"
        )
    shown = ", ".join(f"{float(v):.4g}" for v in loss[after[:EDGE_POINTS]])
    return (
        f"a new run started at {at}: its loss does not go on from where the run before "
        f"ended (last {last_before}, then {shown}: beyond the run's step-to-step change)"
    )


def _session_row(steps: FloatArray, last: int, first: int) -> int:
    """Return the row a session starts at, between the previous session's ``last`` loss
    row and the new one's ``first``: the last row there where the step goes back."""
    drops = np.flatnonzero(steps[last + 1 : first + 1] < steps[last:first])
    return last + 1 + int(drops[-1]) if drops.size else first


def _logged(loss: FloatArray, rows: IntArray) -> str:
    """Return the logged loss of the first of ``rows`` as printed, "?" without one."""
    return f"{float(loss[rows[0]]):.4g}" if rows.size else "?"


def subset(table: Table, columns: dict[str, Column], rows: BoolArray) -> Table:
    """Return the table of ``columns`` (the table's, as read) kept at ``rows``."""
    out: dict[str, Column] = {}
    for name, col in columns.items():
        present = col.present[rows]
        texts = None
        if col.texts is not None:
            texts = tuple(np.asarray(col.texts, dtype=object)[rows].tolist())
            bad = ~present & np.array([t.lower() not in MISSING_TOKENS for t in texts], dtype=bool)
            garbage, first = int(bad.sum()), int(np.argmax(bad)) if bad.any() else -1
        elif col.garbage and 0 <= col.first_garbage < rows.shape[0] and rows[col.first_garbage]:
            garbage, first = col.garbage, int(rows[: col.first_garbage].sum())
        else:
            garbage, first = 0, -1
        out[name] = Column(col.values[rows], present, garbage, first, texts)
    lines = None if table.lines is None else table.lines[rows]
    return Table(columns=out, lines=lines, notes=list(table.notes))


def rows_said(table: Table, rows: BoolArray) -> str:
    """Return where ``rows`` lie in the file: "lines 2-40" (or rows), "" for none."""
    at = np.flatnonzero(rows)
    if not at.size:
        return ""
    if table.lines is not None:
        return f"lines {int(table.lines[at[0]])}-{int(table.lines[at[-1]])}"
    return f"rows {int(at[0]) + 1}-{int(at[-1]) + 1}"


#: Builds one run from a table (``table_to_run``'s signature, passed in to avoid a cycle).
Build = Callable[..., Run]


def several_runs(
    table: Table,
    read: dict[str, Column],
    choice: ColumnChoice,
    row_steps: FloatArray | None,
    *,
    source: str,
    reader: str,
    hints: ColumnHints | None,
    build: Build,
) -> Run | tuple[FloatArray, list[str]] | None:
    """Return the runs of a table that holds several (a :class:`Run` whose ``groups`` are
    them): one per name in its group column, else one per session from scratch; or
    (shifted row steps, notes) when sessions are the same training resumed with a fresh
    step counter; or None for a table of one run.  ``read``: the columns as read (before
    any derived column), ``choice``: the columns of each role, ``row_steps``: one step a
    row (None: the rows have no step column).

    Raises :class:`InputError` when the ``--group-by`` column is missing.
    """
    taken = {c for c in (choice.step, *choice.roles.values()) if c}
    wanted = hints.group if hints else None
    if not wanted and reader not in AUTO_GROUP_READERS:
        wanted = NO_GROUPING  # a text log's keys are no table's columns: only --group-by
    named = {normalise(wanted)} if wanted else set()
    candidates = [n for n in read if normalise(n) in (*GROUP_NAMES, *named)]
    labels_of = {n: list(column_texts(read[n])) for n in candidates}
    given = replace(hints or ColumnHints(), group=wanted)
    try:
        group = group_column(list(read), labels_of, given, taken)
    except KeyError as exc:
        raise InputError(str(exc.args[0]), path=source) from None
    inner = replace(hints or ColumnHints(), group=NO_GROUPING)
    if group is not None:
        labels = filled(labels_of.get(group) or list(column_texts(read[group])))
        masks = group_masks(labels)
        if len(masks) > 1:
            runs: list[Run] = []
            for name, rows in masks:
                label = f"{group}={name}"
                sub = subset(table, read, rows)
                sub.notes.append(
                    f"one of {len(masks)} runs in this log by its '{group}' column ({label}: "
                    f"{rows_said(table, rows)}), judged on its own"
                )
                for run in build(sub, source=source, reader=reader, hints=inner).runs():
                    both = f"{label}, {run.group}" if run.group else label
                    runs.append(replace(run, group=both, groups=()))
            return replace(runs[-1], groups=tuple(runs))
    loss_role = next((r for r in (TRAIN, VAL) if r in choice.roles), None)
    if row_steps is None or choice.step is None or loss_role is None:
        return None
    loss = table.columns[choice.roles[loss_role]]
    plan = plan_sessions(row_steps, loss.values, loss.present, table.lines)
    if plan.steps is None:
        return None
    step = read[choice.step]
    read = {
        **read,
        choice.step: replace(step, values=plan.steps, present=np.ones_like(step.present)),
    }
    if not plan.starts:
        return plan.steps, [note for _, note in plan.notes]
    bounds = [0, *plan.starts, row_steps.shape[0]]
    runs = []
    count = len(bounds) - 1
    for index, (start, end) in enumerate(itertools.pairwise(bounds), start=1):
        rows = np.zeros(row_steps.shape[0], dtype=bool)
        rows[start:end] = True
        sub = subset(table, read, rows)
        how = plan.said.get(start, "the first run in this log")
        sub.notes.extend(note for at, note in plan.notes if start <= at < end)
        sub.notes.append(
            f"session {index} of {count} in this log ({rows_said(table, rows)}): {how}; "
            "each new run is judged on its own"
        )
        run = build(sub, source=source, reader=reader, hints=inner)
        runs.append(replace(run, group=f"session {index} of {count}", groups=()))
    return replace(runs[-1], groups=tuple(runs))
