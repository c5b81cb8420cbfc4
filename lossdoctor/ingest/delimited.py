"""CSV and TSV logs: generic logs, Lightning ``metrics.csv``, Keras ``CSVLogger``,
TensorBoard CSV exports and W&B history exports."""

from __future__ import annotations

import io
import re
from pathlib import PurePath

import numpy as np
import pandas as pd

from lossdoctor.errors import InputError
from lossdoctor.ingest.columns import ColumnHints
from lossdoctor.ingest.table import (
    MISSING_TOKENS,
    Table,
    coerce_cells,
    table_to_run,
    tensorboard_export_run,
)
from lossdoctor.model import Run

DELIMITERS = (",", "\t", ";", "|")
#: Lines looked at to choose the delimiter.
SNIFF_LINES = 20
_TB_HEADER = ["wall time", "step", "value"]
_TB_TAG = re.compile(r"run[-_](?P<run>.*?)-tag-(?P<tag>.+)$")
_PANDAS_LINE = re.compile(r"line (\d+)")
_NA_VALUES = sorted({t for tok in MISSING_TOKENS for t in (tok, tok.upper(), tok.title())})


def sniff_delimiter(lines: list[str]) -> str | None:
    """Return the delimiter that splits the first lines into a consistent table, or None."""
    sample = [ln for ln in lines[:SNIFF_LINES] if ln.strip()]
    if not sample:
        return None
    best: tuple[int, str] | None = None
    for delim in DELIMITERS:
        counts = [ln.count(delim) for ln in sample]
        header = counts[0]
        if header == 0:
            continue
        agree = sum(1 for c in counts if c == header)
        if agree >= max(1, (len(counts) * 3) // 4) and (best is None or agree > best[0]):
            best = (agree, delim)
    return None if best is None else best[1]


def looks_like_table(lines: list[str], delimiter: str) -> bool:
    """Return True when the rows after the first are mostly numbers (or empty cells)."""
    rows = [ln for ln in lines[1:] if ln.strip()][:10]
    if not rows:
        return True
    cells = [c.strip().strip('"') for row in rows for c in row.split(delimiter)]
    numeric = sum(1 for c in cells if not c or _is_number(c) or c.lower() in MISSING_TOKENS)
    return numeric >= 0.5 * len(cells)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_delimited(
    text: str, *, source: str, delimiter: str, hints: ColumnHints | None = None
) -> Run:
    """Return the run held by CSV/TSV ``text`` split on ``delimiter``.

    Raises :class:`InputError` naming the line for ragged rows or missing columns.
    """
    lines = text.split("\n", 2)
    skipped = 0
    while lines and (not lines[0].strip() or lines[0].lstrip().startswith("#")):
        skipped += 1
        text = text.split("\n", 1)[1] if "\n" in text else ""
        lines = text.split("\n", 2)
    if not text.strip():
        raise InputError("no rows", path=source)
    first = [f.strip().strip('"') for f in lines[0].rstrip("\r").split(delimiter)]
    headerless = all(_is_number(f) for f in first if f)
    names: list[str] | None = None
    if headerless:
        guesses = {1: ["loss"], 2: ["step", "loss"], 3: ["step", "loss", "val_loss"]}
        if len(first) not in guesses:
            raise InputError("the first row is numbers, not column names", path=source, line=1)
        names = guesses[len(first)]
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=delimiter,
            header=None if headerless else 0,
            names=names,
            keep_default_na=False,
            na_values=_NA_VALUES,
            skip_blank_lines=False,
            skipinitialspace=True,
            engine="c",
            low_memory=False,
        )
    except pd.errors.ParserError as exc:
        found = _PANDAS_LINE.search(str(exc))
        line = int(found.group(1)) + skipped if found else None
        detail = str(exc).split(". ", 1)[-1].strip().rstrip(".")
        raise InputError(f"malformed row ({detail})", path=source, line=line) from None
    except (pd.errors.EmptyDataError, UnicodeError, ValueError) as exc:
        raise InputError(f"not a readable table ({exc})", path=source) from None

    header_line = skipped + (0 if headerless else 1)
    row_lines = np.arange(frame.shape[0], dtype=np.int64) + header_line + 1
    columns = {str(name): coerce_cells(frame[name], nan_is_missing=True) for name in frame.columns}
    table = Table(columns=columns, lines=row_lines)
    if [normalise_header(c) for c in frame.columns] == _TB_HEADER and not hints:
        return _tensorboard_csv(table, source=source)
    reader = "tsv" if delimiter == "\t" else "csv"
    return table_to_run(table, source=source, reader=reader, hints=hints)


def normalise_header(name: object) -> str:
    """Return a header cell lower-cased and stripped."""
    return str(name).strip().lower()


def _tensorboard_csv(table: Table, *, source: str) -> Run:
    """Return the single series of a TensorBoard scalar export (``Wall time,Step,Value``)."""
    step_name, value_name = list(table.columns)[1:3]
    tag_match = _TB_TAG.search(PurePath(source).stem)
    tag = tag_match.group("tag") if tag_match else PurePath(source).stem or value_name
    return tensorboard_export_run(
        table.columns[step_name],
        table.columns[value_name],
        tag=tag,
        lines=table.lines,
        source=source,
        reader="tensorboard-csv",
    )
