"""The checked rule pack, kept in the user's cache folder between commands.

Parsing and checking the rule files (TOML against the detector registry) took about
12 ms of every command's start-up; reading the checked rules back from a pickle takes
about 1 ms.  An entry is used only when it was written by this very lossdoctor (its
version, the Python that ran it, and the size and modification time of every module
of the package, as Python itself trusts a module's compiled bytecode) from rule files
holding exactly the bytes they hold now (compared byte for byte, not by their dates).
Anything else rebuilds the pack and replaces the entry; a cache folder that cannot be
read or written costs the time and nothing else.

The entries are in ``rule-pack`` in ``platformdirs.user_cache_dir("lossdoctor")``
(``$XDG_CACHE_HOME/lossdoctor`` or ``~/.cache/lossdoctor`` on Linux), created private to
the user: entries are pickles.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import posixpath
import sys
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lossdoctor import __version__
from lossdoctor.cachefile import write_pickles
from lossdoctor.engine.schema import Rule

#: Changes when the layout of an entry changes.
ENTRY_FORMAT = 1
#: Entries kept at the most (one per set of rule folders: the built-in pack, each
#: project's ``rule-paths``); the ones written longest ago go first (about 180 kB each).
MAX_ENTRIES = 16
#: The rule files a pack is built from: (path, its bytes).
RuleFiles = list[tuple[Path, bytes]]


def cache_folder() -> Path:
    """Return the folder of the rule pack's entries in the user's cache folder for
    lossdoctor (it may not exist yet)."""
    return Path(user_cache_dir()) / "rule-pack"


def user_cache_dir() -> str:
    """Return the user's cache folder for lossdoctor: what
    ``platformdirs.user_cache_dir("lossdoctor", appauthor=False)`` returns.

    Worked out here where every platformdirs release agrees (importing it is about 2% of
    a small check's start-up): on Linux ``$XDG_CACHE_HOME/lossdoctor`` when that is an
    absolute path, else, with an absolute ``$HOME``, ``~/.cache/lossdoctor`` when it is
    unset or blank; on macOS with an absolute ``$HOME``, ``~/Library/Caches/lossdoctor``
    when it is unset or empty.  platformdirs answers every other case (Windows, Android,
    a relative ``$HOME`` or ``$XDG_CACHE_HOME``, macOS with an ``$XDG_CACHE_HOME``,
    which platformdirs 4 honours there and 3 does not)."""
    home = os.environ.get("HOME", "")
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    android = hasattr(sys, "getandroidapilevel") or "ANDROID_DATA" in os.environ
    if sys.platform == "linux" and posixpath.isabs(xdg) and not android:
        return os.path.join(xdg, "lossdoctor")
    if posixpath.isabs(home) and not android:
        if sys.platform == "linux" and not xdg.strip():
            return os.path.join(os.path.expanduser("~/.cache"), "lossdoctor")
        if sys.platform == "darwin" and not xdg:
            return os.path.join(os.path.expanduser("~/Library/Caches"), "lossdoctor")
    import platformdirs

    return platformdirs.user_cache_dir("lossdoctor", appauthor=False)


def code_stamp(package: Path) -> tuple[tuple[str, int, int], ...]:
    """Return (path under ``package``, size in bytes, modification time in ns) of every
    Python module in the folder ``package`` and its subfolders, sorted.

    Raises :class:`OSError` when a folder cannot be listed or a module not looked at."""
    stamp: list[tuple[str, int, int]] = []
    prefix = len(str(package)) + 1
    for root, folders, files in os.walk(package, onerror=_raise):
        folders[:] = [f for f in folders if f != "__pycache__"]
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(root, name)
                info = os.stat(path)
                stamp.append((path[prefix:], info.st_size, info.st_mtime_ns))
    return tuple(sorted(stamp))


def _raise(error: OSError) -> None:
    raise error


def pack_key(files: RuleFiles) -> tuple[Any, ...]:
    """Return what an entry for the rule ``files`` must have been written for: the entry
    format, lossdoctor's version and package folder, the Python version and the stamp of
    lossdoctor's modules (:func:`code_stamp`), and every rule file's path and bytes."""
    package = Path(__file__).resolve().parents[1]
    return (
        ENTRY_FORMAT,
        __version__,
        str(package),
        sys.implementation.cache_tag,
        code_stamp(package),
        tuple((str(path), data) for path, data in files),
    )


def entry_path(folder: Path, files: RuleFiles) -> Path:
    """Return the entry file in ``folder`` for the rule ``files`` (one entry per set of
    rule folders: the built-in pack alone, or with a project's ``rule-paths``)."""
    names = "\n".join(str(path) for path, _ in files)
    return folder / f"{zlib.crc32(names.encode('utf-8', 'surrogateescape')):08x}.pickle"


def cached_rules(files: RuleFiles, build: Callable[[RuleFiles], list[Rule]]) -> list[Rule]:
    """Return the rules ``build(files)`` returns, read from the user's cache folder when an
    entry was written for exactly these ``files`` by this lossdoctor (see the module's
    docstring), else built and stored there (when the folder can be written).

    Raises what ``build`` raises (a malformed rule file is never stored).
    """
    try:
        key = pack_key(files)
    except OSError:  # lossdoctor's own modules cannot be looked at: no stamp, no cache
        return build(files)
    path = entry_path(cache_folder(), files)
    found = _read(path, key)
    if found is not None:
        return found
    rules = build(files)
    _write(path, key, rules)
    return rules


def _read(path: Path, key: tuple[Any, ...]) -> list[Rule] | None:
    """Return the rules of the entry at ``path`` when it was written for ``key``, else None
    (no entry, another key, or a damaged or unreadable file)."""
    try:
        with path.open("rb") as entry:
            if pickle.load(entry) != key:
                return None
            rules = pickle.load(entry)
    except Exception:  # missing, unreadable, truncated or from an unknown layout
        return None
    if isinstance(rules, list) and all(isinstance(rule, Rule) for rule in rules):
        return rules
    return None


def _write(path: Path, key: tuple[Any, ...], rules: Sequence[Rule]) -> None:
    """Store ``rules`` under ``key`` at ``path`` whole or not at all; do nothing when the
    folder cannot be written."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return
    if write_pickles(path, key, list(rules)):
        _prune(path.parent, keep=path)


def _prune(folder: Path, *, keep: Path) -> None:
    """Remove the entries in ``folder`` beyond the :data:`MAX_ENTRIES` written last (never
    ``keep``, the one just written); an entry that cannot be removed is left."""
    try:
        entries = [(entry.stat().st_mtime_ns, entry) for entry in folder.glob("*.pickle")]
    except OSError:
        return
    if len(entries) <= MAX_ENTRIES:
        return
    entries.sort(reverse=True)
    for _, entry in entries[MAX_ENTRIES:]:
        if entry != keep:
            with contextlib.suppress(OSError):
                entry.unlink()
