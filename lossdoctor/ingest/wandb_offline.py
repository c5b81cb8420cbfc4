"""W&B run files (``wandb/offline-run-*/run-<id>.wandb``, also online runs' local copy),
read without the ``wandb`` package: LevelDB-log framed ``Record`` protobufs (see
:mod:`lossdoctor.ingest.leveldblog`) whose ``history`` records hold one row of
``wandb.log`` each: items ``key`` + ``value_json`` (or, from wandb 0.2x on, typed
``number``/``integer`` fields) and the step in ``step.num``.

Field numbers from wandb's ``wandb_internal.proto`` (checked against wandb 0.31.0):
``Record{num=1, history=2, run=17}``, ``HistoryRecord{item=1, step=2}``,
``HistoryItem{key=1, nested_key=2, integer=5 (sint64), number=6 (double), value_json=16}``,
``HistoryStep{num=1}``, ``RunRecord{run_id=1, project=3, display_name=8}``.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from functools import cache
from typing import Any

from lossdoctor.errors import InputError
from lossdoctor.ingest.columns import ColumnHints
from lossdoctor.ingest.leveldblog import read_records
from lossdoctor.ingest.trackers import as_arrays, number, tracker_run
from lossdoctor.model import Run

#: History keys W&B adds itself (its step counter, times, system metrics).
SYSTEM_PREFIXES = ("_", "system/")


@cache
def record_class() -> Any:
    """Return the ``Record`` message class (only the fields read here; built once)."""
    from lossdoctor.ingest.tfevents_schema import message_class

    return message_class(
        "lossdoctor.wandb",
        {
            "HistoryItem": [("key", 1, "string", False), ("nested_key", 2, "string", True),
                            ("integer", 5, "sint64", False), ("number", 6, "double", False),
                            ("value_json", 16, "string", False)],
            "HistoryStep": [("num", 1, "int64", False)],
            "HistoryRecord": [("item", 1, "HistoryItem", True), ("step", 2, "HistoryStep", False)],
            "RunRecord": [("run_id", 1, "string", False), ("project", 3, "string", False),
                          ("display_name", 8, "string", False)],
            "Record": [("num", 1, "int64", False), ("history", 2, "HistoryRecord", False),
                       ("run", 17, "RunRecord", False)],
        },
    )  # fmt: skip


def _item_value(item: Any) -> float | None:
    """Return the number an item holds (NaN and Inf kept), or None for other values."""
    if item.value_json:
        try:
            value = json.loads(item.value_json)
        except ValueError:
            return None
        return number(value)  # "NaN", "Infinity" strings too
    if item.HasField("number"):
        return float(item.number)
    if item.HasField("integer"):
        return float(item.integer)
    return None


def read_wandb_file(data: bytes, *, source: str, hints: ColumnHints | None = None) -> Run:
    """Return the run in a W&B run file: one series per logged number, on ``_step``, or
    on the trainer's logged step (``train/global_step``) or ``--step-col``'s key (see
    :func:`~lossdoctor.ingest.trackers.on_step_key`).

    Raises :class:`InputError` when it holds no history.
    """
    from google.protobuf.message import DecodeError

    records = read_records(data, source=source)
    parse = record_class().FromString
    columns: dict[str, tuple[list[float], list[float]]] = {}
    rows = undecodable = 0
    name = ""
    for payload in records.payloads:
        try:
            record = parse(payload)
        except DecodeError:
            undecodable += 1
            continue
        if record.HasField("run") and not name:
            name = record.run.display_name or record.run.run_id
        if not record.HasField("history"):
            continue
        rows += 1
        items = {
            "/".join(item.nested_key) if item.nested_key else item.key: item
            for item in record.history.item
        }
        step_item = items.get("_step")
        step = _item_value(step_item) if step_item is not None else None
        if step is None or math.isnan(step):
            step = float(record.history.step.num)
        for key, item in items.items():
            if key.startswith(SYSTEM_PREFIXES):
                continue
            value = _item_value(item)
            if value is None:
                continue
            steps, values = columns.setdefault(key, ([], []))
            steps.append(step)
            values.append(value)
    if not columns:
        raise InputError(f"W&B run file holds no logged numbers ({rows} history rows)", path=source)
    notes = [f"W&B run file: {rows} history rows" + (f" of run '{name}'" if name else "")]
    if records.truncated:
        notes.append("the last record is cut off (run still being written?): read up to it")
    if records.bad or undecodable:
        notes.append(f"{records.bad + undecodable} damaged records were skipped")
    run = tracker_run(
        as_arrays(columns), source=source, reader="wandb-offline", hints=hints, notes=notes,
        own="_step",
    )  # fmt: skip
    return replace(run, name=name)
