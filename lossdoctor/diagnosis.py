"""The Python API: ``lossdoctor.diagnose(source, **options) -> Report``.

:class:`Report` wraps the pipeline's :class:`lossdoctor.report.Report` (the one versioned
dict every output format renders from) and adds what a script or a notebook wants:
the verdict, typed findings, the formats as strings or files, a chart, and an HTML view
for Jupyter.  Nothing here prints or exits.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

from lossdoctor.errors import ConfigError, InputError
from lossdoctor.report import Finding, RunReport, Verdict
from lossdoctor.report import Report as RunsReport

if TYPE_CHECKING:
    from lossdoctor.engine.schema import Rule
    from lossdoctor.ingest.columns import ColumnHints

#: Verdicts from best to worst (the report's verdict is its worst run's).
VERDICT_ORDER: tuple[Verdict, ...] = ("healthy", "warning", "failing", "error")
#: Default base name of report files written by :meth:`Report.save`.
REPORT_NAME = "lossdoctor-report"


@dataclass(frozen=True)
class Setup:
    """The rules, column hints and run context that the options of ``check`` resolve to."""

    rules: list[Rule]
    hints: ColumnHints | None
    context: dict[str, Any]


class CheckOptions(TypedDict, total=False):
    """The options of ``lossdoctor check`` as keyword arguments (``--select`` is
    ``select``, ``--vocab-size`` is ``vocab_size``...)."""

    select: Sequence[str] | None
    extend_select: Sequence[str]
    ignore: Sequence[str]
    config: str | os.PathLike[str] | None
    vocab_size: int | None
    classes: int | None
    profile: str | None
    train_col: str | None
    val_col: str | None
    step_col: str | None


def resolve_options(**options: Unpack[CheckOptions]) -> Setup:
    """Return the setup the options of ``check`` give, with the project's configuration
    (``[tool.lossdoctor]`` / ``lossdoctor.toml`` found from the working directory) below
    them, exactly as on the command line.

    Raises :class:`~lossdoctor.errors.ConfigError` for bad options or configuration.
    """
    from lossdoctor.api import make_context, select_rules
    from lossdoctor.config import Settings, resolve_settings
    from lossdoctor.detectors.initial import PROFILES
    from lossdoctor.ingest.columns import ColumnHints

    unknown = sorted(set(options) - set(CheckOptions.__annotations__))
    if unknown:
        from difflib import get_close_matches

        close = get_close_matches(unknown[0], list(CheckOptions.__annotations__), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ConfigError(f"unknown option '{unknown[0]}'{hint}")
    vocab_size, classes = options.get("vocab_size"), options.get("classes")
    if vocab_size is not None and classes is not None:
        raise ConfigError("give vocab_size or classes, not both")
    lists = {k: options.get(k) for k in ("select", "extend_select", "ignore")}
    for name, value in lists.items():
        if isinstance(value, str):
            raise ConfigError(f"{name} takes a list of rules, e.g. {name}=['{value}']")
    select = options.get("select")
    columns = {role: options.get(f"{role}_col") for role in ("train", "val", "step")}
    given = Settings(
        select=tuple(select) if select is not None else None,
        extend_select=tuple(options.get("extend_select", ())),
        ignore=tuple(options.get("ignore", ())),
        columns={role: str(name) for role, name in columns.items() if name},
        vocab_size=vocab_size or classes,
        profile=options.get("profile"),
    )
    config = options.get("config")
    settings = resolve_settings(given, None if config is None else str(config), Path.cwd())
    if settings.profile is not None and settings.profile not in PROFILES:
        raise ConfigError(
            f"unknown profile '{settings.profile}' (choose from {', '.join(PROFILES)})"
        )
    hints = ColumnHints(**settings.columns) if settings.columns else None
    context = make_context(vocab_size=settings.vocab_size, profile=settings.profile)
    return Setup(rules=select_rules(settings), hints=hints, context=context)


def diagnose(
    source: str | os.PathLike[str] | Mapping[str, Any] | Any,
    *,
    run: str | None = None,
    in_progress: bool = False,
    **options: Unpack[CheckOptions],
) -> Report:
    """Return the diagnosis of ``source``: a log file or run folder (a path), a pandas
    DataFrame, or a mapping of equal-length series (``{"step": [...], "loss": [...],
    "eval_loss": [...]}``, ``None`` where a series was not logged).

    The keyword options are those of ``lossdoctor check`` (:class:`CheckOptions`;
    ``run`` is ``--run``; ``in_progress`` is ``--in-progress``: the run is still being
    written and is judged as a run in progress).  Raises
    :class:`~lossdoctor.errors.InputError` when the source cannot be read and
    :class:`~lossdoctor.errors.ConfigError` for bad options.
    """
    setup = resolve_options(**options)
    if isinstance(source, str | os.PathLike):
        from lossdoctor.api import diagnose_source

        path = os.fspath(source)
        runs = diagnose_source(
            path, hints=setup.hints, rules=setup.rules, run=run, context=setup.context,
            in_progress=in_progress,
        )  # fmt: skip
        if all(r.error is not None for r in runs):
            raise InputError(runs[0].error or "cannot be read")
        return Report(RunsReport(runs=runs))
    from lossdoctor.engine.evaluate import evaluate
    from lossdoctor.ingest.frames import columns_to_run, frame_columns

    if isinstance(source, Mapping):
        columns, name, reader = dict(source), "<series>", "python:mapping"
    elif hasattr(source, "columns") and hasattr(source, "to_numpy"):
        columns, name, reader = frame_columns(source), "<DataFrame>", "python:dataframe"
    else:
        raise InputError(
            f"cannot diagnose a {type(source).__name__}: give a path, a pandas DataFrame "
            "or a mapping of series"
        )
    loaded = columns_to_run(columns, source=name, reader=reader, hints=setup.hints)
    judged = evaluate(loaded, setup.rules, setup.context, partial=in_progress)
    return Report(RunsReport(runs=[judged]))


class Report:
    """The diagnosis of one source (one or more runs): verdict, findings, formats, chart.

    In Jupyter, a ``Report`` as the last expression of a cell shows the verdict, the
    annotated chart, the findings and the fixes.
    """

    def __init__(self, report: RunsReport) -> None:
        self._report = report

    @property
    def runs(self) -> list[RunReport]:
        """Return the report of each run, in source order."""
        return self._report.runs

    @property
    def verdict(self) -> Verdict:
        """Return the worst run's verdict: ``healthy``, ``warning``, ``failing`` or ``error``."""
        verdicts = [r.verdict for r in self.runs] or ["healthy"]
        return max(verdicts, key=VERDICT_ORDER.index)

    @property
    def findings(self) -> list[Finding]:
        """Return every run's findings, superseded ones included (``superseded_by`` set);
        each has ``rule``, ``code``, ``severity``, ``message``, ``evidence``, ``fixes``
        and ``causes``."""
        return [f for r in self.runs for f in r.findings]

    @property
    def drivers(self) -> list[str]:
        """Return the rule names that drove the verdict."""
        return list(dict.fromkeys(name for r in self.runs for name in r.drivers))

    def reaches(self, level: str) -> bool:
        """Return True when a counted finding is at or above ``level`` (``error``,
        ``warning``, ``info``; ``never`` is never reached), as ``check --fail-on``."""
        return any(r.reaches(level) for r in self.runs)

    def to_dict(self, *, curves: bool = False) -> dict[str, Any]:
        """Return the versioned JSON report (the ``-f json`` document), with the decimated
        curves when ``curves``."""
        return self._report.to_dict(curves=curves)

    def render(self, fmt: str) -> str:
        """Return the report in ``fmt``: ``json``, ``markdown``, ``html``, ``text``,
        ``junit``, ``github`` or ``gitlab`` (the formats of ``check -f``)."""
        from lossdoctor.reporters.render import render

        return render(fmt, self.to_dict(curves=fmt == "html"))

    def to_json(self) -> str:
        """Return the JSON report as text."""
        return self.render("json")

    def to_markdown(self) -> str:
        """Return the Markdown report (as ``check -f markdown``)."""
        return self.render("markdown")

    def to_html(self) -> str:
        """Return the self-contained HTML page (as ``check -f html``)."""
        return self.render("html")

    def save(
        self, directory: str | os.PathLike[str], formats: Sequence[str] = ("json",)
    ) -> list[Path]:
        """Write ``lossdoctor-report.<ext>`` in each of ``formats`` into ``directory``
        (created if missing); return the paths written."""
        from lossdoctor.reporters.render import SUFFIX, render

        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for fmt in formats:
            path = folder / f"{REPORT_NAME}{SUFFIX.get(fmt, '.' + fmt)}"
            path.write_text(render(fmt, self.to_dict(curves=fmt == "html")), encoding="utf-8")
            written.append(path)
        return written

    def plot(self, path: str | os.PathLike[str] | None = None) -> Any:
        """Draw the annotated chart: write it to ``path`` (.png or .svg) and return the
        path, or return the matplotlib figure when ``path`` is None.

        Raises :class:`~lossdoctor.reporters.chart.PlotUnavailable` without matplotlib.
        """
        from lossdoctor.reporters import chart

        doc = self.to_dict(curves=True)
        if path is None:
            return chart.figure(doc)
        chart.render(doc, os.fspath(path))
        return Path(path)

    def _repr_html_(self) -> str:
        from lossdoctor.reporters import html
        from lossdoctor.reporters.render import chart_svg

        doc = self.to_dict(curves=True)
        return html.render(doc, chart_svg=chart_svg(doc), fragment=True)

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.code} {f.rule} ({f.severity})" for r in self.runs for f in r.active)
        return f"<lossdoctor.Report {self.verdict.upper()}{': ' + shown if shown else ''}>"
