"""The command line: a thin typer layer; every command delegates at once.

Only this module prints or exits.  Heavy modules (pandas, numpy, scipy) are
imported inside the commands so that ``lossdoctor --help`` stays instant.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from lossdoctor import __version__
from lossdoctor.errors import ExitCode, LossdoctorError

FAIL_ON = ("error", "warning", "info", "never")
FORMATS = ("text", "json", "markdown", "github", "junit", "gitlab")

app = typer.Typer(
    name="lossdoctor",
    help="Diagnose training runs from their loss logs: a verdict, the evidence, the fixes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
rules_app = typer.Typer(help="List and explain the rules.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")


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
        if name not in FORMATS:
            raise typer.BadParameter(
                f"unknown format '{name}' (choose from {', '.join(FORMATS)})",
                param_hint="'--format'",
            )
        out.append((name, path or None))
    if sum(1 for _, p in out if p is None) > 1:
        raise typer.BadParameter(
            "only one format can go to standard output; give the others a path (NAME:PATH)",
            param_hint="'--format'",
        )
    return out


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
            help="Output NAME[:PATH]: text, json, markdown, github, junit, gitlab. Repeatable.",
        ),
    ] = [],  # noqa: B006 - typer needs a list default
    fail_on: Annotated[
        str | None,
        typer.Option(help="Exit 1 when a finding reaches: error (default), warning, info, never."),
    ] = None,
    exit_zero: Annotated[
        bool, typer.Option("--exit-zero", help="Always exit 0 for findings (report-only jobs).")
    ] = False,
    select: Annotated[
        list[str], typer.Option(help="Only these rules: codes, prefixes, names or groups.")
    ] = [],  # noqa: B006
    extend_select: Annotated[
        list[str], typer.Option(help="Add these rules to the selection.")
    ] = [],  # noqa: B006
    ignore: Annotated[list[str], typer.Option(help="Leave these rules out.")] = [],  # noqa: B006
    config: Annotated[
        str | None, typer.Option(help="A lossdoctor.toml or pyproject.toml to read settings from.")
    ] = None,
    train_col: Annotated[
        str | None, typer.Option(help="Column (or key) holding the training loss.")
    ] = None,
    val_col: Annotated[
        str | None, typer.Option(help="Column (or key) holding the validation loss.")
    ] = None,
    step_col: Annotated[str | None, typer.Option(help="Column (or key) holding the step.")] = None,
    vocab_size: Annotated[
        int | None,
        typer.Option(
            min=2, help="Vocabulary size N: ln(N) is the loss of a uniform guess (chance level)."
        ),
    ] = None,
    classes: Annotated[
        int | None,
        typer.Option(min=2, help="Number of classes N (classification): chance level ln(N)."),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(help="Typical-values profile to place the final loss in: slm-finetune."),
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
    jobs: Annotated[int, typer.Option(min=1, help="Diagnose paths in parallel processes.")] = 1,
) -> None:
    """Diagnose loss logs: verdict, evidence and fixes for each run, in order.

    Exit codes: 0 no run reaches --fail-on, 1 one does, 2 usage, configuration or input error.
    """
    from lossdoctor.config import FAIL_ON as CONFIG_FAIL_ON
    from lossdoctor.config import Settings, resolve_settings

    if fail_on is not None and fail_on not in CONFIG_FAIL_ON:
        raise typer.BadParameter(
            f"'{fail_on}' is not one of {', '.join(FAIL_ON)}", param_hint="'--fail-on'"
        )
    outputs = _parse_formats(fmt)
    if vocab_size is not None and classes is not None:
        raise typer.BadParameter("give --vocab-size or --classes, not both")
    columns = {k: v for k, v in (("train", train_col), ("val", val_col), ("step", step_col)) if v}
    cli = Settings(
        select=_csv(select) or None,
        extend_select=_csv(extend_select),
        ignore=_csv(ignore),
        fail_on=fail_on,
        exit_zero=exit_zero or None,
        columns=columns,
        vocab_size=vocab_size or classes,
        profile=profile,
    )
    settings = resolve_settings(cli, config, Path.cwd())
    from lossdoctor.detectors.initial import PROFILES

    if settings.profile is not None and settings.profile not in PROFILES:
        raise typer.BadParameter(
            f"unknown profile '{settings.profile}' (choose from {', '.join(PROFILES)})",
            param_hint="'--profile'",
        )
    from lossdoctor.api import diagnose_many, make_context, select_rules
    from lossdoctor.ingest.columns import ColumnHints

    rules = select_rules(settings)
    stdin = sys.stdin.buffer.read() if "-" in paths else None
    hints = ColumnHints(**settings.columns) if settings.columns else None
    context = make_context(vocab_size=settings.vocab_size, profile=settings.profile)
    report = diagnose_many(
        paths, stdin=stdin, hints=hints, run=run_filter, context=context, rules=rules, jobs=jobs
    )
    if baseline is not None:
        from lossdoctor.compare import compare_report

        report = compare_report(report, baseline, hints=hints, rules=rules, context=context)
    doc = report.to_dict()
    threshold = settings.fail_on or "error"
    for name, path in outputs:
        _write(name, path, doc, fail_on=threshold)
    for run in report.runs:
        if run.error is not None:
            _error(run.error)
    if any(run.error is not None for run in report.runs):
        raise typer.Exit(ExitCode.USAGE)
    if not settings.exit_zero and any(run.reaches(threshold) for run in report.runs):
        raise typer.Exit(ExitCode.FINDINGS)


def _write(name: str, path: str | None, doc: dict[str, Any], *, fail_on: str = "error") -> None:
    """Render ``doc`` in format ``name`` to ``path`` (stdout when None)."""
    if name == "text":
        from lossdoctor.reporters import terminal

        if path is None:
            terminal.render(doc)
            return
        import io

        buffer = io.StringIO()
        terminal.render(doc, buffer, width=100)
        text = buffer.getvalue()
    elif name == "json":
        from lossdoctor.reporters import json_report

        text = json_report.render(doc)
    elif name == "markdown":
        from lossdoctor.reporters import markdown

        text = markdown.render(doc)
    elif name == "github":
        from lossdoctor.reporters import github

        text = github.render(doc)
    elif name == "junit":
        from lossdoctor.reporters import junit

        text = junit.render(doc, fail_on=fail_on)
    else:
        from lossdoctor.reporters import gitlab

        text = gitlab.render(doc)
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
    config: Annotated[str | None, typer.Option(help="Settings file, as for check.")] = None,
) -> None:
    """Compare a candidate run with a reference run and fail when it is worse.

    Checks the final and best loss (--rtol), the curve over the shared steps (a band of
    max(rtol, k deviations)), the steps to reach the reference's loss (--speed-tol) and
    problem findings the reference did not have.  Exit codes as for check.
    """
    if fail_on not in FAIL_ON:
        raise typer.BadParameter(f"'{fail_on}' is not one of {', '.join(FAIL_ON)}")
    outputs = _parse_formats(fmt)
    from lossdoctor.api import diagnose_many, make_context, select_rules
    from lossdoctor.compare import Tolerances, compare_report
    from lossdoctor.config import Settings, resolve_settings
    from lossdoctor.ingest.columns import ColumnHints

    settings = resolve_settings(Settings(), config, Path.cwd())
    rules = select_rules(settings)
    hints = ColumnHints(**settings.columns) if settings.columns else None
    context = make_context(vocab_size=settings.vocab_size, profile=settings.profile)
    report = diagnose_many([candidate], hints=hints, rules=rules, context=context)
    if any(r.error for r in report.runs):
        for r in report.runs:
            _error(r.error or "")
        raise typer.Exit(ExitCode.USAGE)
    report = compare_report(
        report, reference, hints=hints, rules=rules, context=context,
        tol=Tolerances(rtol=rtol, k=k, speed_tol=speed_tol),
    )  # fmt: skip
    doc = report.to_dict()
    for name, path in outputs:
        _write(name, path, doc, fail_on=fail_on)
    if not exit_zero and any(run.reaches(fail_on) for run in report.runs):
        raise typer.Exit(ExitCode.FINDINGS)


@app.command()
def formats() -> None:
    """List every log format lossdoctor reads, with an example of each."""
    from lossdoctor.ingest.catalog import READERS
    from lossdoctor.reporters import rule_docs

    rule_docs.print_rows(
        ("reader", "reads", "example"), [(r.name, r.reads, r.example) for r in READERS]
    )


@rules_app.command("list")
@_one_line_errors
def rules_list(
    config: Annotated[str | None, typer.Option(help="Settings file, as for check.")] = None,
) -> None:
    """List the rules in effect: code, name, group, severities, summary."""
    from lossdoctor.reporters import rule_docs

    rule_docs.print_list(_configured_rules(config))


@rules_app.command("explain")
@_one_line_errors
def rules_explain(
    rule: Annotated[str, typer.Argument(help="A rule name (spikes) or code (LD201).")],
    config: Annotated[str | None, typer.Option(help="Settings file, as for check.")] = None,
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


def main() -> None:
    """Run the CLI; turn lossdoctor errors into one line on stderr and exit code 2."""
    try:
        app()
    except LossdoctorError as exc:
        _error(exc.one_line())
        sys.exit(ExitCode.USAGE)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("LOSSDOCTOR_DEBUG"):
            raise
        _error(f"internal error: {type(exc).__name__}: {exc} (set LOSSDOCTOR_DEBUG=1 for details)")
        sys.exit(ExitCode.USAGE)
