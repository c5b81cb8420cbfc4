"""Sources: the bytes of a run, by name (a local path, ``-``, or an fsspec URL).

Remote logs (``s3://``, ``gs://``, ``az://``, ``hf://``, ``http(s)://`` ...) are
read through fsspec, read-only, with the credentials each filesystem normally
uses (environment variables, config files, profiles).  A URL may be a glob
(``s3://bucket/sweeps/**/trainer_state.json``) or a prefix ("folder"), which
expand to one source per object.  Every failure is an
:class:`~lossdoctor.errors.InputError` naming the URL; a missing filesystem
package names the extra to install.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from lossdoctor.errors import InputError

#: URL scheme -> the optional extra that installs its fsspec filesystem.
EXTRAS: dict[str, str] = {
    "s3": "s3",
    "s3a": "s3",
    "gs": "gcs",
    "gcs": "gcs",
    "az": "azure",
    "abfs": "azure",
    "abfss": "azure",
    "adl": "azure",
    "hf": "hf",
    "http": "http",
    "https": "http",
}
_URL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")
_GLOB = re.compile(r"[*?\[]")
#: Object names a prefix ("folder") expands to: the files loss logs are kept in.
LOG_NAME = re.compile(
    r"(\.(csv|tsv|json|jsonl|log|txt|out)(\.gz)?$)|tfevents|(^|/)(metrics|scalars)[^/]*$",
    re.IGNORECASE,
)
#: Listing fields that change when an object does, the first found is its stamp (S3, GCS,
#: Azure, the Hub, HTTP, local files).
STAMP_KEYS = (
    "ETag", "etag", "md5Hash", "blob_id", "Content-MD5", "Digest", "LastModified",
    "last_modified", "Last-Modified", "updated", "mtime",
)  # fmt: skip
#: Bytes asked of the store per read: objects are streamed, not mirrored to disk.
BLOCK_BYTES = 4 << 20


@dataclass(frozen=True)
class SourceRef:
    """A source to diagnose: its ``name`` (a path, ``-`` or a URL) and, for an object a
    listing described, its ``size`` in bytes and ``stamp`` (ETag or modification time)."""

    name: str
    size: int | None = None
    stamp: str | None = None


def is_url(name: str) -> bool:
    """Return True when ``name`` is a URL (``scheme://...``) rather than a local path."""
    return _URL.match(name) is not None and not name.startswith("file://")


def _filesystem(url: str) -> tuple[Any, str]:
    """Return (fsspec filesystem, path within it) for ``url``."""
    scheme = url.split("://", 1)[0].lower()
    try:
        import fsspec
    except ImportError:
        raise InputError(_missing(scheme, "fsspec"), path=url) from None
    try:
        found: tuple[Any, str] = fsspec.core.url_to_fs(url)
    except ImportError:
        raise InputError(_missing(scheme, "its filesystem package"), path=url) from None
    except ValueError as exc:
        raise InputError(f"cannot read this kind of URL ({exc})", path=url) from None
    return found


def _missing(scheme: str, what: str) -> str:
    extra = EXTRAS.get(scheme)
    if extra is None:
        return f"reading {scheme}:// URLs needs {what} (an fsspec filesystem for '{scheme}')"
    return f"reading {scheme}:// URLs needs the '{extra}' extra: pip install 'lossdoctor[{extra}]'"


def _failure(exc: BaseException) -> str:
    """Return the one-line reason for a failed remote read."""
    detail = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, FileNotFoundError):
        return f"not found ({detail})"
    if isinstance(exc, PermissionError):
        return f"permission denied ({detail})"
    return f"cannot read ({type(exc).__name__}: {detail})"


def _stamp(info: dict[str, Any]) -> str | None:
    for key in STAMP_KEYS:
        if info.get(key) is not None:
            return f"{key}={info[key]}"
    return None


def expand(url: str) -> Iterator[SourceRef]:
    """Yield one source per object ``url`` names: the object itself, every object a glob
    matches, or every log-like object (:data:`LOG_NAME`) under a prefix, in name order.

    Raises :class:`InputError` naming ``url`` when it cannot be listed or matches nothing.
    """
    fs, path = _filesystem(url)
    try:
        fs.invalidate_cache()  # a listing made earlier in this process may be stale
        if _GLOB.search(path):
            found: dict[str, dict[str, Any]] = fs.glob(path, detail=True)
        else:
            info = fs.info(path)
            if info.get("type") == "directory":
                found = fs.find(path, detail=True)
                found = {p: i for p, i in found.items() if LOG_NAME.search(p)}
            else:
                found = {path: info}
    except Exception as exc:  # fsspec backends raise their own exception types
        raise InputError(_failure(exc), path=url) from None
    files = sorted((p, i) for p, i in found.items() if i.get("type", "file") == "file")
    if not files:
        raise InputError(_why_nothing(fs, path), path=url)
    for name, info in files:
        size = info.get("size")
        yield SourceRef(
            url if name == path and not _GLOB.search(path) else fs.unstrip_protocol(name),
            int(size) if size is not None else None,
            _stamp(info),
        )


def _why_nothing(fs: Any, pattern: str) -> str:
    """Return why a glob matched nothing: its fixed prefix (a bucket, a folder) cannot be
    listed, or no object matches."""
    root = _GLOB.split(pattern, 1)[0].rsplit("/", 1)[0]
    try:
        fs.ls(root)
    except Exception as exc:  # fsspec backends raise their own exception types
        return _failure(exc)
    return "matches no object"


@contextmanager
def open_object(url: str) -> Iterator[tuple[Callable[[int], bytes], int | None]]:
    """Yield ``(read, size)`` for the object at ``url``: ``read(n)`` gives its next bytes
    (``b""`` at the end), fetched in blocks of :data:`BLOCK_BYTES` (HTTP: one streamed GET,
    which servers without range requests answer); ``size`` in bytes, None when not known.

    Raises :class:`InputError` naming ``url`` on any network, permission or missing-object
    failure, when opening or while reading.
    """
    fs, path = _filesystem(url)
    streamed = 0 if url.split("://", 1)[0].lower() in ("http", "https") else BLOCK_BYTES
    try:
        handle = fs.open(path, "rb", block_size=streamed)
    except Exception as exc:  # fsspec backends raise their own exception types
        raise InputError(_failure(exc), path=url) from None

    def read(size: int) -> bytes:
        try:
            return bytes(handle.read(size))
        except Exception as exc:  # fsspec backends raise their own exception types
            raise InputError(_failure(exc), path=url) from None

    try:
        size = getattr(handle, "size", None)
        yield read, int(size) if isinstance(size, int) else None
    finally:
        with suppress(Exception):
            handle.close()
