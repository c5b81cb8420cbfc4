"""Safe reading of what the user points at: every reader opens files through here.

The promises (see the README's reliability section):

- only regular files are read (a FIFO, a device or a socket is refused or, in a folder
  walk, skipped), so nothing blocks forever and nothing reads without end;
- a file is sniffed from its first bytes before it is loaded, so a binary file is refused
  without reading it; files read whole are capped at :data:`MAX_WHOLE_BYTES`;
- gzip input is inflated in a stream and refused past :func:`inflate_cap` bytes (a
  ratio to the compressed size with a floor), so a decompression bomb stops early;
- databases are opened read-only through an escaped ``file:`` URI, so no file is ever
  created or changed;
- JSON nested deeper than Python can parse and integers too long to convert are input
  errors, not crashes.

Every failure is an :class:`~lossdoctor.errors.InputError` naming the file.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lossdoctor.errors import InputError

#: Bytes of an input read whole at the most: 1 GiB.  Only the formats that cannot be
#: streamed are (JSON documents, notebooks, W&B and SwanLab run files, UTF-16 text,
#: tables inside gzip or from a remote store); see :mod:`lossdoctor.ingest.streamed`.
MAX_WHOLE_BYTES = 1 << 30
#: A gzip file may inflate to this many times its compressed size ...
INFLATE_MAX_RATIO = 100
#: ... or to this many bytes, whichever is larger (64 MiB).
INFLATE_FLOOR_BYTES = 64 << 20
#: Bytes sniffed from the start of a file before deciding how to read it.
SNIFF_BYTES = 1 << 16
#: Inputs from this size on are streamed (smaller ones are read whole: 8 MiB); see
#: :mod:`lossdoctor.ingest.streamed`.
STREAM_MIN_BYTES = 8 << 20
#: JSON Lines files from this size on take the bulk path (smaller ones do not import
#: polars); see :mod:`lossdoctor.ingest.jsonl_bulk`.
BULK_MIN_BYTES = 1 << 20
#: Digits of an integer field converted at the most (Python refuses beyond 4,300).
MAX_INT_DIGITS = 18
GZIP_MAGIC = b"\x1f\x8b"
SQLITE_MAGIC = b"SQLite format 3\x00"

_OS_REASONS = {
    errno.ENOENT: "no such file or folder",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ELOOP: "too many levels of symbolic links (a symlink loop)",
    errno.ENAMETOOLONG: "file name too long",
    errno.ENOTDIR: "a part of the path is not a folder",
    errno.EISDIR: "is a folder",
}


def os_reason(exc: OSError) -> str:
    """Return a short lower-case reason for an operating-system error."""
    reason = _OS_REASONS.get(exc.errno or 0)
    if reason is not None:
        return reason
    return (exc.strerror or "cannot be read").lower()


def stat_input(path: Path, source: str) -> os.stat_result:
    """Return the stat of ``path`` (symlinks followed).

    Raises :class:`InputError` naming ``source`` when it does not exist or cannot be reached.
    """
    try:
        return path.stat()
    except OSError as exc:
        raise InputError(os_reason(exc), path=source) from None
    except ValueError:  # an embedded NUL in the name
        raise InputError("invalid file name", path=source) from None


def is_regular_file(path: Path) -> bool:
    """Return True when ``path`` is (or links to) a regular file; never raises."""
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except (OSError, ValueError):
        return False


def _require_regular(path: Path, source: str) -> os.stat_result:
    info = stat_input(path, source)
    if stat.S_ISDIR(info.st_mode):
        raise InputError("is a folder", path=source)
    if not stat.S_ISREG(info.st_mode):
        raise InputError("is not a regular file (pipe or device): use '-' for a pipe", path=source)
    return info


def _open(path: Path, source: str) -> Any:
    try:
        return path.open("rb")
    except OSError as exc:
        raise InputError(os_reason(exc), path=source) from None


def open_regular(path: Path, source: str) -> Any:
    """Return the regular file ``path`` opened for binary reading (the caller closes it).

    Raises :class:`InputError` naming ``source`` for anything but a readable regular file.
    """
    _require_regular(path, source)
    return _open(path, source)


def read_head(path: Path, source: str, size: int = SNIFF_BYTES) -> bytes:
    """Return at most the first ``size`` bytes of the regular file ``path``.

    Raises :class:`InputError` naming ``source`` for anything but a readable regular file.
    """
    _require_regular(path, source)
    with _open(path, source) as handle:
        try:
            return bytes(handle.read(size))
        except OSError as exc:
            raise InputError(os_reason(exc), path=source) from None


def read_whole(path: Path, source: str, *, limit: int = MAX_WHOLE_BYTES) -> bytes:
    """Return the bytes of the regular file ``path``, at most ``limit`` of them.

    Raises :class:`InputError` naming ``source`` for a non-regular or unreadable file and
    for one larger than ``limit`` bytes (checked before and while reading: a file that
    grows is still cut off).
    """
    info = _require_regular(path, source)
    if info.st_size > limit:
        raise InputError(too_large(info.st_size, limit), path=source)
    with _open(path, source) as handle:
        try:
            data = read_bounded(handle, limit, expected=info.st_size)
        except OSError as exc:
            raise InputError(os_reason(exc), path=source) from None
        except MemoryError:
            raise InputError("out of memory reading this file", path=source) from None
    if len(data) > limit:
        raise InputError(too_large(len(data), limit), path=source)
    return data


#: Bytes read at a time when the size of what is read is not known.
READ_CHUNK = 1 << 20


def read_bounded(handle: Any, limit: int, *, expected: int = 0) -> bytes:
    """Return the bytes of a binary ``handle`` up to its end or ``limit + 1`` bytes (so a
    caller sees that the limit was passed); memory grows with what is read, never with
    ``limit`` (``read(n)`` allocates ``n`` bytes at once).  A file of the ``expected`` size
    is read in one call and returned as it came (no copy: peak memory is its size once)."""
    chunks: list[bytes] = []
    total = 0
    first = min(expected, limit) + 1 if expected else READ_CHUNK
    while total <= limit:
        chunk = handle.read(min(first if not chunks else READ_CHUNK, limit + 1 - total))
        if not chunk:
            break
        chunks.append(bytes(chunk) if not isinstance(chunk, bytes) else chunk)
        total += len(chunk)
    if len(chunks) == 1:
        return chunks[0]
    return b"".join(chunks)


def too_large(size: int, limit: int, *, at_least: bool = False) -> str:
    """Return the reason for refusing ``size`` bytes against ``limit`` (both in bytes)."""
    more = "more than " if at_least else ""
    return (
        f"too large to read whole ({more}{_mib(size)}; the limit is {_mib(limit)} for "
        "JSON documents and the other formats read whole: JSON Lines, text logs, event "
        "files and tables on disk are streamed)"
    )


def _mib(size: int) -> str:
    return f"{size / (1 << 20):,.0f} MiB"


def inflate_cap(compressed_bytes: int) -> int:
    """Return the most bytes a gzip input of ``compressed_bytes`` may inflate to."""
    return max(INFLATE_FLOOR_BYTES, INFLATE_MAX_RATIO * compressed_bytes)


def gunzip_capped(data: bytes, source: str) -> bytes:
    """Return ``data`` inflated when it is gzip (every member), else ``data`` unchanged.

    Raises :class:`InputError` for a corrupt stream and when the output would pass
    :func:`inflate_cap` (a decompression bomb), without inflating past the cap.
    """
    if not data.startswith(GZIP_MAGIC):
        return data
    cap = inflate_cap(len(data))
    out = bytearray()
    total = 0
    rest = data
    try:
        while rest:
            inflater = zlib.decompressobj(wbits=31)
            pending = rest
            while pending and not inflater.eof:
                chunk = inflater.decompress(pending, cap - total + 1)
                total += len(chunk)
                if total > cap:
                    raise InputError(bomb(cap), path=source)
                out += chunk
                pending = inflater.unconsumed_tail
            if not inflater.eof:
                raise InputError("corrupt gzip file (truncated)", path=source)
            rest = inflater.unused_data
            if rest and not rest.startswith(GZIP_MAGIC):
                break  # trailing garbage after the last member, as gzip(1) ignores
    except zlib.error:
        raise InputError("corrupt gzip file", path=source) from None
    return bytes(out)


class GunzipStream:
    """The inflated bytes of a gzip stream (every member), read a piece at a time:
    ``read(n)`` returns at most ``n`` bytes, ``b""`` at the end.

    Raises :class:`InputError` naming ``source`` for a corrupt or truncated stream and
    once more than ``cap`` bytes (or ``cap()``, for a cap that grows with the bytes read)
    come out (a decompression bomb), without inflating much past it.
    """

    def __init__(self, raw: Any, source: str, cap: int | Callable[[], int]) -> None:
        self._raw, self._source = raw, source
        self._cap = cap if callable(cap) else lambda: cap
        self._inflater = zlib.decompressobj(wbits=31)
        self._pending = b""
        self._total = 0
        self._done = False

    def read(self, size: int = READ_CHUNK) -> bytes:
        """Return up to ``size`` (> 0) inflated bytes; ``b""`` at the end."""
        while not self._done:
            if not self._pending:
                self._pending = self._read_raw()
                if not self._pending:
                    if not self._inflater.eof:
                        raise InputError("corrupt gzip file (truncated)", path=self._source)
                    self._done = True
                    break
            try:
                chunk = self._inflater.decompress(self._pending, size)
            except zlib.error:
                raise InputError("corrupt gzip file", path=self._source) from None
            self._pending = self._inflater.unconsumed_tail
            if self._inflater.eof:
                self._next_member()
            self._total += len(chunk)
            cap = self._cap()
            if self._total > cap:
                raise InputError(bomb(cap), path=self._source)
            if chunk:
                return chunk
        return b""

    def _read_raw(self) -> bytes:
        try:
            return bytes(self._raw.read(READ_CHUNK))
        except OSError as exc:
            raise InputError(os_reason(exc), path=self._source) from None

    def _next_member(self) -> None:
        rest = self._inflater.unused_data  # at the end it holds the unconsumed tail too
        if not rest:
            rest = self._read_raw()
        if rest and not rest.startswith(GZIP_MAGIC[: len(rest)]):
            self._done = True  # trailing garbage after the last member, as gzip(1) ignores
            return
        self._inflater = zlib.decompressobj(wbits=31)
        self._pending = rest
        if not rest:
            self._done = True


def bomb(cap: int) -> str:
    """Return the reason for refusing a gzip input that inflates past ``cap`` bytes."""
    return (
        f"gzip file inflates past {_mib(cap)} (more than {INFLATE_MAX_RATIO}x "
        "its size): refused as a decompression bomb"
    )


class JSONTooDeep(ValueError):
    """JSON nested deeper than the parser can follow (a ValueError, like a syntax error)."""

    msg = "nested too deeply"
    lineno = None


def json_loads(text: str | bytes) -> Any:
    """Return the parsed JSON ``text``.

    Raises ValueError (as :func:`json.loads` does) for invalid JSON and for JSON nested
    too deeply to parse (:class:`JSONTooDeep`).
    """
    try:
        return json.loads(text)
    except RecursionError:
        raise JSONTooDeep("nested too deeply") from None


def parse_int(digits: str) -> int | None:
    """Return the integer ``digits`` spell, or None past :data:`MAX_INT_DIGITS` digits."""
    if len(digits.lstrip("+-")) > MAX_INT_DIGITS:
        return None
    try:
        return int(digits)
    except ValueError:
        return None


def sqlite_uri(path: Path) -> str:
    """Return a read-only SQLite URI for ``path``, every special character escaped.  A
    database with no write-ahead log beside it is opened as immutable: SQLite would
    otherwise create ``-wal`` and ``-shm`` files next to a WAL-mode database (trackio's,
    MLflow's), and nothing beside the user's files is written.  One with a log (a run
    still being written) is read through it: those files exist already."""
    uri = path.absolute().as_uri() + "?mode=ro"
    wal = path.with_name(path.name + "-wal")
    return uri if wal.exists() else uri + "&immutable=1"
