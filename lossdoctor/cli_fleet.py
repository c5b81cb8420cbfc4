"""The command line's side of many runs (part of the CLI layer): diagnose the sources on the
chosen executor with the cache, fill the fleet summary as reports stream in, and write the
summary formats (``summary``, ``summary-markdown``, ``summary-csv``, ``summary-json``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from lossdoctor.engine.schema import Rule
from lossdoctor.errors import ConfigError
from lossdoctor.ingest.columns import ColumnHints
from lossdoctor.model import FileNote
from lossdoctor.report import RunReport
from lossdoctor.reporters.summary import SORT_KEYS, Summary
from lossdoctor.sources import is_url

if TYPE_CHECKING:
    from lossdoctor.ingest.streamed import SpooledInput

SUMMARY_FORMATS = ("summary", "summary-markdown", "summary-csv", "summary-json")


def diagnose(
    paths: Sequence[str],
    *,
    rules: Sequence[Rule],
    stdin: bytes | SpooledInput | None = None,
    hints: ColumnHints | None = None,
    run: str | None = None,
    context: Mapping[str, Any] | None = None,
    curves: bool = False,
    executor: str = "local",
    jobs: int = 1,
    scheduler: str | None = None,
    cache: str | None = None,
    keep: bool = True,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    merge: bool = False,
    in_progress: bool = False,
    dicts: list[dict[str, Any]] | None = None,
    entries: list[str | None] | None = None,
) -> tuple[list[RunReport], Summary, list[FileNote]]:
    """Return the run reports (none unless ``keep``: a summary-only check keeps the rows
    alone), the summary of every run at ``paths`` and the files met in folders or skipped
    (no loss log among several paths), diagnosed by ``executor`` (``local`` with ``jobs``
    processes, or ``dask`` at ``scheduler``), reusing the reports of unchanged runs stored
    in the folder ``cache``; folders are walked with the ``include``/``exclude`` globs;
    ``in_progress``: the logs are still being written (judged as runs in progress).
    ``dicts``, when given, receives each kept run's ``to_dict(curves=curves)``: the dict its
    summary row was made from, for the report (each run is turned into a dict once).
    ``entries``, when given, receives each kept run's entry of the JSON report as a worker
    process wrote it (None for a run whose entry it did not write; nothing when the runs
    are diagnosed in this process: see :func:`lossdoctor.fleet.diagnose_entries`)."""
    from lossdoctor.executors import InProcess, make_executor
    from lossdoctor.fleet import Options, diagnose_entries

    many = len(paths) > 1 or any(is_url(p) for p in paths)
    pool = make_executor(executor, jobs=jobs if many else 1, scheduler=scheduler)
    options = Options(
        rules=rules, hints=hints, run=run, context=context or {}, curves=curves,
        include=tuple(include), exclude=tuple(exclude), skip_non_logs=many,
        in_progress=in_progress,
        json_entries=entries is not None and not isinstance(pool, InProcess),
    )  # fmt: skip
    store = None
    reports: list[RunReport] = []
    files: list[FileNote] = []
    summary = Summary()
    try:
        if cache:
            from lossdoctor.cache import ReportCache  # hashlib: 10-25 ms, only with a cache

            store = ReportCache(cache, options.fingerprint())
        stream = diagnose_entries(
            paths, options, stdin=stdin, executor=pool, cache=store, merge=merge
        )
        for report, entry in stream:
            files.extend(report.files)
            if report.skip is not None:
                files.append(FileNote(report.source, "skipped", report.skip))
                continue
            as_dict = report.to_dict(curves=curves)
            summary.add(as_dict)
            if keep:
                reports.append(report)
                if dicts is not None:
                    dicts.append(as_dict)
                if entries is not None and options.json_entries:
                    entries.append(entry)
    finally:
        pool.close()
    return reports, summary, files


def summarize(reports: Sequence[RunReport]) -> Summary:
    """Return the summary of ``reports``."""
    summary = Summary()
    for report in reports:
        summary.add(report.to_dict())
    return summary


def check_sort(sort: str) -> str:
    """Return ``sort`` when it is a summary order; raise :class:`ConfigError` otherwise."""
    if sort not in SORT_KEYS:
        raise ConfigError(f"--sort: unknown order '{sort}' (choose from {', '.join(SORT_KEYS)})")
    return sort


def render_summary(name: str, doc: dict[str, Any], *, terminal_out: bool) -> str | None:
    """Return the summary ``doc`` (a ``Summary.to_dict()``) in format ``name``; with
    ``terminal_out`` the text table is drawn on stdout at once and None is returned."""
    from lossdoctor.reporters import summary as formats

    if name == "summary":
        from lossdoctor.reporters import terminal

        if terminal_out:
            terminal.render_summary(doc)
            return None
        import io

        buffer = io.StringIO()
        terminal.render_summary(doc, buffer, width=terminal.WIDE)
        return buffer.getvalue()
    if name == "summary-markdown":
        return formats.render_markdown(doc)
    if name == "summary-csv":
        return formats.render_csv(doc)
    return formats.render_json(doc)
