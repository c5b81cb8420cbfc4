"""Read a folder: find its runs (see :mod:`lossdoctor.ingest.folders`) and read each."""

from __future__ import annotations

from pathlib import Path

from lossdoctor.errors import InputError
from lossdoctor.ingest.columns import ColumnHints
from lossdoctor.ingest.folders import RunUnit, find_runs
from lossdoctor.model import Run


def _label(unit: RunUnit, top: Path, source: str, single: bool) -> str:
    if single:
        return source
    rel = unit.root.relative_to(top).as_posix()
    return source if rel == "." else f"{source.rstrip('/')}/{rel}"


def _read_unit(unit: RunUnit, *, label: str, hints: ColumnHints | None) -> Run:
    if unit.kind == "tfevents":
        from lossdoctor.ingest.tfevents import read_event_files, scalars_to_run

        scalars = read_event_files(unit.files, prefixes=unit.prefixes)
        return scalars_to_run(scalars, source=label, hints=hints)
    if unit.kind == "mlflow-file":
        from lossdoctor.ingest.mlflow import read_file_store_run

        return read_file_store_run(unit.root, source=label, hints=hints)
    from lossdoctor.ingest import read_bytes

    path = unit.files[0]
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(exc.strerror or "cannot be read", path=str(path)) from None
    run = read_bytes(data, source=label, hints=hints)
    note = f"read {path.relative_to(unit.root.parent).as_posix()}"
    return Run(source=run.source, reader=run.reader, series=run.series, notes=(*run.notes, note))


def read_folder(top: Path, *, source: str, hints: ColumnHints | None, run: str | None) -> list[Run]:
    """Return one run per run found under ``top`` (``run`` keeps those whose path contains it).

    Raises :class:`InputError` when the folder holds no run lossdoctor can read.
    """
    units = find_runs(top)
    if run is not None:
        units = [u for u in units if run in u.root.relative_to(top).as_posix()]
    if not units:
        raise InputError(
            "no loss logs found in this folder (looked for event files, metrics.csv, "
            "trainer_state.json and MLflow runs)" + (f" matching --run '{run}'" if run else ""),
            path=source,
        )
    single = len(units) == 1
    return [_read_unit(u, label=_label(u, top, source, single), hints=hints) for u in units]
