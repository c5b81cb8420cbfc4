"""The report cache (``--cache DIR``): a re-check diagnoses only new or changed runs.

An entry is keyed by the source's name, its size and modification time (ETag for
an object that has one), the lossdoctor version and a fingerprint of the rule pack
and options.  Only readable single-file runs are stored: a folder's contents and
standard input have no cheap stamp, and an unreadable source may read next time.
Entries are pickles: keep the cache folder as private as the logs it describes.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import stat
from pathlib import Path
from typing import Any

from lossdoctor import __version__
from lossdoctor.cachefile import write_pickles
from lossdoctor.errors import ConfigError
from lossdoctor.report import RunReport
from lossdoctor.sources import SourceRef, is_url


def fingerprint(*parts: Any) -> str:
    """Return a hex digest of the ``repr`` of ``parts`` (rule pack, options) and the
    lossdoctor version: equal settings give equal fingerprints in any process."""
    return hashlib.sha256(repr((__version__, *parts)).encode()).hexdigest()


class ReportCache:
    """Run reports stored under ``folder`` for one options ``fingerprint``."""

    def __init__(self, folder: str | Path, options: str) -> None:
        self.folder = Path(folder)
        self.options = options
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot create the cache folder ({exc.strerror})", path=str(folder)
            ) from None
        self.hits = 0
        self.misses = 0
        self._cwd = os.getcwd()
        self._root = str(self.folder)

    def key(self, ref: SourceRef) -> str | None:
        """Return the entry name for ``ref``, or None when it cannot be cached."""
        if ref.name == "-":
            return None
        if is_url(ref.name):
            if ref.size is None or ref.stamp is None:
                return None
            stamp: tuple[object, ...] = (ref.name, ref.size, ref.stamp)
        else:
            try:
                info = os.stat(ref.name)
            except OSError:
                return None
            if not stat.S_ISREG(info.st_mode):
                return None
            where = os.path.join(self._cwd, ref.name)  # the file, whatever the working folder
            stamp = (ref.name, where, info.st_size, info.st_mtime_ns)
        return hashlib.sha256(repr((stamp, self.options)).encode()).hexdigest()

    def _path(self, key: str) -> str:
        return os.path.join(self._root, key[:2], f"{key[2:]}.pickle")

    def get(self, key: str | None) -> list[RunReport] | None:
        """Return the reports stored under ``key``, or None (not stored, or unreadable)."""
        if key is None:
            return None
        try:
            with open(self._path(key), "rb") as handle:
                reports: list[RunReport] = pickle.load(handle)
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
            self.misses += 1
            return None
        self.hits += 1
        return reports

    def put(self, key: str | None, reports: list[RunReport]) -> None:
        """Store ``reports`` under ``key`` unless one is an error (silently skipped when the
        folder cannot be written: the cache only saves time)."""
        if key is None or any(r.error is not None for r in reports):
            return
        target = self._path(key)
        folder = os.path.dirname(target)
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError:
            return
        write_pickles(target, reports)
