"""trackio's local store: one SQLite database per project (``~/.cache/huggingface/trackio/
<project>.db``, or ``$TRACKIO_DIR``), and its Parquet exports.

The ``metrics`` table holds one row per ``trackio.log`` call: ``run_name``, ``step`` and a
JSON object of the values (``NaN``/``Infinity`` written as strings; the column is TEXT in
older versions and a BLOB in newer ones; older versions also carry ``project_name``).
One run per ``run_name`` (``--run`` picks).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

from lossdoctor.errors import InputError, no_matching_run
from lossdoctor.ingest.columns import ColumnHints
from lossdoctor.ingest.trackers import as_arrays, tracker_run
from lossdoctor.ingest.trackers import number as to_number
from lossdoctor.model import Run

#: Columns a trackio ``metrics`` table has (in every version seen).
TRACKIO_COLUMNS = frozenset({"run_name", "step", "metrics"})

Rows = list[tuple[str, float, dict[str, Any]]]


def is_trackio(tables: dict[str, set[str]]) -> bool:
    """Return True when a database's tables (name -> columns) are trackio's."""
    return tables.get("metrics", set()) >= TRACKIO_COLUMNS


def rows_to_runs(
    rows: Rows, *, source: str, hints: ColumnHints | None, run: str | None, reader: str
) -> list[Run]:
    """Return one run per run name of (run name, step, values) rows, in name order."""
    by_run: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    for name, step, values in rows:
        series = by_run.setdefault(name, {})
        for key, raw in values.items():
            number = to_number(raw)
            if number is None:
                continue
            steps, points = series.setdefault(key, ([], []))
            steps.append(step)
            points.append(number)
    names = sorted(by_run)
    if run is not None:
        names = [n for n in names if run in n]
        if not names:
            raise no_matching_run(run, sorted(by_run), source)
    if not names:
        raise InputError("the trackio store holds no metrics", path=source)
    runs = []
    for name in names:
        label = source if len(by_run) == 1 else f"{source}#{name}"
        found = tracker_run(
            as_arrays(by_run[name]), source=label, reader=reader, hints=hints,
            notes=[f"trackio run '{name}'"], own="step",
        )  # fmt: skip
        runs.append(replace(found, name=name))
    return runs


def read_trackio_db(
    conn: sqlite3.Connection, *, source: str, hints: ColumnHints | None, run: str | None
) -> list[Run]:
    """Return one run per run name in an open trackio database.

    Raises :class:`InputError` when it holds no metrics or ``run`` matches none.
    """
    try:
        fetched = conn.execute("SELECT run_name, step, metrics FROM metrics ORDER BY id").fetchall()
    except sqlite3.Error as exc:
        raise InputError(f"not a trackio database ({exc})", path=source) from None
    rows: Rows = []
    bad = 0
    for name, step, blob in fetched:
        try:
            values = json.loads(blob)
        except (ValueError, TypeError):
            bad += 1
            continue
        if isinstance(values, dict):
            rows.append((str(name), float(step), values))
    runs = rows_to_runs(rows, source=source, hints=hints, run=run, reader="trackio")
    if bad:
        runs = [replace(r, notes=(*r.notes, f"{bad} rows that are not JSON skipped")) for r in runs]
    return runs


def read_trackio_parquet(
    path: Path, *, source: str, hints: ColumnHints | None, run: str | None
) -> list[Run]:
    """Return one run per run name in a trackio Parquet export (columns ``run_name``,
    ``step`` and one per metric, or a ``metrics`` JSON column).

    Raises :class:`InputError` when it is not such an export.
    """
    import polars as pl

    try:
        frame = pl.read_parquet(path)
    except Exception as exc:  # polars raises several kinds for a bad file
        raise InputError(
            f"not a readable Parquet file ({type(exc).__name__})", path=source
        ) from None
    if not {"run_name", "step"} <= set(frame.columns):
        raise InputError("Parquet file without run_name and step columns", path=source)
    skip = {"id", "timestamp", "run_name", "step", "run_id", "project_name", "log_id", "space_id"}
    rows: Rows = []
    for record in frame.iter_rows(named=True):
        values = {k: v for k, v in record.items() if k not in skip and k != "metrics"}
        if isinstance(record.get("metrics"), str | bytes):
            with contextlib.suppress(ValueError):
                values.update(json.loads(record["metrics"]))
        rows.append((str(record["run_name"]), float(record["step"]), values))
    return rows_to_runs(rows, source=source, hints=hints, run=run, reader="trackio-parquet")
