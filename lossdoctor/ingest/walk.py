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

from lossdoctor.errors import InputError, NotALogError
from lossdoctor.ingest.columns import ColumnHints
from lossdoctor.ingest.folders import claimed_files, find_runs, walk_tree
from lossdoctor.model import FileNote, Run
from lossdoctor.safeio import os_reason

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
#: Bytes read to tell a binary file (skipped unread) from text or a known binary log.
PROBE_BYTES = 8192
#: Binary starts of logs lossdoctor reads (gzip, SQLite).
BINARY_LOG_MAGIC = (b"\x1f\x8b", b"SQLite format 3\x00", b":W&B", b":SWL", b"PAR1")


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
    from lossdoctor.ingest.tfevents import looks_like_tfrecord

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
    kept = [u for u in units if _inside_any(u.files, top, include, exclude)]
    if run is not None:
        kept = [u for u in kept if run in _rel(u.root, top)]
        loose = [p for p in loose if run in _rel(p, top)]
    single = len(kept) + len(loose) == 1
    runs: list[Run] = []
    for unit in kept:
        unit_label = source if single else _label(top, source, unit.root)
        for result, label, used in read_unit(unit, label=unit_label, hints=hints):
            if isinstance(result, InputError):
                files.append(FileNote(label, "skipped", result.message))
                continue
            runs.extend(result)
            for path in used:
                if _inside(path, top, include, exclude):
                    files.append(FileNote(_label(top, source, path), "read", f"run {label}"))
    for path in loose:
        label = _label(top, source, path)
        reason: str | None = _skip_reason(path, explicit=bool(include))
        read = "a run of its own"
        if reason is None:
            try:
                of_file = _read_file(path, label=label, hints=hints)
            except InputError as exc:
                reason = exc.message
            else:
                runs.extend(of_file)
                read = read if len(of_file) == 1 else f"{len(of_file)} runs"
        files.append(FileNote(label, "skipped" if reason else "read", reason or read))
    if not runs:
        reasons = sorted({f.detail for f in files if f.status == "skipped"})
        found = f"; {len(files)} files skipped ({'; '.join(reasons[:4])})" if files else ""
        where = f" matching --run '{run}'" if run else ""
        raise NotALogError(f"no loss logs found in this folder{where}{found}", path=source)
    files.sort(key=lambda f: f.path)
    runs.sort(key=lambda r: r.source)
    return WalkResult(runs=runs, files=files)


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
    return _probe(path)


def _read_file(path: Path, *, label: str, hints: ColumnHints | None) -> list[Run]:
    """Return the runs of a loose log file in a folder, named ``label`` (one per run of a
    log that holds several)."""
    from lossdoctor.ingest import read_runs

    runs = read_runs(str(path), hints=hints, strict=True)
    return [replace(run, source=label, groups=()) for run in runs]
