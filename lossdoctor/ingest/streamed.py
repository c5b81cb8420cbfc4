"""Large inputs read a block at a time, so memory follows the loss data kept, not the file.

An input of :data:`STREAM_MIN_BYTES` or more (a file, its inflated gzip content, stdin
spooled to disk, a remote object) is sniffed from its first bytes, as
:func:`~lossdoctor.ingest.read_bytes` sniffs a whole one, and then:

- TensorBoard event files are framed and decoded a block of whole records at a time;
- JSON Lines and text logs are parsed a block of whole lines at a time (JSON Lines
  blocks in bulk by polars where they allow it), each block's rows kept as arrays;
- large plain tables on disk are streamed by their own reader (pandas in chunks);
- anything else (a JSON document, a notebook, a framework's JSON Lines that need all
  records at once, a table inside gzip or on stdin) is read whole, up to
  :data:`~lossdoctor.safeio.MAX_WHOLE_BYTES`.

Every block reader gives the same run as the whole reader (tests/test_streamed.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lossdoctor.errors import InputError, NotALogError
from lossdoctor.ingest.columns import ColumnHints
from lossdoctor.ingest.table import Column, Table
from lossdoctor.model import ConsecutiveLines, Lines, Run
from lossdoctor.safeio import (
    GZIP_MAGIC,
    MAX_WHOLE_BYTES,
    READ_CHUNK,
    STREAM_MIN_BYTES,
    GunzipStream,
    inflate_cap,
    open_regular,
    os_reason,
    too_large,
)

#: Bytes of whole lines parsed at a time (4 MiB).
BLOCK_BYTES = 4 << 20
#: A line longer than this stops a streamed read with an error (64 MiB).
MAX_STREAM_LINE = 64 << 20

Read = Callable[[int], bytes]


#: Bytes of standard input spooled to a temporary file at the most (16 GiB).
MAX_SPOOL_BYTES = 16 << 30


@dataclass(frozen=True)
class SpooledInput:
    """Standard input too large to hold, written to the temporary file ``path`` (which
    the caller of :func:`spool` removes)."""

    path: str


def spool(head: bytes, read: Read, *, source: str, limit: int = MAX_SPOOL_BYTES) -> SpooledInput:
    """Return ``head`` and the rest of ``read`` written to a new private temporary file (in
    ``$TMPDIR``), at most ``limit`` bytes.

    Raises :class:`InputError` naming ``source`` past ``limit`` bytes or when the file
    cannot be written (nothing is left behind).
    """
    import tempfile

    handle, name = tempfile.mkstemp(prefix="lossdoctor-stdin-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(head)
            written = len(head)
            while piece := read(1 << 20):
                written += len(piece)
                if written > limit:
                    raise InputError(too_large(written, limit, at_least=True), path=source)
                out.write(piece)
    except OSError as exc:
        os.unlink(name)
        raise InputError(
            f"cannot spool to a temporary file ({os_reason(exc)})", path=source
        ) from None
    except BaseException:
        os.unlink(name)
        raise
    return SpooledInput(name)


class NeedsWhole(Exception):
    """A streamed read met data that only the whole reader reads right (read it again)."""


def guarded(handle: Any, source: str) -> Read:
    """Return ``handle.read`` raising :class:`InputError` naming ``source`` on an OS error."""

    def read(size: int) -> bytes:
        try:
            return bytes(handle.read(size))
        except OSError as exc:
            raise InputError(os_reason(exc), path=source) from None

    return read


def read_upto(read: Read, size: int, start: bytes = b"") -> bytes:
    """Return ``start`` and then the next bytes of ``read``, ``size`` bytes in all (fewer
    at its end), asked for a :data:`~lossdoctor.safeio.READ_CHUNK` at a time (memory grows
    with what comes)."""
    out = bytearray(start)
    while len(out) < size:
        piece = read(min(size - len(out), READ_CHUNK))
        if not piece:
            break
        out += piece
    return bytes(out)


def read_file(
    path: Path,
    *,
    source: str,
    hints: ColumnHints | None,
    named: str | None = None,
    strict: bool = False,
) -> Run:
    """Return the run in the regular file ``path`` (a gzip file inflated as a stream, its
    inflated size capped), streamed when large, else read whole (``strict``: found in a
    folder walk, see :func:`~lossdoctor.ingest.read_bytes`).

    Raises :class:`InputError` naming ``source`` (``named``, when given, for a file that
    cannot be opened or read).
    """
    where = named or source

    def whole(limit: int) -> bytes:
        with open_regular(path, where) as handle:
            size = os.fstat(handle.fileno()).st_size
            return read_upto(content_reader(guarded(handle, where), where, size), limit)

    with open_regular(path, where) as handle:
        size = os.fstat(handle.fileno()).st_size
        read = content_reader(guarded(handle, where), where, size)
        plain = not isinstance(getattr(read, "__self__", None), GunzipStream)
        known = size if plain else None
        return read_content(
            read, source=source, hints=hints, whole=whole, size=known, strict=strict,
            path=path if plain else None,
        )  # fmt: skip


def read_url(url: str, *, hints: ColumnHints | None) -> Run:
    """Return the run in the remote object at ``url`` (see :mod:`lossdoctor.sources`),
    streamed as a local file is; a gzip object is inflated as a stream.

    Raises :class:`InputError` naming ``url``.
    """
    from lossdoctor.sources import open_object

    def whole(limit: int) -> bytes:
        with open_object(url) as (read, size):
            return read_upto(content_reader(read, url, size), limit)

    with open_object(url) as (read, size):
        return read_content(content_reader(read, url, size), source=url, hints=hints, whole=whole)


def content_reader(read: Read, source: str, size: int | None) -> Read:
    """Return the reader of the content of a file or object of ``size`` bytes (None: not
    known) that ``read`` reads from its start: inflated when it is gzip (up to
    :func:`~lossdoctor.safeio.inflate_cap` of its size, or of the bytes read so far when
    the size is not known), else ``read`` itself."""
    magic = read_upto(read, len(GZIP_MAGIC))
    raw = _Prefixed(magic, read)
    if magic == GZIP_MAGIC:
        cap = inflate_cap(size) if size is not None else _growing_cap(raw)
        return GunzipStream(raw, source, cap).read
    return raw.read


class _Prefixed:
    """``prefix``, then what ``read`` gives; counts the bytes given."""

    def __init__(self, prefix: bytes, read: Read) -> None:
        self._prefix, self._read = prefix, read
        self.given = 0

    def read(self, size: int) -> bytes:
        if self._prefix:
            out, self._prefix = self._prefix[:size], self._prefix[size:]
        else:
            out = self._read(size)
        self.given += len(out)
        return out


def _growing_cap(raw: _Prefixed) -> Callable[[], int]:
    """Return the inflate cap of a gzip stream as a function of the bytes read from it so far
    (the cap grows with the compressed bytes; a whole member counts once read)."""
    return lambda: inflate_cap(raw.given)


def read_content(
    read: Read,
    *,
    source: str,
    hints: ColumnHints | None,
    whole: Callable[[int], bytes],
    limit: int = MAX_WHOLE_BYTES,
    size: int | None = None,
    strict: bool = False,
    path: Path | None = None,
) -> Run:
    """Return the run in the bytes ``read`` gives: streamed when they reach
    :data:`STREAM_MIN_BYTES` and the format allows, else read whole (at most ``limit``
    bytes, refused from ``size``, the total when known, before reading); ``whole(n)``
    reads the first ``n`` bytes again from the start, for a streamed read that finds it
    needs the whole input (``strict``: found in a folder walk, so a text must look like a
    log, as for :func:`~lossdoctor.ingest.read_bytes`; ``path``: the plain file the bytes
    are read from, for a reader that reads the file at once).

    Raises :class:`InputError` naming ``source``.
    """
    from lossdoctor.ingest import HEAD_BYTES, read_bytes

    head = b""
    if path is not None and size is not None and size >= STREAM_MIN_BYTES:
        # JSON Lines of numbers in a plain file go to polars whole, told from their first
        # line: the head other large inputs are told by (8 MiB, 10 ms) is not read for them
        head = read_upto(read, min(HEAD_BYTES, STREAM_MIN_BYTES))
        run = _whole_jsonl_file(head, path, source=source, hints=hints)
        if run is not None:
            return run  # (else read a piece at a time below)
    head = read_upto(read, STREAM_MIN_BYTES, start=head)
    if len(head) < STREAM_MIN_BYTES:
        return read_bytes(head, source=source, hints=hints, strict=strict)
    # handed over: a streamed read lets the head go once it has cut its first piece
    held = [head]
    del head
    try:
        run = read_large(read, held, source=source, hints=hints, strict=strict)
    except NeedsWhole:
        run, again = None, True
    else:
        again = False
    if run is not None:
        return run
    if size is not None and size > limit:
        raise InputError(too_large(size, limit), path=source)
    data = whole(limit + 1) if again else read_upto(read, limit + 1, start=held[0])
    if len(data) > limit:
        raise InputError(too_large(len(data), limit, at_least=True), path=source)
    return read_bytes(data, source=source, hints=hints, strict=strict)


def _whole_jsonl_file(
    head: bytes, path: Path, *, source: str, hints: ColumnHints | None
) -> Run | None:
    """Return the run of the plain file at ``path`` when its first bytes ``head`` open a
    line of JSON Lines (an object on the first line: as :func:`read_large` tells them) and
    polars reads the whole file (see :func:`read_jsonl_file`), else None."""
    from lossdoctor.ingest import BINARY_PROBE_BYTES, _is_json_object, _may_be_binary
    from lossdoctor.ingest.delimited import decode_text

    if head[:1] != b"{" or _may_be_binary(head) or b"\x00" in head[:BINARY_PROBE_BYTES]:
        return None  # polars takes a file that starts an object at its first byte
    if not _is_json_object(decode_text(head).split("\n", 1)[0].strip()):
        return None  # a JSON document
    return read_jsonl_file(path, source=source, hints=hints)


def read_large(
    read: Read,
    head: bytes | list[bytes],
    *,
    source: str,
    hints: ColumnHints | None,
    strict: bool = False,
) -> Run | None:
    """Return the run of a large input (``head``: its first bytes, then ``read``) when its
    format is read as a stream, else None (nothing more read: the caller reads it whole);
    ``strict`` as for :func:`read_content`.  A head given in a list is taken out of it
    when the input is streamed as lines (so that the caller does not hold it while the
    rest is read).

    Raises :class:`InputError` for a binary file, found from ``head`` alone.
    """
    held = head if isinstance(head, list) else [head]
    head = held[0]
    from lossdoctor.ingest import (
        BINARY_PROBE_BYTES,
        HEAD_BYTES,
        _is_json_object,
        _jsonl_after_text,
        _may_be_binary,
        _plain_text_head,
        _table_layout,
    )
    from lossdoctor.ingest.delimited import decode_text
    from lossdoctor.ingest.textforms import is_text_form
    from lossdoctor.ingest.tfrecord import looks_like_tfrecord

    if looks_like_tfrecord(head):
        from lossdoctor.ingest.tfevents import EventScalars, read_event_stream, scalars_to_run

        scalars = EventScalars()
        read_event_stream(read, head, scalars, source=source)
        return scalars_to_run(scalars, source=source, hints=hints)
    if _may_be_binary(head):
        return None  # gzip inside gzip, UTF-16, a W&B or SwanLab file: read whole
    probe = head[:BINARY_PROBE_BYTES]
    if b"\x00" in probe:
        raise NotALogError("binary file, not a loss log", path=source)
    text = decode_text(head[:HEAD_BYTES])
    stripped = text.lstrip()
    if not stripped:
        return None
    if stripped[:1] == "{" or _jsonl_after_text(text):
        if stripped[:1] == "{" and not _is_json_object(stripped.split("\n", 1)[0].strip()):
            return None  # a JSON document
        blocks = line_blocks(read, _take(held), source=source)
        del head
        return read_jsonl_blocks(blocks, source=source, hints=hints)
    if is_text_form(text) or _table_layout(head[:HEAD_BYTES], complete=False) is not None:
        return None
    # the whole head, not its first 64 KiB: a log of long lines needs more than 64 KiB
    # for the 64 lines that tell a text log from a table or a metric file
    if _plain_text_head(text if len(head) <= HEAD_BYTES else decode_text(head)):
        from lossdoctor.ingest.textlog import read_text_log_blocks

        blocks = line_blocks(read, _take(held), source=source)
        del head
        return read_text_log_blocks(blocks, source=source, hints=hints, strict=strict)
    return None


def _take(held: list[bytes]) -> bytes:
    """Return the one item of ``held``, which is left empty."""
    return held.pop()


def line_blocks(
    read: Read, head: bytes, *, source: str, size: int | None = None
) -> Iterator[bytes]:
    """Yield ``head`` and then what ``read`` gives, in pieces of about ``size`` bytes that
    each end just after a ``\\n`` (the last piece: the rest).

    Raises :class:`InputError` for a line longer than :data:`MAX_STREAM_LINE`.
    """
    block = size or BLOCK_BYTES
    want = block
    pending = head  # bytes: a whole piece read is given on without a copy
    del head  # let go with the first piece cut from it
    ended = False
    while True:
        if not ended and len(pending) < want:
            parts, have = [pending], len(pending)
            while have < want:
                piece = read(want - have)
                if not piece:
                    ended = True
                    break
                parts.append(piece)
                have += len(piece)
            pending = b"".join(parts) if len(parts) > 2 or pending else parts[-1]
            del parts, piece
            continue
        if ended:
            if pending:
                yield pending
            return
        cut = pending.rfind(b"\n", 0, want)
        if cut < 0:
            if len(pending) > MAX_STREAM_LINE:
                raise InputError(
                    f"a line longer than {MAX_STREAM_LINE >> 20} MiB: not a loss log", path=source
                )
            want = len(pending) + block  # a long line: read on to its end
            continue
        if cut + 1 == len(pending):
            piece, pending = pending, b""
        else:
            piece, pending = pending[: cut + 1], pending[cut + 1 :]
        yield piece
        del piece
        want = block


def read_jsonl_file(
    path: Path, *, source: str, hints: ColumnHints | None, schema_rows: int | None = None
) -> Run | None:
    """Return the run in the JSON Lines file at ``path`` read at once by polars (which infers
    the columns from ``schema_rows`` lines first; None: its default), or None when that
    reader does not take it (see :func:`~lossdoctor.ingest.jsonl_bulk.jsonl_file_table`):
    the file is then read a piece at a time."""
    from lossdoctor.ingest.jsonl_bulk import jsonl_file_table
    from lossdoctor.ingest.provenance import mark_smoothing
    from lossdoctor.ingest.table import table_to_run

    rows = {} if schema_rows is None else {"schema_rows": schema_rows}
    table = jsonl_file_table(path, **rows)
    if table is None:
        return None
    try:
        run = table_to_run(table, source=source, reader="jsonl", hints=hints)
    except InputError:
        return None  # the piece-at-a-time reader says why
    return mark_smoothing(run, set(table.columns))


def read_jsonl_blocks(blocks: Iterable[bytes], *, source: str, hints: ColumnHints | None) -> Run:
    """Return the run in JSON Lines given as pieces of whole lines (as
    :func:`~lossdoctor.ingest.jsonlike.read_jsonl` reads the whole text), each piece
    turned into arrays before the next is read.

    Raises :class:`InputError` when no line holds a JSON object, :class:`NeedsWhole`
    at a record a framework reshaping may change (those logs are read whole).
    """
    from lossdoctor.ingest.frameworks import reshapes
    from lossdoctor.ingest.jsonl_bulk import jsonl_bulk_table
    from lossdoctor.ingest.jsonlike import bad_lines_note, jsonl_records, records_table
    from lossdoctor.ingest.provenance import mark_smoothing
    from lossdoctor.ingest.table import table_to_run

    stack = TableStack()
    line = 1  # the number of the piece's first line
    bad, bad_first = 0, None
    for index, piece in enumerate(blocks):
        # the bulk reader takes a piece only where \n alone ends a line of the decoded text
        bulk = jsonl_bulk_table(piece)
        if bulk is not None:
            stack.add(bulk, line - 1)
            line += bulk.n_rows
            continue
        text = piece.decode("utf-8-sig" if index == 0 else "utf-8", errors="replace")
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        lines = text.splitlines()
        found = jsonl_records(text, first=line)
        line += len(lines)
        if any(reshapes(set(record)) for record in found.records):
            raise NeedsWhole
        bad += found.bad
        bad_first = bad_first or found.bad_first
        if found.records:
            stack.add(records_table(found.records, found.lines), 0)
    if not stack.rows:
        raise InputError("no line holds a JSON object", path=source, line=bad_first)
    table = stack.table()
    if bad:
        table.notes.append(bad_lines_note(bad, bad_first))
    run = table_to_run(table, source=source, reader="jsonl", hints=hints)
    return mark_smoothing(run, set(table.columns))


class TableStack:
    """Tables of consecutive parts of one log, stacked into one: columns in the order
    they are first seen, a column absent from a part missing in its rows."""

    def __init__(self) -> None:
        self.parts: list[Table] = []
        self.rows = 0

    def add(self, table: Table, line_offset: int) -> None:
        """Append ``table``'s rows, its line numbers shifted by ``line_offset``."""
        if not table.n_rows:
            return
        if table.lines is not None and line_offset:
            table.lines = table.lines + line_offset
        self.parts.append(table)
        self.rows += table.n_rows

    def table(self) -> Table:
        """Return the stacked table (the parts are let go)."""
        parts, self.parts = self.parts, []
        if len(parts) == 1:
            return parts[0]
        order: dict[str, None] = {}
        for part in parts:
            order.update(dict.fromkeys(part.columns))
        columns = {name: _stack(name, parts) for name in order}
        lines = [p.lines for p in parts if p.lines is not None]
        stacked = _stacked_lines(lines) if len(lines) == len(parts) else None
        notes = [note for part in parts for note in part.notes]
        return Table(columns=columns, lines=stacked, notes=notes)


def _stacked_lines(lines: list[Lines]) -> Lines:
    """Return the source lines of stacked parts' rows: one range when every part's rows
    are consecutive lines that follow the previous part's (a log read in bulk a piece
    at a time), else the array of them all."""
    first = lines[0]
    if isinstance(first, ConsecutiveLines):
        count = first.count
        for part in lines[1:]:
            if not isinstance(part, ConsecutiveLines) or part.first != first.first + count:
                break
            count += part.count
        else:
            return ConsecutiveLines(first.first, count)
    return np.concatenate(lines)


def _stack(name: str, parts: list[Table]) -> Column:
    values, present = [], []
    garbage, first_garbage, offset = 0, -1, 0
    for part in parts:
        column = part.columns.get(name)
        rows = part.n_rows
        if column is None:
            values.append(np.full(rows, np.nan))
            present.append(np.zeros(rows, dtype=bool))
        else:
            values.append(column.values)
            present.append(column.present)
            garbage += column.garbage
            if first_garbage < 0 and column.first_garbage >= 0:
                first_garbage = offset + column.first_garbage
        offset += rows
    return Column(np.concatenate(values), np.concatenate(present), garbage, first_garbage)
