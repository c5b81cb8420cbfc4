"""The Hugging Face Trainer's notebook table (``NotebookProgressCallback``), as people paste
it from Jupyter, Colab or an unsloth notebook: an optional progress banner
(`` [3000/3000 12:34, Epoch 3/3]``), a header row (``Step  Training Loss  Validation
Loss  ...``) and one row per logging or evaluation step, tab- or space-separated, with
``No log`` where a value was not logged yet.
"""

from __future__ import annotations

import re

from lossdoctor.ingest.columns import ColumnHints
from lossdoctor.ingest.table import Table, coerce_objects, table_to_run
from lossdoctor.model import Run

#: The header row: the x column, then the training loss column.
HEADER = re.compile(r"^\s*(?:Epoch\s+)?(?:Step|Epoch)\s+Training Loss\b")
#: The banner the callback prints above the table.
BANNER = re.compile(r"^\s*\[\s*(\d+)/(\d+)\s[^\]]*\]\s*$")
_BANNER_EPOCH = re.compile(r"Epoch\s+([\d.]+)/(\d+)")
#: Lines searched for the header.
HEAD_LINES = 40
#: Header names the callback writes, longest first (it title-cases metric keys).
KNOWN_NAMES = {
    "Step": "step",
    "Epoch": "epoch",
    "Training Loss": "loss",
    "Validation Loss": "eval_loss",
}
_NO_LOG = re.compile(r"\bNo log\b")


def find_header(text: str) -> int | None:
    """Return the index of the table's header line among the first lines, or None."""
    for index, line in enumerate(text.split("\n", HEAD_LINES)[:HEAD_LINES]):
        if HEADER.match(line):
            return index
    return None


def _header_cells(header: str, width: int) -> list[str]:
    """Return the header's column names, ``width`` of them when the rows say so."""
    stripped = header.strip()
    if "\t" in stripped:
        cells = [c.strip() for c in stripped.split("\t")]
    else:
        cells = re.split(r"\s{2,}", stripped)
    if len(cells) == width:
        return cells
    # one space between names: take the callback's known names, then single words
    words = stripped.split()
    cells, i = [], 0
    while i < len(words):
        pair = " ".join(words[i : i + 2])
        if pair in KNOWN_NAMES:
            cells.append(pair)
            i += 2
        else:
            cells.append(words[i])
            i += 1
    if len(cells) > width:
        cells = [*cells[: width - 1], " ".join(cells[width - 1 :])]
    return cells + [f"column {n + 1}" for n in range(len(cells), width)]


def _key(name: str) -> str:
    return KNOWN_NAMES.get(name, name.strip().lower().replace(" ", "_"))


def row_cells(line: str) -> list[str | None] | None:
    """Return the cells of a table row (None for ``No log``), or None when ``line`` is no
    row (its first cell is not a number): the one row parser of ``check`` and ``watch``."""
    cells: list[str | None] = [
        None if c == "\x00" else c for c in _NO_LOG.sub("\x00", line).replace("\t", " ").split()
    ]
    if not cells or not _is_number(cells[0]):
        return None
    return cells


def column_keys(header: str, width: int) -> list[str]:
    """Return the keys of the ``width`` columns under ``header`` (``step``, ``loss``,
    ``eval_loss``, other names in lower case with ``_`` for blanks)."""
    return [_key(name) for name in _header_cells(header, width)]


def read_notebook_table(
    text: str, header_at: int, *, source: str, hints: ColumnHints | None = None
) -> Run:
    """Return the run of a pasted notebook table whose header is line ``header_at`` (0-based).

    Raises :class:`~lossdoctor.errors.InputError` when no row holds a loss.
    """
    lines = text.split("\n")
    rows: list[list[str | None]] = []
    numbers: list[int] = []
    for index in range(header_at + 1, len(lines)):
        cells = row_cells(lines[index])
        if cells is None:
            continue
        rows.append(cells)
        numbers.append(index + 1)
    width = max((len(r) for r in rows), default=0)
    keys = column_keys(lines[header_at], width) if width else []
    columns = {}
    for position, key in enumerate(keys):
        cells_at = [r[position] if position < len(r) else None for r in rows]
        columns[key] = coerce_objects(cells_at, nan_is_missing=False)
    import numpy as np

    table = Table(columns=columns, lines=np.asarray(numbers, dtype=np.int64))
    table.notes.append(table_note(lines[:header_at]))
    return table_to_run(table, source=source, reader="hf-notebook-table", hints=hints)


def table_note(above: list[str]) -> str:
    """Return the note on a notebook table with the lines ``above`` its header (its
    progress banner among them, or not): what ``check`` and ``watch`` say of it."""
    banner = next((BANNER.match(ln) for ln in above if BANNER.match(ln)), None)
    what = "Hugging Face notebook table"
    if banner is not None:
        done, total = banner.group(1), banner.group(2)
        epoch = _BANNER_EPOCH.search(banner.group(0))
        epochs = f", epoch {epoch.group(1)}/{epoch.group(2)}" if epoch else ""
        what += f" (progress banner: step {done}/{total}{epochs})"
    return what


def _is_number(cell: str | None) -> bool:
    if cell is None:
        return False
    try:
        float(cell)
    except ValueError:
        return False
    return True
