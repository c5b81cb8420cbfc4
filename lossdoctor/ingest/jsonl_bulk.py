"""Large JSON Lines logs read in bulk by polars' NDJSON reader (imported only for them).

The bulk path takes only files whose every line is a flat JSON object of numbers (or
``null``, ``NaN``, ``Infinity``) written without escapes, and checks that polars saw
every line and every key; anything else returns None and the file is read line by
line by :func:`lossdoctor.ingest.jsonlike.read_jsonl`, which gives the same run.  A plain
file on disk of such lines (numbers and nulls in ASCII, no ``NaN``) is read by polars from
the file at once (:func:`jsonl_file_table`); other large logs a piece at a time.
"""

from __future__ import annotations

import json
import mmap
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lossdoctor.arrays import unique_ints
from lossdoctor.errors import InputError
from lossdoctor.ingest.columns import ColumnHints
from lossdoctor.ingest.delimited_bulk import float_column, map_file
from lossdoctor.ingest.frameworks import reshapes
from lossdoctor.ingest.provenance import mark_smoothing
from lossdoctor.ingest.table import Column, Table, table_to_run
from lossdoctor.model import ConsecutiveLines, Run
from lossdoctor.safeio import BULK_MIN_BYTES, json_loads

if TYPE_CHECKING:
    import polars as pl

#: Lines polars first infers the columns from (all lines when that misses some).
BULK_SCHEMA_ROWS = 1000
#: Files up to this size are read by polars from the file at once (larger ones a piece
#: at a time, so that memory follows the points kept: 256 MiB).
WHOLE_FILE_MAX_BYTES = 256 << 20
#: Bytes of a mapped file looked at a time by the whole-file path's checks and counts
#: (256 KiB: each block is read from memory once and then looked at in the CPU's cache).
COUNT_BLOCK_BYTES = 256 << 10
#: A key followed by a value polars does not read (JSON has no NaN, Python writes it):
#: read as null, then set from the line parsed by Python.
_NON_FINITE = re.compile(rb'(":\s*)(NaN|-?Infinity)(\s*[,}])')
#: A key followed by an explicit null.
_NULL = re.compile(rb'":\s*null\s*[,}]')
#: The UTF-8 forms of the characters besides control bytes that end a line of the decoded
#: text (str.splitlines): NEL, LINE SEPARATOR, PARAGRAPH SEPARATOR.
_OTHER_LINE_END_CHARS = (b"\xc2\x85", b"\xe2\x80\xa8", b"\xe2\x80\xa9")
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
    if data[:1] != b"{" or b"\\" in data:
        return None  # not an object, or escapes
    lines = _line_count(data)
    if lines is None:
        return None  # line ends the line-by-line reader splits differently
    try:
        import polars as pl
    except ImportError:
        return None
    n_lines = lines + (0 if data.endswith(b"\n") else 1)
    fixes: list[int] = []
    # a capital letter is looked for first (one byte, found fast): keys are seldom capitalised
    if (b"N" in data and b"NaN" in data) or (b"I" in data and b"Infinity" in data):
        fixes = [m.start() for m in _NON_FINITE.finditer(data)]
    parsed = _NON_FINITE.sub(rb"\1null\3", data) if fixes else data
    # every colon of a file the bulk path takes ends a key (the values are numbers, the
    # keys hold no colon), and one byte is counted faster than two (numpy: faster than
    # bytes.count; the substitution above changes no colon)
    keys = int(np.count_nonzero(np.frombuffer(data, dtype=np.uint8) == 0x3A))

    def read(rows: int | None) -> pl.DataFrame:
        return pl.read_ndjson(parsed, infer_schema_length=rows)

    def count_nulls() -> int:
        return len(_NULL.findall(parsed)) if b"null" in parsed else 0

    frame = _checked_frame(
        read, n_lines=n_lines, keys=keys, rows=schema_rows,
        count_nulls=count_nulls, lines=parsed,
    )  # fmt: skip
    columns = None if frame is None else _columns(frame, data)
    if columns is None:
        return None
    if fixes and not _set_non_finite(data, fixes, columns):
        return None  # a key whose only values are non-finite: not in the bulk schema
    return Table(columns=columns, lines=ConsecutiveLines(1, n_lines))


def jsonl_file_table(path: Path, *, schema_rows: int = BULK_SCHEMA_ROWS) -> Table | None:
    """Return the table of the JSON Lines file at ``path`` read at once by polars from the
    file (the table :func:`jsonl_bulk_table` gives for its bytes), or None when polars is
    not installed, the file is larger than :data:`WHOLE_FILE_MAX_BYTES`, or it holds
    anything but flat objects of numbers and nulls in ASCII (escapes, line ends other
    than line feeds, ``NaN`` and ``Infinity`` are left to :func:`jsonl_bulk_table`, a
    piece at a time)."""
    with path.open("rb") as handle:
        if not 0 < os.fstat(handle.fileno()).st_size <= WHOLE_FILE_MAX_BYTES:
            return None
        with map_file(handle.fileno()) as mapped:  # mapped once for every look at the bytes
            columns = _mapped_columns(mapped, path, schema_rows)
    if columns is None:
        return None
    n_lines, by_name = columns
    return Table(columns=by_name, lines=ConsecutiveLines(1, n_lines))


def _mapped_columns(
    mapped: mmap.mmap, path: Path, schema_rows: int
) -> tuple[int, dict[str, Column]] | None:
    """Return the lines and the columns of the JSON Lines file at ``path`` (``mapped``: its
    bytes) read by polars, or None (see :func:`jsonl_file_table`)."""
    try:
        import polars as pl
    except ImportError:
        return None
    counts = _plain_counts(mapped)
    if counts is None:
        return None
    n_lines, keys = counts

    def read(rows: int | None) -> pl.DataFrame:
        return pl.read_ndjson(path, infer_schema_length=rows)

    def count_nulls() -> int:
        return len(_NULL.findall(mapped)) if mapped.find(b"null") >= 0 else 0

    frame = _checked_frame(
        read, n_lines=n_lines, keys=keys, rows=schema_rows, count_nulls=count_nulls, lines=path
    )
    columns = None if frame is None else _columns(frame, mapped)
    return None if columns is None else (n_lines, columns)


def _plain_counts(mapped: mmap.mmap) -> tuple[int, int] | None:
    """Return the lines and the colons of a mapped file of JSON objects in printable ASCII
    (and tabs) with no escape, ``NaN`` or ``Infinity``, or None for any other file."""
    if mapped[:1] != b"{":
        return None
    newlines = colons = 0
    capitals = False  # the first letters of NaN and Infinity, found fast (one byte)
    for start in range(0, len(mapped), COUNT_BLOCK_BYTES):
        end = start + COUNT_BLOCK_BYTES
        if mapped.find(b"\\", start, end) >= 0:
            return None
        capitals = (
            capitals or mapped.find(b"N", start, end) >= 0 or mapped.find(b"I", start, end) >= 0
        )
        counts = _block_counts(mapped, start)
        if counts is None:
            return None
        newlines, colons = newlines + counts[0], colons + counts[1]
    if capitals and (mapped.find(b"NaN") >= 0 or mapped.find(b"Infinity") >= 0):
        return None  # the piece-at-a-time path reads them (polars does not)
    return newlines + (0 if mapped[-1:] == b"\n" else 1), colons


def _block_counts(mapped: mmap.mmap, start: int) -> tuple[int, int] | None:
    """Return the line feeds and colons in the :data:`COUNT_BLOCK_BYTES` of ``mapped`` from
    ``start``, or None when they hold a control byte other than a line feed or a tab, or a
    byte outside ASCII (the array over the mapping is let go on return: the mapping can
    close)."""
    size = min(COUNT_BLOCK_BYTES, len(mapped) - start)
    block = np.frombuffer(mapped, dtype=np.uint8, count=size, offset=start)
    ends = int(np.count_nonzero(block == 0x0A))
    # as signed bytes, the bytes outside ASCII are negative: below 0x20 with the controls
    others = int(np.count_nonzero(block.view(np.int8) < 0x20))
    if others != ends and others != ends + int(np.count_nonzero(block == 0x09)):
        return None  # a carriage return, a form feed, a byte outside ASCII
    return ends, int(np.count_nonzero(block == 0x3A))


def _checked_frame(
    read: Callable[[int | None], pl.DataFrame],
    *,
    n_lines: int,
    keys: int,
    rows: int,
    count_nulls: Callable[[], int],
    lines: bytes | Path,
) -> pl.DataFrame | None:
    """Return the frame ``read`` gives (inferring the columns from ``rows`` lines, then from
    all when that misses some) when it holds a row of numbers for each of ``n_lines``
    lines and a cell for each of ``keys`` keys but the ``count_nulls()`` explicit nulls
    (which must not stand in a line that repeats a key: ``lines`` is the JSON text, or
    its file), else None."""
    nulls: int | None = None
    for rows_looked_at in (rows, None):
        try:
            frame = read(rows_looked_at)
        except Exception:  # polars raises several kinds of error for lines it cannot read
            return None
        if frame.height != n_lines or n_lines < 2:
            return None  # blank lines, or a single object (a JSON document)
        if not all(_is_number_dtype(dtype) for dtype in frame.dtypes):
            return None
        cells = sum(frame.height - int(count) for count in frame.null_count().row(0))
        if keys != cells and nulls is None:
            # as many keys as cells: no explicit null (and no key polars missed) to count
            nulls = count_nulls()
        if keys == cells + (nulls or 0) and (not nulls or _nulls_line_up(lines, frame)):
            return frame
        # a key first seen after the rows looked at, a value read as null, or a key
        # repeated in a line (Python keeps the last, polars the first): look at all
    return None


def _columns(frame: pl.DataFrame, data: bytes | mmap.mmap) -> dict[str, Column] | None:
    """Return the columns of ``frame`` in the order the lines of ``data`` first hold their
    keys, or None when a key is not plain or a framework's reshaping may apply."""
    names = [str(name) for name in frame.columns]
    if not all(_PLAIN_KEY.fullmatch(name) for name in names) or reshapes(set(names)):
        return None
    order = _first_seen(data, set(names))
    if order is None:
        return None
    return {name: float_column(frame[name]) for name in order}


def _line_count(data: bytes) -> int | None:
    """Return the line feeds in ``data``, or None when it holds another line end of the
    decoded text (``str.splitlines`` splits at a carriage return, a form feed, U+2028, ...):
    a control byte other than a line feed or a tab, or one of the line separators that
    only a non-ASCII text can hold."""
    codes = np.frombuffer(data, dtype=np.uint8)
    ends = int(np.count_nonzero(codes == 0x0A))
    controls = int(np.count_nonzero(codes < 0x20))
    if controls != ends and controls != ends + int(np.count_nonzero(codes == 0x09)):
        return None
    if not data.isascii() and any(end in data for end in _OTHER_LINE_END_CHARS):
        return None
    return ends


def _nulls_line_up(data: bytes | Path, frame: pl.DataFrame) -> bool:
    """Return True when no line of ``data`` that holds a null repeats a key and every key
    with a null is a column of ``frame``.  A key repeated with null as its later value
    (Python keeps the null, polars the first value), or a null under a key the schema
    missed (``train_runtime`` of a summary line), balances the count of keys, cells and
    nulls that otherwise tells a repeated or missed key; only files with explicit nulls
    need this look, done in polars."""
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
    null_keys = lines.str.extract_all(r'"[^"]*"\s*:\s*null').explode().drop_nulls()
    if not set(null_keys.str.extract(r'"([^"]*)"', 1).unique().to_list()) <= set(frame.columns):
        return False  # a key the schema missed: look at all lines
    for name in frame.columns:
        repeats = lines.str.count_matches('"' + re.escape(name) + r'"\s*:').max()
        if isinstance(repeats, int) and repeats > 1:
            return False
    return True


def _is_number_dtype(dtype: pl.DataType) -> bool:
    name = str(dtype)
    return name in _NUMERIC or name in ("Float32", "Float64", "Null")


def _first_seen(data: bytes | mmap.mmap, names: set[str]) -> list[str] | None:
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
