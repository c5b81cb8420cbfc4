"""Large JSON Lines logs read in bulk by polars' NDJSON reader (imported only for them).

The bulk path takes only files whose every line is a flat JSON object of numbers (or
``null``, ``NaN``, ``Infinity``) written without escapes, and checks that polars saw
every line and every key; anything else returns None and the file is read line by
line by :func:`lossdoctor.ingest.jsonlike.read_jsonl`, which gives the same run.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

import numpy as np

from lossdoctor.arrays import unique_ints
from lossdoctor.errors import InputError
from lossdoctor.ingest.columns import ColumnHints
from lossdoctor.ingest.frameworks import reshapes
from lossdoctor.ingest.provenance import mark_smoothing
from lossdoctor.ingest.table import Column, Table, table_to_run
from lossdoctor.model import Run
from lossdoctor.safeio import json_loads

if TYPE_CHECKING:
    import polars as pl

#: Files from this size on take the bulk path (smaller ones do not import polars).
BULK_MIN_BYTES = 1 << 20
#: Lines polars first infers the columns from (all lines when that misses some).
BULK_SCHEMA_ROWS = 1000
#: A key followed by a value polars does not read (JSON has no NaN, Python writes it):
#: read as null, then set from the line parsed by Python.
_NON_FINITE = re.compile(rb'(":\s*)(NaN|-?Infinity)(\s*[,}])')
#: A key followed by an explicit null.
_NULL = re.compile(rb'":\s*null\s*[,}]')
#: Keys the bulk path takes (no quote, colon or escape inside a key).
_PLAIN_KEY = re.compile(r"[^\"\\:]*")
_NUMERIC = ("Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64")


def read_jsonl_bulk(
    data: bytes,
    *,
    source: str,
    hints: ColumnHints | None = None,
    min_bytes: int = BULK_MIN_BYTES,
    schema_rows: int = BULK_SCHEMA_ROWS,
) -> Run | None:
    """Return the run in JSON Lines ``data`` read in bulk, or None when it is smaller than
    ``min_bytes``, polars is not installed, or a line is not a flat object of numbers (the
    line-by-line reader takes those).  Polars first infers the columns from
    ``schema_rows`` lines."""
    if len(data) < min_bytes:
        return None
    table = jsonl_bulk_table(data, schema_rows=schema_rows)
    if table is None:
        return None
    try:
        run = table_to_run(table, source=source, reader="jsonl", hints=hints)
    except InputError:
        # the bulk schema may drop all-null keys the message lists: the line-by-line
        # reader says why exactly
        return None
    return mark_smoothing(run, set(table.columns))


def jsonl_bulk_table(data: bytes, *, schema_rows: int = BULK_SCHEMA_ROWS) -> Table | None:
    """Return the table of JSON Lines ``data`` (rows numbered from line 1) read in bulk by
    polars, the same table the line-by-line reader builds, or None when polars is not
    installed or a line is not a flat object of numbers (those need the line-by-line
    reader).  Polars first infers the columns from ``schema_rows`` lines."""
    if data[:1] != b"{":
        return None
    if b"\\" in data or b"\r" in data:
        return None  # escapes, or line ends the line-by-line reader splits differently
    try:
        import polars as pl
    except ImportError:
        return None
    n_lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    fixes: list[int] = []
    # a capital letter is looked for first (one byte, found fast): keys are seldom capitalised
    if (b"N" in data and b"NaN" in data) or (b"I" in data and b"Infinity" in data):
        fixes = [m.start() for m in _NON_FINITE.finditer(data)]
    parsed = _NON_FINITE.sub(rb"\1null\3", data) if fixes else data
    # every colon of a file the bulk path takes ends a key (the values are numbers, the
    # keys hold no colon), and one byte is counted faster than two
    keys = parsed.count(b":")
    nulls: int | None = None
    frame = None
    for rows_looked_at in (schema_rows, None):
        try:
            frame = pl.read_ndjson(parsed, infer_schema_length=rows_looked_at)
        except Exception:  # polars raises several kinds of error for lines it cannot read
            return None
        if frame.height != n_lines or n_lines < 2:
            return None  # blank lines, or a single object (a JSON document)
        if not all(_is_number_dtype(dtype) for dtype in frame.dtypes):
            return None
        cells = sum(frame.height - int(count) for count in frame.null_count().row(0))
        if keys != cells and nulls is None:
            # as many keys as cells: no explicit null (and no key polars missed) to count
            nulls = len(_NULL.findall(parsed)) if b"null" in parsed else 0
        if keys == cells + (nulls or 0) and (not nulls or _nulls_line_up(parsed, frame)):
            break
        # a key first seen after the rows looked at, a value read as null, or a key
        # repeated in a line (Python keeps the last, polars the first): look at all
        frame = None
    if frame is None:
        return None
    names = [str(name) for name in frame.columns]
    if not all(_PLAIN_KEY.fullmatch(name) for name in names) or reshapes(set(names)):
        return None
    order = _first_seen(data, set(names))
    if order is None:
        return None
    columns = {name: _column(frame[name]) for name in order}
    if fixes and not _set_non_finite(data, fixes, columns):
        return None  # a key whose only values are non-finite: not in the bulk schema
    return Table(columns=columns, lines=np.arange(1, n_lines + 1, dtype=np.int64))


def _nulls_line_up(data: bytes, frame: pl.DataFrame) -> bool:
    """Return True when no line of ``data`` that holds a null repeats a key.  A key
    repeated with null as its later value (Python keeps the null, polars the first
    value) balances the count of keys, cells and nulls that otherwise tells a repeated
    key; only files with explicit nulls need this look, done in polars."""
    import polars as pl

    try:
        lines = pl.read_csv(
            data,
            has_header=False,
            separator="\x1f",  # no line of a file the bulk path takes holds it: one column
            quote_char=None,
            infer_schema=False,
            new_columns=["line"],
        )["line"]
    except Exception:  # polars raises several kinds of error: leave it to the line reader
        return False
    lines = lines.filter(lines.str.contains("null", literal=True))
    for name in frame.columns:
        repeats = lines.str.count_matches('"' + re.escape(name) + r'"\s*:').max()
        if isinstance(repeats, int) and repeats > 1:
            return False
    return True


def _is_number_dtype(dtype: pl.DataType) -> bool:
    name = str(dtype)
    return name in _NUMERIC or name in ("Float32", "Float64", "Null")


def _column(cells: pl.Series) -> Column:
    """Return a :class:`Column`: every non-null cell is a point."""
    import polars as pl

    values = np.asarray(cells.cast(pl.Float64).to_numpy(), dtype=np.float64)  # NaN for null
    if not values.flags.writeable:
        values = values.copy()  # a view of polars' memory: NaN and infinities are set later
    if not cells.null_count():
        return Column(values=values, present=np.ones(values.shape[0], dtype=bool))
    present = np.array(cells.is_not_null().to_numpy(), dtype=bool)
    values[~present] = np.nan
    return Column(values=values, present=present)


def _first_seen(data: bytes, names: set[str]) -> list[str] | None:
    """Return the keys in the order the lines first hold them (as the line-by-line reader
    orders its columns), or None when a line before the last new key is not an object."""
    order: dict[str, None] = {}
    start = 0
    while len(order) < len(names):
        end = data.find(b"\n", start)
        line = data[start:] if end < 0 else data[start:end]
        try:
            obj = json_loads(line)
        except ValueError:
            return None
        if not isinstance(obj, dict):
            return None
        for key in obj:
            order.setdefault(str(key), None)
        if end < 0:
            break
        start = end + 1
    return list(order) if set(order) == names else None


def _set_non_finite(data: bytes, positions: list[int], columns: dict[str, Column]) -> bool:
    """Set the NaN and infinite values polars read as null, from their lines parsed by
    Python (``positions``: byte offsets of those values).  Returns False when one is under
    a key polars did not make a column of (its schema saw only nulls there)."""
    ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == ord("\n"))
    rows = unique_ints(np.searchsorted(ends, np.asarray(positions)))
    for row in rows.tolist():
        start = int(ends[row - 1]) + 1 if row else 0
        end = int(ends[row]) if row < ends.shape[0] else len(data)
        for key, value in json.loads(data[start:end]).items():
            if isinstance(value, float) and not np.isfinite(value):
                if key not in columns:
                    return False
                columns[key].values[row] = value
                columns[key].present[row] = True
    return True
