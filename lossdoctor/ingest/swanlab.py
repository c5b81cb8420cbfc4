"""SwanLab 0.8+ run files (``swanlog/run-<time>-<id>/run-<id>.swanlab``), read without the
``swanlab`` package: the same LevelDB-log framing as W&B (ident ``:SWL``, see
:mod:`lossdoctor.ingest.leveldblog`) around ``swanlab.record.v1.Record`` protobufs whose
``scalar`` records hold one logged number each.  The JSON records of an older
``backup.swanlab`` are read by :mod:`lossdoctor.ingest.swanlab_legacy`.

Field numbers from swanlab's ``record.proto`` and ``data.proto`` (checked against swanlab
0.10.3): ``Record{num=1, start=10, scalar=13}``, ``StartRecord{name=4, id=10}`` (the
experiment's name), ``ScalarRecord{key=1, step=2, value=5}``, ``ScalarValue{number=1}``.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache
from typing import Any

from lossdoctor.errors import InputError
from lossdoctor.ingest.columns import ColumnHints
from lossdoctor.ingest.leveldblog import read_records
from lossdoctor.model import Run


@cache
def record_class() -> Any:
    """Return the ``Record`` message class (only the fields read here; built once)."""
    from lossdoctor.ingest.tfevents_schema import message_class

    return message_class(
        "lossdoctor.swanlab",
        {
            "ScalarValue": [("number", 1, "double", False)],
            "ScalarRecord": [("key", 1, "string", False), ("step", 2, "int64", False),
                             ("value", 5, "ScalarValue", False)],
            "StartRecord": [("name", 4, "string", False), ("id", 10, "string", False)],
            "Record": [("num", 1, "int64", False), ("start", 10, "StartRecord", False),
                       ("scalar", 13, "ScalarRecord", False)],
        },
    )  # fmt: skip


def read_swanlab_file(data: bytes, *, source: str, hints: ColumnHints | None = None) -> Run:
    """Return the run in a SwanLab run file: one series per logged key, on its step; the
    run named by its experiment's name.

    Raises :class:`InputError` when it holds no scalar.
    """
    from google.protobuf.message import DecodeError

    records = read_records(data, source=source)
    from lossdoctor.ingest import swanlab_legacy

    backup = swanlab_legacy.backup_scalars(records.payloads)
    if backup is not None:
        legacy, name = backup
        if not legacy:
            raise InputError("SwanLab backup file holds no logged numbers", path=source)
        count = sum(len(steps) for steps, _ in legacy.values())
        notes = [f"SwanLab (before 0.8) backup file: {count} scalars"]
        if records.truncated:
            notes.append("the last record is cut off (run still being written?): read up to it")
        run = swanlab_legacy.columns_run(legacy, source=source, hints=hints, notes=notes)
        return replace(run, name=name)
    parse = record_class().FromString
    columns: dict[str, tuple[list[float], list[float]]] = {}
    damaged = records.bad
    name = ""
    for payload in records.payloads:
        try:
            record = parse(payload)
        except DecodeError:
            damaged += 1
            continue
        if record.HasField("start") and not name:
            name = record.start.name or record.start.id
        if not record.HasField("scalar") or record.scalar.key.startswith("__"):
            continue
        steps, values = columns.setdefault(record.scalar.key, ([], []))
        steps.append(float(record.scalar.step))
        values.append(float(record.scalar.value.number))
    if not columns:
        raise InputError("SwanLab run file holds no logged numbers", path=source)
    notes = [f"SwanLab run file: {sum(len(s) for s, _ in columns.values())} scalars"]
    if records.truncated:
        notes.append("the last record is cut off (run still being written?): read up to it")
    if damaged:
        notes.append(f"{damaged} damaged records were skipped")
    run = swanlab_legacy.columns_run(columns, source=source, hints=hints, notes=notes)
    return replace(run, name=name)
