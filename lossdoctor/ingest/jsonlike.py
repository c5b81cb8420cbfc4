"""JSON and JSON Lines logs: records, Hugging Face ``trainer_state.json``, Keras
``History.history`` dumps and TensorBoard JSON exports."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import numpy as np

from lossdoctor.errors import InputError, NotALogError
from lossdoctor.ingest.columns import ColumnHints
from lossdoctor.ingest.provenance import mark_smoothing
from lossdoctor.ingest.table import Table, coerce_objects, table_to_run, tensorboard_export_run
from lossdoctor.model import Run
from lossdoctor.safeio import json_loads

#: Keys of the Hugging Face Trainer's end-of-training summary entry (not a curve point).
HF_SUMMARY_KEYS = frozenset({"train_runtime", "train_samples_per_second", "total_flos"})


def records_table(records: Sequence[Mapping[str, Any]], lines: list[int] | None) -> Table:
    """Return a table with one column per key seen in ``records`` (first-seen order)."""
    keys: dict[str, None] = {}
    for record in records:
        for key in record:
            keys.setdefault(str(key), None)
    columns = {}
    for key in keys:
        cells = [record.get(key) for record in records]
        columns[key] = coerce_objects(cells, nan_is_missing=False)
    line_array = None if lines is None else np.asarray(lines, dtype=np.int64)
    return Table(columns=columns, lines=line_array)


def read_jsonl(text: str, *, source: str, hints: ColumnHints | None = None) -> Run:
    """Return the run in JSON Lines ``text`` (one object a line; bad lines skipped and counted).

    Raises :class:`InputError` when no line holds a JSON object.
    """
    found = jsonl_records(text)
    records, lines = found.records, found.lines
    if not records:
        raise InputError("no line holds a JSON object", path=source, line=found.bad_first)
    from lossdoctor.ingest.frameworks import reshape_records

    records, lines, shape_notes = reshape_records(records, lines)
    table = records_table(records, lines)
    table.notes.extend(shape_notes)
    if found.bad:
        table.notes.append(bad_lines_note(found.bad, found.bad_first))
    run = table_to_run(table, source=source, reader="jsonl", hints=hints)
    return mark_smoothing(run, set(table.columns))


@dataclass
class JsonlRecords:
    """The objects of JSON Lines text, their line numbers, and the lines that are not
    objects (blank lines are neither)."""

    records: list[Mapping[str, Any]]
    lines: list[int]
    bad: int = 0
    bad_first: int | None = None


def jsonl_records(text: str, first: int = 1) -> JsonlRecords:
    """Return the objects of JSON Lines ``text`` whose first line is line ``first``."""
    found = JsonlRecords([], [])
    for number, raw in enumerate(text.splitlines(), start=first):
        stripped = raw.strip()
        if not stripped:
            continue
        try:
            obj = json_loads(stripped)
        except ValueError:
            obj = None
        if not isinstance(obj, dict):
            found.bad += 1
            found.bad_first = found.bad_first or number
            continue
        found.records.append(obj)
        found.lines.append(number)
    return found


def bad_lines_note(bad: int, first: int | None) -> str:
    """Return the note on ``bad`` lines that are not JSON objects (the first: ``first``)."""
    if bad == 1:
        return f"1 line that is not a JSON object was skipped (line {first})"
    return f"{bad} lines that are not JSON objects were skipped (first: {first})"


def _is_tb_export(obj: list[Any]) -> bool:
    return bool(obj) and all(isinstance(row, list) and len(row) == 3 for row in obj[:50])


def read_json(obj: Any, *, source: str, hints: ColumnHints | None = None) -> Run:
    """Return the run held by a parsed JSON document.

    Raises :class:`InputError` when the document is none of the known shapes.
    """
    if isinstance(obj, dict) and isinstance(obj.get("log_history"), list):
        entries = [e for e in obj["log_history"] if isinstance(e, dict)]
        points = [e for e in entries if not HF_SUMMARY_KEYS & e.keys()]
        if not points:
            raise InputError("trainer_state.json has an empty log_history", path=source)
        table = records_table(points, None)
        return table_to_run(table, source=source, reader="hf-trainer-state", hints=hints)
    if isinstance(obj, list) and _is_tb_export(obj):
        steps = coerce_objects([r[1] for r in obj], nan_is_missing=False)
        values = coerce_objects([r[2] for r in obj], nan_is_missing=False)
        tag = PurePath(source).stem or "value"
        return tensorboard_export_run(
            steps, values, tag=tag, lines=None, source=source, reader="tensorboard-json",
            hints=hints, walls=coerce_objects([r[0] for r in obj], nan_is_missing=False),
        )  # fmt: skip
    if isinstance(obj, list) and obj and all(isinstance(r, dict) for r in obj):
        return table_to_run(
            records_table(obj, None), source=source, reader="json-records", hints=hints
        )
    if isinstance(obj, dict):
        lists = {k: v for k, v in obj.items() if isinstance(v, list)}
        record_lists = [v for v in lists.values() if v and all(isinstance(r, dict) for r in v)]
        if len(record_lists) == 1:
            return table_to_run(
                records_table(record_lists[0], None),
                source=source,
                reader="json-records",
                hints=hints,
            )
        if lists:
            return _history_dict(lists, source=source, hints=hints)
    kind = type(obj).__name__ if not isinstance(obj, dict | list) else "JSON of another shape"
    raise NotALogError(
        f"JSON holds no loss log ({kind}); expected records, a trainer_state.json, "
        "a dict of lists or a TensorBoard export",
        path=source,
    )


def _history_dict(lists: dict[str, list[Any]], *, source: str, hints: ColumnHints | None) -> Run:
    """Return the run of a Keras ``History.history``-style dict of per-epoch lists."""
    length = max(len(v) for v in lists.values())
    columns = {}
    for key, values in lists.items():
        padded = list(values) + [None] * (length - len(values))
        columns[key] = coerce_objects(padded, nan_is_missing=False)
    if not any(k.lower() in ("epoch", "step", "iteration", "iter") for k in lists):
        epochs = np.arange(length, dtype=np.float64)
        columns = {"epoch": coerce_objects(epochs.tolist(), nan_is_missing=False), **columns}
    table = Table(columns=columns, lines=None)
    return table_to_run(table, source=source, reader="json-history", hints=hints)
