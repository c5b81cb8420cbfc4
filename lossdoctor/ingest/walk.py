"""Walk a folder for loss logs.

Runs a framework lays out as folders (TensorBoard event files, Lightning
``version_*``, Hugging Face ``output_dir``, MLflow runs, W&B offline runs, SwanLab
runs: see :mod:`lossdoctor.ingest.folders`) are read as one run each; every other
regular file is recognised by its content and read as a run of its own.  Nothing
is merged across files unless they are one run's known parts.  Every file is listed
as read or skipped, with the reason.
"""

from __future__ import annotations

import fnmatch
import stat
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from lossdoctor.errors import InputError, NoMatchingRun, NotALogError
from lossdoctor.ingest import PARQUET_MAGIC
from lossdoctor.ingest.columns import ColumnHints
from lossdoctor.ingest.folders import RunUnit, claimed_files, find_runs, walk_tree
from lossdoctor.ingest.runnames import (
    NAMED_RUN_FOLDERS,
    RunFilter,
    folder_run_labels,
    no_match_reason,
    relabel,
)
from lossdoctor.ingest.sniff import IDENTS
from lossdoctor.model import FileNote, Run
from lossdoctor.safeio import GZIP_MAGIC, SQLITE_MAGIC, os_reason, read_head

#: Suffixes of files that are never loss logs (weights, images, code, documents, configs).
NOT_LOG_SUFFIXES = frozenset(
    {".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".onnx", ".npy", ".npz", ".pkl",
     ".pickle", ".h5", ".keras", ".gguf", ".model", ".png", ".jpg", ".jpeg", ".gif", ".svg",
     ".webp", ".pdf", ".html", ".htm", ".js", ".css", ".py", ".ipynb", ".md", ".rst",
     ".yaml", ".yml", ".toml", ".cfg", ".ini", ".sh", ".zip", ".tar", ".whl", ".so",
     ".lock", ".pyc"}
)  # fmt: skip
#: Files that are never loss logs whatever their suffix (lower case; ``*`` as in globs):
#: documents, package lists, model and tokenizer files, trackers' metadata.
NOT_LOG_NAMES = (
    "readme*", "license*", "licence*", "copying*", "notice*", "changelog*", "contributing*",
    "authors*", "requirements*.txt", "config.json", "generation_config.json",
    "adapter_config.json", "tokenizer.json", "tokenizer_config.json",
    "special_tokens_map.json", "added_tokens.json", "preprocessor_config.json", "vocab.json",
    "vocab.txt", "merges.txt", "*-metadata.json", "wandb-summary.json", "*.swanlab-shm",
    "*.swanlab-wal", "*.db-shm", "*.db-wal", "*.db-journal",
)  # fmt: skip
#: W&B's own logs of its run (in ``wandb/`` as links to the latest run's, and in each run
#: folder's ``logs/``): JSON lines of messages, not of metrics.
WANDB_DEBUG_LOGS = frozenset({"debug.log", "debug-internal.log", "debug-core.log"})
#: Bytes read to tell a binary file (skipped unread) from text or a known binary log.
PROBE_BYTES = 8192
#: Binary starts of logs lossdoctor reads (gzip, SQLite, W&B and SwanLab run files, Parquet).
BINARY_LOG_MAGIC = (GZIP_MAGIC, SQLITE_MAGIC, *IDENTS, PARQUET_MAGIC)


@dataclass
class WalkResult:
    """The runs read from a folder and the note on every file met."""

    runs: list[Run]
    files: list[FileNote]


def _matches(rel: str, patterns: Sequence[str]) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(name, p) for p in patterns)


def _label(top: Path, source: str, path: Path) -> str:
    rel = path.relative_to(top).as_posix()
    return source if rel == "." else f"{source.rstrip('/')}/{rel}"


def _label_in(top: Path, source: str, path: Path) -> str | None:
    """Return the label of ``path``, or None when it is not ``top`` or below it."""
    return _label(top, source, path) if path == top or top in path.parents else None


def _probe(path: Path) -> str | None:
    """Return why ``path`` is skipped unread (not a regular file, unreadable, empty,
    binary), or None when it may be a log."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return "broken link"
    except OSError as exc:
        return os_reason(exc)
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    if info.st_size == 0:
        return "file is empty"
    try:
        with path.open("rb") as handle:
            head = handle.read(PROBE_BYTES)
    except OSError as exc:
        return os_reason(exc)
    from lossdoctor.ingest.tfrecord import looks_like_tfrecord

    if b"\x00" in head and not head.startswith(BINARY_LOG_MAGIC) and not looks_like_tfrecord(head):
        return "binary file, not a loss log"
    return None


def walk_folder(
    top: Path,
    *,
    source: str,
    hints: ColumnHints | None,
    run: str | None = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> WalkResult:
    """Return every run under ``top`` (one per run folder, one per other log file) and a
    note on every file met.  ``include``/``exclude``: glob patterns matched against the
    path below ``top`` and against the file name; ``run`` keeps runs whose path holds it.

    Raises :class:`NotALogError` when no run is found, with the reasons files were skipped.
    """
    from lossdoctor.ingest.runfolder import read_unit

    unreadable: list[Path] = []
    tree = walk_tree(top, unreadable)
    units = find_runs(top, tree)
    files = [FileNote(_label(top, source, p), "skipped", "permission denied") for p in unreadable]
    claimed: dict[Path, str] = {}
    own = {path for unit in units for path in unit.files}
    for unit in units:
        for path, why in claimed_files(unit, tree).items():
            claimed.setdefault(path, why)
    loose: list[Path] = []
    for here, _, names in tree:
        for name in names:
            path = here / name
            rel = _rel(path, top)
            if exclude and _matches(rel, exclude):
                files.append(FileNote(_label(top, source, path), "skipped", "--exclude"))
            elif include and not _matches(rel, include):
                files.append(FileNote(_label(top, source, path), "skipped", "not --include"))
            elif path in claimed:
                files.append(FileNote(_label(top, source, path), "skipped", claimed[path]))
            elif path not in own:
                loose.append(path)
    for path, db in _trackio_exports(loose):
        why = f"trackio's Parquet export of {db.name} beside it (the same runs, read from it)"
        files.append(FileNote(_label(top, source, path), "skipped", why))
        loose.remove(path)
    kept = [u for u in units if _inside_any(u.files, top, include, exclude)]
    others: list[str] = []  # the runs --run did not pick, named for its error
    by_name: set[Path] = set()  # stores and named run folders kept for their runs' names
    flt = RunFilter.parse(run) if run is not None else None
    if flt is not None:
        kept, loose = _pick(flt, top, source, kept, loose, by_name, others)
    single = len(kept) + len(loose) == 1
    runs: list[Run] = []
    read_units: list[tuple[RunUnit, list[Path], list[Run]]] = []
    for unit in kept:
        unit_label = source if single else _label(top, source, unit.root)
        for result, label, used in read_unit(unit, label=unit_label, hints=hints):
            if isinstance(result, InputError):
                files.append(FileNote(label, "skipped", result.message))
            else:
                read_units.append((unit, used, result))
    in_named = [
        (u.root, r) for u, _, found in read_units if u.kind in NAMED_RUN_FOLDERS for r in found
    ]
    labels = iter(folder_run_labels(in_named, lambda p: _label_in(top, source, p)))
    for unit, used, found in read_units:
        if unit.kind in NAMED_RUN_FOLDERS:
            found = [replace(r, source=next(labels)) for r in found]
        if unit.root in by_name and flt is not None:
            others.extend(r.source for r in found if not flt.keeps_name(r.name))
            found = [r for r in found if flt.keeps_name(r.name)]
        runs.extend(found)
        for path in used:
            if found and _inside(path, top, include, exclude):
                named = ", ".join(dict.fromkeys(r.source for r in found))
                files.append(FileNote(_label(top, source, path), "read", f"run {named}"))
    for path in loose:
        label = _label(top, source, path)
        reason: str | None = _skip_reason(path, explicit=bool(include))
        read = "a run of its own"
        if reason is None:
            picked = flt.name if flt is not None and path in by_name else None
            try:
                of_file = _read_file(path, label=label, hints=hints, run=picked)
            except NoMatchingRun as exc:
                others.extend(f"{label}#{name}" for name in exc.names)
                continue
            except InputError as exc:
                reason = exc.message
            else:
                runs.extend(of_file)
                read = read if len(of_file) == 1 else f"{len(of_file)} runs"
        files.append(FileNote(label, "skipped" if reason else "read", reason or read))
    if not runs:
        if run is not None:
            raise NotALogError(no_match_reason(run, sorted(others)), path=source)
        reasons = sorted({f.detail for f in files if f.status == "skipped"})
        found_note = f"; {len(files)} files skipped ({'; '.join(reasons[:4])})" if files else ""
        raise NotALogError(f"no loss logs found in this folder{found_note}", path=source)
    files.sort(key=lambda f: f.path)
    runs.sort(key=lambda r: r.source)
    return WalkResult(runs=runs, files=files)


def _trackio_exports(loose: Sequence[Path]) -> list[tuple[Path, Path]]:
    """Return (export, database) for each ``<project>.parquet`` among ``loose`` beside a
    SQLite ``<project>.db`` that is read too: trackio's export of the same runs."""
    present = set(loose)
    out = []
    for path in loose:
        db = path.with_suffix(".db")
        if path.suffix.lower() == ".parquet" and db in present and _starts_with(db, SQLITE_MAGIC):
            out.append((path, db))
    return out


def _rel(path: Path, top: Path) -> str:
    return path.relative_to(top).as_posix()


def _inside_any(
    paths: Sequence[Path], top: Path, include: Sequence[str], exclude: Sequence[str]
) -> bool:
    return any(_inside(p, top, include, exclude) for p in paths)


def _inside(path: Path, top: Path, include: Sequence[str], exclude: Sequence[str]) -> bool:
    rel = _rel(path, top)
    return (not include or _matches(rel, include)) and not (exclude and _matches(rel, exclude))


def _skip_reason(path: Path, *, explicit: bool) -> str | None:
    suffix = path.suffix.lower()
    if not explicit:
        if suffix in NOT_LOG_SUFFIXES:
            return f"not a log ({suffix} file)"
        name = path.name.lower()
        if name.startswith("."):
            return "hidden file"
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in NOT_LOG_NAMES):
            return "not a log (by its name)"
        if _is_wandb_debug_log(path):
            return "W&B debug log, not a loss log"
    return _probe(path)


def _is_wandb_debug_log(path: Path) -> bool:
    """Return True when ``path`` is one of W&B's debug logs: ``debug-internal.log`` or
    ``debug-core.log``, or a ``debug.log`` in a ``wandb`` folder or a W&B run's ``logs``."""
    name = path.name.lower()
    if name not in WANDB_DEBUG_LOGS:
        return False
    if name != "debug.log" or path.parent.name.lower() == "wandb":
        return True
    return path.parent.name == "logs" and any(path.parent.parent.glob("run-*.wandb"))


def _read_file(path: Path, *, label: str, hints: ColumnHints | None, run: str | None) -> list[Run]:
    """Return the runs of a loose log file in a folder, named ``label`` (one per run of a
    log that holds several; ``label#name`` for the runs of a store), the runs of a store
    picked by ``run``.

    Raises :class:`NoMatchingRun` when ``run`` picks none of a store's runs."""
    from lossdoctor.ingest import read_runs

    runs = read_runs(str(path), hints=hints, run=run, strict=True)
    return [relabel(r, str(path), label) for r in runs]


def _pick(
    flt: RunFilter,
    top: Path,
    source: str,
    units: list[RunUnit],
    loose: list[Path],
    by_name: set[Path],
    others: list[str],
) -> tuple[list[RunUnit], list[Path]]:
    """Return the run folders and loose files ``--run`` keeps: those whose path it matches,
    and the stores and W&B runs whose runs it may match by name (put in ``by_name``); the
    labels of the others, where they may be logs, go to ``others``."""
    kept_units: list[RunUnit] = []
    for unit in units:
        where = (_rel(unit.root, top), _label(top, source, unit.root))
        if flt.keeps_path(*where):
            kept_units.append(unit)
        elif unit.kind in NAMED_RUN_FOLDERS and flt.may_name(*where):
            kept_units.append(unit)
            by_name.add(unit.root)
        else:
            others.append(where[1])
    kept_loose: list[Path] = []
    for path in loose:
        where = (_rel(path, top), _label(top, source, path))
        if flt.keeps_path(*where):
            kept_loose.append(path)
        elif flt.may_name(*where) and _is_store(path):
            kept_loose.append(path)
            by_name.add(path)
        elif _skip_reason(path, explicit=False) is None:
            others.append(where[1])
    return kept_units, kept_loose


def _is_store(path: Path) -> bool:
    """Return True when ``path`` is a database that may hold several named runs (SQLite:
    MLflow, trackio; Parquet: a trackio export)."""
    return _starts_with(path, (SQLITE_MAGIC, PARQUET_MAGIC))


def _starts_with(path: Path, magic: bytes | tuple[bytes, ...]) -> bool:
    """Return True when the regular file ``path`` starts with ``magic`` (one of them, when
    a tuple); False when it cannot be read."""
    try:
        return read_head(path, str(path), size=16).startswith(magic)
    except InputError:
        return False
