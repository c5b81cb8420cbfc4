"""The library entry point: from a source to a report, with no printing and no exiting."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from lossdoctor.config import Settings
from lossdoctor.engine.evaluate import evaluate
from lossdoctor.engine.loader import load_rules
from lossdoctor.engine.schema import Rule
from lossdoctor.errors import ConfigError, InputError
from lossdoctor.ingest import ColumnHints, read_runs
from lossdoctor.report import Report, RunReport


def diagnose_source(
    source: str,
    *,
    data: bytes | None = None,
    hints: ColumnHints | None = None,
    rules: Sequence[Rule] | None = None,
    run: str | None = None,
    context: Mapping[str, Any] | None = None,
    curves: bool = True,
) -> list[RunReport]:
    """Return the diagnosis of every run at ``source`` (a log file, a folder of runs, an
    MLflow database, or ``data`` read from standard input), with the decimated curves
    charts draw when ``curves``.

    An unreadable source gives one report whose ``error`` holds the one-line reason.
    """
    pack = rules if rules is not None else load_rules()
    try:
        runs = read_runs(source, data=data, hints=hints, run=run)
    except InputError as exc:
        return [RunReport(source=source, error=exc.one_line())]
    return [evaluate(r, pack, context, curves=curves) for r in runs]


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
    stdin: bytes | None = None,
    hints: ColumnHints | None = None,
    rules: Sequence[Rule] | None = None,
    run: str | None = None,
    context: Mapping[str, Any] | None = None,
    jobs: int = 1,
    curves: bool = True,
) -> Report:
    """Return the report of every run of every source, in order (``-`` reads ``stdin``);
    with ``jobs`` > 1 the sources are diagnosed in that many processes; ``curves`` as
    for :func:`diagnose_source`."""
    pack = list(rules) if rules is not None else load_rules()
    kwargs = {"hints": hints, "rules": pack, "run": run, "context": context, "curves": curves}
    if jobs > 1 and len(sources) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = [
                pool.submit(_diagnose_one, s, stdin if s == "-" else None, kwargs) for s in sources
            ]
            return Report(runs=[r for f in futures for r in f.result()])
    reports: list[RunReport] = []
    for source in sources:
        reports.extend(_diagnose_one(source, stdin if source == "-" else None, kwargs))
    return Report(runs=reports)


def _diagnose_one(source: str, data: bytes | None, kwargs: dict[str, Any]) -> list[RunReport]:
    return diagnose_source(source, data=data, **kwargs)


def select_rules(settings: Settings) -> list[Rule]:
    """Return the rule pack (plus ``rule-paths``) with the settings' selection and overrides.

    Raises :class:`~lossdoctor.errors.LossdoctorError` for bad rule files or settings.
    """
    from lossdoctor.config import apply_settings
    from lossdoctor.detectors import load_builtin_detectors
    from lossdoctor.engine.loader import builtin_rules_dir

    folders = [builtin_rules_dir(), *settings.rule_paths]
    for folder in settings.rule_paths:
        if not folder.is_dir():
            raise ConfigError(f"rule-paths: '{folder}' is not a folder", path=settings.path)
    return apply_settings(load_rules(folders), settings, load_builtin_detectors())


def make_context(*, vocab_size: int | None = None, profile: str | None = None) -> dict[str, Any]:
    """Return the run context detectors may use: ``chance_loss`` = ln(vocab_size) in nats
    (the loss of a uniform guess) and the typical-values ``profile``."""
    context: dict[str, Any] = {}
    if vocab_size is not None:
        context["chance_loss"] = math.log(vocab_size)
    if profile is not None:
        context["profile"] = profile
    return context
