"""CSV and TSV logs: generic logs, Lightning ``metrics.csv``, Keras ``CSVLogger``,
TensorBoard CSV exports and W&B history exports.

The layout (delimiter, leading comment lines, header) is read from the first
lines; a large table of plain numbers is read by polars at once
(:mod:`lossdoctor.ingest.delimited_bulk`), any other by pandas (a path is streamed,
never loaded whole) in chunks, each chunk's cells becoming float columns at once, so
memory stays near the size of the parsed columns.
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

import numpy as np

from lossdoctor.errors import InputError
from lossdoctor.ingest.columns import ColumnHints
from lossdoctor.ingest.table import (
    MISSING_TOKENS,
    TB_EXPORT_NAME,
    Column,
    ColumnSink,
    Table,
    cell_text,
    coerce_objects,
    coerce_texts,
    table_to_run,
    tensorboard_export_run,
)
from lossdoctor.model import ConsecutiveLines, FloatArray, Run

if TYPE_CHECKING:
    import pandas as pd

DELIMITERS = (",", "\t", ";", "|")
#: Lines looked at to choose the delimiter.
SNIFF_LINES = 20
#: Lines of the head looked at to tell a table from other text.
HEAD_LINES = 40
#: Tables up to this size are parsed by the standard library (pandas is not imported).
SMALL_TABLE_BYTES = 1 << 20
#: Files from this size on are parsed as two halves on two threads (with two CPUs).
PARALLEL_MIN_BYTES = 16 << 20
#: Rows parsed at a time: bounds the parser's working memory.
CHUNK_ROWS = 1 << 18
_TB_HEADER = ["wall time", "step", "value"]
_PANDAS_LINE = re.compile(r"line (\d+)")
_NA_VALUES = sorted({t for tok in MISSING_TOKENS for t in (tok, tok.upper(), tok.title())})
#: Column names given to a table without a header, by its number of fields.
_HEADERLESS_NAMES = {1: ["loss"], 2: ["step", "loss"], 3: ["step", "loss", "val_loss"]}
#: The characters of a plain number cell (no blank, no ``nan``, no ``1_000``).
_NUMBER_BYTES = b"0123456789.eE+-"


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
    #: The first lines quote cells, so a cell may hold a line end.
    quoted: bool = False

    @property
    def headerless(self) -> bool:
        """Return True when the first row is numbers, not column names."""
        return all(is_number(f) for f in self.first_row if f)


#: A text up to this size keeps its decoding for the next call on the same bytes object:
#: the format sniffers and the parser of one small file would decode it three times.
DECODED_KEPT_BYTES = 1 << 17
_last_decoded: list[tuple[bytes, str]] = []


def decode_text(data: bytes) -> str:
    """Return ``data`` as text with ``\n`` line ends (bad UTF-8 replaced, BOM dropped)."""
    last = _last_decoded[:1]
    if last and last[0][0] is data:
        return last[0][1]
    text = data.decode("utf-8-sig", errors="replace")
    if "\r" in text:  # (a one-character search: cheaper than a replacement finding none)
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if len(data) <= DECODED_KEPT_BYTES:
        _last_decoded[:] = [(data, text)]
    return text


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
    numeric = sum(1 for c in cells if not c or is_number(c) or c.lower() in MISSING_TOKENS)
    return numeric >= 0.5 * len(cells)


def table_layout(head: str, *, complete: bool) -> TableLayout | None:
    """Return the layout of the table that ``head`` (the first lines of a text, with
    ``\\n`` line ends) starts, or None when it is not a table.

    ``complete`` says ``head`` is the whole text; otherwise its last, possibly cut,
    line is not looked at.
    """
    looked_at = HEAD_LINES + SNIFF_LINES
    lines = head.split("\n", looked_at)  # the rest of a long text stays one string
    if not complete:
        lines = lines[:-1]
    lines = lines[:looked_at]
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
    joined = "\n" + "\n".join(sample)  # each line after a line end
    line_bytes = len(joined.encode("utf-8")) / len(sample)
    # a cell starts with a blank (not the delimiter itself): at a line's start or after a
    # delimiter
    blanks = [blank for blank in " \t" if blank != delimiter]
    padded = any(f"{lead}{blank}" in joined for lead in ("\n", delimiter) for blank in blanks)
    quoted = '"' in joined
    return TableLayout(
        delimiter, skipped, first, line_bytes=line_bytes, padded=padded, quoted=quoted
    )


def is_number(text: str) -> bool:
    """Return True when ``text`` reads as a float (``nan`` and ``inf`` too)."""
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
    path) laid out as ``layout``.  Up to :data:`SMALL_TABLE_BYTES` the standard library
    parses it (no pandas import); larger tables go to pandas' C parser in chunks.

    Raises :class:`InputError` naming the line for ragged rows or missing columns.
    """
    names: list[str] | None = None
    if layout.headerless:
        if len(layout.first_row) not in _HEADERLESS_NAMES:
            line = layout.skipped + 1
            raise InputError("the first row is numbers, not column names", path=source, line=line)
        names = _HEADERLESS_NAMES[len(layout.first_row)]
    if isinstance(data, bytes) and len(data) <= SMALL_TABLE_BYTES:
        columns = _parse_small(data, layout, names, source=source)
    else:
        columns = _parse_bulk(data, layout, names) or _parse_chunked(
            data, layout, names, source=source
        )
    n_rows = next(iter(columns.values())).values.shape[0] if columns else 0
    header_line = layout.skipped + (0 if names else 1)
    table = Table(columns=columns, lines=ConsecutiveLines(header_line + 1, n_rows))
    if [normalise_header(c) for c in columns] == _TB_HEADER and not (hints and hints.train):
        return _tensorboard_csv(table, source=source, hints=hints)
    reader = "tsv" if layout.delimiter == "\t" else "csv"
    return table_to_run(table, source=source, reader=reader, hints=hints)


def _parse_small(
    data: bytes, layout: TableLayout, names: list[str] | None, *, source: str
) -> dict[str, Column]:
    """Return the columns of a small table parsed with the standard library's ``csv``."""
    text = decode_text(data)
    if layout.skipped:
        parts = text.split("\n", layout.skipped)
        text = parts[-1] if len(parts) > layout.skipped else ""
    if '"' not in text:
        first, _, rest = text.partition("\n")
        if names or first.strip():
            given = _unique_names(names or first.split(layout.delimiter))
            plain = _plain_numbers(text if names else rest, given, layout.delimiter)
            if plain is not None:
                return plain
    reader = csv.reader(io.StringIO(text), delimiter=layout.delimiter, skipinitialspace=True)
    try:
        header = _unique_names(names or next(reader, []))
        body = list(reader)
    except csv.Error:
        body = None
    if body is not None and all(len(row) == len(header) for row in body):  # the usual case
        return _columns(header, body)
    reader = csv.reader(io.StringIO(text), delimiter=layout.delimiter, skipinitialspace=True)
    try:
        header = _unique_names(names or next(reader, []))
        width = len(header)
        # as pandas reads with index_col=False: the first row may end with one empty cell
        # (a trailing delimiter), and then later rows too; more fields is an error
        allowed = -1
        rows: list[list[str]] = []
        for row in reader:
            if allowed < 0:
                allowed = width + 1 if len(row) == width + 1 else width
            if len(row) > width:
                extra = row[width:]
                if len(row) > allowed or any(
                    cell.strip().lower() not in MISSING_TOKENS for cell in extra
                ):
                    line = layout.skipped + reader.line_num
                    expected = allowed if len(row) > allowed else width
                    raise InputError(
                        f"malformed row (Expected {expected} fields in line {line}, "
                        f"saw {len(row)})",
                        path=source,
                        line=line,
                    )
                row = row[:width]
            elif len(row) < width:
                row = row + [""] * (width - len(row))
            rows.append(row)
    except csv.Error as exc:
        line = layout.skipped + reader.line_num
        raise InputError(f"malformed row ({exc})", path=source, line=line) from None
    return _columns(header, rows)


def _plain_numbers(body: str, header: list[str], delimiter: str) -> dict[str, Column] | None:
    """Return the columns of ``body`` when it is rows of plain numbers or empty cells, one
    row a line, each as wide as ``header`` (every cell read by ``float`` in one pass,
    as the ``csv`` path would read them), or None for any other body."""
    body = body[:-1] if body.endswith("\n") else body
    if not header or not body or not body.isascii():
        return None
    # every character a number's, a delimiter or a line end, and every row as wide as
    # the header: what is left without the numbers' characters is the rows' delimiters
    row = delimiter.encode() * (len(header) - 1) + b"\n"
    layout = body.encode().translate(None, _NUMBER_BYTES) + b"\n"
    if layout != row * layout.count(b"\n"):  # (a product of bytes: no join of rows)
        return None
    flat = body.replace("\n", delimiter)
    values = _numbers_in_c(flat, delimiter, len(layout))
    if values is None:
        nan = float("nan")
        try:  # an empty cell is absent (NaN)
            numbers = [float(cell) if cell else nan for cell in flat.split(delimiter)]
        except ValueError:  # "-", "1e", "+": read cell by cell
            return None
        values = np.fromiter(numbers, dtype=np.float64, count=len(numbers))
    table = values.reshape(-1, len(header))
    columns = {}
    for j, name in enumerate(header):
        column = np.ascontiguousarray(table[:, j])
        columns[name] = Column(column, ~np.isnan(column))  # plain numbers are never NaN
    return columns


def _numbers_in_c(flat: str, delimiter: str, cells: int) -> FloatArray | None:
    """Return the ``cells`` numbers of ``flat`` (cells of number characters, empty ones
    included, joined by a delimiter that is no blank) read by numpy's text parser, which
    reads each number as Python's ``float`` does (correctly rounded) without a Python object
    a cell; an empty cell is NaN.  None when numpy cannot say the text did not parse whole
    (numpy < 2.3 warns instead of raising), for a blank delimiter (numpy's parser takes
    any run of blanks for one), and when a cell is no number (``-``, ``1e``, ``1.2.3``)."""
    if delimiter.isspace() or not _FROMSTRING_RAISES:
        return None
    double = delimiter * 2
    if double in flat:  # twice: a run of empty cells overlaps one replacement
        gap = f"{delimiter}nan{delimiter}"
        flat = flat.replace(double, gap).replace(double, gap)
    if flat.startswith(delimiter):
        flat = "nan" + flat
    if flat.endswith(delimiter):
        flat += "nan"
    try:
        values = np.fromstring(flat, sep=delimiter)
    except ValueError:
        return None
    return values if values.shape[0] == cells else None


def _fromstring_raises() -> bool:
    """Return True when ``numpy.fromstring`` raises for text it cannot read to its end
    (numpy 2.3 on) rather than warning and returning what it read."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            np.fromstring("1,x", sep=",")
        except ValueError:
            return True
    return False


_FROMSTRING_RAISES = _fromstring_raises()


def _columns(header: list[str], rows: list[list[str]]) -> dict[str, Column]:
    """Return the columns of ``rows`` (each as wide as ``header``)."""
    cells: list[tuple[str, ...]] = list(zip(*rows, strict=True)) if rows else [()] * len(header)
    return {name: coerce_texts(column) for name, column in zip(header, cells, strict=True)}


def _unique_names(header: list[str]) -> list[str]:
    """Return header cells stripped, unnamed ones named ``Unnamed: i`` and repeated ones
    numbered ``name.1``, ``name.2`` (as pandas names them)."""
    out: list[str] = []
    taken: set[str] = set()
    for index, raw in enumerate(header):
        base = str(raw).strip() or f"Unnamed: {index}"
        name, count = base, 0
        while name in taken:
            count += 1
            name = f"{base}.{count}"
        taken.add(name)
        out.append(name)
    return out


def _parse_bulk(
    data: bytes | Path, layout: TableLayout, names: list[str] | None
) -> dict[str, Column] | None:
    """Return the columns of a large table of plain numbers read by polars at once, or None
    for a table that pandas' chunked reader must read (quoted or padded cells, text,
    ragged rows: see :mod:`lossdoctor.ingest.delimited_bulk`)."""
    if layout.quoted or layout.padded:
        return None
    from lossdoctor.ingest.delimited_bulk import read_numbers_bulk

    return read_numbers_bulk(
        data,
        names=names or _unique_names(list(layout.first_row)),
        delimiter=layout.delimiter,
        skip_lines=layout.skipped + (0 if names else 1),
    )


def _parse_chunked(
    data: bytes | Path, layout: TableLayout, names: list[str] | None, *, source: str
) -> dict[str, Column]:
    """Return the columns of a large table parsed by pandas in chunks of :data:`CHUNK_ROWS`
    rows, each turned into float columns before the next is read.  A large file on disk
    is cut in two at a line end and the halves are parsed on two threads (pandas'
    parser releases the GIL), the second half's rows then copied after the first's."""
    import warnings

    import pandas as pd

    size = len(data) if isinstance(data, bytes) else data.stat().st_size
    expected = int(size / max(layout.line_bytes, 1.0) * 1.25) + 1
    try:
        with warnings.catch_warnings():
            # index_col=False: a trailing delimiter is not a hidden index column; rows
            # with more non-empty fields than the header then warn, which is an error here
            warnings.simplefilter("error", pd.errors.ParserWarning)
            cut = None if isinstance(data, bytes) or layout.quoted else _split_point(data, size)
            if cut is None or isinstance(data, bytes):
                head = ColumnSink(expected)
                _parse_part(data, 0, size, layout, names, head)
                return head.columns()
            given = names or _unique_names(list(layout.first_row))
            head, tail = ColumnSink(expected), ColumnSink(expected // 2 + 1)
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=2) as pool:
                second = pool.submit(_parse_part, data, cut, size, layout, given, tail)
                _parse_part(data, 0, cut, layout, given, head, header_done=names is None)
                try:
                    second.result()
                except pd.errors.ParserError as exc:
                    raise _shift_lines(exc, _lines_before(data, cut)) from None
            head.extend(tail)
            return head.columns()
    except pd.errors.ParserError as exc:
        found = _PANDAS_LINE.search(str(exc))
        detail = str(exc).split(". ", 1)[-1].strip().rstrip(".").removeprefix("C error: ")
        raise InputError(
            f"malformed row ({detail})", path=source, line=int(found.group(1)) if found else None
        ) from None
    except pd.errors.ParserWarning:
        raise InputError("malformed rows (more fields than the header)", path=source) from None
    except (pd.errors.EmptyDataError, UnicodeError, ValueError) as exc:
        raise InputError(f"not a readable table ({exc})", path=source) from None
    except OSError as exc:
        raise InputError(exc.strerror or "cannot be read", path=source) from None


def _parse_part(
    data: bytes | Path,
    start: int,
    end: int,
    layout: TableLayout,
    names: list[str] | None,
    sink: ColumnSink,
    *,
    header_done: bool = False,
) -> None:
    """Parse bytes ``start`` to ``end`` of ``data`` into ``sink``.  The part that starts the
    file skips the leading comment lines (and, with ``header_done``, the header line,
    whose names are ``names``); a later part is rows only."""
    import pandas as pd

    if isinstance(data, bytes):
        handle: io.IOBase = io.BytesIO(data)
    else:
        handle = io.BufferedReader(_ByteRange(data, start, end), buffer_size=1 << 20)
    skip = 0 if start else layout.skipped + (1 if header_done else 0)
    with handle:
        chunks = pd.read_csv(
            handle,
            sep=layout.delimiter,
            header=None if names else 0,
            names=names,
            index_col=False,
            skiprows=skip,
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
                header = _unique_names([str(name) for name in chunk.columns])
                sink.add(
                    {
                        name: _frame_column(chunk[raw])
                        for name, raw in zip(header, chunk.columns, strict=True)
                    }
                )
                del chunk


class _ByteRange(io.RawIOBase):
    """A read-only view of bytes ``start`` to ``end`` of a file."""

    def __init__(self, path: Path, start: int, end: int) -> None:
        super().__init__()
        self._file = path.open("rb")
        self._file.seek(start)
        self._left = end - start

    def readable(self) -> bool:
        """Return True: the range can be read."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Read up to ``len(buffer)`` bytes of the range into ``buffer``; 0 at its end."""
        want = min(len(buffer), self._left)
        if want <= 0:
            return 0
        got = self._file.readinto(memoryview(buffer)[:want])
        self._left -= got or 0
        return got or 0

    def close(self) -> None:
        """Close the file."""
        self._file.close()
        super().close()


def _split_point(path: Path, size: int) -> int | None:
    """Return the byte offset after the line end nearest the middle of a large file, where
    it can be parsed as two halves, or None to parse it whole (small or one CPU)."""
    if size < PARALLEL_MIN_BYTES or _cpus() < 2:
        return None
    with path.open("rb") as handle:
        handle.seek(size // 2)
        around = handle.read(1 << 16)
    newline = around.find(b"\n")
    if newline < 0 or size // 2 + newline + 1 >= size:
        return None
    return size // 2 + newline + 1


def _cpus() -> int:
    """Return the number of CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _lines_before(path: Path, offset: int) -> int:
    """Return the number of line ends in the first ``offset`` bytes of a file."""
    count = 0
    with path.open("rb") as handle:
        while offset > 0:
            block = handle.read(min(offset, 1 << 24))
            if not block:
                break
            count += block.count(b"\n")
            offset -= len(block)
    return count


def _shift_lines(exc: Exception, lines: int) -> Exception:
    """Return a parser error whose line numbers are moved down by ``lines``."""
    text = _PANDAS_LINE.sub(lambda m: f"line {int(m.group(1)) + lines}", str(exc))
    return type(exc)(text)


def _frame_column(cells: pd.Series) -> Column:
    """Return a :class:`Column` from a parsed pandas column: numbers as they are (NaN is an
    empty or missing-token cell); in a column that holds some text, the cells pandas reads
    as numbers at once and only the others (``nan``, tokens, words) one by one."""
    import pandas as pd

    dtype = cells.dtype
    n = cells.shape[0]
    if pd.api.types.is_bool_dtype(dtype):  # True/False cells are not numbers
        given = cells.notna().to_numpy(dtype=bool)
        first = int(np.argmax(given)) if given.any() else -1
        empty = np.zeros(n, dtype=bool)
        return Column(np.full(n, np.nan), empty, int(given.sum()), first)
    if not pd.api.types.is_numeric_dtype(dtype):
        numbers = pd.to_numeric(cells, errors="coerce")
        values = np.array(numbers.to_numpy(dtype=np.float64, na_value=np.nan))  # writable
        unsure = np.flatnonzero(np.isnan(values) & cells.notna().to_numpy(dtype=bool))
        present = ~np.isnan(values)
        if not unsure.size:
            return Column(values=values, present=present)
        raw = cells.to_numpy(dtype=object)
        text = coerce_objects(raw[unsure].tolist(), nan_is_missing=True)
        values[unsure], present[unsure] = text.values, text.present
        first = int(unsure[text.first_garbage]) if text.first_garbage >= 0 else -1
        texts = tuple(cell_text(c) for c in raw.tolist()) if text.garbage else None
        return Column(values, present, text.garbage, first, texts)
    values = cells.to_numpy(dtype=np.float64, na_value=np.nan)
    return Column(values=values, present=~np.isnan(values))


def normalise_header(name: object) -> str:
    """Return a header cell lower-cased and stripped."""
    return str(name).strip().lower()


def _tensorboard_csv(table: Table, *, source: str, hints: ColumnHints | None = None) -> Run:
    """Return the single series of a TensorBoard scalar export (``Wall time,Step,Value``)."""
    wall_name, step_name, value_name = list(table.columns)[:3]
    tag_match = TB_EXPORT_NAME.search(PurePath(source).stem)
    tag = tag_match.group("tag") if tag_match else PurePath(source).stem or value_name
    return tensorboard_export_run(
        table.columns[step_name],
        table.columns[value_name],
        tag=tag,
        lines=table.lines,
        source=source,
        reader="tensorboard-csv",
        hints=hints,
        walls=table.columns[wall_name],
    )
