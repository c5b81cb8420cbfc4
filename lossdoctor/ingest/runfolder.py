"""Read a folder: find its runs (see :mod:`lossdoctor.ingest.walk`) and read each."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from lossdoctor.errors import InputError
from lossdoctor.ingest.columns import ColumnHints
from lossdoctor.ingest.folders import RunUnit
from lossdoctor.model import Run

#: The runs read from a folder (one, or one per run of a log holding several; or why
#: they could not be read), their label and the files they used.
UnitPart = tuple[list[Run] | InputError, str, list[Path]]


def read_unit(unit: RunUnit, *, label: str, hints: ColumnHints | None) -> list[UnitPart]:
    """Return the runs of one run folder found by :func:`~lossdoctor.ingest.folders.find_runs`
    (a part per set of event files sharing no tag: files of different runs), each with its
    label and files; a part holds one run per run of its log (a sweep table, appended
    sessions from scratch); a part that cannot be read holds the :class:`InputError`."""
    if unit.kind == "tfevents" and len(unit.files) >= MIN_FILES_TO_SPLIT and not any(unit.prefixes):
        try:
            groups = _groups_sharing_tags(unit.files)
        except InputError:
            groups = [unit.files]  # the read below says why
        if len(groups) > 1:
            note = f"event files in one folder with no tag in common: read as {len(groups)} runs"
            parts: list[UnitPart] = []
            for group in groups:
                name = f"{label.rstrip('/')}/{group[0].name}"
                parts.append((_try(unit, group, [], name, hints, note), name, group))
            return parts
    return [(_try(unit, unit.files, unit.prefixes, label, hints, ""), label, unit.files)]


def _try(
    unit: RunUnit,
    files: list[Path],
    prefixes: list[str],
    label: str,
    hints: ColumnHints | None,
    note: str,
) -> list[Run] | InputError:
    try:
        if unit.kind == "tfevents":
            from lossdoctor.ingest.tfevents import read_event_files, scalars_to_run

            scalars = read_event_files(files, prefixes=prefixes or None)
            runs = scalars_to_run(scalars, source=label, hints=hints).runs()
        else:
            runs = _read_one(unit, label=label, hints=hints)
    except InputError as exc:
        return exc
    if not note:
        return runs
    return [replace(run, notes=(*run.notes, note)) for run in runs]


#: A folder needs this many event files before they may be split into runs.
MIN_FILES_TO_SPLIT = 2


def _groups_sharing_tags(paths: list[Path]) -> list[list[Path]]:
    """Return ``paths`` grouped so that files of a group share scalar tags (connected)."""
    from lossdoctor.ingest.tfevents import read_event_files

    tags = [set(read_event_files([p]).tags) for p in paths]
    groups: list[tuple[set[str], list[Path]]] = []
    for path, own in sorted(zip(paths, tags, strict=True), key=lambda pt: pt[0].name):
        joined = [g for g in groups if g[0] & own or not own]
        if not joined:
            groups.append((set(own), [path]))
            continue
        first = joined[0]
        for other in joined[1:]:
            first[0].update(other[0])
            first[1].extend(other[1])
            groups.remove(other)
        first[0].update(own)
        first[1].append(path)
    return [sorted(files, key=lambda p: p.name) for _, files in groups]


def _read_one(unit: RunUnit, *, label: str, hints: ColumnHints | None) -> list[Run]:
    """Return the runs of a run folder's log: one, or one per run of a log that holds
    several (each named by its group, e.g. ``trial_id=3`` or ``session 2 of 3``)."""
    if unit.kind == "mlflow-file":
        from lossdoctor.ingest.mlflow import read_file_store_run

        return read_file_store_run(unit.root, source=label, hints=hints).runs()
    if unit.kind == "swanlab-logs":
        from lossdoctor.ingest.swanlab_legacy import read_logs_folder

        return read_logs_folder(unit.root, source=label, hints=hints).runs()
    from lossdoctor.ingest.streamed import read_file

    path = unit.files[0]
    from lossdoctor.ingest.configs import with_config

    note = f"read {path.relative_to(unit.root.parent).as_posix()}"
    runs = read_file(path, source=label, hints=hints, named=str(path)).runs()
    return [
        replace(with_config(run, path), source=label, notes=(*run.notes, note), groups=())
        for run in runs
    ]


def read_folder(
    top: Path,
    *,
    source: str,
    hints: ColumnHints | None,
    run: str | None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> list[Run]:
    """Return one run per run found under ``top`` (``run`` keeps those whose path contains
    it; ``include``/``exclude`` filter files by glob).

    Raises :class:`InputError` when the folder holds no run lossdoctor can read.
    """
    from lossdoctor.ingest.walk import walk_folder

    return walk_folder(
        top, source=source, hints=hints, run=run, include=include, exclude=exclude
    ).runs
