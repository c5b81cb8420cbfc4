"""Large delimited logs of plain numbers read by polars' CSV reader (imported only for them).

The bulk path takes a table only when polars reads every cell as a number (or empty)
and every line as one row; anything else (missing-value tokens, text cells, ragged
rows, quotes, padded cells, lone carriage returns) returns None and pandas' chunked reader in
:mod:`lossdoctor.ingest.delimited` reads the file, which gives the same columns and
says exactly what is wrong with a malformed row.
"""

from __future__ import annotations

import mmap
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lossdoctor.ingest.table import Column

if TYPE_CHECKING:
    import polars as pl

#: Bytes read at a time when looking for lone carriage returns in a file.
COUNT_BLOCK_BYTES = 1 << 24
#: Bytes read from a file's end to find its last line (a longer line is no table row).
TAIL_BYTES = 1 << 16


def read_numbers_bulk(
    data: bytes | Path,
    *,
    names: list[str],
    delimiter: str,
    skip_lines: int,
) -> dict[str, Column] | None:
    """Return the columns (``names``, in order) of the table that starts after
    ``skip_lines`` lines of ``data`` (its bytes, or a file read from its path), or None
    when polars is not installed, a cell is neither a number nor empty, a row is wider
    than ``names``, or a line is not one row.  Missing-value tokens (``NA``, ``null``,
    ...) are left to pandas too: matching every cell against them would make polars
    half again as slow on the tables that hold none."""
    try:
        import polars as pl
    except ImportError:
        return None
    if not names or len(set(names)) != len(names):
        return None
    from concurrent.futures import ThreadPoolExecutor  # imported by polars already

    errors = (pl.exceptions.PolarsError, pl.exceptions.PanicException, ValueError, OSError)
    with ThreadPoolExecutor(max_workers=2) as pool:
        # polars parses without the GIL: the file is looked over here meanwhile
        parsed = pool.submit(_read_frame, data, names, delimiter, skip_lines)
        # pandas ends a line at a lone carriage return, polars does not; polars drops an
        # unterminated last line's extra empty cell, pandas says the row is malformed
        polars_differs = _lone_carriage_return(data) or _last_line_too_wide(
            data, delimiter.encode(), len(names)
        )
        try:
            frame = parsed.result()
        except errors:
            return None  # a cell that is no number, a ragged row, bad UTF-8: pandas says which
        if polars_differs or frame.width != len(names):
            return None
        # the columns copied out of polars' chunks two at a time, each let go of once copied
        # (memory holds the frame and the copies under way, not the frame and every copy)
        cells = {name: frame.drop_in_place(name) for name in names}
        del frame
        copied = pool.map(lambda name: float_column(cells.pop(name)), names)
        return dict(zip(names, copied, strict=True))


def _read_frame(
    data: bytes | Path, names: list[str], delimiter: str, skip_lines: int
) -> pl.DataFrame:
    """Return the table after ``skip_lines`` lines of ``data`` read by polars, every column
    (``names``) as floats; raises polars' error for a cell that is no number or a row that
    is too wide."""
    import polars as pl

    return pl.read_csv(
        data,
        has_header=False,
        skip_lines=skip_lines,
        schema=dict.fromkeys(names, pl.Float64),
        separator=delimiter,
        quote_char=None,
        raise_if_empty=False,
        eol_char="\n",
        encoding="utf8",
    )


def float_column(cells: pl.Series) -> Column:
    """Return a polars column of numbers as a column of the table, its values as floats:
    an empty cell (null) is no point (NaN, absent), a ``nan`` cell a logged NaN."""
    import polars as pl

    values = np.asarray(cells.cast(pl.Float64).to_numpy(), dtype=np.float64)  # NaN for null
    if not values.flags.writeable:
        values = values.copy()  # a view of polars' memory: a reader may set values later
    if not cells.null_count():
        return Column(values=values, present=np.ones(values.shape[0], dtype=bool))
    # polars' own arrays: ``values`` holds NaN under every null already
    present = np.asarray(cells.is_not_null().to_numpy(), dtype=bool)
    if not present.flags.writeable:
        present = present.copy()
    return Column(values=values, present=present)


def _last_line_too_wide(data: bytes | Path, delimiter: bytes, width: int) -> bool:
    """Return True when ``data`` (bytes, or a file) ends in a line without a line feed that
    holds more than ``width`` cells (polars reads ``0.0,`` under a one-column header as
    one cell; pandas says the row is malformed)."""
    if isinstance(data, bytes):
        tail = data[-TAIL_BYTES:]
    else:
        with data.open("rb") as handle:
            handle.seek(max(0, data.stat().st_size - TAIL_BYTES))
            tail = handle.read()
    if not tail or tail.endswith(b"\n"):
        return False
    last = tail.rsplit(b"\n", 1)[-1]
    return last.count(delimiter) >= width


def map_file(fileno: int) -> mmap.mmap:
    """Return the file ``fileno`` mapped for reading, its pages mapped at once where the
    system can (Linux: half the time of faulting them in one by one as they are read)."""
    populate = getattr(mmap, "MAP_POPULATE", 0)
    if populate:
        return mmap.mmap(fileno, 0, flags=mmap.MAP_SHARED | populate, prot=mmap.PROT_READ)
    return mmap.mmap(fileno, 0, access=mmap.ACCESS_READ)


def _lone_carriage_return(data: bytes | Path) -> bool:
    """Return True when ``data`` (bytes, or a file) holds a carriage return that is not
    followed by a line feed.  A file is mapped, not read, to look for any carriage return
    at all; only a file that holds some is read a block at a time."""
    if isinstance(data, bytes):
        return b"\r" in data and data.count(b"\r") != data.count(b"\r\n")
    with data.open("rb") as handle:
        if data.stat().st_size == 0:
            return False
        with map_file(handle.fileno()) as mapped:
            if mapped.find(b"\r") < 0:
                return False
        carry = b""
        while block := handle.read(COUNT_BLOCK_BYTES):
            block = carry + block
            carry = block[-1:] if block.endswith(b"\r") else b""
            body = block[:-1] if carry else block
            if body.count(b"\r") != body.count(b"\r\n"):
                return True
        return carry == b"\r"
