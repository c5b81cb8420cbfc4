"""MLflow tracking data: the file store (``mlruns``) and the SQLite store (``mlflow.db``)."""

from __future__ import annotations

import re
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lossdoctor.errors import InputError, no_matching_run
from lossdoctor.ingest.columns import ColumnHints
from lossdoctor.ingest.sniff import METRIC_LINE
from lossdoctor.ingest.table import series_run
from lossdoctor.ingest.trackers import tracker_run
from lossdoctor.model import FloatArray, Run
from lossdoctor.safeio import is_regular_file, read_whole, sqlite_uri

if TYPE_CHECKING:
    # imported where a database is read
    import sqlite3

_FLOAT_MAX = sys.float_info.max


def parse_metric_text(text: str, *, source: str) -> tuple[FloatArray, FloatArray]:
    """Return (steps, values) of one MLflow metric file's text.

    Raises :class:`InputError` naming the first line that is not ``ts value [step]``.
    """
    steps: list[float] = []
    values: list[float] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = METRIC_LINE.match(line)
        if not match:
            raise InputError(
                "not an MLflow metric line ('<ts> <value> <step>')", path=source, line=number
            )
        try:
            values.append(float(match.group(2)))
        except ValueError:
            raise InputError(
                f"'{match.group(2)}' is not a number", path=source, line=number
            ) from None
        steps.append(float(match.group(3) or 0))
    return np.asarray(steps, dtype=np.float64), np.asarray(values, dtype=np.float64)


def read_metric_file(text: str, *, source: str, hints: ColumnHints | None) -> Run:
    """Return the run of a single MLflow metric file (the series is named after the file)."""
    name = Path(source).name if source != "-" else "value"
    steps, values = parse_metric_text(text, source=source)
    columns = {name: (steps, values)}
    hints = hints or ColumnHints(train=name)
    return series_run(columns, source=source, reader="mlflow-metric", hints=hints)


#: ``run_name: <name>`` in a file-store run's ``meta.yaml``.
META_RUN_NAME = re.compile(r"^run_name:\s*['\"]?(.*?)['\"]?\s*$", re.MULTILINE)


def file_store_run_name(run_dir: Path) -> str:
    """Return an MLflow file-store run's name: its ``tags/mlflow.runName``, else the
    ``run_name`` of its ``meta.yaml`` ('' when neither says)."""
    tag = _small_text(run_dir / "tags" / "mlflow.runName").strip()
    if tag:
        return tag
    found = META_RUN_NAME.search(_small_text(run_dir / "meta.yaml"))
    return found.group(1).strip() if found else ""


def _small_text(path: Path) -> str:
    """Return a run folder's small text file ('' when it is missing or unreadable)."""
    if not is_regular_file(path):
        return ""
    try:
        return read_whole(path, str(path)).decode("utf-8", errors="replace")
    except InputError:
        return ""


def read_file_store_run(run_dir: Path, *, source: str, hints: ColumnHints | None) -> Run:
    """Return the run of an MLflow file-store run folder (``<run>/metrics/<key>``), named
    by its run name (:func:`file_store_run_name`)."""
    metrics = run_dir / "metrics"
    columns: dict[str, tuple[FloatArray, FloatArray]] = {}
    for path in sorted(p for p in metrics.rglob("*") if p.is_file()):
        key = path.relative_to(metrics).as_posix()
        text = read_whole(path, str(path)).decode("utf-8", errors="replace")
        columns[key] = parse_metric_text(text, source=str(path))
    if not columns:
        raise InputError("MLflow run has no metrics", path=source)
    run = tracker_run(
        columns, source=source, reader="mlflow-file", hints=hints, notes=[], own="step"
    )
    return replace(run, name=file_store_run_name(run_dir))


def _tables(conn: sqlite3.Connection) -> dict[str, set[str]]:
    """Return table name -> column names of an open database (empty when unreadable)."""
    import sqlite3

    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {n: {r[1] for r in conn.execute(f"PRAGMA table_info('{n}')")} for n in names}
    except sqlite3.Error:
        return {}


def read_sqlite(
    path: Path, *, source: str, hints: ColumnHints | None, run: str | None
) -> list[Run]:
    """Return one run per MLflow run in a SQLite tracking store (``--run`` picks one); a
    trackio database is read by :mod:`lossdoctor.ingest.trackio`.

    Raises :class:`InputError` when the file is not such a store or ``run`` matches none.
    """
    import sqlite3

    try:
        conn = sqlite3.connect(sqlite_uri(path), uri=True)
    except sqlite3.Error as exc:
        raise InputError(f"cannot open SQLite database ({exc})", path=source) from None
    try:
        from lossdoctor.ingest.trackio import is_trackio, read_trackio_db

        if is_trackio(_tables(conn)):
            return read_trackio_db(conn, source=source, hints=hints, run=run)
        try:
            names = {
                str(run_id): str(name)
                for run_id, name in conn.execute(
                    "SELECT run_uuid, COALESCE(name, run_uuid) FROM runs"
                ).fetchall()
            }
            rows = conn.execute(
                "SELECT run_uuid, key, step, value, is_nan FROM metrics "
                "ORDER BY run_uuid, key, timestamp, step"
            ).fetchall()
        except sqlite3.Error as exc:
            raise InputError(f"not an MLflow tracking database ({exc})", path=source) from None
    finally:
        conn.close()
    by_run: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    skipped = 0
    for run_id, key, step, value, is_nan in rows:
        step_number = _db_number(step if step is not None else 0)
        number = float("nan") if is_nan else _db_number(value)
        if step_number is None or number is None:
            skipped += 1
            continue
        if abs(number) >= _FLOAT_MAX:
            number = float("inf") if number > 0 else float("-inf")
        series = by_run.setdefault(str(run_id), {}).setdefault(str(key), ([], []))
        series[0].append(step_number)
        series[1].append(number)
    wanted = sorted(by_run, key=lambda r: str(names.get(r, r)))
    if run is not None:
        wanted = [r for r in wanted if run in names.get(r, r) or r.startswith(run)]
        if not wanted:
            choices = sorted(names.get(r, r) for r in by_run)
            raise no_matching_run(run, choices, source)
    if not wanted:
        raise InputError("the MLflow store holds no metrics", path=source)
    runs = []
    for run_id in wanted:
        columns = {
            key: (np.asarray(s, dtype=np.float64), np.asarray(v, dtype=np.float64))
            for key, (s, v) in by_run[run_id].items()
        }
        name = names.get(run_id, run_id)
        label = source if len(by_run) == 1 else f"{source}#{name}"
        found = replace(
            tracker_run(
                columns, source=label, reader="mlflow-sqlite", hints=hints, notes=[], own="step"
            ),
            name=name,
        )
        if skipped:
            note = f"{skipped} metric rows whose step or value is not a number were skipped"
            found = replace(found, notes=(*found.notes, note))
        runs.append(found)
    return runs


def _db_number(cell: object) -> float | None:
    """Return the float a database cell holds, or None for NULL, text or blobs."""
    if isinstance(cell, int | float) and not isinstance(cell, bool):
        return float(cell)
    return None
