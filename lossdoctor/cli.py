"""The command line: a thin typer layer; every command delegates at once.

Only this module prints or exits.  Heavy modules (pandas, numpy, scipy) are
imported inside the commands so that ``lossdoctor --help`` stays instant.  The
annotations are evaluated where they are written (no ``from __future__ import
annotations``): typer reads every option's from its command's signature at each start,
and evaluating them there took 2.5 of the 3.7 ms that building ``check`` costs.
"""

import functools
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from lossdoctor import __version__
from lossdoctor.errors import DiagnosisBug, ExitCode, LossdoctorError

FAIL_ON = ("error", "warning", "info", "never")
FORMATS = ("text", "json", "markdown", "github", "junit", "gitlab", "html")
SUMMARY_FORMATS = ("summary", "summary-markdown", "summary-csv", "summary-json")

app = typer.Typer(
    name="lossdoctor",
    help="Diagnose training runs from their loss logs: a verdict, the evidence, the fixes.",
    no_args_is_help=True,
    # help in rich panels on a terminal; plain text into a pipe or file, where the
    # panels would be stripped anyway and rich's help renderer costs 0.1 s to import
    rich_markup_mode="rich" if sys.stdout.isatty() else None,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
rules_app = typer.Typer(help="List and explain the rules.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")


# The options that change the diagnosis, declared once for check, watch, run (and plot,
# compare): the same names, types and help everywhere.
ConfigOption = Annotated[
    str | None, typer.Option(help="A lossdoctor.toml or pyproject.toml to read settings from.")
]
VocabOption = Annotated[
    int | None,
    typer.Option(
        min=2, help="Vocabulary size N: ln(N) is the loss of a uniform guess (chance level)."
    ),
]
ClassesOption = Annotated[
    int | None,
    typer.Option(min=2, help="Number of classes N (classification): chance level ln(N)."),
]
SelectOption = Annotated[
    list[str], typer.Option(help="Only these rules: codes, prefixes, names or groups.")
]
ExtendSelectOption = Annotated[list[str], typer.Option(help="Add these rules to the selection.")]
IgnoreOption = Annotated[list[str], typer.Option(help="Leave these rules out.")]
GroupByOption = Annotated[
    str | None,
    typer.Option(
        "--group-by",
        help="Column (or key) naming the run of each row (a sweep's trial_id, run, version):"
        " one report per run. Default: a column named trial_id, trial, run, run_id, run_name,"
        " version... naming two runs or more; 'none': never split a log by a column.",
    ),
]
TrainColOption = Annotated[
    str | None, typer.Option(help="Column (or key) holding the training loss.")
]
ValColOption = Annotated[
    str | None, typer.Option(help="Column (or key) holding the validation loss.")
]
StepColOption = Annotated[str | None, typer.Option(help="Column (or key) holding the step.")]
ProfileOption = Annotated[
    str | None,
    typer.Option(help="Typical-values profile to place the final loss in: slm-finetune."),
]
StallOption = Annotated[
    float | None,
    typer.Option(min=0.1, help="A stall finding after this many seconds without a point."),
]
ReportFormatOption = Annotated[
    list[str], typer.Option("--format", "-f", help="Format of the final report (as for check).")
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lossdoctor {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Diagnose training runs from their loss logs."""


def _error(message: str) -> None:
    typer.echo(f"lossdoctor: {message}", err=True)


def _parse_formats(values: list[str]) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for value in values or ["text"]:
        name, _, path = value.partition(":")
        if name not in FORMATS + SUMMARY_FORMATS:
            raise typer.BadParameter(
                f"unknown format '{name}' (choose from {', '.join(FORMATS + SUMMARY_FORMATS)})",
                param_hint="'--format'",
            )
        out.append((name, path or None))
    if sum(1 for _, p in out if p is None) > 1:
        raise typer.BadParameter(
            "only one format can go to standard output; give the others a path (NAME:PATH)",
            param_hint="'--format'",
        )
    return out


def _refuse_overwrite(
    outputs: list[tuple[str, str | None]], inputs: list[str], plot: str | None = None
) -> None:
    """Raise a usage error when a report or chart path is one of the input files (the same
    file: device and inode; inputs are looked at only when a target already exists)."""
    targets = [(f"{name} report", path) for name, path in outputs if path is not None]
    targets += [("chart", plot)] if plot is not None else []
    existing: dict[tuple[int, int], tuple[str, str]] = {}
    for what, path in targets:
        try:
            info = os.stat(path)
        except (OSError, ValueError):
            continue  # nothing there yet: it cannot be an input
        existing[(info.st_dev, info.st_ino)] = (what, path)
    if not existing:
        return
    for name in inputs:
        try:
            info = os.stat(name)
        except (OSError, ValueError):
            continue
        if (info.st_dev, info.st_ino) in existing:
            what, path = existing[(info.st_dev, info.st_ino)]
            raise LossdoctorError(
                f"refusing to write the {what} over the input file (give another path)",
                path=path,
            )


def _one_line_errors(func: Callable[..., None]) -> Callable[..., None]:
    """Return ``func`` reporting lossdoctor errors as one line on stderr with exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            func(*args, **kwargs)
        except LossdoctorError as exc:
            _error(exc.one_line())
            raise typer.Exit(ExitCode.USAGE) from None

    return wrapper


def _csv(values: list[str]) -> tuple[str, ...]:
    return tuple(v.strip() for value in values for v in value.split(",") if v.strip())


def _settings(
    select: list[str],
    extend_select: list[str],
    ignore: list[str],
    config: str | None,
    columns: tuple[str | None, str | None, str | None],
    vocab_size: int | None,
    profile: str | None,
    *,
    fail_on: str | None = None,
    exit_zero: bool = False,
    objective: str | None = None,
    group_by: str | None = None,
) -> Any:
    """Return the settings the command line, ``--config`` and the project's files make
    (the options that change the diagnosis, shared by check, watch and run)."""
    from lossdoctor.config import Settings, resolve_settings

    named = (*columns, group_by)
    roles = {k: v for k, v in zip(("train", "val", "step", "group"), named, strict=True) if v}
    cli = Settings(
        select=_csv(select) or None,
        extend_select=_csv(extend_select),
        ignore=_csv(ignore),
        fail_on=fail_on,
        exit_zero=exit_zero or None,
        columns=roles,
        vocab_size=vocab_size,
        profile=profile,
        objective=objective,
    )
    settings = resolve_settings(cli, config, Path.cwd())
    from lossdoctor.config import OBJECTIVES
    from lossdoctor.detectors.initial import PROFILES

    if settings.objective is not None and settings.objective not in OBJECTIVES:
        raise typer.BadParameter(
            f"unknown objective '{settings.objective}' (choose from {', '.join(OBJECTIVES)})",
            param_hint="'--objective'",
        )
    if settings.profile is not None and settings.profile not in PROFILES:
        raise typer.BadParameter(
            f"unknown profile '{settings.profile}' (choose from {', '.join(PROFILES)})",
            param_hint="'--profile'",
        )
    return settings


def _context(settings: Any) -> dict[str, Any]:
    """Return the run context the settings give detectors (chance level, profile, objective)."""
    from lossdoctor.api import make_context

    return make_context(
        vocab_size=settings.vocab_size, profile=settings.profile, objective=settings.objective
    )


@app.command()
@_one_line_errors
def check(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="Loss logs or run folders to diagnose (see 'lossdoctor formats'); '-' is stdin."
        ),
    ],
    fmt: Annotated[
        list[str],
        typer.Option(
            "--format",
            "-f",
            help=f"Output NAME[:PATH]: {', '.join(FORMATS + SUMMARY_FORMATS)}. Repeatable; a"
            " PATH's missing folders are created; never one of the input files.",
        ),
    ] = [],  # noqa: B006 - typer needs a list default
    fail_on: Annotated[
        str | None,
        typer.Option(help="Exit 1 when a finding reaches: error (default), warning, info, never."),
    ] = None,
    exit_zero: Annotated[
        bool, typer.Option("--exit-zero", help="Always exit 0 for findings (report-only jobs).")
    ] = False,
    select: SelectOption = [],  # noqa: B006
    extend_select: ExtendSelectOption = [],  # noqa: B006
    ignore: IgnoreOption = [],  # noqa: B006
    config: ConfigOption = None,
    train_col: TrainColOption = None,
    val_col: ValColOption = None,
    step_col: StepColOption = None,
    vocab_size: VocabOption = None,
    classes: ClassesOption = None,
    profile: ProfileOption = None,
    objective: Annotated[
        str | None,
        typer.Option(
            help="What the loss optimises: auto (read from the log), sft, pretrain, dpo, ipo, "
            "reward-model, grpo, ppo, rloo. RL objectives judge the reward, not the loss."
        ),
    ] = None,
    run_filter: Annotated[
        str | None,
        typer.Option(
            "--run", help="In a folder of runs or an MLflow store, only the runs matching this."
        ),
    ] = None,
    baseline: Annotated[
        str | None,
        typer.Option(help="A reference run: fail when a run is worse than it (see 'compare')."),
    ] = None,
    plot: Annotated[
        str | None, typer.Option(help="Also draw the annotated chart to this .png or .svg.")
    ] = None,
    jobs: Annotated[int, typer.Option(min=1, help="Diagnose paths in parallel processes.")] = 1,
    executor: Annotated[
        str, typer.Option(help="Where runs are diagnosed: local (--jobs processes) or dask.")
    ] = "local",
    scheduler: Annotated[
        str | None, typer.Option(help="The Dask scheduler for --executor dask: tcp://HOST:8786.")
    ] = None,
    cache: Annotated[
        str | None, typer.Option(help="Reuse the reports of unchanged runs kept in this folder.")
    ] = None,
    sort: Annotated[
        str, typer.Option(help="Order of the summary rows: input, verdict, final, best.")
    ] = "input",
    include: Annotated[
        list[str],
        typer.Option(help="In folders, read only files matching this glob (path or name)."),
    ] = [],  # noqa: B006
    exclude: Annotated[
        list[str], typer.Option(help="In folders, skip files and runs matching this glob.")
    ] = [],  # noqa: B006
    group_by: GroupByOption = None,
    merge: Annotated[
        bool,
        typer.Option(
            "--merge",
            help="The paths are files of ONE run (e.g. train and validation exports):"
            " judge them together.",
        ),
    ] = False,
    in_progress: Annotated[
        bool,
        typer.Option(
            "--in-progress",
            help="The logs are still being written: judge runs in progress (each rule only"
            " once it has the evidence it needs; an unfinished last line is left out).",
        ),
    ] = False,
) -> None:
    """Diagnose loss logs: verdict, evidence and fixes for each run, in order.

    Exit codes: 0 no run reaches --fail-on, 1 one does, 2 usage, configuration or input error.
    """
    from lossdoctor.config import FAIL_ON as CONFIG_FAIL_ON

    if fail_on is not None and fail_on not in CONFIG_FAIL_ON:
        raise typer.BadParameter(
            f"'{fail_on}' is not one of {', '.join(FAIL_ON)}", param_hint="'--fail-on'"
        )
    outputs = _parse_formats(fmt)
    _refuse_overwrite(outputs, [*paths, *([baseline] if baseline else [])], plot)
    if vocab_size is not None and classes is not None:
        raise typer.BadParameter("give --vocab-size or --classes, not both")
    settings = _settings(
        select, extend_select, ignore, config, (train_col, val_col, step_col),
        vocab_size or classes, profile, fail_on=fail_on, exit_zero=exit_zero,
        objective=objective, group_by=group_by,
    )  # fmt: skip
    from lossdoctor import cli_fleet
    from lossdoctor.api import select_rules
    from lossdoctor.ingest.columns import ColumnHints
    from lossdoctor.report import Report

    cli_fleet.check_sort(sort)
    rules = select_rules(settings)
    stdin = None
    if "-" in paths:
        from lossdoctor.ingest import read_stdin

        stdin = read_stdin(sys.stdin.buffer)
    hints = ColumnHints(**settings.columns) if settings.columns else None
    context = _context(settings)
    wants_curves = plot is not None or any(name == "html" for name, _ in outputs)
    full = [name for name, _ in outputs if name not in SUMMARY_FORMATS]
    dicts: list[dict[str, Any]] = []  # each run's dict, made once for its row and the report
    # each run's JSON entry, written by the worker that diagnosed it (a report compared
    # with a baseline is made here)
    entries: list[str | None] | None = [] if "json" in full and baseline is None else None
    try:
        runs, summary, files = cli_fleet.diagnose(
            paths, stdin=stdin, hints=hints, run=run_filter, context=context, rules=rules,
            curves=wants_curves or baseline is not None, executor=executor, jobs=jobs,
            scheduler=scheduler, cache=cache, keep=bool(full) or plot is not None or bool(baseline),
            include=_csv(include), exclude=_csv(exclude), merge=merge,
            in_progress=in_progress, dicts=dicts, entries=entries,
        )  # fmt: skip
    finally:
        if stdin is not None and not isinstance(stdin, bytes):  # spooled to a temporary file
            Path(stdin.path).unlink(missing_ok=True)
    if not summary.rows:
        for note in files:
            _error(f"{note.path}: {note.detail}")
        _error("none of the paths is a loss log")
        raise typer.Exit(ExitCode.USAGE)
    report = Report(runs=runs, files=files)
    if baseline is not None:
        from lossdoctor.compare import compare_report

        report = compare_report(report, baseline, hints=hints, rules=rules, context=context)
        summary = cli_fleet.summarize(report.runs)
    doc = report.to_dict(curves=wants_curves, runs=None if baseline is not None else dicts)
    threshold = settings.fail_on or "error"
    for name, path in outputs:
        summary_doc = summary.to_dict(sort) if name in SUMMARY_FORMATS else doc
        _write(name, path, summary_doc, fail_on=threshold, sort=sort, entries=entries)
    if plot is not None:
        from lossdoctor.reporters import chart

        chart.render(doc, plot)
    errors = [row.error for row in summary.rows if row.error is not None]
    for error in errors:
        _error(error)
    if errors:
        raise typer.Exit(ExitCode.USAGE)
    if not settings.exit_zero and any(row.reaches(threshold) for row in summary.rows):
        raise typer.Exit(ExitCode.FINDINGS)


def _write(
    name: str,
    path: str | None,
    doc: dict[str, Any],
    *,
    fail_on: str = "error",
    sort: str = "input",
    entries: Sequence[str | None] | None = None,
) -> None:
    """Render ``doc`` in format ``name`` to ``path`` (stdout when None); ``sort``: the order
    of the text report's summary rows; a summary format renders a ``Summary.to_dict()``;
    ``entries``: the runs' JSON entries written by the workers (JSON only).
    A reader that closes standard output early (``| head -1``) does not change the exit
    code."""
    try:
        _render_to(name, path, doc, fail_on=fail_on, sort=sort, entries=entries)
    except BrokenPipeError:
        _stdout_closed()


def _stdout_closed() -> None:
    """Point standard output at the null device: its reader has gone, and Python's own
    flush at exit must not fail (nor change the exit code) because of it."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _render_to(
    name: str,
    path: str | None,
    doc: dict[str, Any],
    *,
    fail_on: str,
    sort: str,
    entries: Sequence[str | None] | None = None,
) -> None:
    if name in SUMMARY_FORMATS:
        from lossdoctor.cli_fleet import render_summary

        summary = render_summary(name, doc, terminal_out=path is None)
        if summary is None:
            return
        text = summary
    elif name == "text" and path is None:
        from lossdoctor.reporters import terminal

        terminal.render(doc, sort=sort)
        return
    else:
        from lossdoctor.reporters.render import render

        text = render(name, doc, fail_on=fail_on, sort=sort, entries=entries)
    if path is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        _save(path, text)


def _save(path: str, text: str) -> None:
    try:
        target = Path(path)
        if target.parent and not target.parent.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
        with target.open(
            "a" if path == os.environ.get("GITHUB_STEP_SUMMARY") else "w", encoding="utf-8"
        ) as out:
            out.write(text)
    except OSError as exc:
        raise LossdoctorError(f"cannot write report ({exc.strerror})", path=path) from None


@app.command()
@_one_line_errors
def compare(
    reference: Annotated[str, typer.Argument(help="The known-good run (any format check reads).")],
    candidate: Annotated[str, typer.Argument(help="The run to judge against it.")],
    fmt: Annotated[
        list[str],
        typer.Option("--format", "-f", help="Output NAME or NAME:PATH, as for check; repeatable."),
    ] = [],  # noqa: B006 - typer needs a list default
    rtol: Annotated[
        float, typer.Option(min=0.0, help="Relative tolerance on final and best loss (0.05 = 5%).")
    ] = 0.05,
    k: Annotated[
        float, typer.Option(min=0.0, help="Curve band: k robust deviations of the reference.")
    ] = 3.0,
    speed_tol: Annotated[
        float, typer.Option(min=0.0, help="Tolerance on the steps to reach the reference loss.")
    ] = 0.1,
    fail_on: Annotated[str, typer.Option(help="As for check.")] = "error",
    exit_zero: Annotated[bool, typer.Option("--exit-zero", help="Always exit 0.")] = False,
    plot: Annotated[
        str | None, typer.Option(help="Draw both curves and the tolerance band to .png/.svg.")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Compare a candidate run with a reference run and fail when it is worse.

    Checks the final and best loss (--rtol), the curve over the shared steps (a band of
    max(rtol, k deviations)), the steps to reach the reference's loss (--speed-tol) and
    problem findings the reference did not have.  Exit codes as for check.
    """
    if fail_on not in FAIL_ON:
        raise typer.BadParameter(f"'{fail_on}' is not one of {', '.join(FAIL_ON)}")
    outputs = _parse_formats(fmt)
    _refuse_overwrite(outputs, [reference, candidate], plot)
    from lossdoctor.api import diagnose_many, select_rules
    from lossdoctor.compare import Tolerances, compare_report
    from lossdoctor.config import Settings, resolve_settings
    from lossdoctor.ingest.columns import ColumnHints

    settings = resolve_settings(Settings(), config, Path.cwd())
    rules = select_rules(settings)
    hints = ColumnHints(**settings.columns) if settings.columns else None
    context = _context(settings)
    report = diagnose_many([candidate], hints=hints, rules=rules, context=context)
    if any(r.error for r in report.runs):
        for r in report.runs:
            _error(r.error or "")
        raise typer.Exit(ExitCode.USAGE)
    report = compare_report(
        report, reference, hints=hints, rules=rules, context=context,
        tol=Tolerances(rtol=rtol, k=k, speed_tol=speed_tol),
    )  # fmt: skip
    doc = report.to_dict(curves=plot is not None or any(name == "html" for name, _ in outputs))
    for name, path in outputs:
        _write(name, path, doc, fail_on=fail_on)
    if plot is not None:
        from lossdoctor.reporters import chart

        chart.render(doc, plot)
    if not exit_zero and any(run.reaches(fail_on) for run in report.runs):
        raise typer.Exit(ExitCode.FINDINGS)


@app.command("plot")
@_one_line_errors
def plot_command(
    paths: Annotated[
        list[str], typer.Argument(help="Runs to draw (several: one panel each, with findings).")
    ],
    output: Annotated[str, typer.Option("--output", "-o", help="The chart file: .png or .svg.")],
    smoothing: Annotated[
        float, typer.Option(min=0.0, max=0.999, help="EMA smoothing of the training loss (0-1).")
    ] = 0.6,
    log_y: Annotated[
        bool | None,
        typer.Option(
            "--log-y/--linear-y", help="Loss axis scale (default: log when it spans over 20x)."
        ),
    ] = None,
    xlim: Annotated[
        str | None, typer.Option(help="x axis limits LOW:HIGH (either may be left out).")
    ] = None,
    ylim: Annotated[
        str | None, typer.Option(help="Loss axis limits LOW:HIGH (either may be left out).")
    ] = None,
    vocab_size: VocabOption = None,
    config: ConfigOption = None,
) -> None:
    """Draw the annotated loss chart: raw and smoothed training loss, validation, the
    learning rate, and every finding where it is.  Needs the 'plot' extra."""
    from lossdoctor.reporters import chart

    rules, hints, context = _live_setup(config, vocab_size)
    chart.require_matplotlib()
    from lossdoctor.api import diagnose_many

    report = diagnose_many(paths, hints=hints, rules=rules, context=context)
    for run in report.runs:
        if run.error is not None:
            _error(run.error)
    if all(run.error is not None for run in report.runs):
        raise typer.Exit(ExitCode.USAGE)
    axes = chart.Axes(
        y_scale="auto" if log_y is None else "log" if log_y else "linear",
        x_limits=_limits(xlim, "--xlim"),
        y_limits=_limits(ylim, "--ylim"),
    )
    chart.render(report.to_dict(curves=True), output, smoothing=smoothing, axes=axes)
    typer.echo(f"wrote {output}")


def _limits(text: str | None, name: str) -> tuple[float | None, float | None]:
    """Return the axis limits written as ``LOW:HIGH`` (either side may be empty)."""
    if text is None:
        return (None, None)
    low, sep, high = text.partition(":")
    try:
        if not sep:
            raise ValueError
        limits = tuple(float(v) if v.strip() else None for v in (low, high))
    except ValueError:
        raise typer.BadParameter(
            f"'{text}' is not LOW:HIGH (e.g. 0:5000 or :3)", param_hint=name
        ) from None
    return limits[0], limits[1]


def _live_setup(config: str | None, vocab_size: int | None) -> tuple[Any, Any, Any]:
    from lossdoctor.api import select_rules
    from lossdoctor.config import Settings, resolve_settings
    from lossdoctor.ingest.columns import ColumnHints

    settings = resolve_settings(Settings(vocab_size=vocab_size), config, Path.cwd())
    rules = select_rules(settings)
    hints = ColumnHints(**settings.columns) if settings.columns else None
    context = _context(settings)
    return rules, hints, context


def _final(reports: list[Any], fail_on: str, outputs: list[tuple[str, str | None]]) -> int:
    """Write the final report of a live stream's runs; return 1 when one of them reaches
    ``fail_on``, else 0."""
    from lossdoctor.cli_fleet import summarize
    from lossdoctor.report import Report

    doc = Report(runs=reports).to_dict()
    for name, path in outputs:
        shown = summarize(reports).to_dict("input") if name in SUMMARY_FORMATS else doc
        _write(name, path, shown, fail_on=fail_on)
    return int(ExitCode.FINDINGS) if any(r.reaches(fail_on) for r in reports) else 0


StopOnOption = Annotated[
    str | None,
    typer.Option(help="Stop as soon as a finding reaches: error or warning (exit 1)."),
]
FailOnOption = Annotated[str, typer.Option(help="Exit code of the final report, as for check.")]


def _live_options(
    stop_on: str | None, fail_on: str, vocab_size: int | None, classes: int | None
) -> None:
    for name, value in (("--stop-on", stop_on), ("--fail-on", fail_on)):
        if value is not None and value not in FAIL_ON:
            raise typer.BadParameter(
                f"'{value}' is not one of {', '.join(FAIL_ON)}", param_hint=name
            )
    if vocab_size is not None and classes is not None:
        raise typer.BadParameter("give --vocab-size or --classes, not both")


@app.command()
@_one_line_errors
def watch(
    path: Annotated[
        str, typer.Argument(help="A log file to follow (like tail -F), or '-' for stdin.")
    ] = "-",
    stop_on: StopOnOption = None,
    fail_on: FailOnOption = "error",
    stall_after: StallOption = None,
    exit_when_idle: Annotated[
        float | None,
        typer.Option(
            min=0.1,
            help="Following a file: end with the report after this many "
            "seconds without a new line.",
        ),
    ] = None,
    pid: Annotated[
        int | None,
        typer.Option(help="Following a file: end with the report when process PID ends."),
    ] = None,
    tee: Annotated[
        bool, typer.Option("--tee", help="Pass the input lines through to stdout.")
    ] = False,
    fmt: ReportFormatOption = [],  # noqa: B006 - typer needs a list default
    select: SelectOption = [],  # noqa: B006
    extend_select: ExtendSelectOption = [],  # noqa: B006
    ignore: IgnoreOption = [],  # noqa: B006
    train_col: TrainColOption = None,
    val_col: ValColOption = None,
    step_col: StepColOption = None,
    vocab_size: VocabOption = None,
    classes: ClassesOption = None,
    profile: ProfileOption = None,
    group_by: GroupByOption = None,
    config: ConfigOption = None,
) -> None:
    """Diagnose a run while it trains: follow stdin or a growing file, alert on findings.

    On a terminal a live panel shows the recent loss and the findings; otherwise one line
    is printed per new or materially changed finding (on stderr when the report on stdout
    is machine-readable).  At the end of input the full report is printed (exit code as
    for check).  Ctrl-C or SIGTERM print the report so far and exit 130 or 143.
    """
    from lossdoctor.cli_live import watch_command

    _live_options(stop_on, fail_on, vocab_size, classes)
    settings = _settings(
        select, extend_select, ignore, config, (train_col, val_col, step_col),
        vocab_size or classes, profile, group_by=group_by,
    )  # fmt: skip
    outputs = _parse_formats(fmt)
    if tee and any(name != "text" and out is None for name, out in outputs):
        raise typer.BadParameter(
            "--tee writes the input to stdout: give the report a path (NAME:PATH)",
            param_hint="'--tee'",
        )
    if (exit_when_idle is not None or pid is not None) and path == "-":
        raise typer.BadParameter("--exit-when-idle and --pid are for following a file")
    raise typer.Exit(
        watch_command(
            path,
            settings,
            outputs,
            stop_on=stop_on,
            fail_on=fail_on,
            stall_after=stall_after,
            tee=tee,
            exit_when_idle=exit_when_idle,
            pid=pid,
        )
    )


@app.command(context_settings={"allow_interspersed_args": False})
@_one_line_errors
def run(
    command: Annotated[list[str], typer.Argument(help="The training command, after --.")],
    stop_on: Annotated[
        str | None, typer.Option(help="Stop the command when a finding reaches: error or warning.")
    ] = None,
    grace: Annotated[
        float, typer.Option(min=0.0, help="Seconds between SIGINT, SIGTERM and SIGKILL.")
    ] = 10.0,
    fail_on: FailOnOption = "error",
    stall_after: StallOption = None,
    fmt: ReportFormatOption = [],  # noqa: B006 - typer needs a list default
    select: SelectOption = [],  # noqa: B006
    extend_select: ExtendSelectOption = [],  # noqa: B006
    ignore: IgnoreOption = [],  # noqa: B006
    train_col: TrainColOption = None,
    val_col: ValColOption = None,
    step_col: StepColOption = None,
    vocab_size: VocabOption = None,
    classes: ClassesOption = None,
    profile: ProfileOption = None,
    group_by: GroupByOption = None,
    config: ConfigOption = None,
) -> None:
    """Run a training command, show its output unchanged, diagnose it live, and stop its
    process group when a finding reaches --stop-on (SIGINT, then SIGTERM, then SIGKILL,
    --grace seconds apart; the same when lossdoctor itself is interrupted).

    Exit code: the command's own (128+signal if a signal ended it) unless lossdoctor
    stopped it or a finding reached --fail-on (then 1); 130/143 when lossdoctor was
    interrupted.  If diagnosis fails, the command runs on unwatched and its code is kept.
    """
    from lossdoctor.cli_live import run_command

    _live_options(stop_on, fail_on, vocab_size, classes)
    if not command:
        raise typer.BadParameter("give the command to run after --")
    settings = _settings(
        select, extend_select, ignore, config, (train_col, val_col, step_col),
        vocab_size or classes, profile, group_by=group_by,
    )  # fmt: skip
    outputs = _parse_formats(fmt)
    raise typer.Exit(
        run_command(
            command,
            settings,
            outputs,
            stop_on=stop_on,
            fail_on=fail_on,
            grace=grace,
            stall_after=stall_after,
            child_env=_child_env(),
        )
    )


@app.command()
def formats() -> None:
    """List every log format lossdoctor reads, with an example of each."""
    from lossdoctor.ingest.catalog import READERS
    from lossdoctor.reporters import rule_docs

    rule_docs.print_rows(
        ("reader", "reads", "example", "tested against"),
        [(r.name, r.reads, r.example, r.tested) for r in READERS],
    )


@rules_app.command("list")
@_one_line_errors
def rules_list(
    config: ConfigOption = None,
) -> None:
    """List the rules in effect: code, name, group, severities, summary."""
    from lossdoctor.reporters import rule_docs

    rule_docs.print_list(_configured_rules(config))


@rules_app.command("explain")
@_one_line_errors
def rules_explain(
    rule: Annotated[str, typer.Argument(help="A rule name (spikes) or code (LD201).")],
    config: ConfigOption = None,
) -> None:
    """Explain a rule: what it finds, why it matters, when it fires (with the thresholds
    your configuration sets), what to do."""
    from lossdoctor.reporters import rule_docs

    pack = _configured_rules(config, keep_all=True)
    found = [r for r in pack if rule in (r.name, r.code)]
    if not found:
        from difflib import get_close_matches

        close = get_close_matches(rule, [r.name for r in pack] + [r.code for r in pack], n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        _error(f"no rule '{rule}'{hint} (see 'lossdoctor rules list')")
        raise typer.Exit(ExitCode.USAGE)
    rule_docs.print_explain(found[0])


def _configured_rules(config: str | None, *, keep_all: bool = False) -> list[Any]:
    """Return the rules with the project's (and ``config``'s) settings applied."""
    from dataclasses import replace

    from lossdoctor.api import select_rules
    from lossdoctor.config import Settings, resolve_settings

    settings = resolve_settings(Settings(), config, Path.cwd())
    if keep_all:
        settings = replace(settings, select=None, extend_select=(), ignore=())
    return select_rules(settings)


@rules_app.command("test")
@_one_line_errors
def rules_test(
    folder: Annotated[Path, typer.Argument(help="A folder of rule case files (*.toml).")],
    rule_path: Annotated[
        list[Path],
        typer.Option("--rules", help="Rule folders to test instead of the built-in pack."),
    ] = [],  # noqa: B006 - typer needs a list default
) -> None:
    """Run rule case files: each case's curve must make the rules do what it expects.

    Exit codes: 0 every expectation met, 1 one failed, 2 a malformed file.
    """
    from lossdoctor.casefile import run_case_dir
    from lossdoctor.engine.loader import load_rules

    if not folder.is_dir():
        _error(f"{folder}: not a folder")
        raise typer.Exit(ExitCode.USAGE)
    pack = load_rules(list(rule_path) or None)
    results = run_case_dir(folder, pack)
    failed = [r for r in results if not r.ok]
    for r in results:
        mark = "ok  " if r.ok else "FAIL"
        typer.echo(
            f"{mark} {Path(r.file).name} [{r.case}] {r.rule}: expected {r.expected}, got {r.got}"
        )
    typer.echo(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if failed:
        raise typer.Exit(ExitCode.FINDINGS)


#: numpy asks Linux for huge pages on large arrays; where the kernel compacts memory on
#: demand for them (transparent_hugepage/defrag = madvise) the first touch of each array
#: stalls (numpy/numpy#31590), which costs more than it saves on arrays read once or
#: twice.  numpy's OpenBLAS starts a thread per core at import (a quarter of the import's
#: CPU time) that no computation of lossdoctor's is large enough to use.  The user's own
#: settings win.
_NUMPY_ENV = {"NUMPY_MADVISE_HUGEPAGE": "0", "OPENBLAS_NUM_THREADS": "1"}
#: The names of ``_NUMPY_ENV`` this process set (kept out of a child's environment).
_SET_FOR_NUMPY: set[str] = set()


def _child_env() -> dict[str, str]:
    """Return the environment for ``run``'s command: ours, without what we set for numpy."""
    return {k: v for k, v in os.environ.items() if k not in _SET_FOR_NUMPY}


#: glibc's mallopt parameters: M_TRIM_THRESHOLD, M_MMAP_THRESHOLD.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def _keep_freed_memory() -> None:
    """Let glibc keep freed blocks of up to 32 MiB for reuse instead of handing each back
    to the kernel: a large table is parsed chunk after chunk, and memory returned and
    faulted in again for every chunk costs more than the parse (Linux with glibc only;
    elsewhere nothing changes)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)
        libc.mallopt(_M_TRIM_THRESHOLD, 128 << 20)
    except (OSError, AttributeError):  # not glibc
        pass


def _app_for(argv: list[str]) -> typer.Typer:
    """Return the app with only the command (or command group) ``argv`` starts with, or the
    whole app when it starts with none (an option, help, a misspelt command: every command
    is listed then).  Typer builds each command's options from its signature at every
    start: about 9 ms of CPU for all of them, 3 ms for ``check`` alone."""
    import copy

    from typer.main import get_command_name

    first = argv[0] if argv else ""
    commands = [
        info
        for info in app.registered_commands
        if info.callback is not None
        and (info.name or get_command_name(info.callback.__name__)) == first
    ]
    groups = [info for info in app.registered_groups if info.name == first]
    if not commands and not groups:
        return app
    one = copy.copy(app)
    one.registered_commands, one.registered_groups = commands, groups
    return one


def main() -> None:
    """Run the CLI; turn lossdoctor errors into one line on stderr and exit code 2."""
    for name, value in _NUMPY_ENV.items():
        if name not in os.environ:
            os.environ[name] = value
            _SET_FOR_NUMPY.add(name)
    _keep_freed_memory()
    try:
        (_app_for(sys.argv[1:]) if isinstance(app, typer.Typer) else app)()
    except LossdoctorError as exc:
        _error(exc.one_line())
        sys.exit(ExitCode.USAGE)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("LOSSDOCTOR_DEBUG"):
            raise
        what = str(exc) if isinstance(exc, DiagnosisBug) else f"{type(exc).__name__}: {exc}"
        _error(f"internal error: {what} (set LOSSDOCTOR_DEBUG=1 for details)")
        sys.exit(ExitCode.USAGE)


def console() -> None:
    """The console script (and ``python -m lossdoctor``): :func:`main`, then, its output
    flushed, the process leaves at once (``os._exit``) with main's exit code.  Python's
    teardown lets every module and object go one by one (5-10 ms of CPU after a check,
    50 ms where the run's data is left to it) for a process about to end anyway.  A
    process with work still under way (a thread that is no daemon, a child process)
    leaves the usual way, as does one whose output cannot be flushed."""
    code: str | int | None = 0
    try:
        main()
    except SystemExit as stop:
        code = stop.code
    if (code is None or isinstance(code, int)) and not _still_running():
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):  # a closed pipe: Python's own exit says so
            sys.exit(code)
        if "logging" in sys.modules:  # its handlers flushed, as at a usual exit
            sys.modules["logging"].shutdown()
        os._exit(code or 0)
    sys.exit(code)


def _still_running() -> bool:
    """Return True when a thread that is no daemon or a child process is still running
    (a usual exit waits for them)."""
    import threading

    main_thread = threading.main_thread()
    if any(t is not main_thread and not t.daemon for t in threading.enumerate()):
        return True
    processes = sys.modules.get("multiprocessing")
    return bool(processes and processes.active_children())
