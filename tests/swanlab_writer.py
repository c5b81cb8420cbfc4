"""Write SwanLab run folders of the layouts before 0.8, as swanlab 0.7.20 writes them
(``swanlab/data/porter``, ``swanlab/data/callbacker/local.py``, ``swanlab/data/run/key.py``,
swanboard 0.1.9b3's ``tag`` and ``experiment`` tables; checked against folders that
swanlab 0.7.20 wrote in offline and local mode).  swanlab 0.8+ is the test dependency, so
the old layouts cannot be written by the library in the tests."""

from __future__ import annotations

import json
import sqlite3
import struct
import zlib
from pathlib import Path

BLOCK = 32768
HEADER = b":SWL" + struct.pack("<HB", 0xE1D6, 1)
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
TIME = "2024-06-10T08:00:00.000000+00:00"


def leveldb_log(payloads: list[bytes]) -> bytes:
    """Return ``payloads`` framed as a LevelDB log (W&B's and SwanLab's ``datastore``)."""
    out = bytearray(HEADER)
    for payload in payloads:
        rest, first = payload, True
        while True:
            left = BLOCK - len(out) % BLOCK
            if left < 7:
                out += b"\x00" * left
                continue
            chunk, rest = rest[: left - 7], rest[left - 7 :]
            kind = (FULL if not rest else FIRST) if first else (LAST if not rest else MIDDLE)
            crc = zlib.crc32(bytes([kind]) + chunk)
            out += struct.pack("<IHB", crc, len(chunk), kind) + chunk
            first = False
            if not rest:
                break
    return bytes(out)


def _record(model_type: str, data: dict[str, object]) -> bytes:
    return (json.dumps({"model_type": model_type, "data": data}) + "\n").encode()


def _value(v: float) -> float | str:
    return "NaN" if v != v else ("INF" if v in (float("inf"), float("-inf")) else v)


def backup_file(path: Path, metrics: dict[str, list[tuple[int, float]]]) -> None:
    """Write ``backup.swanlab`` (0.6-0.7): header, project, experiment, one Column record
    per key (system keys ``__swanlab__.*`` are ``SYSTEM`` columns), a Scalar per point."""
    experiment = {"id": "abc123", "name": "lora", "colors": ["#587ad2"] * 2,
                  "description": None, "tags": []}  # fmt: skip
    log = {"create_time": TIME, "message": "swanlab: Tracking run with swanlab version 0.7.20",
           "epoch": 1, "level": "INFO"}  # fmt: skip
    records = [
        _record("Header", {"backup_type": "DEFAULT", "create_time": TIME}),
        _record("Project", {"name": "ft", "workspace": None, "public": None}),
        _record("Experiment", experiment),
        _record("Log", log),
    ]
    for kid, (key, points) in enumerate(metrics.items()):
        cls = "SYSTEM" if key.startswith("__") else "CUSTOM"
        records.append(_record("Column", {"key": key, "kid": str(kid), "cls": cls,
                                          "column_type": "FLOAT", "chart_reference": "STEP",
                                          "section_name": key.split("/")[0], "error": None}))  # fmt: skip
        for epoch, (step, value) in enumerate(points, start=1):
            metric = {"index": step, "data": _value(value), "create_time": TIME}
            records.append(_record("Scalar", {"metric": metric, "key": key, "step": step,
                                              "epoch": epoch}))  # fmt: skip
    records.append(_record("Footer", {"success": True, "create_time": TIME}))
    path.write_bytes(leveldb_log(records))


def logs_folder(
    swanlog: Path,
    run_name: str,
    metrics: dict[str, list[tuple[int, float]]],
    *,
    db: bool = True,
    experiment: str = "lora",
) -> Path:
    """Write a local-mode run folder ``<swanlog>/<run_name>/logs/<kid>/1000.log`` (one JSON
    line a point) with ``_summary.json``, and (``db``) the dashboard's ``runs.swanlab``
    naming the run (``experiment``) and its own metrics (not the system ones).  Returns the
    run folder."""
    run = swanlog / run_name
    for kid, (_, points) in enumerate(metrics.items()):
        folder = run / "logs" / str(kid)
        folder.mkdir(parents=True)
        lines = [json.dumps({"index": s, "data": _value(v), "create_time": TIME})
                 for s, v in points]  # fmt: skip
        (folder / "1000.log").write_text("\n".join(lines) + "\n")
        finite = [v for _, v in points if v == v]
        (folder / "_summary.json").write_text(json.dumps({"max": max(finite), "min": min(finite),
                                                          "num": len(points)}))  # fmt: skip
    (run / "console").mkdir()
    (run / "console" / "2024-06-10.log").write_text("swanlab: Experiment lora has completed\n")
    if db:
        conn = sqlite3.connect(swanlog / "runs.swanlab")
        conn.execute('CREATE TABLE IF NOT EXISTS "experiment" ("id" INTEGER NOT NULL PRIMARY '
                     'KEY, "project_id" INTEGER NOT NULL, "run_id" TEXT NOT NULL, "name" '
                     'VARCHAR(100) NOT NULL)')  # fmt: skip
        conn.execute('CREATE TABLE IF NOT EXISTS "tag" ("id" INTEGER NOT NULL PRIMARY KEY, '
                     '"experiment_id" INTEGER NOT NULL, "name" VARCHAR(255) NOT NULL, "folder" '
                     'VARCHAR(255), "type" VARCHAR(10) NOT NULL)')  # fmt: skip
        exp = conn.execute("INSERT INTO experiment (project_id, run_id, name) VALUES (1, ?, ?)",
                           (run_name, experiment)).lastrowid  # fmt: skip
        for kid, key in enumerate(metrics):
            if not key.startswith("__"):
                conn.execute("INSERT INTO tag (experiment_id, name, folder, type) VALUES "
                             "(?, ?, ?, 'line')", (exp, key, str(kid)))  # fmt: skip
        conn.commit()
        conn.close()
    return run
