"""Text where a log should be: a TSV or CSV whose cells are mostly words (a provenance list, a
spreadsheet of notes) is no loss log, however many losses its notes mention; nor is a
table of per-run summaries (one row per run, no step axis).  A table
of numbers is read by :mod:`lossdoctor.ingest.delimited`; a text log is no table.  A
label or settings file whose loss-named key holds names of losses is no log either."""

from __future__ import annotations

import re

import numpy as np

from lossdoctor.ingest.delimited import SNIFF_LINES, is_number, sniff_delimiter
from lossdoctor.ingest.table import MISSING_TOKENS, Column, Table

#: Rows below the header a table of text needs (a header and one line could be a log's).
MIN_ROWS = 2
#: Share of a table's cells below the header that must be words (not numbers, not empty).
MIN_WORD_SHARE = 0.5


def _is_name(cell: str) -> bool:
    """Return True when a header cell names a column: words without digits (a log line's
    ``Epoch 1`` is no name), no ``key: value``."""
    return bool(cell) and not any(c.isdigit() or c in ":=" for c in cell)


def text_table_problem(head: str) -> str | None:
    """Return why a text starting with ``head`` is a table of text and no loss log, or
    None: its first lines split on one delimiter (tab, comma, ``;`` or ``|``) into the
    same number of cells, the first line names the columns, and at least half the cells
    below it are words; a column named like a loss whose cells are numbers keeps it a
    log."""
    lines = [ln for ln in head.split("\n", SNIFF_LINES + 1)[: SNIFF_LINES + 1] if ln.strip()]
    if len(lines) < MIN_ROWS + 1:
        return None
    delimiter = sniff_delimiter(lines)
    if delimiter is None:
        return None
    header = [c.strip().strip('"') for c in lines[0].split(delimiter)]
    rows = [[c.strip().strip('"') for c in ln.split(delimiter)] for ln in lines[1:]]
    rows = [r for r in rows if len(r) == len(header)]
    if len(rows) < MIN_ROWS or not all(_is_name(c) for c in header):
        return None
    cells = [c for r in rows for c in r]
    words = sum(1 for c in cells if c and not is_number(c) and c.lower() not in MISSING_TOKENS)
    if words < MIN_WORD_SHARE * len(cells):
        return None
    for index, name in enumerate(header):
        column = [r[index] for r in rows if r[index]]
        if "loss" in name.lower() and column and all(is_number(c) for c in column):
            return None
    shown = ", ".join(header[:12]) + (", ..." if len(header) > 12 else "")
    return f"not a loss log: a table of text (columns: {shown}), no column of loss values"


#: Share of a text column's distinct cells that must name a loss for the file to be a
#: label or settings file rather than a log whose loss column went wrong.
LOSS_NAMES_SHARE = 0.5


def loss_names(column: Column) -> str:
    """Return the first distinct texts of a column without a single number when most of
    them name a loss (``'loss'``, ``'train/box_loss'``: a label or settings file naming
    a log's columns), else ''."""
    if column.present.any() or column.texts is None:
        return ""
    texts = [t.strip().strip('"') for t in column.texts]
    texts = list(dict.fromkeys(t for t in texts if t and t.lower() not in MISSING_TOKENS))
    if not texts or sum("loss" in t.lower() for t in texts) < LOSS_NAMES_SHARE * len(texts):
        return ""
    return ", ".join(f"'{t}'" for t in texts[:3]) + (", ..." if len(texts) > 3 else "")


#: Rows a table of per-run summaries has at the most (a log may name its rows).
MAX_SUMMARY_ROWS = 50
#: A cell that looks like a date or a time of day (``2024-06-10``, ``12:04``), not a name.
_DATE_OR_TIME = re.compile(r"\d{1,4}[-/:.]\d{1,2}[-/:.]\d{1,4}|\d{1,2}:\d{2}")


def summary_table_problem(table: Table, train: str) -> str | None:
    """Return why a table without a step or epoch column is a table of per-run summaries
    (``run,lr,final loss`` / ``a,0.1,2.3`` / ``b,0.01,1.9``: a notes table, a sweep's
    results) and no training log, or None: it has a few rows (at most
    :data:`MAX_SUMMARY_ROWS` holding a ``train`` value) and its first column names each
    such row with a text of its own (no number, no date or time), so that no two rows
    belong to one run.  A log read in row order has no such column (a run's rows share
    its name; a phase column repeats)."""
    rows = np.flatnonzero(table.columns[train].present)
    if not MIN_ROWS <= rows.shape[0] <= MAX_SUMMARY_ROWS:
        return None
    for name, column in table.columns.items():
        if column.texts is None:
            if column.present[rows].any():
                return None  # the first column holds numbers
            continue
        cells = [column.texts[i].strip().strip('"') for i in rows]
        if not any(cells):
            continue  # an empty column (a markdown table's edge)
        if not all(cells) or any(c.lower() in MISSING_TOKENS or is_number(c) for c in cells):
            return None
        if len(set(cells)) < len(cells) or any(_DATE_OR_TIME.search(c) for c in cells):
            return None
        shown = ", ".join(cells[:4]) + (", ..." if len(cells) > 4 else "")
        return (
            f"not a loss log: a table of {len(cells)} per-run summaries (one row each in"
            f" '{name}': {shown}), no step or epoch column"
        )
    return None
