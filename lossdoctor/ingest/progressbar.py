"""PyTorch Lightning progress bars captured to a file.

The TQDM bar (``Epoch 3: 100%|████| 250/250 [00:12<00:00, 20.1it/s, v_num=0,
train_loss=0.312, val_loss=0.345]``) and the Rich bar (``Epoch 3/9 ━━━━ 250/250 0:00:12 •
0:00:00 20.10it/s v_num: 0 train_loss: 0.312 val_loss: 0.345``) redraw one line many times
per epoch (carriage returns).  The step of a line is ``epoch x batches per epoch +
batch``; the bar keeps showing the last validation value during the next epoch, so a
validation value is taken once per epoch, from the epoch's last line.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from lossdoctor.ingest.columns import ColumnHints, looks_like_validation
from lossdoctor.ingest.jsonlike import records_table
from lossdoctor.ingest.lines import NUM
from lossdoctor.ingest.table import table_to_run
from lossdoctor.model import Run
from lossdoctor.safeio import parse_int

_TQDM = re.compile(r"^\s*Epoch (\d+):\s+\d+%\|[^|]*\|\s*(\d+)/(\d+)\s*\[([^\]]*)\]\s*$")
_RICH = re.compile(r"^\s*Epoch (\d+)/\d+\s+\S*\s+(\d+)/(\d+)\s+[\d:]+\s+•\s+\S+\s+\S+\s*(.*)$")
_PAIR = re.compile(rf"([A-Za-z_][\w/.-]*)(?:=|:\s)\s*({NUM})(?![\w.])")
#: Lightning pads the numbers of its TQDM bar's postfix to a width, a non-finite one too:
#: ``train_loss=nan.0``, ``inf.0`` (``Tqdm.format_num``).
_PADDED_NONFINITE = re.compile(r"(?<![\w.])(-?(?:nan|inf))\.0*(?![\w.])")
#: Lines searched for progress-bar lines when sniffing.
HEAD_CHARS = 1 << 16
#: Postfix keys that are not metrics.
SKIP_KEYS = frozenset({"v_num"})


def _match(line: str) -> tuple[int, int, int, str] | None:
    m = _TQDM.match(line) or _RICH.match(line)
    if m is None:
        return None
    epoch, done, total = (parse_int(m.group(i)) for i in (1, 2, 3))
    if epoch is None or done is None or total is None:
        return None  # counters of thousands of digits: not a progress bar
    return epoch, done, total, m.group(4)


def is_bar_line(line: str) -> bool:
    """Return True when ``line`` is a redraw of a Lightning bar (its reset to 0/N too)."""
    return _match(line) is not None


def bar_line(line: str) -> tuple[float, int, dict[str, float], dict[str, float]] | None:
    """Return (step, epoch, training values with ``epoch``, validation values) of one
    redraw of a Lightning bar (step = epoch x batches per epoch + batch); None for any
    other line and for the bar's reset to 0/N at an epoch's start (it shows the last
    epoch's values).  The one parser of these lines for ``check`` and ``watch``."""
    found = _match(line)
    if found is None:
        return None
    epoch, batch, total, postfix = found
    if batch == 0:
        return None
    postfix = _PADDED_NONFINITE.sub(r"\1", postfix)
    train: dict[str, float] = {"epoch": float(epoch)}
    val: dict[str, float] = {}
    for key, raw in _PAIR.findall(postfix):
        if key not in SKIP_KEYS:
            (val if looks_like_validation(key) else train)[key] = float(raw)
    return float(epoch * total + batch), epoch, train, val


def looks_like_progress_bar(text: str) -> bool:
    """Return True when the start of ``text`` holds at least two Lightning bar lines."""
    head_text = text[:HEAD_CHARS]
    if "Epoch " not in head_text:  # both bars start with it
        return False
    head = head_text.replace("\r", "\n").split("\n")
    return sum(1 for line in head if _match(line)) >= 2


def read_progress_bar(text: str, *, source: str, hints: ColumnHints | None = None) -> Run:
    """Return the run in a captured Lightning progress bar (steps = epoch x batches +
    batch; one validation point per epoch).

    Raises :class:`~lossdoctor.errors.InputError` when no bar line shows a loss.
    """
    by_step: dict[float, tuple[dict[str, Any], int]] = {}
    last_of_epoch: dict[int, tuple[float, dict[str, float], int]] = {}
    for number, physical in enumerate(text.split("\n"), start=1):
        for line in physical.split("\r"):
            found = bar_line(line)
            if found is None:
                continue
            step, epoch, train, val = found
            by_step[step] = ({"step": step, **train}, number)
            last_of_epoch[epoch] = (step, val, number)
    records: list[dict[str, Any]] = []
    lines: list[int] = []
    for _, (record, number) in sorted(by_step.items()):
        records.append(record)
        lines.append(number)
    val_points = 0
    for step, val, number in last_of_epoch.values():
        if val:
            records.append({"step": step, **val})
            lines.append(number)
            val_points += 1
    order = np.argsort([r["step"] for r in records], kind="stable")
    records = [records[i] for i in order]
    lines = [lines[i] for i in order]
    table = records_table(records, lines)
    table.notes.append(bar_note(val_points))
    return table_to_run(table, source=source, reader="text:lightning-progress", hints=hints)


def bar_note(val_points: int) -> str:
    """Return the note on a Lightning progress bar read with ``val_points`` validation
    values."""
    return (
        "Lightning progress bar: step = epoch x batches per epoch + batch; "
        f"{val_points} validation values, one per epoch (the bar repeats them)"
    )
