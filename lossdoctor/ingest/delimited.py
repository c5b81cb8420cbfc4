"""CSV and TSV logs: generic logs, Lightning ``metrics.csv``, Keras ``CSVLogger``,
TensorBoard CSV exports and W&B history exports.

The layout (delimiter, leading comment lines, header) is read from the first
lines; pandas then parses the bytes (a path is streamed, never loaded whole) in
chunks, and each chunk's cells become float columns at once, so memory stays
near the size of the parsed columns.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path, PurePath

import numpy as np
import pandas as pd

from lossdoctor.errors import InputError
from lossdoctor.ingest.columns import ColumnHints
from lossdoctor.ingest.table import (
    MISSING_TOKENS,
    ColumnSink,
    Table,
    coerce_cells,
    table_to_run,
    tensorboard_export_run,
)
from lossdoctor.model import Run

DELIMITERS = (",", "\t", ";", "|")
#: Lines looked at to choose the delimiter.
SNIFF_LINES = 20
#: Lines of the head looked at to tell a table from other text.
HEAD_LINES = 40
#: Rows parsed at a time: bounds the parser's working memory.
CHUNK_ROWS = 1 << 18
_TB_HEADER = ["wall time", "step", "value"]
_TB_TAG = re.compile(r"run[-_](?P<run>.*?)-tag-(?P<tag>.+)$")
_PANDAS_LINE = re.compile(r"line (\d+)")
_NA_VALUES = sorted({t for tok in MISSING_TOKENS for t in (tok, tok.upper(), tok.title())})
#: Column names given to a table without a header, by its number of fields.
_HEADERLESS_NAMES = {1: ["loss"], 2: ["step", "loss"], 3: ["step", "loss", "val_loss"]}


@dataclass(frozen=True)
class TableLayout:
    """How a delimited file is laid out: its delimiter, the blank or comment lines before
    the table, and the fields of the first row (the header, or data when headerless)."""

    delimiter: str
    skipped: int
    first_row: tuple[str, ...]
    #: Average bytes per line of the first lines (to size the columns of a large file).
    line_bytes: float = 64.0
    #: Some cells of the first lines start with blanks (``1, 2.5``): the parser skips them.
    padded: bool = False

    @property
    def headerless(self) -> bool:
        """Return True when the first row is numbers, not column names."""
        return all(_is_number(f) for f in self.first_row if f)


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


def table_layout(head: str, *, complete: bool) -> TableLayout | None:
    """Return the layout of the table that ``head`` (the first lines of a text, with
    ``\\n`` line ends) starts, or None when it is not a table.

    ``complete`` says ``head`` is the whole text; otherwise its last, possibly cut,
    line is not looked at.
    """
    lines = head.split("\n")
    if not complete:
        lines = lines[:-1]
    lines = lines[: HEAD_LINES + SNIFF_LINES]
    body = [ln for ln in lines if not ln.lstrip().startswith("#")][:HEAD_LINES]
    delimiter = sniff_delimiter(body)
    if delimiter is None or not looks_like_table(body, delimiter):
        single = [ln.strip() for ln in body if ln.strip()]
        if len(single) < 2 or any(" " in ln or ":" in ln for ln in single):
            return None
        delimiter = ","
    skipped = 0
    while skipped < len(lines) and (
        not lines[skipped].strip() or lines[skipped].lstrip().startswith("#")
    ):
        skipped += 1
    if skipped == len(lines):
        return None
    first = tuple(f.strip().strip('"') for f in lines[skipped].split(delimiter))
    sample = lines[skipped:]
    line_bytes = (sum(len(ln.encode("utf-8")) for ln in sample) + len(sample)) / len(sample)
    padded = any(cell[:1] in (" ", "\t") for ln in sample for cell in ln.split(delimiter))
    return TableLayout(delimiter, skipped, first, line_bytes=line_bytes, padded=padded)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_delimited(
    data: bytes | Path,
    layout: TableLayout,
    *,
    source: str,
    hints: ColumnHints | None = None,
) -> Run:
    """Return the run held by delimited ``data`` (the bytes, or a file streamed from its
    path) laid out as ``layout``.

    Raises :class:`InputError` naming the line for ragged rows or missing columns.
    """
    names: list[str] | None = None
    if layout.headerless:
        if len(layout.first_row) not in _HEADERLESS_NAMES:
            line = layout.skipped + 1
            raise InputError("the first row is numbers, not column names", path=source, line=line)
        names = _HEADERLESS_NAMES[len(layout.first_row)]
    buffer = io.BytesIO(data) if isinstance(data, bytes) else data
    size = len(data) if isinstance(data, bytes) else data.stat().st_size
    sink = ColumnSink(expected_rows=int(size / max(layout.line_bytes, 1.0) * 1.25) + 1)
    try:
        chunks = pd.read_csv(
            buffer,
            sep=layout.delimiter,
            header=None if names else 0,
            names=names,
            skiprows=layout.skipped,
            keep_default_na=False,
            na_values=_NA_VALUES,
            skip_blank_lines=False,
            skipinitialspace=layout.padded,
            engine="c",
            low_memory=False,
            chunksize=CHUNK_ROWS,
            encoding="utf-8",
            encoding_errors="replace",
        )
        with chunks:
            for chunk in chunks:
                names_now = _column_names(chunk.columns)
                sink.add(
                    {
                        name: coerce_cells(chunk[raw], nan_is_missing=True)
                        for name, raw in zip(names_now, chunk.columns, strict=True)
                    }
                )
                del chunk
    except pd.errors.ParserError as exc:
        found = _PANDAS_LINE.search(str(exc))
        detail = str(exc).split(". ", 1)[-1].strip().rstrip(".")
        raise InputError(
            f"malformed row ({detail})", path=source, line=int(found.group(1)) if found else None
        ) from None
    except (pd.errors.EmptyDataError, UnicodeError, ValueError) as exc:
        raise InputError(f"not a readable table ({exc})", path=source) from None
    except OSError as exc:
        raise InputError(exc.strerror or "cannot be read", path=source) from None

    columns = sink.columns()
    n_rows = sink.rows
    header_line = layout.skipped + (0 if names else 1)
    row_lines = np.arange(header_line + 1, header_line + 1 + n_rows, dtype=np.int64)
    table = Table(columns=columns, lines=row_lines)
    if [normalise_header(c) for c in columns] == _TB_HEADER and not hints:
        return _tensorboard_csv(table, source=source)
    reader = "tsv" if layout.delimiter == "\t" else "csv"
    return table_to_run(table, source=source, reader=reader, hints=hints)


def _column_names(header: pd.Index) -> list[str]:
    """Return the header cells stripped of blanks (as they are when that would make two
    columns share a name)."""
    raw = [str(name) for name in header]
    stripped = [name.strip() for name in raw]
    return stripped if len(set(stripped)) == len(stripped) else raw


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
