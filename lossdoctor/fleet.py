"""Many runs at once: expand the sources, skip the cached ones, map the diagnosis over the
rest with an executor, and stream the run reports back in the order given.

Memory holds the list of sources and the tasks in flight, never every report.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lossdoctor.cache import ReportCache, fingerprint
from lossdoctor.engine.schema import Rule
from lossdoctor.errors import InputError
from lossdoctor.executors import Executor, InProcess, Pending
from lossdoctor.ingest.columns import ColumnHints
from lossdoctor.report import RunReport
from lossdoctor.sources import SourceRef, expand, is_url


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

    def fingerprint(self) -> str:
        """Return the digest the report cache keys entries by."""
        return fingerprint(
            list(self.rules), self.hints, self.run, dict(self.context), self.curves,
            self.include, self.exclude, self.skip_non_logs,
        )  # fmt: skip


def diagnose_batch(work: list[tuple[str, bytes | None]], options: Options) -> list[list[RunReport]]:
    """Return the run reports of each (source, stdin data or None) in ``work``, in order."""
    from lossdoctor.api import diagnose_source

    return [
        diagnose_source(
            name,
            data=data,
            hints=options.hints,
            rules=options.rules,
            run=options.run,
            context=options.context,
            curves=options.curves,
            include=options.include,
            exclude=options.exclude,
            skip_non_logs=options.skip_non_logs,
        )
        for name, data in work
    ]


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


#: One source in flight: (source, listing error, cache key, cached reports).
_Entry = tuple[SourceRef, str | None, str | None, list[RunReport] | None]


def diagnose_stream(
    names: Sequence[str],
    options: Options,
    *,
    stdin: bytes | None = None,
    executor: Executor | None = None,
    cache: ReportCache | None = None,
) -> Iterator[RunReport]:
    """Yield the report of every run of every source in ``names`` (``-`` reads ``stdin``),
    in order: cached reports from ``cache``, the others diagnosed by ``executor``
    (in this process when None).  An unreadable source yields an ``error`` run."""
    executor = executor or InProcess()
    sources = list(expand_sources(names))
    shared = executor.share(options)
    size = max(1, min(executor.batch, len(sources) // max(1, executor.capacity)))
    window: deque[tuple[list[_Entry], Pending | None]] = deque()
    for start in range(0, len(sources), size):
        entries: list[_Entry] = []
        for ref, error in sources[start : start + size]:
            key = cache.key(ref) if cache is not None and error is None else None
            entries.append((ref, error, key, cache.get(key) if cache is not None else None))
        work = [
            (r.name, stdin if r.name == "-" else None) for r, e, _, hit in entries if not (e or hit)
        ]
        window.append((entries, executor.submit(diagnose_batch, work, shared) if work else None))
        while len(window) >= executor.capacity:
            yield from _collect(*window.popleft(), cache)
    while window:
        yield from _collect(*window.popleft(), cache)


def _collect(
    entries: list[_Entry], pending: Pending | None, cache: ReportCache | None
) -> Iterator[RunReport]:
    computed: Iterator[list[RunReport]] = iter(())
    failed = None
    if pending is not None:
        try:
            computed = iter(pending.result())
        except Exception as exc:  # a worker lost, a task that could not be shipped
            if os.environ.get("LOSSDOCTOR_DEBUG"):
                raise
            failed = " ".join(f"{type(exc).__name__}: {exc}".split())
    for ref, error, key, hit in entries:
        if error is not None:
            yield RunReport(source=ref.name, error=error)
        elif hit is not None:
            yield from hit
        elif failed is not None:
            yield RunReport(source=ref.name, error=f"{ref.name}: diagnosis failed ({failed})")
        else:
            reports = next(computed)
            if cache is not None:
                cache.put(key, reports)
            yield from reports
