"""Read any supported log into a :class:`~lossdoctor.model.Run`.

The one entry point is :func:`read_run`; the format is sniffed from the content
(the file name only breaks ties), so ``-`` (standard input) works for every format.
"""

from __future__ import annotations

import gzip
import json
import os
import stat
import zlib
from pathlib import Path

from lossdoctor.errors import InputError
from lossdoctor.ingest.columns import ColumnHints
from lossdoctor.ingest.delimited import read_delimited, sniff_delimiter
from lossdoctor.ingest.jsonlike import read_json, read_jsonl
from lossdoctor.model import Run

__all__ = ["ColumnHints", "read_bytes", "read_run"]

#: Bytes looked at to tell text from binary.
BINARY_PROBE_BYTES = 8192
_GZIP_MAGIC = b"\x1f\x8b"


def _load(path: Path, source: str) -> bytes:
    """Return the bytes of the file at ``path``; raise :class:`InputError` if unreadable."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise InputError("no such file", path=source) from None
    except OSError as exc:
        raise InputError(exc.strerror or "cannot be read", path=source) from None
    if stat.S_ISDIR(mode):
        raise InputError("is a directory, not a log file", path=source)
    if not stat.S_ISREG(mode):
        raise InputError("is not a regular file (pipe or device): use '-' for a pipe", path=source)
    if not os.access(path, os.R_OK):
        raise InputError("permission denied", path=source)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(exc.strerror or "cannot be read", path=source) from None


def _decode(data: bytes, source: str) -> str:
    """Return the text of ``data`` (gunzipped when compressed), or raise for binary input."""
    if data.startswith(_GZIP_MAGIC):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            raise InputError("corrupt gzip file", path=source) from None
    if not data.strip():
        raise InputError("file is empty", path=source)
    if b"\x00" in data[:BINARY_PROBE_BYTES]:
        raise InputError("binary file, not a text log", path=source)
    text = data.decode("utf-8-sig", errors="replace")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_bytes(data: bytes, *, source: str, hints: ColumnHints | None = None) -> Run:
    """Return the run held by ``data`` read from ``source`` (a path or ``-``).

    Raises :class:`InputError` with a one-line reason when it holds no loss log.
    """
    text = _decode(data, source)
    head = text.lstrip()
    if head[:1] in ("{", "["):
        try:
            obj = json.loads(text)
        except ValueError as exc:
            first_line = head.split("\n", 1)[0].strip()
            if first_line.startswith("{") and first_line.endswith("}"):
                return read_jsonl(text, source=source, hints=hints)
            line = getattr(exc, "lineno", None)
            reason = getattr(exc, "msg", str(exc))
            raise InputError(f"invalid JSON ({reason})", path=source, line=line) from None
        if isinstance(obj, dict) and "\n" in text.strip() and _one_object_per_line(text):
            return read_jsonl(text, source=source, hints=hints)
        return read_json(obj, source=source, hints=hints)
    try:
        scalar = json.loads(text)
    except ValueError:
        pass
    else:
        return read_json(scalar, source=source, hints=hints)
    lines = text.split("\n", 40)[:40]
    delimiter = sniff_delimiter([ln for ln in lines if not ln.lstrip().startswith("#")])
    if delimiter is not None:
        return read_delimited(text, source=source, delimiter=delimiter, hints=hints)
    single = [ln.strip() for ln in lines if ln.strip()]
    if len(single) >= 2 and all(" " not in ln for ln in single):
        return read_delimited(text, source=source, delimiter=",", hints=hints)
    raise InputError(
        "not a table, JSON or JSON Lines log (no delimiter, no JSON object found)", path=source
    )


def _one_object_per_line(text: str) -> bool:
    """Return True when ``text`` parsed as one JSON object only because it has one line."""
    return sum(1 for ln in text.split("\n") if ln.strip()) > 1 and all(
        ln.strip().startswith("{") and ln.strip().endswith("}")
        for ln in text.split("\n")
        if ln.strip()
    )


def read_run(source: str, *, data: bytes | None = None, hints: ColumnHints | None = None) -> Run:
    """Return the run read from the file ``source``, or from ``data`` when given (stdin).

    Raises :class:`InputError` with a one-line reason naming ``source``.
    """
    raw = data if data is not None else _load(Path(source), source)
    return read_bytes(raw, source=source, hints=hints)
