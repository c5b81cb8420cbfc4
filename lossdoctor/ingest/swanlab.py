"""SwanLab 0.8+ run files (``swanlog/run-<time>-<id>/run-<id>.swanlab``), read without the
``swanlab`` package: the same LevelDB-log framing as W&B (ident ``:SWL``, see
:mod:`lossdoctor.ingest.leveldblog`) around ``swanlab.record.v1.Record`` protobufs whose
``scalar`` records hold one logged number each.  The JSON records of an older
``backup.swanlab`` are read by :mod:`lossdoctor.ingest.swanlab_legacy`.

Field numbers from swanlab's ``record.proto`` and ``data.proto`` (checked against swanlab
0.10.3): ``Record{num=1, scalar=13}``, ``ScalarRecord{key=1, step=2, value=5}``,
``ScalarValue{number=1}``.
"""

from __future__ import annotations

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
            "Record": [("num", 1, "int64", False), ("scalar", 13, "ScalarRecord", False)],
        },
    )  # fmt: skip


def read_swanlab_file(data: bytes, *, source: str, hints: ColumnHints | None = None) -> Run:
    """Return the run in a SwanLab run file: one series per logged key, on its step.

    Raises :class:`InputError` when it holds no scalar.
    """
    from google.protobuf.message import DecodeError

    records = read_records(data, source=source)
    from lossdoctor.ingest import swanlab_legacy

    legacy = swanlab_legacy.backup_scalars(records.payloads)
    if legacy is not None:
        if not legacy:
            raise InputError("SwanLab backup file holds no logged numbers", path=source)
        count = sum(len(steps) for steps, _ in legacy.values())
        notes = [f"SwanLab (before 0.8) backup file: {count} scalars"]
        if records.truncated:
            notes.append("the last record is cut off (run still being written?): read up to it")
        return swanlab_legacy.columns_run(legacy, source=source, hints=hints, notes=notes)
    parse = record_class().FromString
    columns: dict[str, tuple[list[float], list[float]]] = {}
    damaged = records.bad
    for payload in records.payloads:
        try:
            record = parse(payload)
        except DecodeError:
            damaged += 1
            continue
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
    return swanlab_legacy.columns_run(columns, source=source, hints=hints, notes=notes)
