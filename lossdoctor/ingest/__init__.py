"""Read any supported log into :class:`~lossdoctor.model.Run` objects.

The entry points are :func:`read_runs` (a path may be a folder of several runs)
and :func:`read_run` (exactly one run).  The format is sniffed from the content
(the file name only names a TensorBoard export's tag), so ``-`` (standard
input) works for every text format.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from lossdoctor.errors import InputError, NotALogError
from lossdoctor.ingest import delimited
from lossdoctor.ingest.columns import ColumnHints
from lossdoctor.ingest.delimited import TableLayout, decode_text, read_delimited, table_layout
from lossdoctor.model import FileNote, Run
from lossdoctor.safeio import (
    BULK_MIN_BYTES,
    GZIP_MAGIC,
    SNIFF_BYTES,
    SQLITE_MAGIC,
    STREAM_MIN_BYTES,
    JSONTooDeep,
    gunzip_capped,
    json_loads,
    read_head,
    read_whole,
    stat_input,
)

if TYPE_CHECKING:
    from lossdoctor.ingest.streamed import SpooledInput

# The readers of each format (JSON, JSON Lines, event files, streamed and spooled input)
# are imported where a format is told, not here: a check of a CSV file imports neither.

__all__ = ["ColumnHints", "read_bytes", "read_run", "read_runs", "read_source"]

#: Bytes looked at to tell text from binary.
BINARY_PROBE_BYTES = 8192
#: Bytes looked at to tell a table from other text (a table in a file larger than
#: SMALL_TABLE_BYTES is streamed to the parser rather than loaded whole).
HEAD_BYTES = 1 << 16
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
PARQUET_MAGIC = b"PAR1"
#: Lines the sniffing of a whole text looks at (metric file: 50, table layout: 60).
HEAD_LINES_LOOKED_AT = 64
#: Characters before the end of a head where a JSON error is not trusted to be final.
JSON_LOOKAHEAD = 64


def _check_text(data: bytes, source: str) -> None:
    """Raise :class:`InputError` when ``data`` is empty (or blank) or binary."""
    probe = data[:BINARY_PROBE_BYTES]
    if not probe.strip() and not data.strip():
        raise NotALogError("file is empty", path=source)
    if b"\x00" in probe:
        raise NotALogError("binary file, not a loss log", path=source)


def _from_utf16(data: bytes, source: str) -> bytes:
    """Return UTF-16 text (with its byte-order mark, as Windows PowerShell writes it)
    re-encoded as UTF-8; other data unchanged."""
    if data[:2] not in _UTF16_BOMS:
        return data
    try:
        return data.decode("utf-16").encode("utf-8")
    except UnicodeDecodeError:
        raise InputError("invalid UTF-16 text", path=source) from None


def read_stdin(stream: BinaryIO, source: str = "-") -> bytes | SpooledInput:
    """Return the bytes of a log piped to ``stream``, or, from
    :data:`~lossdoctor.safeio.STREAM_MIN_BYTES` on, the temporary file they were
    spooled to (the caller removes it); a binary stream is refused from its first bytes.

    Raises :class:`InputError` naming ``source``.
    """
    from lossdoctor.ingest.streamed import guarded, read_upto, spool

    read = guarded(stream, source)
    head = read_upto(read, SNIFF_BYTES)
    if not _may_be_binary(head) and b"\x00" in head[:BINARY_PROBE_BYTES]:
        raise NotALogError("binary file, not a loss log", path=source)
    head += read_upto(read, STREAM_MIN_BYTES - len(head))
    if len(head) < STREAM_MIN_BYTES:
        return head
    return spool(head, read, source=source)


def _may_be_binary(head: bytes) -> bool:
    """Return True when ``head`` starts a format that holds NUL bytes legitimately (gzip,
    UTF-16, TFRecord, a W&B or SwanLab run file)."""
    from lossdoctor.ingest.sniff import log_ident
    from lossdoctor.ingest.tfrecord import looks_like_tfrecord

    return (
        head.startswith(GZIP_MAGIC)
        or head[:2] in _UTF16_BOMS
        or looks_like_tfrecord(head)
        or log_ident(head) is not None
    )


def _table_layout(head: bytes, *, complete: bool) -> TableLayout | None:
    """Return the table layout of a text starting with ``head``, or None when the text is
    JSON, an MLflow metric file or not a table.  ``complete``: ``head`` is the whole text."""
    from lossdoctor.ingest.sniff import looks_like_metric_file
    from lossdoctor.ingest.textforms import opens_json

    text = decode_text(head)
    if opens_json(text):
        return None
    if complete:
        try:
            json_loads(text)
        except ValueError:
            pass
        else:
            return None
    if looks_like_metric_file(text):
        return None
    return table_layout(text, complete=complete)


def read_bytes(
    data: bytes, *, source: str, hints: ColumnHints | None = None, strict: bool = False
) -> Run:
    """Return the run held by ``data`` read from ``source`` (a path or ``-``); ``strict``:
    ``source`` was found in a folder walk, so a text must look like a log to be read as
    one (see :meth:`~lossdoctor.ingest.textlog.TextLogReader.shape_problem`).

    Raises :class:`InputError` with a one-line reason when it holds no loss log.
    """
    from lossdoctor.ingest.tfrecord import looks_like_tfrecord

    data = _from_utf16(gunzip_capped(data, source), source)
    if looks_like_tfrecord(data):
        from lossdoctor.ingest.tfevents import EventScalars, read_event_bytes, scalars_to_run

        scalars = EventScalars()
        read_event_bytes(data, scalars, source=source)
        return scalars_to_run(scalars, source=source, hints=hints)
    binary_run = _read_binary_log(data, source=source, hints=hints)
    if binary_run is not None:
        return binary_run
    _check_text(data, source)
    form = _read_text_form(data, source=source, hints=hints)
    if form is not None:
        return form
    layout = _table_layout(data[:HEAD_BYTES], complete=len(data) <= HEAD_BYTES)
    if layout is not None:
        return read_delimited(data, layout, source=source, hints=hints)
    if len(data) >= BULK_MIN_BYTES:
        from lossdoctor.ingest.jsonl_bulk import read_jsonl_bulk

        bulk = read_jsonl_bulk(data, source=source, hints=hints)
        if bulk is not None:
            return bulk
    if len(data) > HEAD_BYTES and _plain_text_head(decode_text(data[:HEAD_BYTES])):
        from lossdoctor.ingest.textlog import read_text_log_bytes

        return read_text_log_bytes(data, source=source, hints=hints, strict=strict)
    text = decode_text(data)
    head = text.lstrip()
    from lossdoctor.ingest.jsonlike import read_json, read_jsonl

    if head[:1] in ("{", "["):
        from lossdoctor.ingest.textforms import opens_json

        if not opens_json(head):
            return _read_text(text, source=source, hints=hints, strict=strict)
        try:
            obj = json_loads(text)
        except ValueError as exc:
            first_line = head.split("\n", 1)[0].strip()
            if _is_json_object(first_line):
                return read_jsonl(text, source=source, hints=hints)
            try:
                return _read_text(text, source=source, hints=hints, strict=strict)
            except InputError:
                line = getattr(exc, "lineno", None)
                reason = getattr(exc, "msg", str(exc))
                raise InputError(f"invalid JSON ({reason})", path=source, line=line) from None
        if isinstance(obj, dict) and _one_object_per_line(text):
            return read_jsonl(text, source=source, hints=hints)
        return read_json(obj, source=source, hints=hints)
    try:
        scalar = json_loads(text)
    except ValueError:
        pass
    else:
        return read_json(scalar, source=source, hints=hints)
    from lossdoctor.ingest.sniff import looks_like_metric_file

    if looks_like_metric_file(text):
        from lossdoctor.ingest.mlflow import read_metric_file

        return read_metric_file(text, source=source, hints=hints)
    layout = table_layout(text, complete=True)
    if layout is not None:
        return read_delimited(data, layout, source=source, hints=hints)
    return _read_text(text, source=source, hints=hints, strict=strict)


def _jsonl_after_text(head: str) -> bool:
    """Return True when a text starting with ``head`` is JSON Lines after lines of text
    (see :func:`~lossdoctor.ingest.textforms.jsonl_after_text`)."""
    from lossdoctor.ingest.textforms import jsonl_after_text, opens_json

    return not opens_json(head) and jsonl_after_text(head)


def _read_binary_log(data: bytes, *, source: str, hints: ColumnHints | None) -> Run | None:
    """Return the run of a W&B or SwanLab run file, or None for other data."""
    from lossdoctor.ingest.sniff import log_ident

    writer = log_ident(data)
    if writer == "W&B":
        from lossdoctor.ingest.wandb_offline import read_wandb_file

        return read_wandb_file(data, source=source, hints=hints)
    if writer == "SwanLab":
        from lossdoctor.ingest.swanlab import read_swanlab_file

        return read_swanlab_file(data, source=source, hints=hints)
    return None


def _read_text_form(data: bytes, *, source: str, hints: ColumnHints | None) -> Run | None:
    """Return the run when ``data`` is one of the text forms with their own reader
    (see :mod:`lossdoctor.ingest.textforms`) or JSON Lines after lines of text, else
    None."""
    from lossdoctor.ingest.textforms import read_text_form

    head = decode_text(data[:HEAD_BYTES])
    if _jsonl_after_text(head):
        from lossdoctor.ingest.jsonlike import read_jsonl

        return read_jsonl(decode_text(data), source=source, hints=hints)
    if head.lstrip()[:1] == "{":
        return None
    return read_text_form(head, lambda: decode_text(data), source=source, hints=hints)


def _plain_text_head(head: str) -> bool:
    """Return True when a large text starting with ``head`` is a text log on its head alone:
    it cannot be JSON (a JSON value would fail where the head fails), and its first lines,
    all in the head, make neither an MLflow metric file nor a table (the checks below in
    :func:`read_bytes` look at no more)."""
    from lossdoctor.ingest.sniff import looks_like_metric_file

    stripped = head.lstrip()
    if not stripped or stripped[:1] in ("{", "[") or head.count("\n") <= HEAD_LINES_LOOKED_AT:
        return False
    try:
        json_loads(head)
    except JSONTooDeep:
        return False
    except json.JSONDecodeError as exc:
        if exc.pos + JSON_LOOKAHEAD >= len(head):
            return False  # failed near the cut: the whole text might still be JSON
    else:
        return False
    return not looks_like_metric_file(head) and table_layout(head, complete=True) is None


def _read_text(text: str, *, source: str, hints: ColumnHints | None, strict: bool) -> Run:
    from lossdoctor.ingest.textlog import read_text_log

    return read_text_log(text, source=source, hints=hints, strict=strict)


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(json_loads(line), dict)
    except ValueError:
        return False


def _one_object_per_line(text: str) -> bool:
    """Return True when ``text`` is several lines that are each a JSON object."""
    lines = [ln for ln in text.split("\n") if ln.strip()]
    return len(lines) > 1 and all(
        ln.strip().startswith("{") and ln.strip().endswith("}") for ln in lines
    )


def read_source(
    source: str,
    *,
    data: bytes | SpooledInput | None = None,
    hints: ColumnHints | None = None,
    run: str | None = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> tuple[list[Run], list[FileNote]]:
    """Return every run at ``source`` (see :func:`read_runs`) and, for a folder, a note on
    every file met in it (read, or skipped and why); ``include``/``exclude`` are glob
    patterns that pick the files of a folder.

    Raises :class:`InputError` with a one-line reason naming ``source``.
    """
    if data is None and stat.S_ISDIR(stat_input(Path(source), source).st_mode):
        from lossdoctor.ingest.walk import walk_folder

        found = walk_folder(
            Path(source), source=source, hints=hints, run=run, include=include, exclude=exclude
        )
        return found.runs, found.files
    return read_runs(source, data=data, hints=hints, run=run), []


def read_runs(
    source: str,
    *,
    data: bytes | SpooledInput | None = None,
    hints: ColumnHints | None = None,
    run: str | None = None,
    strict: bool = False,
) -> list[Run]:
    """Return every run at ``source``: one for a log file or ``data`` (stdin, held or
    spooled), or one per run when the log holds several (a group column, sessions from
    scratch: see :mod:`lossdoctor.ingest.groups`); one per run for a folder (each run
    folder, each other log file in it) or an MLflow database (``strict``: a file found in
    a folder walk, see :func:`read_bytes`).

    Raises :class:`InputError` with a one-line reason naming ``source``.
    """
    if isinstance(data, bytes):
        return read_bytes(data, source=source, hints=hints, strict=strict).runs()
    path = Path(source if data is None else data.path)
    info = stat_input(path, source)
    if stat.S_ISDIR(info.st_mode) and data is None:
        from lossdoctor.ingest.runfolder import read_folder

        return read_folder(path, source=source, hints=hints, run=run)
    head = read_head(path, source)
    if head.startswith(SQLITE_MAGIC):
        from lossdoctor.ingest.mlflow import read_sqlite

        return read_sqlite(path, source=source, hints=hints, run=run)
    if head.startswith(PARQUET_MAGIC):
        from lossdoctor.ingest.trackio import read_trackio_parquet

        return read_trackio_parquet(path, source=source, hints=hints, run=run)
    streamed = _read_streamed_table(path, info, head, source=source, hints=hints)
    if streamed is not None:
        return streamed.runs()
    if info.st_size >= STREAM_MIN_BYTES or head.startswith(GZIP_MAGIC):
        from lossdoctor.ingest.streamed import read_file

        one = read_file(path, source=source, hints=hints, strict=strict)
    else:
        # a head shorter than asked for is the whole file (a small log is read once)
        whole = head if len(head) < SNIFF_BYTES else read_whole(path, source)
        one = read_bytes(whole, source=source, hints=hints, strict=strict)
    if data is not None:
        return one.runs()  # spooled stdin: no folder to find a config.json in
    from lossdoctor.ingest.configs import with_config

    return [with_config(each, path) for each in one.runs()]


def _read_streamed_table(
    path: Path, info: os.stat_result, head: bytes, *, source: str, hints: ColumnHints | None
) -> Run | None:
    """Return the run of a large plain delimited file (``info``: its stat, ``head``: its
    first bytes), parsed straight from its path (never loaded whole), or None when the file
    is small, compressed or not a table.

    Raises :class:`InputError` for a binary file, found from ``head`` alone.
    """
    if _may_be_binary(head):
        return None
    if b"\x00" in head[:BINARY_PROBE_BYTES]:
        raise NotALogError("binary file, not a loss log", path=source)
    if info.st_size <= delimited.SMALL_TABLE_BYTES:
        return None
    layout = _table_layout(head, complete=False)
    if layout is None:
        return None
    return read_delimited(path, layout, source=source, hints=hints)


def written_lines(
    source: str, data: bytes | SpooledInput | None = None
) -> tuple[bytes | SpooledInput | None, bool]:
    """Return the bytes of a text log that is still being written, up to its last complete
    line, and whether an unfinished last line (no newline yet) was left out; ``data`` is
    stdin's bytes, else ``source`` is read.  A folder, a URL, a binary or compressed file,
    and a log large enough to be streamed (spooled stdin, a file from
    :data:`~lossdoctor.safeio.STREAM_MIN_BYTES` on) give (``data``, False): they
    are read as they are.

    Raises :class:`InputError` naming ``source`` for an unreadable file."""
    if data is None:
        path = Path(source)
        info = stat_input(path, source)
        if not stat.S_ISREG(info.st_mode) or info.st_size >= STREAM_MIN_BYTES:
            return None, False
        head = read_head(path, source)
        if _may_be_binary(head) or b"\x00" in head[:BINARY_PROBE_BYTES]:
            return None, False
        data = read_whole(path, source)
    elif not isinstance(data, bytes) or _may_be_binary(data[:SNIFF_BYTES]):
        return data, False
    end = data.rfind(b"\n")
    if end < 0 or end == len(data) - 1 or not data[end + 1 :].strip():
        return data, False
    return data[: end + 1], True


def read_run(source: str, *, data: bytes | None = None, hints: ColumnHints | None = None) -> Run:
    """Return the one run at ``source`` (the first, for a folder of several).

    Raises :class:`InputError` with a one-line reason naming ``source``.
    """
    return read_runs(source, data=data, hints=hints)[0]
