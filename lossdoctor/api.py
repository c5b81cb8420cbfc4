"""The library entry point: from a source to a report, with no printing and no exiting."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from lossdoctor.config import Settings
from lossdoctor.engine.evaluate import evaluate
from lossdoctor.engine.loader import load_rules
from lossdoctor.engine.schema import Rule
from lossdoctor.errors import ConfigError, InputError, NotALogError
from lossdoctor.ingest import ColumnHints, read_runs, read_source
from lossdoctor.model import FileNote
from lossdoctor.report import Report, RunReport
from lossdoctor.sources import is_url

if TYPE_CHECKING:
    from lossdoctor.ingest.streamed import SpooledInput


def diagnose_source(
    source: str,
    *,
    data: bytes | SpooledInput | None = None,
    hints: ColumnHints | None = None,
    rules: Sequence[Rule] | None = None,
    run: str | None = None,
    context: Mapping[str, Any] | None = None,
    curves: bool = True,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    skip_non_logs: bool = False,
    in_progress: bool = False,
) -> list[RunReport]:
    """Return the diagnosis of every run at ``source`` (a log file, a folder of runs, an
    MLflow database, an fsspec URL of one object, or ``data`` read from standard input),
    with the decimated curves charts draw when ``curves``.  A folder is walked with the
    ``include``/``exclude`` globs; its first report's ``files`` lists every file met.

    An unreadable source gives one report whose ``error`` holds the one-line reason; with
    ``skip_non_logs`` a source that is no loss log gives one report whose ``skip`` says why
    (no run: :class:`~lossdoctor.report.Report` lists it among its files).

    With ``in_progress`` the log is still being written: it is judged as a run in
    progress (each rule only once it has the evidence it requires, the rules of a
    finished run not at all) and a text log's unfinished last line is left out.
    """
    pack = rules if rules is not None else load_rules()
    cut = False
    try:
        if data is None and is_url(source):
            from lossdoctor.ingest.streamed import read_url

            runs, files = read_url(source, hints=hints).runs(), list[FileNote]()
        else:
            if in_progress:
                from lossdoctor.ingest import written_lines

                data, cut = written_lines(source, data)
            runs, files = read_source(
                source, data=data, hints=hints, run=run, include=include, exclude=exclude
            )
    except NotALogError as exc:
        if skip_non_logs and not is_url(source):  # a remote object is named like a log
            return [RunReport(source=source, skip=exc.message)]
        return [RunReport(source=source, error=exc.one_line())]
    except InputError as exc:
        return [RunReport(source=source, error=exc.one_line())]
    reports = [evaluate(r, pack, context, curves=curves, partial=in_progress) for r in runs]
    if cut:
        for report in reports:
            report.notes.append("the last line is still being written: left out")
    if reports:
        reports[0].files = files
    return reports


def diagnose(
    source: str,
    *,
    data: bytes | None = None,
    hints: ColumnHints | None = None,
    rules: Sequence[Rule] | None = None,
) -> RunReport:
    """Return the diagnosis of the first run at ``source`` (see :func:`diagnose_source`)."""
    return diagnose_source(source, data=data, hints=hints, rules=rules)[0]


def diagnose_many(
    sources: Sequence[str],
    *,
    stdin: bytes | SpooledInput | None = None,
    hints: ColumnHints | None = None,
    rules: Sequence[Rule] | None = None,
    run: str | None = None,
    context: Mapping[str, Any] | None = None,
    jobs: int = 1,
    curves: bool = True,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    merge: bool = False,
) -> Report:
    """Return the report of every run of every source, in order (``-`` reads ``stdin``; a
    URL glob or prefix gives one run per object); with ``jobs`` > 1 the sources are
    diagnosed in that many processes; ``curves`` as for :func:`diagnose_source`; folders
    are walked with ``include``/``exclude`` globs.  Among several sources, one that is no
    loss log is skipped with a note (the report's ``files``), not an error; with ``merge`` the
    sources are the files of one run (one report).
    :func:`lossdoctor.fleet.diagnose_stream` streams them, on any executor, with a cache."""
    from lossdoctor.executors import make_executor
    from lossdoctor.fleet import Options, diagnose_stream

    pack = list(rules) if rules is not None else load_rules()
    options = Options(
        rules=pack, hints=hints, run=run, context=context or {}, curves=curves,
        include=tuple(include), exclude=tuple(exclude), skip_non_logs=len(sources) > 1,
    )  # fmt: skip
    executor = make_executor("local", jobs=jobs if len(sources) > 1 else 1)
    try:
        stream = diagnose_stream(sources, options, stdin=stdin, executor=executor, merge=merge)
        return Report.gather(stream)
    finally:
        executor.close()


def diagnose_merged(
    sources: Sequence[str],
    *,
    stdin: bytes | SpooledInput | None = None,
    hints: ColumnHints | None = None,
    rules: Sequence[Rule] | None = None,
    context: Mapping[str, Any] | None = None,
    curves: bool = True,
    in_progress: bool = False,
) -> list[RunReport]:
    """Return the one report of several files of one run (train and validation exports)
    judged together; its source names them all, joined by " + "; ``in_progress`` as for
    :func:`diagnose_source`."""
    from lossdoctor.ingest.merge import merge_runs

    pack = rules if rules is not None else load_rules()
    try:
        runs = []
        for s in sources:
            data = stdin if s == "-" else None
            if in_progress:
                from lossdoctor.ingest import written_lines

                data, _ = written_lines(s, data)
            runs.append(read_runs(s, data=data, hints=hints)[0])
        merged = merge_runs(runs)
    except InputError as exc:
        return [RunReport(source=" + ".join(sources), error=exc.one_line())]
    return [evaluate(merged, pack, context, curves=curves, partial=in_progress)]


def select_rules(settings: Settings) -> list[Rule]:
    """Return the rule pack (plus ``rule-paths``) with the settings' selection and overrides.

    Raises :class:`~lossdoctor.errors.LossdoctorError` for bad rule files or settings.
    """
    from lossdoctor.config import apply_settings
    from lossdoctor.detectors import DETECTORS
    from lossdoctor.engine.loader import builtin_rules_dir

    folders = [builtin_rules_dir(), *settings.rule_paths]
    for folder in settings.rule_paths:
        if not folder.is_dir():
            raise ConfigError(f"rule-paths: '{folder}' is not a folder", path=settings.path)
    return apply_settings(load_rules(folders), settings, DETECTORS)


def make_context(
    *, vocab_size: int | None = None, profile: str | None = None, objective: str | None = None
) -> dict[str, Any]:
    """Return the run context detectors may use: ``chance_loss`` = ln(vocab_size) in nats
    (the loss of a uniform guess), the typical-values ``profile`` and the training
    ``objective`` (``dpo``, ``grpo``, ...; ``auto`` = read from the log, like None)."""
    context: dict[str, Any] = {}
    if objective not in (None, "auto"):
        context["objective"] = objective
    if vocab_size is not None:
        context["chance_loss"] = math.log(vocab_size)
    if profile is not None:
        from lossdoctor.detectors.initial import PROFILES

        if profile not in PROFILES:
            raise ConfigError(f"unknown profile '{profile}' (choose from {', '.join(PROFILES)})")
        context["profile"] = profile
    return context
