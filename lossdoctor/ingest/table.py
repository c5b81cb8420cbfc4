"""From a table of cells to a :class:`~lossdoctor.model.Run`.

Every table-shaped reader (CSV, TSV, JSONL, JSON records) produces a :class:`Table`:
per column, float values and a ``present`` mask that tells an empty cell (no
point) from a logged NaN (a point whose value is NaN).  :func:`table_to_run`
then picks the columns, aligns steps, resolves restarts and builds the run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import PurePath
from typing import TypeVar

import numpy as np

from lossdoctor.arrays import all_finite
from lossdoctor.errors import InputError, NotALogError
from lossdoctor.ingest.columns import (
    EPOCH_NAMES,
    ColumnHints,
    choose_columns,
    looks_like_validation,
    normalise,
)
from lossdoctor.model import (
    LOSS_PARTS,
    LOSS_ROLES,
    TRAIN,
    VAL,
    BoolArray,
    FloatArray,
    IntArray,
    Lines,
    Run,
    Series,
    XKind,
)

ArrayT = TypeVar("ArrayT", FloatArray, IntArray)

#: Cell texts that mean "no value here" (not NaN).
MISSING_TOKENS = frozenset({"", "na", "n/a", "null", "none", "#n/a", "-"})
#: Cell texts that mean a logged NaN.
NAN_TOKENS = frozenset({"nan", "-nan", "+nan"})
#: Below this share of parseable cells a column is not numeric at all.
MIN_NUMERIC_SHARE = 0.5
#: Above this share of backward steps the step column is not a counter.
MAX_BACKWARD_SHARE = 0.1
#: ... and more than this many backward jumps (a few are resumes).
MIN_BACKWARD_JUMPS = 3


@dataclass(frozen=True)
class Column:
    """One column of a table: float values and which cells held a value."""

    values: FloatArray
    present: BoolArray
    garbage: int = 0
    first_garbage: int = -1
    #: The raw cells as text, kept for a column that holds text (a run's name in a
    #: group column); None for a column of numbers.
    texts: tuple[str, ...] | None = None


@dataclass
class Table:
    """Columns in source order, with the source line of each row when known."""

    columns: dict[str, Column]
    lines: Lines | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def n_rows(self) -> int:
        """Return the number of rows."""
        first = next(iter(self.columns.values()), None)
        return 0 if first is None else int(first.values.shape[0])


def promote_single_loss(roles: dict[str, str], notes: list[str]) -> dict[str, str]:
    """Return ``roles`` with a lone validation-named loss judged as the main (train) curve,
    saying so in ``notes``."""
    if TRAIN in roles or VAL not in roles:
        return roles
    roles = dict(roles)
    promoted = {TRAIN: roles.pop(VAL), **roles}
    notes.append(f"the only loss series ('{promoted[TRAIN]}') is judged as the main curve")
    return promoted


def coerce_objects(cells: Iterable[object], *, nan_is_missing: bool) -> Column:
    """Return a :class:`Column` from raw cells (numbers, strings, None).

    Strings are parsed as floats (``nan``, ``inf``, ``Infinity`` understood);
    missing tokens and None are absent; a float NaN cell is absent when
    ``nan_is_missing`` (a CSV reader's empty cell) and a logged NaN otherwise
    (JSON); anything else (booleans, lists, words) is absent and counted as garbage.
    """
    values: list[float] = []
    present: list[bool] = []
    garbage, first_garbage = 0, -1
    nan = float("nan")
    cells = list(cells)
    for index, cell in enumerate(cells):
        value = _cell_value(cell, nan_is_missing)
        if value is _GARBAGE:
            garbage += 1
            first_garbage = index if first_garbage < 0 else first_garbage
            values.append(nan)
            present.append(False)
        elif value is None:
            values.append(nan)
            present.append(False)
        else:
            values.append(value)  # type: ignore[arg-type]
            present.append(True)
    return Column(
        values=np.array(values, dtype=np.float64),
        present=np.array(present, dtype=bool),
        garbage=garbage,
        first_garbage=first_garbage,
        texts=tuple(cell_text(c) for c in cells) if garbage else None,
    )


def cell_text(cell: object) -> str:
    """Return a raw cell as text: a string stripped of blanks and quotes, a number as
    printed (``3``, ``0.5``), "" for an absent cell."""
    if cell is None or (isinstance(cell, float) and cell != cell):
        return ""
    if isinstance(cell, str):
        return cell.strip().strip('"')
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell)


#: Text made only of plain decimal numbers (no blanks, words, quotes or separators).
_PLAIN_NUMBERS = re.compile(r"[0-9.eE+-]*")


def _repeated_headers(table: Table, names: Sequence[str]) -> list[int]:
    """Return the source lines (row numbers without lines) of the rows whose cells in the
    columns ``names`` are those columns' names: a header written again where another log
    was appended; [] when there are none or a column's cell texts were not kept."""
    rows: set[int] | None = None
    for name in dict.fromkeys(names):
        col = table.columns[name]
        if not col.garbage:
            return []
        if col.texts is None:
            return []
        here = {i for i, text in enumerate(col.texts) if text.strip().strip('"') == name}
        if len(here) != col.garbage:
            return []  # other text too: counted as cells that are not numbers
        rows = here if rows is None else rows & here
        if not rows:
            return []
    if not rows:
        return []
    ordered = sorted(rows)
    if table.lines is None:
        return [i + 1 for i in ordered]
    return [int(table.lines[i]) for i in ordered]


def coerce_texts(cells: Sequence[str]) -> Column:
    """Return a :class:`Column` from the text cells of a delimited file, as
    :func:`coerce_objects` with ``nan_is_missing`` reads them; a column of plain numbers
    (the usual case) is converted by numpy at once."""
    if cells and all(cells) and _PLAIN_NUMBERS.fullmatch("".join(cells)):
        try:
            values = np.array(cells, dtype=np.float64)
        except ValueError:  # "-", "1e", "+": read cell by cell
            pass
        else:
            return Column(values=values, present=np.ones(values.shape[0], dtype=bool))
    return coerce_objects(cells, nan_is_missing=True)


#: The value of a cell that holds something other than a number or a missing token.
_GARBAGE = object()


def _cell_value(cell: object, nan_is_missing: bool) -> float | object | None:
    """Return the float a cell holds, None when it is absent, or ``_GARBAGE``."""
    if cell is None:
        return None
    if isinstance(cell, str):
        text = cell.strip().strip('"').lower()
        if text in MISSING_TOKENS:
            return None
        if text in NAN_TOKENS:
            return float("nan")
        if "_" in text:
            return _GARBAGE
        try:
            return float(text)
        except ValueError:
            return _GARBAGE
    if isinstance(cell, bool):
        return _GARBAGE
    try:
        value = float(cell)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return _GARBAGE
    if value != value and nan_is_missing:
        return None
    return value


class ColumnSink:
    """Columns filled chunk by chunk (rows in order) without holding on to the chunks.

    A single chunk is kept as it is; from the second on, rows are copied into
    columns sized for ``expected_rows`` (grown by half when that was too few), so
    memory stays near the size of the final columns.
    """

    def __init__(self, expected_rows: int) -> None:
        self.expected_rows = max(expected_rows, 1)
        self.rows = 0
        self._only: dict[str, Column] | None = None
        self._values: dict[str, FloatArray] = {}
        self._present: dict[str, BoolArray] = {}
        self._garbage: dict[str, int] = {}
        self._first_garbage: dict[str, int] = {}
        self._texts: dict[str, list[str]] = {}

    def add(self, chunk: dict[str, Column]) -> None:
        """Append the rows of ``chunk`` (the same columns every time)."""
        if self._only is None and not self._values:
            self._only, self.rows = chunk, _rows(chunk)
            return
        if self._only is not None:
            only, self._only, self.rows = self._only, None, 0
            self._resize(max(self.expected_rows, 2 * _rows(only)), only)
            self._append(only)
        capacity = next(iter(self._values.values())).shape[0] if self._values else 0
        if self.rows + _rows(chunk) > capacity:
            self._resize(int((self.rows + _rows(chunk)) * 1.5), chunk)
        self._append(chunk)

    def extend(self, other: ColumnSink) -> None:
        """Append the rows of ``other`` (the same columns)."""
        if other.rows or other._only is not None:
            self.add(other.columns())

    def _resize(self, capacity: int, like: dict[str, Column]) -> None:
        for name in like:
            values = np.empty(capacity, dtype=np.float64)
            present = np.empty(capacity, dtype=bool)
            if name in self._values:
                values[: self.rows] = self._values[name][: self.rows]
                present[: self.rows] = self._present[name][: self.rows]
            self._values[name], self._present[name] = values, present

    def _append(self, chunk: dict[str, Column]) -> None:
        n = _rows(chunk)
        for name, col in chunk.items():
            self._values[name][self.rows : self.rows + n] = col.values
            self._present[name][self.rows : self.rows + n] = col.present
            if col.first_garbage >= 0 and self._first_garbage.get(name, -1) < 0:
                self._first_garbage[name] = self.rows + col.first_garbage
            self._garbage[name] = self._garbage.get(name, 0) + col.garbage
            if col.texts is not None and name not in self._texts:
                done = Column(self._values[name][: self.rows], self._present[name][: self.rows])
                self._texts[name] = list(column_texts(done))
            if name in self._texts:
                self._texts[name].extend(column_texts(col))
        self.rows += n

    def columns(self) -> dict[str, Column]:
        """Return the columns of every row added."""
        if self._only is not None:
            return self._only
        return {
            name: Column(
                values=values[: self.rows],
                present=self._present[name][: self.rows],
                garbage=self._garbage.get(name, 0),
                first_garbage=self._first_garbage.get(name, -1),
                texts=tuple(self._texts[name]) if name in self._texts else None,
            )
            for name, values in self._values.items()
        }


def column_texts(column: Column) -> tuple[str, ...]:
    """Return the cells of ``column`` as text: its raw cells when it kept them, else its
    numbers as printed (``3``, ``0.5``) and "" for an absent cell."""
    if column.texts is not None:
        return column.texts
    return tuple(
        cell_text(float(v)) if p else "" for v, p in zip(column.values, column.present, strict=True)
    )


def _rows(chunk: dict[str, Column]) -> int:
    """Return the number of rows of a chunk of columns."""
    return next(iter(chunk.values())).values.shape[0] if chunk else 0


def _row_steps(table: Table, step_col: str | None) -> tuple[FloatArray, bool]:
    """Return one step per row (forward-filled) and whether it is the row index."""
    n = table.n_rows
    if step_col is None:
        return np.arange(n, dtype=np.float64), True
    col = table.columns[step_col]
    out = col.values if col.present.all() else _fill_gaps(col.values, col.present)
    if not all_finite(out):
        return np.arange(n, dtype=np.float64), True
    return out, False


def _fill_gaps(values: FloatArray, present: BoolArray) -> FloatArray:
    """Return ``values`` with each absent or NaN cell taken from the last good one before
    it (or, before the first, from the first good one)."""
    good = present & ~np.isnan(values)
    if not good.any():
        return np.full(values.shape[0], np.nan)
    last = np.maximum.accumulate(np.where(good, np.arange(values.shape[0]), -1))
    last[last < 0] = int(np.argmax(good))
    return values[last]


def resumed_steps(steps: FloatArray) -> list[float]:
    """Return the steps at which the run resumed: the step counter went back, but not to
    (or before) the very first step (that is a new run in the same log)."""
    if steps.shape[0] < 2:
        return []
    backward = np.flatnonzero(steps[1:] < steps[:-1]) + 1
    return [float(steps[i]) for i in backward if steps[i] > steps[0]]


def resume_meta(steps: FloatArray) -> dict[str, str]:
    """Return the series meta that lists the steps where the run resumed (none: empty)."""
    resumed = resumed_steps(steps)
    return {"resumed_at": ",".join(f"{s:g}" for s in resumed)} if resumed else {}


def keep_last_run(steps: FloatArray) -> BoolArray:
    """Return the rows of the last run in the log: from the last point where the step
    counter went back to (or before) the very first step."""
    keep = np.ones(steps.shape[0], dtype=bool)
    if steps.shape[0] > 1:
        restart = np.flatnonzero((steps[1:] < steps[:-1]) & (steps[1:] <= steps[0])) + 1
        if restart.shape[0]:
            keep[: restart[-1]] = False
    return keep


def _keep_after_restarts(steps: FloatArray, lines: Lines | None) -> tuple[BoolArray, list[str]]:
    """Return the rows to keep when steps go backwards, and notes saying what happened.

    A backward step starts a new segment; rows of earlier segments at or beyond
    the new segment's first step are superseded (TensorBoard's purge rule).  A
    segment that starts at or before the very first step is a new run.
    """
    n = steps.shape[0]
    backward = np.zeros(n, dtype=bool)
    backward[1:] = steps[1:] < steps[:-1]
    if not backward.any():
        return np.ones(n, dtype=bool), []
    seg = np.cumsum(backward)
    starts_at = np.flatnonzero(np.concatenate(([True], backward[1:])))
    starts = steps[starts_at]
    later_min = np.full(starts.shape[0], np.inf)
    if starts.shape[0] > 1:
        later_min[:-1] = np.minimum.accumulate(starts[::-1])[::-1][1:]
    keep = steps < later_min[seg]
    notes: list[str] = []
    first_step = steps[0]
    for idx in starts_at[1:][:5]:
        where = f"line {int(lines[idx])}" if lines is not None else f"row {int(idx) + 1}"
        if steps[idx] <= first_step:
            notes.append(
                f"step counter restarted at {where} (step {steps[idx]:g}): a new run in the "
                "same file; the earlier run's points are not mixed in"
            )
        else:
            notes.append(
                f"run resumed at {where} (step {steps[idx]:g}): later points replace the "
                "earlier ones from that step on"
            )
    if starts_at.shape[0] - 1 > len(notes):
        notes.append(f"{starts_at.shape[0] - 1} restarts in all")
    return keep, notes


def superseded_left_out(
    steps: FloatArray, values: FloatArray
) -> tuple[FloatArray, FloatArray, dict[str, str], list[str]]:
    """Return a series' points (``steps``, ``values`` in log order) without those a resume
    superseded (TensorBoard's purge rule, see :func:`_keep_after_restarts`), the series
    meta naming the steps where the run resumed, and the notes saying what happened."""
    points = order_points(steps, values, None, by_row=False)
    return points.steps, points.values, points.meta, points.notes


@dataclass
class Points:
    """A series' points in the order they are judged in (see :func:`order_points`)."""

    steps: FloatArray
    values: FloatArray
    lines: Lines | None
    #: The series meta naming the steps where the run resumed.
    meta: dict[str, str]
    notes: list[str]
    #: Whether the steps went backwards too often to be a counter: x is the row order.
    by_row: bool = False


def order_points(
    steps: FloatArray, values: FloatArray, lines: Lines | None, *, by_row: bool = True
) -> Points:
    """Return a series' points (in log order, at ``lines`` when known) as they are judged:
    numbered in row order when the steps go backwards too often to count anything (more
    than :data:`MIN_BACKWARD_JUMPS` and :data:`MAX_BACKWARD_SHARE` of the points, not all
    back to the first step; only ``by_row``), else without the points a resume superseded
    (:func:`_keep_after_restarts`).  The one rule of ``check``'s tables and ``watch``."""
    backward = steps[1:] < steps[:-1] if steps.shape[0] > 1 else None
    if backward is None or not backward.any():
        return Points(steps, values, lines, {}, [])
    resets_only = bool((steps[1:][backward] <= steps[0]).all())
    jumps = int(backward.sum())
    often = jumps > max(MIN_BACKWARD_JUMPS, MAX_BACKWARD_SHARE * steps.shape[0])
    if by_row and often and not resets_only:
        rows = np.arange(steps.shape[0], dtype=np.float64)
        return Points(rows, values, lines, {}, [], by_row=True)
    keep, notes = _keep_after_restarts(steps, lines)
    meta = resume_meta(steps[keep_last_run(steps)])
    lines = None if lines is None else _pick_lines(lines, keep)
    return Points(_pick(steps, keep), _pick(values, keep), lines, meta, notes)


def table_to_run(
    table: Table,
    *,
    source: str,
    reader: str,
    hints: ColumnHints | None = None,
) -> Run:
    """Return the run a table holds.

    Raises :class:`InputError` when no loss column can be found.
    """
    read = dict(table.columns)
    names = list(table.columns)
    if table.n_rows == 0 or not any(c.present.any() or c.garbage for c in table.columns.values()):
        raise InputError("no data rows (header only)", path=source)
    counts = {c: int(np.count_nonzero(table.columns[c].present)) for c in names}
    numeric = [
        c
        for c in names
        if counts[c] and counts[c] >= MIN_NUMERIC_SHARE * (counts[c] + table.columns[c].garbage)
    ]
    from lossdoctor.ingest import components

    summed = components.summed_totals(numeric)
    if summed:
        components.add_sums(table.columns, summed)
        names, numeric = list(table.columns), [*numeric, *summed]
    try:
        choice = choose_columns(numeric if not (hints and hints.roles) else names, hints)
    except KeyError as exc:
        raise InputError(str(exc.args[0]), path=source) from None
    if not any(role in choice.roles for role in LOSS_ROLES):
        wanted = choose_columns(names).roles
        for role in LOSS_ROLES:
            if role in wanted:
                col = table.columns[wanted[role]]
                from lossdoctor.ingest.texttable import loss_names

                named = loss_names(col)
                if named:
                    raise NotALogError(
                        f"not a loss log: no column holds loss values ('{wanted[role]}' holds"
                        f" names of losses: {named}; a label or settings file?)",
                        path=source,
                    )
                line = None
                if table.lines is not None and col.first_garbage >= 0:
                    line = int(table.lines[col.first_garbage])
                raise InputError(
                    f"column '{wanted[role]}' holds no numbers "
                    f"({col.garbage} cells that are not numbers)",
                    path=source,
                    line=line,
                )
        shown = ", ".join(names[:20]) or "none"
        raise NotALogError(
            f"no loss column found (columns: {shown}); name it with --train-col",
            path=source,
        )
    if choice.step is None and TRAIN in choice.roles:
        from lossdoctor.ingest.texttable import summary_table_problem

        summary = summary_table_problem(table, choice.roles[TRAIN])
        if summary:
            raise NotALogError(summary, path=source)
    for role, column in choice.roles.items():
        col = table.columns[column]
        if role in LOSS_ROLES and not col.present.any():
            raise InputError(f"column '{column}' holds no numbers", path=source)

    notes = list(table.notes)
    row_steps, is_index = _row_steps(table, choice.step)
    from lossdoctor.ingest.groups import several_runs

    several = several_runs(
        table, read, choice, None if is_index else row_steps, source=source, reader=reader,
        hints=hints, build=table_to_run,
    )  # fmt: skip
    if isinstance(several, Run):
        return several
    if several is not None:
        row_steps, resumed = several
        notes.extend(resumed)
    epoch_meta: dict[str, str] = {}
    if not is_index and choice.x_kind == "step":
        epoch_meta = _epoch_meta(table, row_steps)
    elif not is_index and choice.x_kind == "epoch":
        epoch_meta = {STEPS_PER_EPOCH: "1"}  # x is the (fractional) epoch itself
    series: dict[str, Series] = {}
    roles = dict(choice.roles)
    if not (hints and hints.val):  # an explicit --val-col wins: the series stays validation
        roles = promote_single_loss(roles, notes)
    parts = components.parts_of(numeric, roles)  # total column -> its parts (series meta)
    roles, part_notes, part_names = components.with_parts(numeric, roles, set(summed))
    notes.extend(part_notes)
    headers = _repeated_headers(table, [roles[r] for r in roles])
    if headers:
        at = ", ".join(str(line) for line in headers[:5]) + (", ..." if len(headers) > 5 else "")
        said = "1 line repeats" if len(headers) == 1 else f"{len(headers)} lines repeat"
        notes.append(f"{said} the header (logs appended to one file): skipped (line {at})")
    # a series' steps are some of the rows' steps, in row order: they go back only where
    # the rows' steps do (looked at once, not once a series by order_points)
    goes_back = not is_index and bool((row_steps[1:] < row_steps[:-1]).any())
    for role, column in roles.items():
        col = table.columns[column]
        garbage = col.garbage - (len(headers) if headers else 0)
        if garbage > 0:
            what = (
                "1 cell that is not a number was"
                if garbage == 1
                else f"{garbage} cells that are not numbers were"
            )
            notes.append(f"'{column}': {what} skipped")
        rows = _kept_rows(col.present)
        meta: dict[str, str] = {}
        steps = row_steps if rows is None else row_steps[rows]
        lines = table.lines if table.lines is None or rows is None else table.lines[rows]
        x_kind: XKind = "index" if is_index else choice.x_kind
        values = col.values if rows is None else col.values[rows]
        if goes_back:  # (else every series' points are in step order as they are)
            points = order_points(steps, values, lines)
            steps, values, lines, meta = points.steps, points.values, points.lines, points.meta
            notes.extend(points.notes)
            if points.by_row:
                notes.append(f"{role}: '{choice.step}' goes backwards often: used row order")
                x_kind = "index"
        if column in parts:
            meta = {**meta, LOSS_PARTS: " + ".join(parts[column])}
        series[role] = Series(
            role=role,
            column=column,
            steps=steps,
            values=values,
            x_kind=x_kind,
            lines=lines,
            meta={**meta, **epoch_meta} if role == TRAIN else meta,
        )
    notes = list(dict.fromkeys(notes))
    used = ", ".join(f"{role}={column}" for role, column in roles.items() if role not in part_names)
    step_text = choice.step if not is_index else "row order"
    notes.insert(0, f"columns: {used}; x: {step_text}")
    return Run(source=source, reader=reader, series=series, notes=tuple(notes))


#: Series meta key: the steps one epoch takes, from an epoch column beside the steps.
STEPS_PER_EPOCH = "steps_per_epoch"


def _epoch_meta(table: Table, row_steps: FloatArray) -> dict[str, str]:
    """Return ``{"steps_per_epoch": N}`` when the table logs a fractional epoch beside its
    steps (Hugging Face, LLaMA-Factory): N is the median of step / epoch over the rows."""
    column = next((c for c in table.columns if normalise(c) in EPOCH_NAMES), None)
    if column is None:
        return {}
    col = table.columns[column]
    return steps_per_epoch(col.values[col.present], row_steps[col.present])


def steps_per_epoch(epochs: FloatArray, steps: FloatArray) -> dict[str, str]:
    """Return ``{"steps_per_epoch": N}`` for points that log their fractional ``epochs``
    at ``steps`` (N: the median of step / epoch), or {} when they do not say."""
    usable = (epochs > 0) & np.isfinite(epochs) & np.isfinite(steps) & (steps > 0)
    if usable.sum() < MIN_EPOCH_ROWS:
        return {}
    with np.errstate(over="ignore"):  # a huge step over a tiny epoch: inf, a ratio like any
        per_epoch = float(np.median(steps[usable] / epochs[usable]))
    if not np.isfinite(per_epoch) or per_epoch < 1:
        return {}
    return {STEPS_PER_EPOCH: f"{per_epoch:.6g}"}


#: Rows with an epoch and a step needed to say how long an epoch is.
MIN_EPOCH_ROWS = 3


def _pick(array: ArrayT, mask: BoolArray) -> ArrayT:
    """Return ``array[mask]``, without a copy when the mask keeps every element."""
    return array if mask.all() else array[mask]


def _pick_lines(lines: Lines, mask: BoolArray) -> Lines:
    """Return the lines of the rows ``mask`` keeps (``lines`` itself when it keeps all)."""
    return lines if mask.all() else lines[mask]


def _kept_rows(mask: BoolArray) -> IntArray | None:
    """Return the positions of the rows ``mask`` keeps, or None when it keeps every row (a
    series then takes the table's arrays without a copy); found once for a series' steps,
    values and lines."""
    return None if mask.all() else np.flatnonzero(mask)


#: TensorBoard's export file name: ``run-<run>-tag-<tag>``.
TB_EXPORT_NAME = re.compile(r"run[-_](?P<run>.*?)-tag-(?P<tag>.+)$")
#: Run names of validation runs (Keras writes ``logs/train`` and ``logs/validation``).
VALIDATION_RUNS = frozenset({"val", "valid", "validation", "eval", "evaluation"})


def _validation_run(source: str) -> bool:
    """Return True when an export's file name says its run is the validation run."""
    match = TB_EXPORT_NAME.search(PurePath(source).stem)
    return match is not None and normalise(match.group("run")).strip("/") in VALIDATION_RUNS


def tensorboard_export_run(
    steps: Column,
    values: Column,
    *,
    tag: str,
    lines: Lines | None,
    source: str,
    reader: str,
    hints: ColumnHints | None = None,
    walls: Column | None = None,
) -> Run:
    """Return the run of a TensorBoard export: one series, named after its tag.

    The export holds one run x one tag: the series is the validation loss when
    ``--val-col`` is given or the tag (or file name) says validation (``val_loss``,
    ``run-x-tag-eval_loss.csv``), else the main (train) curve.  Points are put in step
    order, as TensorBoard draws them (an export of several event files interleaves them).
    """
    from lossdoctor.ingest.sessions import sessions

    notes: list[str] = []
    wall_values = walls.values if walls is not None else np.full(steps.values.shape, np.nan)
    found = sessions(wall_values, steps.values, values.values)
    if found.note or (steps.values[1:] < steps.values[:-1]).any():
        order = found.order
        steps = Column(found.steps, steps.present[order], steps.garbage)
        values = Column(values.values[order], values.present[order], values.garbage)
        lines = None if lines is None else lines[order]
        notes.append(
            found.note or "steps were out of order (no wall times to order them): sorted by step"
        )
    table = Table(columns={"Step": steps, tag: values}, lines=lines)
    is_val = bool(hints and hints.val) or looks_like_validation(tag) or _validation_run(source)
    role_hints = (
        ColumnHints(val=tag, step="Step") if is_val else ColumnHints(train=tag, step="Step")
    )
    run = table_to_run(table, source=source, reader=reader, hints=role_hints)
    role = VAL if is_val else TRAIN
    why = (
        " (--val-col)"
        if hints and hints.val
        else " (the tag says validation)"
        if looks_like_validation(tag)
        else " (the run's name says validation)"
        if is_val
        else ""
    )
    header = f"columns: {role}=Value (tag '{tag}'){why}; x: Step"
    runs = [
        replace(one, notes=(header, *notes, *one.notes[1:]), groups=()).with_meta(
            role, export="TensorBoard"
        )
        for one in run.runs()
    ]
    return replace(runs[-1], groups=tuple(runs) if run.groups else ())


def series_run(
    columns: dict[str, tuple[FloatArray, FloatArray]],
    *,
    source: str,
    reader: str,
    hints: ColumnHints | None = None,
    notes: list[str] | None = None,
    x_kind: XKind = "step",
) -> Run:
    """Return the run made of named series that each carry their own steps (event-file
    tags, MLflow metric keys), counting ``x_kind``.  Roles are chosen from the names as
    for table columns; steps that go backwards are resolved per series as in
    :func:`table_to_run`.

    Raises :class:`InputError` when no name is a loss.
    """
    names = list(columns)
    try:
        choice = choose_columns(names, hints)
    except KeyError as exc:
        raise InputError(str(exc.args[0]), path=source) from None
    roles = dict(choice.roles)
    out_notes = list(notes or [])
    roles = promote_single_loss(roles, out_notes)
    if TRAIN not in roles:
        shown = ", ".join(names[:20]) or "none"
        raise NotALogError(
            f"no loss series found (series: {shown}); name it with --train-col", path=source
        )
    series: dict[str, Series] = {}
    for role, name in roles.items():
        steps, values, meta, restart_notes = superseded_left_out(*columns[name])
        out_notes.extend(f"'{name}': {note}" for note in restart_notes)
        series[role] = Series(
            role=role, column=name, steps=steps, values=values, x_kind=x_kind, meta=meta
        )
    used = ", ".join(f"{role}={name}" for role, name in roles.items())
    out_notes.insert(0, f"series: {used}")
    return Run(source=source, reader=reader, series=series, notes=tuple(dict.fromkeys(out_notes)))
