"""torchtune's ``DiskLogger`` files (``log_<unix time>.txt``) and stdout lines:
``Step 1 | loss:2.0853 lr:2e-05 tokens_per_second_per_gpu:57.82`` (torchtune
``training/metric_logging.py``); the step is the optimizer step."""

from __future__ import annotations

import re
from typing import Any

from lossdoctor.errors import InputError
from lossdoctor.ingest.columns import ColumnHints
from lossdoctor.ingest.jsonlike import records_table
from lossdoctor.ingest.table import table_to_run
from lossdoctor.ingest.textlog import NUM, strip_prefix
from lossdoctor.model import Run

_LINE = re.compile(r"^\s*Step (\d+) \| ((?:[\w/.()-]+:\S+\s*)+)$")
_PAIR = re.compile(rf"([\w/.()-]+):({NUM})(?=\s|$)")
HEAD_LINES = 50


def looks_like_disk_log(head: str) -> bool:
    """Return True when most value lines among the first ones are torchtune lines."""
    if "Step " not in head:
        return False  # every torchtune line holds it
    lines = [strip_prefix(ln) for ln in head.split("\n", HEAD_LINES)[:HEAD_LINES] if ln.strip()]
    hits = sum(1 for ln in lines if _LINE.match(ln))
    return hits >= 2 and hits * 2 >= len(lines)


def read_disk_log(text: str, *, source: str, hints: ColumnHints | None = None) -> Run:
    """Return the run in a torchtune metric log (x = optimizer step).

    Raises :class:`InputError` when no line holds a loss.
    """
    records: list[dict[str, Any]] = []
    lines: list[int] = []
    for number, raw in enumerate(text.split("\n"), start=1):
        match = _LINE.match(strip_prefix(raw))
        if match is None:
            continue
        record: dict[str, Any] = {"step": float(match.group(1))}
        record.update((k, float(v)) for k, v in _PAIR.findall(match.group(2)))
        records.append(record)
        lines.append(number)
    if not any("loss" in r for r in records):
        raise InputError("torchtune log without a loss value", path=source)
    table = records_table(records, lines)
    return table_to_run(table, source=source, reader="text:torchtune", hints=hints)
