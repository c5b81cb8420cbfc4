"""SwanLab before 0.8, read without the ``swanlab`` package (layouts checked against
swanlab 0.4.12 and 0.7.20, which wrote the test fixtures).

* ``backup.swanlab`` (0.6 to 0.7, every mode): the LevelDB-log framing of
  :mod:`lossdoctor.ingest.leveldblog` (ident ``:SWL``) around JSON records
  ``{"model_type": "Scalar", "data": {"key": "train/loss", "step": 10, "metric":
  {"index": 10, "data": 2.31}}}``.
* ``logs/<column id>/<N>.log`` (local mode, with the swanboard dashboard): one JSON line a
  point, ``{"index": <step>, "data": <value>, "create_time": ...}``, beside a
  ``_summary.json``; the metric's name is in the dashboard database ``swanlog/runs.swanlab``
  (table ``tag``: ``name``, ``folder`` = the column id; ``experiment.run_id`` = the run
  folder's name; system metrics are not listed).  Without that database the folder name
  stands for the metric.

NaN and Inf are logged as the strings ``"NaN"`` and ``"INF"``.  Keys starting with
``__`` are SwanLab's system metrics, left out.
"""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import replace
from pathlib import Path

from lossdoctor.errors import InputError
from lossdoctor.ingest.columns import ColumnHints
from lossdoctor.ingest.trackers import as_arrays, tracker_run
from lossdoctor.ingest.trackers import number as to_number
from lossdoctor.model import Run
from lossdoctor.safeio import is_regular_file, parse_int, read_whole, sqlite_uri

#: The swanboard dashboard database beside the run folders.
DASHBOARD_DB = "runs.swanlab"
#: Name of a metric's summary file in ``logs/<column id>/``.
SUMMARY_FILE = "_summary.json"

Columns = dict[str, tuple[list[float], list[float]]]


def _add(columns: Columns, key: str, step: object, value: object) -> bool:
    """Add one point; return False when it is not a number on a whole step."""
    number, at = to_number(value), to_number(step)
    if number is None or at is None or not math.isfinite(at) or key.startswith("__"):
        return False
    steps, values = columns.setdefault(key, ([], []))
    steps.append(at)
    values.append(number)
    return True


def backup_scalars(payloads: list[bytes]) -> tuple[Columns, str] | None:
    """Return the scalars of a pre-0.8 ``backup.swanlab`` (JSON records) and its
    experiment's name ('' when none), or None when its records are not JSON (a 0.8+
    protobuf run file)."""
    if not payloads or not payloads[0].lstrip().startswith(b"{"):
        return None
    columns: Columns = {}
    name = ""
    for payload in payloads:
        try:
            record = json.loads(payload)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        data = record.get("data")
        if record.get("model_type") == "Experiment" and isinstance(data, dict) and not name:
            name = str(data.get("name") or "")
        if record.get("model_type") != "Scalar":
            continue
        if not isinstance(data, dict) or not isinstance(data.get("key"), str):
            continue
        metric = data.get("metric")
        value = metric.get("data") if isinstance(metric, dict) else None
        _add(columns, data["key"], data.get("step"), value)
    return columns, name


def is_logs_folder(files_by_folder: dict[Path, list[str]], logs: Path) -> bool:
    """Return True when ``logs`` (a ``logs`` folder, its sub-folders' files given) is a
    pre-0.8 SwanLab metric folder: a sub-folder holds ``_summary.json`` and ``<N>.log``."""
    return any(
        folder.parent == logs
        and SUMMARY_FILE in names
        and any(n.endswith(".log") and parse_int(n[:-4]) is not None for n in names)
        for folder, names in files_by_folder.items()
    )


def dashboard_names(run_dir: Path) -> tuple[dict[str, str], str]:
    """Return column id -> metric name for a run folder, and the experiment's name, from
    the dashboard database beside it (empty when there is none or it cannot be read)."""
    db = run_dir.parent / DASHBOARD_DB
    if not is_regular_file(db):
        return {}, ""
    try:
        conn = sqlite3.connect(sqlite_uri(db), uri=True)
        try:
            rows = conn.execute(
                "SELECT tag.folder, tag.name FROM tag JOIN experiment"
                " ON tag.experiment_id = experiment.id WHERE experiment.run_id = ?",
                (run_dir.name,),
            ).fetchall()
            found = conn.execute(
                "SELECT name FROM experiment WHERE run_id = ?", (run_dir.name,)
            ).fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return {}, ""
    names = {str(folder): str(name) for folder, name in rows if folder is not None}
    return names, str(found[0]) if found and found[0] else ""


def read_logs_folder(run_dir: Path, *, source: str, hints: ColumnHints | None) -> Run:
    """Return the run in a pre-0.8 SwanLab run folder's ``logs/`` (one series per metric),
    named by its experiment's name where the dashboard database has it.

    Raises :class:`InputError` when it holds no logged number.
    """
    names, name = dashboard_names(run_dir)
    columns: Columns = {}
    skipped = 0
    logs = run_dir / "logs"
    for folder in sorted(p for p in logs.iterdir() if p.is_dir()):
        if names and folder.name not in names:
            continue  # the dashboard lists the run's own metrics, not system ones
        key = names.get(folder.name, folder.name)
        parts = [p for p in folder.glob("*.log") if parse_int(p.stem) is not None]
        for part in sorted(parts, key=lambda p: int(p.stem)):
            text = read_whole(part, str(part)).decode("utf-8", errors="replace")
            for line in text.splitlines():
                try:
                    point = json.loads(line)
                except ValueError:
                    skipped += 1
                    continue
                if isinstance(point, dict):
                    _add(columns, key, point.get("index"), point.get("data"))
    if not columns:
        raise InputError("SwanLab run folder holds no logged numbers", path=source)
    notes = [f"SwanLab (before 0.8) metric files: {len(columns)} metrics"]
    if not names:
        notes.append(f"no {DASHBOARD_DB} beside the run: metrics named by their folder")
    if skipped:
        notes.append(f"{skipped} damaged lines were skipped")
    return replace(columns_run(columns, source=source, hints=hints, notes=notes), name=name)


def columns_run(
    columns: Columns, *, source: str, hints: ColumnHints | None, notes: list[str]
) -> Run:
    """Return the run of SwanLab series (step, value lists per key), on their step or
    ``--step-col``'s key (see :func:`~lossdoctor.ingest.trackers.on_step_key`)."""
    return tracker_run(
        as_arrays(columns), source=source, reader="swanlab", hints=hints, notes=notes,
        own="step",
    )  # fmt: skip
