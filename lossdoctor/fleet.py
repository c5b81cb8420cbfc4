"""Many runs at once: expand the sources, skip the cached ones, map the diagnosis over the
rest with an executor, and stream the run reports back in the order given.

Memory holds the list of sources and the tasks in flight, never every report.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lossdoctor.engine.schema import Rule
from lossdoctor.errors import DiagnosisBug, InputError, LossdoctorError
from lossdoctor.executors import Executor, InProcess, Pending
from lossdoctor.ingest.columns import ColumnHints
from lossdoctor.report import RunReport
from lossdoctor.sources import SourceRef, expand, is_url

if TYPE_CHECKING:
    from lossdoctor.cache import ReportCache
    from lossdoctor.ingest.streamed import SpooledInput


@dataclass(frozen=True)
class Options:
    """What every run is diagnosed with (shipped to each worker once)."""

    rules: Sequence[Rule]
    hints: ColumnHints | None = None
    run: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)
    curves: bool = True
    #: Globs picking the files of a walked folder.
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    #: A source that is no loss log gives a ``skip`` report, not an error (several paths).
    skip_non_logs: bool = False
    #: The logs are still being written: judged as runs in progress.
    in_progress: bool = False
    #: Each run's entry of the JSON report is written where the run is diagnosed (a
    #: worker: see :func:`diagnose_entries`); the reports are the same either way.
    json_entries: bool = False

    def fingerprint(self) -> str:
        """Return the digest the report cache keys entries by."""
        from lossdoctor.cache import fingerprint

        return fingerprint(
            list(self.rules), self.hints, self.run, dict(self.context), self.curves,
            self.include, self.exclude, self.skip_non_logs, self.in_progress,
        )  # fmt: skip


#: One unit of work: a source (or the files of one run, judged together) and stdin's data.
Work = tuple[str | tuple[str, ...], "bytes | SpooledInput | None"]
#: The run reports of one unit of work and, with ``Options.json_entries``, the JSON report
#: entry of each (None for a skipped source, or a run the plain JSON writer leaves).
Done = tuple[list[RunReport], list[str | None] | None]


def diagnose_batch(work: list[Work], options: Options) -> list[Done]:
    """Return the run reports of each (source, stdin data or None) in ``work``, in order,
    with their JSON report entries when ``options.json_entries``; a tuple of sources is
    the files of one run, judged together (one report).

    Raises :class:`DiagnosisBug` for an exception that is no lossdoctor error (a bug).
    """
    reports = _diagnose_batch(work, options)
    if not options.json_entries:
        return [(each, None) for each in reports]
    from lossdoctor.reporters.json_report import run_entry

    def entry(report: RunReport) -> str | None:
        return None if report.skip is not None else run_entry(report.to_dict(curves=options.curves))

    return [(each, [entry(report) for report in each]) for each in reports]


def _diagnose_batch(work: list[Work], options: Options) -> list[list[RunReport]]:
    """Return the run reports of each (source, stdin data or None) in ``work``, in order
    (see :func:`diagnose_batch`)."""
    from lossdoctor.api import diagnose_merged, diagnose_source

    kwargs: dict[str, Any] = {
        "hints": options.hints,
        "rules": options.rules,
        "context": options.context,
        "curves": options.curves,
        "in_progress": options.in_progress,
    }
    reports: list[list[RunReport]] = []
    for name, data in work:
        try:
            if isinstance(name, tuple):
                reports.append(diagnose_merged(list(name), stdin=data, **kwargs))
                continue
            reports.append(
                diagnose_source(
                    name,
                    data=data,
                    run=options.run,
                    include=options.include,
                    exclude=options.exclude,
                    skip_non_logs=options.skip_non_logs,
                    **kwargs,
                )
            )
        except LossdoctorError:
            raise
        except Exception as exc:  # a bug: told apart from a lost worker by its type
            label = " + ".join(name) if isinstance(name, tuple) else name
            detail = " ".join(f"{type(exc).__name__}: {exc}".split())
            raise DiagnosisBug(label, detail) from exc
    return reports


def expand_sources(names: Iterable[str]) -> Iterator[tuple[SourceRef, str | None]]:
    """Yield (source, error) for every name: a URL glob or prefix expanded to its objects;
    a URL that cannot be listed yields itself with the one-line reason."""
    for name in names:
        if not is_url(name):
            yield SourceRef(name), None
            continue
        try:
            for ref in expand(name):
                yield ref, None
        except InputError as exc:
            yield SourceRef(name), exc.one_line()


#: One source in flight: (source, listing error, cache key, cached reports, the files of
#: one run judged together or ()).
_Entry = tuple[SourceRef, str | None, str | None, list[RunReport] | None, tuple[str, ...]]


def _grouped(
    sources: list[tuple[SourceRef, str | None]], merge: bool
) -> list[tuple[SourceRef, str | None, tuple[str, ...]]]:
    """Return the sources with the files of one run (``--merge``, or a TensorBoard train
    export beside its validation export) made into one source named "a + b"."""
    from lossdoctor.ingest.merge import group_sources

    groups = group_sources([ref.name for ref, _ in sources], merge=merge)
    if all(len(g) == 1 for g in groups):
        return [(ref, error, ()) for ref, error in sources]
    by_name = {ref.name: (ref, error) for ref, error in sources}
    return [
        (*by_name[g[0]], ()) if len(g) == 1 else (SourceRef(" + ".join(g)), None, tuple(g))
        for g in groups
    ]


def diagnose_stream(
    names: Sequence[str],
    options: Options,
    *,
    stdin: bytes | SpooledInput | None = None,
    executor: Executor | None = None,
    cache: ReportCache | None = None,
    merge: bool = False,
) -> Iterator[RunReport]:
    """Yield the report of every run of every source in ``names`` (``-`` reads ``stdin``),
    in order: cached reports from ``cache``, the others diagnosed by ``executor``
    (in this process when None).  An unreadable source yields an ``error`` run.  With
    ``merge`` every source is a file of one run (one report); without it, a TensorBoard
    train export beside its validation export is judged with it."""
    entries = diagnose_entries(
        names, options, stdin=stdin, executor=executor, cache=cache, merge=merge
    )
    return (report for report, _ in entries)


def diagnose_entries(
    names: Sequence[str],
    options: Options,
    *,
    stdin: bytes | SpooledInput | None = None,
    executor: Executor | None = None,
    cache: ReportCache | None = None,
    merge: bool = False,
) -> Iterator[tuple[RunReport, str | None]]:
    """Yield what :func:`diagnose_stream` yields, each report with its entry of the JSON
    report when ``options.json_entries`` and it was diagnosed then (None for a cached
    report, a skipped source or a run the plain JSON writer leaves; see
    :func:`lossdoctor.reporters.json_report.render`): a worker writes the entries of the
    runs it diagnosed, so that this process does not write them one after another."""
    executor = executor or InProcess()
    sources = _grouped(list(expand_sources(names)), merge)
    shared = executor.share(options)
    window: deque[tuple[list[_Entry], Pending | None]] = deque()
    for chunk in _chunks(len(sources), executor.batch, executor.capacity):
        entries: list[_Entry] = []
        for ref, error, members in sources[chunk]:
            key = cache.key(ref) if cache is not None and error is None and not members else None
            hit = cache.get(key) if cache is not None and key is not None else None
            entries.append((ref, error, key, hit, members))
        work: list[Work] = [
            (members or r.name, stdin if "-" in (members or (r.name,)) else None)
            for r, e, _, hit, members in entries
            if not (e or hit)
        ]
        window.append((entries, executor.submit(diagnose_batch, work, shared) if work else None))
        while len(window) >= executor.capacity:
            yield from _collect(*window.popleft(), cache)
    while window:
        yield from _collect(*window.popleft(), cache)


def _chunks(count: int, batch: int, capacity: int) -> Iterator[slice]:
    """Yield the slices of ``count`` sources that make the tasks, in order: each at most
    ``batch`` sources and at most the ``capacity``-th part of those left, so that tasks
    shrink to one source at the end and the workers finish close together (a worker
    left with a task of ``batch`` runs while the others have none is time lost)."""
    start = 0
    while start < count:
        size = max(1, min(batch, (count - start) // max(1, capacity)))
        yield slice(start, start + size)
        start += size


def _collect(
    entries: list[_Entry], pending: Pending | None, cache: ReportCache | None
) -> Iterator[tuple[RunReport, str | None]]:
    computed: Iterator[Done] = iter(())
    failed = None
    if pending is not None:
        try:
            computed = iter(pending.result())
        except DiagnosisBug:
            raise  # a bug in lossdoctor: the CLI says "internal error", never a failed run
        except Exception as exc:  # a worker lost, a task that could not be shipped
            if os.environ.get("LOSSDOCTOR_DEBUG"):
                raise
            failed = " ".join(f"{type(exc).__name__}: {exc}".split())
    for ref, error, key, hit, _ in entries:
        if error is not None:
            yield RunReport(source=ref.name, error=error), None
        elif hit is not None:
            yield from ((report, None) for report in hit)
        elif failed is not None:
            failure = f"{ref.name}: diagnosis failed ({failed})"
            yield RunReport(source=ref.name, error=failure), None
        else:
            reports, texts = next(computed)
            if cache is not None and key is not None:
                cache.put(key, reports)
            yield from zip(reports, texts or [None] * len(reports), strict=True)
